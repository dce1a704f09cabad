# SPDX-License-Identifier: MIT
"""Payload corpus for the micro-benchmarks (deterministic: seeded RNG)."""

from __future__ import annotations

import json
import random

import pytest

SIZES = {"64B": 64, "1KiB": 1024, "64KiB": 65536, "1MiB": 1 << 20}


def ascii_text(n: int) -> bytes:
    rng = random.Random(n)
    return bytes(rng.choice(b'abcdefghijklmnopqrstuvwxyz0123456789 ,.{}:"') for _ in range(n))


def mixed_text(n: int) -> bytes:
    """Mixed non-ASCII text: Latin-1 supplement, Greek, CJK and emoji among ASCII."""
    rng = random.Random(n + 1)
    alphabet = "abc xyz éüñ κόσμε 日本語 ✓ 𝄞 012"
    out = "".join(rng.choice(alphabet) for _ in range(n))
    data = out.encode()
    # Trim to n bytes without cutting a character.
    return data[:n].decode("utf-8", "ignore").encode()


def json_like(n: int) -> bytes:
    """Compressible market-data-like JSON with varying numbers."""
    rng = random.Random(n + 2)
    items = []
    size = 0
    while size < n:
        item = json.dumps(
            {
                "e": "trade",
                "s": rng.choice(["BTCUSDT", "ETHUSDT", "SOLUSDT"]),
                "p": f"{rng.uniform(10, 70000):.2f}",
                "q": f"{rng.uniform(0, 5):.5f}",
                "t": rng.randrange(10**12, 10**13),
            }
        )
        items.append(item)
        size += len(item) + 1
    return ("[" + ",".join(items) + "]").encode()[:n]


@pytest.fixture(params=["1KiB", "1MiB"])
def mask_payload(request: pytest.FixtureRequest) -> bytes:
    return random.Random(7).randbytes(SIZES[request.param])
