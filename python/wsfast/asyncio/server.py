# SPDX-License-Identifier: MIT
"""asyncio WebSocket server, in the idiom of ``websockets.asyncio.server``.

::

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with wsfast.asyncio.serve(echo, "127.0.0.1", 8765) as server:
        await server.serve_forever()

Each connection is an ``asyncio.BufferedProtocol`` (asyncio's loop or uvloop's):
the opening handshake is decided by :mod:`wsfast.handshake`, as for every wsfast
front end; after the upgrade the loop reads straight into the Cython
``ClientReader``'s buffer and each read goes to the Rust core in one call (framing,
unmasking, UTF-8, inflate, the ping and close rules). Messages are built from the
core's event records only when :meth:`ServerConnection.recv` takes them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeAlias

from wsfast._client_common import Data
from wsfast._core import closed_error
from wsfast._native import cy, rust
from wsfast.asyncio.connection import Connection
from wsfast.config import ServerConfig
from wsfast.exceptions import ConnectionClosedOK, InvalidState
from wsfast.frames import CloseCode
from wsfast.handler import Handler, Request
from wsfast.handshake import Accept, decide

__all__ = ["Response", "Server", "ServerConnection", "broadcast", "serve"]

logger = logging.getLogger("wsfast.asyncio.server")

# Awaitables complete at once (cython_ext/awaitable.pyx), bound once: one global
# lookup per message instead of a module attribute lookup.
_DONE = cy.DONE
_failed = cy.failed


def _from_none(error: BaseException) -> BaseException:
    """``error`` as ``raise error from None`` would raise it."""
    error.__suppress_context__ = True
    return error


#: Bytes per read once the connection is open (one read is one call into the core).
READ_BUFFER = 256 * 1024

#: The connection handler: a coroutine function taking the connection.
HandlerFunc: TypeAlias = Callable[["ServerConnection"], Awaitable[None]]


@dataclass(slots=True)
class Response:
    """An HTTP response that rejects the upgrade, returned by ``process_request``.

    Attributes:
        status_code: the HTTP status, 200 to 599.
        reason_phrase: kept for websockets compatibility; the standard phrase of
            ``status_code`` is sent.
        headers: extra headers, as ``(name, value)`` pairs or a mapping.
        body: the response body.
    """

    status_code: int
    reason_phrase: str = ""
    headers: Sequence[tuple[str, str]] | Mapping[str, str] = field(default_factory=tuple)
    body: bytes | str = b""


def _header_pairs(headers: Sequence[tuple[str, str]] | Mapping[str, str]) -> list[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


class ServerConnection(Connection):
    """One server-side WebSocket connection, handed to the connection handler.

    Receive with :meth:`recv` or ``async for``; send with :meth:`send`; end with
    :meth:`close`. One coroutine may receive while others send.

    Attributes:
        request: the upgrade request (None until the handshake completes).
        subprotocol: the negotiated subprotocol, or None.
    """

    def __init__(self, server: Server) -> None:
        """Prepare a connection of ``server`` (the server creates them)."""
        config = server.config
        super().__init__(
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            pause_at=server.max_queue,
            abort_on_fail=False,
        )
        self._server = server
        self._config = config
        self.request: Request | None = None
        self.subprotocol: str | None = None
        self._open_timer: asyncio.TimerHandle | None = None
        self._flush_scheduled = False

    # ---- properties --------------------------------------------------------------

    @property
    def transport(self) -> Any:
        """The connection's asyncio transport."""
        return self._transport

    @property
    def close_code(self) -> int | None:
        """The close code received, 1006 without one; None while the connection is open."""
        if not self._lost or self._core is None:
            return None
        return closed_error(self._core).code

    @property
    def close_reason(self) -> str | None:
        """The close reason received; None while the connection is open."""
        if not self._lost or self._core is None:
            return None
        return closed_error(self._core).reason

    def respond(self, status: int, text: str) -> Response:
        """A plain-text response for ``process_request`` to return.

        Args:
            status: the HTTP status.
            text: the body.

        Returns:
            The response.
        """
        return Response(status, "", [("Content-Type", "text/plain; charset=utf-8")], text)

    # ---- asyncio.BufferedProtocol ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the opening handshake timer."""
        self._transport = transport
        high, low = self._config.write_limit
        transport.set_write_buffer_limits(high, low)  # type: ignore[attr-defined]
        self._server._connections.add(self)
        timeout = self._config.handshake_timeout
        if timeout is not None:
            self._open_timer = self._loop.call_later(timeout, transport.abort)  # type: ignore[attr-defined]

    def _head_received(self, nbytes: int) -> None:
        """Collect the request head; once complete, decide and start the handler."""
        received = self._received
        if received is None:
            return  # the decision is taken: what follows waits for the upgrade
        received += self._head_buffer[:nbytes]
        decision = decide(self._config, self._server._route, self.remote_address, received)
        if decision is None:
            return
        self._received = None
        if not isinstance(decision, Accept):
            self._reject(decision.response)
            return
        # process_request may be a coroutine: read no frames before the 101 is out.
        self._transport.pause_reading()
        self._read_paused = True
        task = self._loop.create_task(self._run(decision))
        self._server._tasks.add(task)
        task.add_done_callback(self._server._tasks.discard)

    def _reject(self, response: bytes) -> None:
        self._transport.write(response)
        self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is over: forget it, wake every waiter."""
        self._server._connections.discard(self)
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None
        super().connection_lost(exc)

    def _close_expected(self) -> None:
        # RFC 6455 section 7.1.1: the server closes TCP first.
        self._transport.close()

    # ---- the handshake and the handler -------------------------------------------

    async def _run(self, accept: Accept) -> None:
        """Ask process_request, write the 101, then run the handler and close."""
        server = self._server
        self.request = accept.request
        if server.process_request is not None:
            try:
                answer = server.process_request(self, accept.request)
                if inspect.isawaitable(answer):
                    answer = await answer
            except Exception:
                logger.error("opening handshake failed", exc_info=True)
                answer = Response(500, "", (), "Failed to open a WebSocket connection.\n")
            if answer is not None:
                self._reject(
                    rust.build_rejection(
                        answer.status_code, answer.body, _header_pairs(answer.headers)
                    )
                )
                return
        if self._lost:
            return
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None
        self.subprotocol = accept.subprotocol
        self._core = accept.new_core()
        self._reader = cy.ClientReader(self._core, None, READ_BUFFER, None)
        self._transport.write(accept.response)
        if accept.leftover:
            # Frames the client sent right behind its request.
            controls = self._reader.feed(accept.leftover)
            if controls is not None:
                self._handle(controls)
            self._after_feed()
        if self._read_paused and self._reader.pending_count() < server.max_queue:
            self._read_paused = False
            self._transport.resume_reading()
        self._start_keepalive()
        try:
            await server.handler(self)
        except Exception:
            logger.error("connection handler failed", exc_info=True)
            await self.close(CloseCode.INTERNAL_ERROR, "internal error")
        else:
            await self.close()

    # ---- receiving ---------------------------------------------------------------

    def recv(self) -> Awaitable[Data]:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Use ``asyncio.wait_for`` or ``asyncio.timeout`` for a deadline; a
        cancelled ``recv`` loses no message.

        Returns:
            An awaitable of the message. When a message is already waiting, it is
            an object complete at once, as :meth:`__anext__` returns.

        Raises:
            ConnectionClosedOK: when awaited, once the connection closed normally
                and every message received before has been returned.
            ConnectionClosedError: likewise, after an abnormal closure.
            RuntimeError: when awaited, if another coroutine is already waiting
                in ``recv``.
        """
        ready = self._reader.take_ready()
        if ready is not None:
            if self._read_paused:
                self._maybe_resume_reading()
            return ready  # type: ignore[no-any-return]
        return self._recv_wait()

    def _maybe_resume_reading(self) -> None:
        # Resume at a quarter of the queue, not at every message taken.
        if (
            self._reader.pending_count() <= self._server.max_queue // 4
            and not self._lost
            and not self._transport.is_closing()
        ):
            self._read_paused = False
            self._transport.resume_reading()

    def __aiter__(self) -> ServerConnection:
        """Iterate over messages until the connection closes normally.

        Raises:
            ConnectionClosedError: if the connection closes abnormally.
        """
        return self

    def __anext__(self) -> Awaitable[Data]:
        """The next message (see :meth:`recv`).

        Returns:
            An awaitable of the next message, which ``async for`` awaits. When a
            message is already waiting, it is an object complete at once, not a
            coroutine (no frame per message); ``asyncio.iscoroutine`` accepts it,
            so ``create_task``, ``ensure_future``, ``wait_for`` and ``gather`` do
            too. It can be awaited once. If it is closed or cancelled before it
            delivered its message, the message goes back to the front of the queue.

        Raises:
            StopAsyncIteration: when awaited, once the connection closed normally.
            ConnectionClosedError: when awaited, after an abnormal closure.
        """
        ready = self._reader.take_ready()
        if ready is not None:
            if self._read_paused:
                self._maybe_resume_reading()
            return ready  # type: ignore[no-any-return]
        return self._anext_wait()

    async def _anext_wait(self) -> Data:
        try:
            return await self._recv_wait()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    # ---- sending -----------------------------------------------------------------

    def send(self, message: str | bytes | bytearray | memoryview) -> Awaitable[None]:
        """Send a message: ``str`` as text, any bytes-like object as binary.

        The message is queued when ``send`` is called; awaiting the result waits
        while the transport's write buffer is above its high-water mark
        (``write_limit``), so a client that does not read slows the handler down.
        The result is a coroutine when it must wait, else one shared object
        complete at once (no allocation per message; awaiting it again returns
        None again) that ``asyncio.iscoroutine`` accepts, so ``create_task``,
        ``ensure_future``, ``wait_for`` and ``gather`` do too. Errors are raised
        when it is awaited, as a coroutine's would be.

        Args:
            message: the message.

        Returns:
            An awaitable.

        Raises:
            ConnectionClosed: if the connection is closing or closed.
            TypeError: if ``message`` is neither ``str`` nor bytes-like.
        """
        if self._lost:
            return _failed(_from_none(self._closed_error()))
        core = self._core
        try:
            core.send(message)
        except InvalidState:
            return _failed(_from_none(self._closed_error()))
        except Exception as exc:
            return _failed(exc)
        if self._reader.pending():
            # More received messages wait for the handler, which usually answers them
            # in this same loop turn: one write at the end of it carries every answer.
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)
        else:
            self._transport.write(core.data_to_send())
        if self._write_paused:
            return self._drain()
        return _DONE

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._lost:
            self._write_output()

    async def pong(self, data: str | bytes = b"") -> None:
        """Send an unsolicited pong.

        Args:
            data: the payload (at most 125 bytes; ``str`` is UTF-8 encoded).

        Raises:
            ConnectionClosed: if the connection is closing or closed.
        """
        if self._lost:
            raise self._closed_error()
        try:
            self._core.send_pong(data.encode() if isinstance(data, str) else bytes(data))
        except InvalidState:
            raise self._closed_error() from None
        self._write_output()

    # ---- closing -----------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Perform the closing handshake, then close TCP.

        Waits up to ``close_timeout`` for the client's close frame, then closes TCP
        in any case. Calling ``close()`` again, or after the client closed, only
        waits for the end.

        Args:
            code: the close code to send.
            reason: the close reason (at most 123 bytes of UTF-8).

        Raises:
            ValueError: if the code or the reason cannot be sent.
        """
        if not self._lost and self._core is not None:
            try:
                self._core.send_close(code, reason)
            except InvalidState:
                pass  # a close frame went out already; wait for the end as usual
            self._write_output()
            if self._core.close_expected():
                self._transport.close()
            elif self._read_paused:
                # The client's close frame must get through.
                self._read_paused = False
                self._transport.resume_reading()
            if self._close_timer is None and not self._lost:
                timeout = self._config.close_timeout
                if timeout is not None:
                    self._close_timer = self._loop.call_later(timeout, self._transport.abort)
        await asyncio.shield(self._closed)

    def __repr__(self) -> str:
        return f"<wsfast.asyncio.ServerConnection {self.state.name}>"


class Server:
    """A running WebSocket server, returned by :func:`serve`.

    Attributes:
        config: the server's options.
        handler: the connection handler.
        process_request: the ``process_request`` hook, or None.
        max_queue: received messages that may wait before reading pauses.
        create_connection: the connection class.
    """

    def __init__(
        self,
        handler: HandlerFunc,
        config: ServerConfig,
        *,
        process_request: Callable[[ServerConnection, Request], Any] | None,
        max_queue: int,
        create_connection: type[ServerConnection] = ServerConnection,
    ) -> None:
        self.handler = handler
        self.create_connection = create_connection
        self.config = config
        self.process_request = process_request
        self.max_queue = max_queue
        self.server: asyncio.Server | None = None
        self._connections: set[ServerConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: asyncio.Task[None] | None = None
        self._serving: asyncio.Future[None] | None = None
        # Routing is trivial here: every path goes to the one handler.
        route_target = Handler()
        self._route: Callable[[str], Handler | None] = lambda path: route_target

    @property
    def connections(self) -> set[ServerConnection]:
        """The connections open now (handshake done or in progress)."""
        return set(self._connections)

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets."""
        assert self.server is not None
        return tuple(self.server.sockets)

    def close(self, close_connections: bool = True) -> None:
        """Stop accepting connections and close the open ones with 1001 (going away).

        Args:
            close_connections: close the open connections too; else wait for their
                handlers to end by themselves.
        """
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(close_connections))
            if self._serving is not None and not self._serving.done():
                self._serving.set_result(None)

    async def _close(self, close_connections: bool) -> None:
        assert self.server is not None
        self.server.close()
        if close_connections:
            closes = []
            for connection in list(self._connections):
                if connection._core is None:
                    connection._transport.close()
                else:
                    closes.append(connection.close(CloseCode.GOING_AWAY))
            await asyncio.gather(*closes, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.server.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection handler has ended."""
        if self._closing is not None:
            await asyncio.shield(self._closing)
        else:
            assert self.server is not None
            await self.server.wait_closed()

    async def serve_forever(self) -> None:
        """Accept connections until :meth:`close`; cancelling it closes the server too."""
        # Not asyncio.Server.serve_forever: uvloop's is not ended by close().
        assert self.server is not None
        if self._closing is None:
            self._serving = asyncio.get_running_loop().create_future()
            try:
                await self._serving
            except asyncio.CancelledError:
                self.close()
                raise
        await self.wait_closed()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        await self.wait_closed()


# A class named like a function, so that it supports both ``await`` and ``async with``.
class serve:
    """Start a WebSocket server on ``host`` and ``port``.

    Use either ``server = await serve(...)`` or ``async with serve(...) as server:``
    (which closes the server at the end of the block).

    Args:
        handler: a coroutine function called with each :class:`ServerConnection`;
            the connection closes with 1000 when it returns, with 1011 (logged) if it
            raises.
        host: interface to listen on (None: every interface).
        port: TCP port, 0 for any free port.
        process_request: called with the connection and the request (a
            ``wsfast.Request``) before the upgrade; return None to continue or a
            :class:`Response` to answer with it instead. May be a coroutine.
        compression: ``"deflate"`` (or True) to negotiate permessage-deflate, None
            (or False) never to, or a ``wsfast.DeflateConfig``.
        origins: allowed Origin values (None in the list allows requests without
            Origin), or None to allow any; others get 403.
        subprotocols: supported subprotocols, in order of preference.
        open_timeout: seconds to receive the request head, or None.
        ping_interval: seconds between keepalive pings, or None.
        ping_timeout: seconds to wait for a keepalive pong before failing the
            connection with 1011, or None.
        close_timeout: seconds to wait for the closing handshake, or None.
        max_size: largest message accepted, in bytes (after decompression); None
            for no limit. A larger message fails the connection with 1009.
        max_queue: stop reading from the socket while this many received messages
            wait for ``recv``.
        write_limit: high-water mark of the write buffer in bytes, or (high, low);
            ``send`` waits while the buffer is above it.
        ssl: a TLS context for wss://, or None.
        create_connection: a :class:`ServerConnection` subclass to use instead.
        **kwargs: passed to ``loop.create_server`` (``sock``, ``reuse_port``, ...).

    Raises:
        ValueError: if an option is out of range.
        TypeError: if ``compression`` has the wrong type.
        OSError: if the socket cannot be bound.
    """

    def __init__(
        self,
        handler: HandlerFunc,
        host: str | None = None,
        port: int | None = None,
        *,
        process_request: Callable[[ServerConnection, Request], Any] | None = None,
        compression: str | bool | Any = "deflate",
        origins: Sequence[str | None] | None = None,
        subprotocols: Sequence[str] | None = None,
        open_timeout: float | None = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float | None = 10.0,
        max_size: int | None = 1 << 20,
        max_queue: int = 16,
        write_limit: int | tuple[int, int] = 32768,
        ssl: ssl_module.SSLContext | None = None,
        create_connection: type[ServerConnection] | None = None,
        **kwargs: Any,
    ) -> None:
        if compression == "deflate":
            compression = True
        elif isinstance(compression, str):
            raise ValueError(f"unsupported compression: {compression}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be positive, not {max_queue}")
        config = ServerConfig.make(
            compression=compression,
            origins=origins,
            subprotocols=subprotocols or (),
            write_limit=write_limit,
            port=port or 0,
            handshake_timeout=open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_size=(1 << 62) if max_size is None else max_size,
            ssl=ssl,
        )
        self._server = Server(
            handler,
            config,
            process_request=process_request,
            max_queue=max_queue,
            create_connection=create_connection or ServerConnection,
        )
        self._host = host
        self._port = port
        self._kwargs = kwargs

    async def _start(self) -> Server:
        server = self._server
        loop = asyncio.get_running_loop()
        server.server = await loop.create_server(
            lambda: server.create_connection(server),
            self._host,
            self._port,
            ssl=server.config.ssl,
            **self._kwargs,
        )
        return server

    def __await__(self) -> Generator[Any, None, Server]:
        return self._start().__await__()

    async def __aenter__(self) -> Server:
        return await self._start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.close()
        await self._server.wait_closed()


def broadcast(
    connections: Iterable[ServerConnection],
    message: str | bytes | bytearray | memoryview,
    raise_exceptions: bool = False,
) -> None:
    """Send a message to many connections at once, without waiting.

    Connections that are not open are skipped. As in websockets there is no
    backpressure: a slow client's messages pile up in its write buffer (keep
    ``ping_interval`` on, so that a dead one is closed).

    Args:
        connections: the connections.
        message: ``str`` for text, bytes-like for binary.
        raise_exceptions: raise an ``ExceptionGroup`` of the errors met, instead of
            logging them.

    Raises:
        ExceptionGroup: with ``raise_exceptions``, if any send failed.
        TypeError: if ``message`` is neither ``str`` nor bytes-like.
    """
    if not isinstance(message, (str, bytes, bytearray, memoryview)):
        raise TypeError("message must be str or bytes-like")
    errors: list[Exception] = []
    for connection in connections:
        core = connection._core
        if core is None or connection._lost:
            continue
        try:
            core.send(message)
        except InvalidState:
            continue
        except Exception as exc:
            if raise_exceptions:
                errors.append(exc)
            else:
                logger.warning("skipped broadcast: %s", exc)
            continue
        connection._write_output()
    if errors:
        raise ExceptionGroup("skipped broadcast", errors)
