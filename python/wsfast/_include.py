# SPDX-License-Identifier: MIT
"""Where the Cython handler API's declarations are (see ``wsfast/capi.pxd``)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["get_include"]


def get_include() -> str:
    """The directory to compile a Cython module that does ``cimport wsfast.capi``.

    Pass it both as a Cython include path and as a C include directory, e.g.
    ``cythonize(Extension(..., include_dirs=[wsfast.get_include()]),
    include_path=[wsfast.get_include()])``.

    Returns:
        The absolute path of the ``include`` directory shipped inside the package.

    Raises:
        FileNotFoundError: if the installation lacks it (a build without setup.py).
    """
    path = Path(__file__).resolve().parent / "include"
    if not (path / "wsfast" / "capi.pxd").is_file():
        raise FileNotFoundError(f"wsfast's Cython declarations are missing from {path}")
    return str(path)
