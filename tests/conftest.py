# SPDX-License-Identifier: MIT
"""Shared fixtures: kernel backends for differential tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import wsfast
from wsfast import _reference

MASK_BACKENDS: dict[str, Callable[..., bytes]] = {
    "reference": _reference.apply_mask,
    "rust": wsfast.apply_mask,
}


@pytest.fixture(params=sorted(MASK_BACKENDS))
def mask_impl(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Each implementation of apply_mask(data, mask, offset)."""
    return MASK_BACKENDS[request.param]
