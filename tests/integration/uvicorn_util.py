# SPDX-License-Identifier: MIT
"""Helpers for the uvicorn backend tests: a real uvicorn server on the test's loop, and
a raw client for what well-behaved clients never send.

Every wait is bounded: a condition polled until a deadline, never a sleep standing in
for an event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from tests.optional import optional_param
from wsfast.uvicorn import WSProtocol

#: Every test runs on each loop; uvloop's runs show as skipped when it is absent.
LOOPS = ["asyncio", optional_param("uvloop", "uvloop")]

HTTP_PROTOCOLS = ["h11", optional_param("httptools", "httptools")]

#: Longest any single wait in these tests may take.
DEADLINE = 10.0


def make_runner(loop: str) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine on a fresh loop of the given kind; fail if it leaves tasks behind."""

    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        async def checked() -> Any:
            result = await coro
            await asyncio.sleep(0)
            current = asyncio.current_task()
            leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
            assert not leaked, f"leaked tasks: {leaked}"
            return result

        if loop == "uvloop":
            import uvloop

            return uvloop.run(checked())
        return asyncio.run(checked())

    return runner


@pytest.fixture(autouse=True)
def no_loop_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test whose event loop reported an error (an exception in a protocol
    callback, a task exception never retrieved)."""
    yield
    errors = [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def until(predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Wait until ``predicate()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.002)


async def bounded(awaitable: Any, timeout: float = DEADLINE) -> Any:
    """Await with a deadline (asyncio.wait_for), so a bug fails instead of hanging."""
    return await asyncio.wait_for(awaitable, timeout)


@dataclass
class Served:
    """A running uvicorn server."""

    server: uvicorn.Server
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def protocols(self) -> list[WSProtocol]:
        """The open WebSocket connections."""
        return [p for p in self.server.server_state.connections if isinstance(p, WSProtocol)]

    async def protocol(self) -> WSProtocol:
        """The one WebSocket connection, once it exists."""
        await until(lambda: len(self.protocols) == 1)
        return self.protocols[0]


@asynccontextmanager
async def serving(app: Any, *, ws: Any = WSProtocol, **options: Any) -> AsyncIterator[Served]:
    """uvicorn serving ``app`` on 127.0.0.1 with the wsfast backend; shut down on exit.

    Args:
        app: the ASGI app.
        ws: the WebSocket protocol class.
        options: more ``uvicorn.Config`` options (lifespan is off unless given).
    """
    options.setdefault("lifespan", "off")
    options.setdefault("log_config", None)
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, ws=ws, **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await until(lambda: server.started or task.done())
        if task.done():
            task.result()
        yield Served(server, port)
    finally:
        server.should_exit = True
        await bounded(task, 30)
        sock.close()


# ---- a raw client ------------------------------------------------------------------

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 section 1.3


def frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    """One frame as a client sends it (masked unless ``mask`` is False)."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    bit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class RawClient:
    """A client on asyncio streams: the test writes the bytes and reads every frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.status = 0
        self.head = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""

    @classmethod
    async def connect(
        cls,
        port: int,
        path: str = "/",
        extra: bytes = b"",
        *,
        request: bytes | None = None,
    ) -> RawClient:
        """Send an upgrade request (or ``request``) and read the response head.

        For a status other than 101, the body is read up to end of file, then the
        connection is closed.
        """
        client = await cls.request(port, path, extra, request=request)
        reader = client.reader
        head = await bounded(reader.readuntil(b"\r\n\r\n"))
        client.head = head
        lines = head[:-4].split(b"\r\n")
        client.status = int(lines[0].split(b" ")[1])
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            client.headers.append((name.lower(), value.strip()))
        if client.status != 101:
            client.body = await bounded(reader.read())
            await client.close()
        return client

    @classmethod
    async def request(
        cls,
        port: int,
        path: str = "/",
        extra: bytes = b"",
        *,
        request: bytes | None = None,
    ) -> RawClient:
        """Send an upgrade request (or ``request``); the caller reads the answer."""
        reader, writer = await bounded(asyncio.open_connection("127.0.0.1", port))
        if request is None:
            request = (
                (
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
                    "Sec-WebSocket-Version: 13\r\n"
                ).encode()
                + extra
                + b"\r\n"
            )
        writer.write(request)
        return cls(reader, writer)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def recv_frame(self) -> tuple[int, bytes] | None:
        """The next frame's (opcode, payload); None at end of file."""
        try:
            head = await bounded(self.reader.readexactly(2))
        except asyncio.IncompleteReadError:
            return None
        assert head[1] & 0x80 == 0, "server frames are never masked"
        n = head[1] & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await bounded(self.reader.readexactly(2)))
        elif n == 127:
            (n,) = struct.unpack("!Q", await bounded(self.reader.readexactly(8)))
        payload = await bounded(self.reader.readexactly(n))
        return head[0] & 0x0F, payload

    async def recv_close(self) -> tuple[int, str]:
        """Skip to the server's close frame; return its (code, reason)."""
        while True:
            got = await self.recv_frame()
            assert got is not None, "end of file before a close frame"
            opcode, payload = got
            if opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                return code, payload[2:].decode()

    async def at_eof(self) -> bool:
        """True once the server closed TCP (anything still unread is discarded)."""
        await bounded(self.reader.read())
        return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await bounded(self.writer.wait_closed())
        except (ConnectionError, OSError):
            pass
