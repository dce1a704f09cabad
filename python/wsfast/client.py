# SPDX-License-Identifier: MIT
"""Blocking WebSocket client.

``wsfast.connect(url)`` opens a connection and returns a :class:`ClientConnection`::

    with wsfast.connect("ws://127.0.0.1:8000/chat") as ws:
        ws.send("hello")
        print(ws.recv())

The layers follow the rest of wsfast: the opening handshake is built and checked in
Rust (``wsfast._rust``), every frame goes through the Rust protocol core behind the
Cython ``Core`` class, and this module only moves bytes between the socket and the
core. Both directions are Cython (``cython_ext/client.pyx``). ``ClientSender`` writes
each frame straight from the core's output buffer with one ``send()`` system call.
``ClientReader`` fills a buffer with one ``recv()``, with the GIL released, that goes to
the core in one call, and each message is built straight from the core's event records
when :meth:`ClientConnection.recv` asks for it. :meth:`ClientConnection.recv_view`,
:meth:`ClientConnection.recv_into` and :meth:`ClientConnection.run` skip even that
object for the hottest loops, and ``busy_poll`` (see :func:`connect`) trades a CPU core
for lower round-trip latency.

Keepalive: by default a background thread sends a ping every ``ping_interval``
seconds and fails the connection (close code 1011) if its pong does not come within
``ping_timeout``, so a server that vanished is noticed within ``ping_interval +
ping_timeout`` even while :meth:`ClientConnection.recv` blocks. The receive path
does not change at all: the thread only writes pings, and the pong is read by
whichever thread receives. The thread never reads, so a ``recv_view`` memoryview is
never invalidated behind the application's back. When no thread receives, a pong
cannot be seen; then bytes arriving (or waiting unread) in the socket count as a
sign of life, and an empty socket as none. A failed connection wakes a blocked ``recv`` by
shutting the socket down. The thread sleeps on an event in between, so an idle
connection costs one parked thread. (With TLS there is no thread: see
``_InlineKeepalive``.)

Reconnection: ``for ws in connect(url, reconnect=True)`` yields a new connection each
time the previous one is over, retrying failed attempts with exponential backoff.

Threads: one thread may receive (``recv``, iteration, ``PongWaiter.wait``) while
others send; sends are serialised by a lock, so frames never interleave. With TLS,
prefer a single thread: OpenSSL does not allow concurrent reads and writes on one
connection.
"""

from __future__ import annotations

import select
import socket
import ssl as ssl_module
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Literal, TypedDict, Unpack, overload

from wsfast._client_common import (
    KEEPALIVE_TIMEOUT_REASON,
    Backoff,
    ClientHandshake,
    Data,
    HandshakeInfo,
    HeadersLike,
    Pings,
    check_keepalive,
    closed_error,
    is_transient,
    ssl_context,
)
from wsfast._native import cy, rust
from wsfast.config import busy_poll_us as _busy_poll_us
from wsfast.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidState,
)
from wsfast.frames import CloseCode, State
from wsfast.proxy import get_proxy, open_tunnel

__all__ = ["ClientConnection", "ConnectOptions", "PongWaiter", "connect"]

# What to offer for permessage-deflate; exported as ``wsfast.DeflateConfig``.
DeflateConfig = rust.DeflateConfig


class PongWaiter:
    """Waits for the pong answering one :meth:`ClientConnection.ping`.

    Attributes:
        data: the ping payload that the pong must echo.
        latency: seconds between sending the ping and receiving its pong, or None.
    """

    __slots__ = ("_connection", "_event", "_sent_at", "data", "latency")

    def __init__(self, connection: ClientConnection, data: bytes) -> None:
        self._connection = connection
        self._event = threading.Event()
        self._sent_at = time.monotonic()
        self.data = data
        self.latency: float | None = None

    @property
    def received(self) -> bool:
        """Whether the pong has arrived."""
        return self._event.is_set()

    def _resolve(self) -> None:
        self.latency = time.monotonic() - self._sent_at
        self._event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Receive until the pong arrives, queueing any messages that come first.

        If another thread is receiving already, wait for it to see the pong instead.

        Args:
            timeout: seconds to wait at most; None waits as long as the connection lives.

        Returns:
            True once the pong arrived, False if ``timeout`` expired first.

        Raises:
            ConnectionClosed: if the connection closed before the pong came.
        """
        conn = self._connection
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._event.is_set():
            if conn._terminated:
                raise conn._closed_error()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if conn._read_lock.acquire(blocking=False):
                try:
                    if not conn._terminated:
                        conn._read_once(deadline)
                except TimeoutError:
                    return self._event.is_set()
                finally:
                    conn._read_lock.release()
            else:
                # Another thread reads: it resolves this waiter when the pong comes.
                self._event.wait(0.05 if remaining is None else min(remaining, 0.05))
        return True


class ClientConnection(HandshakeInfo):
    """One client connection, returned by :func:`connect`.

    Send with :meth:`send` (``str`` as text, bytes-like as binary), :meth:`send_text`,
    :meth:`send_binary` or :meth:`send_fragments`; receive with :meth:`recv`,
    :meth:`recv_many` or by iterating; end with :meth:`close` or a ``with`` block.
    """

    def __init__(
        self,
        sock: socket.socket,
        core: Any,
        *,
        handshake: ClientHandshake,
        close_timeout: float | None,
        read_buffer: int,
        busy_poll: bool | int = False,
    ) -> None:
        """Wrap a socket that completed the opening handshake (use :func:`connect`)."""
        self._sock = sock
        self._core = core
        self._tls = isinstance(sock, ssl_module.SSLSocket)
        self._handshake = handshake
        self._close_timeout = close_timeout
        self._local_address: Any = sock.getsockname()
        self._remote_address: Any = sock.getpeername()
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()
        # The receive path: reads into its own buffer (plain TCP) or is fed what
        # the TLS socket decrypted into ours; it holds the messages not yet returned.
        # On plain TCP it reads in C under the read lock and calls _on_read with the
        # control events; _fill is its fallback (TLS, contention, end of connection).
        if self._tls:
            self._reader: Any = cy.ClientReader(core, None, read_buffer, self._fill)
            self._sender: Any = None
        else:
            self._reader = cy.ClientReader(
                core, sock, read_buffer, self._fill, self._read_lock, self._on_read
            )
            self._sender = cy.ClientSender(core, sock, self._write_lock, self._closed_error)
        # The per-message methods go straight to the C methods: an instance attribute
        # shadows the method of the same name below (which documents it and does the
        # same), saving a Python-level call per message.
        self.recv = self._reader.recv  # type: ignore[method-assign]
        self.recv_view = self._reader.recv_view  # type: ignore[method-assign]
        self.recv_into = self._reader.recv_into  # type: ignore[method-assign]
        if self._sender is not None:
            self.send = self._sender.send  # type: ignore[method-assign]
            self.send_text = self._sender.send_text  # type: ignore[method-assign]
            self.send_binary = self._sender.send_binary  # type: ignore[method-assign]
        # TLS reads go through this buffer; plain TCP only drains into it at the end.
        self._buffer = bytearray(read_buffer if self._tls else 4096)
        self._view = memoryview(self._buffer)
        self._pings: Pings[PongWaiter] = Pings(PongWaiter._resolve)
        self._poller: Any = None
        self._eof = False
        self._close_deadline: float | None = None
        # Set once the socket is closed: the connection is over.
        self._terminated = False
        self._closed_event = threading.Event()
        self._keepalive: threading.Thread | None = None
        self._inline_keepalive: _InlineKeepalive | None = None
        self.busy_poll = busy_poll

    # ---- properties ----------------------------------------------------------------

    @property
    def local_address(self) -> Any:
        """The socket's own address, as ``socket.getsockname()`` returned it."""
        return self._local_address

    @property
    def remote_address(self) -> Any:
        """The server's address, as ``socket.getpeername()`` returned it."""
        return self._remote_address

    @property
    def state(self) -> State:
        """OPEN, CLOSING while a closing handshake runs, CLOSED once the socket is closed."""
        if self._terminated:
            return State.CLOSED
        return State(min(self._core.state, State.CLOSING))

    @property
    def busy_poll(self) -> int:
        """Microseconds each receive spins before it sleeps (see :func:`connect`).

        Settable on an open connection, with the values :func:`connect` accepts.
        """
        return round(float(self._reader.busy_poll) * 1e6)

    @busy_poll.setter
    def busy_poll(self, value: bool | int) -> None:
        microseconds = _busy_poll_us(value)
        if self._tls and microseconds:
            raise ValueError("busy_poll is not supported with TLS")
        self._reader.busy_poll = microseconds * 1e-6

    # ---- receiving -----------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> Data:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Args:
            timeout: seconds to wait at most; None waits until a message comes.

        Returns:
            The message.

        Raises:
            TimeoutError: if no message came in time (nothing is lost: a message
                received later is returned by the next call).
            ConnectionClosedOK: once the connection closed normally and every
                message received before has been returned.
            ConnectionClosedError: likewise, after an abnormal closure.
        """
        return self._reader.recv(timeout)  # type: ignore[no-any-return]

    def recv_many(self, timeout: float | None = None) -> list[Data]:
        """Return every message received so far, waiting for at least one.

        Args:
            timeout: seconds to wait at most if none is waiting.

        Returns:
            The messages, oldest first (never empty).

        Raises:
            TimeoutError: if no message came in time.
            ConnectionClosed: once the connection is closed and drained.
        """
        return self._reader.recv_many(timeout)  # type: ignore[no-any-return]

    def recv_view(self, timeout: float | None = None) -> memoryview:
        """Return the next message as a read-only memoryview, without copying it.

        DANGER: borrowed memory. The view points into the connection's receive
        buffers, which the next receive call reuses. It is valid only until the next
        call to any receive method on this connection (``recv*``, :meth:`run`,
        iteration, :meth:`PongWaiter.wait`, :meth:`close`), from any thread. After
        that it may show other bytes, or point at freed memory: reading it then is
        undefined behaviour, and may crash the interpreter. Copy what you keep
        (``bytes(view)``); never store the view or pass it to another thread.

        Text messages come as their UTF-8 bytes (already validated). Use this for
        the hottest loops that parse each message at once, e.g. ``orjson.loads(view)``.
        (Uncompressed binary messages of 16 KiB or more are received into their own
        ``bytes`` object; their view holds it and stays valid. Do not rely on it.)

        Args:
            timeout: seconds to wait at most; None waits until a message comes.

        Returns:
            A memoryview of the message payload (format "B", read-only).

        Raises:
            TimeoutError: if no message came in time.
            ConnectionClosed: once the connection is closed and drained.
        """
        return self._reader.recv_view(timeout)  # type: ignore[no-any-return]

    def recv_into(self, buffer: bytearray | memoryview, timeout: float | None = None) -> int:
        """Copy the next message into ``buffer`` (from its start) and return its length.

        No object is created per message: the payload goes from the connection's
        receive buffer straight into yours, which you may reuse for every call.
        Text messages are copied as UTF-8 bytes.

        Args:
            buffer: a writable, C-contiguous bytes-like object (``bytearray``,
                writable ``memoryview``, numpy ``uint8`` array...).
            timeout: seconds to wait at most; None waits until a message comes.

        Returns:
            The message length in bytes; ``buffer[:length]`` holds the message.

        Raises:
            ValueError: if the message is longer than ``buffer``; it stays queued,
                so a retry with a larger buffer returns it.
            TimeoutError: if no message came in time.
            ConnectionClosed: once the connection is closed and drained.
        """
        return self._reader.recv_into(buffer, timeout)  # type: ignore[no-any-return]

    def run(self, handler: Callable[[Any], object], *, view: bool = False) -> bool:
        """Call ``handler(message)`` for every message, in a loop compiled in Cython.

        The least overhead per message: no Python-level ``recv`` call and no queue.
        The loop ends when ``handler`` returns ``False`` (exactly ``False``: any other
        value, None included, continues), or when the connection closes normally.
        Exceptions from ``handler`` propagate; unread messages stay queued.

        Args:
            handler: called with each message, ``str`` for text and ``bytes`` for
                binary, or a memoryview if ``view`` is true.
            view: pass a read-only memoryview of the payload instead of a new
                ``str``/``bytes``. DANGER: borrowed memory, valid only while
                ``handler`` runs (the same rules as :meth:`recv_view`): never keep
                it after ``handler`` returns.

        Returns:
            True if ``handler`` stopped the loop, False if the connection closed
            normally.

        Raises:
            ConnectionClosedError: if the connection closes abnormally.
        """
        return self._reader.run(handler, view)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[Data]:
        """Yield messages until the connection closes normally.

        The iterator is compiled (each ``next()`` is :meth:`recv`), so a ``for`` loop
        over the connection costs no Python frame per message.

        Raises:
            ConnectionClosedError: if the connection closes abnormally.
        """
        return cy.MessageIterator(self._reader)

    def _fill(self, timeout: float | None) -> None:
        """Receive until at least one message is queued."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._read_lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            raise TimeoutError("timed out waiting for another thread's recv")
        try:
            pending = self._reader.pending
            while not pending():
                if self._terminated:
                    raise self._closed_error()
                self._read_once(deadline)
        finally:
            self._read_lock.release()

    def _read_once(self, deadline: float | None) -> None:
        """Read one buffer from the socket and hand it to the core (read lock held).

        Raises:
            TimeoutError: if nothing arrived before ``deadline``.
        """
        reader = self._reader
        if not self._tls:
            # Plain TCP: wait, recv and feed in Cython (recv() itself goes there directly).
            timeout = -1.0 if deadline is None else max(deadline - time.monotonic(), 0.0)
            self._on_read(reader.read(timeout))
            return
        try:
            n = self._recv_into(deadline, keepalive=True)
        except TimeoutError:
            raise
        except OSError:
            # Reset or aborted: an end of file without a closing handshake.
            n = 0
        self._on_read(reader.feed(self._view[:n]))  # empty: end of file

    def _on_read(self, controls: list[tuple[int, Any]] | None) -> None:
        """After one read was fed to the core: note end of file, act on control events."""
        if self._reader.eof:
            self._eof = True
        if controls is not None:
            self._handle(controls)

    def _recv_into(self, deadline: float | None, *, keepalive: bool = False) -> int:
        """One ``recv_into`` of the reusable buffer, bounded by ``deadline``.

        With TLS and ``keepalive``, the wait also wakes up for the keepalive (see
        :class:`_InlineKeepalive`).
        """
        sock = self._sock
        if keepalive and self._inline_keepalive is not None:
            return self._recv_tls_keepalive(deadline, self._inline_keepalive)
        if deadline is None:
            # The hot path: one blocking system call.
            return sock.recv_into(self._buffer)
        remaining = deadline - time.monotonic()
        if not self._tls:
            # Poll instead of settimeout(): a socket timeout would also bound the
            # sendall() of a thread sending concurrently.
            if self._poller is None:
                self._poller = select.poll()
                self._poller.register(sock, select.POLLIN)
            if not self._poller.poll(max(remaining, 0.0) * 1000.0):
                raise TimeoutError("timed out waiting for a message")
            return sock.recv_into(self._buffer)
        # TLS: readable bytes may be a partial record, so poll() cannot promise that
        # recv_into() returns; use the socket timeout for this call only.
        assert isinstance(sock, ssl_module.SSLSocket)
        if remaining <= 0 and not sock.pending():
            raise TimeoutError("timed out waiting for a message")
        sock.settimeout(max(remaining, 0.001))
        try:
            return sock.recv_into(self._buffer)
        except ssl_module.SSLWantReadError:
            raise TimeoutError("timed out waiting for a message") from None
        finally:
            sock.settimeout(None)

    def _recv_tls_keepalive(self, deadline: float | None, keepalive: _InlineKeepalive) -> int:
        """A TLS ``recv_into`` that runs the keepalive while it waits (read lock held).

        The socket timeout is the nearest of ``deadline`` and the keepalive's next
        step; each time the keepalive is due, this thread (the reader) sends the
        ping or checks the pong, then reads on.
        """
        sock = self._sock
        assert isinstance(sock, ssl_module.SSLSocket)
        while True:
            due = keepalive.due()
            wake = due if deadline is None else min(due, deadline)
            remaining = wake - time.monotonic()
            if remaining > 0 or sock.pending():
                sock.settimeout(max(remaining, 0.001))
                try:
                    return sock.recv_into(self._buffer)
                except (TimeoutError, ssl_module.SSLWantReadError):
                    pass
                finally:
                    sock.settimeout(None)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("timed out waiting for a message")
            if not keepalive.step(self):
                # Failed: the socket is shut down, so the next read sees the end.
                self._inline_keepalive = None
                return self._recv_into(deadline)

    def _handle(self, controls: list[tuple[int, Any]]) -> None:
        """Act on the control events of one batch (its messages stay in the reader)."""
        closing = self._pings.controls_received(controls)
        core = self._core
        # Write what the core queued: pongs, the reply to a close frame, or the close
        # frame that fails the connection after a protocol error.
        with self._write_lock:
            self._flush(ignore_errors=True)
        if closing or core.close_expected():
            self._finish()

    # ---- sending -------------------------------------------------------------------

    def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Send a message: ``str`` as text, any bytes-like object as binary.

        Args:
            data: the message.

        Raises:
            ConnectionClosed: if the connection is closing or closed.
            TypeError: if ``data`` is neither ``str`` nor bytes-like.
        """
        with self._write_lock:
            try:
                self._core.send(data)
            except InvalidState:
                raise self._closed_error() from None
            self._flush()

    def send_text(self, data: str | bytes) -> None:
        """Send a text message.

        Args:
            data: ``str``, or bytes that are already valid UTF-8.

        Raises:
            ConnectionClosed: if the connection is closing or closed.
        """
        with self._write_lock:
            try:
                self._core.send_text(data)
            except InvalidState:
                raise self._closed_error() from None
            self._flush()

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        """Send a binary message.

        Args:
            data: any bytes-like object.

        Raises:
            ConnectionClosed: if the connection is closing or closed.
        """
        with self._write_lock:
            try:
                self._core.send_binary(data)
            except InvalidState:
                raise self._closed_error() from None
            self._flush()

    def send_fragments(self, fragments: Iterable[str | bytes | bytearray | memoryview]) -> None:
        """Send one message in several frames, one per item of ``fragments``.

        All ``str`` items make a text message, all bytes-like ones a binary message.
        Each frame is written as soon as the next item is known, so a generator can
        stream a message of any size. An empty iterable sends nothing.

        Args:
            fragments: the pieces of the message.

        Raises:
            ConnectionClosed: if the connection is closing or closed.
            TypeError: if ``str`` and bytes-like items are mixed; the connection is
                then failed with 1011, as the message cannot be completed.
        """
        iterator = iter(fragments)
        try:
            pending = next(iterator)
        except StopIteration:
            return
        text = isinstance(pending, str)
        core = self._core
        with self._write_lock:
            try:
                first = True
                for fragment in iterator:
                    if isinstance(fragment, str) is not text:
                        core.fail(1011, "mixed text and binary fragments")
                        self._flush(ignore_errors=True)
                        raise TypeError("fragments must be all str or all bytes-like")
                    self._send_fragment(pending, text, first, fin=False)
                    first = False
                    pending = fragment
                self._send_fragment(pending, text, first, fin=True)
            except InvalidState:
                raise self._closed_error() from None

    def _send_fragment(self, data: Any, text: bool, first: bool, *, fin: bool) -> None:
        """Queue and write one frame of a fragmented message (write lock held)."""
        core = self._core
        if not first:
            core.send_continuation(data, fin)
        elif text:
            core.send_text(data, fin)
        else:
            core.send_binary(data, fin)
        self._flush()

    def ping(self, data: str | bytes | None = None) -> PongWaiter:
        """Send a ping.

        Args:
            data: the payload (at most 125 bytes; ``str`` is UTF-8 encoded); by
                default four random bytes.

        Returns:
            A :class:`PongWaiter`; its ``wait(timeout)`` returns once the pong came.

        Raises:
            ConnectionClosed: if the connection is closing or closed.
            InvalidState: if a ping with the same payload is still unanswered.
            ValueError: if the payload is longer than 125 bytes.
        """
        pings = self._pings
        payload = pings.payload(data)
        waiter = PongWaiter(self, payload)
        # Register before writing, so a reader thread cannot see the pong first.
        pings.add(payload, waiter)
        with self._write_lock:
            try:
                self._core.send_ping(payload)
            except InvalidState:
                pings.discard(payload)
                raise self._closed_error() from None
            except BaseException:
                pings.discard(payload)
                raise
            self._flush()
        return waiter

    def _flush(self, *, ignore_errors: bool = False) -> None:
        """Write everything the core queued (write lock held).

        Raises:
            ConnectionClosedError: if the socket broke, unless ``ignore_errors``.
        """
        if self._sender is not None:
            self._sender.flush(ignore_errors)
            return
        out = self._core.data_to_send()
        if not out:
            return
        try:
            self._sock.sendall(out)
        except OSError:
            # The reader sees the broken transport too and finishes the connection.
            if not ignore_errors:
                raise self._closed_error(force_error=True) from None

    # ---- keepalive -----------------------------------------------------------------

    def _start_keepalive(self, interval: float | None, timeout: float | None) -> None:
        """Start the keepalive thread, unless ``interval`` is None.

        With TLS, keepalive runs inside the receive calls instead: OpenSSL does not
        allow one thread to write a ping while another reads.
        """
        if interval is None:
            return
        if self._tls:
            self._inline_keepalive = _InlineKeepalive(interval, timeout)
            return
        # The thread holds a weak reference only: a connection dropped without
        # close() is still collected (and its thread ends at its next tick).
        self._keepalive = threading.Thread(
            target=_keepalive,
            args=(weakref.ref(self), self._closed_event, interval, timeout),
            name=f"wsfast-keepalive-{self._local_address}",
            daemon=True,
        )
        self._keepalive.start()

    def _unread_data(self, wait: float) -> bool:
        """Whether received bytes wait in the socket, unread, within ``wait`` seconds."""
        try:
            poller = select.poll()
            poller.register(self._sock, select.POLLIN)
            return bool(poller.poll(wait * 1000.0))
        except (OSError, ValueError):  # closed meanwhile
            return False

    def _send_fail(self, code: int, reason: str) -> None:
        """Queue the failing close frame (unless already closing) and flush it."""
        with self._write_lock:
            try:
                self._core.fail(code, reason)
            except InvalidState:
                pass
            self._flush(ignore_errors=True)

    def _fail_as_reader(self, code: int, reason: str) -> None:
        """Fail the connection from the thread that holds the read lock.

        Send the close frame, then shut the socket down: the read that follows sees
        the end of the connection and finishes it the usual way.
        """
        self._send_fail(code, reason)
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection: send a close frame, then close the socket at once.

        A thread blocked in a receive wakes up (the socket is shut down) and raises
        ConnectionClosedError.
        """
        self._send_fail(code, reason)
        if self._read_lock.acquire(blocking=False):
            try:
                self._abort()
            finally:
                self._read_lock.release()
        else:
            self._abort_other_reader()

    # ---- closing -------------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Perform the closing handshake, then close the socket.

        Waits up to ``close_timeout`` for the server's close frame and for the server
        to close TCP (RFC 6455 section 7.1.1), then closes the socket in any case.
        Messages that arrive meanwhile stay queued for :meth:`recv`. Calling
        ``close()`` again, or after the server closed, does nothing.

        Args:
            code: the close code to send.
            reason: the close reason (at most 123 bytes of UTF-8).

        Raises:
            ValueError: if the code or the reason cannot be sent; the connection
                stays open.
        """
        if self._terminated:
            return
        timeout = self._close_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        self._close_deadline = deadline
        with self._write_lock:
            try:
                self._core.send_close(code, reason)
            except InvalidState:
                pass  # a close frame went out already; wait for the end as usual
            self._flush(ignore_errors=True)
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        if self._read_lock.acquire(timeout=-1 if remaining is None else remaining):
            try:
                while not self._terminated:
                    self._read_once(deadline)
            except TimeoutError:
                self._abort()
            finally:
                self._read_lock.release()
        elif not self._closed_event.wait(0 if remaining is None else remaining):
            self._abort_other_reader()

    def _finish(self) -> None:
        """End a connection whose closing handshake is over or that failed (read lock held).

        The server closes TCP first (RFC 6455 section 7.1.1), so wait for its end of
        file until the close deadline, discarding anything else, then close the socket.
        """
        if self._close_deadline is None and self._close_timeout is not None:
            self._close_deadline = time.monotonic() + self._close_timeout
        deadline = self._close_deadline
        while not self._eof:
            try:
                if not self._recv_into(deadline):
                    break
            except OSError:  # TimeoutError included: give up waiting
                break
        self._abort()

    def _abort(self) -> None:
        """Close the socket now; the connection is over (read lock held)."""
        if self._terminated:
            return
        self._eof = True
        # Keep the messages not yet returned: end of file makes the core reuse its
        # buffers.
        self._reader.keep_pending()
        self._core.receive_eof()
        self._terminated = True
        # The C paths hold the descriptor number: stop them using it before it is
        # closed (and possibly reused by another socket).
        self._reader.mark_closed()
        if self._sender is not None:
            self._sender.mark_closed()
        self._sock.close()
        self._closed_event.set()

    def _abort_other_reader(self) -> None:
        """Wake a thread blocked in recv so that it sees the end and cleans up."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._closed_event.wait(1.0)

    def _closed_error(self, *, force_error: bool = False) -> ConnectionClosed:
        """The exception describing how the connection ended (or is ending)."""
        return closed_error(self._core, force_error=force_error)

    def __enter__(self) -> ClientConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ClientConnection {self.state.name} {self._remote_address!r}>"


class _InlineKeepalive:
    """The keepalive of a TLS connection, run by the receiving thread.

    One step at a time, as the keepalive thread does: send a ping, wait up to
    ``timeout`` for its pong, wait until ``interval`` after the ping, ping again.
    :meth:`ClientConnection._recv_tls_keepalive` sleeps in the kernel until
    :meth:`due`, so a connection that no thread receives on is not checked.
    """

    __slots__ = ("interval", "next_ping", "pong_deadline", "timeout", "waiter")

    def __init__(self, interval: float, timeout: float | None) -> None:
        self.interval = interval
        self.timeout = timeout
        self.next_ping = time.monotonic() + interval
        self.pong_deadline = 0.0
        self.waiter: PongWaiter | None = None

    def due(self) -> float:
        """When the next step is due (monotonic clock)."""
        waiter = self.waiter
        if waiter is None or waiter.received:
            return self.next_ping
        return min(self.pong_deadline, self.next_ping)

    def step(self, connection: ClientConnection) -> bool:
        """Do what is due; return False once the connection was failed."""
        now = time.monotonic()
        waiter = self.waiter
        if waiter is not None and not waiter.received and now >= self.pong_deadline:
            connection._fail_as_reader(CloseCode.INTERNAL_ERROR, KEEPALIVE_TIMEOUT_REASON)
            return False
        if now < self.next_ping:
            return True
        if waiter is not None and not waiter.received:
            # The pong may still come (ping_timeout > ping_interval): wait for it.
            self.next_ping = self.pong_deadline
            return True
        self.next_ping = now + self.interval
        try:
            waiter = connection.ping()
        except ConnectionClosed:
            self.next_ping = float("inf")
            return True
        if self.timeout is not None:
            self.waiter = waiter
            self.pong_deadline = now + self.timeout
        return True


def _keepalive(
    ref: weakref.ref[ClientConnection],
    closed: threading.Event,
    interval: float,
    timeout: float | None,
) -> None:
    """The keepalive thread: ping every ``interval`` seconds until the connection ends.

    It never reads from the socket (see the module docstring).
    """
    while not closed.wait(interval):
        connection = ref()
        if connection is None or not _keepalive_ping(connection, timeout):
            return
        # No strong reference while sleeping.
        del connection


def _keepalive_ping(connection: ClientConnection, timeout: float | None) -> bool:
    """Send one keepalive ping and wait for its pong; return whether to go on."""
    try:
        waiter = connection.ping()
    except ConnectionClosed:
        return False
    if timeout is None:
        return True
    # Alive if a receiving thread saw the pong, or if bytes arrive (or wait) in the
    # socket: with no thread receiving, they may hold the pong, unread. Slices:
    # a fast reader may take the bytes before poll() sees them.
    deadline = time.monotonic() + timeout
    remaining = timeout
    while remaining > 0:
        if waiter.received or connection._unread_data(min(remaining, 0.05)):
            return True
        if connection._terminated:
            return False
        remaining = deadline - time.monotonic()
    if waiter.received:
        return True
    connection._fail(CloseCode.INTERNAL_ERROR, KEEPALIVE_TIMEOUT_REASON)
    return False


def _remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline``, raising TimeoutError once it passed."""
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("timed out during the opening handshake")
    return remaining


class ConnectOptions(TypedDict, total=False):
    """The options of :func:`connect` (documented there), for type checkers."""

    subprotocols: Iterable[str]
    headers: HeadersLike | None
    compression: bool | Any
    max_size: int | None
    open_timeout: float | None
    close_timeout: float | None
    ping_interval: float | None
    ping_timeout: float | None
    proxy: str | None
    ssl: ssl_module.SSLContext | None
    server_hostname: str | None
    read_buffer: int
    busy_poll: bool | int


@overload
def connect(
    url: str, *, reconnect: Literal[False] = False, **options: Unpack[ConnectOptions]
) -> ClientConnection: ...


@overload
def connect(
    url: str,
    *,
    reconnect: Literal[True],
    backoff_initial_delay: float = ...,
    backoff_factor: float = ...,
    backoff_max_delay: float = ...,
    backoff_jitter: float = ...,
    **options: Unpack[ConnectOptions],
) -> Iterator[ClientConnection]: ...


def connect(
    url: str,
    *,
    reconnect: bool = False,
    backoff_initial_delay: float = Backoff.initial_delay,
    backoff_factor: float = Backoff.factor,
    backoff_max_delay: float = Backoff.max_delay,
    backoff_jitter: float = Backoff.jitter,
    **options: Unpack[ConnectOptions],
) -> ClientConnection | Iterator[ClientConnection]:
    """Open a WebSocket connection to ``url``, or a loop of them with ``reconnect=True``.

    ``connect(url)`` returns the open connection. ``connect(url, reconnect=True)``
    returns an iterator that yields a new open connection each time the loop asks
    for the next one, and closes the previous one first::

        for ws in wsfast.connect(url, reconnect=True):
            try:
                for message in ws:
                    ...
            except wsfast.ConnectionClosed:
                continue  # connect again

    An attempt that fails with a transient error (the server is unreachable or
    restarting: ``OSError``, ``TimeoutError``, HTTP 500, 502, 503 or 504, the
    connection closed during the handshake) is retried after a delay that grows
    exponentially with each consecutive failure, less a random jitter; any other
    error (e.g. ``InvalidStatus`` 403) ends the loop by propagating. ``break``
    ends it too and closes the connection.

    Args:
        url: ``ws://host[:port]/path?query`` or ``wss://...``; IPv6 hosts in brackets.
        reconnect: return the reconnecting iterator instead of one connection.
        backoff_initial_delay: with ``reconnect``: seconds before the first retry.
        backoff_factor: with ``reconnect``: how much each next delay grows.
        backoff_max_delay: with ``reconnect``: the longest delay.
        backoff_jitter: with ``reconnect``: the largest random fraction (0 to 1)
            taken off each delay; 1 spreads each delay uniformly down to zero.
        **options: the connection's options:

            * ``subprotocols``: subprotocols to offer, in order of preference.
            * ``headers``: extra request headers (a mapping or ``(name, value)``
              pairs).
            * ``compression`` (True): True (or ``"deflate"``) offers
              permessage-deflate with default parameters, a ``wsfast.DeflateConfig``
              offers those parameters (and its ``level``), False (or None) offers
              nothing.
            * ``max_size`` (1 MiB): largest message accepted, in bytes (after
              decompression); None for no limit. A larger message fails the
              connection with 1009.
            * ``open_timeout`` (10): seconds for TCP connect, the proxy, TLS and the
              opening handshake together.
            * ``close_timeout`` (10): seconds :meth:`ClientConnection.close` waits
              for the server.
            * ``ping_interval`` (20): seconds between keepalive pings, sent by a
              background thread; None disables keepalive.
            * ``ping_timeout`` (20): seconds to wait for a keepalive pong before
              failing the connection with 1011 ("keepalive ping timeout"), so that
              ``recv`` raises ``ConnectionClosedError``; None never fails.
            * ``proxy`` ("auto"): a proxy URL (``http://[user:pass@]host:port``,
              ``socks5://``, ``socks5h://``, ``socks4://``, ``socks4a://``; SOCKS
              needs python-socks), None for a direct connection, or ``"auto"`` for
              ``https_proxy``/``http_proxy``/``all_proxy`` and ``no_proxy`` from
              the environment. See :mod:`wsfast.proxy`.
            * ``ssl``: the TLS context for wss:// (default:
              ``ssl.create_default_context()``).
            * ``server_hostname``: the name to check the certificate against
              (default: the host).
            * ``read_buffer`` (256 KiB): bytes per ``recv_into``.
            * ``busy_poll`` (False): for latency-critical request/response loops:
              whenever a receive must wait, spin on non-blocking reads for up to
              this many microseconds (0 to 1000000; True: ``DEFAULT_BUSY_POLL_US``,
              200) before sleeping in the kernel, so a reply arriving within that
              time skips the scheduler's wake-up latency. The spin runs without the
              GIL (other threads keep running) but keeps a CPU core busy the whole
              time: it burns CPU while waiting, so use it only with a core to
              spare. Not supported with TLS.

    Returns:
        The open connection; with ``reconnect``, an iterator of connections:
        iterating raises the errors below, except the transient ones, which it
        retries.

    Raises:
        ValueError: if the URL or a header, subprotocol or option is invalid.
        OSError: if the TCP connection or the TLS handshake fails.
        TimeoutError: if the handshake takes longer than ``open_timeout``.
        TypeError: if ``busy_poll`` is not a bool or an int.
        InvalidStatus: if the server answers with another status than 101 (``.status``).
        InvalidHeader: if a required response header is missing or wrong.
        NegotiationError: if the server chose a subprotocol or extension not offered.
        InvalidHandshake: if the response is malformed or the connection closes early.
        InvalidProxy: if the proxy URL is malformed or not supported.
        InvalidProxyStatus: if an HTTP proxy refuses the tunnel (``.status``).
        ProxyError: if a SOCKS proxy refuses, or a proxy's reply is malformed.
        ImportError: for a SOCKS proxy, if python-socks is not installed.
    """
    if not reconnect:
        return _connect(url, **options)
    backoff = Backoff(backoff_initial_delay, backoff_factor, backoff_max_delay, backoff_jitter)
    return _reconnect(url, backoff, options)


def _reconnect(url: str, backoff: Backoff, options: ConnectOptions) -> Iterator[ClientConnection]:
    """The loop behind ``connect(url, reconnect=True)`` (websockets' semantics)."""
    delays: Iterator[float] | None = None
    while True:
        try:
            connection = _connect(url, **options)
        except Exception as exc:
            if not is_transient(exc):
                raise
            if delays is None:
                delays = backoff.delays()
            time.sleep(next(delays))
            continue
        # Connected: the next failure starts the backoff afresh.
        delays = None
        with connection:
            yield connection
        del connection


def _connect(
    url: str,
    *,
    subprotocols: Iterable[str] = (),
    headers: HeadersLike | None = None,
    compression: bool | Any = True,
    max_size: int | None = 1 << 20,
    open_timeout: float | None = 10.0,
    close_timeout: float | None = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    proxy: str | None = "auto",
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    read_buffer: int = 256 * 1024,
    busy_poll: bool | int = False,
) -> ClientConnection:
    """Open one connection (see :func:`connect`)."""
    handshake = ClientHandshake(
        url, subprotocols=subprotocols, headers=headers, compression=compression
    )
    tls, host, port = handshake.tls, handshake.host, handshake.port
    context = ssl_context(tls, ssl)
    if _busy_poll_us(busy_poll) and tls:
        raise ValueError("busy_poll is not supported with TLS")
    check_keepalive(ping_interval, ping_timeout)
    via = get_proxy(proxy, tls=tls, host=host, port=port)

    deadline = None if open_timeout is None else time.monotonic() + open_timeout
    if via is None:
        sock = socket.create_connection((host, port), timeout=_remaining(deadline))
    else:
        sock = open_tunnel(via, host, port, _remaining(deadline))
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            sock.settimeout(_remaining(deadline))
            sock = context.wrap_socket(sock, server_hostname=server_hostname or host)
        sock.sendall(handshake.request)

        # Read until the response head is complete; bytes after it are frames.
        received = bytearray()
        while (core := handshake.receive(received, max_size=max_size)) is None:
            sock.settimeout(_remaining(deadline))
            chunk = sock.recv(16384)
            if not chunk:
                raise InvalidHandshake(
                    "connection closed during the opening handshake"
                ) from EOFError()
            received += chunk
        sock.settimeout(None)
        connection = ClientConnection(
            sock,
            core,
            handshake=handshake,
            close_timeout=close_timeout,
            read_buffer=read_buffer,
            busy_poll=busy_poll,
        )
    except TimeoutError as exc:
        sock.close()
        raise TimeoutError("timed out during the opening handshake") from exc
    except BaseException:
        sock.close()
        raise
    if handshake.consumed < len(received):
        # The server may send frames right behind its 101 response.
        controls = connection._reader.feed(bytes(received[handshake.consumed :]))
        if controls is not None:
            connection._handle(controls)
    connection._start_keepalive(ping_interval, ping_timeout)
    return connection
