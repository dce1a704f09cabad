# SPDX-License-Identifier: MIT
# Declarations of client.pyx: the receive and send paths of the clients.

# What ClientSender._send queues.
cdef enum _SendAs:
    _SEND_AUTO = 0  # str as text, bytes-like as binary
    _SEND_TEXT = 1
    _SEND_BINARY = 2


cdef class ClientReader:
    cdef Core core
    cdef uint8_t *buf
    cdef size_t size
    # Messages already turned into objects, oldest first; always older than the
    # records at the cursor.
    cdef readonly object messages
    cdef object _popleft
    cdef object _append
    # The last batch of event records (borrowed from the core) and the cursor in it.
    cdef const wsf_event *ev
    cdef size_t pos
    cdef size_t count
    cdef object sock
    cdef object fill
    cdef object _buffer_view
    #: True once the transport reached end of file.
    cdef readonly bint eof
    # The socket's descriptor while it is open, else -1 (see mark_closed).
    cdef int fd
    # The fast path (plain TCP): the read lock's methods and the control-event handler.
    cdef bint fast
    cdef object _lock_acquire
    cdef object _lock_release
    cdef object on_read
    #: True once the connection's socket is closed (set by :meth:`mark_closed`).
    cdef readonly bint closed
    # Seconds to spin on non-blocking reads before sleeping in the kernel; 0 never.
    cdef double _busy_poll

    cdef int _keep_pending(self) except -1
    cdef object _batch(self, size_t count)
    cdef ssize_t _receive(self, double timeout) except -1
    cdef int _fill(self, timeout) except -1
    cdef object _batch_read(self, ssize_t n)
    cdef object _release_after(self, object controls)
    cdef inline bint _has_record(self) noexcept
    cpdef bint pending(self)
    cdef inline object _next(self)
    cpdef object take(self)
    cpdef object recv(self, timeout=*)
    cdef inline object _next_view(self)
    cdef bint _run_c(self, CHandler handler) except -1


cdef class MessageIterator:
    cdef ClientReader reader


cdef class ClientSender:
    cdef Core core
    cdef object sock
    cdef int fd
    cdef object _lock_acquire
    cdef object _lock_release
    cdef object closed_error

    cdef int _flush(self, bint ignore_errors) except -1
    cdef int _send(self, _SendAs kind, object data) except -1
