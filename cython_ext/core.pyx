# SPDX-License-Identifier: MIT
# Core: one connection's Rust protocol, driven through the C-API capsule.
#
# Received buffers go to Rust in one call each; the events of the whole buffer come
# back as an array of small records that this file turns into str/bytes and handler
# calls. Output accumulates in Rust's buffer and is written straight from there.
#
# This file is the only user of `RS` (the capsule's function table): the loop, the
# transport and the client reader call Core's cdef methods (declared in core.pxd).

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.pycapsule cimport PyCapsule_Import


cdef extern from "Python.h":
    ctypedef struct PyObject
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void *PyUnicode_DATA(object s)
    int PyUnicode_KIND(object s)
    PyObject *PyBytes_FromStringAndSize_raw "PyBytes_FromStringAndSize" (
        const char *v, Py_ssize_t n)
    char *PyBytes_AS_STRING_raw "PyBytes_AS_STRING" (PyObject *o)
    void Py_DECREF_raw "Py_DECREF" (PyObject *o)
    void PyErr_Clear()
from libc.stdint cimport int32_t, uint8_t, uint32_t
from libc.string cimport memcpy

import os as _os

from wsfast.exceptions import InvalidState as _InvalidState
from wsfast.exceptions import ProtocolError as _ProtocolError

cdef wsf_capi *RS = NULL

# Payloads at least this large are sent without copying (header first, then the
# caller's buffer), when neither masking nor compression has to rewrite them.
cdef enum:
    ZERO_COPY_MIN = 65536
    # Whole binary messages at least this large are received straight into the
    # bytes object the handler gets (Rust unmasks into it; the server loop may even
    # recv() into it): no copy out of Rust's buffer afterwards.
    EXTERNAL_MIN = 16384


cdef int _load_capi() except -1:
    global RS
    RS = <wsf_capi *>PyCapsule_Import(b"wsfast._rust._C_API", 0)
    if RS == NULL:
        raise ImportError("wsfast._rust does not export its C API capsule")
    if RS.abi_version != WSF_ABI_VERSION:
        raise ImportError(
            f"wsfast._rust C API version {RS.abi_version} does not match wsfast._cy "
            f"({WSF_ABI_VERSION}): rebuild both extensions together"
        )
    return 0


_load_capi()


cdef inline object _text(const uint8_t *data, size_t n, bint ascii=False):
    """The str of ``n`` bytes of UTF-8 that the protocol validated (text, close reason).

    The validator's verdict makes a second checking decode needless: Rust measures the
    str (length, narrowest kind) in one vectorised pass, then fills the PEP 393 buffer
    directly; ASCII is a plain copy. ``ascii``: the core already saw every byte is ASCII
    (``wsf_event.ascii``), so even the measuring pass is skipped. The kind is exact, as
    CPython's str equality and hashing require, so the result equals
    ``bytes(data).decode("utf-8")``.
    """
    cdef size_t chars = n
    cdef uint32_t max_char = 0x7f
    if not ascii:
        max_char = RS.utf8_shape(data, n, &chars)
    cdef object s = PyUnicode_New(<Py_ssize_t>chars, max_char)
    if max_char == 0x7f:
        memcpy(PyUnicode_DATA(s), data, n)
    else:
        RS.utf8_decode(data, n, PyUnicode_DATA(s), <uint32_t>PyUnicode_KIND(s), chars)
    return s


cdef struct _Borrowed:
    const uint8_t *ptr
    size_t len
    bint held
    Py_buffer view


cdef inline int _borrow(object data, _Borrowed *b) except -1:
    """Borrow the bytes of ``data``; always pair with ``_unborrow(b)``.

    ``bytes`` skips the buffer protocol; anything else must export a C-contiguous
    buffer. This replaces typed memoryviews, whose per-call setup showed up in
    profiles of the echo path.
    """
    if type(data) is bytes:
        b.ptr = <const uint8_t *>PyBytes_AS_STRING(data)
        b.len = PyBytes_GET_SIZE(data)
        b.held = False
        return 0
    PyObject_GetBuffer(data, &b.view, PyBUF_SIMPLE)
    b.held = True
    b.ptr = <const uint8_t *>b.view.buf
    b.len = b.view.len
    return 0


cdef inline void _unborrow(_Borrowed *b) noexcept:
    if b.held:
        b.held = False
        PyBuffer_Release(&b.view)


cdef void *_alloc_message(void *ctx, size_t n, uint8_t **data) noexcept with gil:
    # A bytes object the protocol fills before anyone sees it; the protocol holds
    # this reference until its batch ends (_release_message).
    cdef PyObject *b = PyBytes_FromStringAndSize_raw(NULL, <Py_ssize_t>n)
    if b == NULL:
        # Rust falls back to its own buffer (which reports a real shortage itself).
        PyErr_Clear()
        return NULL
    data[0] = <uint8_t *>PyBytes_AS_STRING_raw(b)
    return <void *>b


cdef void _release_message(void *ctx, void *handle) noexcept with gil:
    Py_DECREF_raw(<PyObject *>handle)


cdef class Core:
    """One connection's protocol engine (server or client side), for the I/O layer.

    Args:
        side: "server" or "client".
        max_size: largest message accepted, in bytes (after decompression).
        max_frame_size: largest frame accepted; defaults to ``max_size``.
        deflate: negotiated ``wsfast.DeflateParams``, or None for no compression.
        deflate_config: the ``wsfast.DeflateConfig`` whose compressor settings
            (level, mem_level, compress_window_bits) our compressor uses.
        compression_level: zlib level for outgoing compressed messages, when no
            deflate_config gives one (default ``DEFAULT_COMPRESSION_LEVEL``, 1: fast,
            the usual choice for realtime traffic; see DeflateConfig).
        compress_min_size: smaller messages are sent uncompressed.
        auto_pong: answer pings automatically.
    """

    def __cinit__(self, str side="server", *, size_t max_size=1 << 20, max_frame_size=None,
                  deflate=None, deflate_config=None, compression_level=None,
                  size_t compress_min_size=0, bint auto_pong=True, bytes mask_seed=None):
        cdef wsf_config cfg
        if side == "server":
            cfg.role = 0
        elif side == "client":
            cfg.role = 1
        else:
            raise ValueError(f"side must be 'server' or 'client', not {side!r}")
        # The compressor's settings: a DeflateConfig's whole, or just a level. Zero
        # mem_level/compress_window_bits ask Rust for its defaults.
        cfg.mem_level = 0
        cfg.compress_window_bits = 0
        cfg.compress_no_context = 0
        if deflate_config is not None:
            if compression_level is not None:
                raise TypeError("pass compression_level or deflate_config, not both")
            cfg.compression_level = deflate_config.level
            cfg.mem_level = deflate_config.mem_level
            cfg.compress_window_bits = deflate_config.compress_window_bits
            # compressor_idle=0: keep no context between messages (see DeflateConfig).
            cfg.compress_no_context = deflate_config.compressor_idle == 0
        elif compression_level is None:
            cfg.compression_level = WSF_DEFAULT_COMPRESSION_LEVEL
        elif not 0 <= compression_level <= 9:
            raise ValueError(f"compression_level must be 0..9, not {compression_level}")
        else:
            cfg.compression_level = compression_level
        self.is_client = cfg.role == 1
        cfg.auto_pong = auto_pong
        cfg.max_message_size = max_size
        cfg.max_frame_size = max_size if max_frame_size is None else max_frame_size
        cfg.compress_min_size = compress_min_size
        cfg.deflate = deflate is not None
        cfg.server_no_context_takeover = 0
        cfg.client_no_context_takeover = 0
        cfg.server_max_window_bits = 0
        cfg.client_max_window_bits = 0
        if deflate is not None:
            cfg.server_no_context_takeover = deflate.server_no_context_takeover
            cfg.client_no_context_takeover = deflate.client_no_context_takeover
            cfg.server_max_window_bits = deflate.server_max_window_bits or 0
            cfg.client_max_window_bits = deflate.client_max_window_bits or 0
        if mask_seed is None:
            mask_seed = _os.urandom(32)
        if len(mask_seed) != 32:
            raise ValueError("mask_seed must be exactly 32 bytes")
        memcpy(cfg.mask_seed, PyBytes_AS_STRING(mask_seed), 32)
        self.p = RS.protocol_new(&cfg)
        RS.set_allocator(self.p, _alloc_message, _release_message, NULL, EXTERNAL_MIN)
        self.chunks = []
        self.on_message = None
        self.on_ping = None
        self.on_pong = None
        self.on_close = None
        self.owner = None

    def __dealloc__(self):
        if self.p != NULL:
            RS.protocol_free(self.p)
            self.p = NULL

    # ---- receiving -------------------------------------------------------------
    # Each feed invalidates the previous batch's event records (and the memory they
    # point into) and returns the number of events in the new batch.

    cdef inline size_t feed(self, const uint8_t *data, size_t n) noexcept nogil:
        self.cursor = 0
        self.text_obj = NULL
        return RS.receive_data(self.p, data, n)

    cdef inline size_t feed_eof(self) noexcept nogil:
        """The transport ended: the batch holds a 1006 close if no close frame came."""
        self.cursor = 0
        self.text_obj = NULL
        return RS.receive_eof(self.p)

    cdef inline uint8_t *direct_target(self, size_t *n) noexcept nogil:
        """Where the rest of a large binary frame may be received (``*n`` bytes), or NULL."""
        return RS.direct_target(self.p, n)

    cdef inline size_t feed_direct(self, size_t n) noexcept nogil:
        """``n`` bytes were received at :meth:`direct_target`: process them."""
        self.cursor = 0
        self.text_obj = NULL
        return RS.receive_direct(self.p, n)

    cdef inline const wsf_event *events(self) noexcept nogil:
        """The records of the last batch (borrowed: valid until the next feed)."""
        return RS.events(self.p)

    cdef int dispatch_events(self, size_t count) except -1:
        """Call the handler callbacks for the last batch's events, in order.

        Dispatch resumes where it stopped: if a handler raises, calling this again
        continues with the next event of the same batch.
        """
        cdef const wsf_event *ev
        cdef size_t i
        cdef uint8_t kind
        cdef object text
        cdef CHandler ch = <CHandler>self.chandler
        if self.released:
            # A handler closed the connection: the batch went with the native state.
            return 0
        ev = self.events()
        self.dispatching = True
        try:
            while self.cursor < count:
                i = self.cursor
                self.cursor += 1
                kind = ev[i].kind
                self.text_obj = NULL
                if ch is not None and is_data_event(kind):
                    # The Cython handler API: the payload in place, no object per message.
                    if ev[i].handle != NULL:
                        ch.on_data(self, kind, PyBytes_AS_STRING(<object>ev[i].handle),
                                   PyBytes_GET_SIZE(<object>ev[i].handle))
                    else:
                        ch.on_data(self, kind, <const char *>ev[i].data,
                                   <Py_ssize_t>ev[i].len)
                elif kind == EV_TEXT:
                    # `text` keeps the str alive until the next event, so no other
                    # object can take its address while text_obj names it.
                    text = _text(ev[i].data, ev[i].len, ev[i].ascii)
                    self.text_obj = <void *>text
                    self.text_data = ev[i].data
                    self.text_len = ev[i].len
                    self.on_message(self.owner, text)
                elif kind == EV_BINARY:
                    self.on_message(self.owner, _binary(&ev[i]))
                elif kind == EV_PING:
                    if self.on_ping is not None:
                        self.on_ping(self.owner, _bytes(ev[i].data, ev[i].len))
                elif kind == EV_PONG:
                    if self.on_pong is not None:
                        self.on_pong(self.owner, _bytes(ev[i].data, ev[i].len))
                elif kind == EV_CLOSE:
                    if self.on_close is not None:
                        self.on_close(self.owner, ev[i].code, _text(ev[i].data, ev[i].len))
        finally:
            self.text_obj = NULL
            self.dispatching = False
            if self.release_pending:
                self.release()
        return 0

    cdef inline void end_batch(self) noexcept nogil:
        """The batch's events are handled: a protocol error found after its messages
        fails the connection now (their replies are queued ahead of the close frame)."""
        RS.end_batch(self.p)

    def set_handlers(self, owner, on_message, on_ping=None, on_pong=None, on_close=None):
        """Bind the callbacks that :meth:`receive_and_dispatch` calls as ``f(owner, ...)``.

        When ``on_message`` is a :class:`CHandler`'s, data events go to its C-level
        ``on_data`` instead (with this core as the connection).
        """
        target = getattr(on_message, "__self__", None)
        self.chandler = target if isinstance(target, CHandler) else None
        self.owner = owner
        self.on_message = on_message
        self.on_ping = on_ping
        self.on_pong = on_pong
        self.on_close = on_close

    def receive_and_dispatch(self, data):
        """Feed one received buffer and call the bound handlers for its events.

        Returns:
            The number of events dispatched.
        """
        cdef _Borrowed view
        cdef size_t count
        _borrow(data, &view)
        try:
            count = self.feed(view.ptr, view.len)
        finally:
            _unborrow(&view)
        self.dispatch_events(count)
        if not self.released:
            self.end_batch()
        return count

    cdef list _events_list(self, size_t count):
        # Kinds go out as plain ints (<int>): an IntEnum member per event would cost
        # a Python call each.
        cdef const wsf_event *ev = self.events()
        cdef list out = []
        cdef size_t i
        for i in range(count):
            if ev[i].kind == EV_TEXT:
                out.append((<int>EV_TEXT, _text(ev[i].data, ev[i].len, ev[i].ascii)))
            elif ev[i].kind == EV_CLOSE:
                out.append((<int>EV_CLOSE, (ev[i].code, _text(ev[i].data, ev[i].len))))
            elif ev[i].kind == EV_BINARY:
                out.append((<int>EV_BINARY, _binary(&ev[i])))
            else:
                out.append((<int>ev[i].kind, _bytes(ev[i].data, ev[i].len)))
        return out

    def receive_data(self, data):
        """Feed one received buffer.

        Returns:
            A list of ``(kind, payload)`` events: ``(1, str)`` text, ``(2, bytes)``
            binary, ``(9, bytes)`` ping, ``(10, bytes)`` pong and
            ``(8, (code, reason))`` close.
        """
        cdef _Borrowed view
        cdef size_t count
        _borrow(data, &view)
        try:
            count = self.feed(view.ptr, view.len)
        finally:
            _unborrow(&view)
        events = self._events_list(count)
        # The events are objects now: a protocol error after the messages fails the
        # connection at once, as in the sans-I/O Protocol.
        self.end_batch()
        return events

    def receive_eof(self):
        """The transport ended. Returns the events (a 1006 close if no close frame came)."""
        return self._events_list(self.feed_eof())

    # ---- sending ----------------------------------------------------------------

    cdef int _check(self, int32_t rc) except -1:
        cdef size_t n = 0
        cdef const uint8_t *msg
        if rc >= SEND_OK:
            return 0
        msg = RS.last_error(self.p, &n)
        text = _text(msg, n)
        if rc == SEND_CLOSING or rc == SEND_FRAGMENTATION:
            raise _InvalidState(text)
        if rc == SEND_INVALID_ARGUMENT:
            raise ValueError(text)
        raise _ProtocolError(text)

    cdef Py_ssize_t _send_buffer(self, Opcode opcode, object data, bint fin) except -1:
        # Returns the payload size in bytes.
        cdef _Borrowed view
        cdef size_t n
        cdef int32_t rc
        _borrow(data, &view)
        try:
            n = view.len
            if n >= ZERO_COPY_MIN:
                rc = RS.send_frame_header(self.p, opcode, n, fin)
                self._check(rc)
                if rc == SEND_ZERO_COPY:
                    # The header is the last thing in Rust's buffer: move the output so
                    # far to the chunk list, then the caller's buffer itself (no copy).
                    self.chunks.append(self._take_output())
                    self.chunks.append(data)
                    return <Py_ssize_t>n
            self._check(RS.send_frame(self.p, opcode, view.ptr, n, fin))
        finally:
            _unborrow(&view)
        return <Py_ssize_t>n

    cpdef send(self, data):
        """Queue a message: ``str`` as text, bytes-like as binary."""
        cdef const char *utf8
        cdef Py_ssize_t n
        if isinstance(data, str):
            if <void *>data == self.text_obj:
                # The str being handled, sent back: frame the bytes it was decoded
                # from (validated, still in place), with no encode.
                self._check(RS.send_frame(self.p, OP_TEXT, self.text_data, self.text_len, 1))
                self.sent_size = self.text_len
                return
            # Compact ASCII strings hand out their own buffer here: no copy. Others
            # are encoded once; CPython caches the result in the str.
            utf8 = PyUnicode_AsUTF8AndSize(data, &n)
            self._check(RS.send_frame(self.p, OP_TEXT, <const uint8_t *>utf8, n, 1))
            self.sent_size = <size_t>n
        else:
            self.sent_size = <size_t>self._send_buffer(OP_BINARY, data, True)

    cdef int send_bytes(self, int opcode, const char *data, Py_ssize_t n) except -1:
        """Queue a whole message from a C buffer (copied): the Cython handler API's send.

        Returns 0 once queued, 1 when the closing handshake has started: then nothing
        may be sent (RFC 6455 section 5.5.1), as when the peer's close frame came in the
        same read as the message being answered; the transport treats a Python
        handler's send alike (no handler error).
        """
        if n < 0:
            raise ValueError(f"negative length {n}")
        if self._state() >= STATE_CLOSING:
            return 1
        return self._check(RS.send_frame(self.p, <uint8_t>opcode, <const uint8_t *>data,
                                         <size_t>n, 1))

    cpdef send_text(self, data, bint fin=True):
        """Queue a text frame (``str`` or UTF-8 bytes)."""
        if isinstance(data, str):
            data = (<str>data).encode("utf-8")
        self._send_buffer(OP_TEXT, data, fin)

    cpdef send_binary(self, data, bint fin=True):
        """Queue a binary frame."""
        self._send_buffer(OP_BINARY, data, fin)

    cpdef send_continuation(self, data, bint fin):
        """Queue a continuation frame of a fragmented message."""
        if isinstance(data, str):
            data = (<str>data).encode("utf-8")
        self._send_buffer(OP_CONTINUATION, data, fin)

    cdef int _send_control(self, Opcode opcode, object data) except -1:
        cdef _Borrowed view
        _borrow(data, &view)
        try:
            self._check(RS.send_control(self.p, opcode, view.ptr, view.len))
        finally:
            _unborrow(&view)
        return 0

    cpdef send_ping(self, data=b""):
        """Queue a ping (at most 125 bytes)."""
        self._send_control(OP_PING, data)

    cpdef send_pong(self, data=b""):
        """Queue a pong (at most 125 bytes)."""
        self._send_control(OP_PONG, data)

    cpdef send_close(self, code=1000, str reason=""):
        """Queue a close frame; ``code=None`` sends one without a status code."""
        cdef bytes r = reason.encode("utf-8")
        cdef int32_t c = -1 if code is None else <int32_t>code
        if code is not None and not (0 <= code <= 65535):
            raise ValueError(f"invalid close code {code}")
        self._check(RS.send_close(self.p, c, <const uint8_t *>PyBytes_AS_STRING(r), len(r)))

    cpdef fail(self, int code, str reason=""):
        """Fail the connection: queue a close frame and ignore further input."""
        cdef bytes r = reason.encode("utf-8")
        # Failing may drop the message buffer that the str being handled came from.
        self.text_obj = NULL
        RS.fail(self.p, code, <const uint8_t *>PyBytes_AS_STRING(r), len(r))

    # ---- output -----------------------------------------------------------------

    cdef inline const uint8_t *output(self, size_t *n) noexcept nogil:
        """Rust's output buffer (borrowed: valid until the next call into the core).

        Zero-copy ``chunks``, if any, go out before it.
        """
        return RS.output(self.p, n)

    cdef inline void consume(self, size_t n) noexcept nogil:
        """``n`` bytes of :meth:`output` were written."""
        RS.consume_output(self.p, n)

    cdef bytes _take_output(self):
        cdef size_t n = 0
        cdef const uint8_t *out = RS.output(self.p, &n)
        cdef bytes b = _bytes(out, n)
        RS.consume_output(self.p, n)
        return b

    cdef bytes _data_to_send(self):
        cdef list parts
        if self.chunks:
            parts = self.chunks
            self.chunks = []
            parts.append(self._take_output())
            return b"".join(parts)
        return self._take_output()

    def data_to_send(self):
        """All pending output as one ``bytes`` (empty if none), then cleared."""
        return self._data_to_send()

    def output_size(self):
        """Bytes waiting to be written, zero-copy chunks included."""
        cdef size_t n = 0
        RS.output(self.p, &n)
        return n + sum([len(memoryview(c).cast("B")) for c in self.chunks])

    cdef inline void _release_memory(self, size_t keep) noexcept nogil:
        # Invalidates the last batch's event records, like a feed.
        self.text_obj = NULL
        RS.release_memory(self.p, keep)

    def release_memory(self, size_t keep=0):
        """Give back buffer memory beyond ``keep`` bytes (call when idle)."""
        self._release_memory(keep)

    cdef inline bint _release_idle_compressor(self) noexcept nogil:
        # Frees the compressor if it compressed nothing since the last call.
        return RS.release_idle_compressor(self.p) != 0

    # ---- teardown ---------------------------------------------------------------

    cpdef release(self):
        """The transport is gone: free the native state now.

        Compression state, buffers and unsent output go at once, and the handlers
        are unbound, which breaks the reference cycles through the owner: without
        this, a closed connection's memory waits for a full garbage collection,
        which an allocation-light server rarely triggers. How the connection ended
        (``state`` CLOSED, ``close_sent``, ``close_received``, ``error``) stays.
        Event records of the last batch become invalid. Called during dispatch
        (a handler closed the connection), it takes effect once the batch is
        dispatched. Idempotent.
        """
        if self.released:
            return
        if self.dispatching:
            self.release_pending = True
            return
        self.release_pending = False
        self.released = True
        RS.release_all(self.p)
        self.cursor = 0
        self.chunks = []
        self.owner = None
        self.on_message = None
        self.on_ping = None
        self.on_pong = None
        self.on_close = None
        self.chandler = None

    # ---- state ------------------------------------------------------------------

    cdef inline ProtocolState _state(self) noexcept nogil:
        return <ProtocolState>RS.state(self.p)

    cdef inline bint _close_expected(self) noexcept nogil:
        """Whether the transport should be closed once the output is written."""
        return RS.close_expected(self.p) != 0

    cdef inline bint _close_ok(self) noexcept nogil:
        # The one rule for "closed normally" lives in Rust (protocol close_is_ok).
        return RS.close_ok(self.p) != 0

    @property
    def close_ok(self):
        """True once close frames went both ways with codes in ``OK_CLOSE_CODES``."""
        return self._close_ok()

    @property
    def state(self):
        """0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED (``ProtocolState``, as an int)."""
        return <int>self._state()

    def close_expected(self):
        """True when the transport should be closed once the output is written."""
        return self._close_expected()

    @property
    def close_sent(self):
        """``(code, reason)`` of the close frame we sent, or None."""
        cdef const uint8_t *r = NULL
        cdef size_t n = 0
        cdef int32_t code = RS.close_sent(self.p, &r, &n)
        return None if code < 0 else (code, _text(r, n))

    @property
    def close_received(self):
        """``(code, reason)`` of the close frame received (1006 if none came), or None."""
        cdef const uint8_t *r = NULL
        cdef size_t n = 0
        cdef int32_t code = RS.close_received(self.p, &r, &n)
        return None if code < 0 else (code, _text(r, n))

    @property
    def error(self):
        """Why the protocol failed the connection, or None."""
        cdef size_t n = 0
        cdef const uint8_t *msg
        if not self._close_expected() and self._state() == STATE_OPEN:
            return None
        msg = RS.last_error(self.p, &n)
        return _text(msg, n) if n else None


# ---- ABI check --------------------------------------------------------------------

cdef inline size_t _offset(const void *base, const void *field) noexcept:
    return <size_t>(<const char *>field - <const char *>base)


def _capi_layout():
    """The C-API struct layouts as this extension was compiled (``sizeof``/``offsetof``).

    The Rust side reports the same table for its ``#[repr(C)]`` structs; the two must
    be equal, or includes/wsfast_rs.h has drifted from rust/src/capi.rs. A field added
    to the header gets one line here.

    Returns:
        ``{"wsf_config": {"__size__": size, "<field>": offset, ...}, "wsf_event":
        {...}, "wsf_capi": {...}}`` with every field the header declares.
    """
    # Offsets are measured on a real (uninitialised, never read) instance.
    cdef wsf_config c
    cdef wsf_event e
    cdef wsf_capi a
    return {
        "wsf_config": {
            "__size__": sizeof(wsf_config),
            "role": _offset(&c, &c.role),
            "auto_pong": _offset(&c, &c.auto_pong),
            "deflate": _offset(&c, &c.deflate),
            "server_no_context_takeover": _offset(&c, &c.server_no_context_takeover),
            "client_no_context_takeover": _offset(&c, &c.client_no_context_takeover),
            "server_max_window_bits": _offset(&c, &c.server_max_window_bits),
            "client_max_window_bits": _offset(&c, &c.client_max_window_bits),
            "mem_level": _offset(&c, &c.mem_level),
            "compress_window_bits": _offset(&c, &c.compress_window_bits),
            "compress_no_context": _offset(&c, &c.compress_no_context),
            "compression_level": _offset(&c, &c.compression_level),
            "max_frame_size": _offset(&c, &c.max_frame_size),
            "max_message_size": _offset(&c, &c.max_message_size),
            "compress_min_size": _offset(&c, &c.compress_min_size),
            "mask_seed": _offset(&c, &c.mask_seed[0]),
        },
        "wsf_event": {
            "__size__": sizeof(wsf_event),
            "kind": _offset(&e, &e.kind),
            "ascii": _offset(&e, &e.ascii),
            "code": _offset(&e, &e.code),
            "data": _offset(&e, &e.data),
            "len": _offset(&e, &e.len),
            "handle": _offset(&e, &e.handle),
        },
        "wsf_capi": {
            "__size__": sizeof(wsf_capi),
            "abi_version": _offset(&a, &a.abi_version),
            "protocol_new": _offset(&a, &a.protocol_new),
            "protocol_free": _offset(&a, &a.protocol_free),
            "receive_data": _offset(&a, &a.receive_data),
            "receive_eof": _offset(&a, &a.receive_eof),
            "events": _offset(&a, &a.events),
            "send_frame": _offset(&a, &a.send_frame),
            "send_frame_header": _offset(&a, &a.send_frame_header),
            "send_control": _offset(&a, &a.send_control),
            "send_close": _offset(&a, &a.send_close),
            "fail": _offset(&a, &a.fail),
            "output": _offset(&a, &a.output),
            "consume_output": _offset(&a, &a.consume_output),
            "state": _offset(&a, &a.state),
            "close_expected": _offset(&a, &a.close_expected),
            "close_sent": _offset(&a, &a.close_sent),
            "close_received": _offset(&a, &a.close_received),
            "last_error": _offset(&a, &a.last_error),
            "release_memory": _offset(&a, &a.release_memory),
            "apply_mask": _offset(&a, &a.apply_mask),
            "set_allocator": _offset(&a, &a.set_allocator),
            "direct_target": _offset(&a, &a.direct_target),
            "receive_direct": _offset(&a, &a.receive_direct),
            "close_ok": _offset(&a, &a.close_ok),
            "end_batch": _offset(&a, &a.end_batch),
            "release_all": _offset(&a, &a.release_all),
            "release_idle_compressor": _offset(&a, &a.release_idle_compressor),
            "utf8_shape": _offset(&a, &a.utf8_shape),
            "utf8_decode": _offset(&a, &a.utf8_decode),
        },
    }


cdef class CHandler:
    """Base class of handlers written in Cython: each message as a pointer and length.

    Subclass it in Cython (``from wsfast.capi cimport CHandler, Core``) and override
    the C method ``on_data``; answer with ``conn.send_bytes(opcode, data, n)``. The
    epoll server (``wsfast.serve``) then calls it with the payload in place: no
    Python object per message. The other callbacks are the :class:`wsfast.Handler`
    ones, as Python methods (no-ops here). Sends made in ``on_data`` go out at the
    end of the read that carried the message.
    """

    cdef int on_data(self, Core conn, int opcode, const char *data, Py_ssize_t n) except -1:
        # DANGER: ``data`` is borrowed from the core's receive buffer and is valid only
        # during this call; copy what must outlive it.
        return 0

    def on_message(self, conn, data):
        """Python-level delivery, used only by front ends without the C path.

        Raises:
            TypeError: always; a CHandler needs the C path.
        """
        raise TypeError(f"{type(self).__name__} is a CHandler: serve it with wsfast.serve")

    def on_handshake(self, request):
        """Accept every upgrade with the defaults (see ``wsfast.Handler``)."""
        return None

    def on_open(self, conn):
        """The handshake completed (no-op)."""

    def on_ping(self, conn, data):
        """A ping arrived (no-op; the pong is automatic)."""

    def on_pong(self, conn, data):
        """A pong arrived (no-op)."""

    def on_close(self, conn, code, reason):
        """The connection closed (no-op)."""

    def on_error(self, conn, exc):
        """A callback raised (no-op; the connection fails with 1011)."""

    def on_drain(self, conn):
        """Output fell to the low-water mark (no-op)."""
