# SPDX-License-Identifier: MIT
# ClientReader: the receive path of the blocking and asyncio clients.
#
# One read fills a buffer owned by this object (recv() with the GIL released, or
# asyncio's BufferedProtocol writing into it); the whole buffer goes to the Rust core
# in one call, which returns an array of event records. Data events are not turned
# into Python objects there: a cursor walks the array, and recv() builds each str or
# bytes straight from its record when asked, or hands out a memoryview of it
# (recv_view, borrowed memory). Control events (ping, pong, close) are returned to
# the Python layer as soon as a read produces them, because they need I/O.
#
# The records point into the core's buffers, which the next receive_data or
# receive_eof call reuses. So before each feed, and before anything that may end the
# connection, the records not yet read are converted into objects on `messages`;
# recv() always takes from `messages` first, so the order is kept.
#
# Threads: every method runs with the GIL held except the poll()/recv() system calls,
# and the core is never touched while the GIL is released, so a thread sending on
# the same connection (Core.send under the GIL) cannot race with a read.

from cpython.buffer cimport PyBUF_READ, PyBUF_WRITE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.memoryview cimport PyMemoryView_FromMemory

import collections as _collections

from wsfast.exceptions import ConnectionClosedOK as _ConnectionClosedOK


cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents

    enum:
        POLLIN

    int poll(pollfd *fds, unsigned long nfds, int timeout)


cdef class ClientReader:
    """Receives for one client connection (internal: use ``wsfast.connect``).

    Args:
        core: the connection's ``Core`` (side "client").
        sock: the connected socket (``fileno()`` is read before every read), or None
            when the bytes arrive another way (asyncio, TLS) through :meth:`feed`.
        size: bytes per read.
        fill: ``fill(timeout)`` is called when no message is waiting; it must read
            until one is (calling :meth:`read` or :meth:`feed`) or raise.
    """

    cdef Core core
    cdef wsf_protocol *p
    cdef uint8_t *buf
    cdef size_t size
    # Messages already turned into objects, oldest first; always older than the
    # records at the cursor.
    cdef readonly object messages
    cdef object _popleft
    cdef object _append
    # The last batch of event records and the cursor in it.
    cdef const wsf_event *ev
    cdef size_t pos
    cdef size_t count
    cdef object sock
    cdef object fill
    cdef object _buffer_view
    #: True once the transport reached end of file.
    cdef readonly bint eof

    def __cinit__(self, Core core not None, sock, size_t size, fill):
        if size == 0:
            raise ValueError("read buffer size must be positive")
        self.buf = <uint8_t *>malloc(size)
        if self.buf == NULL:
            raise MemoryError()
        self.core = core
        self.p = core.p
        self.size = size
        self.messages = _collections.deque()
        self._popleft = self.messages.popleft
        self._append = self.messages.append
        self.ev = NULL
        self.pos = 0
        self.count = 0
        self.sock = sock
        self.fill = fill
        self._buffer_view = None
        self.eof = False

    def __dealloc__(self):
        free(self.buf)
        self.buf = NULL

    # ---- feeding ------------------------------------------------------------------

    cdef int _keep_pending(self) except -1:
        """Turn the records not read yet into objects, before the core reuses them."""
        cdef const wsf_event *e
        while self.pos < self.count:
            e = &self.ev[self.pos]
            self.pos += 1
            if e.kind == 1:
                self._append(_text(e.data, e.len))
            elif e.kind == 2:
                self._append(_bytes(e.data, e.len))
        return 0

    cdef object _batch(self, size_t count):
        """Start reading a new batch; return its control events, or None.

        Returns:
            None when the batch holds only data and the core expects nothing; else a
            list of ``(kind, payload)`` control events (possibly empty), after which
            the caller must write the core's output and check ``close_expected``.
        """
        cdef const wsf_event *ev = RS.events(self.p)
        cdef size_t i
        cdef uint8_t kind
        cdef list controls = None
        cdef bint ending = RS.close_expected(self.p) != 0
        self.ev = ev
        self.pos = 0
        self.count = count
        for i in range(count):
            kind = ev[i].kind
            if kind <= 2:
                continue
            if controls is None:
                controls = []
            if kind == 8:
                ending = True
                controls.append((8, (ev[i].code, _text(ev[i].data, ev[i].len))))
            else:
                controls.append((kind, _bytes(ev[i].data, ev[i].len)))
        if ending:
            # The connection is ending: the caller will feed end of file to the core,
            # so keep the messages of this batch now.
            self._keep_pending()
            if controls is None:
                controls = []
        return controls

    def feed(self, data):
        """Feed bytes received by other means; empty ``data`` means end of file.

        Returns:
            The batch's control events, or None (see :meth:`read`).
        """
        cdef const uint8_t[::1] view = data
        cdef size_t n = view.shape[0]
        self._keep_pending()
        if n == 0:
            self.eof = True
            return self._batch(RS.receive_eof(self.p))
        return self._batch(RS.receive_data(self.p, &view[0], n))

    def feed_buffer(self, size_t n):
        """Feed the first ``n`` bytes of :meth:`get_buffer`'s memory (asyncio)."""
        if n > self.size:
            raise ValueError("more bytes than the buffer holds")
        self._keep_pending()
        return self._batch(RS.receive_data(self.p, self.buf, n))

    def get_buffer(self):
        """A writable memoryview of the read buffer, for ``BufferedProtocol.get_buffer``."""
        if self._buffer_view is None:
            self._buffer_view = PyMemoryView_FromMemory(
                <char *>self.buf, <Py_ssize_t>self.size, PyBUF_WRITE)
        return self._buffer_view

    def read(self, double timeout=-1.0):
        """Read once from the socket and feed the core.

        Args:
            timeout: seconds to wait for data at most; negative waits forever.

        Returns:
            None when the read produced only messages (or nothing); else the list of
            control events ``(kind, payload)``: ``(9, bytes)`` ping, ``(10, bytes)``
            pong, ``(8, (code, reason))`` close (1006 at end of file). The caller
            must then write the core's output and end the connection if the core
            expects it.

        Raises:
            TimeoutError: if no data came within ``timeout``.
        """
        cdef int fd = self.sock.fileno()
        cdef ssize_t n
        cdef int rc
        cdef pollfd pfd
        cdef double deadline = _monotonic() + timeout if timeout >= 0 else -1.0
        cdef double remaining
        self._keep_pending()
        if fd < 0:
            n = 0
        else:
            if timeout >= 0:
                pfd.fd = fd
                pfd.events = POLLIN
                while True:
                    remaining = deadline - _monotonic()
                    if remaining < 0:
                        remaining = 0
                    with nogil:
                        rc = poll(&pfd, 1, <int>(remaining * 1000.0 + 0.999))
                    if rc > 0:
                        break
                    if rc == 0:
                        raise TimeoutError("timed out waiting for a message")
                    if errno != EINTR:
                        PyErr_SetFromErrno(OSError)
                    PyErr_CheckSignals()
            while True:
                with nogil:
                    n = recv(fd, self.buf, self.size, 0)
                if n >= 0:
                    break
                if errno == EINTR:
                    PyErr_CheckSignals()
                    continue
                # Reset or aborted: the same as an end of file without a closing
                # handshake (the Python socket module would raise OSError here).
                n = 0
                break
        if n == 0:
            self.eof = True
            return self._batch(RS.receive_eof(self.p))
        return self._batch(RS.receive_data(self.p, self.buf, <size_t>n))

    # ---- state --------------------------------------------------------------------

    cdef inline bint _has_record(self) noexcept:
        """Whether a data record waits at the cursor (skipping control records)."""
        while self.pos < self.count:
            if self.ev[self.pos].kind <= 2:
                return True
            self.pos += 1
        return False

    cpdef bint pending(self):
        """Whether a message is waiting."""
        return len(self.messages) != 0 or self._has_record()

    def pending_count(self):
        """How many messages are waiting."""
        cdef size_t i
        cdef Py_ssize_t n = len(self.messages)
        for i in range(self.pos, self.count):
            if self.ev[i].kind <= 2:
                n += 1
        return n

    def keep_pending(self):
        """Turn the waiting records into objects (before the core is fed elsewhere)."""
        self._keep_pending()

    # ---- receiving ----------------------------------------------------------------

    cdef inline object _next(self):
        """The next message as str/bytes, or None if none is waiting."""
        cdef const wsf_event *e
        if self.messages:
            return self._popleft()
        while self.pos < self.count:
            e = &self.ev[self.pos]
            self.pos += 1
            if e.kind == 1:
                return _text(e.data, e.len)
            if e.kind == 2:
                return _bytes(e.data, e.len)
        return None

    cpdef object take(self):
        """The next message as str/bytes, or None if none is waiting (never reads)."""
        return self._next()

    cpdef object recv(self, timeout=None):
        """The next message, reading as needed (see ``ClientConnection.recv``)."""
        cdef object msg
        while True:
            msg = self._next()
            if msg is not None:
                return msg
            self.fill(timeout)

    def recv_many(self, timeout=None):
        """Every waiting message, reading until there is at least one."""
        cdef list out
        cdef object msg
        if not self.pending():
            self.fill(timeout)
        out = list(self.messages)
        self.messages.clear()
        while True:
            msg = self._next()
            if msg is None:
                return out
            out.append(msg)

    cdef inline object _next_view(self):
        """The next message as a memoryview (borrowed when it comes from a record)."""
        cdef const wsf_event *e
        cdef object msg
        if self.messages:
            msg = self._popleft()
            return memoryview(msg.encode("utf-8") if isinstance(msg, str) else msg)
        while self.pos < self.count:
            e = &self.ev[self.pos]
            self.pos += 1
            if e.kind <= 2:
                return PyMemoryView_FromMemory(<char *>e.data, <Py_ssize_t>e.len, PyBUF_READ)
        return None

    def recv_view(self, timeout=None):
        """The next message as a read-only memoryview of borrowed memory.

        DANGER: the view points into the connection's receive buffers. It is valid
        only until the next receive call on this connection; see
        ``ClientConnection.recv_view``.
        """
        cdef object msg
        while True:
            msg = self._next_view()
            if msg is not None:
                return msg
            self.fill(timeout)

    def recv_into(self, buffer, timeout=None):
        """Copy the next message into ``buffer``; return its length in bytes.

        Raises:
            ValueError: if ``buffer`` is too small; the message stays queued.
        """
        cdef uint8_t[::1] out = buffer
        cdef const wsf_event *e
        cdef object msg
        cdef size_t n
        while not self.pending():
            self.fill(timeout)
        if self.messages:
            msg = self.messages[0]
            if isinstance(msg, str):
                msg = (<str>msg).encode("utf-8")
            n = PyBytes_GET_SIZE(msg)
            if n > <size_t>out.shape[0]:
                raise ValueError(f"message of {n} bytes does not fit in {out.shape[0]} bytes")
            if n:
                memcpy(&out[0], PyBytes_AS_STRING(msg), n)
            self._popleft()
            return n
        e = &self.ev[self.pos]
        n = e.len
        if n > <size_t>out.shape[0]:
            raise ValueError(f"message of {n} bytes does not fit in {out.shape[0]} bytes")
        if n:
            memcpy(&out[0], e.data, n)
        self.pos += 1
        return n

    def run(self, handler, bint view=False):
        """Call ``handler(message)`` for every message until it returns False.

        Returns:
            True if the handler stopped the loop, False if the connection closed
            normally.
        """
        cdef object msg
        while True:
            msg = self._next_view() if view else self._next()
            if msg is not None:
                if handler(msg) is False:
                    return True
                continue
            try:
                self.fill(None)
            except _ConnectionClosedOK:
                return False
