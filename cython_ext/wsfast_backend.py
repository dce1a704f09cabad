# SPDX-License-Identifier: MIT
"""In-tree PEP 517 backend: Cython first, then maturin for everything else.

maturin cannot compile Cython (PyO3/maturin#1081), so this module builds the Cython
extension in place (``setup.py build_ext --inplace`` writes ``python/wsfast/_cy*.so``)
and then delegates every hook to maturin, which packs the Rust extension, the Python
sources and the compiled Cython module into one wheel. A failed Cython build fails
the whole build: a silently slow wheel is worse than an error.

The Rust extension may use CPython's stable ABI (the crate's ``abi3`` feature), and
maturin then tags the wheel ``cp311-abi3``. The Cython module beside it is built for
one interpreter only, so the backend pins the tag back to that interpreter
(``cp312-cp312``): an abi3 tag would let pip install the wheel on a Python whose
``_cy`` is missing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
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


def _pin_interpreter_tag(wheel_directory: str, name: str) -> str:
    """Retag an abi3 wheel for this interpreter; returns the (new) file name."""
    dist, version, _python, abi, platform = name[: -len(".whl")].split("-")
    if abi != "abi3":
        return name
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    new_name = f"{dist}-{version}-{tag}-{tag}-{platform}.whl"
    old_path = os.path.join(wheel_directory, name)
    new_path = os.path.join(wheel_directory, new_name)
    with zipfile.ZipFile(old_path) as old, zipfile.ZipFile(new_path, "w") as new:
        infos = old.infolist()
        wheel_info = next(i for i in infos if i.filename.endswith(".dist-info/WHEEL"))
        lines = old.read(wheel_info).decode().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Tag: "):
                lines[i] = "Tag: " + "-".join([tag, tag, line.split("-", 2)[2]])
        wheel_text = ("\n".join(lines) + "\n").encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(wheel_text).digest()).rstrip(b"=")
        for info in infos:
            data = old.read(info)
            if info is wheel_info:
                data = wheel_text
            elif info.filename.endswith(".dist-info/RECORD"):
                # Only the WHEEL file changed: rewrite its hash and size in RECORD.
                record = [
                    f"{wheel_info.filename},sha256={digest.decode()},{len(wheel_text)}"
                    if row.startswith(wheel_info.filename + ",")
                    else row
                    for row in data.decode().splitlines()
                ]
                data = ("\n".join(record) + "\n").encode()
            new.writestr(info, data)
    os.remove(old_path)
    return new_name


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
    name = maturin.build_wheel(wheel_directory, config_settings, metadata_directory)
    return _pin_interpreter_tag(wheel_directory, name)


def build_editable(
    wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None
) -> str:
    _build_cython()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: Any = None) -> str:
    return maturin.build_sdist(sdist_directory, config_settings)
