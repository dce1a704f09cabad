# SPDX-License-Identifier: MIT
"""A uvicorn WebSocket backend on wsfast's native protocol core.

::

    uvicorn app:app --ws wsfast.uvicorn:WSProtocol

    uvicorn.run(app, ws=wsfast.uvicorn.WSProtocol)            # or
    uvicorn.Server(uvicorn.Config(app, ws=wsfast.uvicorn.WSProtocol))

:class:`WSProtocol` implements the ASGI WebSocket spec (2.4, with the
``websocket.http.response`` extension) for uvicorn's HTTP protocols, which hand it
the connection once a request asks for an upgrade: ``connection_made``, then
``data_received`` with the request head, then ``transport.set_protocol``.

Received bytes go from the event loop straight into the buffer of a Cython reader,
and each read goes to the Rust core in one call (framing, unmasking, UTF-8, inflate,
the ping and close rules); messages are built from the core's event records only when
the app's ``receive()`` takes them, so a ``receive()`` that finds one waiting returns
without suspending. ``websocket.send`` is one call into the core; its frame is
written at once, unless more received messages wait for the app: then the answers
to all of them leave in one write at the end of the app's task step.

uvicorn's options apply as in its own backends: ``ws_max_size`` (a larger message
fails the connection with 1009), ``ws_max_queue`` (reading pauses while this many
received messages wait for the app), ``ws_ping_interval`` / ``ws_ping_timeout``
(keepalive; no pong in time fails the connection with 1011) and
``ws_per_message_deflate``. Messages sent in the wrong order raise uvicorn's usual
``RuntimeError``; sending on a connection that is gone raises uvicorn's
``ClientDisconnected`` (an ``OSError``). Where this backend differs from uvicorn's:

- an exception from the app after ``websocket.accept`` closes the connection with
  1011 (uvicorn drops TCP without a close frame);
- a connection lost without a closing handshake reports ``websocket.disconnect``
  with 1006 (uvicorn's sans-I/O backends say 1005, its ``websockets`` backend 1006);
- on shutdown the 1012 close frame is followed by a closing handshake of up to
  ``close_timeout`` seconds (uvicorn drops TCP right after the frame);
- a denial response without ``Content-Length`` is sent with one when the app sends
  its body in one message, else with chunked transfer coding.
"""

from __future__ import annotations

import asyncio
import collections
import http
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from uvicorn.logging import TRACE_LOG_LEVEL
from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_client_addr,
    get_local_addr,
    get_path_with_query_string,
    get_remote_addr,
    is_ssl,
)

from wsfast._core import new_core
from wsfast._native import cy, rust
from wsfast.config import MAX_REQUEST_HEAD
from wsfast.exceptions import InvalidRequest, InvalidState
from wsfast.frames import CloseCode, Opcode

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

__all__ = ["WSProtocol"]

# What the app may send next (uvicorn's message-order rules, in one place).
_HANDSHAKE: Final = 0  # websocket.accept, websocket.close or websocket.http.response.start
_RESPONSE: Final = 1  # websocket.http.response.body
_OPEN: Final = 2  # websocket.send or websocket.close
_DONE: Final = 3  # nothing: the app sent websocket.close or ended its denial response
_GONE: Final = 4  # the client or the server ended the connection: sending raises

# Bytes per read once the connection is open (one read is one call into the core).
READ_BUFFER: Final = 256 * 1024
# Bytes received before the app accepts beyond which reading pauses until it does.
EARLY_DATA_LIMIT: Final = 64 * 1024

# permessage-deflate as wsfast's own server offers it (level 1, a 4 KiB compression
# window, memLevel 5: cheap per connection, fast for real-time traffic).
DEFLATE: Final = rust.DeflateConfig()

# The checks uvicorn's httptools protocol applies to response headers.
_INVALID_NAME = re.compile(rb'[\x00-\x1f\x7f()<>@,;:\[\]={} \t\\"]')
_INVALID_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

_CONNECT: Final = {"type": "websocket.connect"}


def _disconnect(code: int, reason: str | None = None) -> dict[str, Any]:
    """A websocket.disconnect event; the reason only when a close frame carried it."""
    if reason is None:
        return {"type": "websocket.disconnect", "code": int(code)}
    return {"type": "websocket.disconnect", "code": int(code), "reason": reason}


def _header_lines(headers: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    """``name: value`` lines of ASGI headers, checked as uvicorn's HTTP protocol does.

    Raises:
        RuntimeError: for a name or value that cannot be sent.
    """
    lines = []
    for name, value in headers:
        if not name or _INVALID_NAME.search(name):
            raise RuntimeError("Invalid HTTP header name.")
        if _INVALID_VALUE.search(value):
            raise RuntimeError("Invalid HTTP header value.")
        lines.append(b"%s: %s\r\n" % (name, value))
    return lines


def _status_phrase(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


class WSProtocol(asyncio.BufferedProtocol):
    """One WebSocket connection under uvicorn: the ASGI ``receive`` and ``send``.

    uvicorn creates one per upgrade request (``--ws wsfast.uvicorn:WSProtocol``);
    applications never instantiate it.

    Args:
        config: the server's ``uvicorn.Config``.
        server_state: the server's shared ``ServerState`` (connections, tasks and
            default headers).
        app_state: the lifespan state; each connection's scope gets a shallow copy.

    Attributes:
        transport: the connection's transport.
        scope: the ASGI scope, once the request head has been read.
        client: the client's (host, port), or None.
        server: the server's (host, port), or None.
        scheme: "ws" or "wss".
    """

    #: Seconds to wait for the client's close frame after sending ours.
    close_timeout: float = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app: Any = config.loaded_app
        self.loop = _loop or asyncio.get_running_loop()
        self.logger = logging.getLogger("uvicorn.error")
        self.root_path = config.root_path
        self.app_state = app_state
        self.server_state = server_state
        self.connections: set[Any] = server_state.connections
        self.tasks = server_state.tasks

        self.transport: Any = None
        self.server: tuple[str, int | None] | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "ws"
        self.scope: dict[str, Any] = {}

        # Before the upgrade: the request head, then whatever came behind it.
        self._head = bytearray()
        self._key: str | None = None
        self._deflate: tuple[Any, str] | None = None
        self._early = bytearray()
        self._head_view: memoryview | None = None

        # The app's side: what it may send next, and the events it receives.
        self._state = _HANDSHAKE
        self._connect_pending = True
        self._disconnect: dict[str, Any] | None = None
        # Where receive() takes messages from: the reader, or the messages received
        # before the app closed (later ones are dropped, as in uvicorn).
        self._take: Callable[[], Any] | None = None
        self._discard = False
        # The coroutine waiting in receive(), and any others waiting at the same time.
        self._waiter: asyncio.Future[None] | None = None
        self._more_waiters: list[asyncio.Future[None]] = []

        # The open connection: the Rust core and the Cython reader feeding it.
        self._core: Any = None
        self._reader: Any = None
        self._max_queue = max(1, config.ws_max_queue)
        self._read_paused = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._flush_scheduled = False
        self._lost = False
        self._close_timer: asyncio.TimerHandle | None = None

        # A denial response (websocket.http.response.*).
        self._response_status = 0
        self._response_headers: list[tuple[bytes, bytes]] = []
        self._response_started = False  # its head is written
        self._response_chunked = False

        # Keepalive.
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self._ping_sent_at = 0.0
        self._last_rtt = 0.0

    # ---- asyncio.BufferedProtocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Take over the transport from uvicorn's HTTP protocol.

        Args:
            transport: the connection's transport (TCP or TLS).
        """
        self.transport = transport
        self.connections.add(self)
        self.server = get_local_addr(transport)  # type: ignore[arg-type]
        self.client = get_remote_addr(transport)  # type: ignore[arg-type]
        self.scheme = "wss" if is_ssl(transport) else "ws"  # type: ignore[arg-type]
        self._trace("WebSocket connection made")

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the loop writes the next read: the reader's own buffer once open.

        Args:
            sizehint: ignored; the buffer has a fixed size.

        Returns:
            A writable memoryview.
        """
        reader = self._reader
        if reader is not None:
            return reader.get_buffer()  # type: ignore[no-any-return]
        if self._head_view is None:
            self._head_view = memoryview(bytearray(EARLY_DATA_LIMIT))
        return self._head_view

    def buffer_updated(self, nbytes: int) -> None:
        """Hand the bytes just read to the core, then wake the app's receive().

        Args:
            nbytes: how many bytes the loop wrote into :meth:`get_buffer`'s memory.
        """
        reader = self._reader
        if reader is None:
            assert self._head_view is not None
            self.data_received(bytes(self._head_view[:nbytes]))
            return
        # One call into the core per read; messages stay event records until taken.
        controls = reader.feed_buffer(nbytes)
        if controls is not None:
            self._handle(controls)
        self._after_feed(reader)

    def data_received(self, data: bytes) -> None:
        """The request head (from uvicorn's HTTP protocol), or bytes read another way.

        Args:
            data: the bytes received.
        """
        reader = self._reader
        if reader is not None:
            controls = reader.feed(data)
            if controls is not None:
                self._handle(controls)
            self._after_feed(reader)
        elif self._key is None and self._state == _HANDSHAKE:
            self._head += data
            self._receive_head()
        elif self._state == _HANDSHAKE:
            # Frames sent before our 101: kept for the core, within a bound.
            self._early += data
            if len(self._early) > EARLY_DATA_LIMIT and not self._read_paused:
                self._read_paused = True
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        """The client shut down its side: 1006 unless its close frame came first.

        Returns:
            False: the transport closes itself.
        """
        # A close frame that came before keeps the code it set.
        self._ended(_disconnect(CloseCode.ABNORMAL_CLOSURE))
        reader = self._reader
        if reader is not None and not reader.eof:
            controls = reader.feed(b"")
            if controls is not None:
                self._handle(controls)
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is over: the app's receive() returns websocket.disconnect.

        Args:
            exc: the error that ended it, or None.
        """
        self._lost = True
        self._stop_keepalive()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self.connections.discard(self)
        reader = self._reader
        if reader is not None and not reader.eof:
            # Turns the records still waiting into objects before the core is dropped.
            reader.feed(b"")
        self._ended(_disconnect(CloseCode.ABNORMAL_CLOSURE))
        self._wake()
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._trace("WebSocket connection lost")

    def pause_writing(self) -> None:
        """The transport's write buffer is above its high-water mark."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The transport's write buffer drained below its low-water mark."""
        self._write_paused = False
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ---- uvicorn's server hooks -----------------------------------------------------

    def shutdown(self) -> None:
        """Server shutdown: close with 1012 (Service Restart), or answer 500 if not open."""
        self._stop_keepalive()
        if self._lost:
            return
        state = self._state
        if state == _OPEN:
            self._core.send_close(CloseCode.SERVICE_RESTART)
            self._write()
            self._closing(_disconnect(CloseCode.SERVICE_RESTART), _GONE)
        elif state == _HANDSHAKE or state == _RESPONSE:
            self._send_500()
            self._end(_disconnect(CloseCode.ABNORMAL_CLOSURE), _GONE)
        else:
            # Closed already, or waiting for the client's close frame: stop waiting.
            if self._close_timer is not None:
                self._close_timer.cancel()
                self._close_timer = None
            self._close_transport()

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)

    def _trace(self, message: str) -> None:
        if self.logger.isEnabledFor(TRACE_LOG_LEVEL):
            prefix = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
            self.logger.log(TRACE_LOG_LEVEL, "%s%s", prefix, message)

    # ---- the opening handshake ------------------------------------------------------

    def _receive_head(self) -> None:
        """Parse the request head; once complete, build the scope and start the app."""
        try:
            parsed = rust.parse_request(self._head, MAX_REQUEST_HEAD)
        except InvalidRequest as exc:
            self.logger.warning("Invalid WebSocket upgrade request: %s", exc.reason)
            self._reject(exc.status, exc.reason, _GONE)
            return
        if parsed is None:
            return
        request, consumed = parsed
        self._early += self._head[consumed:]
        self._head = bytearray()
        if self.config.ws_per_message_deflate and request.extensions:
            try:
                self._deflate = rust.negotiate_deflate(list(request.extensions), DEFLATE)
            except InvalidRequest as exc:
                self._reject(exc.status, exc.reason, _GONE)
                return
        self._key = request.key

        target: str = request.path
        raw_path, _, query = target.partition("?")
        root_path = self.root_path
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": root_path,
            "path": root_path + unquote(raw_path),
            "raw_path": root_path.encode("ascii") + raw_path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            # The core decodes header values as latin-1: this gives back the bytes.
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in request.headers
            ],
            "subprotocols": list(request.subprotocols),
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        task = self.loop.create_task(self._run_asgi())
        task.add_done_callback(self._on_task_done)
        self.tasks.add(task)

    def _reject(self, status: int, body: str | bytes, state: int) -> None:
        """Answer the upgrade request with an HTTP error and close."""
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in self.server_state.default_headers
        ]
        self.transport.write(rust.build_rejection(status, body, headers))
        self._end(_disconnect(CloseCode.ABNORMAL_CLOSURE), state)

    def _send_500(self) -> None:
        """No answer to the handshake yet (not even a response head): send a 500."""
        state = self._state
        if self._lost or not (
            state == _HANDSHAKE or (state == _RESPONSE and not self._response_started)
        ):
            return
        self._reject(500, "Internal Server Error", _GONE)

    def _accept(self, message: Mapping[str, Any]) -> None:
        self.logger.info(
            '%s - "WebSocket %s" [accepted]',
            get_client_addr(self.scope),  # type: ignore[arg-type]
            get_path_with_query_string(self.scope),  # type: ignore[arg-type]
        )
        subprotocol = message.get("subprotocol") or None
        extra = _header_lines([*self.server_state.default_headers, *message.get("headers", ())])
        params, extensions = self._deflate if self._deflate is not None else (None, None)
        # The core builds the WebSocket part of the head; the app's headers follow as
        # the bytes it gave (a str round trip would re-encode non-ASCII values).
        assert self._key is not None  # set when the request head was accepted
        head = rust.build_response(self._key, subprotocol, extensions)
        core = new_core(
            "server",
            max_size=self.config.ws_max_size,
            params=params,
            config=DEFLATE if params is not None else None,
        )
        self._core = core
        self._reader = cy.ClientReader(core, None, READ_BUFFER, None)
        self._take = self._reader.take
        self._state = _OPEN
        self.transport.write(b"".join([head[:-2], *extra, b"\r\n"]))
        self._start_keepalive()
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()
        if self._early:
            early, self._early = bytes(self._early), bytearray()
            self.data_received(early)

    def _forbid(self) -> None:
        """websocket.close before websocket.accept: 403, as the ASGI spec says."""
        self.logger.info(
            '%s - "WebSocket %s" 403',
            get_client_addr(self.scope),  # type: ignore[arg-type]
            get_path_with_query_string(self.scope),  # type: ignore[arg-type]
        )
        self._reject(403, b"", _DONE)

    # ---- denial responses -----------------------------------------------------------

    def _start_response(self, message: Mapping[str, Any]) -> None:
        status = message["status"]
        if not 100 <= status < 600:
            raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
        self.logger.info(
            '%s - "WebSocket %s" %d',
            get_client_addr(self.scope),  # type: ignore[arg-type]
            get_path_with_query_string(self.scope),  # type: ignore[arg-type]
            status,
        )
        self._response_status = status
        self._response_headers = list(message.get("headers", ()))
        self._state = _RESPONSE
        if any(name.lower() == b"content-length" for name, _ in self._response_headers):
            # The app framed the body itself: the head can go now.
            self._write_response_head(None)

    def _write_response_head(self, length: int | None) -> None:
        """Write the status line and headers; ``length`` None means the app's framing
        (Content-Length given) or chunked coding when it gave none."""
        headers = self._response_headers
        names = {name.lower() for name, _ in headers}
        lines = [
            b"HTTP/1.1 %d %s\r\n" % (self._response_status, _status_phrase(self._response_status)),
            *_header_lines([*self.server_state.default_headers, *headers]),
        ]
        if b"connection" not in names:
            lines.append(b"connection: close\r\n")
        if b"content-length" not in names:
            if length is None:
                self._response_chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
            else:
                lines.append(b"content-length: %d\r\n" % length)
        lines.append(b"\r\n")
        self._response_started = True
        self.transport.write(b"".join(lines))

    def _response_body(self, message: Mapping[str, Any]) -> None:
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        if not self._response_started:
            self._write_response_head(None if more else len(body))
        if self._response_chunked:
            if body:
                self.transport.write(b"%x\r\n%s\r\n" % (len(body), body))
            if not more:
                self.transport.write(b"0\r\n\r\n")
        elif body:
            self.transport.write(body)
        if not more:
            self._end(_disconnect(CloseCode.ABNORMAL_CLOSURE), _DONE)

    # ---- the app task ---------------------------------------------------------------

    async def _run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except Exception:
            self.logger.exception("Exception in ASGI application\n")
            if self._state == _OPEN and not self._lost:
                self._fail(CloseCode.INTERNAL_ERROR, "Internal Server Error")
            else:
                self._send_500()
        else:
            if self._state == _HANDSHAKE:
                self.logger.error("ASGI callable returned without completing handshake.")
                self._send_500()
            elif self._state == _RESPONSE:
                self.logger.error("ASGI callable returned without completing response.")
                if not self._response_started:
                    self._write_response_head(0)
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        finally:
            # Once the app is done, the connection is too, unless our close frame
            # waits for the client's answer.
            if self._close_timer is None and self.transport is not None:
                self._close_transport()

    # ---- ASGI receive -----------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        """The ASGI receive callable: websocket.connect, .receive, then .disconnect.

        Returns:
            The next event. After websocket.disconnect, every call returns it again.
        """
        if self._connect_pending:
            self._connect_pending = False
            return dict(_CONNECT)
        # _next_event() inlined for a message already waiting: one Python call less
        # per message (measured by bench/experiments/asyncio_cost).
        take = self._take
        if take is not None:
            message = take()
            if message is not None:
                if self._read_paused and not self._discard:
                    self._maybe_resume_reading()
                if type(message) is str:
                    return {"type": "websocket.receive", "text": message}
                return {"type": "websocket.receive", "bytes": message}
        event = self._next_event()
        if event is not None:
            return event
        return await self._wait_event()

    def _next_event(self) -> dict[str, Any] | None:
        take = self._take
        if take is not None:
            message = take()
            if message is not None:
                if self._read_paused and not self._discard:
                    self._maybe_resume_reading()
                if type(message) is str:
                    return {"type": "websocket.receive", "text": message}
                return {"type": "websocket.receive", "bytes": message}
        if self._disconnect is not None:
            return dict(self._disconnect)
        return None

    async def _wait_event(self) -> dict[str, Any]:
        while True:
            waiter = self.loop.create_future()
            if self._waiter is None:
                self._waiter = waiter
            else:
                self._more_waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # A cancelled receive() loses no message: none was taken.
                if self._waiter is waiter:
                    # Another coroutine still waiting takes the first place.
                    more = self._more_waiters
                    self._waiter = more.pop(0) if more else None
                elif waiter in self._more_waiters:
                    self._more_waiters.remove(waiter)
                raise
            event = self._next_event()
            if event is not None:
                return event

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self._more_waiters:
            waiters, self._more_waiters = self._more_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _after_feed(self, reader: Any) -> None:
        """Wake receive(); stop reading while ws_max_queue messages wait for the app."""
        if self._waiter is not None:
            self._wake()
        if self._discard:
            # The app closed: what arrives until the client's close frame is dropped.
            while reader.take() is not None:
                pass
        elif not self._read_paused and reader.pending_count() >= self._max_queue:
            self._read_paused = True
            self.transport.pause_reading()

    def _maybe_resume_reading(self) -> None:
        # Resume at a quarter of the queue, not at every message taken.
        if self._reader.pending_count() <= self._max_queue // 4 and not self._lost:
            self._read_paused = False
            self.transport.resume_reading()

    # ---- ASGI send --------------------------------------------------------------------

    async def send(self, message: Mapping[str, Any]) -> None:
        """The ASGI send callable.

        Waits first while the transport's write buffer is above its high-water mark.

        Args:
            message: an ASGI websocket event for the server.

        Raises:
            ClientDisconnected: if the connection is gone (the client left or closed
                it, or the server failed it or shut down); closing it again is not
                an error.
            RuntimeError: if the message is not allowed at this point (uvicorn's
                messages), or a header or status cannot be sent.
            ValueError: for an invalid close code, or a close reason over 123 bytes.
        """
        if self._write_paused:
            await self._drain()
        kind = message["type"]
        state = self._state
        if state == _OPEN:
            if kind == "websocket.send":
                data = message.get("bytes")
                if data is None:
                    data = message.get("text")
                    if data is None:
                        raise RuntimeError(
                            "Expected 'bytes' or 'text' in ASGI message 'websocket.send'."
                        )
                core = self._core
                try:
                    core.send(data)
                except InvalidState:
                    raise ClientDisconnected() from None
                if self._reader.pending():
                    # More messages wait for the app, which usually answers them in
                    # this same task step: write all the answers with one write.
                    if not self._flush_scheduled:
                        self._flush_scheduled = True
                        self.loop.call_soon(self._flush)
                else:
                    self.transport.write(core.data_to_send())
            elif kind == "websocket.close":
                code = message.get("code")
                self._app_close(1000 if code is None else code, message.get("reason") or "")
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.send' or 'websocket.close', "
                    f"but got '{kind}'."
                )
        elif state == _HANDSHAKE:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._forbid()
            elif kind == "websocket.http.response.start":
                self._start_response(message)
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' "
                    f"or 'websocket.http.response.start' but got '{kind}'."
                )
        elif state == _RESPONSE:
            if kind == "websocket.http.response.body":
                self._response_body(message)
            else:
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'."
                )
        elif state == _GONE:
            # Closing a connection that is gone already is harmless.
            if kind != "websocket.close":
                raise ClientDisconnected()
        else:
            raise RuntimeError(
                f"Unexpected ASGI message '{kind}', after sending 'websocket.close'."
            )

    async def _drain(self) -> None:
        while self._write_paused and not self._lost:
            waiter = self.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def _app_close(self, code: int, reason: str) -> None:
        self._core.send_close(code, reason)
        self._write()
        self._closing(_disconnect(code, reason), _DONE)

    # ---- closing ----------------------------------------------------------------------

    def _closing(self, event: dict[str, Any], state: int) -> None:
        """Our close frame is out: wait for the client's, up to close_timeout."""
        self._stop_keepalive()
        self._detach(event, state)
        if self._read_paused:
            # The client's close frame must get through.
            self._read_paused = False
            self.transport.resume_reading()
        if self._close_timer is None and not self.transport.is_closing():
            self._close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    def _detach(self, event: dict[str, Any], state: int) -> None:
        """The app sees the messages received so far, then ``event``; nothing later."""
        if self._disconnect is None:
            self._disconnect = event
        self._state = state
        reader = self._reader
        if reader is not None and not self._discard:
            kept: collections.deque[Any] = collections.deque()
            while (message := reader.take()) is not None:
                kept.append(message)
            self._take = lambda: kept.popleft() if kept else None
            self._discard = True
        self._wake()

    def _end(self, event: dict[str, Any], state: int) -> None:
        """No WebSocket connection (rejected, or a denial response ended): close."""
        if self._disconnect is None:
            self._disconnect = event
        self._state = state
        self.transport.close()
        self._wake()

    def _ended(self, event: dict[str, Any]) -> None:
        """The client or the core ended the connection: ``event`` unless one is set."""
        if self._disconnect is None:
            self._disconnect = event
        if self._state != _DONE:
            self._state = _GONE

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection: close frame, then TCP, without waiting for the client."""
        self._stop_keepalive()
        self._core.fail(code, reason)
        self._write()
        self._detach(_disconnect(code, reason), _GONE)
        self.transport.close()

    def _handle(self, controls: list[tuple[int, Any]]) -> None:
        """Act on the control events of one read, then write what the core queued."""
        for kind, payload in controls:
            if kind == Opcode.PONG:
                self._pong_received(payload)
            elif kind == Opcode.CLOSE:
                code, reason = payload
                self._ended(_disconnect(code, reason))
        core = self._core
        self._write()
        if core.close_expected():
            sent = core.close_sent
            if sent is not None:
                # Without a close frame from the client, the core failed the
                # connection: the app gets the code it sent.
                self._ended(_disconnect(*sent))
            self._stop_keepalive()
            if self._close_timer is not None:
                self._close_timer.cancel()
                self._close_timer = None
            # RFC 6455 section 7.1.1: the server closes TCP first.
            self.transport.close()
            self._wake()

    def _write(self) -> None:
        """Write everything the core queued (deferred messages included, in order)."""
        out = self._core.data_to_send()
        if out and not self.transport.is_closing():
            self.transport.write(out)

    def _close_transport(self) -> None:
        """Close TCP once everything queued is written (asyncio flushes its buffer)."""
        if self._core is not None and not self._lost:
            self._write()
        self.transport.close()

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._lost:
            self._write()

    # ---- keepalive --------------------------------------------------------------------

    def _start_keepalive(self) -> None:
        interval = self.config.ws_ping_interval
        if interval is not None and interval > 0:
            self._ping_timer = self.loop.call_later(interval, self._send_ping)

    def _stop_keepalive(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
        self._ping_payload = None

    def _send_ping(self) -> None:
        self._ping_timer = None
        if self._state != _OPEN or self.transport.is_closing():
            return
        # A random payload tells this ping's pong from stale or unsolicited ones.
        payload = os.urandom(4)
        try:
            self._core.send_ping(payload)
        except InvalidState:
            return
        self._ping_payload = payload
        self._ping_sent_at = self.loop.time()
        self._write()
        timeout = self.config.ws_ping_timeout
        if timeout is not None:
            self._pong_timer = self.loop.call_later(timeout, self._keepalive_timeout)
        else:
            self._schedule_ping()

    def _schedule_ping(self) -> None:
        interval = self.config.ws_ping_interval
        assert interval is not None
        delay = max(0.0, interval - self._last_rtt)
        self._ping_timer = self.loop.call_later(delay, self._send_ping)

    def _pong_received(self, data: bytes) -> None:
        if self._ping_payload is None or data != self._ping_payload:
            return  # unsolicited, allowed by RFC 6455 section 5.5.3
        self._last_rtt = self.loop.time() - self._ping_sent_at
        self._ping_payload = None
        if self._pong_timer is not None:
            # Answered in time: the next ping follows (without a timeout it was
            # scheduled when this one was sent).
            self._pong_timer.cancel()
            self._pong_timer = None
            self._schedule_ping()

    def _keepalive_timeout(self) -> None:
        self._pong_timer = None
        if self._state != _OPEN or self.transport.is_closing():
            return
        self._trace("WebSocket keepalive ping timeout")
        self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
