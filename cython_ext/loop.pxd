# SPDX-License-Identifier: MIT
# Declarations of loop.pyx: the epoll loop, what it polls, its timers and clock.

cdef enum:
    # One buffer per loop, not per connection, shared by every plaintext read. Large
    # reads matter for large messages: at 64 KiB x 64 connections, 1 MiB reads gave
    # ~1.3x the msgs/s of 256 KiB ones (fewer system calls and wake-ups per message);
    # small messages only ever touch the first bytes of it.
    RECV_BUFFER_SIZE = 1048576
    MAX_EVENTS = 512
    ACCEPT_BATCH = 256
    # Milliseconds before a listener that ran out of file descriptors tries again.
    ACCEPT_RETRY_MS = 100

# What an epoll registration points at (_Pollable.kind).
cdef enum PollableKind:
    KIND_WAKER = 0
    KIND_LISTENER = 1
    KIND_TRANSPORT = 2


# The server's logger ("wsfast.server"), for errors the loop and transports survive.
cdef object _log


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


cdef class _Pollable:
    cdef PollableKind kind
    cdef public int fd


cdef class _Listener(_Pollable):
    cdef object factory
    # Out of file descriptors: the listener is off epoll until a retry timer re-arms
    # it (see Loop._accept); `starved` stays set until an accept succeeds again, so
    # a burst of failures is logged once.
    cdef bint armed
    cdef bint starved


cdef class TimerHandle:
    cdef readonly double when
    cdef readonly double interval
    cdef object callback
    cdef tuple args
    cdef readonly bint cancelled


cdef class Loop:
    cdef int epfd
    cdef int evfd
    cdef _Pollable waker
    # The shared receive buffer (RECV_BUFFER_SIZE bytes): valid only during one read.
    cdef uint8_t *buf
    cdef epoll_event events[MAX_EVENTS]
    cdef readonly set transports
    cdef list listeners
    # Transports with output to flush at the end of the turn (Transport.in_pending).
    cdef list pending
    # Transports closed this turn: kept alive until no event array refers to them.
    cdef list graveyard
    cdef object ready
    cdef list timers
    cdef unsigned long long timer_seq
    cdef bint stopping
    cdef readonly double now
    cdef public double sweep_interval
    cdef double next_sweep
    # Free the compressor of connections that compressed nothing for this many
    # seconds (0 = never): see _sweep.
    cdef public double compressor_idle
    cdef double next_compressor_check
    # Busy-poll budget in microseconds (0 = off): see _wait.
    cdef public unsigned int busy_poll_us
    # Server-wide cap on buffered output in bytes (0 = off), and the total buffered
    # (the sum of Transport.counted, kept only while the cap is on): see Transport._admit.
    cdef public size_t max_buffered
    cdef readonly size_t buffered
    cdef readonly object thread_id
    cdef readonly bint running
    cdef readonly bint closed

    # ---- what transports call -------------------------------------------------------
    cdef int _register(self, Transport t) except -1
    cdef int _set_events(self, Transport t, uint32_t events) except -1
    cdef inline void _schedule(self, Transport t)

    # ---- timers and callbacks -------------------------------------------------------
    cdef TimerHandle _add_timer(self, double delay, double interval, fn, tuple args)
    cdef int _run_timers(self) except -1
    cdef int _run_ready(self) except -1

    # ---- one turn -------------------------------------------------------------------
    cdef int _timeout_ms(self)
    cdef int _wait(self, int timeout) noexcept nogil
    cdef int _turn(self) except -1
    cdef void _drain_waker(self) noexcept
    cdef int _flush_pending(self) except -1
    cdef int _bury(self) except -1
    cdef int _accept(self, _Listener listener) except -1
    cdef int _arm(self, _Listener listener, bint on) except -1
    cdef int _sweep(self) except -1
