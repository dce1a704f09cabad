# SPDX-License-Identifier: MIT
"""Server-side connection objects: what handlers receive and send through.

A :class:`Connection` is glue over two native objects: its transport (socket, write
queue, flow control, timers; see :class:`wsfast.transport.Transport`) and the
protocol core (``wsfast._cy.Core``). Received messages never pass through this
module: the core calls the handler directly. Only sends and lifecycle callbacks do.

What a Connection needs from the server that accepted it is
:class:`ConnectionServer`; ``wsfast.Server`` is one, and so can another front end
be. This module imports nothing above it (neither ``server.py`` nor ``handshake.py``).

Every method runs on the server loop's thread. From another thread, go through
:meth:`wsfast.Server.call_soon_threadsafe`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from wsfast._core import closed_error
from wsfast.exceptions import ConnectionClosed, InvalidState
from wsfast.frames import CloseCode, State
from wsfast.handler import Handler, Request
from wsfast.topics import Subscription, check_topic
from wsfast.transport import Transport

__all__ = ["Connection", "ConnectionServer"]

logger = logging.getLogger("wsfast.server")

#: The topics of a connection that never subscribed (shared, immutable).
_NO_TOPICS: frozenset[str] = frozenset()

Data = str | bytes | bytearray | memoryview


class ConnectionServer(Protocol):
    """What a :class:`Connection` needs from its server (``wsfast.Server`` is one).

    :meth:`connection_closed` is what the connection calls; the rest is what
    handlers may use through ``conn.server`` (each safe from any thread).
    """

    def connection_closed(self, conn: Connection) -> None:
        """Forget ``conn``: its socket closed (called once, before ``on_close``)."""

    @property
    def connections(self) -> set[Connection]:
        """A snapshot of the open connections."""

    def broadcast(self, data: str | bytes, connections: Iterable[Connection] | None = None) -> int:
        """Send one message to many connections (see ``wsfast.Server.broadcast``)."""

    def call_soon_threadsafe(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread as soon as possible."""

    def call_later(self, delay: float, fn: Callable[..., object], *args: Any) -> Any:
        """Run ``fn(*args)`` on the loop thread once, after ``delay`` seconds."""

    def call_every(self, interval: float, fn: Callable[..., object], *args: Any) -> Any:
        """Run ``fn(*args)`` on the loop thread every ``interval`` seconds."""

    def close(self, code: int = CloseCode.GOING_AWAY, drain: float = 2.0) -> None:
        """Shut the server down (see ``wsfast.Server.close``)."""


class Connection:
    """One open WebSocket connection on a server.

    The three send methods are the transport's own native methods, bound when the
    connection is created: a handler's ``conn.send(data)`` is one C call, with no
    Python frame in between (the echo path runs it once per message).

    Attributes:
        data: a dict for the application's own per-connection state.
        send: ``send(data)`` sends a message: ``str`` as a text message, bytes-like
            as a binary one. Large bytes-like payloads are written without copying:
            do not modify a ``bytearray`` or buffer after passing it, until
            :attr:`buffered_amount` is 0. While the connection is over its high-water
            mark (:attr:`writable` is False), the server's slow-consumer policy
            applies: with "drop" the message is silently dropped (see
            :attr:`dropped`), with "close" the connection fails with 1008 and the
            message is not sent. Raises ConnectionClosed if the connection is closing
            or closed, TypeError if ``data`` is neither str nor bytes-like.
        send_text: ``send_text(data, fin=True)`` sends a text frame (``str`` or UTF-8
            bytes); ``fin=False`` starts a fragmented message. Raises
            ConnectionClosed if the connection is closing or closed.
        send_binary: ``send_binary(data, fin=True)`` sends a binary frame;
            ``fin=False`` starts a fragmented message. Raises ConnectionClosed if the
            connection is closing or closed.
    """

    __slots__ = (
        "_closed_notified",
        "_core",
        "_deflate_config",
        "_deflate_params",
        "_extensions",
        "_handler",
        "_request",
        "_server",
        "_subprotocol",
        "_t",
        "_topics",
        "data",
        "send",
        "send_binary",
        "send_text",
    )

    def __init__(
        self,
        server: ConnectionServer,
        transport: Transport,
        core: Any,
        handler: Handler,
        request: Request,
        subprotocol: str | None,
        extensions: str | None,
        *,
        deflate_params: Any = None,
        deflate_config: Any = None,
    ) -> None:
        self._server = server
        self._t = transport
        self._core = core
        self._handler = handler
        self._request = request
        self._subprotocol = subprotocol
        self._extensions = extensions
        self._closed_notified = False
        # Which shared compressor (if any) may encode topic messages for this peer.
        self._deflate_params = deflate_params
        self._deflate_config = deflate_config
        # Most connections never subscribe: share one empty frozenset until they do
        # (the broker swaps in a set), 200 bytes less per connection.
        self._topics: set[str] | frozenset[str] = _NO_TOPICS
        self.data: dict[str, Any] = {}
        # Bound native methods (see the class docstring).
        self.send: Callable[[Data], None] = transport.send
        self.send_text: Callable[..., None] = transport.send_text
        self.send_binary: Callable[..., None] = transport.send_binary

    def __repr__(self) -> str:
        return f"<Connection {self.path!r} from {self.remote_address} {self.state.name}>"

    # ---- sending ------------------------------------------------------------------

    def send_continuation(self, data: Data, fin: bool) -> None:
        """Send the next frame of a fragmented message.

        Args:
            data: the payload (``str`` is encoded as UTF-8).
            fin: whether this frame ends the message.

        Raises:
            ConnectionClosed: if the connection is closing or closed.
            InvalidState: if no fragmented message is in progress.
        """
        self._t.send_continuation(data, fin)

    def ping(self, data: bytes = b"") -> None:
        """Send a ping; the pong arrives at the handler's ``on_pong``.

        Args:
            data: at most 125 bytes of payload.

        Raises:
            ConnectionClosed: if the connection is closing or closed.
            ValueError: if ``data`` is longer than 125 bytes.
        """
        self._t.ping(data)

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake. Does nothing if it already started.

        The socket closes once the client answers, or after the server's
        ``close_timeout``; ``on_close`` runs then.

        Args:
            code: the close code.
            reason: a short UTF-8 reason (at most 123 bytes).

        Raises:
            ValueError: if ``code`` cannot be sent or ``reason`` is too long.
        """
        self._t.close(code, reason)

    def abort(self) -> None:
        """Close the TCP connection at once, without a closing handshake."""
        self._t.abort()

    # ---- topics -------------------------------------------------------------------

    def _broker(self) -> Any:
        broker = getattr(self._server, "topics", None)
        if broker is None:
            raise NotImplementedError("this server has no topics")
        return broker

    def subscribe(self, topic: str, since: tuple[str, int] | None = None) -> Subscription:
        """Subscribe to a topic: every later publication on it is sent here.

        Subscribing again is a no-op (``since`` is then ignored). With ``since``, the
        publications after that position that this connection missed are queued
        first, in order, if the topic's history still holds all of them.

        Args:
            topic: the topic name (``str``, 1 to 255 UTF-8 bytes).
            since: ``(epoch, offset)``: the last position this subscriber saw (a
                ``StreamPosition`` works too), or None.

        Returns:
            The :class:`~wsfast.topics.Subscription`: the stream position, whether
            recovery succeeded (False: reload the state), how many were resent.

        Raises:
            TypeError: if ``topic`` is not a ``str``.
            ValueError: if ``topic`` is empty or too long.
            ConnectionClosed: if the connection is closing or closed.
        """
        check_topic(topic)
        if self.state is not State.OPEN:
            raise self._closed_error()
        sub: Subscription = self._broker().subscribe(self, topic, since)
        return sub

    def unsubscribe(self, topic: str) -> bool:
        """Stop receiving a topic's publications.

        Args:
            topic: the topic name.

        Returns:
            Whether the connection was subscribed.

        Raises:
            TypeError: if ``topic`` is not a ``str``.
            ValueError: if ``topic`` is empty or too long.
        """
        check_topic(topic)
        if topic not in self._topics:
            return False
        return bool(self._broker().unsubscribe(self, topic))

    @property
    def topics(self) -> frozenset[str]:
        """The topics this connection is subscribed to."""
        return frozenset(self._topics)

    def publish(self, topic: str, data: Data) -> int:
        """Publish to a topic's subscribers, except this connection.

        Args:
            topic: the topic name.
            data: ``str`` for a text message, bytes-like for a binary one.

        Returns:
            The number of local deliveries queued.

        Raises:
            TypeError: if ``topic`` is not a ``str`` or ``data`` is neither str nor
                bytes-like.
            ValueError: if ``topic`` is empty or too long.
        """
        publish = getattr(self._server, "publish", None)
        if publish is None:
            raise NotImplementedError("this server has no topics")
        return int(publish(topic, data, exclude=self))

    @property
    def topic_deliveries(self) -> int:
        """Topic messages queued for this connection."""
        t: Any = self._t  # a native counter, not part of the transport contract
        return int(t.published)

    @property
    def topic_skipped(self) -> int:
        """Topic messages skipped because this connection was slow ("skip" policy)."""
        t: Any = self._t
        return int(t.skipped)

    # ---- flow control -------------------------------------------------------------

    @property
    def buffered_amount(self) -> int:
        """Bytes queued for this connection that the kernel has not accepted yet."""
        return int(self._t.buffered_amount)

    @property
    def writable(self) -> bool:
        """False from the moment output exceeds the high-water mark until it drains.

        The handler's ``on_drain`` runs when output falls back to the low-water mark.
        """
        return bool(self._t.writable)

    @property
    def dropped(self) -> int:
        """Messages dropped by the "drop" slow-consumer policy."""
        return int(self._t.dropped)

    # ---- request and state --------------------------------------------------------

    @property
    def request(self) -> Request:
        """The upgrade request."""
        return self._request

    @property
    def path(self) -> str:
        """The request path, without the query string."""
        return self._request.path

    @property
    def query(self) -> str:
        """The query string, without the ``?`` (empty if none)."""
        return self._request.query

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """The request headers as (name, value) pairs, in order."""
        return self._request.headers

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, or None."""
        return self._subprotocol

    @property
    def extensions(self) -> str | None:
        """The negotiated Sec-WebSocket-Extensions value, or None."""
        return self._extensions

    @property
    def remote_address(self) -> tuple[str, int] | None:
        """The client's (host, port)."""
        addr: tuple[str, int] | None = self._t.remote_address
        return addr

    @property
    def server(self) -> ConnectionServer:
        """The server this connection belongs to."""
        return self._server

    @property
    def state(self) -> State:
        """OPEN, CLOSING or CLOSED."""
        if self._t.closed:
            return State.CLOSED
        return State(self._core.state)

    @property
    def close_code(self) -> int | None:
        """The close code received (1006 if the socket closed without one), or None."""
        received = self._core.close_received
        if received is None:
            return CloseCode.ABNORMAL_CLOSURE if self._t.closed else None
        return int(received[0])

    @property
    def close_reason(self) -> str | None:
        """The close reason received, or None."""
        received = self._core.close_received
        if received is None:
            return "" if self._t.closed else None
        return str(received[1])

    def _closed_error(self) -> ConnectionClosed:
        """The exception for an operation on this connection once it is closing or closed.

        Decided by ``wsfast._core.closed_error``, the rule the clients use too.
        """
        return closed_error(self._core)

    # ---- callbacks from the transport (wsfast.transport.TransportOwner) ------------

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(self, *args)
        except Exception as exc:
            self.handler_failed(exc)

    def _open(self) -> None:
        self._call(self._handler.on_open)

    def handler_failed(self, exc: Exception) -> None:
        """A handler callback raised ``exc``: log it, tell ``on_error``, fail with 1011.

        Called by the transport (and by this class); not for applications.

        Args:
            exc: the exception.
        """
        logger.error("handler error on %s from %s", self.path, self.remote_address, exc_info=exc)
        try:
            self._handler.on_error(self, exc)
        except Exception:
            logger.exception("on_error failed on %s", self.path)
        self._t.fail(CloseCode.INTERNAL_ERROR, "internal error")

    def resume_writing(self) -> None:
        """Output drained to the low-water mark: run the handler's ``on_drain``.

        Called by the transport; not for applications.
        """
        self._call(self._handler.on_drain)

    def connection_lost(self) -> None:
        """The socket closed: forget the connection and run the handler's ``on_close``.

        Called by the transport (once); not for applications.
        """
        if self._closed_notified:
            return
        self._closed_notified = True
        if self._topics:
            self._broker().unsubscribe_all(self)
        self._server.connection_closed(self)
        code = self.close_code
        reason = self.close_reason or ""
        try:
            self._handler.on_close(
                self, CloseCode.ABNORMAL_CLOSURE if code is None else code, reason
            )
        except Exception as exc:
            logger.error("on_close failed on %s", self.path, exc_info=exc)
            try:
                self._handler.on_error(self, exc)
            except Exception:
                logger.exception("on_error failed on %s", self.path)

    def http_data_received(self, data: bytes) -> None:
        """Never called once upgraded: the transport feeds the core instead.

        Raises:
            InvalidState: always.
        """
        raise InvalidState("connection already upgraded")
