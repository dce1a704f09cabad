# SPDX-License-Identifier: MIT
"""Server options, checked once when the server is created.

:func:`wsfast.serve` takes these as keyword arguments and builds a
:class:`ServerConfig`; the loop then reads plain attributes, never re-validating.
"""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from wsfast._native import rust as _rust

__all__ = ["DEFAULT_BUSY_POLL_US", "DEFAULT_WRITE_LIMIT", "ServerConfig", "SlowConsumerPolicy"]

#: What to do with a connection whose peer does not read fast enough.
SlowConsumerPolicy = Literal["close", "drop"]

#: Default (high, low) write-buffer water marks, in bytes.
DEFAULT_WRITE_LIMIT = (4 << 20, 1 << 20)

#: Busy-poll budget in microseconds for ``busy_poll=True``: long enough to cover the
#: gap between a reply and the next request of a client on the same host.
DEFAULT_BUSY_POLL_US = 200

#: Longest HTTP request head accepted, in bytes (longer gets a 431).
MAX_REQUEST_HEAD = 16384


def _positive_or_none(name: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{name} must be positive or None, not {value}")


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
        max_connections: most open WebSocket connections; further upgrade requests
            get 503 with Retry-After. None for no limit.
        max_buffered: cap in bytes on the output buffered across all connections;
            over it, sends to connections with output still queued get the
            slow-consumer policy. None for no cap.
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
    max_connections: int | None = None
    max_buffered: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        if self.max_size <= 0:
            raise ValueError(f"max_size must be positive, not {self.max_size}")
        for name in (
            "handshake_timeout",
            "ping_interval",
            "ping_timeout",
            "idle_timeout",
            "close_timeout",
        ):
            _positive_or_none(name, getattr(self, name))
        high, low = self.write_limit
        if not 0 <= low <= high:
            raise ValueError(
                f"write_limit must be (high, low) with 0 <= low <= high, not {self.write_limit}"
            )
        if self.slow_consumer not in ("close", "drop"):
            raise ValueError(f"slow_consumer must be 'close' or 'drop', not {self.slow_consumer!r}")
        if self.backlog <= 0:
            raise ValueError(f"backlog must be positive, not {self.backlog}")
        if not 0 <= self.busy_poll_us <= 1_000_000:
            raise ValueError(f"busy_poll must be 0..1000000 microseconds, not {self.busy_poll_us}")
        if self.max_connections is not None and self.max_connections <= 0:
            raise ValueError(
                f"max_connections must be positive or None, not {self.max_connections}"
            )
        if self.max_buffered is not None and self.max_buffered <= 0:
            raise ValueError(f"max_buffered must be positive or None, not {self.max_buffered}")

    @staticmethod
    def make(
        *,
        compression: bool | Any = True,
        origins: Sequence[str | None] | None = None,
        subprotocols: Sequence[str] = (),
        write_limit: tuple[int, int] | int = DEFAULT_WRITE_LIMIT,
        busy_poll: bool | int = False,
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
            **options: the other ServerConfig fields.

        Returns:
            The checked configuration.

        Raises:
            ValueError: if an option is out of range.
            TypeError: if ``compression`` or ``busy_poll`` has the wrong type.
        """
        if compression is True:
            deflate = _rust.DeflateConfig()
        elif compression is False or compression is None:
            deflate = None
        elif isinstance(compression, _rust.DeflateConfig):
            deflate = compression
        else:
            raise TypeError(f"compression must be a bool or DeflateConfig, not {compression!r}")
        if isinstance(write_limit, int):
            write_limit = (write_limit, write_limit // 4)
        return ServerConfig(
            busy_poll_us=busy_poll_us(busy_poll),
            deflate=deflate,
            origins=None if origins is None else tuple(origins),
            subprotocols=tuple(subprotocols),
            write_limit=(int(write_limit[0]), int(write_limit[1])),
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
        raise TypeError(f"busy_poll must be a bool or microseconds as int, not {value!r}")
    if not 0 <= value <= 1_000_000:
        raise ValueError(f"busy_poll must be 0..1000000 microseconds, not {value}")
    return int(value)
