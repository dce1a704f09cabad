# SPDX-License-Identifier: MIT
"""The blocking client's Cython paths and its zero-copy API, over real sockets.

``recv`` builds messages from the core's event records; ``recv_view`` hands out
borrowed memoryviews, ``recv_into`` copies into the caller's buffer and ``run`` calls a
handler per message. ``send`` writes from the core's output buffer, iteration is a
compiled iterator, and ``busy_poll`` spins before blocking. Peers: the ``websockets``
sync server and ``wsfast.serve``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.sync.server import Server, ServerConnection, serve

import wsfast
from wsfast.client import connect
from wsfast.exceptions import ConnectionClosedError, ConnectionClosedOK
from wsfast.server import Handler

from .server_util import running as wsfast_running

BIG = 32 << 20


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every thread a test starts has ended when it returns."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        time.sleep(0.01)
    pytest.fail(f"leaked threads: {leaked}")


@contextmanager
def running(handler: Callable[[ServerConnection], None], **kwargs: Any) -> Iterator[str]:
    """A websockets server on 127.0.0.1 in a background thread; yields its URL."""
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("max_size", BIG)
    with serve(handler, "127.0.0.1", 0, **kwargs) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            yield url_of(server)
        finally:
            server.shutdown()
            thread.join(10)


def url_of(server: Server) -> str:
    host, port = server.socket.getsockname()[:2]
    return f"ws://{host}:{port}/"


def echo(ws: ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def flood(count: int, size: int = 64) -> Callable[[ServerConnection], None]:
    """A handler that sends ``count`` numbered text messages, then closes with 1000."""

    def handler(ws: ServerConnection) -> None:
        for i in range(count):
            ws.send(str(i).ljust(size, "."))
        ws.close()

    return handler


@pytest.fixture(scope="module", params=["deflate", None], ids=["deflate", "plain"])
def echo_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with running(echo, compression=request.param) as url:
        yield url


SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]


# ---- recv -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_recv_returns_text_and_binary_of_every_size(echo_url: str, size: int) -> None:
    binary = os.urandom(size)
    text = ("aé€😀" * (size // 10 + 1))[: max(size // 3, 0)]
    with connect(echo_url, max_size=BIG) as ws:
        # One at a time: two large messages in flight both ways would fill every
        # socket buffer (the echo server does not read while its send blocks).
        # No deadline of our own (pytest's per-test timeout catches a hang): the peer
        # deflates 16 MiB in pure Python, which takes many seconds on a busy machine.
        ws.send(binary)
        assert ws.recv() == binary
        ws.send(text)
        assert ws.recv() == text


def test_recv_keeps_order_across_batches_and_pong_reads() -> None:
    with running(flood(20_000)) as url, connect(url) as ws:
        first = ws.recv(5)
        # A pong wait reads more buffers while records of the last one are unread.
        ws.ping(b"p").wait(0.2)
        received = [first, *(ws.recv(5) for _ in range(19_999))]
        assert [int(m.rstrip(".")) for m in received] == list(range(20_000))
        with pytest.raises(ConnectionClosedOK):
            ws.recv(5)


def test_recv_many_returns_every_waiting_message_in_order() -> None:
    with running(flood(5_000)) as url, connect(url) as ws:
        received: list[str | bytes] = []
        while len(received) < 5_000:
            batch = ws.recv_many(5)
            assert batch
            received += batch
        assert [int(str(m).rstrip(".")) for m in received] == list(range(5_000))


def test_recv_reassembles_fragmented_messages(echo_url: str) -> None:
    with connect(echo_url, max_size=BIG) as ws:
        ws.send_fragments(["frag", "ment", "ed é"])
        ws.send_fragments([b"\x00" * 70_000, b"\x01" * 3])
        assert ws.recv(5) == "fragmented é"
        assert ws.recv(5) == b"\x00" * 70_000 + b"\x01" * 3


def test_recv_times_out_without_losing_a_message() -> None:
    gate = threading.Event()

    def handler(ws: ServerConnection) -> None:
        gate.wait(5)
        ws.send("late")
        ws.recv()

    with running(handler) as url, connect(url) as ws:
        for method in (ws.recv, ws.recv_view):
            with pytest.raises(TimeoutError):
                method(timeout=0.02)
        with pytest.raises(TimeoutError):
            ws.recv_into(bytearray(8), timeout=0.02)
        gate.set()
        assert ws.recv(5) == "late"


def test_pings_are_answered_during_a_flood() -> None:
    pongs: list[bool] = []

    def handler(ws: ServerConnection) -> None:
        for i in range(3_000):
            ws.send(str(i))
            if i % 1_000 == 0:
                pongs.append(ws.ping().wait(5))
        ws.close()

    with running(handler) as url, connect(url) as ws:
        assert sum(1 for _ in ws) == 3_000
    assert pongs == [True, True, True]


@pytest.mark.parametrize(("code", "ok"), [(1000, True), (1001, True), (4000, False)])
def test_close_codes_end_recv_and_run(code: int, ok: bool) -> None:
    def handler(ws: ServerConnection) -> None:
        ws.send("last")
        ws.close(code, "bye")

    with running(handler) as url:
        with connect(url) as ws:
            assert ws.recv(5) == "last"
            with pytest.raises(ConnectionClosedOK if ok else ConnectionClosedError) as info:
                ws.recv(5)
            assert (info.value.code, info.value.reason) == (code, "bye")
        with connect(url) as ws:
            seen: list[object] = []
            if ok:
                assert ws.run(seen.append) is False
            else:
                with pytest.raises(ConnectionClosedError):
                    ws.run(seen.append)
            assert seen == ["last"]


def test_recv_releases_the_gil_while_blocked() -> None:
    gate = threading.Event()

    def handler(ws: ServerConnection) -> None:
        gate.wait(5)
        ws.send("done")
        ws.recv()

    with running(handler) as url, connect(url) as ws:
        result: list[object] = []
        reader = threading.Thread(target=lambda: result.append(ws.recv(5)))
        reader.start()
        # Pure-Python work progresses while the other thread waits in recv().
        spins = 0
        deadline = time.monotonic() + 0.1
        while time.monotonic() < deadline:
            spins += 1
        gate.set()
        reader.join(5)
        assert result == ["done"]
        assert spins > 10_000


def test_fast_path_against_the_wsfast_server() -> None:
    class Burst(Handler):
        def on_message(self, conn: Any, data: str | bytes) -> None:
            for i in range(1_000):
                conn.send(f"{data}-{i}")

    with wsfast_running(Burst) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        with connect(url) as ws:
            ws.send("go")
            assert [ws.recv(5) for _ in range(1_000)] == [f"go-{i}" for i in range(1_000)]
            ws.send("again")
            views = [bytes(ws.recv_view(5)) for _ in range(1_000)]
            assert views == [f"again-{i}".encode() for i in range(1_000)]


# ---- zero-copy API ------------------------------------------------------------------


def test_recv_view_content_is_right_until_the_next_call() -> None:
    with running(flood(10_000, size=100)) as url, connect(url) as ws:
        for i in range(10_000):
            view = ws.recv_view(5)
            assert isinstance(view, memoryview)
            assert view.readonly
            # Still right after other work, as long as no receive call came between.
            time.sleep(0) if i % 1000 == 0 else None
            assert view == str(i).ljust(100, ".").encode()
        with pytest.raises(ConnectionClosedOK):
            ws.recv_view(5)


@pytest.mark.parametrize("size", [0, 1, 1000, 70_000, 2 << 20])
def test_recv_view_returns_payloads_of_every_size(echo_url: str, size: int) -> None:
    data = os.urandom(size)
    with connect(echo_url, max_size=BIG) as ws:
        ws.send(data)
        assert ws.recv_view(10) == data
        ws.send("é" * size)
        assert ws.recv_view(10) == ("é" * size).encode()


def test_recv_view_after_messages_kept_as_objects() -> None:
    # A pong wait turns waiting records into objects; recv_view still returns them.
    with running(flood(3_000)) as url, connect(url) as ws:
        ws.recv(5)
        ws.ping(b"x").wait(0.2)
        views = [bytes(ws.recv_view(5)) for _ in range(2_999)]
        assert views == [str(i).ljust(64, ".").encode() for i in range(1, 3_000)]


def test_recv_into_copies_into_the_callers_buffer(echo_url: str) -> None:
    buffer = bytearray(1 << 16)
    with connect(echo_url) as ws:
        ws.send(b"abc")
        ws.send("é")
        ws.send(b"")
        assert ws.recv_into(buffer, 5) == 3
        assert buffer[:3] == b"abc"
        assert ws.recv_into(memoryview(buffer)[10:], 5) == 2
        assert buffer[10:12] == "é".encode()
        assert ws.recv_into(buffer, 5) == 0


def test_recv_into_keeps_a_message_too_big_for_the_buffer(echo_url: str) -> None:
    with connect(echo_url) as ws:
        ws.send(b"x" * 100)
        with pytest.raises(ValueError, match="100 bytes"):
            ws.recv_into(bytearray(10), 5)
        assert ws.recv(5) == b"x" * 100
        # Also for a message already kept as an object.
        ws.send("y" * 50)
        ws.ping(b"p").wait(5)
        with pytest.raises(ValueError):
            ws.recv_into(bytearray(49), 5)
        out = bytearray(50)
        assert ws.recv_into(out, 5) == 50
        assert out == b"y" * 50


def test_run_calls_the_handler_until_it_returns_false() -> None:
    with running(flood(5_000)) as url, connect(url) as ws:
        seen: list[object] = []

        def handler(message: object) -> bool | None:
            seen.append(message)
            return False if len(seen) == 2_000 else None

        assert ws.run(handler) is True
        assert seen == [str(i).ljust(64, ".") for i in range(2_000)]
        # Unread messages stay for the next receive call.
        assert ws.recv(5) == "2000".ljust(64, ".")
        assert ws.run(lambda m: None) is False


def test_run_with_views_and_handler_errors() -> None:
    with running(flood(1_000)) as url, connect(url) as ws:
        seen: list[bytes] = []

        def handler(view: memoryview) -> None:
            assert isinstance(view, memoryview)
            seen.append(bytes(view))
            if len(seen) == 500:
                raise KeyError("stop")

        with pytest.raises(KeyError):
            ws.run(handler, view=True)
        assert ws.run(lambda v: seen.append(bytes(v)), view=True) is False
        assert seen == [str(i).ljust(64, ".").encode() for i in range(1_000)]


# ---- sending ------------------------------------------------------------------------


def test_send_waits_for_a_full_socket_buffer() -> None:
    """Sends that a full socket buffer does not take finish once the server reads."""
    gate = threading.Event()
    count, size = 400, 32 * 1024

    def handler(ws: ServerConnection) -> None:
        gate.wait(5)
        total = sum(len(ws.recv()) for _ in range(count))
        ws.send(str(total))
        ws.recv()

    with running(handler) as url, connect(url, compression=False) as ws:
        timer = threading.Timer(0.2, gate.set)
        timer.start()
        try:
            for i in range(count):
                ws.send_binary(bytes([i % 256]) * size)
        finally:
            timer.join(5)
        assert ws.recv(5) == str(count * size)


def test_send_after_close_raises_connection_closed(echo_url: str) -> None:
    ws = connect(echo_url)
    ws.close()
    with pytest.raises(ConnectionClosedOK):
        ws.send(b"x")
    with pytest.raises(ConnectionClosedOK):
        ws.send_text("x")
    with pytest.raises(ConnectionClosedOK):
        ws.send_binary(b"x")


def test_send_text_and_binary_through_the_c_path(echo_url: str) -> None:
    with connect(echo_url) as ws:
        ws.send_text("é" * 10)
        ws.send_text(b"utf-8 bytes")
        ws.send_binary(bytearray(b"\x00\x01"))
        ws.send(memoryview(b"view"))
        assert [ws.recv(5) for _ in range(4)] == ["é" * 10, "utf-8 bytes", b"\x00\x01", b"view"]


# ---- iteration ----------------------------------------------------------------------


def test_iterator_is_compiled_and_ends_at_normal_closure() -> None:
    with running(flood(1_000)) as url, connect(url) as ws:
        iterator = iter(ws)
        assert iter(iterator) is iterator
        assert type(iterator).__name__ == "MessageIterator"
        assert next(iterator) == "0".ljust(64, ".")
        assert [int(str(m).rstrip(".")) for m in iterator] == list(range(1, 1_000))
        with pytest.raises(StopIteration):
            next(iterator)
        assert list(ws) == []


# ---- busy polling ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 125, 256, 65536, 1 << 20])
def test_busy_poll_round_trips(echo_url: str, size: int) -> None:
    payload = os.urandom(size)
    with connect(echo_url, max_size=BIG, busy_poll=50) as ws:
        assert ws.busy_poll == 50
        for _ in range(20):
            ws.send(payload)
            assert ws.recv() == payload
        ws.send("text")
        assert ws.recv(5) == "text"


def test_busy_poll_against_the_wsfast_server() -> None:
    class Echo(Handler):
        def on_message(self, conn: Any, data: str | bytes) -> None:
            conn.send(data)

    with wsfast_running(Echo) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", busy_poll=1_000) as ws:
            for i in range(2_000):
                ws.send(str(i))
                assert ws.recv() == str(i)


def test_busy_poll_falls_back_to_blocking() -> None:
    """A message that comes long after the spin ended is still received."""
    gate = threading.Event()

    def handler(ws: ServerConnection) -> None:
        gate.wait(5)
        ws.send("late")
        ws.recv()

    with running(handler) as url, connect(url, busy_poll=20) as ws:
        timer = threading.Timer(0.1, gate.set)
        timer.start()
        try:
            assert ws.recv(5) == "late"
        finally:
            timer.join(5)


def test_busy_poll_spin_is_bounded_by_the_timeout() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.recv()

    with running(handler) as url, connect(url, busy_poll=1_000_000) as ws:
        for method in (ws.recv, ws.recv_view, ws.recv_many):
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                method(timeout=0.05)
            assert time.monotonic() - start < 0.5
        with pytest.raises(TimeoutError):
            ws.recv_into(bytearray(8), timeout=0)


def test_busy_poll_releases_the_gil_while_spinning() -> None:
    gate = threading.Event()

    def handler(ws: ServerConnection) -> None:
        gate.wait(5)
        ws.send("done")
        ws.recv()

    with running(handler) as url, connect(url, busy_poll=1_000_000) as ws:
        result: list[object] = []
        reader = threading.Thread(target=lambda: result.append(ws.recv(5)))
        reader.start()
        # Pure-Python work progresses while the other thread spins on recv().
        spins = 0
        deadline = time.monotonic() + 0.1
        while time.monotonic() < deadline:
            spins += 1
        gate.set()
        reader.join(5)
        assert result == ["done"]
        assert spins > 10_000


def test_busy_poll_feed_and_closing() -> None:
    with running(flood(5_000)) as url, connect(url, busy_poll=100) as ws:
        seen: list[object] = []
        assert ws.run(seen.append) is False
        assert len(seen) == 5_000
        with pytest.raises(ConnectionClosedOK):
            ws.recv()
    with running(flood(1_000)) as url, connect(url, busy_poll=True) as ws:
        assert ws.busy_poll == wsfast.config.DEFAULT_BUSY_POLL_US == 200
        assert sum(1 for _ in ws) == 1_000


def test_busy_poll_can_be_changed_on_an_open_connection(echo_url: str) -> None:
    with connect(echo_url) as ws:
        assert ws.busy_poll == 0
        ws.busy_poll = 200
        ws.send("a")
        assert ws.recv(5) == "a"
        ws.busy_poll = False
        ws.send("b")
        assert ws.recv(5) == "b"
        for bad in (-1, 1_000_001):
            with pytest.raises(ValueError, match="busy_poll"):
                ws.busy_poll = bad
        with pytest.raises(TypeError, match="busy_poll"):
            ws.busy_poll = 50e-6  # type: ignore[assignment]
        assert ws.busy_poll == 0


@pytest.mark.parametrize(
    ("bad", "error"),
    [(-1, ValueError), (1_000_001, ValueError), (50e-6, TypeError), (float("nan"), TypeError)],
)
def test_connect_rejects_a_bad_busy_poll(bad: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="busy_poll"):
        connect("ws://127.0.0.1:9/", busy_poll=bad)


def test_connect_rejects_busy_poll_with_tls() -> None:
    with pytest.raises(ValueError, match="TLS"):
        connect("wss://127.0.0.1:9/", busy_poll=50)


def test_public_names() -> None:
    assert wsfast.connect is connect
    for name in ("recv", "recv_many", "recv_view", "recv_into", "run", "send", "busy_poll"):
        assert hasattr(wsfast.ClientConnection, name)
