# SPDX-License-Identifier: MIT
from __future__ import annotations

import pytest

import wsfast
from wsfast import _native


def test_backend_is_native_and_build_info_names_both_parts() -> None:
    assert wsfast.BACKEND == "native"
    assert wsfast.build_info["cython_glue"] == "cython"
    assert wsfast.build_info["capi_version"] == 6
    assert isinstance(wsfast.build_info["rust_core"], str)


def test_a_missing_native_part_fails_loudly_with_a_rebuild_hint() -> None:
    with pytest.raises(ImportError, match=r"wsfast\._nope.*missing or broken.*pip install"):
        _native._load("_nope", "imaginary")


def test_public_names_are_exported() -> None:
    for name in wsfast.__all__:
        assert hasattr(wsfast, name), name
