# SPDX-License-Identifier: MIT
"""The epoll server over real sockets: routing, handshake, HTTP, flow control, timers, TLS, CLI."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

import wsfast
from wsfast.connection import Connection
from wsfast.exceptions import ConnectionClosed
from wsfast.server import App, Handler, HandshakeResponse, Request, serve

from .server_util import Echo, RawClient, on_loop, running, tls_server_context, wait_for


class Recorder(Handler):
    """Echoes, and records every callback."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.conns: list[Connection] = []
        self.closed = threading.Event()

    def on_open(self, conn: Connection) -> None:
        self.conns.append(conn)
        self.events.append(("open",))

    def on_message(self, conn: Connection, data: str | bytes) -> None:
        self.events.append(("message", data))
        if data == "boom":
            raise RuntimeError("handler exploded")
        conn.send(data)

    def on_ping(self, conn: Connection, data: bytes) -> None:
        self.events.append(("ping", data))

    def on_pong(self, conn: Connection, data: bytes) -> None:
        self.events.append(("pong", data))

    def on_close(self, conn: Connection, code: int, reason: str) -> None:
        self.events.append(("close", code, reason))
        self.closed.set()

    def on_error(self, conn: Connection, exc: Exception) -> None:
        self.events.append(("error", exc))

    def on_drain(self, conn: Connection) -> None:
        self.events.append(("drain",))


def uri(server: Any, path: str = "/") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def http_get(port: int, path: str, headers: str = "") -> tuple[int, bytes]:
    with RawClient(port) as raw:
        raw.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        response = raw.read_all()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


# ---- messages and connections ---------------------------------------------------------


def test_server_echoes_text_and_binary() -> None:
    with running() as server, connect(uri(server)) as ws:
        ws.send("héllo")
        assert ws.recv() == "héllo"
        ws.send(b"\x00\xff" * 1000)
        assert ws.recv() == b"\x00\xff" * 1000


@pytest.mark.parametrize("busy_poll", [True, 50])
def test_busy_poll_server_echoes_and_runs_timers(busy_poll: bool | int) -> None:
    with running(busy_poll=busy_poll) as server, connect(uri(server)) as ws:
        assert server._loop.busy_poll_us == (200 if busy_poll is True else busy_poll)
        fired = threading.Event()
        server.call_later(0.01, fired.set)
        for size in (1, 70_000, 1 << 20):
            ws.send(b"x" * size)
            assert ws.recv() == b"x" * size
        assert fired.wait(2.0)


def test_busy_poll_rejects_a_negative_budget() -> None:
    with pytest.raises(ValueError, match="busy_poll"):
        serve(Echo, port=0, busy_poll=-1)


def test_busy_poll_refuses_seconds_as_a_float_like_the_client() -> None:
    # 50e-6 meant as seconds would silently become 0 microseconds if truncated.
    with pytest.raises(TypeError, match="busy_poll"):
        serve(Echo, port=0, busy_poll=50e-6)  # type: ignore[arg-type]


def test_large_messages_from_many_connections_are_echoed_in_order() -> None:
    # Replies are flushed right after each read, and large reads give their
    # buffers back: interleave big and small messages over several connections.
    with running(max_size=4 << 20) as server, contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(uri(server), max_size=None)) for _ in range(4)]
        sizes = [5, 300_000, 64, 1 << 20, 70_000, 0]
        for ws in clients:
            for size in sizes:
                ws.send(bytes([size % 251]) * size)
        for ws in clients:
            for size in sizes:
                assert ws.recv() == bytes([size % 251]) * size


def test_connection_exposes_request_and_user_data() -> None:
    handler = Recorder()
    with (
        running(handler, subprotocols=["chat"]) as server,
        connect(
            uri(server, "/room?id=7"),
            subprotocols=["chat"],
            additional_headers={"X-Token": "abc"},
        ) as ws,
    ):
        ws.send("x")
        assert ws.recv() == "x"
        conn = handler.conns[0]
        assert conn.path == "/room"
        assert conn.query == "id=7"
        assert conn.request.get("x-token") == "abc"
        assert ("X-Token", "abc") in conn.headers
        assert conn.subprotocol == "chat" == ws.subprotocol
        assert conn.extensions is not None and conn.extensions.startswith("permessage-deflate")
        host, port = conn.remote_address or ("", 0)
        assert host == "127.0.0.1" and port == ws.socket.getsockname()[1]
        assert conn.state is wsfast.State.OPEN
        conn.data["user"] = "ann"
        assert conn.data == {"user": "ann"}
        assert conn in server.connections
    handler.closed.wait(5)
    assert conn.state is wsfast.State.CLOSED
    assert ("close", 1000, "") in handler.events
    assert conn not in server.connections


def test_sending_on_a_closed_connection_raises_connection_closed() -> None:
    handler = Recorder()
    with running(handler) as server:
        with connect(uri(server)) as ws:
            ws.send("x")
            ws.recv()
        assert handler.closed.wait(5)
        conn = handler.conns[0]
        with pytest.raises(ConnectionClosed) as info:
            on_loop(server, lambda: conn.send("late"))
        assert info.value.code == 1000


@pytest.mark.parametrize(
    ("payload", "ok"),
    [(b"", True), (b"\x03\xe8", True), (b"\x03\xe9", True), (b"\x0f\xa0", False)],
)
def test_connection_judges_its_closure_by_the_rule_the_clients_use(
    payload: bytes, ok: bool
) -> None:
    # Close frames both ways with 1000, 1001 or 1005 (no code) are a normal closure.
    judged: list[wsfast.ConnectionClosed] = []

    class Judge(Echo):
        def on_close(self, conn: Connection, code: int, reason: str) -> None:
            judged.append(conn._closed_error())

    with running(Judge()) as server, RawClient(server.port) as raw:
        raw.handshake()
        raw.send_frame(wsfast.Opcode.CLOSE, payload)
        raw.recv_until_close()
        assert raw.at_eof()
        wait_for(lambda: judged)
    expected = wsfast.ConnectionClosedOK if ok else wsfast.ConnectionClosedError
    assert type(judged[0]) is expected


def test_request_head_and_first_frame_in_one_packet_are_both_handled() -> None:
    with running() as server, RawClient(server.port) as raw:
        frame = wsfast.Frame(wsfast.Opcode.TEXT, b"early").serialize(b"abcd")
        raw.handshake("/", extra=frame)
        reply = raw.recv_frame()
        assert (reply.opcode, reply.payload) == (wsfast.Opcode.TEXT, b"early")


def test_replies_to_messages_read_together_with_the_close_are_not_handler_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = Recorder()
    with caplog.at_level(logging.ERROR, logger="wsfast.server"), running(handler) as server:
        with RawClient(server.port) as raw:
            raw.handshake()
            key = b"abcd"
            burst = b"".join(
                wsfast.Frame(wsfast.Opcode.TEXT, f"m{i}".encode()).serialize(key) for i in range(5)
            )
            close = wsfast.Frame(wsfast.Opcode.CLOSE, (1000).to_bytes(2, "big")).serialize(key)
            raw.sock.sendall(burst + close)  # one write: one read on the server
            code, _, _ = raw.recv_until_close()
            assert code == 1000
        assert handler.closed.wait(5)
    # Every message reached the handler, then on_close; the replies that could not be
    # sent after the close (RFC 6455 5.5.1) are neither errors nor logged.
    assert [e[1] for e in handler.events if e[0] == "message"] == [f"m{i}" for i in range(5)]
    assert handler.events[-1] == ("close", 1000, "")
    assert not [e for e in handler.events if e[0] == "error"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_server_sends_fragmented_messages() -> None:
    class Fragmenter(Handler):
        def on_message(self, conn: Connection, data: str | bytes) -> None:
            conn.send_text("frag", fin=False)
            conn.send_continuation("men", fin=False)
            conn.send_continuation("ted", fin=True)

    with running(Fragmenter()) as server, connect(uri(server)) as ws:
        ws.send("go")
        assert ws.recv() == "fragmented"


def test_unmasked_client_frame_fails_with_1002() -> None:
    with running() as server, RawClient(server.port) as raw:
        raw.handshake()
        raw.send_frame(wsfast.Opcode.TEXT, b"x", mask=False)
        code, _, _ = raw.recv_until_close()
        assert code == 1002
        assert raw.at_eof()


def test_app_decorators_and_routes() -> None:
    app = App()
    seen: list[str] = []

    @app.on("message")
    def shout(conn: Connection, data: str | bytes) -> None:
        conn.send(str(data).upper())

    @app.on("open")
    def opened(conn: Connection) -> None:
        seen.append(conn.path)

    @app.route("/echo")
    class Route(Echo):
        pass

    with pytest.raises(ValueError, match="unknown event"):
        app.on("nope")
    with running(app) as server:
        with connect(uri(server, "/any")) as ws:
            ws.send("hi")
            assert ws.recv() == "HI"
        with connect(uri(server, "/echo")) as ws:
            ws.send("hi")
            assert ws.recv() == "hi"
    assert seen == ["/any"]


def test_routes_pick_the_handler_by_path() -> None:
    class Upper(Handler):
        def on_message(self, conn: Connection, data: str | bytes) -> None:
            conn.send(str(data).upper())

    with running(None, routes={"/echo": Echo, "/upper": Upper()}) as server:
        with connect(uri(server, "/echo?x=1")) as ws:
            ws.send("a")
            assert ws.recv() == "a"
        with connect(uri(server, "/upper")) as ws:
            ws.send("a")
            assert ws.recv() == "A"
        with pytest.raises(InvalidStatus) as info:
            connect(uri(server, "/other"))
        assert info.value.response.status_code == 404


# ---- handshake ---------------------------------------------------------------------------


class Gate(Echo):
    def on_handshake(self, request: Request) -> HandshakeResponse | None:
        if request.get("Authorization") != "Bearer good":
            return HandshakeResponse.reject(401, "who are you?", [("WWW-Authenticate", "Bearer")])
        return HandshakeResponse.accept("v2", headers=[("X-Server", "wsfast")])


def test_handshake_hook_rejects_with_401_and_body() -> None:
    with running(Gate()) as server:
        with pytest.raises(InvalidStatus) as info:
            connect(uri(server), additional_headers={"Authorization": "Bearer bad"})
        response = info.value.response
        assert response.status_code == 401
        assert response.body == b"who are you?"
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_handshake_hook_accepts_with_subprotocol_and_headers() -> None:
    with (
        running(Gate()) as server,
        connect(
            uri(server),
            additional_headers={"Authorization": "Bearer good"},
            subprotocols=["v1", "v2"],
        ) as ws,
    ):
        assert ws.subprotocol == "v2"
        assert ws.response.headers["X-Server"] == "wsfast"
        ws.send("ok")
        assert ws.recv() == "ok"


def test_subprotocol_defaults_to_the_first_supported_offer() -> None:
    with running(subprotocols=["b", "a"]) as server:
        with connect(uri(server), subprotocols=["x", "a", "b"]) as ws:
            assert ws.subprotocol == "a"
        with connect(uri(server), subprotocols=["x"]) as ws:
            assert ws.subprotocol is None


def test_handshake_hook_exception_gives_500() -> None:
    class Broken(Echo):
        def on_handshake(self, request: Request) -> HandshakeResponse | None:
            raise RuntimeError("broken hook")

    with running(Broken()) as server, pytest.raises(InvalidStatus) as info:
        connect(uri(server))
    assert info.value.response.status_code == 500


def test_origin_allow_list() -> None:
    with running(origins=["https://good.example"]) as server:
        with connect(uri(server), origin="https://good.example") as ws:  # type: ignore[arg-type]
            ws.send("x")
            assert ws.recv() == "x"
        with pytest.raises(InvalidStatus) as info:
            connect(uri(server), origin="https://evil.example")  # type: ignore[arg-type]
        assert info.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as info:
            connect(uri(server))
        assert info.value.response.status_code == 403


def test_bad_upgrade_requests_get_an_http_error() -> None:
    with running() as server:
        with RawClient(server.port) as raw:
            raw.sock.sendall(raw.request_bytes().replace(b"Version: 13", b"Version: 8"))
            head = raw.read_head()
            assert head.startswith(b"HTTP/1.1 426 ")
            assert b"Sec-WebSocket-Version: 13" in head
        with RawClient(server.port) as raw:
            raw.sock.sendall(b"GARBAGE\r\n\r\n")
            assert raw.read_all().startswith(b"HTTP/1.1 400 ")
        with RawClient(server.port) as raw:
            raw.sock.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * 20000)
            assert raw.read_all().startswith(b"HTTP/1.1 431 ")


# ---- plain HTTP -------------------------------------------------------------------------


def test_plain_http_health_check_and_defaults() -> None:
    with running(None, routes={"/ws": Echo}) as server:
        assert http_get(server.port, "/health") == (200, b"ok")
        status, _ = http_get(server.port, "/ws")
        assert status == 426
        status, _ = http_get(server.port, "/nothing")
        assert status == 404


def test_plain_http_handler_serves_pages() -> None:
    def pages(request: Request) -> Any:
        if request.path == "/":
            return 200, [("Content-Type", "text/html")], f"<p>{request.query}</p>"
        return None

    with running(http_handler=pages) as server:
        with RawClient(server.port) as raw:
            raw.sock.sendall(b"GET /?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            response = raw.read_all()
        assert response.startswith(b"HTTP/1.1 200 ")
        assert b"Content-Type: text/html" in response
        assert response.endswith(b"<p>q=1</p>")
        assert http_get(server.port, "/health") == (200, b"ok")
        # The default handler serves every path: a plain GET elsewhere is told to upgrade.
        assert http_get(server.port, "/elsewhere")[0] == 426


def test_incomplete_request_head_is_dropped_after_handshake_timeout() -> None:
    with running(handshake_timeout=0.2) as server, RawClient(server.port) as raw:
        raw.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        assert raw.at_eof(5.0)
        assert 0.1 < time.monotonic() - start < 3.0


# ---- errors -----------------------------------------------------------------------------


def test_handler_exception_closes_with_1011_and_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = Recorder()
    with caplog.at_level(logging.ERROR, logger="wsfast.server"), running(handler) as server:
        with connect(uri(server)) as ws:
            ws.send("boom")
            with pytest.raises(ConnectionClosedError) as info:
                ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1011
        with connect(uri(server)) as ws:
            ws.send("still here")
            assert ws.recv() == "still here"
    errors = [e for e in handler.events if e[0] == "error"]
    assert len(errors) == 1 and str(errors[0][1]) == "handler exploded"
    assert any("handler error" in r.message for r in caplog.records)


def test_exception_in_on_open_closes_with_1011() -> None:
    class BadOpen(Echo):
        def on_open(self, conn: Connection) -> None:
            raise ValueError("no")

    with running(BadOpen()) as server, connect(uri(server)) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1011


# ---- ping, keepalive, timeouts ------------------------------------------------------------


def test_ping_and_pong_reach_the_handler() -> None:
    handler = Recorder()
    with running(handler) as server, connect(uri(server)) as ws:
        ws.ping(b"client").wait(5)
        on_loop(server, lambda: handler.conns[0].ping(b"server"))
        wait_for(lambda: ("pong", b"server") in handler.events)
        assert ("ping", b"client") in handler.events


def test_keepalive_pings_keep_a_responsive_client_open() -> None:
    handler = Recorder()
    with (
        running(handler, ping_interval=0.05, ping_timeout=0.5) as server,
        connect(uri(server)) as ws,
    ):
        wait_for(lambda: sum(e[0] == "pong" for e in handler.events) >= 3)
        ws.send("alive")
        assert ws.recv() == "alive"


def test_keepalive_timeout_fails_with_1011() -> None:
    with (
        running(ping_interval=0.1, ping_timeout=0.2) as server,
        RawClient(server.port) as raw,
    ):
        raw.handshake()
        start = time.monotonic()
        code, reason, frames = raw.recv_until_close()
        assert code == 1011 and reason == "keepalive ping timeout"
        assert frames and frames[0].opcode == wsfast.Opcode.PING
        assert 0.2 < time.monotonic() - start < 3.0


def test_idle_timeout_closes_with_1001_and_messages_reset_it() -> None:
    with running(idle_timeout=0.3) as server, connect(uri(server)) as ws:
        for _ in range(6):
            time.sleep(0.1)
            ws.send("tick")
            assert ws.recv() == "tick"
        with pytest.raises(ConnectionClosedOK) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (1001, "idle timeout")


def test_close_timeout_drops_a_client_that_never_answers() -> None:
    handler = Recorder()
    with running(handler, close_timeout=0.2) as server, RawClient(server.port) as raw:
        raw.handshake()
        raw.send_frame(wsfast.Opcode.TEXT, b"hi")
        assert raw.recv_frame().payload == b"hi"
        on_loop(server, lambda: handler.conns[0].close(4000, "bye"))
        code, reason, _ = raw.recv_until_close()
        assert (code, reason) == (4000, "bye")
        assert raw.at_eof(5.0)
        assert handler.closed.wait(5)
        assert handler.events[-1] == ("close", 1006, "")


# ---- flow control -------------------------------------------------------------------------


class Flooder(Handler):
    """On "flood N SIZE", sends N binary messages of SIZE bytes in one callback."""

    def __init__(self) -> None:
        self.conns: list[Connection] = []
        self.buffered: list[int] = []
        self.drained = threading.Event()

    def on_open(self, conn: Connection) -> None:
        self.conns.append(conn)

    def on_message(self, conn: Connection, data: str | bytes) -> None:
        _, count, size = str(data).split()
        payload = os.urandom(int(size))
        for _ in range(int(count)):
            if conn.state is not wsfast.State.OPEN:
                break
            conn.send(payload)
            self.buffered.append(conn.buffered_amount)

    def on_drain(self, conn: Connection) -> None:
        self.drained.set()
        conn.send("drained")


def test_slow_consumer_is_closed_with_1008() -> None:
    handler = Flooder()
    limit = (256 << 10, 64 << 10)
    with (
        running(handler, write_limit=limit, slow_consumer="close") as server,
        RawClient(server.port) as raw,
    ):
        raw.handshake()
        raw.send_frame(wsfast.Opcode.TEXT, b"flood 200 65536")
        wait_for(lambda: len(handler.buffered) == 5)
        conn = handler.conns[0]
        assert conn.state is not wsfast.State.OPEN
        # Bounded: the high-water mark plus one message, not 200 messages.
        assert max(handler.buffered) <= limit[0] + 65536 + 1024
        code, reason, frames = raw.recv_until_close()
        assert (code, reason) == (1008, "slow consumer")
        assert len(frames) == len(handler.buffered) - 1


def test_slow_consumer_messages_are_dropped_and_memory_stays_bounded() -> None:
    handler = Flooder()
    limit = (256 << 10, 64 << 10)
    with (
        running(handler, write_limit=limit, slow_consumer="drop") as server,
        RawClient(server.port, rcvbuf=4096) as raw,
    ):
        raw.handshake()
        raw.send_frame(wsfast.Opcode.TEXT, b"flood 100 65536")
        wait_for(lambda: len(handler.buffered) == 100)
        conn = handler.conns[0]
        assert conn.dropped >= 90
        assert max(handler.buffered) <= limit[0] + 65536 + 1024
        assert conn.state is wsfast.State.OPEN

        # A timer keeps sending to a client that never reads: memory stays bounded.
        peak: list[int] = []

        def tick() -> None:
            conn.send(b"x" * 65536)
            peak.append(conn.buffered_amount)

        timer = server.call_every(0.002, tick)
        wait_for(lambda: len(peak) >= 200)
        timer.cancel()
        assert max(peak) <= limit[0] + 65536 + 1024
        assert conn.dropped >= 250


class RecordingEcho(Handler):
    """Echoes every message and records the output buffered after each reply."""

    def __init__(self) -> None:
        self.conns: list[Connection] = []
        self.buffered: list[int] = []

    def on_open(self, conn: Connection) -> None:
        self.conns.append(conn)

    def on_message(self, conn: Connection, data: str | bytes) -> None:
        conn.send(data)
        self.buffered.append(conn.buffered_amount)


def test_client_with_more_in_flight_than_the_write_limit_is_paused_not_closed() -> None:
    # 32 MiB of 64 KiB messages in flight against a 1 MiB high-water mark, and a client
    # that reads nothing until the server is over it: the server must stop reading (TCP
    # pushes back on the sender) rather than read on and fail its replies with 1008.
    # Before the fix it failed this client (most runs): the direct-read loop read on
    # while paused, and an echo of one read's batch crossed the mark half-way.
    handler = RecordingEcho()
    high, low = 1 << 20, 64 << 10
    size, count = 64 << 10, 512
    payloads = [bytes([i % 256]) * size for i in range(count)]
    with (
        running(handler, write_limit=(high, low), slow_consumer="close") as server,
        RawClient(server.port, timeout=60, rcvbuf=65536) as raw,
    ):
        raw.handshake()

        def send_all() -> None:
            for payload in payloads:
                raw.send_frame(wsfast.Opcode.BINARY, payload)

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        wait_for(lambda: any(n > high for n in handler.buffered), timeout=60)
        for i, payload in enumerate(payloads):
            frame = raw.recv_frame()
            assert frame.opcode == wsfast.Opcode.BINARY, (i, frame.opcode, frame.payload[:40])
            assert frame.payload == payload, i
        sender.join(60)
        assert not sender.is_alive()
        assert handler.conns[0].state is wsfast.State.OPEN
        assert len(handler.buffered) == count
        # Bounded by the high-water mark plus the replies to one read.
        assert max(handler.buffered) <= high + (1 << 20) + 1024


def test_on_drain_fires_once_output_falls_below_the_low_water_mark() -> None:
    handler = Flooder()
    high, low = 16 << 20, 1 << 20
    with (
        running(handler, write_limit=(high, low)) as server,
        RawClient(server.port, rcvbuf=4096) as raw,
    ):
        raw.handshake()
        raw.send_frame(wsfast.Opcode.TEXT, b"flood 16 1048576")
        wait_for(lambda: len(handler.buffered) == 16)
        conn = handler.conns[0]
        time.sleep(0.2)
        # More than the kernel takes: the client has not read anything yet.
        assert not conn.writable
        assert not handler.drained.is_set()
        frames = 0
        while True:
            frame = raw.recv_frame()
            if frame.opcode == wsfast.Opcode.TEXT:
                break
            frames += 1
        assert frame.payload == b"drained"
        assert frames == 16
        assert handler.drained.is_set() and conn.writable


class PingWatcher(Recorder):
    """Records the most output ever buffered, seen as each ping is dispatched.

    The core queues a batch's pongs before it dispatches the batch, so the last
    ``on_ping`` of a batch sees all of them: the peak is exact, not sampled.
    """

    def __init__(self) -> None:
        super().__init__()
        self.peak = 0

    def on_ping(self, conn: Connection, data: bytes) -> None:
        self.peak = max(self.peak, conn.buffered_amount)


def test_peer_that_sends_but_never_reads_is_paused_not_buffered() -> None:
    handler = PingWatcher()
    high = 64 << 10
    # Between two checks of the high-water mark the server reads at most one receive
    # buffer (1 MiB): only the pongs of that many bytes of pings can pile up above it.
    ping = wsfast.Frame(wsfast.Opcode.PING, b"p" * 125).serialize(b"abcd")
    bound = high + ((1 << 20) // len(ping) + 1) * 127 + 1024
    # However large the kernel's buffers grow, they are finite: once they are full,
    # output can only grow, so the server stays paused long before this much is sent.
    budget = 256 << 20
    with (
        running(handler, write_limit=(high, high // 4)) as server,
        RawClient(server.port, rcvbuf=4096) as raw,
    ):
        raw.handshake()
        wait_for(lambda: handler.conns)
        conn = handler.conns[0]
        raw.sock.setblocking(False)
        chunk = memoryview(ping * 512)
        pending = chunk[:0]
        sent = 0
        # Send whole frames, without a deadline: a slow server only makes this slower.
        while on_loop(server, lambda: conn.writable):
            assert sent < budget, "the server never stopped reading"
            if not pending:
                pending = chunk
            try:
                n = raw.sock.send(pending)
            except BlockingIOError:
                n = 0
                select.select([], [raw.sock], [], 0.05)
            pending = pending[n:]
            sent += n
        assert conn.state is wsfast.State.OPEN
        assert high < handler.peak <= bound
        assert on_loop(server, lambda: conn.buffered_amount) <= bound


# ---- server lifecycle -------------------------------------------------------------------


def test_graceful_close_sends_1001_to_every_client() -> None:
    handler = Recorder()
    server = serve(handler, "127.0.0.1", 0, ping_interval=None).start()
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(uri(server))) for _ in range(3)]
        wait_for(lambda: len(server.connections) == 3)
        server.close()
        for ws in clients:
            with pytest.raises(ConnectionClosedOK) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert not server.is_serving
    assert [e[1] for e in handler.events if e[0] == "close"] == [1001] * 3
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_close_from_a_handler_and_drain_deadline() -> None:
    class Quit(Handler):
        def on_message(self, conn: Connection, data: str | bytes) -> None:
            conn.server.close(drain=0.2)

    server = serve(Quit(), "127.0.0.1", 0, ping_interval=None).start()
    with RawClient(server.port) as raw:
        raw.handshake()
        raw.send_frame(wsfast.Opcode.TEXT, b"quit")
        code, _, _ = raw.recv_until_close()
        assert code == 1001
        # This client never answers: the drain deadline drops it.
        assert raw.at_eof(5.0)
    server.close()
    assert not server.is_serving


def test_timers_callbacks_and_broadcast() -> None:
    with running() as server, contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(uri(server))) for _ in range(3)]
        wait_for(lambda: len(server.connections) == 3)
        ticks: list[float] = []
        timer = server.call_every(0.02, lambda: ticks.append(time.monotonic()))
        fired = threading.Event()
        server.call_later(0.05, fired.set)
        cancelled = server.call_later(0.05, fired.clear)
        cancelled.cancel()
        assert fired.wait(5)
        wait_for(lambda: len(ticks) >= 3)
        timer.cancel()
        assert on_loop(server, lambda: server.broadcast("all")) == 3
        server.broadcast(b"from another thread")
        for ws in clients:
            assert ws.recv(timeout=5) == "all"
            assert ws.recv(timeout=5) == b"from another thread"


def test_server_is_a_context_manager() -> None:
    with serve(Echo(), "127.0.0.1", 0, ping_interval=None) as server:
        assert server.is_serving and server.url == f"ws://127.0.0.1:{server.port}"
        with connect(uri(server)) as ws:
            ws.send("x")
            assert ws.recv() == "x"
    assert not server.is_serving


def test_invalid_options_are_refused() -> None:
    with pytest.raises(ValueError):
        serve(Echo(), port=0, write_limit=(1, 2))
    with pytest.raises(ValueError):
        serve(Echo(), port=0, slow_consumer="block")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        serve(None)
    with pytest.raises(TypeError):
        serve(Echo(), compression="yes")


# ---- TLS ------------------------------------------------------------------------------------


def test_tls_echo_and_health_check(certificate: tuple[Path, Path]) -> None:
    certfile, keyfile = certificate
    server_context = tls_server_context(certfile, keyfile)
    client_context = ssl.create_default_context(cafile=str(certfile))
    with running(ssl=server_context) as server:
        assert server.url.startswith("wss://")
        with connect(f"wss://127.0.0.1:{server.port}/", ssl=client_context) as ws:
            ws.send("secret")
            assert ws.recv() == "secret"
            big = os.urandom(900_000)
            ws.send(big)
            assert ws.recv() == big
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock,
            client_context.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            response = b""
            while chunk := tls.recv(4096):
                response += chunk
        assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(b"ok")


def test_tls_handshake_failure_does_not_hurt_the_server(certificate: tuple[Path, Path]) -> None:
    certfile, keyfile = certificate
    server_context = tls_server_context(certfile, keyfile)
    client_context = ssl.create_default_context(cafile=str(certfile))
    with running(ssl=server_context) as server:
        with RawClient(server.port) as raw:
            raw.sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # plaintext to a TLS port
            assert raw.at_eof(5.0)
        with connect(f"wss://127.0.0.1:{server.port}/", ssl=client_context) as ws:
            ws.send("fine")
            assert ws.recv() == "fine"


# ---- CLI ------------------------------------------------------------------------------------


def start_cli(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsfast", *args, "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(f"wsfast {args[0]} listening on ws://127.0.0.1:"), line
    return proc, int(line.rsplit(":", 1)[1])


def stop_cli(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert "Traceback" not in stderr, stderr
    return proc.returncode


@pytest.mark.parametrize("compression", [True, False])
def test_cli_echo_server(compression: bool) -> None:
    args = ["echo"] if compression else ["echo", "--no-compression"]
    proc, port = start_cli(*args)
    try:
        with connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
            big = b"z" * (3 << 20)  # over the library default of 1 MiB, under 64 MiB
            ws.send(big)
            assert ws.recv() == big
            ws.send(["frag", "mented"])
            assert ws.recv() == "fragmented"
            negotiated = [e.name for e in ws.protocol.extensions]
            assert negotiated == (["permessage-deflate"] if compression else [])
            assert stop_cli(proc) == 0
            with pytest.raises(ConnectionClosedOK) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    finally:
        if proc.poll() is None:
            stop_cli(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_cli_serves_a_handler_given_as_module_and_attribute() -> None:
    proc, port = start_cli("serve", "tests.integration.server_util:Echo")
    try:
        with connect(f"ws://127.0.0.1:{port}/") as ws:
            ws.send("served")
            assert ws.recv() == "served"
    finally:
        assert stop_cli(proc) == 0
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
