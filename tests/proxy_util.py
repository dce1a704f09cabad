# SPDX-License-Identifier: MIT
"""A proxy-free environment for the proxy tests, unit and integration alike."""

from __future__ import annotations

import pytest

# Every variable proxy="auto" may read, in both spellings urllib honours.
PROXY_VARIABLES = [
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every proxy variable, so the machine's settings cannot leak into a test."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
