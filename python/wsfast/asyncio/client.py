# SPDX-License-Identifier: MIT
"""asyncio WebSocket client, in the idiom of ``websockets.asyncio.client``.

::

    async with wsfast.asyncio.connect("ws://127.0.0.1:8000/") as ws:
        await ws.send("hello")
        print(await ws.recv())
        async for message in ws:
            ...

The connection is an ``asyncio.BufferedProtocol``: the event loop (asyncio's or
uvloop's) reads straight into the Cython ``ClientReader``'s buffer, and each buffer
goes to the Rust core in one call. Messages are built from the core's event records
only when :meth:`ClientConnection.recv` takes them, so a ``recv`` that finds one
waiting returns without suspending.

Keepalive is on by default (``ping_interval=20``, ``ping_timeout=20``, as in
websockets): a task pings the server and fails the connection with 1011 if the pong
does not come in time. ``async for ws in connect(url)`` reconnects, with exponential
backoff, each time the previous connection is over.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterable, Iterator
from types import TracebackType
from typing import Any

from wsfast._client_common import (
    Backoff,
    ClientHandshake,
    Data,
    HandshakeInfo,
    HeadersLike,
    check_keepalive,
    is_transient,
    ssl_context,
)
from wsfast._native import cy
from wsfast.asyncio.connection import Connection
from wsfast.exceptions import (
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidState,
)
from wsfast.proxy import get_proxy, open_tunnel_async

__all__ = ["ClientConnection", "connect"]


class ClientConnection(Connection, HandshakeInfo):
    """One asyncio client connection, returned by :func:`connect`.

    Send with :meth:`send`; receive with :meth:`recv` or ``async for``; end with
    :meth:`close` or an ``async with`` block. One coroutine may receive while
    others send.
    """

    def __init__(
        self,
        handshake: ClientHandshake,
        *,
        max_size: int | None,
        max_queue: int,
        close_timeout: float | None,
        read_buffer: int,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
    ) -> None:
        """Prepare a connection that performs ``handshake`` (use :func:`connect`)."""
        # Reading pauses once more than max_queue messages wait.
        super().__init__(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            pause_at=max_queue + 1,
            abort_on_fail=True,
        )
        self._handshake = handshake
        self._max_size = max_size
        self._close_timeout = close_timeout
        self._read_buffer = read_buffer
        self._opened: asyncio.Future[None] = self._loop.create_future()

    # ---- asyncio.BufferedProtocol ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the upgrade request."""
        # asyncio and uvloop both set TCP_NODELAY on TCP transports. uvloop's
        # transports do not derive from asyncio.WriteTransport, hence no isinstance.
        self._transport = transport
        write: Any = transport.write  # type: ignore[attr-defined]
        write(self._handshake.request)

    def _head_received(self, nbytes: int) -> None:
        """Collect the response head; once complete, start the WebSocket connection."""
        received = self._received
        assert received is not None
        received += self._head_buffer[:nbytes]
        try:
            core = self._handshake.receive(received, max_size=self._max_size)
        except BaseException as exc:
            if not self._opened.done():
                self._opened.set_exception(exc)
            self._transport.abort()
            return
        if core is None:
            return
        self._core = core
        self._reader = cy.ClientReader(core, None, self._read_buffer, None)
        self._received = None
        self._opened.set_result(None)
        self._start_keepalive()
        rest = received[self._handshake.consumed :]
        if rest:
            # The server may send frames right behind its 101 response.
            controls = self._reader.feed(bytes(rest))
            if controls is not None:
                self._handle(controls)

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is over: fail the opening handshake, wake every waiter."""
        if not self._opened.done():
            error = InvalidHandshake("connection closed during the opening handshake")
            error.__cause__ = EOFError()
            self._opened.set_exception(error)
            # connect() may have given up already: no "never retrieved" report.
            self._opened.exception()
        super().connection_lost(exc)

    def _close_expected(self) -> None:
        # RFC 6455 section 7.1.1: the server closes TCP first; give it time.
        self._start_close_timer()

    def _start_close_timer(self) -> None:
        if self._close_timer is None and self._close_timeout is not None:
            self._close_timer = self._loop.call_later(self._close_timeout, self._abort)

    def _abort(self) -> None:
        self._close_timer = None
        self._transport.abort()

    # ---- receiving ---------------------------------------------------------------

    async def recv(self) -> Data:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Use ``asyncio.wait_for`` or ``asyncio.timeout`` for a deadline; a
        cancelled ``recv`` loses no message.

        Returns:
            The message.

        Raises:
            ConnectionClosedOK: once the connection closed normally and every
                message received before has been returned.
            ConnectionClosedError: likewise, after an abnormal closure.
            RuntimeError: if another coroutine is already waiting in ``recv``.
        """
        message = self._reader.take()
        if message is not None:
            return message  # type: ignore[no-any-return]
        return await self._recv_wait()

    def __aiter__(self) -> AsyncIterator[Data]:
        """Yield messages until the connection closes normally.

        Raises:
            ConnectionClosedError: if the connection closes abnormally.
        """
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Data]:
        while True:
            try:
                yield await self.recv()
            except ConnectionClosedOK:
                return

    # ---- sending -----------------------------------------------------------------

    async def send(self, message: str | bytes | bytearray | memoryview) -> None:
        """Send a message: ``str`` as text, any bytes-like object as binary.

        Waits while the transport's write buffer is above its high-water mark.

        Args:
            message: the message.

        Raises:
            ConnectionClosed: if the connection is closing or closed.
            TypeError: if ``message`` is neither ``str`` nor bytes-like.
        """
        if self._lost:
            raise self._closed_error()
        try:
            self._core.send(message)
        except InvalidState:
            raise self._closed_error() from None
        self._transport.write(self._core.data_to_send())
        if self._write_paused:
            await self._drain()

    # ---- closing -----------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Perform the closing handshake, then close TCP.

        Waits up to ``close_timeout`` for the server's close frame and end of file
        (RFC 6455 section 7.1.1), then aborts the connection in any case. Messages
        that arrive meanwhile stay available to :meth:`recv`. Calling ``close()``
        again, or after the server closed, does nothing more than wait for the end.

        Args:
            code: the close code to send.
            reason: the close reason (at most 123 bytes of UTF-8).

        Raises:
            ValueError: if the code or the reason cannot be sent.
        """
        if not self._lost:
            try:
                self._core.send_close(code, reason)
            except InvalidState:
                pass  # a close frame went out already; wait for the end as usual
            self._write_output()
            # Messages still arriving must not stall the closing handshake.
            if self._read_paused:
                self._maybe_resume_reading()
            try:
                await asyncio.wait_for(asyncio.shield(self._closed), self._close_timeout)
            except TimeoutError:
                self._transport.abort()
        await self._closed

    async def __aenter__(self) -> ClientConnection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<wsfast.asyncio.ClientConnection {self.state.name}>"


# A class named like a function, so that it supports ``await``, ``async with`` and
# ``async for``.
class connect:
    """Open a WebSocket connection to ``url``.

    Use ``ws = await connect(url)`` or ``async with connect(url) as ws:`` (which
    closes the connection at the end of the block) for one connection, or
    ``async for`` for a connection that comes back after each failure::

        async for ws in wsfast.asyncio.connect(url):
            try:
                async for message in ws:
                    ...
            except wsfast.ConnectionClosed:
                continue  # connect again

    Each iteration closes the previous connection and opens a new one. An attempt
    that fails with a transient error (the server is unreachable or restarting:
    ``OSError``, ``TimeoutError``, HTTP 500, 502, 503 or 504, the connection closed
    during the handshake) is retried after a delay that grows exponentially with
    each consecutive failure, less a random jitter; any other error (e.g.
    ``InvalidStatus`` 403) propagates and ends the loop. ``break`` ends it too;
    the last connection is closed when the loop's async generator is finalized,
    or at once with ``contextlib.aclosing``::

        async with contextlib.aclosing(aiter(connect(url))) as connections:
            async for ws in connections:
                ...

    Args:
        url: ``ws://host[:port]/path?query`` or ``wss://...``; IPv6 hosts in brackets.
        subprotocols: subprotocols to offer, in order of preference.
        headers: extra request headers (a mapping or ``(name, value)`` pairs).
        additional_headers: the same, under websockets' name.
        compression: True (or ``"deflate"``) offers permessage-deflate with default
            parameters, a ``wsfast.DeflateConfig`` offers those parameters, False (or
            None) offers nothing.
        max_size: largest message accepted, in bytes (after decompression); None for
            no limit. A larger message fails the connection with 1009.
        max_queue: stop reading from the socket while more messages than this wait
            to be received (TCP then slows the server down).
        open_timeout: seconds for TCP connect, the proxy, TLS and the opening
            handshake together.
        close_timeout: seconds :meth:`ClientConnection.close` waits for the server.
        ping_interval: seconds between keepalive pings; None disables keepalive.
        ping_timeout: seconds to wait for a keepalive pong before failing the
            connection with 1011 ("keepalive ping timeout"), so that ``recv``
            raises ``ConnectionClosedError``; None never fails.
        proxy: a proxy URL (``http://[user:pass@]host:port``, ``socks5://``,
            ``socks5h://``, ``socks4://``, ``socks4a://``; SOCKS needs
            python-socks), None for a direct connection, or ``"auto"`` (default)
            for ``https_proxy``/``http_proxy``/``all_proxy`` and ``no_proxy`` from
            the environment. See :mod:`wsfast.proxy`.
        ssl: the TLS context for wss:// (default: ``ssl.create_default_context()``).
        server_hostname: the name to check the certificate against (default: the host).
        read_buffer: bytes per read.
        backoff_initial_delay: with ``async for``: seconds before the first retry.
        backoff_factor: with ``async for``: how much each next delay grows.
        backoff_max_delay: with ``async for``: the longest delay.
        backoff_jitter: with ``async for``: the largest random fraction (0 to 1)
            taken off each delay; 1 spreads each delay uniformly down to zero.

    Raises:
        ValueError: if the URL or a header, subprotocol or option is invalid.
        OSError: if the TCP connection or the TLS handshake fails.
        TimeoutError: if the handshake takes longer than ``open_timeout``.
        InvalidStatus: if the server answers with another status than 101 (``.status``).
        InvalidHeader: if a required response header is missing or wrong.
        NegotiationError: if the server chose a subprotocol or extension not offered.
        InvalidHandshake: if the response is malformed or the connection closes early.
        InvalidProxy: if the proxy URL is malformed or not supported.
        InvalidProxyStatus: if an HTTP proxy refuses the tunnel (``.status``).
        ProxyError: if a SOCKS proxy refuses, or a proxy's reply is malformed.
        ImportError: for a SOCKS proxy, if python-socks is not installed.
    """

    def __init__(
        self,
        url: str,
        *,
        subprotocols: Iterable[str] = (),
        headers: HeadersLike | None = None,
        additional_headers: HeadersLike | None = None,
        compression: bool | str | Any = True,
        max_size: int | None = 1 << 20,
        max_queue: int = 4096,
        open_timeout: float | None = 10.0,
        close_timeout: float | None = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        proxy: str | None = "auto",
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        read_buffer: int = 256 * 1024,
        backoff_initial_delay: float = Backoff.initial_delay,
        backoff_factor: float = Backoff.factor,
        backoff_max_delay: float = Backoff.max_delay,
        backoff_jitter: float = Backoff.jitter,
    ) -> None:
        if additional_headers is not None:
            if headers is not None:
                raise ValueError("pass headers or additional_headers, not both")
            headers = additional_headers
        subprotocols = list(subprotocols)

        def new_handshake() -> ClientHandshake:
            return ClientHandshake(
                url, subprotocols=subprotocols, headers=headers, compression=compression
            )

        # Each connection needs its own handshake (a fresh key); this one checks
        # the options now and serves the first.
        self._new_handshake: Callable[[], ClientHandshake] = new_handshake
        self._handshake: ClientHandshake | None = new_handshake()
        tls, host, port = self._handshake.tls, self._handshake.host, self._handshake.port
        self._ssl_context = ssl_context(tls, ssl)
        if max_queue < 1:
            raise ValueError(f"max_queue must be positive, not {max_queue}")
        check_keepalive(ping_interval, ping_timeout)
        self._proxy = get_proxy(proxy, tls=tls, host=host, port=port)
        self._backoff = Backoff(
            backoff_initial_delay, backoff_factor, backoff_max_delay, backoff_jitter
        )
        self._max_size = max_size
        self._max_queue = max_queue
        self._close_timeout = close_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._read_buffer = read_buffer
        self._server_hostname = server_hostname
        self._open_timeout = open_timeout
        self._connection: ClientConnection | None = None

    async def _open(self) -> ClientConnection:
        handshake = self._handshake or self._new_handshake()
        self._handshake = None
        loop = asyncio.get_running_loop()
        context = self._ssl_context
        connection: ClientConnection | None = None

        def factory() -> ClientConnection:
            nonlocal connection
            connection = ClientConnection(
                handshake,
                max_size=self._max_size,
                max_queue=self._max_queue,
                close_timeout=self._close_timeout,
                read_buffer=self._read_buffer,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
            )
            return connection

        server_hostname = None
        if context is not None:
            server_hostname = self._server_hostname or handshake.host
        try:
            async with asyncio.timeout(self._open_timeout):
                if self._proxy is None:
                    await loop.create_connection(
                        factory,
                        handshake.host,
                        handshake.port,
                        ssl=context,
                        server_hostname=server_hostname,
                    )
                else:
                    sock = await open_tunnel_async(self._proxy, handshake.host, handshake.port)
                    try:
                        # TLS, if any, runs inside the tunnel, with the server.
                        await loop.create_connection(
                            factory, sock=sock, ssl=context, server_hostname=server_hostname
                        )
                    except BaseException:
                        if connection is None:
                            sock.close()
                        raise
                assert connection is not None
                await connection._opened
        except TimeoutError as exc:
            if connection is not None:
                connection._transport.abort()
            raise TimeoutError("timed out during the opening handshake") from exc
        except BaseException:
            if connection is not None and connection._transport is not None:
                connection._transport.abort()
            raise
        return connection

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> ClientConnection:
        self._connection = await self._open()
        return self._connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._connection is not None
        await self._connection.close()

    async def __aiter__(self) -> AsyncGenerator[ClientConnection, None]:
        """Yield a new connection each time, reconnecting with backoff (see above).

        Raises:
            Exception: the first error that is not transient.
        """
        delays: Iterator[float] | None = None
        while True:
            try:
                connection = await self._open()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if delays is None:
                    delays = self._backoff.delays()
                await asyncio.sleep(next(delays))
                continue
            # Connected: the next failure starts the backoff afresh.
            delays = None
            try:
                yield connection
            finally:
                await connection.close()
