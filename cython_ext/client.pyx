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
# The records point into the core's buffers, which the next Core.feed or
# Core.feed_eof call reuses. So before each feed, and before anything that may end the
# connection, the records not yet read are converted into objects on `messages`;
# recv() always takes from `messages` first, so the order is kept.
#
# Threads: every method runs with the GIL held except the poll()/recv() system calls,
# and the core is never touched while the GIL is released, so a thread sending on
# the same connection (Core.send under the GIL) cannot race with a read.
#
# Plain TCP (the blocking client): recv() reads in C when a message is needed. It takes
# the connection's read lock without blocking, reads and feeds, and hands control
# events to the Python layer (`on_read`); `fill` (Python) only runs when another thread
# holds the lock, after the connection ended, or for TLS. A round trip is then two
# system calls (ClientSender's send and one recv) and no Python frame of wsfast's.

from cpython.buffer cimport PyBUF_READ, PyBUF_WRITE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno
from cpython.memoryview cimport PyMemoryView_FromMemory
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

import collections as _collections

from wsfast.exceptions import ConnectionClosedOK as _ConnectionClosedOK
from wsfast.exceptions import InvalidState as _InvalidState


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

    def __cinit__(self, Core core not None, sock, size_t size, fill, lock=None,
                  on_read=None, double busy_poll=0.0):
        if size == 0:
            raise ValueError("read buffer size must be positive")
        if not 0.0 <= busy_poll <= 1.0:
            raise ValueError(f"busy_poll must be 0 to 1 seconds, not {busy_poll}")
        self.buf = <uint8_t *>malloc(size)
        if self.buf == NULL:
            raise MemoryError()
        self.core = core
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
        self.fd = -1 if sock is None else sock.fileno()
        self.fast = sock is not None and lock is not None and on_read is not None
        self._lock_acquire = None if lock is None else lock.acquire
        self._lock_release = None if lock is None else lock.release
        self.on_read = on_read
        self.closed = False
        self._busy_poll = busy_poll

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
            if e.kind == EV_TEXT:
                self._append(_text(e.data, e.len, e.ascii))
            elif e.kind == EV_BINARY:
                self._append(_binary(e))
        return 0

    cdef object _batch(self, size_t count):
        """Start reading a new batch; return its control events, or None.

        Returns:
            None when the batch holds only data and the core expects nothing; else a
            list of ``(kind, payload)`` control events (possibly empty), after which
            the caller must write the core's output and check ``close_expected``.
        """
        cdef const wsf_event *ev = self.core.events()
        cdef size_t i
        cdef uint8_t kind
        cdef list controls = None
        cdef bint ending
        # Messages before a protocol error stay in the batch: fail the connection
        # now, so `ending` keeps them and recv() returns them before raising.
        self.core.end_batch()
        ending = self.core._close_expected()
        self.ev = ev
        self.pos = 0
        self.count = count
        for i in range(count):
            kind = ev[i].kind
            if is_data_event(kind):
                continue
            if controls is None:
                controls = []
            # Kinds go out as plain ints: an IntEnum member would cost a Python call.
            if kind == EV_CLOSE:
                ending = True
                controls.append((<int>EV_CLOSE, (ev[i].code, _text(ev[i].data, ev[i].len))))
            else:
                controls.append((<int>kind, _bytes(ev[i].data, ev[i].len)))
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
            return self._release_after(self._batch(self.core.feed_eof()))
        return self._batch(self.core.feed(&view[0], n))

    def feed_buffer(self, size_t n):
        """Feed the first ``n`` bytes of :meth:`get_buffer`'s memory (asyncio)."""
        if n > self.size:
            raise ValueError("more bytes than the buffer holds")
        self._keep_pending()
        return self._batch(self.core.feed(self.buf, n))

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
        self._keep_pending()
        return self._batch_read(self._receive(timeout))

    cdef ssize_t _receive(self, double timeout) except -1:
        """One read into the buffer; returns its length, 0 at end of file or reset.

        With ``busy_poll`` set, non-blocking reads are retried without the GIL for up
        to that long (bounded by ``timeout``) before sleeping in the kernel: the
        reply to a request usually comes within microseconds, and waking from a
        sleep costs more than that. Without it, a read with a timeout still tries
        once without waiting before it polls (data is often there already), and a
        read without a timeout goes straight to one blocking recv().
        """
        cdef int fd = self.fd
        cdef ssize_t n = -1
        cdef int err = EAGAIN
        cdef int rc
        cdef pollfd pfd
        cdef double now, until, remaining
        cdef double deadline = -1.0
        if fd < 0:
            return 0
        if timeout >= 0.0 or self._busy_poll > 0.0:
            now = _monotonic()
            until = now + self._busy_poll
            if timeout >= 0.0:
                deadline = now + timeout
                if until > deadline:
                    until = deadline
            with nogil:
                while True:
                    n = recv(fd, self.buf, self.size, MSG_DONTWAIT)
                    if n >= 0:
                        break
                    err = errno
                    if err != EAGAIN and err != EINTR:
                        break
                    if _monotonic() >= until:
                        break
            if n >= 0:
                return n
            if err == EINTR:
                PyErr_CheckSignals()
            elif err != EAGAIN:
                # Reset or aborted: the same as an end of file without a closing
                # handshake (the Python socket module would raise OSError here).
                return 0
            if timeout >= 0.0:
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
                return n
            if errno == EINTR:
                PyErr_CheckSignals()
                continue
            return 0  # reset or aborted, as above

    cdef int _fill(self, timeout) except -1:
        """Read until a message waits, in C on a plain socket (see the file comment).

        Raises:
            TimeoutError: if no message came within ``timeout`` seconds.
            ConnectionClosed: once the connection ended (raised by ``fill``).
        """
        cdef bint bounded = timeout is not None
        cdef double deadline = 0.0
        cdef double remaining = -1.0
        cdef object controls
        if not self.fast or self.closed or not self._lock_acquire(False):
            # TLS, the end of the connection or another reader: the Python path.
            self.fill(timeout)
            return 0
        try:
            if bounded:
                deadline = _monotonic() + <double>timeout
            while not self.closed and not self.pending():
                if bounded:
                    remaining = deadline - _monotonic()
                    if remaining < 0.0:
                        remaining = 0.0
                self._keep_pending()
                controls = self._batch_read(self._receive(remaining))
                if controls is not None or self.eof:
                    self.on_read(controls)
        finally:
            self._lock_release()
        if not self.pending():
            self.fill(timeout)  # the connection ended: raises the right exception
        return 0

    cdef object _batch_read(self, ssize_t n):
        """Feed the ``n`` bytes just read (0: end of file); see :meth:`_batch`."""
        if n == 0:
            self.eof = True
            return self._release_after(self._batch(self.core.feed_eof()))
        return self._batch(self.core.feed(self.buf, <size_t>n))

    cdef object _release_after(self, object controls):
        """The transport ended: free the core's native state, keeping the messages.

        Returns:
            ``controls``, the end-of-file batch's control events (objects already).
        """
        self._keep_pending()
        self.ev = NULL
        self.pos = 0
        self.count = 0
        self.core.release()
        return controls

    def mark_closed(self):
        """The socket is about to be closed: never read its descriptor again.

        The core's native state is freed too (the messages not read yet are kept).
        """
        self.closed = True
        self.fd = -1
        self._release_after(None)

    @property
    def busy_poll(self):
        """Seconds to spin on non-blocking reads before blocking (0 to 1; 0: off)."""
        return self._busy_poll

    @busy_poll.setter
    def busy_poll(self, double value):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"busy_poll must be 0 to 1 seconds, not {value}")
        self._busy_poll = value

    # ---- state --------------------------------------------------------------------

    cdef inline bint _has_record(self) noexcept:
        """Whether a data record waits at the cursor (skipping control records)."""
        while self.pos < self.count:
            if is_data_event(self.ev[self.pos].kind):
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
            if is_data_event(self.ev[i].kind):
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
            if e.kind == EV_TEXT:
                return _text(e.data, e.len, e.ascii)
            if e.kind == EV_BINARY:
                return _binary(e)
        return None

    cpdef object take(self):
        """The next message as str/bytes, or None if none is waiting (never reads)."""
        return self._next()

    def take_ready(self):
        """The next message as an awaitable already complete, or None if none waits.

        For asyncio's ``__anext__`` (see awaitable.pyx): the message goes back to
        the front of the queue if the awaitable is closed or dropped undelivered.
        """
        cdef object msg = self._next()
        if msg is None:
            return None
        return _ready(msg, self)

    cpdef object recv(self, timeout=None):
        """The next message, reading as needed (see ``ClientConnection.recv``)."""
        cdef object msg
        while True:
            msg = self._next()
            if msg is not None:
                return msg
            self._fill(timeout)

    def recv_many(self, timeout=None):
        """Every waiting message, reading until there is at least one."""
        cdef list out
        cdef object msg
        if not self.pending():
            self._fill(timeout)
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
            if e.kind == EV_BINARY and e.handle != NULL:
                # A large message already has its own bytes object: a view of it
                # keeps it alive, so this one outlives the next receive safely.
                return memoryview(<object>e.handle)
            if is_data_event(e.kind):
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
            self._fill(timeout)

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
            self._fill(timeout)
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

        A ``CHandler`` (the Cython handler API) gets each payload in place through its
        C-level ``on_data`` instead, until that returns nonzero.

        Returns:
            True if the handler stopped the loop, False if the connection closed
            normally.
        """
        cdef object msg
        if isinstance(handler, CHandler):
            return self._run_c(<CHandler>handler)
        while True:
            msg = self._next_view() if view else self._next()
            if msg is not None:
                if handler(msg) is False:
                    return True
                continue
            try:
                self._fill(None)
            except _ConnectionClosedOK:
                return False

    cdef bint _run_c(self, CHandler handler) except -1:
        """``run`` for a CHandler: ``on_data`` with each payload in place until it
        returns nonzero (True) or the connection closes normally (False)."""
        cdef const wsf_event *e
        cdef object msg
        cdef const char *data
        cdef Py_ssize_t n
        cdef int opcode
        while True:
            if self.messages:
                # Messages kept as objects by an earlier read come first, in order.
                msg = self._popleft()
                if isinstance(msg, str):
                    opcode = EV_TEXT
                    data = PyUnicode_AsUTF8AndSize(msg, &n)
                else:
                    opcode = EV_BINARY
                    data = PyBytes_AS_STRING(msg)
                    n = PyBytes_GET_SIZE(msg)
            elif self.pos < self.count:
                e = &self.ev[self.pos]
                self.pos += 1
                if not is_data_event(e.kind):
                    continue
                opcode = e.kind
                if e.handle != NULL:
                    data = PyBytes_AS_STRING(<object>e.handle)
                    n = PyBytes_GET_SIZE(<object>e.handle)
                else:
                    data = <const char *>e.data
                    n = <Py_ssize_t>e.len
            else:
                try:
                    self._fill(None)
                except _ConnectionClosedOK:
                    return False
                continue
            if handler.on_data(self.core, opcode, data, n):
                return True


cdef class MessageIterator:
    """``iter(connection)``: each ``next()`` is ``recv()``, until a normal closure.

    A C-level ``__next__`` instead of a generator: no Python frame per message.
    """

    def __cinit__(self, ClientReader reader not None):
        self.reader = reader

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self.reader.recv(None)
        except _ConnectionClosedOK:
            raise StopIteration from None


# Outputs up to this size are first sent with MSG_DONTWAIT while holding the GIL: a
# non-blocking send of a few KiB is a few microseconds of kernel work, cheaper than
# releasing and taking back the GIL (and, with other threads running, than waiting up
# to the switch interval to get it back). Larger outputs, or what a full socket buffer
# did not take, go through socket.sendall() with the GIL released.
cdef enum:
    SEND_NOWAIT_MAX = 65536


cdef class ClientSender:
    """Sends for one plain-TCP client connection (internal: use ``wsfast.connect``).

    Each send queues the frame in the core and writes the core's output straight from
    its buffer with one send() system call: no ``bytes`` object, no Python frame.

    Args:
        core: the connection's ``Core`` (side "client").
        sock: the connected (blocking) socket.
        lock: the connection's write lock (serialises whole frames between threads).
        closed_error: ``closed_error(force_error=...)`` returns the exception to raise
            once the connection is closing or broken.
    """

    def __cinit__(self, Core core not None, sock, lock, closed_error):
        self.core = core
        self.sock = sock
        self.fd = sock.fileno()
        self._lock_acquire = lock.acquire
        self._lock_release = lock.release
        self.closed_error = closed_error

    def mark_closed(self):
        """The socket is about to be closed: never write to its descriptor again."""
        self.fd = -1

    cdef int _flush(self, bint ignore_errors) except -1:
        """Write everything the core queued (write lock and GIL held)."""
        cdef size_t n = 0
        cdef const uint8_t *out
        cdef ssize_t sent
        cdef object rest
        cdef Core core = self.core
        if not core.chunks:
            out = core.output(&n)
            if n == 0:
                return 0
            if self.fd >= 0 and n <= SEND_NOWAIT_MAX:
                # The GIL stays held: no thread can close the socket, or make the core
                # reallocate its output buffer, during this call.
                sent = send(self.fd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                if <size_t>sent == n:
                    core.consume(n)
                    return 0
                if sent > 0:
                    core.consume(<size_t>sent)
                elif errno != EAGAIN and errno != EINTR:
                    core.consume(n)
                    if ignore_errors:
                        return 0
                    raise self.closed_error(force_error=True)
        # The rest leaves the core's buffer first: sendall() releases the GIL.
        rest = core._data_to_send()
        if not rest:
            return 0
        try:
            self.sock.sendall(rest)
        except OSError:
            # The reader sees the broken transport too and finishes the connection.
            if not ignore_errors:
                raise self.closed_error(force_error=True) from None
        return 0

    def flush(self, bint ignore_errors=False):
        """Write everything the core queued; the caller holds the write lock.

        Raises:
            ConnectionClosedError: if the socket broke, unless ``ignore_errors``.
        """
        self._flush(ignore_errors)

    cdef int _send(self, _SendAs kind, object data) except -1:
        self._lock_acquire()
        try:
            try:
                if kind == _SEND_AUTO:
                    self.core.send(data)
                elif kind == _SEND_TEXT:
                    self.core.send_text(data)
                else:
                    self.core.send_binary(data)
            except _InvalidState:
                raise self.closed_error() from None
            self._flush(False)
        finally:
            self._lock_release()
        return 0

    def send(self, data):
        """Send a message: ``str`` as text, bytes-like as binary (``ClientConnection.send``)."""
        self._send(_SEND_AUTO, data)

    def send_text(self, data):
        """Send a text message (``ClientConnection.send_text``)."""
        self._send(_SEND_TEXT, data)

    def send_binary(self, data):
        """Send a binary message (``ClientConnection.send_binary``)."""
        self._send(_SEND_BINARY, data)
