# SPDX-License-Identifier: MIT
"""UTF-8 validation: wsfast.validate_utf8 vs bytes.decode('utf-8')."""

from __future__ import annotations

import pytest
from conftest import ascii_text, mixed_text

import wsfast

CORPUS = {"mixed": mixed_text(65536), "ascii": ascii_text(65536)}


def _decode(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _validate(data: bytes) -> bool:
    return wsfast.validate_utf8(data) is None


@pytest.mark.parametrize("impl", ["wsfast", "bytes.decode"])
@pytest.mark.parametrize("kind", sorted(CORPUS))
def test_utf8(benchmark: pytest.FixtureDef, kind: str, impl: str) -> None:  # type: ignore[type-arg]
    data = CORPUS[kind]
    benchmark.group = f"utf8 {kind} 64 KiB"
    fn = _validate if impl == "wsfast" else _decode
    result = benchmark(fn, data)
    benchmark.extra_info["correct"] = result is True
    assert result
