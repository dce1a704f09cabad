# SPDX-License-Identifier: MIT
"""Test peers for the client's keepalive, timeout, reconnect and proxy tests.

* :class:`ScriptedPeer`: a raw TCP server on 127.0.0.1 that plays one script per
  connection: a server that never answers, that answers the handshake and then
  goes silent, that answers HTTP 403 or 503, or a minimal live WebSocket server.
* :class:`ConnectProxy`: an HTTP CONNECT proxy (asyncio streams, own thread).
* :class:`Socks5Proxy`: a SOCKS5 proxy (RFC 1928, RFC 1929 password auth), likewise.

All of them are real peers on real sockets, with one thread (or loop thread) each,
stopped and joined by ``close()``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import socket
import ssl as ssl_module
import struct
import threading
from collections.abc import Awaitable, Callable
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_head(sock: socket.socket) -> bytes:
    """Read an HTTP request head (returns b"" if the client went away first)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return b""
        data += chunk
    return data


def accept_response(head: bytes) -> bytes:
    """The 101 response to a WebSocket upgrade request."""
    key = b""
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """Read one masked client frame: (opcode, unmasked payload)."""
    b0, b1 = recv_exactly(sock, 2)
    length = b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", recv_exactly(sock, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", recv_exactly(sock, 8))
    mask = recv_exactly(sock, 4)
    masked = recv_exactly(sock, length)
    # Unmask as one big integer: fast enough for megabytes.
    key = (mask * (length // 4 + 1))[:length]
    payload = (int.from_bytes(masked, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
    return b0 & 0x0F, payload


def frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked server frame (payload under 126 bytes)."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, len(payload)]) + payload


class ScriptedPeer:
    """A raw TCP server on 127.0.0.1 playing ``scripts[i]`` on its i-th connection.

    The last script repeats. Scripts:

    * ``"silent"``: never answer anything (not even the handshake).
    * ``"drop"``: close the connection at once.
    * ``"open-silent"``: answer the handshake, then never send anything again.
    * ``"open-live"``: answer the handshake, then answer pings (counted in
      ``pings``), echo text messages and answer a close frame.
    * ``"no-close"``: like ``"open-live"``, but ignore close frames.
    * ``"open-stalled"``: answer the handshake, read nothing until ``release`` is
      set, then play ``"open-live"``.
    * ``"403"``, ``"503"``: answer with that HTTP status and close.

    Attributes:
        port: the listening port.
        url: ``ws://127.0.0.1:<port>/``.
        accepted: how many connections were accepted so far.
        pings: how many pings the ``"open-live"`` connections answered.
    """

    def __init__(
        self, *scripts: str, port: int = 0, ssl: ssl_module.SSLContext | None = None
    ) -> None:
        self.scripts = scripts
        self.ssl = ssl
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.05)  # a tick, to notice close()
        self.port: int = self.listener.getsockname()[1]
        self.url = f"{'ws' if ssl is None else 'wss'}://127.0.0.1:{self.port}/"
        self.accepted = 0
        self.pings = 0
        self.changed = threading.Condition()
        self.release = threading.Event()
        self._stopping = False
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept_loop)
        self._thread.start()

    def wait_accepted(self, n: int, timeout: float = 30.0) -> None:
        """Wait until ``n`` connections were accepted (fails after ``timeout``)."""
        with self.changed:
            assert self.changed.wait_for(lambda: self.accepted >= n, timeout)

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            script = self.scripts[min(self.accepted, len(self.scripts) - 1)]
            self._socks.append(sock)
            # Count before serving, so that a client served already is counted.
            with self.changed:
                self.accepted += 1
                self.changed.notify_all()
            thread = threading.Thread(target=self._serve, args=(sock, script))
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, script: str) -> None:
        try:
            if self.ssl is not None:
                sock = self.ssl.wrap_socket(sock, server_side=True)
                self._socks.append(sock)
            if script == "drop":
                return
            head = read_head(sock)
            if not head or script == "silent":
                while sock.recv(65536):
                    pass
                return
            if script in ("403", "503"):
                sock.sendall(f"HTTP/1.1 {script} Nope\r\nContent-Length: 0\r\n\r\n".encode())
                return
            sock.sendall(accept_response(head))
            if script == "open-silent":
                while sock.recv(65536):
                    pass
                return
            if script == "open-stalled":
                self.release.wait(60)
            self._live(sock, answer_close=script != "no-close")
        except (OSError, EOFError, ValueError):
            pass
        finally:
            sock.close()

    def _live(self, sock: socket.socket, *, answer_close: bool) -> None:
        while True:
            opcode, payload = read_frame(sock)
            if opcode == 0x9:
                sock.sendall(frame(0xA, payload))
                with self.changed:
                    self.pings += 1
                    self.changed.notify_all()
            elif opcode == 0x1:
                sock.sendall(frame(0x1, payload))
            elif opcode == 0x8 and answer_close:
                sock.sendall(frame(0x8, payload[:2]))
                return

    def close(self) -> None:
        """Stop listening, end every connection and join every thread."""
        self._stopping = True
        self._thread.join(10)
        self.listener.close()
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(10)

    def __enter__(self) -> ScriptedPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LoopThread:
    """An asyncio server running on its own loop in a background thread."""

    def __init__(
        self, handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ):
        self._handle = handle
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),))
        self._thread.start()
        assert self._ready.wait(10)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self._handle(reader, writer)
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()
                tasks.discard(task)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _splice(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
) -> None:
    """Connect to ``host:port`` and copy bytes both ways until either side ends."""
    up_reader, up_writer = await asyncio.open_connection(host, port)
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


class ConnectProxy(_LoopThread):
    """An HTTP CONNECT proxy on 127.0.0.1.

    Args:
        auth: ``"user:password"`` that ``Proxy-Authorization: Basic`` must carry
            (else 407), or None for no authentication.
        status: answer every CONNECT with this status instead of tunnelling.

    Attributes:
        requests: the request heads received, decoded.
        url: ``http://127.0.0.1:<port>``.
    """

    def __init__(self, *, auth: str | None = None, status: int | None = None) -> None:
        self.auth = auth
        self.status = status
        self.requests: list[str] = []
        super().__init__(self._serve)
        self.url = f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        self.requests.append(head)
        method, target, _ = head.split("\r\n", 1)[0].split(" ")
        expected = None
        if self.auth is not None:
            expected = "basic " + base64.b64encode(self.auth.encode()).decode().lower()
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:] if line)
        }
        if method != "CONNECT":
            status = 405
        elif self.status is not None:
            status = self.status
        elif expected is not None and headers.get("proxy-authorization", "").lower() != expected:
            status = 407
        else:
            status = 200
        if status != 200:
            writer.write(f"HTTP/1.1 {status} No\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            return
        host, _, port = target.rpartition(":")
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await _splice(reader, writer, host.strip("[]"), int(port))


class Socks5Proxy(_LoopThread):
    """A SOCKS5 proxy on 127.0.0.1 (CONNECT only; RFC 1928 and RFC 1929).

    Args:
        auth: ``(user, password)`` to require, or None for no authentication.

    Attributes:
        targets: the ``(host, port)`` of each CONNECT, as the client sent them
            (a name for socks5h://, an address for socks5://).
        url: ``socks5://127.0.0.1:<port>``.
    """

    def __init__(self, *, auth: tuple[str, str] | None = None) -> None:
        self.auth = auth
        self.targets: list[tuple[str, int]] = []
        super().__init__(self._serve)
        self.url = f"socks5://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        assert version == 5
        wanted = 0x02 if self.auth is not None else 0x00
        if wanted not in methods:
            writer.write(b"\x05\xff")
            return
        writer.write(bytes([5, wanted]))
        if self.auth is not None:
            _, n = await reader.readexactly(2)
            user = (await reader.readexactly(n)).decode()
            (n,) = await reader.readexactly(1)
            password = (await reader.readexactly(n)).decode()
            ok = (user, password) == self.auth
            writer.write(b"\x01\x00" if ok else b"\x01\x01")
            if not ok:
                return
        _, command, _, kind = await reader.readexactly(4)
        host: Any
        if kind == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif kind == 4:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        else:
            (n,) = await reader.readexactly(1)
            host = (await reader.readexactly(n)).decode()
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        self.targets.append((host, port))
        if command != 1:
            writer.write(b"\x05\x07\x00\x01" + bytes(6))
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.write(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
            return
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
