# SPDX-License-Identifier: MIT
"""The transport contract: what a server connection needs from its transport, and back.

A transport owns one accepted socket: it reads, writes, runs the connection's
timers and, once upgraded, feeds received bytes to the protocol core. Its *owner*
(``Transport.owner``) is the object it reports to: a handshake adapter until the
request head is decided, then the :class:`wsfast.Connection`. The epoll loop's
``wsfast._cy.Transport`` is today's only implementation; another front end (an
asyncio server, an ASGI backend, a worker process) implements :class:`Transport`
and calls a :class:`TransportOwner`, and the rest of wsfast works unchanged.

The classes below are ``typing.Protocol`` classes: mypy checks them; nothing
inherits from them. They are written from what the code uses today: every member is
called by ``connection.py`` or ``server.py``, or by the Cython transport.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["ServerTransport", "Transport", "TransportOwner"]

# Bytes-like data a connection may send.
_Data = str | bytes | bytearray | memoryview


class TransportOwner(Protocol):
    """What a transport calls on its owner (``transport.owner``).

    Every call comes from the transport's thread (the loop's). An owner must not let
    an exception escape from :meth:`connection_lost` or :meth:`resume_writing`: the
    transport logs it and goes on.
    """

    def http_data_received(self, data: bytes) -> None:
        """Bytes arrived before the upgrade (the request head, and what follows it).

        Args:
            data: the bytes of one read.
        """

    def connection_lost(self) -> None:
        """The socket closed (once, whatever the reason): the connection is over."""

    def resume_writing(self) -> None:
        """Output fell to the low-water mark after exceeding the high-water mark."""

    def handler_failed(self, exc: Exception) -> None:
        """A callback that the core dispatched raised ``exc``.

        The rest of that batch of events is dropped; the owner decides how the
        connection fails (the server's Connection closes it with 1011).

        Args:
            exc: the exception.
        """


class Transport(Protocol):
    """What a connection and the server's handshake need from a transport.

    Attributes:
        owner: the owner that receives the callbacks of :class:`TransportOwner`;
            the handshake adapter sets it to the Connection at the upgrade.
    """

    owner: TransportOwner | None

    # ---- identity and state ---------------------------------------------------

    @property
    def remote_address(self) -> tuple[str, int] | None:
        """The peer's (host, port), or None if unknown."""

    @property
    def closed(self) -> bool:
        """True once the socket is closed (after which every call is a no-op)."""

    # ---- before the upgrade ---------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue raw bytes (an HTTP response) ahead of any WebSocket output."""

    def close_after_write(self) -> None:
        """Close the connection once everything queued is written (plain HTTP)."""

    def upgrade(self, core: Any) -> None:
        """Switch to WebSocket mode: from now on received bytes go to ``core``.

        Args:
            core: the connection's ``wsfast._cy.Core``.
        """

    def feed(self, data: bytes) -> None:
        """Hand bytes that arrived with the request head to the core (after upgrade)."""

    # ---- sending (each raises ConnectionClosed once closing or closed) --------

    def send(self, data: _Data) -> None:
        """Send a message: ``str`` as text, bytes-like as binary."""

    def send_text(self, data: str | bytes, fin: bool = True) -> None:
        """Send a text frame."""

    def send_binary(self, data: bytes | bytearray | memoryview, fin: bool = True) -> None:
        """Send a binary frame."""

    def send_continuation(self, data: _Data, fin: bool) -> None:
        """Send a continuation frame of a fragmented message."""

    def ping(self, data: bytes = b"") -> None:
        """Send a ping."""

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (no-op once it started)."""

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection with a close frame, ignoring further input."""

    def abort(self) -> None:
        """Close the socket now, without a closing handshake."""

    # ---- flow control -----------------------------------------------------------

    @property
    def buffered_amount(self) -> int:
        """Bytes queued and not yet accepted by the kernel."""

    @property
    def writable(self) -> bool:
        """False while output is over the high-water mark (until it drains)."""

    @property
    def dropped(self) -> int:
        """Messages dropped by the "drop" slow-consumer policy."""


class ServerTransport(Transport, Protocol):
    """A :class:`Transport` as the epoll server configures it when it accepts.

    Attributes:
        high_water: above this many buffered bytes the connection is paused: it
            stops reading, and sends follow the slow-consumer policy.
        low_water: a paused connection resumes (and its owner's
            :meth:`TransportOwner.resume_writing` runs) once output falls to this.
        policy: the slow-consumer policy, ``wsfast._cy.POLICY_CLOSE`` or
            ``POLICY_DROP``.
        handshake_timeout: seconds to receive the request head (0: none).
        ping_interval: seconds between keepalive pings (0: none).
        ping_timeout: seconds to wait for a keepalive pong (0: none).
        idle_timeout: seconds without a received message before closing (0: none).
        close_timeout: seconds to wait for the closing handshake (0: none).
    """

    high_water: int
    low_water: int
    policy: int
    handshake_timeout: float
    ping_interval: float
    ping_timeout: float
    idle_timeout: float
    close_timeout: float

    def start_tls(self, context: Any) -> None:
        """Serve this connection over TLS (server side).

        Args:
            context: an ``ssl.SSLContext``.
        """
