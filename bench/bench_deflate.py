# SPDX-License-Identifier: MIT
"""permessage-deflate: wsfast Deflater/Inflater vs Python's zlib at the same level."""

from __future__ import annotations

import zlib

import pytest
from conftest import json_like

import wsfast

LEVEL = 6
DATA = {"1KiB json": json_like(1024), "64KiB json": json_like(65536)}


def zlib_compress(data: bytes) -> bytes:
    c = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


def zlib_decompress(data: bytes) -> bytes:
    d = zlib.decompressobj(-15)
    return d.decompress(data + b"\x00\x00\xff\xff")


def wsfast_compress(data: bytes) -> bytes:
    return wsfast.Deflater(level=LEVEL).compress(data)  # type: ignore[attr-defined,no-any-return]


def wsfast_decompress(data: bytes) -> bytes:
    return wsfast.Inflater(max_size=1 << 24).decompress(data)  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("impl", ["wsfast", "zlib"])
@pytest.mark.parametrize("name", sorted(DATA))
def test_deflate(benchmark: pytest.FixtureDef, name: str, impl: str) -> None:  # type: ignore[type-arg]
    data = DATA[name]
    benchmark.group = f"deflate {name}"
    fn = wsfast_compress if impl == "wsfast" else zlib_compress
    out = benchmark(fn, data)
    benchmark.extra_info["ratio"] = len(out) / len(data)
    benchmark.extra_info["correct"] = zlib_decompress(out) == data
    assert benchmark.extra_info["correct"]


@pytest.mark.parametrize("impl", ["wsfast", "zlib"])
@pytest.mark.parametrize("name", sorted(DATA))
def test_inflate(benchmark: pytest.FixtureDef, name: str, impl: str) -> None:  # type: ignore[type-arg]
    data = DATA[name]
    compressed = zlib_compress(data)
    benchmark.group = f"inflate {name}"
    fn = wsfast_decompress if impl == "wsfast" else zlib_decompress
    out = benchmark(fn, compressed)
    benchmark.extra_info["correct"] = out == data
    assert out == data
