# SPDX-License-Identifier: MIT
"""Faulty handlers and peers over real sockets; the server keeps serving after each.

Already covered elsewhere (tests/integration/test_server.py): a handler that raises
(1011), an exception in on_open, an incomplete request head dropped at the
handshake timeout, a plaintext client on a TLS port.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from websockets.sync.client import connect

import wsfast
from wsfast.connection import Connection
from wsfast.server import Handler

from .server_util import RawClient, running, wait_for


class Faulty(Handler):
    """Echoes; "sleep" blocks the loop, "close" closes from inside the callback."""

    def __init__(self) -> None:
        self.closes: list[tuple[int, str]] = []
        self.messages: list[str | bytes] = []

    def on_open(self, conn: Connection) -> None:
        assert conn.request is not None
        if conn.request.path == "/close-on-open":
            conn.close(4000, "not today")

    def on_message(self, conn: Connection, data: str | bytes) -> None:
        self.messages.append(data)
        if data == "sleep":
            time.sleep(0.5)
        elif data == "close":
            conn.close(4001, "bye")
            return
        conn.send(data)

    def on_close(self, conn: Connection, code: int, reason: str) -> None:
        self.closes.append((code, reason))


def still_serving(server: Any) -> None:
    with connect(f"ws://127.0.0.1:{server.port}/", open_timeout=30) as ws:
        ws.send("alive?")
        assert ws.recv(timeout=30) == "alive?"


def test_a_handler_that_blocks_delays_but_loses_nothing() -> None:
    with running(Faulty()) as server, RawClient(server.port, timeout=30) as other:
        other.handshake()
        with RawClient(server.port, timeout=30) as raw:
            raw.handshake()
            raw.send_frame(wsfast.Opcode.TEXT, b"sleep")
            # Sent while the loop is (probably) blocked in the handler: queued, not lost.
            other.send_frame(wsfast.Opcode.TEXT, b"meanwhile")
            assert raw.recv_frame().payload == b"sleep"
            assert other.recv_frame().payload == b"meanwhile"
        still_serving(server)


def test_a_handler_that_closes_its_connection_from_inside_a_callback() -> None:
    handler = Faulty()
    with running(handler) as server:
        with RawClient(server.port) as raw:
            raw.handshake()
            raw.send_frame(wsfast.Opcode.TEXT, b"close")
            code, reason, frames = raw.recv_until_close()
            assert (code, reason, frames) == (4001, "bye", [])
            raw.send_frame(wsfast.Opcode.CLOSE, b"\x0f\xa1")
            assert raw.at_eof(10.0)
        with RawClient(server.port) as raw:
            raw.handshake("/close-on-open")
            code, reason, _ = raw.recv_until_close()
            assert (code, reason) == (4000, "not today")
        still_serving(server)
        wait_for(lambda: len(handler.closes) >= 2, timeout=30)
        assert handler.closes[0] == (4001, "")  # the code our close echo carried


def test_a_client_that_disconnects_mid_frame() -> None:
    handler = Faulty()
    with running(handler) as server:
        with RawClient(server.port) as raw:
            raw.handshake()
            frame = wsfast.Frame(wsfast.Opcode.BINARY, b"x" * 100_000).serialize(b"abcd")
            raw.sock.sendall(frame[: len(frame) // 2])
        wait_for(lambda: handler.closes == [(1006, "")], timeout=30)
        assert handler.messages == []
        still_serving(server)


def test_a_client_that_disconnects_mid_handshake() -> None:
    with running(Faulty()) as server:
        for cut in (1, 20, 60):
            with RawClient(server.port) as raw:
                raw.sock.sendall(raw.request_bytes()[:cut])
        with RawClient(server.port) as raw:
            # And one that resets the connection instead of closing it.
            raw.sock.sendall(raw.request_bytes()[:30])
            raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
        still_serving(server)
        wait_for(lambda: not server._loop.transports, timeout=30)


def test_a_peer_that_sends_after_its_close_frame_is_not_heard() -> None:
    handler = Faulty()
    with running(handler) as server:
        with RawClient(server.port) as raw:
            raw.handshake()
            raw.send_frame(wsfast.Opcode.CLOSE, b"\x03\xe8")
            raw.send_frame(wsfast.Opcode.TEXT, b"after close")
            code, _, frames = raw.recv_until_close()
            assert (code, frames) == (1000, [])
            assert raw.at_eof(10.0)
        wait_for(lambda: handler.closes == [(1000, "")], timeout=30)
        assert handler.messages == []
        still_serving(server)


def test_a_client_that_half_closes_gets_its_replies_then_eof() -> None:
    handler = Faulty()
    with running(handler) as server:
        with RawClient(server.port) as raw:
            raw.handshake()
            raw.send_frame(wsfast.Opcode.TEXT, b"last words")
            raw.sock.shutdown(socket.SHUT_WR)
            assert raw.recv_frame().payload == b"last words"
            assert raw.at_eof(10.0)
        wait_for(lambda: handler.closes == [(1006, "")], timeout=30)
        still_serving(server)


def test_many_faulty_clients_at_once_leave_the_server_serving() -> None:
    with running(Faulty()) as server:

        def misbehave(i: int) -> None:
            with RawClient(server.port, timeout=30) as raw:
                if i % 3 == 0:
                    raw.sock.sendall(raw.request_bytes()[:40])
                    return
                raw.handshake()
                if i % 3 == 1:
                    raw.sock.sendall(b"\x82\xfe\x10\x00abcd")  # mid-frame
                else:
                    raw.send_frame(wsfast.Opcode.TEXT, b"x")
                    raw.sock.shutdown(socket.SHUT_WR)

        threads = [threading.Thread(target=misbehave, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        still_serving(server)
