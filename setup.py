# SPDX-License-Identifier: MIT
"""Builds the Cython extension ``wsfast._cy`` only; maturin builds the Rust one.

Run by the in-tree backend (cython_ext/wsfast_backend.py) as
``setup.py build_ext --inplace``. Set ``WSFAST_CYTHON_ANNOTATE=1`` for HTML
annotation, ``WSFAST_DEBUG=1`` for bounds checks and ``-O0 -g``.
"""

import os
import shutil

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("WSFAST_DEBUG") == "1"

extension = Extension(
    "wsfast._cy",
    ["cython_ext/_cy.pyx"],
    include_dirs=["cython_ext/includes"],
    extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"],
)

# The Cython handler API: the declarations a user's `cimport wsfast.capi` reads (the
# public wsfast/capi.pxd, and _cy's own .pxd files it cimports) ship in the package
# as wsfast/include/, the directory wsfast.get_include() returns.
INCLUDE = os.path.join("python", "wsfast", "include")
shutil.rmtree(INCLUDE, ignore_errors=True)
shutil.copytree(
    "cython_ext",
    INCLUDE,
    ignore=lambda d, names: [n for n in names if not n.endswith((".pxd", ".h")) and "." in n],
)

setup(
    name="wsfast",
    package_dir={"": "python"},
    packages=[],
    ext_modules=cythonize(
        [extension],
        language_level=3,
        include_path=["cython_ext"],
        annotate=os.environ.get("WSFAST_CYTHON_ANNOTATE") == "1",
        compiler_directives={
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "cdivision": True,
            "initializedcheck": DEBUG,
            "embedsignature": True,
        },
    ),
)
