# SPDX-License-Identifier: MIT
"""Builds the example Cython handlers against the installed wsfast.

``python setup.py build_ext --inplace`` writes ``handlers.*.so`` here.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

import wsfast

INCLUDE = wsfast.get_include()

setup(
    name="wsfast-cython-handler-example",
    ext_modules=cythonize(
        # The C include dir too: the declarations reference wsfast's C header.
        [Extension("handlers", ["handlers.pyx"], include_dirs=[INCLUDE])],
        include_path=[INCLUDE],
        language_level=3,
    ),
)
