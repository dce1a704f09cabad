# SPDX-License-Identifier: MIT
# The server's event loop: one epoll instance, one thread, raw sockets.
#
# Per loop turn: epoll_wait (GIL released), then for every readable connection one
# recv() into the loop's shared buffer, handed by pointer to the Rust core
# (Core.feed) and dispatched to the handler (Core.dispatch_events). Handlers queue
# output in the core; the replies to a read are flushed right after it (while the
# payloads are still in cache), and connections given output otherwise (broadcasts,
# timers) join `pending` and are flushed once at the end of the turn; each flush is
# one send() or, when several buffers are waiting, one sendmsg() over all of them (a
# writev that can pass MSG_NOSIGNAL). EPOLLOUT is registered only while a connection
# has output the kernel did not take. With busy_poll_us set, the loop spins on a
# non-blocking epoll_wait before it blocks (see Loop._wait).
#
# TLS connections take a separate, slower path (ssl.MemoryBIO + SSLObject) so the
# plaintext path stays a straight line from recv() to the core.

include "includes/net.pxd"

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno
from libc.stdlib cimport free, malloc
from libc.string cimport memset

import collections as _collections
import heapq as _heapq
import logging as _logging
import ssl as _ssl
import threading as _threading

from wsfast.exceptions import ConnectionClosedError as _ConnectionClosedError
from wsfast.exceptions import ConnectionClosedOK as _ConnectionClosedOK

_log = _logging.getLogger("wsfast.server")

cdef enum:
    # One buffer per loop, not per connection. Large reads matter for large
    # messages: at 64 KiB x 64 connections, 1 MiB reads gave ~1.3x the msgs/s of
    # 256 KiB ones (fewer system calls and wake-ups per message); small messages
    # only ever touch the first bytes of it.
    RECV_BUFFER_SIZE = 1048576
    MAX_EVENTS = 512
    MAX_IOV = 64
    ACCEPT_BATCH = 256
    # Bounds the sendmsg() retries of one flush when more than MAX_IOV buffers wait.
    MAX_FLUSH_ROUNDS = 16
    # Reads at least this large give their message buffer back once handled.
    RELEASE_AFTER_READ = 65536
    # When at least this much of a large binary frame is still to come, recv() it
    # straight into the message's bytes object (see Protocol::direct_target).
    DIRECT_MIN = 4096

# What an epoll registration points at.
cdef enum:
    KIND_WAKER = 0
    KIND_LISTENER = 1
    KIND_TRANSPORT = 2

# Transport modes.
cdef enum:
    MODE_HTTP = 0  # reading a request head: bytes go to proto._on_http_data
    MODE_WS = 1    # upgraded: bytes go to the Rust core
    MODE_DONE = 2  # write what is queued, then close the socket
    MODE_LINGER = 3  # response written and write side shut: wait for the client's EOF

#: Slow-consumer policies (Transport.policy).
POLICY_CLOSE = 0
POLICY_DROP = 1


cdef inline double _monotonic() noexcept nogil:
    # Same clock as time.monotonic() on Linux, without a Python call.
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef inline bint _would_block(int err) noexcept:
    # EWOULDBLOCK == EAGAIN on Linux.
    if err == EAGAIN:
        return True
    return err == EINTR


cdef object _address(sockaddr_storage *addr):
    cdef char text[INET6_ADDRSTRLEN + 1]
    cdef sockaddr_in *a4
    cdef sockaddr_in6 *a6
    if addr.ss_family == AF_INET:
        a4 = <sockaddr_in *>addr
        inet_ntop(AF_INET, &a4.sin_addr, text, sizeof(text))
        return (text.decode("ascii"), ntohs(a4.sin_port))
    if addr.ss_family == AF_INET6:
        a6 = <sockaddr_in6 *>addr
        inet_ntop(AF_INET6, &a6.sin6_addr, text, sizeof(text))
        return (text.decode("ascii"), ntohs(a6.sin6_port))
    return None


cdef size_t _buffer_size(object obj) except? 0:
    cdef Py_buffer view
    cdef size_t n
    PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE)
    n = <size_t>view.len
    PyBuffer_Release(&view)
    return n


cdef size_t _list_size(list items) except? 0:
    cdef size_t total = 0
    for obj in items:
        total += _buffer_size(obj)
    return total


cdef size_t _advance(list items, size_t written) except? 0:
    """Drop `written` bytes from the front of a list of buffers; return what is left over."""
    cdef size_t n
    while written and items:
        n = _buffer_size(items[0])
        if written >= n:
            del items[0]
            written -= n
        else:
            # Partial write: keep the rest as a view, never a copy (large payloads).
            items[0] = memoryview(items[0]).cast("B")[written:]
            return 0
    return written


cdef class _Pollable:
    """Anything registered with the loop's epoll (data.ptr points at it, borrowed)."""

    cdef int kind
    cdef public int fd


cdef class _Listener(_Pollable):
    cdef object factory

    def __cinit__(self):
        self.kind = KIND_LISTENER
        self.fd = -1


cdef class TimerHandle:
    """A callback scheduled with :meth:`Loop.call_later` or :meth:`Loop.call_every`."""

    cdef readonly double when
    cdef readonly double interval
    cdef object callback
    cdef tuple args
    cdef readonly bint cancelled

    def cancel(self):
        """Stop the callback from running (again). Idempotent."""
        self.cancelled = True
        self.callback = None
        self.args = ()


cdef class Loop:
    """An epoll loop that owns its sockets. Run it in one thread with :meth:`run`.

    Only :meth:`call_soon_threadsafe`, :meth:`stop` and :meth:`wakeup` may be called
    from other threads; everything else belongs to the loop's thread.
    """

    cdef int epfd
    cdef int evfd
    cdef _Pollable waker
    cdef uint8_t *buf
    cdef epoll_event events[MAX_EVENTS]
    cdef readonly set transports
    cdef list listeners
    cdef list pending
    cdef list graveyard
    cdef object ready
    cdef list timers
    cdef unsigned long long timer_seq
    cdef bint stopping
    cdef readonly double now
    cdef public double sweep_interval
    cdef double next_sweep
    # Busy-poll budget in microseconds (0 = off): see _wait.
    cdef public unsigned int busy_poll_us
    cdef readonly object thread_id
    cdef readonly bint running
    cdef readonly bint closed

    def __cinit__(self):
        cdef epoll_event ev
        self.epfd = -1
        self.evfd = -1
        self.buf = <uint8_t *>malloc(RECV_BUFFER_SIZE)
        if self.buf == NULL:
            raise MemoryError()
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            PyErr_SetFromErrno(OSError)
        self.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        if self.evfd < 0:
            PyErr_SetFromErrno(OSError)
        self.waker = _Pollable()
        self.waker.kind = KIND_WAKER
        self.waker.fd = self.evfd
        ev.events = EPOLLIN
        ev.data.ptr = <void *>self.waker
        if epoll_ctl(self.epfd, EPOLL_CTL_ADD, self.evfd, &ev) < 0:
            PyErr_SetFromErrno(OSError)
        self.transports = set()
        self.listeners = []
        self.pending = []
        self.graveyard = []
        self.ready = _collections.deque()
        self.timers = []
        self.now = _monotonic()
        self.sweep_interval = 0.0
        self.next_sweep = 0.0

    def __dealloc__(self):
        if self.buf != NULL:
            free(self.buf)
            self.buf = NULL
        if self.epfd >= 0:
            close(self.epfd)
            self.epfd = -1
        if self.evfd >= 0:
            close(self.evfd)
            self.evfd = -1

    # ---- registration ---------------------------------------------------------

    def add_listener(self, int fd, factory):
        """Accept connections on a listening, non-blocking socket.

        Args:
            fd: the socket's file descriptor (the caller keeps the socket open).
            factory: called as ``factory(transport)`` for each new connection; it
                returns the object that receives the transport's callbacks.
        """
        cdef _Listener listener = _Listener()
        cdef epoll_event ev
        listener.fd = fd
        listener.factory = factory
        ev.events = EPOLLIN
        ev.data.ptr = <void *>listener
        if epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev) < 0:
            PyErr_SetFromErrno(OSError)
        self.listeners.append(listener)

    def remove_listeners(self):
        """Stop accepting. The sockets themselves stay open (the caller closes them)."""
        cdef _Listener listener
        for listener in self.listeners:
            epoll_ctl(self.epfd, EPOLL_CTL_DEL, listener.fd, NULL)
        self.listeners = []

    cdef int _register(self, Transport t) except -1:
        cdef epoll_event ev
        ev.events = EPOLLIN
        ev.data.ptr = <void *>t
        if epoll_ctl(self.epfd, EPOLL_CTL_ADD, t.fd, &ev) < 0:
            PyErr_SetFromErrno(OSError)
        self.transports.add(t)
        return 0

    cdef int _set_events(self, Transport t, uint32_t events) except -1:
        cdef epoll_event ev
        ev.events = events
        ev.data.ptr = <void *>t
        epoll_ctl(self.epfd, EPOLL_CTL_MOD, t.fd, &ev)
        return 0

    cdef inline void _schedule(self, Transport t):
        if not t.in_pending:
            t.in_pending = True
            self.pending.append(t)

    # ---- callbacks and timers ---------------------------------------------------

    def wakeup(self):
        """Interrupt epoll_wait (safe from any thread)."""
        cdef uint64_t one = 1
        if self.evfd >= 0:
            write(self.evfd, &one, 8)

    def call_soon_threadsafe(self, fn, *args):
        """Run ``fn(*args)`` on the loop's thread, soon (safe from any thread)."""
        # deque.append is atomic under the GIL; the eventfd write wakes epoll_wait.
        self.ready.append((fn, args))
        self.wakeup()

    def call_later(self, double delay, fn, *args):
        """Run ``fn(*args)`` once after ``delay`` seconds. Returns a TimerHandle."""
        return self._add_timer(delay, 0.0, fn, args)

    def call_every(self, double interval, fn, *args):
        """Run ``fn(*args)`` every ``interval`` seconds. Returns a TimerHandle."""
        if interval <= 0:
            raise ValueError(f"interval must be positive, not {interval}")
        return self._add_timer(interval, interval, fn, args)

    cdef TimerHandle _add_timer(self, double delay, double interval, fn, tuple args):
        cdef TimerHandle h = self.new_timer(delay, interval, fn, args)
        self.push_timer(h)
        return h

    def new_timer(self, double delay, double interval, fn, tuple args):
        """A TimerHandle due in ``delay`` seconds, not scheduled yet (any thread)."""
        cdef TimerHandle h = TimerHandle()
        h.when = _monotonic() + max(delay, 0.0)
        h.interval = interval
        h.callback = fn
        h.args = args
        return h

    def push_timer(self, TimerHandle h):
        """Schedule a handle from :meth:`new_timer` (loop thread only)."""
        self.timer_seq += 1
        _heapq.heappush(self.timers, (h.when, self.timer_seq, h))

    cdef int _run_timers(self) except -1:
        cdef TimerHandle h
        cdef double now = self.now
        while self.timers and self.timers[0][0] <= now:
            h = _heapq.heappop(self.timers)[2]
            if h.cancelled:
                continue
            fn = h.callback
            args = h.args
            if h.interval > 0:
                # Fixed rate, but never more than one catch-up run after a stall.
                h.when = max(h.when + h.interval, now)
                self.push_timer(h)
            else:
                h.cancelled = True
            try:
                fn(*args)
            except Exception:
                _log.exception("timer callback %r failed", fn)
        return 0

    cdef int _run_ready(self) except -1:
        cdef Py_ssize_t n = len(self.ready)
        # Only what was queued before this turn: a callback that queues another
        # runs in the next turn, so the loop cannot starve I/O.
        while n > 0:
            n -= 1
            fn, args = self.ready.popleft()
            try:
                fn(*args)
            except Exception:
                _log.exception("callback %r failed", fn)
        return 0

    # ---- running ------------------------------------------------------------------

    def stop(self):
        """Make :meth:`run` return after the current turn (safe from any thread)."""
        self.stopping = True
        self.wakeup()

    def run(self):
        """Run turns until :meth:`stop`. Signal handlers run between turns."""
        if self.closed:
            raise RuntimeError("loop is closed")
        if self.running:
            raise RuntimeError("loop is already running")
        self.thread_id = _threading.get_ident()
        self.running = True
        self.stopping = False
        try:
            while not self.stopping:
                self._turn()
        finally:
            self.running = False

    cdef int _timeout_ms(self):
        cdef double deadline = -1.0
        cdef double delay
        if self.ready or self.pending:
            return 0
        if self.timers:
            deadline = self.timers[0][0]
        if self.sweep_interval > 0 and (deadline < 0 or self.next_sweep < deadline):
            deadline = self.next_sweep
        # Wake at least once a second, so a signal that arrives between
        # PyErr_CheckSignals and epoll_wait is handled within that time.
        if deadline < 0:
            return 1000
        delay = (deadline - _monotonic()) * 1000.0 + 0.5
        if delay <= 0:
            return 0
        return <int>min(delay, 1000.0)

    cdef int _wait(self, int timeout) noexcept nogil:
        # Busy-poll mode: spin on a non-blocking epoll_wait for up to busy_poll_us
        # before blocking. A blocked thread pays the scheduler's wake-up latency
        # (several microseconds, more on a VM) on every message; spinning trades one
        # busy core for that latency. The spin stops early when a deadline (timer,
        # sweep) is closer than the budget, so timers keep their precision.
        cdef int n
        cdef double budget = self.busy_poll_us * 1e-6
        cdef double end
        if self.busy_poll_us == 0 or timeout == 0:
            return epoll_wait(self.epfd, self.events, MAX_EVENTS, timeout)
        if 0 < timeout and timeout * 1e-3 < budget:
            budget = timeout * 1e-3
        end = _monotonic() + budget
        while True:
            n = epoll_wait(self.epfd, self.events, MAX_EVENTS, 0)
            if n != 0 or self.stopping or _monotonic() >= end:
                break
        if n == 0 and not self.stopping:
            n = epoll_wait(self.epfd, self.events, MAX_EVENTS, timeout)
        return n

    cdef int _turn(self) except -1:
        cdef int timeout = self._timeout_ms()
        cdef int n, i
        cdef uint32_t flags
        cdef _Pollable p
        cdef Transport t
        with nogil:
            n = self._wait(timeout)
        if n < 0:
            if errno != EINTR:
                PyErr_SetFromErrno(OSError)
            n = 0
        # Python-level signal handlers (SIGINT/SIGTERM) run here, on the main thread.
        PyErr_CheckSignals()
        self.now = _monotonic()
        for i in range(n):
            # Borrowed pointer: every registered object is kept alive by
            # self.transports / self.listeners / self.waker, and a transport
            # closed earlier in this batch stays alive in self.graveyard.
            p = <_Pollable>self.events[i].data.ptr
            flags = self.events[i].events
            if p.kind == KIND_TRANSPORT:
                t = <Transport>p
                if t.closed:
                    continue
                try:
                    if flags & (EPOLLIN | EPOLLHUP | EPOLLERR):
                        t._on_readable()
                    if flags & EPOLLOUT and not t.closed:
                        self._schedule(t)
                except Exception:
                    _log.exception("error on connection %r", t.remote_address)
                    t._teardown()
            elif p.kind == KIND_LISTENER:
                self._accept(<_Listener>p)
            else:
                self._drain_waker()
        if self.timers:
            self._run_timers()
        if self.sweep_interval > 0 and self.now >= self.next_sweep:
            self.next_sweep = self.now + self.sweep_interval
            self._sweep()
        if self.ready:
            self._run_ready()
        if self.pending:
            self._flush_pending()
        if self.graveyard:
            self._bury()
        return 0

    cdef void _drain_waker(self) noexcept:
        cdef uint64_t value
        read(self.evfd, &value, 8)

    cdef int _flush_pending(self) except -1:
        cdef list pending = self.pending
        cdef Transport t
        self.pending = []
        for t in pending:
            if not t.in_pending or t.closed:
                # Flushed already, right after its read (see Transport._on_readable).
                t.in_pending = False
                continue
            t.in_pending = False
            try:
                t._flush()
            except Exception:
                _log.exception("error writing to %r", t.remote_address)
                t._teardown()
        return 0

    cdef int _bury(self) except -1:
        cdef Transport t
        cdef list dead = self.graveyard
        self.graveyard = []
        for t in dead:
            # Safe only now: no event array of this core is being dispatched.
            if t.core is not None:
                t.core.release_memory(0)
                t.core.chunks = []
        return 0

    cdef int _accept(self, _Listener listener) except -1:
        cdef sockaddr_storage addr
        cdef socklen_t addrlen
        cdef int fd, one = 1
        cdef Transport t
        for _ in range(ACCEPT_BATCH):
            addrlen = sizeof(addr)
            fd = accept4(listener.fd, <sockaddr *>&addr, &addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC)
            if fd < 0:
                if errno == ECONNABORTED or errno == EINTR:
                    continue
                if errno == EMFILE or errno == ENFILE or errno == ENOBUFS or errno == ENOMEM:
                    _log.warning("cannot accept: out of file descriptors or memory")
                break
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
            t = Transport.__new__(Transport)
            t.fd = fd
            t.loop = self
            t.remote_address = _address(&addr)
            t.created = self.now
            t.last_message = self.now
            try:
                self._register(t)
            except OSError:
                close(fd)
                t.fd = -1
                t.closed = True
                continue
            try:
                t.proto = listener.factory(t)
            except Exception:
                _log.exception("connection factory failed")
                t._teardown()
        return 0

    cdef int _sweep(self) except -1:
        """Check every connection's deadlines (handshake, keepalive, idle, close)."""
        cdef Transport t
        for t in list(self.transports):
            if not t.closed:
                try:
                    t._check_deadlines(self.now)
                except Exception:
                    _log.exception("error in timers of %r", t.remote_address)
                    t._teardown()
        return 0

    def close(self):
        """Drop every connection and release the loop's file descriptors."""
        cdef Transport t
        if self.closed:
            return
        self.closed = True
        self.remove_listeners()
        for t in list(self.transports):
            t._teardown()
        self._bury()
        self.timers = []
        self.ready.clear()
        if self.epfd >= 0:
            close(self.epfd)
            self.epfd = -1
        if self.evfd >= 0:
            close(self.evfd)
            self.evfd = -1


cdef class Transport(_Pollable):
    """One accepted socket: HTTP head first, then WebSocket frames through a Core.

    ``proto`` receives ``_on_http_data(bytes)`` while in HTTP mode, and
    ``_on_handler_error(exc)``, ``_on_drain()`` and ``_on_lost()`` once upgraded.
    Everything runs on the loop's thread.
    """

    cdef readonly Loop loop
    cdef public object proto
    cdef readonly Core core
    cdef readonly object remote_address
    cdef int mode
    cdef bint in_pending
    cdef uint32_t events  # the current epoll registration
    cdef readonly bint closed
    # Raw bytes queued before the core's output (HTTP responses, TLS records).
    cdef list wbuf
    cdef size_t wbuf_size
    cdef object tls
    cdef object tls_in
    cdef object tls_out
    cdef bint tls_ready
    # Flow control.
    cdef public size_t high_water
    cdef public size_t low_water
    cdef public int policy
    cdef readonly bint paused
    cdef readonly size_t dropped
    # Timers: deadlines are loop-clock seconds, 0 meaning "not armed".
    cdef readonly double created
    cdef public double last_message
    cdef public double next_ping
    cdef public double pong_deadline
    cdef public double close_deadline
    cdef public double handshake_timeout
    cdef public double ping_interval
    cdef public double ping_timeout
    cdef public double idle_timeout
    cdef public double close_timeout

    def __cinit__(self):
        self.kind = KIND_TRANSPORT
        self.fd = -1
        self.mode = MODE_HTTP
        self.events = EPOLLIN
        self.wbuf = []
        self.high_water = 4 << 20
        self.low_water = 1 << 20
        self.policy = POLICY_CLOSE

    # ---- setup (called by the Python layer) -----------------------------------------

    def start_tls(self, context):
        """Serve this connection over TLS with ``context`` (server side)."""
        self.tls_in = _ssl.MemoryBIO()
        self.tls_out = _ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.tls_in, self.tls_out, server_side=True)

    @property
    def tls_object(self):
        """The ssl.SSLObject of a TLS connection, or None."""
        return self.tls

    def write(self, data):
        """Queue raw bytes (an HTTP response) ahead of any WebSocket output."""
        if self.closed:
            return
        self._write_raw(bytes(data))
        self.loop._schedule(self)

    def close_after_write(self):
        """Close the socket once everything queued is written."""
        if not self.closed:
            self.mode = MODE_DONE
            self.loop._schedule(self)

    def upgrade(self, Core core):
        """Switch to WebSocket mode: from now on received bytes go to ``core``."""
        self.core = core
        self.mode = MODE_WS
        self.last_message = self.loop.now
        if self.ping_interval > 0:
            self.next_ping = self.loop.now + self.ping_interval

    def feed(self, data):
        """Feed bytes that arrived with the request head to the core."""
        cdef const uint8_t[::1] view = data
        if view.shape[0] and not self.closed:
            self._feed(&view[0], view.shape[0])

    # ---- sending -----------------------------------------------------------------

    cdef int _check_open(self) except -1:
        cdef object received
        cdef object sent
        if self.core is None:
            raise _InvalidState("the connection is not open yet")
        if self.closed or RS.state(self.core.p) != 1:
            received = self.core.close_received or (1006, "")
            sent = self.core.close_sent
            ok = received[0] in (1000, 1001) and sent is not None and sent[0] in (1000, 1001)
            cls = _ConnectionClosedOK if ok else _ConnectionClosedError
            raise cls(received[0], received[1], sent[0] if sent else None,
                      sent[1] if sent else None)
        return 0

    cdef bint _admit(self) except -1:
        # Flow control: while the connection is over its high-water mark (paused),
        # the slow-consumer policy decides what happens to new messages.
        if not self.paused:
            return True
        if self.policy == POLICY_DROP:
            self.dropped += 1
            return False
        self.core.fail(1008, "slow consumer")
        self._after_core()
        return False

    cdef inline int _after_send(self) except -1:
        self.loop._schedule(self)
        if not self.paused and self._buffered() > self.high_water:
            self.paused = True
        return 0

    cpdef send(self, data):
        """Send a message: ``str`` as text, bytes-like as binary (see Connection.send)."""
        self._check_open()
        if self._admit():
            self.core.send(data)
            self._after_send()

    cpdef send_text(self, data, bint fin=True):
        """Send a text frame (``str`` or UTF-8 bytes)."""
        self._check_open()
        if self._admit():
            self.core.send_text(data, fin)
            self._after_send()

    cpdef send_binary(self, data, bint fin=True):
        """Send a binary frame."""
        self._check_open()
        if self._admit():
            self.core.send_binary(data, fin)
            self._after_send()

    cpdef send_continuation(self, data, bint fin):
        """Send a continuation frame of a fragmented message."""
        self._check_open()
        self.core.send_continuation(data, fin)
        self._after_send()

    def ping(self, data=b""):
        """Send a ping."""
        self._check_open()
        self.core.send_ping(data)
        self._after_send()

    def close(self, code=1000, str reason=""):
        """Start the closing handshake; no-op if it already started."""
        if self.closed:
            return
        if self.core is None:
            self._teardown()
            return
        if RS.state(self.core.p) == 1:
            self.core.send_close(code, reason)
        self._after_core()

    def fail(self, int code, str reason=""):
        """Fail the connection with a close frame, ignoring further input."""
        if self.closed or self.core is None:
            return
        self.core.fail(code, reason)
        self._after_core()

    def abort(self):
        """Close the socket now, without a closing handshake."""
        self._teardown()

    @property
    def buffered_amount(self):
        """Bytes queued in user space and not yet accepted by the kernel."""
        return self._buffered()

    @property
    def writable(self):
        """False while the output is over the high-water mark (until it drains)."""
        return not self.paused and not self.closed

    @property
    def tls_active(self):
        """True for a TLS connection."""
        return self.tls is not None

    cdef size_t _buffered(self) except? 0:
        cdef size_t n = 0
        cdef size_t total = self.wbuf_size
        if self.core is not None:
            self.core.output(&n)
            total += n
            if self.core.chunks:
                total += _list_size(self.core.chunks)
        return total

    # ---- receiving ---------------------------------------------------------------

    cdef int _read_direct(self) except -1:
        """Receive the rest of a large binary frame straight into its bytes object.

        The kernel copies the payload into its final place and Rust unmasks it there:
        no pass through the shared buffer. Reading on until the frame is complete (or
        the socket is empty) finishes each message in one go, so its memory is reused
        for the next one while still in cache, instead of many connections each
        holding half a message.
        """
        cdef size_t want = 0
        cdef uint8_t *target
        cdef ssize_t n
        while not self.closed:
            target = RS.direct_target(self.core.p, &want)
            if target == NULL or want < DIRECT_MIN:
                return 0
            n = recv(self.fd, target, want, 0)
            if n > 0:
                self._dispatch(self.core.feed_direct(<size_t>n))
                if self.in_pending and not self.closed:
                    self.in_pending = False
                    self._flush()
                continue
            if n == 0:
                return self._eof()
            if not _would_block(errno):
                self._teardown()
            return 0
        return 0

    cdef int _on_readable(self) except -1:
        cdef size_t want = 0
        cdef ssize_t n
        if self.mode == MODE_WS and self.tls is None:
            if RS.direct_target(self.core.p, &want) != NULL and want >= DIRECT_MIN:
                return self._read_direct()
        n = recv(self.fd, self.loop.buf, RECV_BUFFER_SIZE, 0)
        if n > 0:
            if self.tls is not None:
                return self._tls_received(<size_t>n)
            if self.mode == MODE_WS:
                self._feed(self.loop.buf, <size_t>n)
                if self.in_pending and not self.closed:
                    # Write the replies to this read now, not at the end of the turn:
                    # the payloads just built are still in the CPU cache, and with
                    # large messages waiting for the end of a turn would keep every
                    # connection's output alive at once (megabytes: cache misses on
                    # every byte the kernel copies). Output that other connections
                    # queue for this one later in the turn still goes out once, at
                    # the end of the turn.
                    self.in_pending = False
                    self._flush()
                if <size_t>n >= RELEASE_AFTER_READ and not self.closed:
                    # The batch's events are handled: hand the message buffer back to
                    # the allocator, so the next large message (on any connection)
                    # reuses memory that is still in cache (see Protocol.release_memory).
                    RS.release_memory(self.core.p, 0)
                if not self.closed:
                    self._read_direct()
                return 0
            if self.mode == MODE_HTTP:
                self.proto._on_http_data(_bytes(self.loop.buf, <size_t>n))
            return 0
        if n == 0:
            return self._eof()
        if _would_block(errno):
            return 0
        self._teardown()
        return 0

    cdef int _feed(self, const uint8_t *data, size_t n) except -1:
        return self._dispatch(self.core.feed(data, n))

    cdef int _dispatch(self, size_t count) except -1:
        """Handle the ``count`` events of the batch the core just produced."""
        cdef Core core = self.core
        cdef const wsf_event *ev
        cdef size_t i
        if count:
            # Timer bookkeeping straight from the event records, before any handler runs.
            ev = RS.events(core.p)
            for i in range(count):
                if ev[i].kind <= 2:
                    self.last_message = self.loop.now
                elif ev[i].kind == 10:
                    self.pong_deadline = 0.0
            while True:
                try:
                    core.dispatch_events(count)
                except (_ConnectionClosedOK, _ConnectionClosedError) as exc:
                    if RS.state(core.p) == 1:
                        self.proto._on_handler_error(exc)
                        break
                    # The peer's close frame came in this same read, after messages the
                    # handler answered: those replies cannot be sent (RFC 6455 5.5.1).
                    # Not a handler error; go on with the rest of the batch.
                    continue
                except Exception as exc:
                    # The rest of this batch is dropped: the connection fails with 1011.
                    self.proto._on_handler_error(exc)
                break
        self._after_core()
        return 0

    cdef int _after_core(self) except -1:
        cdef size_t n = 0
        if self.closed:
            return 0
        if RS.state(self.core.p) >= 2 and self.close_deadline == 0 and self.close_timeout > 0:
            self.close_deadline = self.loop.now + self.close_timeout
        self.core.output(&n)
        if n or self.core.chunks or RS.close_expected(self.core.p):
            self.loop._schedule(self)
            # Auto-replies (pongs, close echoes) count against the high-water mark too.
            if not self.paused and self._buffered() > self.high_water:
                self.paused = True
        return 0

    cdef int _eof(self) except -1:
        if self.mode == MODE_WS and RS.state(self.core.p) != 3:
            self.core.receive_eof()
        self._teardown()
        return 0

    cdef int _tls_received(self, size_t n) except -1:
        cdef bytes chunk
        self.tls_in.write(_bytes(self.loop.buf, n))
        if not self.tls_ready:
            try:
                self.tls.do_handshake()
                self.tls_ready = True
            except _ssl.SSLWantReadError:
                pass
            except _ssl.SSLError as exc:
                _log.debug("TLS handshake with %r failed: %s", self.remote_address, exc)
                self._teardown()
                return 0
        if self.tls_ready:
            while not self.closed:
                try:
                    chunk = self.tls.read(RECV_BUFFER_SIZE)
                except _ssl.SSLWantReadError:
                    break
                except (_ssl.SSLZeroReturnError, _ssl.SSLEOFError):
                    return self._eof()
                except _ssl.SSLError as exc:
                    _log.debug("TLS error from %r: %s", self.remote_address, exc)
                    self._teardown()
                    return 0
                if not chunk:
                    return self._eof()
                if self.mode == MODE_WS:
                    self._feed(<const uint8_t *>PyBytes_AS_STRING(chunk), len(chunk))
                elif self.mode == MODE_HTTP:
                    self.proto._on_http_data(chunk)
        if not self.closed and self.tls_out.pending:
            self._write_raw(None)
            self.loop._schedule(self)
        return 0

    cdef int _write_raw(self, object data) except -1:
        """Queue bytes for the socket, encrypting them first on a TLS connection."""
        cdef bytes record
        if self.tls is None:
            if data:
                self.wbuf.append(data)
                self.wbuf_size += len(data)
            return 0
        if data:
            self.tls.write(data)
        record = self.tls_out.read()
        if record:
            self.wbuf.append(record)
            self.wbuf_size += len(record)
        return 0

    # ---- writing -------------------------------------------------------------------

    cdef int _flush(self) except -1:
        cdef Core core = self.core
        cdef const uint8_t *out
        cdef size_t n = 0, remaining
        cdef uint32_t events
        cdef bint drained
        cdef ssize_t r
        if self.closed:
            return 0
        if self.tls is not None and core is not None:
            core.output(&n)
            if n or core.chunks:
                self._write_raw(core.data_to_send())
        if core is not None and not self.wbuf and not core.chunks:
            # The common case: one contiguous buffer, written from Rust's memory.
            out = core.output(&n)
            remaining = n
            if n:
                r = send(self.fd, out, n, MSG_NOSIGNAL)
                if r < 0:
                    if not _would_block(errno):
                        self._teardown()
                        return 0
                    r = 0
                core.consume(<size_t>r)
                remaining = n - <size_t>r
        else:
            remaining = self._flush_vectored()
            if self.closed:
                return 0
        drained = self.paused and remaining <= self.low_water
        if drained:
            self.paused = False
        # Backpressure: while paused, stop reading too, so a peer that sends
        # (pings, requests) but never reads cannot make us queue without bound.
        events = (0 if self.paused else EPOLLIN) | (EPOLLOUT if remaining else 0)
        if events != self.events:
            self.events = events
            self.loop._set_events(self, events)
        if drained:
            self.proto._on_drain()
            if self.closed:
                return 0
        if remaining:
            return 0
        if self.mode == MODE_DONE:
            # Lingering close: closing with unread input would send an RST that can
            # destroy the response in flight, so shut our side and wait for EOF.
            shutdown(self.fd, SHUT_WR)
            self.mode = MODE_LINGER
            self.close_deadline = self.loop.now + (self.close_timeout or 2.0)
            return 0
        if core is not None and RS.close_expected(core.p):
            self._teardown()
        return 0

    cdef size_t _flush_vectored(self) except? 0:
        """Write wbuf, then the core's chunks, then its output, with sendmsg()."""
        cdef iovec iov[MAX_IOV]
        cdef Py_buffer views[MAX_IOV]
        cdef msghdr msg
        cdef int k, nviews
        cdef size_t total, n = 0, left
        cdef ssize_t r
        cdef const uint8_t *out = NULL
        cdef Core core = self.core
        cdef list chunks = core.chunks if core is not None else []
        for _ in range(MAX_FLUSH_ROUNDS):
            k = 0
            total = 0
            for obj in self.wbuf:
                if k == MAX_IOV - 1:
                    break
                PyObject_GetBuffer(obj, &views[k], PyBUF_SIMPLE)
                iov[k].iov_base = views[k].buf
                iov[k].iov_len = <size_t>views[k].len
                total += iov[k].iov_len
                k += 1
            if k < MAX_IOV - 1 and len(self.wbuf) == k:
                for obj in chunks:
                    if k == MAX_IOV - 1:
                        break
                    PyObject_GetBuffer(obj, &views[k], PyBUF_SIMPLE)
                    iov[k].iov_base = views[k].buf
                    iov[k].iov_len = <size_t>views[k].len
                    total += iov[k].iov_len
                    k += 1
            nviews = k
            n = 0
            if core is not None and nviews == len(self.wbuf) + len(chunks):
                out = core.output(&n)
                if n:
                    iov[k].iov_base = <void *>out
                    iov[k].iov_len = n
                    total += n
                    k += 1
            if total == 0:
                for k in range(nviews):
                    PyBuffer_Release(&views[k])
                # Drop empty buffers so they cannot loop forever.
                self.wbuf = [b for b in self.wbuf if _buffer_size(b)]
                if core is not None:
                    core.chunks = [c for c in core.chunks if _buffer_size(c)]
                    chunks = core.chunks
                break
            memset(&msg, 0, sizeof(msg))
            msg.msg_iov = iov
            msg.msg_iovlen = k
            r = sendmsg(self.fd, &msg, MSG_NOSIGNAL)
            for k in range(nviews):
                PyBuffer_Release(&views[k])
            if r < 0:
                if not _would_block(errno):
                    self._teardown()
                    return 0
                r = 0
            # Advance through the three queues in order.
            left = <size_t>r
            if self.wbuf:
                self.wbuf_size -= min(left, self.wbuf_size)
                left = _advance(self.wbuf, left)
            if left and chunks:
                left = _advance(chunks, left)
            if left and core is not None:
                core.consume(left)
            if <size_t>r < total:
                break
        return self._buffered()

    # ---- timers and teardown -------------------------------------------------------

    cdef int _check_deadlines(self, double now) except -1:
        cdef int state
        if self.mode != MODE_WS:
            if self.mode == MODE_LINGER:
                if now >= self.close_deadline:
                    self._teardown()
            elif self.handshake_timeout > 0 and now - self.created >= self.handshake_timeout:
                self._teardown()
            return 0
        if self.close_deadline > 0 and now >= self.close_deadline:
            # The peer did not finish the closing handshake in time: just drop TCP.
            self._teardown()
            return 0
        state = RS.state(self.core.p)
        if state != 1:
            return 0
        if self.idle_timeout > 0 and now - self.last_message >= self.idle_timeout:
            self.core.send_close(1001, "idle timeout")
            self._after_core()
            return 0
        if self.ping_interval > 0:
            if self.pong_deadline > 0:
                if now >= self.pong_deadline:
                    # Same policy as websockets: a missed keepalive pong is a 1011.
                    self.core.fail(1011, "keepalive ping timeout")
                    self._after_core()
            elif now >= self.next_ping:
                self.core.send_ping(b"")
                self.next_ping = now + self.ping_interval
                if self.ping_timeout > 0:
                    self.pong_deadline = now + self.ping_timeout
                self._after_core()
        return 0

    cdef int _teardown(self) except -1:
        """Close the socket, forget it, and tell the proto (once)."""
        if self.closed:
            return 0
        self.closed = True
        self.paused = False
        if self.fd >= 0:
            epoll_ctl(self.loop.epfd, EPOLL_CTL_DEL, self.fd, NULL)
            close(self.fd)
            self.fd = -1
        self.loop.transports.discard(self)
        self.loop.graveyard.append(self)
        self.wbuf = []
        self.wbuf_size = 0
        self.tls = None
        self.tls_in = None
        self.tls_out = None
        proto = self.proto
        if proto is not None:
            try:
                proto._on_lost()
            except Exception:
                _log.exception("error in connection-lost callback")
        return 0
