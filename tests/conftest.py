# SPDX-License-Identifier: MIT
"""Shared fixtures: kernel backends for differential tests."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import wsfast
from wsfast import _reference

from .certs import self_signed_certificate

# No per-example deadline: on a busy 2-core CI box one slow example is load, not a
# bug, and Hypothesis would report it as a failure (then replay it as "flaky").
settings.register_profile("wsfast", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("wsfast")

MASK_BACKENDS: dict[str, Callable[..., bytes]] = {
    "reference": _reference.apply_mask,
    "rust": wsfast.apply_mask,
}


@pytest.fixture(params=sorted(MASK_BACKENDS))
def mask_impl(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Each implementation of apply_mask(data, mask, offset)."""
    return MASK_BACKENDS[request.param]


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made at test time."""
    return self_signed_certificate(
        tmp_path_factory.mktemp("tls"),
        common_name="wsfast test",
        not_before=-datetime.timedelta(minutes=5),
        not_after=datetime.timedelta(hours=1),
        dns_names=("localhost",),
        stem="cert",
    )
