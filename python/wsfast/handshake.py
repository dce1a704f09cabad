# SPDX-License-Identifier: MIT
"""The server's opening handshake, sans I/O: request bytes in, a decision out.

Every server front end asks the same code what to answer, in the manner of
websockets' ``ServerProtocol.accept()`` / ``reject()``::

    handshake = ServerHandshake(config, route, remote_address)
    decision = handshake.receive_data(data)      # for each read
    if decision is None:
        ...                                      # the head is incomplete: read on
    elif isinstance(decision, Reject):
        write(decision.response)                 # then close once written
    else:
        core = decision.new_core()
        write(decision.response)                 # 101; then feed decision.leftover

The decision runs, in order: the request-head parser (400 for a malformed head,
431 for one too large), the server's own endpoints (:class:`Reserved`: metrics and
dashboard pages answer ``GET`` only, 405 otherwise, and are never routed to
handlers), the plain-HTTP answers for a request that is not an
upgrade (``http_handler``, ``/health``, 426 on a WebSocket path, 404), the Origin
allow-list (403), routing (404), the subprotocol choice, the handler's
``on_handshake`` hook, permessage-deflate negotiation and the 101 response. A hook
or ``http_handler`` that raises is logged and answered with 500. No socket, clock
or protocol core is touched here: the accept only says how to build the core.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from wsfast._core import new_core
from wsfast._native import rust as _rust
from wsfast.config import MAX_REQUEST_HEAD, ServerConfig
from wsfast.exceptions import InvalidRequest, InvalidState
from wsfast.handler import Handler, HTTPResponse, Request

__all__ = [
    "RETRY_AFTER",
    "Accept",
    "Decision",
    "Reject",
    "Reserved",
    "RouteResolver",
    "ServerHandshake",
    "decide",
    "reject_busy",
]

# Same logger as the server's, so that configuring "wsfast.server" covers handshakes.
logger = logging.getLogger("wsfast.server")

#: Finds the handler of a request path, or None (the answer is then 404).
RouteResolver: TypeAlias = Callable[[str], Handler | None]

_INTERNAL_ERROR = "internal server error"

#: Seconds a client refused for lack of capacity is asked to wait (Retry-After).
RETRY_AFTER = 1


@dataclass(frozen=True, slots=True)
class Accept:
    """The upgrade is accepted: send :attr:`response`, then speak WebSocket.

    Attributes:
        response: the 101 response to write.
        request: the request head, as the handler saw it.
        handler: the handler of the request's path.
        subprotocol: the selected subprotocol, or None.
        extensions: the Sec-WebSocket-Extensions value of the response, or None.
        deflate_params: the negotiated ``DeflateParams``, or None.
        leftover: bytes received after the request head (the first frames): feed
            them to the core after the upgrade.
        max_size: the largest message to accept, in bytes.
        deflate_config: the server's ``DeflateConfig`` when deflate was negotiated,
            else None.
    """

    response: bytes
    request: Request
    handler: Handler
    subprotocol: str | None
    extensions: str | None
    deflate_params: Any
    leftover: bytes
    max_size: int
    deflate_config: Any

    def new_core(self) -> Any:
        """Build the protocol core for this connection.

        Returns:
            A server-side ``wsfast._cy.Core`` with the negotiated parameters.
        """
        return new_core(
            "server",
            max_size=self.max_size,
            params=self.deflate_params,
            config=self.deflate_config,
        )


@dataclass(frozen=True, slots=True)
class Reject:
    """The request gets a plain HTTP answer: send :attr:`response`, then close.

    A "rejection" of the upgrade, whatever the status: ``GET /health`` gets its 200
    and a page of ``http_handler`` its own status this way too.

    Attributes:
        response: the complete HTTP response to write.
        status: its status code.
    """

    response: bytes
    status: int


#: What :func:`decide` returns once the request head is complete.
Decision: TypeAlias = Accept | Reject


@dataclass(frozen=True, slots=True)
class Reserved:
    """Paths the server answers itself, before ``http_handler`` and routing.

    Only ``GET`` is allowed on them (anything else gets 405 with ``Allow: GET``),
    and no application handler ever sees their requests.

    Attributes:
        pages: plain-HTTP endpoints by exact path: ``page(request)`` returns the
            (status, headers, body) to answer. An upgrade request there gets the
            page too (a server may ignore ``Upgrade``, RFC 9110 7.8).
        sockets: the server's own WebSocket endpoints by exact path, with their
            handler (a plain ``GET`` there gets 426).
    """

    pages: Mapping[str, Callable[[Request], HTTPResponse]] = field(default_factory=dict)
    sockets: Mapping[str, Handler] = field(default_factory=dict)

    def __contains__(self, path: object) -> bool:
        return path in self.pages or path in self.sockets

    def answer(self, request: Request, upgrade: bool) -> Reject | Handler:
        """Answer a request on a reserved path.

        Args:
            request: the request (its path is reserved).
            upgrade: whether it is a valid WebSocket upgrade request.

        Returns:
            The plain answer, or the handler to upgrade to.
        """
        if request.method != "GET":
            return _reject(405, "method not allowed", [("Allow", "GET")])
        page = self.pages.get(request.path)
        if page is not None:
            try:
                status, headers, body = page(request)
            except Exception:
                logger.exception("built-in page %s failed", request.path)
                return _reject(500, _INTERNAL_ERROR)
            return _reject(status, body, headers)
        if upgrade:
            return self.sockets[request.path]
        return _reject(426, "this is a websocket endpoint: send an upgrade request")


_NO_RESERVED = Reserved()


def decide(
    config: ServerConfig,
    route: RouteResolver,
    remote_address: tuple[str, int] | None,
    received: bytes | bytearray,
    reserved: Reserved = _NO_RESERVED,
) -> Decision | None:
    """Decide on a request head.

    Args:
        config: the server's options.
        route: finds the handler of a request path.
        remote_address: the client's (host, port), for :attr:`Request.remote_address`.
        received: every byte received so far on the connection.
        reserved: the server's own endpoints, answered before anything else.

    Returns:
        None while the head is incomplete, else the :class:`Accept` or
        :class:`Reject` (a hook or ``http_handler`` that raises gives a 500).

    Raises:
        TypeError, ValueError: if ``http_handler`` returns something other than
            None or a (status, headers, body) triple.
    """
    try:
        parsed = _rust.parse_request(received, MAX_REQUEST_HEAD)
    except InvalidRequest as exc:
        # Not every refused head is a bad upgrade: a plain GET gets a normal answer,
        # and a reserved path its own (405 for an upgrade with another method).
        plain = None if exc.status == 431 else _parse_plain_head(received, reserved)
        if plain is None:
            return _reject(exc.status, exc.reason)
        method, target, headers = plain
        path, query = _split_target(target)
        request = Request(method, path, query, tuple(headers), remote_address)
        if path in reserved:
            own = reserved.answer(request, upgrade=False)
            assert isinstance(own, Reject)  # a socket needs a valid upgrade
            return own
        return _answer_plain(config, route, request)
    if parsed is None:
        return None
    head, consumed = parsed
    return _upgrade(
        config,
        route,
        remote_address,
        head,
        bytes(received[:consumed]),
        bytes(received[consumed:]),
        reserved,
    )


class ServerHandshake:
    """One connection's handshake: buffers reads until :func:`decide` can answer.

    Args:
        config: the server's options.
        route: finds the handler of a request path.
        remote_address: the client's (host, port).
        reserved: the server's own endpoints (see :class:`Reserved`).
    """

    __slots__ = ("_buffer", "_config", "_decided", "_remote_address", "_reserved", "_route")

    def __init__(
        self,
        config: ServerConfig,
        route: RouteResolver,
        remote_address: tuple[str, int] | None,
        reserved: Reserved = _NO_RESERVED,
    ) -> None:
        self._config = config
        self._route = route
        self._remote_address = remote_address
        self._reserved = reserved
        self._buffer = bytearray()
        self._decided = False

    def receive_data(self, data: bytes | bytearray | memoryview) -> Decision | None:
        """Add the bytes of one read.

        Args:
            data: bytes received from the client.

        Returns:
            None while the request head is incomplete, then the decision (once).

        Raises:
            InvalidState: if called again after the decision.
            TypeError, ValueError: see :func:`decide`.
        """
        if self._decided:
            raise InvalidState("the handshake is already decided")
        self._buffer += data
        decision = decide(
            self._config, self._route, self._remote_address, self._buffer, self._reserved
        )
        if decision is not None:
            self._decided = True
            self._buffer = bytearray()
        return decision


def reject_busy(retry_after: int = RETRY_AFTER) -> Reject:
    """The answer to an upgrade the server has no room for (``max_connections``).

    The front end asks this after an :class:`Accept` when it is full: the request
    was valid, so the client is told to come back rather than that it erred.

    Args:
        retry_after: seconds for the Retry-After header.

    Returns:
        A 503 :class:`Reject` with a Retry-After header.
    """
    return _reject(503, "server at connection limit", [("Retry-After", str(retry_after))])


# ---- the decision's steps ---------------------------------------------------------------


def _split_target(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path, query


def _parse_plain_head(
    received: bytes | bytearray, reserved: Reserved = _NO_RESERVED
) -> tuple[str, str, list[tuple[str, str]]] | None:
    """Method, target and headers of a complete plain (non-upgrade) request head.

    For heads the upgrade parser refused; the same Rust parser (httparse) reads them,
    without the WebSocket upgrade checks.

    Args:
        received: every byte received so far.
        reserved: the server's own endpoints: a refused upgrade on one of their
            paths is read as a plain request too (it gets their answer, e.g. 405).

    Returns:
        None if the head is incomplete, malformed or an upgrade request (the
        upgrade parser's refusal then stands).
    """
    try:
        parsed = _rust.parse_request_head(received, MAX_REQUEST_HEAD)
    except InvalidRequest:
        return None
    if parsed is None:
        return None
    if parsed[0].is_upgrade and _split_target(parsed[0].target)[0] not in reserved:
        return None
    head = parsed[0]
    return head.method, head.target, list(head.headers)


def _reject(status: int, body: bytes | str, headers: Sequence[tuple[str, str]] = ()) -> Reject:
    try:
        return Reject(_rust.build_rejection(status, body, list(headers)), status)
    except ValueError:
        logger.exception("cannot build a %s response", status)
        return Reject(_rust.build_rejection(500, _INTERNAL_ERROR), 500)


def _answer_plain(config: ServerConfig, route: RouteResolver, request: Request) -> Reject:
    http_handler = config.http_handler
    if http_handler is not None:
        try:
            result = http_handler(request)
        except Exception:
            logger.exception("http_handler failed on %s", request.path)
            return _reject(500, _INTERNAL_ERROR)
        if result is not None:
            status, headers, body = result
            return _reject(status, body, headers)
    if request.path == "/health" and request.method in ("GET", "HEAD"):
        return _reject(200, "ok")
    if route(request.path) is not None:
        return _reject(426, "this is a websocket endpoint: send an upgrade request")
    return _reject(404, "not found")


def _upgrade(
    config: ServerConfig,
    route: RouteResolver,
    remote_address: tuple[str, int] | None,
    head: Any,
    raw_head: bytes,
    leftover: bytes,
    reserved: Reserved = _NO_RESERVED,
) -> Decision:
    path, query = _split_target(head.path)
    request = Request(
        head.method,
        path,
        query,
        remote_address=remote_address,
        subprotocols=head.subprotocols,
        raw_head=raw_head,
    )
    builtin: Handler | None = None
    if path in reserved:
        own = reserved.answer(request, upgrade=True)
        if isinstance(own, Reject):
            return own
        builtin = own
    if config.origins is not None and head.origin not in config.origins:
        return _reject(403, "origin not allowed")
    handler = route(path) if builtin is None else builtin
    if handler is None:
        return _reject(404, "not found")

    # Subprotocol: the client's first offer that the server supports.
    subprotocol = next((p for p in request.subprotocols if p in config.subprotocols), None)
    headers: Sequence[tuple[str, str]] = ()
    try:
        answer = handler.on_handshake(request)
    except Exception:
        logger.exception("on_handshake failed on %s", path)
        return _reject(500, _INTERNAL_ERROR)
    if answer is not None:
        if answer.status != 101:
            return _reject(answer.status, answer.body, answer.headers)
        if answer.subprotocol is not None:
            subprotocol = answer.subprotocol
        headers = answer.headers

    params = extensions = None
    if config.deflate is not None and head.extensions:
        try:
            negotiated = _rust.negotiate_deflate(list(head.extensions), config.deflate)
        except InvalidRequest as exc:
            return _reject(exc.status, exc.reason)
        if negotiated is not None:
            params, extensions = negotiated
    try:
        response = _rust.build_response(head.key, subprotocol, extensions, list(headers))
    except ValueError:
        logger.exception("cannot build the handshake response for %s", path)
        return _reject(500, _INTERNAL_ERROR)
    return Accept(
        response=response,
        request=request,
        handler=handler,
        subprotocol=subprotocol,
        extensions=extensions,
        deflate_params=params,
        leftover=leftover,
        max_size=config.max_size,
        deflate_config=None if params is None else config.deflate,
    )
