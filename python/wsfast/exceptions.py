# SPDX-License-Identifier: MIT
"""Exceptions raised by wsfast.

The hierarchy::

    WsfastError
    ├── ConnectionClosed
    │   ├── ConnectionClosedOK
    │   └── ConnectionClosedError
    ├── InvalidProxy
    ├── InvalidHandshake
    │   ├── InvalidRequest
    │   ├── InvalidStatus
    │   ├── InvalidHeader
    │   ├── NegotiationError
    │   └── ProxyError
    │       └── InvalidProxyStatus
    ├── ProtocolError
    │   └── InvalidUTF8
    ├── PayloadTooBig
    └── InvalidState

Native code (Rust and Cython) raises these classes; none is defined anywhere else.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidProxy",
    "InvalidProxyStatus",
    "InvalidRequest",
    "InvalidState",
    "InvalidStatus",
    "InvalidUTF8",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "StatusLine",
    "WsfastError",
]


class WsfastError(Exception):
    """Base class for every exception raised by wsfast."""


class ConnectionClosed(WsfastError):
    """Raised when operating on a connection that is closed.

    Attributes:
        code: the close code received from the peer (1006 if no close frame came).
        reason: the close reason received from the peer.
        sent_code: the close code we sent, or None if we sent no close frame.
        sent_reason: the close reason we sent, or None.
    """

    def __init__(
        self,
        code: int,
        reason: str = "",
        sent_code: int | None = None,
        sent_reason: str | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.sent_code = sent_code
        self.sent_reason = sent_reason
        super().__init__(code, reason)

    def __str__(self) -> str:
        text = f"received {self.code}"
        if self.reason:
            text += f" ({self.reason})"
        if self.sent_code is not None:
            text += f"; sent {self.sent_code}"
            if self.sent_reason:
                text += f" ({self.sent_reason})"
        return text


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally.

    Close frames went both ways, each with code 1000, 1001 or 1005 (no status code).
    """


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code, or without a closing handshake."""


class InvalidHandshake(WsfastError):
    """The opening handshake failed."""


class InvalidRequest(InvalidHandshake):
    """A client's upgrade request is malformed; the server answers with `status`.

    Attributes:
        status: the HTTP status to answer with (400, 426 or 431).
        reason: a short explanation, sent as the response body.
    """

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"HTTP {status}: {reason}")


class InvalidStatus(InvalidHandshake):
    """The server answered the upgrade request with a status other than 101.

    Attributes:
        status: the HTTP status code the server sent.
    """

    def __init__(self, status: int, message: str = "") -> None:
        self.status = status
        super().__init__(message or f"server rejected the websocket upgrade with HTTP {status}")

    @property
    def response(self) -> StatusLine:
        """The response's status, as websockets spells it: ``exc.response.status_code``."""
        return StatusLine(self.status)


class StatusLine(NamedTuple):
    """What :attr:`InvalidStatus.response` holds of the server's response.

    Attributes:
        status_code: the HTTP status code.
    """

    status_code: int


class InvalidHeader(InvalidHandshake):
    """A handshake header is missing or has an invalid value."""


class NegotiationError(InvalidHandshake):
    """Subprotocol or extension negotiation failed."""


class InvalidProxy(WsfastError):
    """A proxy URL cannot be used (malformed, or a scheme wsfast does not support)."""


class ProxyError(InvalidHandshake):
    """The proxy did not open a tunnel to the server (a SOCKS refusal, a malformed reply)."""


class InvalidProxyStatus(ProxyError):
    """The HTTP proxy answered CONNECT with a status other than 2xx.

    Attributes:
        status: the HTTP status code the proxy sent (407: authentication required).
        proxy: the proxy's URL, without credentials.
    """

    def __init__(self, status: int, proxy: str) -> None:
        self.status = status
        self.proxy = proxy
        super().__init__(f"proxy {proxy} rejected the tunnel with HTTP {status}")


class ProtocolError(WsfastError):
    """The peer broke RFC 6455 or RFC 7692."""


class InvalidUTF8(ProtocolError):
    """A text message or close reason is not valid UTF-8."""


class PayloadTooBig(WsfastError):
    """A frame or message exceeds the configured size limit."""


class InvalidState(WsfastError):
    """An operation is not allowed in the connection's current state."""
