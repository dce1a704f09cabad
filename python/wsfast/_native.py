# SPDX-License-Identifier: MIT
"""The only module that imports the native extensions.

wsfast never falls back to slow pure-Python code: if either extension is missing
the import fails here, naming the part and how to rebuild it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = ["BACKEND", "build_info", "cy", "rust"]


def _load(name: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(f"wsfast.{name}")
    except ImportError as exc:
        raise ImportError(
            f"wsfast's {what} extension (wsfast.{name}) is missing or broken: {exc}. "
            "Reinstall wsfast from a wheel, or rebuild it with `pip install .` "
            "(needs a Rust toolchain and a C compiler)."
        ) from exc


if TYPE_CHECKING:
    # The type checker sees the stubs (_rust.pyi, _cy.pyi), so every use of the
    # native modules is checked against them.
    from wsfast import _cy as cy
    from wsfast import _rust as rust
else:
    rust = _load("_rust", "Rust protocol core")
    cy = _load("_cy", "Cython glue")

#: Which implementation runs: always "native" (Rust core + Cython glue).
BACKEND = "native"

#: Versions and ABI of the native parts, for bug reports.
build_info: dict[str, object] = {
    "rust_core": rust.__version__,
    "capi_version": rust.CAPI_VERSION,
    "cython_glue": cy.BUILD,
}
