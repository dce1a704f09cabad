# SPDX-License-Identifier: MIT
# cython: language_level=3
"""wsfast._cy: the Cython glue (buffers, event dispatch, the epoll loop).

One extension module built from several files joined by ``include`` (the uvloop
layout), so every cdef class can call every other without Python lookups.
"""

from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t

include "includes/wsfast_rs.pxd"
include "core.pyx"
include "loop.pyx"
include "client.pyx"

#: Identifies this extension in wsfast.build_info.
BUILD = "cython"
