# SPDX-License-Identifier: MIT
# Transport: one accepted server connection. Its socket, reads into the loop's buffer,
# the write queue and flushes, TLS, flow control and the connection's timers.
#
# Per read: one recv() into the loop's shared buffer, handed by pointer to the Rust
# core (Core.feed) and dispatched to the handler (Core.dispatch_events). Each flush
# is one send() or, when several buffers are waiting, one sendmsg() over all of them
# (a writev that can pass MSG_NOSIGNAL). EPOLLOUT is registered only while the
# connection has output the kernel did not take.
#
# TLS connections take a separate, slower path (ssl.MemoryBIO + SSLObject) so the
# plaintext path stays a straight line from recv() to the core.
#
# The contract with the owner (`owner`) is in Transport's docstring.

from cpython.buffer cimport (
    PyBUF_FORMAT,
    PyBUF_ND,
    PyBUF_SIMPLE,
    PyBUF_STRIDES,
    PyBUF_WRITABLE,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from cpython.bytes cimport PyBytes_AS_STRING
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.string cimport memcpy, memset

import ssl as _ssl

from wsfast.exceptions import ConnectionClosedError as _ConnectionClosedError
from wsfast.exceptions import ConnectionClosedOK as _ConnectionClosedOK
from wsfast.exceptions import InvalidState as _InvalidState

cdef enum:
    MAX_IOV = 64
    # Bounds the sendmsg() retries of one flush when more than MAX_IOV buffers wait.
    MAX_FLUSH_ROUNDS = 16
    # Reads at least this large give their message buffer back once handled.
    RELEASE_AFTER_READ = 65536
    # When at least this much of a large binary frame is still to come, recv() it
    # straight into the message's bytes object (see Protocol::direct_target).
    DIRECT_MIN = 4096

# What publish_message/send_frame do with a message for a paused subscriber (the
# values of wsfast.topics.SlowSubscriberPolicy).
cdef enum:
    PUBLISH_SKIP = 0  # skip it, counted in Transport.skipped
    PUBLISH_BUFFER = 1  # queue it while the output stays under the limit, else close 1008
    PUBLISH_CLOSE = 2  # fail the connection with 1008
    # Results of send_frame/publish_message.
    PUBLISHED = 1
    PUBLISH_SKIPPED = 0
    PUBLISH_CLOSED = -1
    # Frames smaller than this are appended to a pending batch (one memcpy) instead of
    # taking a chunk of their own, so a burst of small frames stays a few chunks.
    COALESCE_MAX = 16384
    # Storage of freed batches kept for the next ones (see _pool_data): at most this
    # many buffers, each at most BATCH_KEEP_MAX bytes, BATCH_POOL_BYTES in all.
    BATCH_POOL_MAX = 8192
    BATCH_KEEP_MAX = 2 * COALESCE_MAX
    BATCH_POOL_BYTES = 8 << 20
    # Frames a batch references without a heap array of its own.
    BATCH_INLINE_REFS = 16


cdef const char *_FORMAT_B = "B"

cdef extern from "Python.h":
    void _incref "Py_INCREF" (PyObject *o)
    void _decref "Py_DECREF" (PyObject *o)
    Py_ssize_t PyBytes_GET_SIZE_borrowed "PyBytes_GET_SIZE" (PyObject *o)
    char *PyBytes_AS_STRING_borrowed "PyBytes_AS_STRING" (PyObject *o)


# Freed batches' storage, reused last-in first-out. A batch takes its storage only
# when it is flushed (see _FrameBatch), so in a fan-out round the storage the last
# subscriber's batch gave back, still in cache, holds the next one's frames. Without
# the pool every round also malloc'd a batch per subscriber and freed it after the
# flush; glibc trimmed the freed top of the heap (brk) and the next round page-
# faulted it all back: measured 490 minor faults and 16 brk() per round of
# 16 x 64 B to 1,000 subscribers. Only touched with the GIL held.
cdef char *_pool_data[BATCH_POOL_MAX]
cdef Py_ssize_t _pool_capacity[BATCH_POOL_MAX]
cdef Py_ssize_t _pool_count = 0
cdef Py_ssize_t _pool_bytes = 0


cdef class _FrameBatch:
    """Small published frames coalesced at the end of a core's chunk list.

    Read-only to everyone else (the buffer protocol: sendmsg, joins, views). The
    frames are shared ``bytes`` (the same objects on every subscriber) and are only
    referenced until the batch is first exported; then they are copied, in order,
    into storage from the pool. A fan-out round so writes each subscriber's frames
    into memory that is still in cache right before the kernel reads it (as
    uWebSockets' cork buffer), instead of a cold buffer per subscriber filled
    during the round (measured: the kernel's copy from user memory was 10x
    socketify's). A type of its own, so only batches this file created are ever
    extended (never an application's buffer handed to send_binary).
    """

    cdef char *data
    cdef Py_ssize_t filled  # bytes copied into data
    cdef Py_ssize_t size  # filled + the bytes of the frames not copied yet
    cdef Py_ssize_t capacity
    # Frames (bytes) not copied yet, in order, as owned references: a C array rather
    # than a list, so a batch is not tracked by the garbage collector (a list per
    # subscriber per round cost more in GC passes than the copies it saved).
    cdef PyObject **refs
    cdef Py_ssize_t nrefs
    cdef Py_ssize_t refs_capacity
    cdef PyObject *inline_refs[BATCH_INLINE_REFS]
    cdef Py_ssize_t exports
    cdef Py_ssize_t itemsize

    def __cinit__(self):
        self.itemsize = 1
        self.refs = self.inline_refs
        self.refs_capacity = BATCH_INLINE_REFS

    def __dealloc__(self):
        global _pool_count, _pool_bytes
        cdef Py_ssize_t i
        for i in range(self.nrefs):
            _decref(self.refs[i])
        if self.refs != self.inline_refs:
            PyMem_Free(self.refs)
        if self.data == NULL:
            return
        if (_pool_count < BATCH_POOL_MAX and self.capacity <= BATCH_KEEP_MAX
                and _pool_bytes + self.capacity <= BATCH_POOL_BYTES):
            _pool_data[_pool_count] = self.data
            _pool_capacity[_pool_count] = self.capacity
            _pool_count += 1
            _pool_bytes += self.capacity
        else:
            PyMem_Free(self.data)

    cdef inline bint extendable(self) noexcept:
        # A view of the batch (a flush in progress, a partial write's remainder)
        # must never see it change: then the next frame takes a new chunk.
        return self.exports == 0

    cdef int add(self, bytes frame) except -1:
        """Queue ``frame`` after the batch's content (a reference, no copy yet)."""
        cdef PyObject **grown
        cdef Py_ssize_t capacity
        if self.nrefs == self.refs_capacity:
            capacity = 2 * self.refs_capacity
            if self.refs == self.inline_refs:
                grown = <PyObject **>PyMem_Malloc(<size_t>capacity * sizeof(PyObject *))
                if grown != NULL:
                    memcpy(grown, self.refs, <size_t>self.nrefs * sizeof(PyObject *))
            else:
                grown = <PyObject **>PyMem_Realloc(
                    self.refs, <size_t>capacity * sizeof(PyObject *))
            if grown == NULL:
                raise MemoryError()
            self.refs = grown
            self.refs_capacity = capacity
        _incref(<PyObject *>frame)
        self.refs[self.nrefs] = <PyObject *>frame
        self.nrefs += 1
        self.size += PyBytes_GET_SIZE(frame)
        return 0

    cdef int _fill(self) except -1:
        """Copy the queued frames into the storage, taking it from the pool first."""
        cdef Py_ssize_t capacity, n, i
        cdef char *grown
        cdef PyObject *frame
        global _pool_count, _pool_bytes
        if self.nrefs == 0:
            return 0
        if self.data == NULL and _pool_count:
            _pool_count -= 1
            self.data = _pool_data[_pool_count]
            self.capacity = _pool_capacity[_pool_count]
            _pool_bytes -= self.capacity
        if self.size > self.capacity:
            capacity = max(self.size, 2 * self.capacity, 1024)
            grown = <char *>PyMem_Realloc(self.data, <size_t>capacity)
            if grown == NULL:
                raise MemoryError()
            self.data = grown
            self.capacity = capacity
        for i in range(self.nrefs):
            frame = self.refs[i]
            n = PyBytes_GET_SIZE_borrowed(frame)
            memcpy(self.data + self.filled, PyBytes_AS_STRING_borrowed(frame), <size_t>n)
            self.filled += n
            _decref(frame)
        self.nrefs = 0
        return 0

    def __len__(self):
        return self.size

    def __getbuffer__(self, Py_buffer *view, int flags):
        if flags & PyBUF_WRITABLE:
            raise BufferError("frame batch is read-only")
        self._fill()
        view.buf = self.data
        view.obj = self
        view.len = self.size
        view.readonly = 1
        view.itemsize = 1
        view.format = <char *>_FORMAT_B if flags & PyBUF_FORMAT else NULL
        view.ndim = 1
        view.shape = &self.size if flags & PyBUF_ND else NULL
        view.strides = &self.itemsize if flags & PyBUF_STRIDES else NULL
        view.suboffsets = NULL
        view.internal = NULL
        self.exports += 1

    def __releasebuffer__(self, Py_buffer *view):
        self.exports -= 1


# Close codes the transport sends or reports on its own (RFC 6455 section 7.4.1).
cdef enum:
    CLOSE_NORMAL_CLOSURE = 1000
    CLOSE_GOING_AWAY = 1001
    CLOSE_ABNORMAL_CLOSURE = 1006
    CLOSE_POLICY_VIOLATION = 1008
    CLOSE_INTERNAL_ERROR = 1011


cdef size_t _buffer_size(object obj) except? 0:
    cdef Py_buffer view
    cdef size_t n
    PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE)
    n = <size_t>view.len
    PyBuffer_Release(&view)
    return n


cdef inline size_t _payload_size(object data) except? 0:
    # A message's payload in bytes, for the stats counters. For str, the UTF-8 form
    # that PyUnicode_AsUTF8AndSize caches in the object (core.send made it already;
    # ASCII strings are their own UTF-8: no copy).
    cdef Py_ssize_t n = 0
    if type(data) is str:
        PyUnicode_AsUTF8AndSize(data, &n)
        return <size_t>n
    if type(data) is bytes:
        return <size_t>PyBytes_GET_SIZE(data)
    return _buffer_size(data)


cdef extern from "Python.h":
    PyObject *PyList_GET_ITEM_borrowed "PyList_GET_ITEM" (list items, Py_ssize_t i)
    void *Py_TYPE_borrowed "Py_TYPE" (PyObject *o)


cdef size_t _list_size(list items) except? 0:
    # Once per published frame (the water marks): borrowed items, no reference
    # counting, and the sizes of bytes and batches read directly.
    cdef size_t total = 0
    cdef Py_ssize_t i
    cdef PyObject *obj
    cdef void *kind
    for i in range(len(items)):
        obj = PyList_GET_ITEM_borrowed(items, i)
        kind = Py_TYPE_borrowed(obj)
        if kind == <void *>bytes:
            total += <size_t>PyBytes_GET_SIZE_borrowed(obj)
        elif kind == <void *>_FrameBatch:
            total += <size_t>(<_FrameBatch>obj).size
        else:
            total += _buffer_size(<object>obj)
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


cdef class Transport(_Pollable):
    """One accepted socket: HTTP head first, then WebSocket frames through a Core.

    The loop creates a transport for each accepted connection and passes it to the
    listener's ``factory(transport)``, which returns the transport's owner; the loop
    stores it as ``owner``. Everything runs on the loop's thread.

    What the transport calls on ``owner`` (each from one method, ``_owner_*``):

    - ``owner.http_data_received(data: bytes) -> None``: bytes received before the
      upgrade (the request head, in pieces as they arrive). The owner answers with
      :meth:`write` and then :meth:`upgrade` or :meth:`close_after_write`.
    - ``owner.handler_failed(exc: Exception) -> None``: a handler called by the
      core's dispatch raised; the rest of that read's events are dropped. The owner
      usually fails the connection (1011). Not called for a ``ConnectionClosed``
      raised by a reply to a message that came in the same read as the peer's close
      frame: dispatch just goes on.
    - ``owner.resume_writing() -> None``: the output fell to ``low_water`` after being
      over ``high_water`` (``writable`` is True again).
    - ``owner.connection_lost() -> None``: the socket is closed; called once, last, also
      when the loop closes. Exceptions from it are logged, not raised.

    Messages never pass through ``owner``: after :meth:`upgrade` received bytes go
    to the :class:`Core`, which calls the handlers bound with ``Core.set_handlers``.

    What the transport offers (loop thread only):

    - Handshake: :meth:`start_tls`, :attr:`tls_object`, :attr:`tls_active`,
      :meth:`write` (raw bytes, before any WebSocket output), :meth:`upgrade`,
      :meth:`feed` (bytes that came with the request head), :meth:`close_after_write`.
    - Messages: :meth:`send`, :meth:`send_text`, :meth:`send_binary`,
      :meth:`send_continuation`, :meth:`ping` (``InvalidState`` before
      :meth:`upgrade`, ``ConnectionClosed`` once the connection is not open),
      :meth:`close`, :meth:`fail`, :meth:`abort`.
    - Flow control: ``high_water`` / ``low_water`` (bytes), ``policy`` (a
      ``SlowConsumerPolicy``: what a send does while paused), ``paused``,
      :attr:`writable`, :attr:`buffered_amount`, ``dropped``.
    - Timers, in seconds, 0 meaning off: ``handshake_timeout``, ``ping_interval``,
      ``ping_timeout``, ``idle_timeout``, ``close_timeout``; the loop's sweep checks
      them. ``last_message``, ``next_ping``, ``pong_deadline`` and
      ``close_deadline`` are loop-clock times.
    - ``loop``, ``core`` (None before :meth:`upgrade`), ``remote_address``,
      ``closed``, ``fd``.
    """

    def __cinit__(self):
        self.kind = KIND_TRANSPORT
        self.fd = -1
        self.mode = MODE_HTTP
        self.events = EPOLLIN
        self.wbuf = []
        self.high_water = 4 << 20
        self.low_water = 1 << 20
        self.policy = POLICY_CLOSE
        self.held = []

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
        if self.closed or self.core._state() != STATE_OPEN:
            received = self.core.close_received or (CLOSE_ABNORMAL_CLOSURE, "")
            sent = self.core.close_sent
            cls = _ConnectionClosedOK if self.core._close_ok() else _ConnectionClosedError
            raise cls(received[0], received[1], sent[0] if sent else None,
                      sent[1] if sent else None)
        return 0

    cdef bint _admit(self) except -1:
        # Flow control: while the connection is over its high-water mark (paused),
        # or the server over its max_buffered with output of this connection still
        # queued, the slow-consumer policy decides what happens to new messages.
        if not self.paused and not self._over_cap():
            if self.owed:
                self.owed -= 1
            return True
        # The server read this batch before it was paused: one reply per message of
        # the batch is its own read-ahead, not the peer's slowness (an echo of a
        # pipelined batch crossed the mark half-way and failed a client that reads).
        # Bounded by one read's worth of output over the mark; the server-wide cap
        # still applies.
        if (self.owed and not self._over_cap()
                and self._buffered() <= self.high_water + RECV_BUFFER_SIZE):
            self.owed -= 1
            return True
        if self.policy == POLICY_DROP:
            self.dropped += 1
            return False
        self.core.fail(CLOSE_POLICY_VIOLATION, "slow consumer")
        self._after_core()
        return False

    cdef inline int _after_send(self) except -1:
        self.loop._schedule(self)
        self._update_paused()
        return 0

    cdef inline int _update_paused(self) except -1:
        """Pause sends above the high-water mark; keep the server-wide total current."""
        cdef size_t n
        if self.loop.max_buffered:
            n = self._buffered()
            self._account(n)
            if not self.paused and n > self.high_water:
                self.paused = True
        elif not self.paused and self._buffered() > self.high_water:
            self.paused = True
        return 0

    cdef inline void _account(self, size_t n) noexcept:
        # Keep the server-wide total (Loop.buffered) in step with this connection's
        # output, at each point where it changes: sends, flushes, teardown.
        self.loop.buffered = self.loop.buffered - self.counted + n
        self.counted = n

    cdef inline bint _over_cap(self) noexcept:
        # Over the server's max_buffered, a connection whose earlier output is still
        # queued counts as slow; one that keeps up (nothing queued) is still served,
        # so the total stays within the cap plus one message per connection.
        return (self.loop.max_buffered != 0 and self.counted != 0
                and self.loop.buffered > self.loop.max_buffered)

    cpdef send(self, data):
        """Send a message: ``str`` as text, bytes-like as binary (see Connection.send)."""
        self._check_open()
        if self._admit():
            self.core.send(data)
            self.messages_out += 1
            # The size the core framed: for a str it did not encode, measuring it
            # here would encode it after all.
            self.payload_out += self.core.sent_size
            self._after_send()

    cpdef send_text(self, data, bint fin=True):
        """Send a text frame (``str`` or UTF-8 bytes)."""
        self._check_open()
        if self._admit():
            self.core.send_text(data, fin)
            self.fragmenting = not fin
            self.messages_out += fin
            self.payload_out += _payload_size(data)
            self._after_send()

    cpdef send_binary(self, data, bint fin=True):
        """Send a binary frame."""
        self._check_open()
        if self._admit():
            self.core.send_binary(data, fin)
            self.fragmenting = not fin
            self.messages_out += fin
            self.payload_out += _payload_size(data)
            self._after_send()

    cpdef send_continuation(self, data, bint fin):
        """Send a continuation frame of a fragmented message."""
        cdef list held
        self._check_open()
        self.core.send_continuation(data, fin)
        self.messages_out += fin
        self.payload_out += _payload_size(data)
        if fin and self.fragmenting:
            self.fragmenting = False
            # Published messages that arrived mid-message go out now, in order.
            held = self.held
            self.held = []
            for is_frame, item in held:
                if is_frame:
                    self._queue_frame(item)
                else:
                    self.core.send(item)
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
        if self.core._state() == STATE_OPEN:
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

    # ---- publishing (topics) ---------------------------------------------------
    # The fan-out path: no exceptions for closed subscribers (a result code instead),
    # and the topic's slow-subscriber policy rather than the connection's own.

    cdef int _admit_publish(self, int policy, size_t limit, size_t n) except -2:
        if self.closed or self.core is None or self.core._state() != STATE_OPEN:
            return PUBLISH_CLOSED
        if not self.paused and not self._over_cap():
            return PUBLISHED
        if policy == PUBLISH_SKIP:
            self.skipped += 1
            return PUBLISH_SKIPPED
        if policy == PUBLISH_BUFFER and self._buffered() + n <= limit:
            return PUBLISHED
        self.core.fail(CLOSE_POLICY_VIOLATION, "slow subscriber")
        self._after_core()
        return PUBLISH_CLOSED

    cdef int _queue_frame(self, object frame) except -1:
        """Queue an encoded frame after everything already queued."""
        cdef Core core = self.core
        cdef list chunks = core.chunks
        cdef size_t n = 0
        cdef object last
        cdef _FrameBatch batch
        cdef Py_ssize_t count
        cdef Py_ssize_t size = PyBytes_GET_SIZE(<bytes>frame)
        # Rust's output goes out after the chunks: move it in front of this frame.
        core.output(&n)
        if n:
            chunks.append(core._take_output())
        count = len(chunks)
        if count and size < COALESCE_MAX:
            # (wraparound is off: index from the front)
            last = chunks[count - 1]
            if type(last) is _FrameBatch and (<_FrameBatch>last).extendable():
                (<_FrameBatch>last).add(<bytes>frame)
                return 0
            if type(last) is bytes and PyBytes_GET_SIZE(last) < COALESCE_MAX:
                # bytes are immutable: a batch of the same objects is the same output.
                batch = _FrameBatch()
                batch.add(<bytes>last)
                batch.add(<bytes>frame)
                chunks[count - 1] = batch
                return 0
        # The shared frame object itself: no copy for this subscriber.
        chunks.append(frame)
        return 0

    cpdef int send_frame(self, bytes frame, int policy, size_t limit) except -2:
        """Queue one pre-encoded, unmasked frame (header and payload) for a topic.

        The caller guarantees the frame suits this connection (an RSV1 frame only
        if it negotiated permessage-deflate without server context takeover and a
        window at least the frame's). Counted in ``published`` or ``skipped``.

        Args:
            frame: the encoded frame, shared by every subscriber (never copied
                unless coalesced with other small frames).
            policy: 0 skip, 1 buffer up to ``limit`` bytes, 2 close (1008),
                applied while the connection is over its high-water mark.
            limit: the "buffer" policy's bound on buffered bytes.

        Returns:
            1 queued, 0 skipped by the policy, -1 not open (or closed by the policy).
        """
        cdef int rc = self._admit_publish(policy, limit, len(frame))
        if rc != PUBLISHED:
            return rc
        if self.fragmenting:
            self.held.append((True, frame))
        else:
            self._queue_frame(frame)
        self.published += 1
        self.messages_out += 1
        self._after_send()
        return PUBLISHED

    cpdef int publish_message(self, object data, int policy, size_t limit) except -2:
        """Send a topic's message through this connection's own encoder.

        For subscribers whose compression context is their own; otherwise as
        :meth:`send_frame` (same policy, counters and results).
        """
        cdef int rc = self._admit_publish(policy, limit, len(data))
        if rc != PUBLISHED:
            return rc
        if self.fragmenting:
            self.held.append((False, data))
        else:
            self.core.send(data)
        self.published += 1
        self.messages_out += 1
        self.payload_out += _payload_size(data)
        self._after_send()
        return PUBLISHED

    # ---- receiving ---------------------------------------------------------------

    cdef int _read_direct(self) except -1:
        """Receive the rest of a large binary frame straight into its bytes object.

        The kernel copies the payload into its final place and Rust unmasks it there:
        no pass through the shared buffer. Reading on until the frame is complete (or
        the socket is empty) finishes each message in one go, so its memory is reused
        for the next one while still in cache, instead of many connections each
        holding half a message. It stops once the replies put the connection over its
        high-water mark: reading on would hand the handler messages whose replies the
        slow-consumer policy must refuse (a client with more large messages in flight
        than the write limit got 1008); paused, the kernel pushes back on the peer.
        """
        cdef size_t want = 0
        cdef uint8_t *target
        cdef ssize_t n
        while not self.closed and not self.paused:
            target = self.core.direct_target(&want)
            if target == NULL or want < DIRECT_MIN:
                return 0
            n = recv(self.fd, target, want, 0)
            if n > 0:
                self.bytes_in += <size_t>n
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
        if self.mode == MODE_WS and self.tls is None and not self.paused:
            if self.core.direct_target(&want) != NULL and want >= DIRECT_MIN:
                return self._read_direct()
        n = recv(self.fd, self.loop.buf, RECV_BUFFER_SIZE, 0)
        if n > 0:
            self.bytes_in += <size_t>n
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
                    self.core._release_memory(0)
                if not self.closed and not self.paused:
                    self._read_direct()
                return 0
            if self.mode == MODE_HTTP:
                self._owner_http_data(_bytes(self.loop.buf, <size_t>n))
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
        cdef size_t i, data
        if count:
            # Timer bookkeeping straight from the event records, before any handler runs.
            ev = core.events()
            data = 0
            for i in range(count):
                if is_data_event(ev[i].kind):
                    data += 1
                    self.last_message = self.loop.now
                    self.messages_in += 1
                    self.payload_in += ev[i].len
                elif ev[i].kind == EV_PONG:
                    self.pong_deadline = 0.0
            self.owed = 0 if self.paused else data
            while True:
                try:
                    core.dispatch_events(count)
                except (_ConnectionClosedOK, _ConnectionClosedError) as exc:
                    if core._state() == STATE_OPEN:
                        self._owner_handler_error(exc)
                        break
                    # The peer's close frame came in this same read, after messages the
                    # handler answered: those replies cannot be sent (RFC 6455 5.5.1).
                    # Not a handler error; go on with the rest of the batch.
                    continue
                except Exception as exc:
                    # The rest of this batch is dropped: the connection fails with 1011.
                    self._owner_handler_error(exc)
                break
            self.owed = 0
            if not core.released:
                # A protocol error after this read's messages fails the connection
                # only now, so their replies go out ahead of the close frame.
                core.end_batch()
        self._after_core()
        return 0

    cdef int _after_core(self) except -1:
        cdef size_t n = 0
        if self.closed:
            return 0
        if (self.core._state() >= STATE_CLOSING and self.close_deadline == 0
                and self.close_timeout > 0):
            self.close_deadline = self.loop.now + self.close_timeout
        self.core.output(&n)
        if n or self.core.chunks or self.core._close_expected():
            self.loop._schedule(self)
            # Auto-replies (pongs, close echoes) count against the high-water mark too.
            self._update_paused()
        return 0

    cdef int _eof(self) except -1:
        if self.mode == MODE_WS and self.core._state() != STATE_CLOSED:
            self.core.feed_eof()
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
                    self._owner_http_data(chunk)
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
                self._write_raw(core._data_to_send())
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
                self.bytes_out += <size_t>r
                core.consume(<size_t>r)
                remaining = n - <size_t>r
        else:
            remaining = self._flush_vectored()
            if self.closed:
                return 0
        if self.loop.max_buffered:
            self._account(remaining)
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
            self._owner_drain()
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
        if core is not None and core._close_expected():
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
            self.bytes_out += <size_t>r
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
        if self.core._state() != STATE_OPEN:
            return 0
        if self.idle_timeout > 0 and now - self.last_message >= self.idle_timeout:
            self.core.send_close(CLOSE_GOING_AWAY, "idle timeout")
            self._after_core()
            return 0
        if self.ping_interval > 0:
            if self.pong_deadline > 0:
                if now >= self.pong_deadline:
                    # Same policy as websockets: a missed keepalive pong is a 1011.
                    self.core.fail(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
                    self._after_core()
            elif now >= self.next_ping:
                self.core.send_ping(b"")
                self.next_ping = now + self.ping_interval
                if self.ping_timeout > 0:
                    self.pong_deadline = now + self.ping_timeout
                self._after_core()
        return 0

    cdef int _teardown(self) except -1:
        """Close the socket, forget it, and tell the owner (once)."""
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
        self._account(0)
        self.tls = None
        self.tls_in = None
        self.tls_out = None
        self.held = []
        self._owner_lost()
        # Free the native state now (or once the dispatch in progress ends) and
        # drop the references back to the owner: the connection, its transport and
        # its core reference each other, and a cycle would keep the compression
        # state alive until a full garbage collection.
        if self.core is not None:
            self.core.release()
        self.owner = None
        return 0

    # ---- calls into the owner (see the class docstring) ----------------------------
    # The only places that call `owner`: the Python layer's side of the contract.

    cdef int _owner_http_data(self, bytes data) except -1:
        self.owner.http_data_received(data)
        return 0

    cdef int _owner_handler_error(self, object exc) except -1:
        if self.owner is None:
            # Torn down by the handler of an earlier event of the same read.
            _log.error("handler error after close on %r", self.remote_address, exc_info=exc)
            return 0
        self.owner.handler_failed(exc)
        return 0

    cdef int _owner_drain(self) except -1:
        if self.owner is not None:
            self.owner.resume_writing()
        return 0

    cdef int _owner_lost(self) except -1:
        if self.owner is not None:
            try:
                self.owner.connection_lost()
            except Exception:
                _log.exception("error in connection-lost callback")
        return 0


def fan_out(list transports, bytes frame, int policy, size_t limit, object exclude=None):
    """Queue one encoded frame on many transports (a topic's publish fast path).

    Args:
        transports: the subscribers' transports.
        frame: the encoded frame (see :meth:`Transport.send_frame`).
        policy: the slow-subscriber policy (see :meth:`Transport.send_frame`).
        limit: the "buffer" policy's bound on buffered bytes.
        exclude: a set of transports to skip (not counted), or None.

    Returns:
        ``(queued, skipped, closed)``: counts of the three results.
    """
    cdef Transport t
    cdef Py_ssize_t queued = 0, skipped = 0, closed = 0
    cdef int rc
    for t in transports:
        if exclude is not None and t in exclude:
            continue
        rc = t.send_frame(frame, policy, limit)
        if rc == PUBLISHED:
            queued += 1
        elif rc == PUBLISH_SKIPPED:
            skipped += 1
        else:
            closed += 1
    return queued, skipped, closed
