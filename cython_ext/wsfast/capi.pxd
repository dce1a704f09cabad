# SPDX-License-Identifier: MIT
# The Cython handler API of wsfast: each message as a pointer and length, sends from
# a buffer, no Python object per message. Compile against it with
# ``include_dirs=[wsfast.get_include()]`` (Cython include path and C include dirs):
#
#     from wsfast.capi cimport CHandler, Core, TEXT, BINARY
#
#     cdef class Echo(CHandler):
#         cdef int on_data(self, Core conn, int opcode, const char *data,
#                          Py_ssize_t n) except -1:
#             conn.send_bytes(opcode, data, n)
#             return 0
#
# ``conn.send_bytes(opcode, data, n)`` copies a whole message into the connection's
# output; it returns 0 once queued, 1 when the closing handshake has started (nothing
# may be sent then), and raises (-1) on a protocol error.
#
# Server: ``wsfast.serve(Echo(), ...)``; the epoll server calls ``on_data`` for each
# text or binary message (text is UTF-8, already validated), and the other callbacks
# (``on_open``, ``on_close``...) are the Python ones of ``wsfast.Handler``.
# Client: ``ClientConnection.run_handler(handler)`` reads and calls ``on_data`` for
# each message until the handler returns 1 or the connection closes.
#
# DANGER: ``data`` is borrowed from the connection's receive buffer and is valid only
# during the call; copy what must outlive it. ``Core.send_bytes`` copies.

from wsfast._cy cimport CHandler, Core

# The opcodes ``on_data`` receives and ``send_bytes`` takes (RFC 6455 section 5.2).
cdef enum:
    TEXT = 0x1
    BINARY = 0x2
