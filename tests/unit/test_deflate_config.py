# SPDX-License-Identifier: MIT
"""A DeflateConfig reaches a connection whole: each compressor setting shows on the wire.

Real ``Core`` objects (the Cython glue over the Rust C API) talk to each other in
memory: the server compresses one message, the client must decode it back, and the
size of what went over the wire tells which settings the server's compressor used.
"""

from __future__ import annotations

import random

import pytest

import wsfast
from wsfast import DeflateConfig, DeflateParams
from wsfast._native import cy, rust

# Both windows at 15 (no cap from the negotiation), context takeover.
PARAMS = DeflateParams()
MAX_SIZE = 1 << 22


def words(n: int, seed: int = 1) -> bytes:
    """About ``n`` bytes of text-like data: compressible, but not trivially."""
    rng = random.Random(seed)
    vocabulary = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(2000)
    ]
    out: list[str] = []
    size = 0
    while size < n:
        word = rng.choice(vocabulary)
        out.append(word)
        size += len(word) + 1
    return " ".join(out).encode()[:n]


def repeated_noise(period: int, copies: int, seed: int = 2) -> bytes:
    """Random bytes repeating every ``period`` bytes: only a window that reaches
    ``period`` bytes back compresses it."""
    return random.Random(seed).randbytes(period) * copies


def wire(message: bytes, **server_options: object) -> bytes:
    """What a server Core sends for ``message``, checked by a client Core."""
    server = cy.Core("server", max_size=MAX_SIZE, deflate=PARAMS, **server_options)
    client = cy.Core("client", max_size=MAX_SIZE, deflate=PARAMS)
    server.send_binary(message)
    out: bytes = server.data_to_send()
    assert out[0] == 0xC2, "one final, compressed (RSV1) binary frame"
    assert client.receive_data(out) == [(2, message)]
    return out


TEXT = words(256 * 1024)


def test_level_reaches_the_compressor() -> None:
    fast = wire(TEXT, deflate_config=DeflateConfig(level=1))
    best = wire(TEXT, deflate_config=DeflateConfig(level=9))
    assert len(best) < len(fast) * 0.9


def test_mem_level_reaches_the_compressor() -> None:
    # memLevel sizes the buffer of symbols per block: at 1, a block ends every 128
    # symbols, each starting with its own Huffman code tables.
    small = wire(TEXT, deflate_config=DeflateConfig(level=6, mem_level=1))
    large = wire(TEXT, deflate_config=DeflateConfig(level=6, mem_level=9))
    assert len(small) > len(large) * 1.1


def test_compress_window_bits_reaches_the_compressor() -> None:
    # Noise repeating every 8 KiB: a 32 KiB window (15 bits) finds every repeat, a
    # 512-byte one (9 bits) or the default 4 KiB one (12 bits) none.
    message = repeated_noise(8192, 8)
    wide = wire(message, deflate_config=DeflateConfig(level=6, compress_window_bits=15))
    default = wire(message, deflate_config=DeflateConfig(level=6))
    narrow = wire(message, deflate_config=DeflateConfig(level=6, compress_window_bits=9))
    assert len(wide) < len(message) / 4
    assert len(default) > len(message) * 0.9
    assert len(narrow) > len(message) * 0.9


def test_the_negotiated_window_still_caps_compress_window_bits() -> None:
    message = repeated_noise(8192, 8)
    params = DeflateParams(server_max_window_bits=10)
    server = cy.Core(
        "server", deflate=params, deflate_config=DeflateConfig(compress_window_bits=15)
    )
    client = cy.Core("client", deflate=params)
    server.send_binary(message)
    out = server.data_to_send()
    assert client.receive_data(out) == [(2, message)]
    assert len(out) > len(message) * 0.9


@pytest.mark.parametrize(
    "config",
    [
        DeflateConfig(),
        DeflateConfig(level=9),
        DeflateConfig(level=6, mem_level=1),
        DeflateConfig(level=6, compress_window_bits=15),
        DeflateConfig(level=0, mem_level=9, compress_window_bits=8),
    ],
    ids=lambda c: f"level={c.level}-mem_level={c.mem_level}-window={c.compress_window_bits}",
)
def test_core_and_pyo3_protocol_compress_alike_for_the_same_settings(
    config: DeflateConfig,
) -> None:
    message = TEXT[:65536] + repeated_noise(8192, 4)
    proto = wsfast.Protocol(
        "server",
        max_size=MAX_SIZE,
        deflate=PARAMS,
        compression_level=config.level,
        mem_level=config.mem_level,
        compress_window_bits=config.compress_window_bits,
    )
    proto.send_binary(message)
    assert wire(message, deflate_config=config) == b"".join(proto.data_to_send())


def test_default_compression_level_is_the_rust_constant() -> None:
    assert rust.DEFAULT_COMPRESSION_LEVEL == 1
    assert DeflateConfig().level == rust.DEFAULT_COMPRESSION_LEVEL
    default = wire(TEXT)
    assert default == wire(TEXT, compression_level=rust.DEFAULT_COMPRESSION_LEVEL)
    assert default != wire(TEXT, compression_level=6)
    # A DeflateConfig left at its defaults compresses as a Core left at its own.
    assert default == wire(TEXT, deflate_config=DeflateConfig())


def test_pyo3_protocol_defaults_to_the_rust_constant() -> None:
    def sent(**options: object) -> bytes:
        proto = wsfast.Protocol("server", deflate=PARAMS, **options)
        proto.send_binary(TEXT)
        return b"".join(proto.data_to_send())

    default = sent()
    assert default == sent(compression_level=rust.DEFAULT_COMPRESSION_LEVEL)
    assert default != sent(compression_level=6)


def test_compression_level_keyword_still_sets_the_level() -> None:
    assert wire(TEXT, compression_level=9) == wire(TEXT, deflate_config=DeflateConfig(level=9))


def test_core_refuses_a_level_and_a_config_together() -> None:
    with pytest.raises(TypeError, match="not both"):
        cy.Core("server", deflate_config=DeflateConfig(), compression_level=1)


@pytest.mark.parametrize("level", [-1, 10])
def test_core_refuses_out_of_range_levels(level: int) -> None:
    with pytest.raises(ValueError, match="compression_level"):
        cy.Core("server", compression_level=level)


@pytest.mark.parametrize(
    ("option", "value"),
    [("mem_level", 0), ("mem_level", 10), ("compress_window_bits", 7)],
)
def test_pyo3_protocol_refuses_out_of_range_compressor_settings(option: str, value: int) -> None:
    with pytest.raises(ValueError, match=option):
        wsfast.Protocol("server", **{option: value})
