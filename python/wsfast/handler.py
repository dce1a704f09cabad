# SPDX-License-Identifier: MIT
"""What applications write: handlers, and the HTTP values of the opening handshake.

A :class:`Handler` (or an :class:`App` of decorated functions) receives a
connection's events; :class:`Request` is the request head it sees in
``on_handshake`` and ``http_handler``, and :class:`HandshakeResponse` /
:data:`HTTPResponse` are what it answers. Nothing here does I/O, so every front
end (the epoll server, and the next ones) serves the same handlers.

This module sits at the bottom of the server's layers (``connection.py``,
``handshake.py`` and ``server.py`` import it), so it never imports them: a callback's
``conn`` is typed ``Any`` here; it is a :class:`wsfast.Connection`, and an override
may annotate it as one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

__all__ = [
    "App",
    "HTTPResponse",
    "Handler",
    "HandshakeResponse",
    "Request",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The connection a callback receives (a ``wsfast.Connection``; see the module docstring).
_Conn: TypeAlias = Any

#: What an ``http_handler`` returns: (status, headers, body), or None for the default.
HTTPResponse = tuple[int, Sequence[tuple[str, str]], bytes | str]


class Request:
    """An HTTP request head, as seen by ``on_handshake`` and ``http_handler``.

    Immutable. A server holds one per open connection, so the headers of an upgrade
    are kept as the raw head (one ``bytes``) and parsed into pairs on first use:
    about 700 bytes less per idle connection than a tuple of string pairs.

    Attributes:
        method: the request method, e.g. "GET".
        path: the request path without the query string, e.g. "/chat".
        query: the query string without "?", e.g. "room=1" (empty if none).
        headers: (name, value) pairs in the order received.
        remote_address: the client's (host, port).
        subprotocols: subprotocols the client offered (upgrades only).
    """

    __slots__ = ("_headers", "_raw", "method", "path", "query", "remote_address", "subprotocols")

    method: str
    path: str
    query: str
    remote_address: tuple[str, int] | None
    subprotocols: tuple[str, ...]
    _headers: tuple[tuple[str, str], ...] | None
    _raw: bytes | None

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[str, str]] = (),
        remote_address: tuple[str, int] | None = None,
        subprotocols: Sequence[str] = (),
        *,
        raw_head: bytes | None = None,
    ) -> None:
        """Make a request head.

        Args:
            method: the request method.
            path: the path without the query string.
            query: the query string without "?".
            headers: (name, value) pairs; ignored when ``raw_head`` is given.
            remote_address: the client's (host, port).
            subprotocols: subprotocols the client offered.
            raw_head: the complete head as received (through the blank line); its
                headers are parsed when first read.
        """
        setter = object.__setattr__
        setter(self, "method", method)
        setter(self, "path", path)
        setter(self, "query", query)
        setter(self, "_headers", None if raw_head is not None else tuple(headers))
        setter(self, "_raw", raw_head)
        setter(self, "remote_address", remote_address)
        setter(self, "subprotocols", tuple(subprotocols))

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """(name, value) pairs in the order received."""
        headers: tuple[tuple[str, str], ...] | None = self._headers
        if headers is None:
            from wsfast._rust import parse_request_head

            parsed = parse_request_head(self._raw or b"")
            headers = tuple(parsed[0].headers) if parsed is not None else ()
            object.__setattr__(self, "_headers", headers)
            object.__setattr__(self, "_raw", None)
        return headers

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Request is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Request is immutable: cannot delete {name!r}")

    def _key(self) -> tuple[object, ...]:
        return (
            self.method,
            self.path,
            self.query,
            self.headers,
            self.remote_address,
            self.subprotocols,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Request(method={self.method!r}, path={self.path!r}, query={self.query!r}, "
            f"headers={self.headers!r}, remote_address={self.remote_address!r}, "
            f"subprotocols={self.subprotocols!r})"
        )

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header, matched case-insensitively.

        Args:
            name: the header name.
            default: returned when the header is absent.

        Returns:
            The value, or ``default``.
        """
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return default

    @property
    def origin(self) -> str | None:
        """The Origin header, or None."""
        return self.get("Origin")


@dataclass(slots=True)
class HandshakeResponse:
    """What ``Handler.on_handshake`` returns to accept or reject an upgrade.

    Attributes:
        status: 101 to accept; any 200-599 status rejects with that status.
        body: the body of a rejection (sent as text/plain unless headers say otherwise).
        headers: extra response headers, for acceptance and rejection alike.
        subprotocol: the subprotocol to accept with (overrides the default choice).
    """

    status: int = 101
    body: bytes | str = b""
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)
    subprotocol: str | None = None

    @classmethod
    def accept(
        cls, subprotocol: str | None = None, headers: Sequence[tuple[str, str]] = ()
    ) -> HandshakeResponse:
        """Accept the upgrade.

        Args:
            subprotocol: the subprotocol to select, or None for the default choice.
            headers: extra headers for the 101 response.

        Returns:
            The response.
        """
        return cls(101, b"", tuple(headers), subprotocol)

    @classmethod
    def reject(
        cls, status: int, body: bytes | str = b"", headers: Sequence[tuple[str, str]] = ()
    ) -> HandshakeResponse:
        """Refuse the upgrade with an HTTP error.

        Args:
            status: the HTTP status, e.g. 401 or 403.
            body: the response body.
            headers: extra response headers.

        Returns:
            The response.
        """
        return cls(status, body, tuple(headers), None)


class Handler:
    """Base class for WebSocket handlers; every callback is a no-op by default.

    One handler instance serves every connection of its route, so keep
    per-connection state in ``conn.data``. Callbacks run on the loop thread and
    must not block. An exception from a callback is logged, passed to
    :meth:`on_error`, and fails that connection with 1011.
    """

    def on_handshake(self, request: Request) -> HandshakeResponse | None:
        """Decide on an upgrade request before it is accepted.

        Args:
            request: the request head.

        Returns:
            None to accept with the defaults, or a :class:`HandshakeResponse`.
        """
        return None

    def on_open(self, conn: _Conn) -> None:
        """The handshake completed; ``conn`` can send."""

    def on_message(self, conn: _Conn, data: str | bytes) -> None:
        """A complete message arrived: ``str`` for text, ``bytes`` for binary."""

    def on_ping(self, conn: _Conn, data: bytes) -> None:
        """A ping arrived (the pong is sent automatically)."""

    def on_pong(self, conn: _Conn, data: bytes) -> None:
        """A pong arrived."""

    def on_close(self, conn: _Conn, code: int, reason: str) -> None:
        """The connection closed; ``code`` is 1006 if no close frame came."""

    def on_error(self, conn: _Conn, exc: Exception) -> None:
        """A callback raised ``exc``; the connection fails with 1011 after this."""

    def on_drain(self, conn: _Conn) -> None:
        """Output fell to the low-water mark after exceeding the high-water mark."""


_EVENTS = ("handshake", "open", "message", "ping", "pong", "close", "error", "drain")


class App(Handler):
    """A handler built from decorated functions, with optional path routes.

    Example::

        app = wsfast.App()

        @app.on("message")
        def echo(conn, data):
            conn.send(data)

        @app.route("/chat")
        class Chat(wsfast.Handler): ...

        wsfast.serve(app, port=8000).serve_forever()
    """

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}

    def on(self, event: str) -> Callable[[F], F]:
        """Register a function as this app's callback for ``event``.

        Args:
            event: one of handshake, open, message, ping, pong, close, error, drain.
                The function takes the same arguments as the Handler method,
                without ``self``.

        Returns:
            A decorator returning the function unchanged.

        Raises:
            ValueError: for an unknown event.
        """
        if event not in _EVENTS:
            raise ValueError(f"unknown event {event!r}; expected one of {', '.join(_EVENTS)}")

        def decorator(fn: F) -> F:
            # An instance attribute shadows the method: the loop calls it directly.
            setattr(self, f"on_{event}", fn)
            return fn

        return decorator

    def route(self, path: str) -> Callable[[Any], Any]:
        """Register a Handler (class or instance) for an exact request path.

        Args:
            path: the request path, e.g. "/chat".

        Returns:
            A decorator returning its argument unchanged.
        """

        def decorator(handler: Any) -> Any:
            self.routes[path] = _as_handler(handler)
            return handler

        return decorator


def _as_handler(handler: Handler | type[Handler]) -> Handler:
    if isinstance(handler, type):
        return handler()
    return handler


def _callback(handler: Handler, name: str) -> Callable[..., Any] | None:
    """The handler's callback, or None when it is the base class's no-op."""
    fn: Callable[..., Any] = getattr(handler, name)
    if getattr(fn, "__func__", None) is getattr(Handler, name):
        return None
    return fn
