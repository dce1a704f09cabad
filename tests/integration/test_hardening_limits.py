# SPDX-License-Identifier: MIT
"""Server limits over real sockets: max_connections (503 + Retry-After), max_buffered."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import wsfast
from wsfast.server import serve

from .server_util import Echo, RawClient, on_loop, running, wait_for


def uri(port: int) -> str:
    return f"ws://127.0.0.1:{port}/"


def test_extra_clients_get_503_with_retry_after_and_open_ones_are_untouched() -> None:
    with running(max_connections=2) as server, contextlib.ExitStack() as stack:
        first = stack.enter_context(connect(uri(server.port)))
        second = stack.enter_context(connect(uri(server.port)))
        for _ in range(3):
            with pytest.raises(InvalidStatus) as info:
                connect(uri(server.port), open_timeout=10)
            response = info.value.response
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "1"
        # Plain HTTP is not a connection slot: health checks still answer.
        with RawClient(server.port) as raw:
            raw.sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert raw.read_all().startswith(b"HTTP/1.1 200 ")
        for ws in (first, second):
            ws.send("still here")
            assert ws.recv(timeout=10) == "still here"
        # A slot freed is a slot given.
        first.close()
        wait_for(lambda: len(server.connections) == 1, timeout=30)
        with connect(uri(server.port)) as third:
            third.send("in")
            assert third.recv(timeout=10) == "in"


def test_max_connections_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        serve(Echo(), port=0, max_connections=0)


def test_cli_max_connections() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsfast", "echo", "--port", "0", "--max-connections", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().rsplit(":", 1)[1])
        with connect(uri(port)) as ws:
            with pytest.raises(InvalidStatus) as info:
                connect(uri(port), open_timeout=10)
            assert info.value.response.status_code == 503
            ws.send("ok")
            assert ws.recv(timeout=10) == "ok"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr


# ---- max_buffered: the server-wide cap on buffered output -------------------------------

STALLED = 20
ROUNDS = 200
MESSAGE = 64 << 10
CAP = 4 << 20


def rss(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(field)


def test_max_buffered_bounds_memory_while_many_clients_stop_reading() -> None:
    # Each connection alone may buffer a GiB: only the server-wide cap applies.
    options = {"write_limit": (1 << 30, 1 << 29), "slow_consumer": "drop", "max_buffered": CAP}
    with running(compression=False, **options) as server, contextlib.ExitStack() as stack:
        clients = [stack.enter_context(RawClient(server.port, rcvbuf=4096)) for _ in range(STALLED)]
        for raw in clients:
            raw.handshake()  # and then never read again
        wait_for(lambda: len(server.connections) == STALLED)
        # This case's own peak, not the process's high-water mark from earlier tests.
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = rss("VmRSS")
        message = os.urandom(MESSAGE)
        for _ in range(ROUNDS):  # 250 MiB in all without the cap
            on_loop(server, lambda: server.broadcast(message))
        peak = rss("VmHWM") - before

        def totals() -> tuple[int, int, int]:
            conns = server.connections
            return (
                server._loop.buffered,
                sum(c.buffered_amount for c in conns),
                sum(c.dropped for c in conns),
            )

        tracked, buffered, dropped = on_loop(server, totals)
        # The server's running total is the sum of the connections' own figures.
        assert tracked == buffered
        # Within the cap plus one message per connection (the one that crossed it).
        assert buffered <= CAP + STALLED * (MESSAGE + 14)
        assert dropped > 0
        assert peak < CAP + STALLED * MESSAGE + (48 << 20), f"peak grew by {peak >> 20} MiB"
        assert all(c.state is wsfast.State.OPEN for c in server.connections)


def test_max_buffered_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_buffered"):
        serve(Echo(), port=0, max_buffered=0)
