# SPDX-License-Identifier: MIT
"""A real ``redis-server`` on a free loopback port, and wsfast servers with the Redis
engine (in this process, or in a subprocess: ``python -m tests.integration.redis_util
URL HISTORY``), for the Redis engine's tests."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wsfast.connection import Connection
from wsfast.redis_engine import RedisEngine
from wsfast.server import Server, serve
from wsfast.topics import Broker, TopicsConfig

from .topics_util import TopicCommands

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A ``redis-server`` process without persistence (``--save '' --appendonly no``),
    so a restart loses every key: what the epoch tests need."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="wsfast-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server on :attr:`port` and wait until it answers PING."""
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self.dir,
                "--logfile", os.path.join(self.dir, "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING")
            time.sleep(0.02)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        """Kill and start again on the same port: every key is gone."""
        self.kill()
        self.start()

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh ``redis-server`` for one test, stopped afterwards."""
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Node(TopicCommands):
    """The topic commands (see :class:`TopicCommands`), and ``stats``.

    Replies to ``sub`` once Redis confirmed this process follows the topic (so what is
    published from then on arrives), to ``stats`` with the engine's counters as JSON.
    """

    def __init__(self, engine: RedisEngine) -> None:
        self.engine = engine
        self.server: Server | None = None

    def on_command(self, conn: Connection, cmd: str, rest: str) -> None:
        if cmd == "stats":
            conn.send(json.dumps(dataclasses.asdict(self.engine.stats())))

    def reply_subscribed(self, conn: Connection, topic: str, reply: str) -> None:
        if self.engine.following(topic):
            conn.send(reply)
        else:
            assert self.server is not None
            self.server.call_later(0.005, self.reply_subscribed, conn, topic, reply)


@contextlib.contextmanager
def redis_node(
    url: str, config: TopicsConfig | None = None
) -> Iterator[tuple[Server, RedisEngine]]:
    """A wsfast server on 127.0.0.1:<free port> with a started Redis engine.

    The server owns the engine's lifecycle: ``listen()`` starts it, closing stops it.
    """
    engine = RedisEngine(url)
    node = Node(engine)
    server = serve(node, "127.0.0.1", 0, topics=Broker(config, engine), ping_interval=None)
    node.server = server
    server.listen()
    server.start()
    try:
        yield server, engine
    finally:
        server.close(drain=1.0)
        engine.close()


class NodeProcess:
    """:func:`redis_node` in a subprocess; stops when its stdin closes."""

    def __init__(self, url: str, history_size: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.redis_util", url, str(history_size)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"node process exited with {self.proc.returncode}")
        self.port = int(line)

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def stop(self) -> int:
        """Close its stdin and wait: its exit status."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(20)
        finally:
            self.proc.stdout.close()


def _node_main(url: str, history_size: str) -> None:
    with redis_node(url, TopicsConfig(history_size=int(history_size))) as (server, _):
        print(server.port, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    _node_main(*sys.argv[1:])
