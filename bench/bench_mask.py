# SPDX-License-Identifier: MIT
"""Masking: wsfast.apply_mask vs websockets.speedups.apply_mask (both return new bytes)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from websockets.speedups import apply_mask as ws_apply_mask

import wsfast
from wsfast import _reference

KEY = b"\x01\x02\x03\x04"
IMPLS: dict[str, Callable[[bytes, bytes], bytes]] = {
    "wsfast": wsfast.apply_mask,
    "websockets": ws_apply_mask,
}


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_mask(benchmark: pytest.FixtureDef, mask_payload: bytes, impl: str) -> None:  # type: ignore[type-arg]
    fn = IMPLS[impl]
    benchmark.group = f"mask {len(mask_payload)} B"
    result = benchmark(fn, mask_payload, KEY)
    benchmark.extra_info["correct"] = result == _reference.apply_mask(mask_payload[:4096], KEY) + (
        result[4096:] if len(mask_payload) > 4096 else b""
    ) and result == ws_apply_mask(mask_payload, KEY)
    assert benchmark.extra_info["correct"]
