# SPDX-License-Identifier: MIT
"""Helpers for the server tests: a background server and a raw-socket client."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import wsfast
from wsfast.server import Handler, Server, serve

KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


class Echo(Handler):
    """Echoes every message."""

    def on_message(self, conn: Any, data: str | bytes) -> None:
        conn.send(data)


def tls_server_context(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """A server context for tests whose peer is websockets' threaded sync client.

    That client reads on a background thread while the caller writes, and CPython's
    SSLSocket does not serialise the two: when a TLS 1.3 session ticket arrives while the
    request is being written, OpenSSL's state can be corrupted and the handshake hangs
    (about 1 in 400 connections here; websockets' own server shows the same). Sending no
    tickets takes away the only post-handshake record such a client reads.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    context.num_tickets = 0
    return context


@contextlib.contextmanager
def running(handler: Any = Echo, **options: Any) -> Iterator[Server]:
    """A server on 127.0.0.1:<free port>, run in a background thread, closed on exit."""
    options.setdefault("ping_interval", None)
    server = serve(handler, "127.0.0.1", 0, **options).start()
    try:
        yield server
    finally:
        server.close(drain=1.0)
        assert not server.is_serving


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll until ``predicate()`` is true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(0.005)


def on_loop(server: Server, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Run ``fn()`` on the server's loop thread and return its result."""
    done = threading.Event()
    result: list[Any] = []
    error: list[BaseException] = []

    def call() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            error.append(exc)
        finally:
            done.set()

    server.call_soon_threadsafe(call)
    assert done.wait(timeout), "loop did not run the callback"
    if error:
        raise error[0]
    return result[0]


class RawClient:
    """A WebSocket client on a plain socket, for what well-behaved clients never do."""

    def __init__(self, port: int, timeout: float = 5.0, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = bytearray()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def request_bytes(self, path: str = "/", headers: tuple[tuple[str, str], ...] = ()) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        lines += [f"{name}: {value}" for name, value in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def read_head(self) -> bytes:
        """Read an HTTP response head; what follows stays buffered."""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed during the response head")
            self.buf += chunk
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end])
        del self.buf[:end]
        return head

    def read_all(self) -> bytes:
        """Read until the server closes the connection."""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                data = bytes(self.buf)
                self.buf.clear()
                return data
            self.buf += chunk

    def handshake(self, path: str = "/", extra: bytes = b"") -> bytes:
        self.sock.sendall(self.request_bytes(path) + extra)
        head = self.read_head()
        assert head.startswith(b"HTTP/1.1 101 "), head
        return head

    def send_frame(
        self, opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True
    ) -> None:
        frame = wsfast.Frame(opcode, payload, fin=fin)
        self.sock.sendall(frame.serialize(KEY if mask else None))

    def recv_frame(self) -> Any:
        while True:
            parsed = wsfast.Frame.parse(bytes(self.buf), mask_required=False, max_size=1 << 30)
            if parsed is not None:
                frame, consumed = parsed
                del self.buf[:consumed]
                return frame
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def recv_until_close(self) -> tuple[int, str, list[Any]]:
        """Read frames until a close frame; return its code, reason and the frames before."""
        frames = []
        while True:
            frame = self.recv_frame()
            if frame.opcode == wsfast.Opcode.CLOSE:
                payload = frame.payload
                code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                return code, payload[2:].decode(), frames
            frames.append(frame)

    def at_eof(self, timeout: float = 5.0) -> bool:
        """True if the server closes the TCP connection within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
