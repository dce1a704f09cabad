# SPDX-License-Identifier: MIT
"""In-tree PEP 517 backend: Cython first, then maturin for everything else.

maturin cannot compile Cython (PyO3/maturin#1081), so this module builds the Cython
extension in place (``setup.py build_ext --inplace`` writes ``python/wsfast/_cy*.so``)
and then delegates every hook to maturin, which packs the Rust extension, the Python
sources and the compiled Cython module into one wheel. A failed Cython build fails
the whole build: a silently slow wheel is worse than an error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import maturin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CYTHON_REQUIRES = ["cython>=3.1,<4", "setuptools>=70"]


def _build_cython() -> None:
    subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace", "--force"],
        cwd=ROOT,
        check=True,
    )


def get_requires_for_build_wheel(config_settings: Any = None) -> list[str]:
    return [*maturin.get_requires_for_build_wheel(config_settings), *_CYTHON_REQUIRES]


def get_requires_for_build_editable(config_settings: Any = None) -> list[str]:
    return [*maturin.get_requires_for_build_editable(config_settings), *_CYTHON_REQUIRES]


def get_requires_for_build_sdist(config_settings: Any = None) -> list[str]:
    return maturin.get_requires_for_build_sdist(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Any = None) -> str:
    return maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: Any = None
) -> str:
    return maturin.prepare_metadata_for_build_editable(metadata_directory, config_settings)


def build_wheel(
    wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None
) -> str:
    _build_cython()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(
    wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None
) -> str:
    _build_cython()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: Any = None) -> str:
    return maturin.build_sdist(sdist_directory, config_settings)
