# SPDX-License-Identifier: MIT
"""Server.stats() and the Prometheus endpoint, over real sockets on 127.0.0.1.

The counters are checked against what the test itself exchanged: a raw-socket client
knows every byte it wrote and read, and the scrape is parsed the way Prometheus reads
it (``prometheus_client.parser``).
"""

from __future__ import annotations

import math
import socket
import struct
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import wsfast
from wsfast.__main__ import EchoHandler, _parser, _server
from wsfast.metrics import CONTENT_TYPE, ServerStats, render_prometheus
from wsfast.server import Handler, Server

from .server_util import Echo, RawClient, running, wait_for

pytestmark = pytest.mark.timeout(60)


def frame(opcode: int, payload: bytes, *, masked: bool) -> bytes:
    return wsfast.Frame(opcode, payload).serialize(b"\x01\x02\x03\x04" if masked else None)


def http(
    server: Server, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP request; the status, headers and body (errors included)."""
    url = f"http://127.0.0.1:{server.port}{path}"
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def scrape(server: Server) -> dict[str, Any]:
    """GET /metrics, parsed as Prometheus does: {sample name or name{labels}: value}."""
    status, headers, body = http(server, "/metrics")
    assert status == 200, body
    assert headers["Content-Type"] == CONTENT_TYPE
    samples: dict[str, Any] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def closed(server: Server, count: int = 1) -> ServerStats:
    """Wait until ``count`` connections closed; return the stats then."""
    wait_for(lambda: sum(server.stats().connections_closed.values()) >= count)
    return server.stats()


# ---- stats() --------------------------------------------------------------------------


def test_stats_start_at_zero() -> None:
    with running() as server:
        stats = server.stats()
    assert stats.connections_open == stats.connections_total == 0
    assert stats.messages_received == stats.messages_sent == 0
    assert stats.bytes_received == stats.bytes_sent == 0
    assert stats.compression_ratio == 0.0
    assert dict(stats.connections_closed) == dict(stats.handshake_rejections) == {}
    assert stats.handler_errors == stats.messages_dropped == stats.slow_consumer_closes == 0
    assert stats.uptime >= 0.0


def test_stats_count_every_byte_and_message_exchanged() -> None:
    messages = [(wsfast.Opcode.TEXT, b"hello"), (wsfast.Opcode.BINARY, b"\x00" * 300)]
    messages += [(wsfast.Opcode.TEXT, "é".encode() * 40_000)]  # 64-bit length, non-ASCII
    close = frame(wsfast.Opcode.CLOSE, struct.pack("!H", 1000), masked=True)
    with running(compression=False) as server, RawClient(server.port) as client:
        request = client.request_bytes("/")
        client.sock.sendall(request)
        head = client.read_head()
        assert head.startswith(b"HTTP/1.1 101 ")
        sent = [frame(op, payload, masked=True) for op, payload in messages]
        for data in sent:
            client.sock.sendall(data)
            client.recv_frame()
        stats = server.stats()
        assert stats.connections_open == 1 and stats.connections_total == 1
        client.sock.sendall(close)
        rest = client.read_all()
        stats = closed(server)
    echoed = sum(len(frame(op, payload, masked=False)) for op, payload in messages)
    payload = sum(len(p) for _, p in messages)
    assert stats.bytes_received == len(request) + sum(map(len, sent)) + len(close)
    # The head, the echoes (already parsed by recv_frame), the close reply.
    assert stats.bytes_sent == len(head) + echoed + len(rest)
    assert rest == frame(wsfast.Opcode.CLOSE, struct.pack("!H", 1000), masked=False)
    assert stats.messages_received == stats.messages_sent == 3
    assert stats.payload_bytes_received == stats.payload_bytes_sent == payload
    assert stats.connections_open == 0
    assert dict(stats.connections_closed) == {1000: 1}
    assert 0.9 < stats.compression_ratio < 1.0  # uncompressed: only framing and heads


def test_compression_ratio_shows_deflate_savings() -> None:
    text = "wsfast " * 20_000
    with running() as server, connect(f"ws://127.0.0.1:{server.port}/") as ws:
        for _ in range(3):
            ws.send(text)
            assert ws.recv() == text
        stats = server.stats()
    assert stats.payload_bytes_received == stats.payload_bytes_sent == 3 * len(text)
    assert stats.compression_ratio > 10.0


def test_stats_count_messages_sent_from_every_api() -> None:
    class Fanout(Handler):
        def on_message(self, conn: Any, data: str | bytes) -> None:
            conn.send("a")  # 1 message
            conn.send_text("b", fin=False)  # fragments: one message, counted at the end
            conn.send_continuation(b"c", fin=True)
            conn.server.broadcast(b"d")  # 1 more
            conn.subscribe("t")
            conn.server.publish("t", "e")  # a topic delivery

    with running(Fanout, compression=False) as server:
        with connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
            ws.send("go")
            assert [ws.recv() for _ in range(4)] == ["a", "bc", b"d", "e"]
            stats = server.stats()
    assert stats.messages_received == 1
    assert stats.messages_sent == 4
    # Topic frames are encoded once for all subscribers: their payload is not counted.
    assert stats.payload_bytes_sent == 4


def test_handshake_rejections_are_counted_by_status() -> None:
    with running(routes={"/ws": Echo}, handler=None, origins=["https://ok.example"]) as server:
        assert http(server, "/nope")[0] == 404
        assert http(server, "/nope")[0] == 404
        assert http(server, "/ws")[0] == 426
        assert http(server, "/health")[0] == 200  # not a rejection
        with RawClient(server.port) as client:
            client.sock.sendall(client.request_bytes("/ws", (("Origin", "https://bad"),)))
            assert client.read_head().startswith(b"HTTP/1.1 403 ")
        stats = server.stats()
    assert dict(stats.handshake_rejections) == {403: 1, 404: 2, 426: 1}
    # Plain HTTP requests are not WebSocket traffic.
    assert stats.bytes_received == stats.connections_total == 0


def test_handler_errors_and_close_codes_are_counted() -> None:
    class Fails(Handler):
        def on_message(self, conn: Any, data: str | bytes) -> None:
            if data == "boom":
                raise RuntimeError("handler bug")
            conn.close(4000, "bye")

    with running(Fails) as server:
        for message, code in (("boom", 1011), ("x", 4000), ("boom", 1011)):
            with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                ws.send(message)
                with pytest.raises(ConnectionClosed):
                    ws.recv(timeout=5)
                assert ws.close_code == code
        stats = closed(server, 3)
    assert stats.handler_errors == 2
    assert dict(stats.connections_closed) == {1011: 2, 4000: 1}


@pytest.mark.parametrize("policy", ["drop", "close"])
def test_slow_consumers_are_counted(policy: str) -> None:
    class Flood(Handler):
        def on_message(self, conn: Any, data: str | bytes) -> None:
            # The first send goes over the high-water mark: the next ones meet the
            # policy, all within this one call (no timing involved).
            for _ in range(5):
                try:
                    conn.send(b"x" * 65536)
                except wsfast.ConnectionClosed:
                    return

    with running(Flood, write_limit=(1024, 256), slow_consumer=policy) as server:
        with RawClient(server.port) as client:
            client.handshake("/")
            client.send_frame(wsfast.Opcode.TEXT, b"go")
            if policy == "drop":
                wait_for(lambda: server.stats().messages_dropped == 4)
                stats = server.stats()
                assert stats.messages_sent == 1 and stats.slow_consumer_closes == 0
                return
            frames = []
            while (f := client.recv_frame()).opcode != wsfast.Opcode.CLOSE:
                frames.append(f)
            assert struct.unpack("!H", f.payload[:2])[0] == 1008
            client.send_frame(wsfast.Opcode.CLOSE, f.payload[:2])
            stats = closed(server)
    assert stats.slow_consumer_closes == 1
    assert stats.messages_dropped == 0


def test_loop_lag_shows_a_blocked_loop() -> None:
    class Blocks(Handler):
        def on_message(self, conn: Any, data: str | bytes) -> None:
            # Longer than the stats timer's interval (1 s): a run of it falls inside
            # the block, so it runs at least 0.5 s late, whatever the machine's load.
            time.sleep(1.5)
            conn.send(data)

    with running(Blocks) as server, connect(f"ws://127.0.0.1:{server.port}/") as ws:
        ws.send("x")
        assert ws.recv(timeout=10) == "x"
        # The late timer runs once the handler returns, maybe after the reply went out.
        wait_for(lambda: server.stats().loop_lag_max >= 0.5)
        stats = server.stats()
    assert 0.0 <= stats.loop_lag <= stats.loop_lag_max
    assert math.isfinite(stats.loop_lag_max)


def test_stats_as_dict_and_json_name_every_field() -> None:
    with running(compression=False) as server, RawClient(server.port) as client:
        client.handshake("/")
        client.send_frame(wsfast.Opcode.TEXT, b"hi")
        client.recv_frame()
        stats = server.stats()
    data = stats.as_dict()
    assert set(data) == set(ServerStats.__dataclass_fields__)
    assert data["messages_received"] == 1
    assert '"messages_received":1' in stats.to_json()


# ---- GET /metrics -------------------------------------------------------------------


def test_metrics_endpoint_matches_the_traffic() -> None:
    with running(metrics=True, compression=False) as server:
        assert http(server, "/nope")[0] in (404, 426)
        with connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
            for payload in ("one", b"two!", "three"):
                ws.send(payload)
                assert ws.recv() == payload
            samples = scrape(server)
            stats = server.stats()
            assert samples["wsfast_connections_open"] == 1.0
        closed(server)
        after = scrape(server)
    assert samples["wsfast_connections_total"] == 1.0
    assert samples["wsfast_messages_received_total"] == 3.0
    assert samples["wsfast_messages_sent_total"] == 3.0
    assert samples["wsfast_payload_bytes_received_total"] == 12.0
    assert samples["wsfast_payload_bytes_sent_total"] == 12.0
    assert samples["wsfast_bytes_received_total"] == stats.bytes_received > 12
    assert samples["wsfast_bytes_sent_total"] == stats.bytes_sent > 12
    assert samples["wsfast_handshake_rejections_total{status=426}"] == 1.0
    assert samples["wsfast_handler_errors_total"] == 0.0
    assert samples["wsfast_loop_lag_seconds"] >= 0.0
    assert after["wsfast_connections_open"] == 0.0
    assert after["wsfast_connections_closed_total{code=1000}"] == 1.0


def test_metrics_exposition_has_help_and_type_for_every_family() -> None:
    with running(metrics=True) as server:
        status, _, body = http(server, "/metrics")
    text = body.decode()
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "wsfast_connections_open",
        "wsfast_connections",
        "wsfast_connections_closed",
        "wsfast_messages_received",
        "wsfast_messages_sent",
        "wsfast_bytes_received",
        "wsfast_bytes_sent",
        "wsfast_handshake_rejections",
        "wsfast_handler_errors",
        "wsfast_loop_lag_seconds",
    ):
        assert families[name].documentation, name
        assert f"# TYPE {name}" in text
    assert families["wsfast_messages_sent"].type == "counter"
    assert families["wsfast_connections_open"].type == "gauge"


def test_render_prometheus_matches_prometheus_client_output() -> None:
    # The exact format of the library: a registry exposing the same counter and gauge.
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

    registry = CollectorRegistry()
    counter = Counter(
        "wsfast_connections_closed",
        "WebSocket connections closed, by the close code received.",
        ["code"],
        registry=registry,
    )
    counter.labels(code="1000").inc(3)
    gauge = Gauge("wsfast_connections_open", "WebSocket connections open.", registry=registry)
    gauge.set(2)
    theirs = generate_latest(registry).decode()
    with running() as server:
        stats = server.stats()
    ours = render_prometheus(
        ServerStats(**{**stats.as_dict(), "connections_open": 2, "connections_closed": {1000: 3}})
    )
    for line in theirs.splitlines():
        if "_created" not in line:
            assert line in ours.splitlines(), line


def test_metrics_is_off_by_default() -> None:
    seen: list[str] = []

    def http_handler(request: wsfast.Request) -> Any:
        seen.append(request.path)
        return None

    with running(handler=None, routes={"/ws": Echo}, http_handler=http_handler) as server:
        assert http(server, "/metrics")[0] == 404
    assert seen == ["/metrics"]


def test_metrics_path_is_configurable() -> None:
    with running(metrics="/ops/metrics") as server:
        assert http(server, "/ops/metrics")[0] == 200
        assert http(server, "/metrics")[0] == 426  # the default handler's path now


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_metrics_refuses_other_methods(method: str) -> None:
    seen: list[str] = []

    def http_handler(request: wsfast.Request) -> Any:
        seen.append(request.path)
        return 200, [], "handled"

    with running(metrics=True, http_handler=http_handler) as server:
        status, headers, _ = http(server, "/metrics", method)
    assert status == 405
    assert headers["Allow"] == "GET"
    assert seen == []


def test_metrics_path_is_never_routed_to_a_handler() -> None:
    handshakes: list[str] = []

    class Recorder(Echo):
        def on_handshake(self, request: wsfast.Request) -> None:
            handshakes.append(request.path)

    with running(Recorder, metrics=True) as server:
        # An upgrade request to /metrics gets the metrics (the Upgrade is ignored).
        with RawClient(server.port) as client:
            client.sock.sendall(client.request_bytes("/metrics?x=1"))
            head = client.read_head()
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert b"wsfast_connections_open" in client.read_all()
        # An upgrade with another method: 405 too.
        with RawClient(server.port) as client:
            client.sock.sendall(client.request_bytes("/metrics").replace(b"GET", b"POST", 1))
            head = client.read_head()
            assert head.startswith(b"HTTP/1.1 405 ") and b"Allow: GET" in head
        # Any other path still reaches the handler.
        with RawClient(server.port) as client:
            client.handshake("/other")
    assert handshakes == ["/other"]


def test_cli_flags_turn_on_metrics_and_dashboard() -> None:
    for command in (["echo"], ["serve", "wsfast.__main__:EchoHandler"]):
        args = _parser().parse_args([*command, "--port", "0", "--metrics", "--dashboard"])
        assert args.metrics is True and args.dashboard is True
        server = _server(args, EchoHandler())
        assert server.config.metrics_path == "/metrics"
        assert server.config.dashboard_path == "/_wsfast/dashboard"
    args = _parser().parse_args(["demo", "--metrics"])
    assert args.metrics is True and args.dashboard is False
    args = _parser().parse_args(["echo"])
    assert _server(args, EchoHandler()).config.metrics_path is None


def test_cli_echo_serves_metrics() -> None:
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with subprocess.Popen(
        [sys.executable, "-m", "wsfast", "echo", "--port", str(port), "--metrics"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            _check_cli_echo(process, port)
        finally:
            process.terminate()
            process.wait(timeout=10)


def _check_cli_echo(process: Any, port: int) -> None:
    """The echo server prints the metrics URL and serves what it echoed."""
    assert process.stdout is not None
    assert "listening on" in process.stdout.readline()
    assert process.stdout.readline().strip() == f"metrics: http://127.0.0.1:{port}/metrics"
    with connect(f"ws://127.0.0.1:{port}/") as ws:
        ws.send("x")
        assert ws.recv() == "x"
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["wsfast_messages_received"].samples[0].value == 1.0
