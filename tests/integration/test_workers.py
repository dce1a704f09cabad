# SPDX-License-Identifier: MIT
"""Worker processes on one port (``--workers N`` / ``serve(..., workers=N)``), topics
across them, and topics across servers through a real ``redis-server``.

The multi-process tests run ``python -m wsfast serve tests.integration.test_workers:PidPubSub``
as a subprocess. The kernel picks the worker of each connection, so the tests open
clients until every worker has some (each client is told its worker's pid).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from wsfast.connection import Connection
from wsfast.server import Handler, serve
from wsfast.topics import Broker, InMemoryEngine, TopicsConfig
from wsfast.workers import Supervisor, WorkerEngine

from .server_util import on_loop
from .workers_util import ROOT, WAIT, cli, recv_json, redis_server, stop

pytestmark = pytest.mark.timeout(120)

TOPIC = "t"


class PidPubSub(Handler):
    """Says ``pid PID`` on open and subscribes the client to ``t``;
    ``pub DATA`` publishes DATA to ``t`` (not to the sender), ``PUB DATA`` to everyone."""

    def on_open(self, conn: Connection) -> None:
        conn.subscribe(TOPIC)
        conn.send(f"pid {os.getpid()}")

    def on_message(self, conn: Connection, data: str | bytes) -> None:
        assert isinstance(data, str)
        cmd, _, payload = data.partition(" ")
        if cmd == "pub":
            conn.publish(TOPIC, payload)
        elif cmd == "PUB":
            conn._server.publish(TOPIC, payload)


def open_client(stack: contextlib.ExitStack, port: int) -> tuple[ClientConnection, int]:
    """Connect a client (closed with ``stack``); return it and its worker's pid."""
    ws = stack.enter_context(connect(f"ws://127.0.0.1:{port}/", open_timeout=WAIT))
    hello = ws.recv(timeout=WAIT)
    assert isinstance(hello, str) and hello.startswith("pid "), hello
    return ws, int(hello.split()[1])


def clients_on_each_worker(
    stack: contextlib.ExitStack, port: int, workers: int, each: int = 2
) -> dict[int, list[ClientConnection]]:
    """Open clients until every worker has ``each`` of them (bounded)."""
    by_pid: dict[int, list[ClientConnection]] = {}
    for _ in range(200):
        ws, pid = open_client(stack, port)
        by_pid.setdefault(pid, []).append(ws)
        if len(by_pid) == workers and all(len(c) >= each for c in by_pid.values()):
            return by_pid
    pytest.fail(f"the kernel never spread 200 connections over {workers} workers: {by_pid}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def children(pid: int) -> list[int]:
    """The process ids of ``pid``'s children (the supervisor's workers)."""
    listing = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(p) for p in listing.stdout.split()]


# ---- the record format and the engine, in one process ------------------------------------


def test_two_worker_engines_deliver_each_others_publications_in_order() -> None:
    # Two servers in this process, joined by one socketpair each way, as two workers are.
    a_to_b = socket.socketpair()
    b_to_a = socket.socketpair()
    engines = [
        WorkerEngine([a_to_b[0]], [b_to_a[1]], InMemoryEngine()),
        WorkerEngine([b_to_a[0]], [a_to_b[1]], InMemoryEngine()),
    ]
    servers = []
    for engine in engines:
        server = serve(PidPubSub(), "127.0.0.1", 0, ping_interval=None)
        server.topics = Broker(TopicsConfig(), engine)
        servers.append(server.start())
    try:
        with (
            connect(f"ws://127.0.0.1:{servers[0].port}/") as a1,
            connect(f"ws://127.0.0.1:{servers[0].port}/") as a2,
            connect(f"ws://127.0.0.1:{servers[1].port}/") as b1,
        ):
            for ws in (a1, a2, b1):
                ws.recv(timeout=WAIT)
            messages = [f"m{i}" for i in range(300)] + ["é" * 70_000]
            for m in messages:
                a1.send(f"pub {m}")
            for ws in (a2, b1):
                assert [ws.recv(timeout=WAIT) for _ in messages] == messages
            # Only after: two publishers' messages have no order between them.
            b1.send("pub from-b")
            assert a1.recv(timeout=WAIT) == "from-b"
            assert a2.recv(timeout=WAIT) == "from-b"
            # Binary stays binary across the mesh.
            on_loop(servers[1], lambda: servers[1].publish(TOPIC, b"\x00\xff"))
            assert a1.recv(timeout=WAIT) == b"\x00\xff"
            n = len(messages)
            counts = (engines[0].sent, engines[1].received, engines[1].sent, engines[0].received)
            assert counts == (n, n, 2, 2)
    finally:
        for server in servers:
            server.close(drain=1.0)
    # close() closed the engines' sockets.
    assert a_to_b[0].fileno() == -1 and a_to_b[1].fileno() == -1


def test_a_gone_peer_is_dropped_not_fatal() -> None:
    out, peer_end = socket.socketpair()
    peer_end.close()
    engine = WorkerEngine([out], [], InMemoryEngine())
    Broker(TopicsConfig(), engine)
    assert engine.publish("x", "data", frozenset()) == 0
    assert engine.publish("x", "data", frozenset()) == 0
    engine.close()


def test_workers_option_is_checked_and_needs_serve_forever() -> None:
    with pytest.raises(ValueError, match="workers must be >= 1"):
        serve(PidPubSub(), workers=0)
    server = serve(PidPubSub(), "127.0.0.1", 0, workers=2)
    with pytest.raises(RuntimeError, match="serve_forever"):
        server.start()
    with pytest.raises(RuntimeError, match="serve_forever"):
        server.listen()
    with pytest.raises(ValueError, match="workers must be >= 1"):
        Supervisor(server, 0)


# ---- worker processes --------------------------------------------------------------------


def test_publish_in_any_worker_reaches_clients_of_every_worker_in_order() -> None:
    with (
        cli(
            "serve", "tests.integration.test_workers:PidPubSub", "--port", "0", "--workers", "2"
        ) as (process, port),
        contextlib.ExitStack() as stack,
    ):
        by_pid = clients_on_each_worker(stack, port, 2)
        (pid_a, (pub_a, *rest_a)), (pid_b, (pub_b, *rest_b)) = sorted(by_pid.items())
        everyone_but_a = [c for c in [*rest_a, pub_b, *rest_b]]
        messages = [f"a{i}" for i in range(200)]
        for m in messages:
            pub_a.send(f"pub {m}")
        for ws in everyone_but_a:
            assert [ws.recv(timeout=WAIT) for _ in messages] == messages
        # And back: a publication from the other worker reaches the first one's clients.
        pub_b.send("PUB from-b")
        for ws in [pub_a, *rest_a, pub_b, *rest_b]:
            assert ws.recv(timeout=WAIT) == "from-b"
        pids = [pid_a, pid_b]
        status, err = stop(process)
        assert status == 0, err
        assert "Traceback" not in err
        # Every client was closed with 1001, and no worker outlives the supervisor.
        for ws in [pub_a, pub_b]:
            with pytest.raises(ConnectionClosed):
                while True:
                    ws.recv(timeout=WAIT)
            assert ws.close_code == 1001
        for pid in pids:
            assert not alive(pid)


SERVE_FOREVER = """
import os
from wsfast import serve
from tests.integration.test_workers import PidPubSub

server = serve(PidPubSub(), "127.0.0.1", 0, workers=2, ping_interval=None)
# Runs in each worker once it listens: every worker prints the one shared port, in one
# write(), which a pipe keeps whole (print() makes several when PYTHONUNBUFFERED is set,
# and the two workers' pieces interleaved).
server.on_listen(lambda s: os.write(1, f"{s.worker_index} {s.port}\\n".encode()))
server.serve_forever()
"""


def test_serve_forever_with_workers_runs_them_until_sigint() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_FOREVER],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = sorted(process.stdout.readline().split() for _ in range(2))
        assert [index for index, _ in lines] == ["0", "1"], lines
        ports = {int(port) for _, port in lines}
        assert len(ports) == 1 and 0 not in ports
        with contextlib.ExitStack() as stack:
            by_pid = clients_on_each_worker(stack, ports.pop(), 2, each=1)
            (_, (a, *_)), (_, (b, *_)) = sorted(by_pid.items())
            a.send("pub hi")
            assert b.recv(timeout=WAIT) == "hi"
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=WAIT + 5)
        assert process.returncode == 0, err
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_a_worker_that_dies_is_logged_and_makes_the_exit_status_nonzero() -> None:
    with cli("echo", "--port", "0", "--workers", "2", "-v") as (process, port):
        with contextlib.ExitStack() as stack:
            ws = stack.enter_context(connect(f"ws://127.0.0.1:{port}/", open_timeout=WAIT))
            ws.send("still up")
            assert ws.recv(timeout=WAIT) == "still up"
        victim, survivor = children(process.pid)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + WAIT
        while alive(victim):  # until the supervisor reaped it
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # Nothing is restarted; the other worker keeps serving the port.
        for _ in range(20):
            with connect(f"ws://127.0.0.1:{port}/", open_timeout=WAIT) as ws:
                ws.send("x")
                assert ws.recv(timeout=WAIT) == "x"
        assert alive(survivor)
        status, err = stop(process)
    assert status == 1
    assert f"worker {victim} exited (killed by SIGKILL)" in err


def test_on_listen_runs_at_listen_or_at_once() -> None:
    server = serve(PidPubSub(), "127.0.0.1", 0)
    seen: list[int] = []
    server.on_listen(lambda s: seen.append(s.port))
    assert seen == []
    server.listen()
    assert seen == [server.port]
    server.on_listen(lambda s: seen.append(-s.port))
    assert seen == [server.port, -server.port]
    assert server.worker_index is None
    server.close()


def test_sigkill_of_the_supervisor_leaves_no_orphan() -> None:
    with (
        cli("echo", "--port", "0", "--workers", "2") as (process, _),
    ):
        pids = children(process.pid)
        assert len(pids) == 2
        process.kill()
        process.communicate()
        deadline = time.monotonic() + WAIT
        while any(alive(pid) for pid in pids):
            assert time.monotonic() < deadline, "a worker outlived its supervisor"
            time.sleep(0.05)


def test_a_worker_that_fails_at_startup_makes_the_supervisor_exit_nonzero() -> None:
    # An unsupported broker URL fails in each worker, when it builds its engine.
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "wsfast",
            "echo",
            "--port",
            "0",
            "--workers",
            "2",
            "--redis",
            "nats://127.0.0.1:1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 1
    assert "exited at startup" in process.stderr


def test_demo_with_two_workers_shares_the_chat() -> None:
    import json

    with cli("demo", "--port", "0", "--workers", "2") as (process, port):
        url = f"ws://127.0.0.1:{port}/ws"
        by_worker: dict[int, tuple[ClientConnection, int]] = {}
        with contextlib.ExitStack() as stack:
            for _ in range(200):
                ws = stack.enter_context(connect(url, open_timeout=WAIT))
                welcome = recv_json(ws, "welcome")
                # Client ids are PID * 1000 + n: they tell the worker.
                by_worker.setdefault(welcome["id"] // 1000, (ws, welcome["id"]))
                if len(by_worker) == 2:
                    break
            assert len(by_worker) == 2
            (alice, alice_id), (bob, _) = by_worker.values()
            recv_json(alice, "tick")
            recv_json(bob, "tick")
            alice.send(json.dumps({"type": "chat", "text": "across workers"}))
            for ws in (alice, bob):
                chat = recv_json(ws, "chat")
                assert (chat["id"], chat["text"]) == (alice_id, "across workers")
        status, err = stop(process)
        assert status == 0, err


# ---- through Redis -------------------------------------------------------------------------


@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def probe(publisher: ClientConnection, receiver: ClientConnection, deadline: float) -> None:
    """Publish ``probe`` until ``receiver`` gets one through Redis, by ``deadline``."""
    while True:
        publisher.send("pub probe")
        with contextlib.suppress(TimeoutError):
            if receiver.recv(timeout=0.5) == "probe":
                return
        assert time.monotonic() < deadline, "nothing crossed through redis"


def assert_receives_after_probes(ws: ClientConnection, messages: list[str]) -> None:
    """``ws`` receives ``messages`` in order, after any late probes."""
    head = ws.recv(timeout=WAIT)
    while head == "probe":
        head = ws.recv(timeout=WAIT)
    rest = [ws.recv(timeout=WAIT) for _ in messages[1:]]
    assert [head, *rest] == messages


def test_two_servers_share_topics_through_redis(redis_url: str) -> None:
    target = "tests.integration.test_workers:PidPubSub"
    with (
        cli("serve", target, "--port", "0", "--redis", redis_url) as (server_a, port_a),
        cli("serve", target, "--port", "0", "--redis", redis_url) as (server_b, port_b),
        contextlib.ExitStack() as stack,
    ):
        a, _ = open_client(stack, port_a)
        b, _ = open_client(stack, port_b)
        other_a, _ = open_client(stack, port_a)
        # The subscriptions reach Redis asynchronously: probe until one gets through.
        probe(a, b, time.monotonic() + WAIT)
        messages = [f"r{i}" for i in range(100)]
        for m in messages:
            a.send(f"pub {m}")
        for ws in (b, other_a):
            assert_receives_after_probes(ws, messages)
        for process in (server_a, server_b):
            status, err = stop(process)
            assert status == 0, err


def test_workers_share_topics_through_redis(redis_url: str) -> None:
    target = "tests.integration.test_workers:PidPubSub"
    args = ("serve", target, "--port", "0", "--workers", "2", "--redis", redis_url)
    with cli(*args) as (process, port), contextlib.ExitStack() as stack:
        by_pid = clients_on_each_worker(stack, port, 2)
        (_, (pub_a, *rest_a)), (_, clients_b) = sorted(by_pid.items())
        others = [*rest_a, *clients_b]
        deadline = time.monotonic() + WAIT
        # Each worker subscribes to Redis in the background: probe until all are in.
        for ws in others:
            probe(pub_a, ws, deadline)
        messages = [f"w{i}" for i in range(100)]
        for m in messages:
            pub_a.send(f"pub {m}")
        for ws in others:
            assert_receives_after_probes(ws, messages)
        status, err = stop(process)
        assert status == 0, err
