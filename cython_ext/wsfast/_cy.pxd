# SPDX-License-Identifier: MIT
# Cython finds a module's own .pxd by its qualified name (wsfast._cy: this path under
# the include path cython_ext/), while cythonize tracks the .pxd beside the .pyx
# (cython_ext/_cy.pxd) to decide what to rebuild. This file joins the two: the
# declarations are in ../_cy.pxd.

include "../_cy.pxd"
