# SPDX-License-Identifier: MIT
# cython: language_level=3
"""wsfast._cy: the Cython glue (buffers, event dispatch, the epoll loop).

One extension module built from several files joined by ``include`` (the uvloop
layout), so every cdef class can call every other without Python lookups. Each
file's cdef declarations are in its .pxd, all included by _cy.pxd.
"""

include "core.pyx"
include "loop.pyx"
include "transport.pyx"
include "client.pyx"
include "awaitable.pyx"

#: Identifies this extension in wsfast.build_info.
BUILD = "cython"

# Cython 3 does not copy the members of a cpdef enum into the module namespace:
# do it here, so Python code can say ``_cy.POLICY_DROP`` as well as
# ``_cy.SlowConsumerPolicy.POLICY_DROP``.
for _enum in (Opcode, EventKind, ProtocolState, SendResult, TransportMode,
              SlowConsumerPolicy):
    globals().update(_enum.__members__)
del _enum
