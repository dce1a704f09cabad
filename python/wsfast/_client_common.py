# SPDX-License-Identifier: MIT
"""What the blocking and asyncio clients share, so that each is only an I/O layer.

The handshake itself is Rust (``wsfast._rust``: request building, response parsing
and validation, permessage-deflate negotiation); this module holds the rest of what
does not depend on how bytes move: the URL and option rules, the state between
sending the request and reading the response (:class:`ClientHandshake`), what the
handshake negotiated (:class:`HandshakeInfo`), and the bookkeeping of pings and
control events (:class:`Pings`). How a connection ended is decided in
``wsfast._core`` (:func:`closed_error`), which the server's connections share.
"""

from __future__ import annotations

import base64
import os
import random
import ssl as ssl_module
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeAlias, TypeVar

from wsfast._core import closed_error, new_core
from wsfast._native import rust
from wsfast.exceptions import InvalidHandshake, InvalidProxyStatus, InvalidState, InvalidStatus
from wsfast.frames import Opcode

__all__ = [
    "EV_CLOSE",
    "EV_PONG",
    "KEEPALIVE_TIMEOUT_REASON",
    "Backoff",
    "ClientHandshake",
    "Data",
    "HandshakeInfo",
    "HeadersLike",
    "Pings",
    "check_keepalive",
    "closed_error",
    "header_list",
    "is_transient",
    "parse_url",
    "ssl_context",
]

#: A received message: ``str`` for text, ``bytes`` for binary.
Data: TypeAlias = str | bytes
#: Extra request headers: a mapping or ``(name, value)`` pairs.
HeadersLike: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]

#: Control event kinds in the lists ``ClientReader`` returns (cython_ext/client.pyx).
EV_CLOSE: Final = int(Opcode.CLOSE)
EV_PONG: Final = int(Opcode.PONG)

_DEFAULT_PORTS: Final = {"ws": 80, "wss": 443}
# Characters left alone when quoting the request target: RFC 3986 reserved ones and "%".
_TARGET_SAFE: Final = "!#$%&'()*+,/:;=?@[]~"

#: The close reason sent when a keepalive pong does not come (websockets' wording).
KEEPALIVE_TIMEOUT_REASON: Final = "keepalive ping timeout"
# HTTP statuses worth retrying: the server (or the proxy) is restarting or overloaded.
_TRANSIENT_STATUSES: Final = frozenset({500, 502, 503, 504})

W = TypeVar("W")


def check_keepalive(ping_interval: float | None, ping_timeout: float | None) -> None:
    """Check the keepalive options of a client.

    Raises:
        ValueError: if ``ping_interval`` or ``ping_timeout`` is not positive.
    """
    if ping_interval is not None and not ping_interval > 0:
        raise ValueError(f"ping_interval must be positive or None, not {ping_interval}")
    if ping_timeout is not None and not ping_timeout > 0:
        raise ValueError(f"ping_timeout must be positive or None, not {ping_timeout}")


@dataclass(frozen=True)
class Backoff:
    """How a reconnecting client waits between failed attempts.

    The n-th consecutive failure (from 0) waits ``min(initial_delay * factor**n,
    max_delay)`` seconds, less a random fraction of at most ``jitter`` of it, so
    that many clients that lost the same server do not all come back at once.

    Attributes:
        initial_delay: seconds before the first retry (before jitter).
        factor: how much each delay grows over the previous one.
        max_delay: the longest delay.
        jitter: the largest random fraction taken off each delay, 0 to 1 (1: "full
            jitter", each delay uniform between 0 and its value).

    Raises:
        ValueError: if a value is out of range.
    """

    initial_delay: float = 3.1
    factor: float = 1.618
    max_delay: float = 90.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.initial_delay <= self.max_delay:
            raise ValueError("backoff delays must satisfy 0 <= initial_delay <= max_delay")
        if not self.factor >= 1:
            raise ValueError(f"backoff factor must be at least 1, not {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff jitter must be between 0 and 1, not {self.jitter}")

    def delays(self, rand: Callable[[], float] = random.random) -> Iterator[float]:
        """Yield the delay before each retry, forever.

        Args:
            rand: a source of floats in [0, 1) (tests pass a fixed one).
        """
        delay = self.initial_delay
        while True:
            yield delay * (1.0 - self.jitter * rand())
            delay = min(delay * self.factor, self.max_delay)


def is_transient(exc: BaseException) -> bool:
    """Whether a reconnecting client should retry after failing to open with ``exc``.

    Retried, as in websockets: network errors and timeouts (``OSError``, a proxy
    that cannot be reached included), a connection closed during the opening
    handshake, and HTTP 500, 502, 503 or 504 from the server or the proxy. Anything
    else (a 4xx status, a bad URL, a refused negotiation) would fail again.
    """
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, InvalidStatus | InvalidProxyStatus):
        return exc.status in _TRANSIENT_STATUSES
    return isinstance(exc, InvalidHandshake) and isinstance(exc.__cause__, EOFError)


def parse_url(url: str) -> tuple[bool, str, int, str, str]:
    """Split a ws:// or wss:// URL into (tls, host, port, Host header, request target).

    Raises:
        ValueError: if the URL is not ws:// or wss://, or has no host.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in URL {url!r}")
    port = parts.port or _DEFAULT_PORTS[scheme]
    host_header = f"[{host}]" if ":" in host else host
    if parts.port is not None and port != _DEFAULT_PORTS[scheme]:
        host_header += f":{port}"
    target = urllib.parse.quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        target += "?" + urllib.parse.quote(parts.query, safe=_TARGET_SAFE)
    return scheme == "wss", host, port, host_header, target


def header_list(url: str, headers: HeadersLike | None) -> list[tuple[str, str]]:
    """Extra headers as pairs, plus Authorization for credentials in the URL."""
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        pairs.append(("Authorization", f"Basic {token}"))
    return pairs


def ssl_context(tls: bool, ssl: ssl_module.SSLContext | None) -> ssl_module.SSLContext | None:
    """The TLS context of a connection: ``ssl``, or the default one for wss://.

    Args:
        tls: whether the URL is wss://.
        ssl: the caller's context, or None.

    Returns:
        None for ws://.

    Raises:
        ValueError: if ``ssl`` is given for a ws:// URL.
    """
    if not tls:
        if ssl is not None:
            raise ValueError("ssl is only for wss:// URLs")
        return None
    return ssl if ssl is not None else ssl_module.create_default_context()


class ClientHandshake:
    """One opening handshake: the request to send, then the checks on the response.

    Args:
        url: the ws:// or wss:// URL.
        subprotocols: subprotocols to offer, in order of preference.
        headers: extra request headers.
        compression: True or "deflate", False or None, or a ``DeflateConfig``
            (see ``wsfast.connect``).

    Attributes:
        tls: whether the URL is wss://.
        host: the host to connect to.
        port: the TCP port.
        request: the HTTP request to send.
        subprotocol: the subprotocol the server chose, or None (once accepted).
        extensions: the ``Sec-WebSocket-Extensions`` values of the response.
        deflate_params: the negotiated ``DeflateParams``, or None.
        response_headers: the headers of the 101 response.
        consumed: the length of the response head (once accepted).

    Raises:
        ValueError: if the URL or a header or subprotocol is invalid.
        TypeError: if ``compression`` has the wrong type.
    """

    def __init__(
        self,
        url: str,
        *,
        subprotocols: Iterable[str] = (),
        headers: HeadersLike | None = None,
        compression: bool | Any = True,
    ) -> None:
        self.tls, self.host, self.port, host_header, target = parse_url(url)
        self._subprotocols = list(subprotocols)
        config: Any = None
        # "deflate" and None are websockets' spellings of True and False.
        if compression is True or compression == "deflate":
            config = rust.DeflateConfig()
        elif compression is not False and compression is not None:
            if not isinstance(compression, rust.DeflateConfig):
                raise TypeError('compression must be "deflate", None, a bool or a DeflateConfig')
            config = compression
        self._config = config
        self._offer: str | None = None if config is None else rust.deflate_offer(config)
        self._key = base64.b64encode(os.urandom(16)).decode()
        self.request: bytes = rust.build_request(
            host_header, target, self._key, self._subprotocols, self._offer,
            header_list(url, headers),
        )  # fmt: skip
        self.subprotocol: str | None = None
        self.extensions: tuple[str, ...] = ()
        self.deflate_params: Any = None
        self.response_headers: list[tuple[str, str]] = []
        self.consumed = 0

    def receive(self, received: bytes | bytearray, *, max_size: int | None) -> Any | None:
        """Check the response once its head is complete.

        Args:
            received: every byte received so far.
            max_size: the largest message to accept (None: no limit).

        Returns:
            None while the response head is incomplete; then a ``Core`` for the
            connection, with ``subprotocol``, ``extensions``, ``deflate_params`` and
            ``response_headers`` set and ``consumed`` the length of the head.

        Raises:
            InvalidStatus, InvalidHeader, NegotiationError, InvalidHandshake: if the
                response does not accept the upgrade.
        """
        parsed = rust.parse_response(received)
        if parsed is None:
            return None
        response, self.consumed = parsed
        subprotocol, extension_values = rust.validate_response(
            response, self._key, self._subprotocols, self._offer
        )
        config = self._config
        params = None if config is None else rust.accept_deflate_response(extension_values, config)
        self.subprotocol = subprotocol
        self.extensions = tuple(extension_values)
        self.deflate_params = params
        self.response_headers = response.headers
        return new_core("client", max_size=max_size, params=params, config=config)


class HandshakeInfo:
    """What the opening handshake negotiated, as both client connections expose it."""

    __slots__ = ()

    _handshake: ClientHandshake

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, or None."""
        return self._handshake.subprotocol

    @property
    def extensions(self) -> tuple[str, ...]:
        """The ``Sec-WebSocket-Extensions`` values the server answered with."""
        return self._handshake.extensions

    @property
    def deflate_params(self) -> Any:
        """The negotiated ``DeflateParams``, or None when messages are not compressed."""
        return self._handshake.deflate_params

    @property
    def response_headers(self) -> list[tuple[str, str]]:
        """The headers of the server's 101 response, as ``(name, value)`` pairs."""
        return list(self._handshake.response_headers)


class Pings(Generic[W]):
    """The unanswered pings of one connection, by payload, oldest first.

    A pong answers its own ping and every earlier one (RFC 6455 section 5.5.3 lets
    a peer answer only the latest). Each client keeps its own kind of waiter ``W``
    and says how to resolve one.

    Args:
        resolve: called with each waiter whose pong arrived, in the order sent.
    """

    __slots__ = ("_resolve", "_waiters")

    def __init__(self, resolve: Callable[[W], None]) -> None:
        self._resolve = resolve
        self._waiters: dict[bytes, W] = {}

    def payload(self, data: str | bytes | None) -> bytes:
        """The payload of a new ping.

        Args:
            data: the caller's payload (``str`` is UTF-8 encoded), or None for four
                random bytes that no unanswered ping uses.

        Returns:
            The payload.

        Raises:
            InvalidState: if a ping with the same payload is still unanswered.
        """
        waiters = self._waiters
        if data is None:
            payload = os.urandom(4)
            while payload in waiters:
                payload = os.urandom(4)
            return payload
        payload = data.encode() if isinstance(data, str) else bytes(data)
        if payload in waiters:
            raise InvalidState("already waiting for a pong to the same payload")
        return payload

    def add(self, payload: bytes, waiter: W) -> None:
        """Wait for the pong to ``payload`` (a ping just sent, or about to be)."""
        self._waiters[payload] = waiter

    def discard(self, payload: bytes) -> None:
        """Stop waiting for ``payload`` (its ping could not be sent)."""
        self._waiters.pop(payload, None)

    def pong_received(self, data: bytes) -> None:
        """Resolve the waiter of ``data`` and of every ping sent before it."""
        waiters = self._waiters
        if data not in waiters:
            return  # unsolicited, allowed by RFC 6455 section 5.5.3
        # A snapshot and pop(default): another thread may discard meanwhile.
        for key in list(waiters):
            waiter = waiters.pop(key, None)
            if waiter is not None:
                self._resolve(waiter)
            if key == data:
                break

    def controls_received(self, controls: list[tuple[int, Any]]) -> bool:
        """Act on the control events of one read.

        Pings need nothing: the core queued the pong already.

        Args:
            controls: ``(kind, payload)`` pairs from the ``ClientReader``.

        Returns:
            Whether a close frame was among them.
        """
        closing = False
        for kind, payload in controls:
            if kind == EV_PONG:
                self.pong_received(payload)
            elif kind == EV_CLOSE:
                closing = True
        return closing

    def clear(self) -> list[W]:
        """Forget every waiter (the connection ended).

        Returns:
            The waiters that never got their pong, oldest first.
        """
        waiters = list(self._waiters.values())
        self._waiters.clear()
        return waiters
