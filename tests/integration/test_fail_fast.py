# SPDX-License-Identifier: MIT
"""Fail-fast delivery: a valid message read together with a protocol violation.

The message is delivered (and, on the server, answered) before the connection fails,
on every front end: the epoll server, the asyncio server, the blocking client and the
asyncio client. Peers are raw sockets that write the exact bytes, with the message and
the violation in one write (one read on the other side) or in two.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import wsfast
import wsfast.asyncio
from wsfast.exceptions import ConnectionClosedError

from .server_util import KEY, RawClient, running, wait_for

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    return wsfast.Frame(opcode, payload, fin=fin).serialize(KEY if mask else None)


def violations(*, mask: bool) -> dict[str, tuple[bytes, int]]:
    """Each kind of violation, as a peer that masks (client) or not (server) sends it."""
    key = b"\x01\x02\x03\x04" if mask else b""
    mask_bit = 0x80 if mask else 0
    return {
        "rsv2": (bytes([0xA1, mask_bit]) + key, 1002),
        "rsv1 without deflate": (bytes([0xC1, mask_bit]) + key, 1002),
        "reserved data opcode": (bytes([0x83, mask_bit]) + key, 1002),
        "reserved control opcode": (bytes([0x8B, mask_bit]) + key, 1002),
        "fragmented ping": (frame(wsfast.Opcode.PING, b"", fin=False, mask=mask), 1002),
        "ping too long": (frame(wsfast.Opcode.PING, b"p" * 126, mask=mask), 1002),
        "new message inside a fragmented one": (
            frame(wsfast.Opcode.TEXT, b"a", fin=False, mask=mask)
            + frame(wsfast.Opcode.PING, b"ok", mask=mask)
            + frame(wsfast.Opcode.TEXT, b"b", mask=mask),
            1002,
        ),
        "continuation without a message": (
            frame(wsfast.Opcode.CONTINUATION, b"x", mask=mask),
            1002,
        ),
        "wrong masking": (frame(wsfast.Opcode.TEXT, b"x", mask=not mask), 1002),
        "invalid utf-8": (frame(wsfast.Opcode.TEXT, b"\xc3\x28", mask=mask), 1007),
        "invalid close code": (frame(wsfast.Opcode.CLOSE, struct.pack("!H", 999), mask=mask), 1002),
    }


CLIENT_VIOLATIONS = violations(mask=True)
SERVER_VIOLATIONS = violations(mask=False)
SPLITS = ["one write", "two writes"]


def send_message_then(sock: socket.socket, message: bytes, violation: bytes, split: str) -> None:
    if split == "one write":
        sock.sendall(message + violation)
    else:
        sock.sendall(message)
        sock.sendall(violation)


def echo_then_close(raw: RawClient) -> tuple[list[Any], int]:
    code, _, frames = raw.recv_until_close()
    return frames, code


# ---- servers: the echo reply comes before the close frame -------------------------


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("kind", sorted(CLIENT_VIOLATIONS))
def test_server_answers_a_message_before_failing_on_a_violation(kind: str, split: str) -> None:
    violation, code = CLIENT_VIOLATIONS[kind]
    with running() as server, RawClient(server.port) as raw:
        raw.handshake()
        send_message_then(raw.sock, frame(wsfast.Opcode.TEXT, b"hello"), violation, split)
        frames, got = echo_then_close(raw)
        data = [f for f in frames if f.opcode != wsfast.Opcode.PONG]
        assert [(f.opcode, f.payload) for f in data] == [(wsfast.Opcode.TEXT, b"hello")]
        assert got == code
        assert raw.at_eof()


@contextlib.contextmanager
def asyncio_server(received: list[Any]) -> Iterator[int]:
    """The asyncio server (wsfast.asyncio.serve) echoing, on its own thread's loop."""
    ready = threading.Event()
    stop: list[Any] = []
    port: list[int] = []

    async def echo(ws: Any) -> None:
        with contextlib.suppress(wsfast.ConnectionClosed):
            async for message in ws:
                received.append(message)
                await ws.send(message)

    async def main() -> None:
        async with wsfast.asyncio.serve(echo, "127.0.0.1", 0) as server:
            port.append(server.sockets[0].getsockname()[1])
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            stop.append(lambda: loop.call_soon_threadsafe(done.set))
            ready.set()
            await done.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield port[0]
    finally:
        stop[0]()
        thread.join(10)


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("kind", ["rsv2", "reserved data opcode", "invalid utf-8"])
def test_asyncio_server_delivers_a_message_before_failing_on_a_violation(
    kind: str, split: str
) -> None:
    violation, code = CLIENT_VIOLATIONS[kind]
    received: list[Any] = []
    with asyncio_server(received) as port:
        with RawClient(port) as raw:
            raw.handshake()
            send_message_then(raw.sock, frame(wsfast.Opcode.TEXT, b"hello"), violation, split)
            _, got = echo_then_close(raw)
            assert got == code
        # The coroutine handler runs after the read that failed the connection, so
        # its reply may come too late to be sent; the message itself must arrive.
        wait_for(lambda: received)
    assert received == ["hello"]


# ---- clients: recv() returns the message, the next recv() raises -------------------


@contextlib.contextmanager
def raw_server(payload: bytes, split: str) -> Iterator[int]:
    """A TCP server that accepts one WebSocket handshake, then writes ``payload``.

    ``payload`` is the message plus the violation; with "two writes" the first frame
    goes alone. Then it waits for the client's close frame and closes TCP.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            message = frame(wsfast.Opcode.TEXT, b"hello", mask=False)
            assert payload.startswith(message)
            send_message_then(conn, message, payload[len(message) :], split)
            conn.settimeout(10)
            with contextlib.suppress(OSError):
                conn.recv(4096)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(10)


def server_payload(kind: str) -> tuple[bytes, int]:
    violation, code = SERVER_VIOLATIONS[kind]
    return frame(wsfast.Opcode.TEXT, b"hello", mask=False) + violation, code


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("kind", sorted(SERVER_VIOLATIONS))
def test_client_receives_a_message_before_failing_on_a_violation(kind: str, split: str) -> None:
    payload, code = server_payload(kind)
    with raw_server(payload, split) as port:
        with wsfast.connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
            assert ws.recv(timeout=5) == "hello"
            with pytest.raises(ConnectionClosedError) as info:
                ws.recv(timeout=5)
        assert info.value.sent_code == code


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("kind", sorted(SERVER_VIOLATIONS))
def test_asyncio_client_receives_a_message_before_failing_on_a_violation(
    kind: str, split: str
) -> None:
    payload, code = server_payload(kind)

    async def main(port: int) -> None:
        async with wsfast.asyncio.connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
            assert await asyncio.wait_for(ws.recv(), 5) == "hello"
            with pytest.raises(ConnectionClosedError) as info:
                await asyncio.wait_for(ws.recv(), 5)
            assert info.value.sent_code == code

    with raw_server(payload, split) as port:
        asyncio.run(main(port))
