# SPDX-License-Identifier: MIT
"""The in-tree build backend pins an abi3 wheel to the interpreter its Cython module is for."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import sys
import types
import zipfile
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[2] / "cython_ext" / "wsfast_backend.py"
TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"
PLATFORM = "manylinux_2_17_x86_64.manylinux2014_x86_64"


@pytest.fixture(scope="module")
def backend() -> types.ModuleType:
    # The backend imports maturin at module level to delegate its hooks; the retagging
    # helper never calls it, and the dev venv has maturin only inside pip's build env.
    saved = sys.modules.get("maturin")
    sys.modules.setdefault("maturin", types.ModuleType("maturin"))
    try:
        spec = importlib.util.spec_from_file_location("wsfast_backend", BACKEND)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["maturin"]
    return module


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(directory: Path, abi: str) -> str:
    name = f"wsfast-1.2.3-cp311-{abi}-{PLATFORM}.whl"
    wheel_text = (
        "Wheel-Version: 1.0\nGenerator: maturin\nRoot-Is-Purelib: false\n"
        + "".join(f"Tag: cp311-{abi}-{p}\n" for p in PLATFORM.split("."))
    ).encode()
    so = b"\x7fELF not really"
    record = (
        f"wsfast/_rust.abi3.so,{record_hash(so)},{len(so)}\n"
        f"wsfast-1.2.3.dist-info/WHEEL,{record_hash(wheel_text)},{len(wheel_text)}\n"
        "wsfast-1.2.3.dist-info/RECORD,,\n"
    )
    with zipfile.ZipFile(directory / name, "w") as wheel:
        wheel.writestr("wsfast/_rust.abi3.so", so)
        wheel.writestr("wsfast-1.2.3.dist-info/WHEEL", wheel_text)
        wheel.writestr("wsfast-1.2.3.dist-info/RECORD", record)
    return name


def test_abi3_wheel_is_retagged_for_this_interpreter(
    backend: types.ModuleType, tmp_path: Path
) -> None:
    name = make_wheel(tmp_path, "abi3")
    new_name = backend._pin_interpreter_tag(str(tmp_path), name)
    assert new_name == f"wsfast-1.2.3-{TAG}-{TAG}-{PLATFORM}.whl"
    assert [p.name for p in tmp_path.iterdir()] == [new_name]
    with zipfile.ZipFile(tmp_path / new_name) as wheel:
        wheel_text = wheel.read("wsfast-1.2.3.dist-info/WHEEL")
        record = wheel.read("wsfast-1.2.3.dist-info/RECORD").decode().splitlines()
        assert wheel.read("wsfast/_rust.abi3.so") == b"\x7fELF not really"
    tags = [line[5:] for line in wheel_text.decode().splitlines() if line.startswith("Tag: ")]
    assert tags == [f"{TAG}-{TAG}-{p}" for p in PLATFORM.split(".")]
    row = f"wsfast-1.2.3.dist-info/WHEEL,{record_hash(wheel_text)},{len(wheel_text)}"
    assert row in record
    assert record[0].startswith("wsfast/_rust.abi3.so,sha256=")


def test_interpreter_specific_wheel_is_left_alone(
    backend: types.ModuleType, tmp_path: Path
) -> None:
    name = make_wheel(tmp_path, "cp311")
    before = (tmp_path / name).read_bytes()
    assert backend._pin_interpreter_tag(str(tmp_path), name) == name
    assert (tmp_path / name).read_bytes() == before
