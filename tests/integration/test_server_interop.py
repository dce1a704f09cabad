# SPDX-License-Identifier: MIT
"""Our server against the `websockets` client: sizes, fragmentation, permessage-deflate."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect as async_connect
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.sync.client import connect

import wsfast
from wsfast._native import rust
from wsfast.server import Server

from .server_util import RawClient, running

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20]
MAX = 32 << 20


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running(max_size=MAX) as server:
        yield server


def uri(server: Server) -> str:
    return f"ws://127.0.0.1:{server.port}/"


def payload(size: int, kind: str) -> str | bytes:
    if kind == "text":
        # Multi-byte characters so UTF-8 validation and splitting are exercised.
        text = ("wsfast é€𝄞 " * (size // 16 + 1)).encode()[:size]
        return text.decode("utf-8", errors="ignore")
    return os.urandom(size)


@pytest.mark.parametrize("compression", [None, "deflate"])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_messages_of_every_size_round_trip(
    server: Server, compression: str | None, kind: str
) -> None:
    with connect(uri(server), compression=compression, max_size=None) as ws:
        negotiated = [e.name for e in ws.protocol.extensions]
        assert negotiated == ([] if compression is None else ["permessage-deflate"])
        for size in SIZES:
            message = payload(size, kind)
            ws.send(message)
            assert ws.recv(timeout=10) == message, size


@pytest.mark.slow
@pytest.mark.parametrize("compression", [None, "deflate"])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_16_mib_messages_round_trip(server: Server, compression: str | None, kind: str) -> None:
    message = payload(16 << 20, kind)
    with connect(uri(server), compression=compression, max_size=None) as ws:
        ws.send(message)
        assert ws.recv(timeout=30) == message


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_fragmented_messages_are_reassembled(server: Server, compression: str | None) -> None:
    with connect(uri(server), compression=compression, max_size=None) as ws:
        ws.send(["frag", "mén", "", "ted"])
        assert ws.recv() == "fragménted"
        chunks = [os.urandom(n) for n in (1, 0, 70000, 125, 3)]
        ws.send(chunks)
        assert ws.recv() == b"".join(chunks)
        # A text message whose multi-byte characters straddle the fragment boundaries.
        raw = "€𝄞".encode()
        ws.send([raw[:1], raw[1:4], raw[4:]])  # bytes fragments: binary message
        assert ws.recv() == raw


def test_control_frames_interleaved_with_fragments() -> None:
    with running() as server, RawClient(server.port) as raw:
        raw.handshake()
        raw.send_frame(wsfast.Opcode.TEXT, "é".encode()[:1], fin=False)
        raw.send_frame(wsfast.Opcode.PING, b"mid")
        raw.send_frame(wsfast.Opcode.CONTINUATION, "é".encode()[1:], fin=True)
        pong = raw.recv_frame()
        assert (pong.opcode, pong.payload) == (wsfast.Opcode.PONG, b"mid")
        echo = raw.recv_frame()
        assert (echo.opcode, echo.payload) == (wsfast.Opcode.TEXT, "é".encode())


DEFLATE_COMBOS = list(itertools.product([False, True], [False, True], [None, 10], [None, 9]))


@pytest.mark.parametrize(
    ("server_no_context", "client_no_context", "server_bits", "client_bits"), DEFLATE_COMBOS
)
def test_deflate_parameters_offered_by_the_client(
    server: Server,
    server_no_context: bool,
    client_no_context: bool,
    server_bits: int | None,
    client_bits: int | None,
) -> None:
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=server_no_context,
        client_no_context_takeover=client_no_context,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )
    with connect(uri(server), extensions=[factory], compression=None, max_size=None) as ws:
        [ext] = ws.protocol.extensions
        assert isinstance(ext, PerMessageDeflate)
        assert ext.remote_no_context_takeover == server_no_context
        assert ext.local_no_context_takeover == client_no_context
        assert ext.remote_max_window_bits == (server_bits or 15)
        assert ext.local_max_window_bits == (client_bits or 15)
        repeated = "compress me " * 5000
        for message in [repeated, repeated, b"\x00" * 100_000, os.urandom(3000), "", "x"]:
            ws.send(message)
            assert ws.recv(timeout=10) == message


SERVER_CONFIGS: list[dict[str, Any]] = [
    {"server_no_context_takeover": True},
    {"client_no_context_takeover": True},
    {"server_max_window_bits": 11},
    {"client_max_window_bits": 12},
    {"server_no_context_takeover": True, "client_no_context_takeover": True, "level": 1},
]


@pytest.mark.parametrize("options", SERVER_CONFIGS, ids=lambda o: ",".join(o))
def test_deflate_parameters_required_by_the_server(options: dict[str, Any]) -> None:
    config = rust.DeflateConfig(**options)
    with (
        running(compression=config) as server,
        connect(uri(server), compression="deflate", max_size=None) as ws,
    ):
        [ext] = ws.protocol.extensions
        assert isinstance(ext, PerMessageDeflate)
        assert ext.remote_no_context_takeover == options.get("server_no_context_takeover", False)
        assert ext.local_no_context_takeover == options.get("client_no_context_takeover", False)
        assert ext.remote_max_window_bits == options.get("server_max_window_bits", 15)
        assert ext.local_max_window_bits == options.get("client_max_window_bits", 15)
        repeated = "again and again " * 4000
        for message in [repeated, repeated, os.urandom(70000), b""]:
            ws.send(message)
            assert ws.recv(timeout=10) == message


def test_compression_disabled_declines_the_offer() -> None:
    with (
        running(compression=False) as server,
        connect(uri(server), compression="deflate") as ws,
    ):
        assert ws.protocol.extensions == []
        ws.send("plain")
        assert ws.recv() == "plain"


def test_many_concurrent_asyncio_clients(server: Server) -> None:
    async def client(index: int) -> int:
        async with async_connect(uri(server), compression="deflate" if index % 2 else None) as ws:
            for i in range(50):
                message = f"{index}:{i}" if i % 2 else os.urandom(i * 31)
                await ws.send(message)
                assert await ws.recv() == message
        return index

    async def main() -> list[int]:
        return await asyncio.gather(*(client(i) for i in range(20)))

    assert asyncio.run(main()) == list(range(20))
