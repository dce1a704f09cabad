# SPDX-License-Identifier: MIT
# Declarations of core.pyx: Core, the only caller of the Rust C API (the capsule).
#
# Every other file reaches the protocol through Core's cdef methods below. The ones
# on the hot path are `inline` (Cython calls them directly, not through the vtable,
# and the C compiler inlines them, so each is one capsule call), `noexcept nogil`
# where the capsule call cannot fail. A C-level method whose natural name is taken by
# a Python-level one (`state`, `close_expected`, `release_memory`, `data_to_send`)
# carries a leading underscore.

from cpython.bytes cimport PyBytes_FromStringAndSize


# ---- event payloads as Python objects -----------------------------------------------

cdef inline object _bytes(const uint8_t *data, size_t n):
    return PyBytes_FromStringAndSize(<const char *>data, n)


cdef inline object _binary(const wsf_event *e):
    # A message received into a bytes object is handed out as is (a new reference).
    if e.handle != NULL:
        return <object>e.handle
    return PyBytes_FromStringAndSize(<const char *>e.data, e.len)


cdef class Core:
    cdef wsf_protocol *p
    cdef readonly bint is_client
    # Zero-copy output chunks waiting in front of Rust's output buffer.
    cdef public list chunks
    # The handlers dispatch_events calls, as f(owner, ...).
    cdef object owner
    cdef object on_message
    cdef object on_ping
    cdef object on_pong
    cdef object on_close
    # A CHandler bound by set_handlers: data events go to its C method, no objects.
    cdef object chandler
    # Next event of the current batch to dispatch.
    cdef size_t cursor
    # dispatch_events is running (a handler may close the connection meanwhile).
    cdef bint dispatching
    # release() came during dispatch: done when dispatch returns.
    cdef bint release_pending
    #: True once release() freed the native state (the connection is over).
    cdef readonly bint released
    # The str a handler is being given now (borrowed: dispatch_events holds it) and
    # the validated UTF-8 it was made from, so that send() of that very str frames
    # those bytes (no encode); NULL outside that call or once the batch is gone.
    cdef void *text_obj
    cdef const uint8_t *text_data
    cdef size_t text_len
    # Payload bytes of the last message send() queued (the transport's counter).
    cdef size_t sent_size

    # ---- receiving: each feed starts a new batch of events --------------------------
    cdef inline size_t feed(self, const uint8_t *data, size_t n) noexcept nogil
    cdef inline size_t feed_eof(self) noexcept nogil
    cdef inline uint8_t *direct_target(self, size_t *n) noexcept nogil
    cdef inline size_t feed_direct(self, size_t n) noexcept nogil
    cdef inline const wsf_event *events(self) noexcept nogil
    cdef int dispatch_events(self, size_t count) except -1
    cdef inline void end_batch(self) noexcept nogil
    cdef list _events_list(self, size_t count)

    # ---- sending --------------------------------------------------------------------
    cdef int _check(self, int32_t rc) except -1
    cdef Py_ssize_t _send_buffer(self, Opcode opcode, object data, bint fin) except -1
    cdef int _send_control(self, Opcode opcode, object data) except -1
    cpdef send(self, data)
    cpdef send_text(self, data, bint fin=*)
    cpdef send_binary(self, data, bint fin=*)
    cpdef send_continuation(self, data, bint fin)
    cpdef send_ping(self, data=*)
    cpdef send_pong(self, data=*)
    cpdef send_close(self, code=*, str reason=*)
    cpdef fail(self, int code, str reason=*)
    cdef int send_bytes(self, int opcode, const char *data, Py_ssize_t n) except -1

    # ---- output ---------------------------------------------------------------------
    cdef inline const uint8_t *output(self, size_t *n) noexcept nogil
    cdef inline void consume(self, size_t n) noexcept nogil
    cdef bytes _take_output(self)
    cdef bytes _data_to_send(self)
    cdef inline void _release_memory(self, size_t keep) noexcept nogil
    cdef inline bint _release_idle_compressor(self) noexcept nogil

    # ---- teardown -------------------------------------------------------------------
    cpdef release(self)

    # ---- state ----------------------------------------------------------------------
    cdef inline ProtocolState _state(self) noexcept nogil
    cdef inline bint _close_expected(self) noexcept nogil
    cdef inline bint _close_ok(self) noexcept nogil


cdef class CHandler:
    # The Cython handler API (public header: wsfast/capi.pxd): the core calls this
    # with each message's bytes in place, and the handler answers with send_bytes.
    cdef int on_data(self, Core conn, int opcode, const char *data, Py_ssize_t n) except -1
