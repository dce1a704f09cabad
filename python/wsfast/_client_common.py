# SPDX-License-Identifier: MIT
"""What the blocking and asyncio clients share: the opening handshake and closing rules.

The handshake itself is Rust (``wsfast._rust``: request building, response parsing
and validation, permessage-deflate negotiation); this module holds the URL rules,
the offer and the state between sending the request and reading the response, so
both I/O layers only move bytes.
"""

from __future__ import annotations

import base64
import os
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeAlias

from wsfast._native import cy, rust
from wsfast.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK

__all__ = ["ClientHandshake", "Data", "HeadersLike", "closed_error"]

#: A received message: ``str`` for text, ``bytes`` for binary.
Data: TypeAlias = str | bytes
#: Extra request headers: a mapping or ``(name, value)`` pairs.
HeadersLike: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]

# A closing handshake with these codes both ways is a normal closure; 1005 is a
# close frame without a status code, which a peer may send when all went well.
_OK_CLOSE_CODES: Final = frozenset({1000, 1001, 1005})
_ABNORMAL_CLOSURE: Final = 1006
_UNLIMITED: Final = 1 << 62
_DEFAULT_PORTS: Final = {"ws": 80, "wss": 443}
# Characters left alone when quoting the request target: RFC 3986 reserved ones and "%".
_TARGET_SAFE: Final = "!#$%&'()*+,/:;=?@[]~"


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


class ClientHandshake:
    """One opening handshake: the request to send, then the checks on the response.

    Args:
        url: the ws:// or wss:// URL.
        subprotocols: subprotocols to offer, in order of preference.
        headers: extra request headers.
        compression: True, False, or a ``DeflateConfig`` (see ``wsfast.connect``).

    Attributes:
        tls: whether the URL is wss://.
        host: the host to connect to.
        port: the TCP port.
        request: the HTTP request to send.

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
        if compression is True:
            config = rust.DeflateConfig()
        elif compression is not False and compression is not None:
            if not isinstance(compression, rust.DeflateConfig):
                raise TypeError("compression must be a bool or a DeflateConfig")
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
        return cy.Core(
            "client",
            max_size=_UNLIMITED if max_size is None else max_size,
            deflate=params,
            compression_level=6 if config is None else config.level,
        )


def closed_error(core: Any, *, force_error: bool = False) -> ConnectionClosed:
    """The exception describing how the connection ended (or is ending)."""
    received = core.close_received
    sent = core.close_sent
    code, reason = received if received is not None else (_ABNORMAL_CLOSURE, "")
    sent_code, sent_reason = sent if sent is not None else (None, None)
    ok = (
        not force_error
        and code in _OK_CLOSE_CODES
        and (sent_code is None or sent_code in _OK_CLOSE_CODES)
    )
    cls = ConnectionClosedOK if ok else ConnectionClosedError
    return cls(code, reason, sent_code, sent_reason)
