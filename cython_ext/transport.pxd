# SPDX-License-Identifier: MIT
# Declarations of transport.pyx: one server connection's socket (see its docstring
# for the contract with the owner, `owner`).


cdef class Transport(_Pollable):
    cdef readonly Loop loop
    # The owner: receives the four callbacks of the contract (the _owner_* methods).
    cdef public object owner
    cdef readonly Core core
    cdef readonly object remote_address
    cdef TransportMode mode
    # Queued on loop.pending for a flush at the end of the turn.
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
    cdef public int policy  # a SlowConsumerPolicy
    cdef readonly bint paused
    cdef readonly size_t dropped
    # Replies still owed to the messages of the batch being dispatched (see _admit).
    cdef size_t owed
    # This connection's share of loop.buffered (see _account).
    cdef size_t counted
    # Topics (publish fast path): frames queued, frames skipped by the policy, and
    # the frames held back while an application's fragmented message is in flight.
    cdef readonly size_t published
    cdef readonly size_t skipped
    cdef bint fragmenting
    cdef list held
    # Counters for Server.stats(): bytes through the socket (TLS records when
    # encrypted), and whole data messages with their payload bytes (received after
    # decompression, sent before compression; pre-encoded topic frames add no payload).
    cdef readonly unsigned long long bytes_in
    cdef readonly unsigned long long bytes_out
    cdef readonly unsigned long long messages_in
    cdef readonly unsigned long long messages_out
    cdef readonly unsigned long long payload_in
    cdef readonly unsigned long long payload_out
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

    # ---- calls into the owner: the only places that call `owner` ----------------------
    cdef int _owner_http_data(self, bytes data) except -1
    cdef int _owner_handler_error(self, object exc) except -1
    cdef int _owner_drain(self) except -1
    cdef int _owner_lost(self) except -1

    # ---- sending ----------------------------------------------------------------------
    cdef int _check_open(self) except -1
    cdef bint _admit(self) except -1
    cdef inline int _after_send(self) except -1
    cdef inline int _update_paused(self) except -1
    cpdef send(self, data)
    cpdef send_text(self, data, bint fin=*)
    cpdef send_binary(self, data, bint fin=*)
    cpdef send_continuation(self, data, bint fin)
    cdef size_t _buffered(self) except? 0
    cdef inline void _account(self, size_t n) noexcept
    cdef inline bint _over_cap(self) noexcept

    # ---- publishing (topics) ------------------------------------------------------------
    cdef int _admit_publish(self, int policy, size_t limit, size_t n) except -2
    cdef int _queue_frame(self, object frame) except -1
    cpdef int send_frame(self, bytes frame, int policy, size_t limit) except -2
    cpdef int publish_message(self, object data, int policy, size_t limit) except -2

    # ---- receiving (called by the loop) -------------------------------------------------
    cdef int _on_readable(self) except -1
    cdef int _read_direct(self) except -1
    cdef int _feed(self, const uint8_t *data, size_t n) except -1
    cdef int _dispatch(self, size_t count) except -1
    cdef int _after_core(self) except -1
    cdef int _eof(self) except -1
    cdef int _tls_received(self, size_t n) except -1

    # ---- writing ----------------------------------------------------------------------
    cdef int _write_raw(self, object data) except -1
    cdef int _flush(self) except -1
    cdef size_t _flush_vectored(self) except? 0

    # ---- timers and teardown (called by the loop) ---------------------------------------
    cdef int _check_deadlines(self, double now) except -1
    cdef int _teardown(self) except -1
