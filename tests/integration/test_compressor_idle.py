# SPDX-License-Identifier: MIT
"""An idle connection with context takeover gives its compressor back (compressor_idle).

The peer is websockets' client, with context takeover both ways: its inflater keeps the
window of every message the server sent, so a server that dropped its compressor must
send messages that refer to no earlier one, or they would decode wrong. The server's
sweep releases compressors unused for one to two periods; the tests wait on the live
compressor count (process-wide, see test_release.py) and never measure a duration.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import connect as websockets_connect
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as websockets_serve

import wsfast
from wsfast._native import rust
from wsfast.server import Handler

from ..gc_util import collector_off
from .server_util import running, wait_for

# Long enough to compress (well past compress_min_size), and every message repeats
# most of the previous ones: with a stale window on either side they decode wrong.
BASE = json.dumps({"user": "someone", "tags": ["alpha", "beta", "gamma"], "text": "x" * 40})


def message(i: int) -> str:
    return f"{BASE} #{i % 3} " * 8


def compressors() -> int:
    return int(rust._live_native_states()["compressors"])


def decompressors() -> int:
    return int(rust._live_native_states()["decompressors"])


@pytest.fixture
def no_gc() -> Iterator[None]:
    # A cycle collected mid-test would change the counts for unrelated reasons.
    with collector_off():
        yield


class CountingEcho(Handler):
    """Echoes, and records the live compressors right after each send (on the loop
    thread, so no sweep runs in between)."""

    def __init__(self) -> None:
        self.after_send: list[int] = []

    def on_message(self, conn: Any, data: str | bytes) -> None:
        conn.send(data)
        self.after_send.append(compressors())


def test_released_compressor_keeps_exchanging_with_websockets(no_gc: None) -> None:
    handler = CountingEcho()
    with running(handler, compression=wsfast.DeflateConfig(compressor_idle=0.02)) as server:
        base = compressors()
        with websockets_connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as ws:
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
            assert "no_context_takeover" not in ws.response.headers["Sec-WebSocket-Extensions"]
            sent = 0
            for _ in range(6):
                # A burst: the compressor is allocated for each send and keeps its
                # context between the burst's messages.
                for _ in range(20):
                    ws.send(message(sent))
                    assert ws.recv() == message(sent)
                    sent += 1
                # Idle: the sweep frees the compressor; the server's decompressor
                # keeps the window the client's next messages may refer to.
                inflaters = decompressors()
                wait_for(lambda: compressors() == base, timeout=30.0)
                assert decompressors() == inflaters
            # It came back for every send, after every release.
            assert handler.after_send == [base + 1] * sent
        wait_for(lambda: compressors() == base)


def test_compressor_idle_zero_keeps_no_compressor_between_messages(no_gc: None) -> None:
    handler = CountingEcho()
    with running(handler, compression=wsfast.DeflateConfig(compressor_idle=0)) as server:
        base = compressors()
        with websockets_connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as ws:
            # Negotiated with takeover; our side just keeps no context.
            assert "no_context_takeover" not in ws.response.headers["Sec-WebSocket-Extensions"]
            for i in range(50):
                ws.send(message(i))
                assert ws.recv() == message(i)
            assert handler.after_send == [base] * 50


def test_compressor_idle_none_never_runs_the_check() -> None:
    with running(compression=wsfast.DeflateConfig(compressor_idle=None)) as server:
        assert server._loop is not None
        assert server._loop.compressor_idle == 0.0
    with running(compression=wsfast.DeflateConfig(compressor_idle=2.5)) as server:
        assert server._loop is not None
        assert server._loop.compressor_idle == 2.5


def test_client_with_compressor_idle_zero_talks_to_a_websockets_server(no_gc: None) -> None:
    def echo(ws: ServerConnection) -> None:
        for data in ws:
            ws.send(data)

    with websockets_serve(echo, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            port = server.socket.getsockname()[1]
            config = wsfast.DeflateConfig(compressor_idle=0)
            with wsfast.connect(f"ws://127.0.0.1:{port}/", compression=config) as ws:
                assert ws.deflate_params is not None
                assert not ws.deflate_params.client_no_context_takeover
                base = compressors()
                for i in range(50):
                    ws.send(message(i))
                    # The client's compressor went back to the spare at once.
                    assert compressors() == base
                    assert ws.recv(timeout=10) == message(i)
        finally:
            server.shutdown()
            thread.join(10)
