# SPDX-License-Identifier: MIT
# cython: language_level=3
"""Handlers written against wsfast's Cython API: no Python object per message.

Build with ``python setup.py build_ext --inplace`` (see setup.py), then::

    import wsfast, handlers
    wsfast.serve(handlers.Echo(), "127.0.0.1", 8000).serve_forever()

    with wsfast.connect("ws://127.0.0.1:8000/feed") as conn:
        counter = handlers.FeedCounter(1000)
        conn.run(counter)
"""

from wsfast.capi cimport BINARY, CHandler, Core


cdef class Echo(CHandler):
    """Server: sends every message back, text as text and binary as binary."""

    cdef int on_data(self, Core conn, int opcode, const char *data, Py_ssize_t n) except -1:
        # send_bytes copies the payload into the connection's output before the
        # receive buffer it points into is reused. It returns 1 (nothing sent) once
        # the closing handshake has started: nothing to do about that in an echo.
        conn.send_bytes(opcode, data, n)
        return 0


cdef class FeedCounter(CHandler):
    """Client: counts a feed's messages and their bytes, and stops after ``limit``.

    Args:
        limit: stop ``conn.run`` after this many messages (0: run until closed).
    """

    cdef public Py_ssize_t limit
    cdef public Py_ssize_t messages
    cdef public Py_ssize_t binary
    cdef public Py_ssize_t size
    # The sum of every payload byte: lets a test check the payloads, not only counts.
    cdef public unsigned long long checksum

    def __init__(self, Py_ssize_t limit=0):
        self.limit = limit

    cdef int on_data(self, Core conn, int opcode, const char *data, Py_ssize_t n) except -1:
        cdef const unsigned char *p = <const unsigned char *>data
        cdef Py_ssize_t i
        self.messages += 1
        self.size += n
        if opcode == BINARY:
            self.binary += 1
        for i in range(n):
            self.checksum += p[i]
        # Nonzero stops ClientConnection.run.
        return self.limit != 0 and self.messages >= self.limit
