# SPDX-License-Identifier: MIT
"""wsfast.metrics sans I/O: the counters' rules and the Prometheus text format.

The connection side is a real server-side protocol core fed real frames; only the
transport's counters are a plain object (they are integers the Cython transport keeps).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import wsfast
from wsfast._core import new_core
from wsfast.metrics import Metrics, ServerStats, render_prometheus


@dataclass
class Counters:
    """A transport's counters (cython_ext/transport.pxd) around a real core."""

    core: Any
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    payload_in: int = 0
    payload_out: int = 0
    dropped: int = 0
    skipped: int = 0


def server_core() -> Any:
    return new_core("server", max_size=1 << 20, params=None, config=None)


def close_frame(code: int) -> bytes:
    return wsfast.Frame(wsfast.Opcode.CLOSE, struct.pack("!H", code)).serialize(b"abcd")


def stats(**changes: Any) -> ServerStats:
    return ServerStats(**{**Metrics().snapshot([]).as_dict(), **changes})


def test_closed_connections_count_the_code_received() -> None:
    core = server_core()
    core.receive_data(close_frame(4001))
    metrics = Metrics()
    metrics.closed(Counters(core, messages_in=2, bytes_in=10, payload_in=4))
    snapshot = metrics.snapshot([Counters(server_core(), messages_in=1, dropped=3)])
    assert dict(snapshot.connections_closed) == {4001: 1}
    assert snapshot.messages_received == 3
    assert snapshot.bytes_received == 10 and snapshot.payload_bytes_received == 4
    assert snapshot.messages_dropped == 3
    assert snapshot.connections_open == 1


def test_a_connection_the_server_failed_counts_the_code_sent() -> None:
    core = server_core()
    core.fail(1011, "internal error")
    slow = server_core()
    slow.fail(1008, "slow consumer")
    other = server_core()
    other.fail(1011, "keepalive ping timeout")
    metrics = Metrics()
    for c in (core, slow, other):
        metrics.closed(Counters(c))
    snapshot = metrics.snapshot([])
    assert dict(snapshot.connections_closed) == {1011: 2, 1008: 1}
    assert snapshot.handler_errors == 1
    assert snapshot.slow_consumer_closes == 1


def test_a_socket_that_just_ended_counts_as_1006() -> None:
    core = server_core()
    core.receive_eof()
    metrics = Metrics()
    metrics.closed(Counters(core))
    assert dict(metrics.snapshot([]).connections_closed) == {1006: 1}


def test_only_http_errors_count_as_rejections() -> None:
    metrics = Metrics()
    for status in (200, 404, 404, 426, 500):
        metrics.rejected(status)
    assert dict(metrics.snapshot([]).handshake_rejections) == {404: 2, 426: 1, 500: 1}


def test_loop_lag_is_how_late_the_timer_ran() -> None:
    metrics = Metrics()
    metrics.start_timer(due=0.0)  # long past: the loop is (very) late
    metrics.tick(next_due=1e18)
    late = metrics.snapshot([]).loop_lag
    metrics.tick(next_due=0.0)  # this run was "due" far in the future: never negative
    snapshot = metrics.snapshot([])
    assert late > 0 and snapshot.loop_lag == 0.0 and snapshot.loop_lag_max == late


def test_compression_ratio_is_payload_per_wire_byte() -> None:
    metrics = Metrics()
    snapshot = metrics.snapshot(
        [Counters(server_core(), bytes_in=100, bytes_out=100, payload_in=300, payload_out=500)]
    )
    assert snapshot.compression_ratio == 4.0


def test_exposition_parses_back_to_the_same_values() -> None:
    text = render_prometheus(
        stats(
            connections_open=3,
            connections_total=7,
            connections_closed={1000: 3, 1006: 1},
            messages_received=11,
            handshake_rejections={404: 2},
            loop_lag=0.25,
        )
    )
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["wsfast_connections_open"].samples[0].value == 3
    assert families["wsfast_connections"].samples[0].name == "wsfast_connections_total"
    assert families["wsfast_connections"].samples[0].value == 7
    closed = {s.labels["code"]: s.value for s in families["wsfast_connections_closed"].samples}
    assert closed == {"1000": 3, "1006": 1}
    rejections = families["wsfast_handshake_rejections"].samples
    assert [(s.labels, s.value) for s in rejections] == [({"status": "404"}, 2)]
    assert families["wsfast_messages_received"].samples[0].value == 11
    assert families["wsfast_loop_lag_seconds"].samples[0].value == 0.25
    for family in families.values():
        assert family.documentation and family.type in ("counter", "gauge")
    assert text.endswith("\n")


@pytest.mark.parametrize(
    ("value", "written"), [(float("nan"), "NaN"), (float("inf"), "+Inf"), (2, "2.0")]
)
def test_exposition_writes_values_as_prometheus_client_does(value: float, written: str) -> None:
    text = render_prometheus(stats(loop_lag=value))
    assert f"wsfast_loop_lag_seconds {written}\n" in text
