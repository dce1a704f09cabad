# SPDX-License-Identifier: MIT
"""Property-based fuzzing of the server end to end (the Cython loop and the core).

Two drivers, both against a real server on a real socket:

- random frame byte sequences (valid, invalid and plain noise), cut into random
  chunks, written by a raw peer: the server never crashes and answers the next
  connection;
- random sequences of API calls on a connection (send, fragments, ping, close,
  abort), made from the handler and from other threads through
  ``call_soon_threadsafe``: nothing crashes, nothing unexpected is raised, and every
  native state of the connection is freed once it closes.

``WSFAST_FUZZ_EXAMPLES`` raises the number of examples (``make fuzz-ci`` does).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as websockets_connect

import wsfast
from wsfast._native import rust
from wsfast.server import Handler, Server

from ..gc_util import collector_off
from ..integration.server_util import Echo, RawClient, running, wait_for

EXAMPLES = int(os.environ.get("WSFAST_FUZZ_EXAMPLES", "15"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def loop_server() -> Iterator[Server]:
    """One echo server for all the examples of a test."""
    with running(Echo, max_size=1 << 16) as server:
        yield server


@pytest.fixture
def scripted_server() -> Iterator[tuple[Server, Scripted]]:
    """One scripted server for all the examples of a test, and its handler."""
    handler = Scripted()
    with running(handler) as server:
        yield server, handler


def assert_serves(server: Server) -> None:
    """The server still completes a handshake and echoes a message."""
    assert server.is_serving
    with websockets_connect(f"ws://127.0.0.1:{server.port}/") as ws:
        ws.send("still there?")
        assert ws.recv() == "still there?"


# ---- random bytes into the loop -----------------------------------------------------


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One frame, well-formed or not: any header bits, masked or not, any length field."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=64))  # plain noise
    first = draw(st.integers(0, 255))
    payload = draw(st.binary(max_size=300))
    masked = draw(st.integers(0, 9)) > 0
    n = len(payload)
    if n < 126 and draw(st.booleans()):
        head = bytes([first, (0x80 if masked else 0) | n])
    else:
        head = bytes([first, (0x80 if masked else 0) | 126]) + struct.pack("!H", n)
    key = draw(st.binary(min_size=4, max_size=4)) if masked else b""
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if masked else payload
    return head + key + body


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@FUZZ
@given(
    wire=st.lists(frames(), min_size=1, max_size=8).map(b"".join),
    cuts=st.lists(st.integers(0, 4096), max_size=6),
)
def test_server_loop_survives_random_frames_in_random_chunks(
    loop_server: Server, wire: bytes, cuts: list[int]
) -> None:
    with RawClient(loop_server.port) as raw:
        raw.handshake()
        for chunk in chunked(wire, cuts):
            try:
                raw.sock.sendall(chunk)
            except OSError:
                break  # the server failed the connection and reset it
        with contextlib.suppress(OSError):
            raw.sock.shutdown(socket.SHUT_WR)
        # The server ends the connection (close frame or not) once it sees our EOF.
        assert raw.at_eof(10.0)
    assert_serves(loop_server)


# ---- random API calls from handlers and other threads -------------------------------

ACTIONS = ["send", "send_bytes", "fragments", "ping", "close", "abort", "nothing"]


class Scripted(Handler):
    """Runs the actions named in each message: "<where>:<action>,...".

    ``where`` is "h" (in the handler) or "t" (from another thread, through the
    server's ``call_soon_threadsafe``). Unexpected exceptions are collected.
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def run(self, conn: Any, action: str) -> None:
        try:
            if action == "send":
                conn.send("reply " * 20)
            elif action == "send_bytes":
                conn.send(b"\x00\x01" * 50)
            elif action == "fragments":
                conn.send_text("frag", fin=False)
                conn.send_continuation("ment", fin=True)
            elif action == "ping":
                conn.ping(b"p")
            elif action == "close":
                conn.close(1000, "scripted")
            elif action == "abort":
                conn.abort()
        except wsfast.ConnectionClosed:
            pass  # expected once an earlier action closed the connection
        except BaseException as exc:
            self.errors.append(exc)

    def on_message(self, conn: Any, data: str | bytes) -> None:
        assert isinstance(data, str)
        if data == "done" or ":" not in data:
            # The end of a script, or assert_serves: echo.
            with contextlib.suppress(wsfast.ConnectionClosed):
                conn.send(data)
            return
        for step in data.split(","):
            where, action = step.split(":")
            if where == "h":
                self.run(conn, action)
            else:
                server = conn.server

                def later(action: str = action) -> None:
                    self.run(conn, action)

                thread = threading.Thread(target=server.call_soon_threadsafe, args=(later,))
                thread.start()
                thread.join()


@FUZZ
@given(
    script=st.lists(
        st.lists(
            st.tuples(st.sampled_from("ht"), st.sampled_from(ACTIONS)).map(":".join),
            min_size=1,
            max_size=4,
        ).map(",".join),
        min_size=1,
        max_size=4,
    ),
    compression=st.booleans(),
)
def test_random_api_calls_never_crash_or_leak(
    scripted_server: tuple[Server, Scripted], script: list[str], compression: bool
) -> None:
    server, handler = scripted_server
    wait_for(lambda: not server.connections)
    with collector_off():
        run_script(server, script, compression)
    assert not handler.errors, handler.errors
    assert_serves(server)


def run_script(server: Server, script: list[str], compression: bool) -> None:
    base = rust._live_native_states()
    with (
        contextlib.suppress(ConnectionClosed, OSError),
        websockets_connect(
            f"ws://127.0.0.1:{server.port}/",
            compression="deflate" if compression else None,
            close_timeout=2,
        ) as ws,
    ):
        for message in [*script, "done"]:
            ws.send(message)
        # Read until the "done" reply, or the end of the connection (ConnectionClosed).
        while ws.recv(timeout=10) != "done":
            pass
    wait_for(lambda: not server.connections)
    # Every native state of the connection went with it, without a garbage collection
    # (the counters cover the core and both compression states).
    wait_for(lambda: rust._live_native_states() == base)
