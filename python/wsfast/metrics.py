# SPDX-License-Identifier: MIT
"""Server counters: :class:`ServerStats` and its Prometheus text exposition.

The counting is split by cost. Per-message counters (messages and bytes in and out)
live on each connection's transport, in C, and are added up only when someone asks
(:meth:`wsfast.Server.stats`); per-connection events (opened, closed, rejected) are
counted here in Python, once per connection. A timer once a second measures how
late the loop runs it (the loop lag) and feeds the dashboard.

:func:`render_prometheus` writes the text format 0.0.4 that ``prometheus_client``
writes (``# HELP`` / ``# TYPE`` lines, ``_total`` counters, float values), so any
Prometheus scrapes ``GET /metrics`` (``serve(..., metrics=True)``); the tests read
it back with ``prometheus_client.parser``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CONTENT_TYPE", "ServerStats", "render_prometheus"]

#: The Content-Type of the Prometheus text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Close reasons the transport sends when its slow-consumer policy closes a connection.
_SLOW_CONSUMER_REASONS = ("slow consumer", "slow subscriber")

#: Close reason of a connection failed because a handler raised (Connection.handler_failed).
_HANDLER_ERROR_REASON = "internal error"


@dataclass(frozen=True, slots=True)
class ServerStats:
    """A snapshot of a server's counters (since it started) and gauges (now).

    WebSocket connections only: plain HTTP requests (``/health``, ``/metrics``,
    rejected handshakes) count in :attr:`handshake_rejections` at most.

    Attributes:
        connections_open: gauge: WebSocket connections open now.
        connections_total: connections upgraded (opened) since the start.
        connections_closed: closed connections by close code: the one received
            from the client, else the one the server sent (a connection it failed
            gets no reply), else 1006 (the socket closed without a close frame).
        messages_received: whole text and binary messages received.
        messages_sent: whole messages sent (``send``, broadcasts, topic
            deliveries; a fragmented message counts once, at its last fragment).
        bytes_received: bytes read from the sockets, request heads and frame
            headers included (TLS records when encrypted).
        bytes_sent: bytes written to the sockets, likewise.
        payload_bytes_received: payload bytes of the received messages, after
            decompression.
        payload_bytes_sent: payload bytes of the sent messages, before compression
            (topic frames encoded once for many subscribers are not included).
        compression_ratio: payload bytes per byte on the wire, both directions:
            above 1 when permessage-deflate saves bytes; framing and handshakes
            keep uncompressed traffic a little under 1; 0.0 before any traffic.
        messages_dropped: messages dropped by the "drop" slow-consumer policy,
            plus topic deliveries skipped for slow subscribers.
        slow_consumer_closes: connections the server closed with 1008 because
            they did not read fast enough.
        handshake_rejections: requests answered with an HTTP error (status 400
            and above) instead of an upgrade, by status.
        handler_errors: connections failed with 1011 because a handler raised.
        loop_lag: gauge: seconds the loop ran its once-a-second timer late, last
            time (a busy or blocked loop shows here first).
        loop_lag_max: the largest :attr:`loop_lag` seen.
        uptime: seconds since the server started listening.
    """

    connections_open: int
    connections_total: int
    connections_closed: Mapping[int, int]
    messages_received: int
    messages_sent: int
    bytes_received: int
    bytes_sent: int
    payload_bytes_received: int
    payload_bytes_sent: int
    compression_ratio: float
    messages_dropped: int
    slow_consumer_closes: int
    handshake_rejections: Mapping[int, int]
    handler_errors: int
    loop_lag: float
    loop_lag_max: float
    uptime: float

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as a JSON-able dict (mapping keys become strs).

        Returns:
            A new dict, one entry per attribute.
        """
        data = asdict(self)
        for key in ("connections_closed", "handshake_rejections"):
            data[key] = {str(k): v for k, v in sorted(data[key].items())}
        return data

    def to_json(self) -> str:
        """The snapshot as compact JSON (what the dashboard's feed sends).

        Returns:
            The JSON text of :meth:`as_dict`.
        """
        return json.dumps(self.as_dict(), separators=(",", ":"))


# The per-connection counters of a Transport (cython_ext/transport.pxd), in the order
# of _Counters' fields.
_TRANSPORT_COUNTERS = (
    "messages_in",
    "messages_out",
    "bytes_in",
    "bytes_out",
    "payload_in",
    "payload_out",
    "dropped",
    "skipped",
)


class Metrics:
    """One server's counters; the server calls it on the loop thread.

    Not public: applications read :meth:`wsfast.Server.stats`.
    """

    __slots__ = (
        "_closed_totals",
        "_due",
        "closed_by_code",
        "connections_total",
        "handler_errors",
        "loop_lag",
        "loop_lag_max",
        "rejections",
        "slow_consumer_closes",
        "started",
    )

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.connections_total = 0
        self.closed_by_code: dict[int, int] = {}
        self.rejections: dict[int, int] = {}
        self.handler_errors = 0
        self.slow_consumer_closes = 0
        self.loop_lag = 0.0
        self.loop_lag_max = 0.0
        # The transports' counters of the connections closed so far.
        self._closed_totals = [0] * len(_TRANSPORT_COUNTERS)
        self._due = 0.0

    def rejected(self, status: int) -> None:
        """A request head got a plain HTTP answer with ``status``."""
        if status >= 400:
            self.rejections[status] = self.rejections.get(status, 0) + 1

    def opened(self) -> None:
        """A connection was upgraded."""
        self.connections_total += 1

    def closed(self, transport: Any) -> None:
        """A connection's socket closed: keep its counters.

        Args:
            transport: its transport (the counters, and the close frames).
        """
        core = transport.core
        received = core.close_received
        sent = core.close_sent
        # The core reports 1006 as "received" when the socket ended without a frame.
        if received is not None and received[0] != 1006:
            code = int(received[0])
        else:
            code = 1006 if sent is None else int(sent[0])
        self.closed_by_code[code] = self.closed_by_code.get(code, 0) + 1
        totals = self._closed_totals
        for i, name in enumerate(_TRANSPORT_COUNTERS):
            totals[i] += getattr(transport, name)
        # Why the server closed it, from the close frame it sent.
        if sent is not None:
            if sent[0] == 1008 and sent[1] in _SLOW_CONSUMER_REASONS:
                self.slow_consumer_closes += 1
            elif sent[0] == 1011 and sent[1] == _HANDLER_ERROR_REASON:
                self.handler_errors += 1

    def start_timer(self, due: float) -> None:
        """The loop-lag timer is first due at ``due`` (``time.monotonic()`` clock)."""
        self._due = due

    def tick(self, next_due: float) -> None:
        """The loop-lag timer ran; it is next due at ``next_due``."""
        lag = max(time.monotonic() - self._due, 0.0)
        self._due = next_due
        self.loop_lag = lag
        self.loop_lag_max = max(self.loop_lag_max, lag)

    def snapshot(self, transports: Iterable[Any]) -> ServerStats:
        """The counters now, adding those of the open connections' transports.

        Args:
            transports: the transports of the open connections.

        Returns:
            The snapshot.
        """
        totals = list(self._closed_totals)
        open_count = 0
        for t in transports:
            open_count += 1
            for i, name in enumerate(_TRANSPORT_COUNTERS):
                totals[i] += getattr(t, name)
        msg_in, msg_out, bytes_in, bytes_out, pay_in, pay_out, dropped, skipped = totals
        wire = bytes_in + bytes_out
        return ServerStats(
            connections_open=open_count,
            connections_total=self.connections_total,
            connections_closed=dict(self.closed_by_code),
            messages_received=msg_in,
            messages_sent=msg_out,
            bytes_received=bytes_in,
            bytes_sent=bytes_out,
            payload_bytes_received=pay_in,
            payload_bytes_sent=pay_out,
            compression_ratio=(pay_in + pay_out) / wire if wire else 0.0,
            messages_dropped=dropped + skipped,
            slow_consumer_closes=self.slow_consumer_closes,
            handshake_rejections=dict(self.rejections),
            handler_errors=self.handler_errors,
            loop_lag=self.loop_lag,
            loop_lag_max=self.loop_lag_max,
            uptime=time.monotonic() - self.started,
        )


# ---- Prometheus text exposition -----------------------------------------------------

# (metric name, type, help, ServerStats attribute, label name for a mapping or None).
_FAMILIES: tuple[tuple[str, str, str, str, str | None], ...] = (
    ("wsfast_connections_open", "gauge", "WebSocket connections open.", "connections_open", None),
    (
        "wsfast_connections",
        "counter",
        "WebSocket connections opened.",
        "connections_total",
        None,
    ),
    (
        "wsfast_connections_closed",
        "counter",
        "WebSocket connections closed, by the close code received.",
        "connections_closed",
        "code",
    ),
    (
        "wsfast_messages_received",
        "counter",
        "Text and binary messages received.",
        "messages_received",
        None,
    ),
    ("wsfast_messages_sent", "counter", "Text and binary messages sent.", "messages_sent", None),
    (
        "wsfast_bytes_received",
        "counter",
        "Bytes read from WebSocket connections' sockets.",
        "bytes_received",
        None,
    ),
    (
        "wsfast_bytes_sent",
        "counter",
        "Bytes written to WebSocket connections' sockets.",
        "bytes_sent",
        None,
    ),
    (
        "wsfast_payload_bytes_received",
        "counter",
        "Payload bytes of the messages received, after decompression.",
        "payload_bytes_received",
        None,
    ),
    (
        "wsfast_payload_bytes_sent",
        "counter",
        "Payload bytes of the messages sent, before compression.",
        "payload_bytes_sent",
        None,
    ),
    (
        "wsfast_compression_ratio",
        "gauge",
        "Payload bytes per byte on the wire, both directions.",
        "compression_ratio",
        None,
    ),
    (
        "wsfast_messages_dropped",
        "counter",
        "Messages dropped or skipped for slow consumers.",
        "messages_dropped",
        None,
    ),
    (
        "wsfast_slow_consumer_closes",
        "counter",
        "Connections closed with 1008 for not reading fast enough.",
        "slow_consumer_closes",
        None,
    ),
    (
        "wsfast_handshake_rejections",
        "counter",
        "Requests answered with an HTTP error instead of an upgrade, by status.",
        "handshake_rejections",
        "status",
    ),
    (
        "wsfast_handler_errors",
        "counter",
        "Connections failed with 1011 because a handler raised.",
        "handler_errors",
        None,
    ),
    (
        "wsfast_loop_lag_seconds",
        "gauge",
        "How late the event loop ran its once-a-second timer, last time.",
        "loop_lag",
        None,
    ),
    (
        "wsfast_loop_lag_max_seconds",
        "gauge",
        "The largest loop lag seen.",
        "loop_lag_max",
        None,
    ),
    ("wsfast_uptime_seconds", "gauge", "Seconds since the server started.", "uptime", None),
)


def _value(value: float) -> str:
    # prometheus_client writes floats: repr() round-trips, with +Inf/NaN spelt its way.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render_prometheus(stats: ServerStats) -> str:
    """The Prometheus text exposition (format 0.0.4) of a snapshot.

    Counters are named ``<family>_total``; labelled ones (``code``, ``status``)
    have one sample per label value seen.

    Args:
        stats: the snapshot.

    Returns:
        The text, ending with a newline.
    """
    lines: list[str] = []
    for family, kind, help_text, attribute, label in _FAMILIES:
        name = f"{family}_total" if kind == "counter" else family
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        value = getattr(stats, attribute)
        if label is None:
            lines.append(f"{name} {_value(value)}")
        else:
            for key, count in sorted(value.items()):
                lines.append(f'{name}{{{label}="{key}"}} {_value(count)}')
    return "\n".join(lines) + "\n"
