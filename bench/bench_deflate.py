# SPDX-License-Identifier: MIT
"""permessage-deflate: wsfast Deflater/Inflater vs Python's zlib at the same level.

Each round models one connection with context takeover: a compressor (or
decompressor) is created once and handles a stream of 100 different messages,
with the RFC 7692 framing rules (sync flush, strip or restore ``00 00 ff ff``).
"""

from __future__ import annotations

import zlib

import pytest
from conftest import json_like

import wsfast

LEVEL = 6
N = 100
STREAMS = {
    "1KiB json": [json_like(1024 + i) for i in range(N)],
    "16KiB json": [json_like(16384 + i) for i in range(N)],
}
TAIL = b"\x00\x00\xff\xff"


def zlib_compress(msgs: list[bytes]) -> list[bytes]:
    c = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    return [(c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH))[:-4] for m in msgs]


def zlib_decompress(msgs: list[bytes]) -> list[bytes]:
    d = zlib.decompressobj(-15)
    return [d.decompress(m + TAIL) for m in msgs]


def wsfast_compress(msgs: list[bytes]) -> list[bytes]:
    c = wsfast.Deflater(level=LEVEL)
    return [c.compress(m) for m in msgs]


def wsfast_decompress(msgs: list[bytes]) -> list[bytes]:
    d = wsfast.Inflater(max_size=1 << 24)
    return [d.decompress(m) for m in msgs]


@pytest.mark.parametrize("impl", ["wsfast", "zlib"])
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_deflate(benchmark: pytest.FixtureDef, name: str, impl: str) -> None:  # type: ignore[type-arg]
    msgs = STREAMS[name]
    benchmark.group = f"deflate {N} x {name}"
    fn = wsfast_compress if impl == "wsfast" else zlib_compress
    out = benchmark(fn, msgs)
    benchmark.extra_info["ratio"] = sum(map(len, out)) / sum(map(len, msgs))
    benchmark.extra_info["correct"] = zlib_decompress(out) == msgs
    assert benchmark.extra_info["correct"]


@pytest.mark.parametrize("impl", ["wsfast", "zlib"])
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_inflate(benchmark: pytest.FixtureDef, name: str, impl: str) -> None:  # type: ignore[type-arg]
    msgs = STREAMS[name]
    compressed = zlib_compress(msgs)
    benchmark.group = f"inflate {N} x {name}"
    fn = wsfast_decompress if impl == "wsfast" else zlib_decompress
    out = benchmark(fn, compressed)
    benchmark.extra_info["correct"] = out == msgs
    assert out == msgs
