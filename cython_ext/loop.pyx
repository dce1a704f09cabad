# SPDX-License-Identifier: MIT
# The server's event loop: one epoll instance, one thread, raw sockets.
#
# Per loop turn: epoll_wait (GIL released), then every ready connection handles its
# own I/O (Transport._on_readable: one recv() into the loop's shared buffer, handed
# by pointer to the Rust core and dispatched to the handler). Handlers queue output
# in the core; the replies to a read are flushed right after it (while the payloads
# are still in cache), and connections given output otherwise (broadcasts, timers)
# join `pending` and are flushed once at the end of the turn. With busy_poll_us set,
# the loop spins on a non-blocking epoll_wait before it blocks (see Loop._wait).
#
# This file owns the epoll instance, the listeners (accept), the timers and
# callbacks, the per-turn order of work, and the end of transports' lives
# (graveyard). Everything per connection is in transport.pyx. Besides the callbacks
# scheduled on it (timers, call_soon_threadsafe), the loop calls one Python callable
# of the layer above: the listener's `factory(transport)` (_accept).

from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno
from libc.stdlib cimport free, malloc

import collections as _collections
import heapq as _heapq
import logging as _logging
import threading as _threading

_log = _logging.getLogger("wsfast.server")

# glibc keeps freed blocks in its heap, so compressors freed by the sweep (see
# Loop._sweep) would lower no RSS: they sit between live allocations, below the
# top of the heap. malloc_trim(0) hands their whole pages back to the kernel
# (madvise), in every arena. Other C libraries: nothing to do.
cdef extern from *:
    """
    #if defined(__GLIBC__)
    #include <malloc.h>
    static int wsf_trim_heap(void) { return malloc_trim(0); }
    #else
    static int wsf_trim_heap(void) { return 0; }
    #endif
    """
    int wsf_trim_heap() nogil


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


cdef class _Pollable:
    """Anything registered with the loop's epoll (data.ptr points at it, borrowed)."""


cdef class _Listener(_Pollable):
    """A listening socket; ``factory(transport)`` makes each connection's owner."""

    def __cinit__(self):
        self.kind = KIND_LISTENER
        self.fd = -1


cdef class TimerHandle:
    """A callback scheduled with :meth:`Loop.call_later` or :meth:`Loop.call_every`."""

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
        self.compressor_idle = 0.0
        self.next_compressor_check = 0.0

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
        listener.fd = fd
        listener.factory = factory
        self._arm(listener, True)
        self.listeners.append(listener)

    def remove_listeners(self):
        """Stop accepting. The sockets themselves stay open (the caller closes them)."""
        cdef _Listener listener
        for listener in self.listeners:
            self._arm(listener, False)
        self.listeners = []

    cdef int _arm(self, _Listener listener, bint on) except -1:
        """Add the listener to epoll, or take it off (idempotent)."""
        cdef epoll_event ev
        if on == listener.armed:
            return 0
        if on:
            ev.events = EPOLLIN
            ev.data.ptr = <void *>listener
            if epoll_ctl(self.epfd, EPOLL_CTL_ADD, listener.fd, &ev) < 0:
                PyErr_SetFromErrno(OSError)
        else:
            epoll_ctl(self.epfd, EPOLL_CTL_DEL, listener.fd, NULL)
        listener.armed = on
        return 0

    def _rearm(self, _Listener listener):
        # Retry timer of a starved listener; a listener removed since (shutdown) stays
        # off, as its socket may be closed and its fd number reused.
        if listener in self.listeners:
            self._arm(listener, True)

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
                t.core._release_memory(0)
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
                    # The pending connection stays in the backlog and epoll (level-
                    # triggered) would report the listener again at once: the loop
                    # would spin. Take the listener off epoll and retry on a timer, so
                    # the queued clients are accepted once descriptors free up.
                    if not listener.starved:
                        listener.starved = True
                        _log.warning(
                            "cannot accept: %s; retrying every %d ms",
                            "out of file descriptors" if errno == EMFILE or errno == ENFILE
                            else "out of memory", ACCEPT_RETRY_MS)
                    self._arm(listener, False)
                    self._add_timer(ACCEPT_RETRY_MS * 1e-3, 0.0, self._rearm, (listener,))
                break
            if listener.starved:
                listener.starved = False
                _log.info("accepting again")
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
                t.owner = listener.factory(t)
            except Exception:
                _log.exception("connection factory failed")
                t._teardown()
        return 0

    cdef int _sweep(self) except -1:
        """Check every connection's deadlines (handshake, keepalive, idle, close)."""
        cdef Transport t
        cdef bint check_compressors = False
        cdef size_t released = 0
        if self.compressor_idle > 0 and self.now >= self.next_compressor_check:
            # Every compressor_idle seconds, free the compressors that compressed
            # nothing since the last check: idle for one to two periods. The send
            # path only sets a flag in the core, so this costs nothing per message.
            self.next_compressor_check = self.now + self.compressor_idle
            check_compressors = True
        for t in list(self.transports):
            if not t.closed:
                try:
                    t._check_deadlines(self.now)
                except Exception:
                    _log.exception("error in timers of %r", t.remote_address)
                    t._teardown()
                    continue
                if check_compressors and t.mode == MODE_WS and not t.closed:
                    released += t.core._release_idle_compressor()
        if released:
            # At most once per compressor_idle. Measured: a few ms to walk the heap,
            # plus about 50 us per compressor freed (the kernel takes its pages).
            with nogil:
                wsf_trim_heap()
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
