# SPDX-License-Identifier: MIT
"""Large binary messages received straight into their bytes objects, over real sockets.

Whole binary messages of 16 KiB and more are unmasked by Rust into the ``bytes``
the handler gets, and the server loop receives the rest of such a frame directly
into it. These tests pin what that must never change: every message is its own
object with its own content, whatever the read boundaries, and the memory is
accounted for when a connection dies half way through a message.
"""

from __future__ import annotations

import gc
import os
import socket
import sys
import threading
import time
from typing import Any

import pytest
from websockets.sync.client import connect

import wsfast
from wsfast.connection import Connection
from wsfast.server import Handler

from .server_util import RawClient, running, wait_for

KEY = b"\x11\x22\x33\x44"


class Keeper(Handler):
    """Keeps every message (so reuse of its memory would show) and echoes it."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.errors: list[Exception] = []
        self.closed = threading.Event()

    def on_message(self, conn: Connection, data: str | bytes) -> None:
        self.messages.append(data)
        conn.send(data)

    def on_error(self, conn: Connection, exc: Exception) -> None:
        self.errors.append(exc)

    def on_close(self, conn: Connection, code: int, reason: str) -> None:
        self.closed.set()


def payload(n: int, seed: int) -> bytes:
    # Distinct per message, so a message overwritten by a later one is caught.
    block = bytes((i * 7 + seed) % 256 for i in range(251))
    return (block * (n // 251 + 1))[:n]


@pytest.mark.parametrize("size", [16_384, 65_536, 100_003, 1 << 20])
def test_kept_messages_keep_their_own_content(size: int) -> None:
    handler = Keeper()
    with running(handler, max_size=2 << 20) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as ws:
            sent = [payload(size, seed) for seed in range(6)]
            for data in sent:
                ws.send(data)
            for data in sent:
                assert ws.recv() == data
        wait_for(lambda: len(handler.messages) == len(sent))
    assert not handler.errors
    assert [type(m) for m in handler.messages] == [bytes] * len(sent)
    assert handler.messages == sent
    assert len({id(m) for m in handler.messages}) == len(sent)


@pytest.mark.parametrize("step", [1, 13, 4096, 70_000])
def test_a_frame_trickling_in_arrives_whole(step: int) -> None:
    # Small writes with pauses: the server reads the frame's rest in many pieces,
    # straight into the message, unmasking each piece at its own key offset.
    handler = Keeper()
    data = payload(80_001, 3)
    frame = wsfast.Frame(wsfast.Opcode.BINARY, data).serialize(KEY)
    after = wsfast.Frame(wsfast.Opcode.TEXT, b"after").serialize(KEY)
    if step == 1:
        # Byte by byte over the header and the first bytes only, then in bulk.
        chunks = [frame[i : i + 1] for i in range(40)] + [frame[40:]]
    else:
        chunks = [frame[i : i + step] for i in range(0, len(frame), step)]
    with running(handler) as server, RawClient(server.port) as raw:
        raw.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.handshake()
        for i, chunk in enumerate(chunks):
            raw.sock.sendall(chunk)
            if i % 4 == 0:
                time.sleep(0.001)
        raw.sock.sendall(after)
        echo = raw.recv_frame()
        assert (echo.opcode, echo.payload == data) == (wsfast.Opcode.BINARY, True)
        assert raw.recv_frame().payload == b"after"
    assert handler.messages == [data, "after"]


def test_back_to_back_large_frames_in_one_write() -> None:
    # Several whole frames and a partial one per read: some messages are unmasked
    # from the shared buffer, the split one is finished by direct reads.
    handler = Keeper()
    sent = [payload(n, n % 97) for n in (20_000, 70_000, 16_384, 300_000, 5, 65_536)]
    wire = b"".join(wsfast.Frame(wsfast.Opcode.BINARY, d).serialize(KEY) for d in sent)
    with running(handler) as server, RawClient(server.port) as raw:
        raw.handshake()
        raw.sock.sendall(wire)
        for data in sent:
            assert raw.recv_frame().payload == data
    assert handler.messages == sent


def test_oversized_frame_is_refused_with_1009_before_its_payload() -> None:
    handler = Keeper()
    with running(handler, max_size=100_000) as server, RawClient(server.port) as raw:
        raw.handshake()
        header = wsfast.Frame(wsfast.Opcode.BINARY, b"\0" * 100_001).serialize(KEY)[:14]
        raw.sock.sendall(header)  # only the header: the length alone fails it
        code, _, _ = raw.recv_until_close()
        assert code == 1009
    assert handler.messages == []


@pytest.mark.skipif(not hasattr(sys, "getallocatedblocks"), reason="CPython only")
def test_connections_dying_mid_message_release_the_message() -> None:
    # Half of a 1 MiB message, then the connection drops; repeated, memory must not
    # grow by a megabyte per connection (the half message is released with it).
    handler = Keeper()
    frame = wsfast.Frame(wsfast.Opcode.BINARY, payload(1 << 20, 1)).serialize(KEY)

    def one() -> None:
        with RawClient(server.port) as raw:
            raw.handshake()
            raw.sock.sendall(frame[: len(frame) // 2])
            time.sleep(0.02)

    def rss_kib() -> int:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    with running(handler, max_size=2 << 20) as server:
        for _ in range(5):
            one()
        wait_for(lambda: len(server.connections) == 0)
        gc.collect()
        before = rss_kib()
        for _ in range(40):
            one()
        wait_for(lambda: len(server.connections) == 0)
        gc.collect()
        grown = rss_kib() - before
    assert handler.messages == []
    assert grown < 20 * 1024, f"RSS grew by {grown} KiB over 40 half messages of 1 MiB"


def test_client_keeps_large_binary_messages_intact() -> None:
    # The blocking client receives into bytes objects too: messages kept across
    # later reads must not change.
    with running(max_size=2 << 20) as server:
        with wsfast.connect(f"ws://127.0.0.1:{server.port}/", max_size=2 << 20) as ws:
            sent = [payload(n, n % 13) for n in (16_384, 1 << 20, 65_536, 17, 200_000)]
            for data in sent:
                ws.send(data)
            got = [ws.recv() for _ in sent]
            ws.send(b"x" * 70_000)
            assert ws.recv() == b"x" * 70_000
    assert got == sent
    assert all(type(m) is bytes for m in got)


def test_client_recv_view_of_a_large_message_owns_its_memory() -> None:
    # A large uncompressed binary message is already its own bytes object: recv_view
    # returns a view of it, which stays valid (and unchanged) after later receives.
    with running(max_size=2 << 20) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        with wsfast.connect(url, max_size=2 << 20, compression=False) as ws:
            first = payload(1 << 20, 5)
            ws.send(first)
            view = ws.recv_view()
            assert view.readonly
            for seed in range(3):
                ws.send(payload(1 << 20, seed))
                assert ws.recv() == payload(1 << 20, seed)
            assert view == first
