# SPDX-License-Identifier: MIT
# Declarations of wsfast._cy, read by Cython before _cy.pyx: one extension built from
# several files (the uvloop layout), so each .pyx has a .pxd here declaring what the
# others may use. Order matters: a file's declarations come after those it uses.

from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t

include "includes/wsfast_rs.pxd"
include "includes/net.pxd"
include "enums.pxd"
include "core.pxd"
include "loop.pxd"
include "transport.pxd"
include "client.pxd"
include "awaitable.pxd"
