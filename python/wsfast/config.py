# SPDX-License-Identifier: MIT
"""Server options, checked once when the server is created.

:func:`wsfast.serve` takes these as keyword arguments and builds a
:class:`ServerConfig`; the loop then reads plain attributes, never re-validating.
Every option is checked for its type (``TypeError``) and range (``ValueError``)
there, with a message naming the option, what it must be and what it got
("max_size must be a positive int, got -1"), so that a bad option fails at
``serve()`` rather than later in the loop.
"""

from __future__ import annotations

import math
import ssl as _ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from wsfast._native import rust as _rust

__all__ = [
    "DEFAULT_BUSY_POLL_US",
    "DEFAULT_DASHBOARD_PATH",
    "DEFAULT_METRICS_PATH",
    "DEFAULT_WRITE_LIMIT",
    "ServerConfig",
    "SlowConsumerPolicy",
]

#: What to do with a connection whose peer does not read fast enough.
SlowConsumerPolicy = Literal["close", "drop"]

#: Default (high, low) write-buffer water marks, in bytes.
DEFAULT_WRITE_LIMIT = (4 << 20, 1 << 20)

#: Busy-poll budget in microseconds for ``busy_poll=True``: long enough to cover the
#: gap between a reply and the next request of a client on the same host.
DEFAULT_BUSY_POLL_US = 200

#: Longest HTTP request head accepted, in bytes (longer gets a 431).
MAX_REQUEST_HEAD = 16384

#: Where ``metrics=True`` serves the Prometheus text exposition.
DEFAULT_METRICS_PATH = "/metrics"

#: Where ``dashboard=True`` serves the live dashboard page (its feed is below it).
DEFAULT_DASHBOARD_PATH = "/_wsfast/dashboard"

_TIMEOUTS = ("handshake_timeout", "ping_interval", "ping_timeout", "idle_timeout", "close_timeout")


# ---- checks: TypeError for a wrong type, ValueError for a value out of range -----------


def _is_int(value: object) -> bool:
    # bool is an int subclass, but True as a port or a size is a mistake.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value: object, low: int, high: int | None, what: str) -> None:
    if not _is_int(value):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    assert isinstance(value, int)
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {what}, got {value!r}")


def _check_seconds(name: str, value: object) -> None:
    what = "a positive number of seconds or None"
    if value is None:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if not value > 0 or math.isnan(value):
        raise ValueError(f"{name} must be {what}, got {value!r}")


def _check_path(name: str, value: object) -> None:
    what = "None or a path starting with '/'"
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if not value.startswith("/") or "?" in value or any(c.isspace() for c in value):
        raise ValueError(f"{name} must be {what}, got {value!r}")


def endpoint_path(name: str, value: object, default: str) -> str | None:
    """The path of an optional built-in endpoint from a ``serve()`` option.

    Args:
        name: the option's name, for error messages.
        value: False or None (off), True (on, at ``default``) or a path.
        default: the path for True.

    Returns:
        The path, or None when the endpoint is off.

    Raises:
        TypeError: if ``value`` is neither a bool, None nor a str.
        ValueError: if it is a str that is not an absolute path.
    """
    if value is True:
        return default
    if value is False or value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a bool or a path starting with '/', got {value!r}")
    _check_path(name, value)
    return value


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Every option of a server (see :func:`wsfast.serve` for their meaning).

    Attributes:
        host: interface to listen on.
        port: TCP port, 0 for any free port.
        subprotocols: subprotocols the server supports, in order of preference.
        deflate: permessage-deflate preferences, or None to never compress.
        max_size: largest message accepted, in bytes (after decompression).
        origins: allowed Origin values (None in the list allows requests without
            Origin), or None to allow any.
        handshake_timeout: seconds to receive the request head, or None.
        ping_interval: seconds between keepalive pings, or None.
        ping_timeout: seconds to wait for the keepalive pong, or None.
        idle_timeout: close after this many seconds without a message, or None.
        close_timeout: seconds to wait for the closing handshake, or None.
        write_limit: (high, low) write-buffer water marks in bytes.
        slow_consumer: "close" (fail with 1008) or "drop" (drop new messages) when a
            handler sends to a connection that is over its high-water mark.
        ssl: TLS context for wss://, or None.
        backlog: listen() backlog.
        http_handler: called with a Request for plain (non-upgrade) HTTP requests.
        busy_poll_us: spin on epoll for up to this many microseconds before blocking
            (0 = never spin).
        metrics_path: where ``GET`` answers with the Prometheus text exposition of
            ``Server.stats()``, or None (off).
        dashboard_path: where ``GET`` answers with the live dashboard page, or
            None (off); its WebSocket feed is ``dashboard_path + "/feed"``.
        max_connections: most open WebSocket connections; further upgrade requests
            get 503 with Retry-After. None for no limit.
        max_buffered: cap in bytes on the output buffered across all connections;
            over it, sends to connections with output still queued get the
            slow-consumer policy. None for no cap.

    Raises:
        TypeError: if an option has the wrong type.
        ValueError: if an option is out of range.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    subprotocols: tuple[str, ...] = ()
    deflate: Any = None
    max_size: int = 1 << 20
    origins: tuple[str | None, ...] | None = None
    handshake_timeout: float | None = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    idle_timeout: float | None = None
    close_timeout: float | None = 10.0
    write_limit: tuple[int, int] = DEFAULT_WRITE_LIMIT
    slow_consumer: SlowConsumerPolicy = "close"
    ssl: _ssl.SSLContext | None = None
    backlog: int = 1024
    http_handler: Any = field(default=None, compare=False)
    busy_poll_us: int = 0
    metrics_path: str | None = None
    dashboard_path: str | None = None
    max_connections: int | None = None
    max_buffered: int | None = None

    def __post_init__(self) -> None:
        self._check_network()
        _check_int("max_size", self.max_size, 1, None, "a positive int")
        for name in _TIMEOUTS:
            _check_seconds(name, getattr(self, name))
        self._check_flow()
        self._check_endpoints()
        self._check_limits()

    def _check_network(self) -> None:
        if not isinstance(self.host, str):
            raise TypeError(f"host must be a str, got {self.host!r}")
        _check_int("port", self.port, 0, 65535, "an int in 0..65535")
        _check_int("backlog", self.backlog, 1, None, "a positive int")
        if self.ssl is not None and not isinstance(self.ssl, _ssl.SSLContext):
            raise TypeError(f"ssl must be an ssl.SSLContext or None, got {self.ssl!r}")
        if not all(isinstance(p, str) and p for p in self.subprotocols):
            raise TypeError(f"subprotocols must be non-empty strs, got {self.subprotocols!r}")
        if self.origins is not None and not all(
            o is None or isinstance(o, str) for o in self.origins
        ):
            raise TypeError(f"origins must be strs or None, got {self.origins!r}")
        if self.http_handler is not None and not callable(self.http_handler):
            raise TypeError(f"http_handler must be callable or None, got {self.http_handler!r}")

    def _check_flow(self) -> None:
        what = "(high, low) ints with 0 <= low <= high"
        limit = self.write_limit
        if not (isinstance(limit, tuple) and len(limit) == 2 and all(map(_is_int, limit))):
            raise TypeError(f"write_limit must be {what}, got {limit!r}")
        high, low = limit
        if not 0 <= low <= high:
            raise ValueError(f"write_limit must be {what}, got {limit!r}")
        if self.slow_consumer not in ("close", "drop"):
            raise ValueError(f"slow_consumer must be 'close' or 'drop', got {self.slow_consumer!r}")
        _check_int("busy_poll", self.busy_poll_us, 0, 1_000_000, "0..1000000 microseconds")

    def _check_limits(self) -> None:
        for name in ("max_connections", "max_buffered"):
            value = getattr(self, name)
            if value is not None:
                _check_int(name, value, 1, None, "a positive int or None")

    def _check_endpoints(self) -> None:
        _check_path("metrics_path", self.metrics_path)
        _check_path("dashboard_path", self.dashboard_path)
        paths = [p for p in (self.metrics_path, self.dashboard_path) if p is not None]
        if "/health" in paths or len(set(paths)) < len(paths):
            raise ValueError(f"metrics and dashboard need paths of their own, got {paths}")

    @staticmethod
    def make(
        *,
        compression: bool | Any = True,
        origins: Sequence[str | None] | None = None,
        subprotocols: Sequence[str] = (),
        write_limit: tuple[int, int] | int = DEFAULT_WRITE_LIMIT,
        busy_poll: bool | int = False,
        metrics: bool | str | None = False,
        dashboard: bool | str | None = False,
        **options: Any,
    ) -> ServerConfig:
        """Build a config from :func:`wsfast.serve`'s arguments.

        Args:
            compression: True for default permessage-deflate settings, False to
                disable it, or a ``DeflateConfig`` with explicit parameters.
            origins: allowed Origin header values, or None for any.
            subprotocols: supported subprotocols.
            write_limit: (high, low) water marks, or just high (low = high // 4).
            busy_poll: False, True (spin for DEFAULT_BUSY_POLL_US), or a budget in
                microseconds.
            metrics: False, True (serve ``DEFAULT_METRICS_PATH``) or a path.
            dashboard: False, True (serve ``DEFAULT_DASHBOARD_PATH``) or a path.
            **options: the other ServerConfig fields.

        Returns:
            The checked configuration.

        Raises:
            ValueError: if an option is out of range.
            TypeError: if an option has the wrong type.
        """
        if compression is True:
            deflate = _rust.DeflateConfig()
        elif compression is False or compression is None:
            deflate = None
        elif isinstance(compression, _rust.DeflateConfig):
            deflate = compression
        else:
            raise TypeError(f"compression must be a bool or DeflateConfig, not {compression!r}")
        if _is_int(write_limit):
            assert isinstance(write_limit, int)
            write_limit = (write_limit, write_limit // 4)
        elif isinstance(write_limit, list):
            write_limit = (*write_limit,)
        # A lone str would pass as a sequence of one-character strs.
        for name, value in (("origins", origins), ("subprotocols", subprotocols)):
            if isinstance(value, (str, bytes)):
                raise TypeError(f"{name} must be a sequence of strs, got {value!r}")
        return ServerConfig(
            busy_poll_us=busy_poll_us(busy_poll),
            deflate=deflate,
            origins=None if origins is None else tuple(origins),
            subprotocols=tuple(subprotocols),
            write_limit=write_limit,  # type: ignore[arg-type]
            metrics_path=endpoint_path("metrics", metrics, DEFAULT_METRICS_PATH),
            dashboard_path=endpoint_path("dashboard", dashboard, DEFAULT_DASHBOARD_PATH),
            **options,
        )


def busy_poll_us(value: bool | int) -> int:
    """The busy-poll budget in microseconds, for the server and the client alike.

    Raises:
        TypeError: if ``value`` is not a bool or an int (a float is refused rather than
            truncated: ``50e-6`` meant as seconds would silently be 0).
        ValueError: if it is outside 0..1000000.
    """
    if value is True:
        return DEFAULT_BUSY_POLL_US
    if value is False:
        return 0
    if not isinstance(value, int):
        raise TypeError(f"busy_poll must be a bool or microseconds as int, got {value!r}")
    if not 0 <= value <= 1_000_000:
        raise ValueError(f"busy_poll must be 0..1000000 microseconds, got {value}")
    return int(value)
