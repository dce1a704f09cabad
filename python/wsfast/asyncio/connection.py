# SPDX-License-Identifier: MIT
"""What the asyncio client and server connections share.

:class:`Connection` is the ``asyncio.BufferedProtocol`` half of both: where the
loop reads (the Cython ``ClientReader``'s buffer once open), feeding each read to
the Rust core, acting on control events, flow control in both directions, pings
and keepalive, and waking every waiter at the end. The subclasses add the opening
handshake (:meth:`Connection._head_received`), receiving, sending and closing,
where the two sides differ.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeAlias

from wsfast._client_common import KEEPALIVE_TIMEOUT_REASON, Pings
from wsfast._core import closed_error
from wsfast.exceptions import ConnectionClosed, InvalidState
from wsfast.frames import CloseCode, State

__all__ = ["Connection"]

# What a ping waits on: the future of its latency, and when it was sent.
_PongWaiter: TypeAlias = tuple[asyncio.Future[float], float]


def _resolve(waiter: _PongWaiter) -> None:
    future, sent_at = waiter
    if not future.done():
        future.set_result(time.monotonic() - sent_at)


class Connection(asyncio.BufferedProtocol):
    """The base of ``wsfast.asyncio``'s client and server connections.

    Args:
        ping_interval: seconds between keepalive pings, or None for none.
        ping_timeout: seconds to wait for a keepalive pong before failing the
            connection with 1011, or None to never fail.
        pause_at: stop reading once this many received messages wait.
        abort_on_fail: when failing the connection, abort TCP at once (the
            client: the peer is presumed dead) instead of closing it after the
            close frame is written (the server).
    """

    def __init__(
        self,
        *,
        ping_interval: float | None,
        ping_timeout: float | None,
        pause_at: int,
        abort_on_fail: bool,
    ) -> None:
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._pause_at = pause_at
        self._abort_on_fail = abort_on_fail
        self._loop = asyncio.get_running_loop()
        self._transport: Any = None
        self._core: Any = None
        self._reader: Any = None
        # Before the upgrade: the head received so far.
        self._received: bytearray | None = bytearray()
        self._head_buffer = bytearray(16384)
        self._closed: asyncio.Future[None] = self._loop.create_future()
        # The coroutine waiting in recv() for a message, if any.
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._write_paused = False
        self._read_paused = False
        self._pings: Pings[_PongWaiter] = Pings(_resolve)
        self._close_timer: asyncio.TimerHandle | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._lost = False

    # ---- properties --------------------------------------------------------------

    @property
    def local_address(self) -> Any:
        """The socket's own address, as ``socket.getsockname()`` returned it."""
        return self._transport.get_extra_info("sockname")

    @property
    def remote_address(self) -> Any:
        """The peer's address, as ``socket.getpeername()`` returned it."""
        return self._transport.get_extra_info("peername")

    @property
    def state(self) -> State:
        """CONNECTING, OPEN, CLOSING while a closing handshake runs, CLOSED at the end."""
        if self._lost:
            return State.CLOSED
        if self._core is None:
            return State.CONNECTING
        return State(min(self._core.state, State.CLOSING))

    # ---- asyncio.BufferedProtocol ------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the loop writes the next read: the reader's own buffer once open."""
        reader = self._reader
        if reader is not None:
            return reader.get_buffer()  # type: ignore[no-any-return]
        return memoryview(self._head_buffer)

    def buffer_updated(self, nbytes: int) -> None:
        """Hand the bytes just read to the core (after the upgrade) and wake recv()."""
        reader = self._reader
        if reader is None:
            self._head_received(nbytes)
            return
        # One call into the core per read; messages stay as records until taken.
        controls = reader.feed_buffer(nbytes)
        if controls is not None:
            self._handle(controls)
        self._after_feed()

    def _head_received(self, nbytes: int) -> None:
        """Before the upgrade: ``nbytes`` of the handshake arrived in the head buffer."""
        raise NotImplementedError

    def _after_feed(self) -> None:
        """Wake the receiver; stop reading while too many messages wait."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if not self._read_paused and self._reader.pending_count() >= self._pause_at:
            self._read_paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        """The peer closed its side: feed end of file to the core; close the transport."""
        if self._reader is not None and not self._reader.eof:
            controls = self._reader.feed(b"")
            if controls is not None:
                self._handle(controls)
            self._after_feed()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is over: wake every waiter."""
        self._lost = True
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if self._reader is not None and not self._reader.eof:
            self._reader.feed(b"")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        self._wake_drain()
        for pong, _ in self._pings.clear():
            if not pong.done():
                pong.set_exception(self._closed_error())
                # Nobody may await it: no "exception never retrieved" report.
                pong.exception()
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        """The transport's write buffer is above its high-water mark."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The transport's write buffer drained below its low-water mark."""
        self._write_paused = False
        self._wake_drain()

    def _wake_drain(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _drain(self) -> None:
        """Wait while the transport's write buffer is full (every sender may wait)."""
        while self._write_paused and not self._lost:
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter
        if self._lost:
            raise self._closed_error()

    def _handle(self, controls: list[tuple[int, Any]]) -> None:
        """Act on the control events of one read, then write what the core queued."""
        # A close frame needs nothing more here: the core queued the reply, and
        # close_expected() below says when to wait for the end.
        self._pings.controls_received(controls)
        self._write_output()
        if self._core.close_expected() and not self._lost:
            self._close_expected()

    def _close_expected(self) -> None:
        """The closing handshake is over on the core's side: end TCP as the side must."""
        raise NotImplementedError

    def _write_output(self) -> None:
        out = self._core.data_to_send()
        if out and not self._transport.is_closing():
            self._transport.write(out)

    def _maybe_resume_reading(self) -> None:
        """Every waiting message was taken: read again (a subclass may wait for less)."""
        self._read_paused = False
        self._transport.resume_reading()

    async def _recv_wait(self) -> str | bytes:
        """Wait until a message comes or the connection ends."""
        if self._waiter is not None:
            raise RuntimeError("another coroutine is already waiting for the next message")
        reader = self._reader
        while True:
            message = reader.take()
            if message is not None:
                return message  # type: ignore[no-any-return]
            if self._lost or reader.eof or self._core.close_received is not None:
                raise self._closed_error()
            if self._read_paused:
                self._maybe_resume_reading()
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _closed_error(self) -> ConnectionClosed:
        return closed_error(self._core)

    # ---- pings and keepalive -----------------------------------------------------

    async def ping(self, data: str | bytes | None = None) -> asyncio.Future[float]:
        """Send a ping.

        Args:
            data: the payload (at most 125 bytes; ``str`` is UTF-8 encoded); by
                default four random bytes.

        Returns:
            A future that resolves to the round-trip latency in seconds once the
            pong arrives (``await await ws.ping()``).

        Raises:
            ConnectionClosed: if the connection is closing or closed.
            InvalidState: if a ping with the same payload is still unanswered.
            ValueError: if the payload is longer than 125 bytes.
        """
        payload = self._pings.payload(data)
        if self._lost:
            raise self._closed_error()
        try:
            self._core.send_ping(payload)
        except InvalidState:
            raise self._closed_error() from None
        future: asyncio.Future[float] = self._loop.create_future()
        self._pings.add(payload, (future, time.monotonic()))
        self._write_output()
        return future

    def _start_keepalive(self) -> None:
        """Start the keepalive task once the connection is open (if enabled)."""
        if self._ping_interval is not None:
            self._keepalive = self._loop.create_task(self._keepalive_loop())

    async def _keepalive_loop(self) -> None:
        """Ping every ``ping_interval``; fail the connection if a pong is late."""
        interval = self._ping_interval
        timeout = self._ping_timeout
        assert interval is not None
        while True:
            await asyncio.sleep(interval)
            try:
                pong = await self.ping()
            except ConnectionClosed:
                return
            if timeout is None:
                continue
            try:
                async with asyncio.timeout(timeout):
                    await pong
            except TimeoutError:
                self._keepalive = None  # this task ends here: nothing to cancel
                self._fail(CloseCode.INTERNAL_ERROR, KEEPALIVE_TIMEOUT_REASON)
                return
            except ConnectionClosed:
                return

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection: write a close frame, then end TCP without waiting.

        The client aborts (the transport writes at once when its buffer is empty,
        so the frame still goes out, and the end wakes ``recv`` now); the server
        closes, which flushes the frame first.
        """
        if self._lost:
            return
        try:
            self._core.fail(code, reason)
        except InvalidState:
            pass
        self._write_output()
        if self._abort_on_fail:
            self._transport.abort()
        else:
            self._transport.close()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self._closed)
