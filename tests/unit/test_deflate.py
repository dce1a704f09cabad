# SPDX-License-Identifier: MIT
"""permessage-deflate (RFC 7692) through the Python API of the Rust core."""

from __future__ import annotations

import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsfast._native import rust
from wsfast.exceptions import InvalidRequest, NegotiationError, PayloadTooBig, ProtocolError

DeflateConfig = rust.DeflateConfig
DeflateParams = rust.DeflateParams
Deflater = rust.Deflater
Inflater = rust.Inflater

TAIL = b"\x00\x00\xff\xff"
HELLO = b"Hello"
HELLO_COMPRESSED = bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
TEXT = b"The quick brown fox jumps over the lazy dog. " * 200


def zlib_compress(compressor: zlib._Compress, data: bytes) -> bytes:
    """What websockets and most peers send: sync flush, tail stripped."""
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def zlib_decompress(decompressor: zlib._Decompress, payload: bytes) -> bytes:
    return decompressor.decompress(payload + TAIL)


# RFC 7692 section 7.2.3 examples.


def test_hello_compresses_as_in_rfc_7692_7_2_3_1() -> None:
    assert Deflater().compress(HELLO) == HELLO_COMPRESSED


def test_hello_decompresses_as_in_rfc_7692_7_2_3_1() -> None:
    assert Inflater().decompress(HELLO_COMPRESSED) == HELLO


def test_fragmented_hello_decompresses_as_in_rfc_7692_7_2_3_1() -> None:
    inflater = Inflater()
    first = inflater.decompress(bytes([0xF2, 0x48, 0xCD]), fin=False)
    last = inflater.decompress(bytes([0xC9, 0xC9, 0x07, 0x00]))
    assert first + last == HELLO


def test_second_hello_reuses_the_window_as_in_rfc_7692_7_2_3_2() -> None:
    # The RFC's bytes come from zlib's default level; level 1 encodes it otherwise.
    deflater, inflater = Deflater(level=6), Inflater()
    assert deflater.compress(HELLO) == HELLO_COMPRESSED
    second = deflater.compress(HELLO)
    assert second == bytes([0xF2, 0x00, 0x11, 0x00, 0x00])
    assert inflater.decompress(HELLO_COMPRESSED) == HELLO
    assert inflater.decompress(second) == HELLO


def test_stored_block_decompresses_as_in_rfc_7692_7_2_3_3() -> None:
    payload = bytes([0x00, 0x05, 0x00, 0xFA, 0xFF]) + HELLO + b"\x00"
    assert Inflater().decompress(payload) == HELLO
    assert Deflater(level=0).compress(HELLO) == payload


def test_bfinal_block_decompresses_as_in_rfc_7692_7_2_3_4() -> None:
    inflater = Inflater()
    payload = bytes([0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00])
    assert inflater.decompress(payload) == HELLO
    assert inflater.decompress(HELLO_COMPRESSED) == HELLO


def test_two_blocks_decompress_as_in_rfc_7692_7_2_3_5() -> None:
    payload = bytes([0xF2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xCA, 0xC9, 0xC9, 0x07, 0x00])
    assert Inflater().decompress(payload) == HELLO


def test_empty_message_compresses_to_one_zero_byte_as_in_rfc_7692_7_2_3_6() -> None:
    deflater, inflater = Deflater(), Inflater()
    for _ in range(3):
        payload = deflater.compress(b"")
        assert payload == b"\x00"
        assert inflater.decompress(payload) == b""


# Differential tests against Python's zlib (raw deflate, wbits=-15).


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_deflater_output_inflates_with_zlib(level: int) -> None:
    deflater = Deflater(level=level)
    decompressor = zlib.decompressobj(wbits=-15)
    for message in [TEXT, b"", HELLO, TEXT[::-1], bytes(range(256)) * 40]:
        assert zlib_decompress(decompressor, deflater.compress(message)) == message


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_inflater_reads_zlib_output(level: int) -> None:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    inflater = Inflater()
    for message in [TEXT, b"", HELLO, TEXT[::-1], bytes(range(256)) * 40]:
        assert inflater.decompress(zlib_compress(compressor, message)) == message


@pytest.mark.parametrize("level", [6, 9])
def test_deflater_compresses_about_as_well_as_zlib_at_the_same_level(level: int) -> None:
    # zlib-rs is not byte-for-byte zlib, but its default levels compress as well.
    data = json.dumps(
        [{"id": i, "name": f"user{i}", "score": i * 7919 % 1000 / 7} for i in range(500)]
    ).encode()
    ours = len(Deflater(level=level).compress(data))
    theirs = len(zlib_compress(zlib.compressobj(level, zlib.DEFLATED, -15), data))
    assert ours <= theirs * 1.1


def test_deflater_fragments_inflate_with_zlib_one_by_one() -> None:
    deflater = Deflater(side="client")
    decompressor = zlib.decompressobj(wbits=-15)
    pieces = [TEXT[:1000], TEXT[1000:1001], b"", TEXT[1001:]]
    received = b""
    for i, piece in enumerate(pieces):
        payload = deflater.compress(piece, fin=i == len(pieces) - 1)
        received += decompressor.decompress(payload)
    received += decompressor.decompress(TAIL)
    assert received == TEXT


def test_inflater_reads_zlib_fragments_split_anywhere() -> None:
    payload = zlib_compress(zlib.compressobj(9, zlib.DEFLATED, -15), TEXT)
    inflater = Inflater(side="client")
    received = b""
    for start in range(0, len(payload), 7):
        received += inflater.decompress(payload[start : start + 7], fin=False)
    received += inflater.decompress(b"", fin=True)
    assert received == TEXT


def test_server_no_context_takeover_resets_the_server_deflater_only() -> None:
    params = DeflateParams(server_no_context_takeover=True)
    server = Deflater(params, side="server")
    assert server.compress(HELLO) == server.compress(HELLO) == HELLO_COMPRESSED
    client = Deflater(params, side="client")
    assert client.compress(HELLO) == HELLO_COMPRESSED
    assert client.compress(HELLO) != HELLO_COMPRESSED


def test_no_context_takeover_output_inflates_with_a_fresh_zlib_each_time() -> None:
    deflater = Deflater(DeflateParams(client_no_context_takeover=True), side="client")
    for _ in range(3):
        assert zlib_decompress(zlib.decompressobj(wbits=-15), deflater.compress(TEXT)) == TEXT


def test_window_8_output_inflates_with_an_8_bit_zlib_window() -> None:
    deflater = Deflater(DeflateParams(server_max_window_bits=8), side="server", level=9)
    decompressor = zlib.decompressobj(wbits=-8)
    for _ in range(2):
        assert zlib_decompress(decompressor, deflater.compress(TEXT)) == TEXT


def test_small_window_output_inflates_with_that_zlib_window() -> None:
    params = DeflateParams(client_max_window_bits=9)
    deflater = Deflater(params, side="client", level=9)
    decompressor = zlib.decompressobj(wbits=-9)
    data = bytes(range(256)) * 8 + TEXT
    assert zlib_decompress(decompressor, deflater.compress(data)) == data
    assert Inflater(params, side="server").decompress(deflater.compress(data)) == data


@settings(max_examples=50, deadline=None)
@given(
    messages=st.lists(
        st.binary(max_size=3000) | st.text(max_size=1000).map(str.encode), max_size=5
    ),
    level=st.integers(0, 9),
    cuts=st.lists(st.integers(0, 3000), max_size=3),
)
def test_round_trip_with_zlib_both_ways_for_any_data(
    messages: list[bytes], level: int, cuts: list[int]
) -> None:
    deflater, inflater = Deflater(level=level), Inflater()
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    decompressor = zlib.decompressobj(wbits=-15)
    for message in messages:
        assert zlib_decompress(decompressor, deflater.compress(message)) == message
        payload = zlib_compress(compressor, message)
        points = sorted({min(cut, len(payload)) for cut in cuts})
        pieces = [payload[a:b] for a, b in zip([0, *points], [*points, len(payload)], strict=True)]
        received = b"".join(inflater.decompress(piece, fin=False) for piece in pieces)
        assert received + inflater.decompress(b"") == message


# Limits and errors.


def test_decompression_bomb_raises_payload_too_big() -> None:
    bomb = zlib_compress(zlib.compressobj(9, zlib.DEFLATED, -15), bytes(50_000_000))
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooBig, match="exceeds limit of 1048576 bytes"):
        Inflater(max_size=1 << 20).decompress(bomb)


def test_message_exactly_at_max_size_is_accepted() -> None:
    payload = Deflater().compress(bytes(1000))
    assert Inflater(max_size=1000).decompress(payload) == bytes(1000)
    with pytest.raises(PayloadTooBig):
        Inflater(max_size=999).decompress(payload)


def test_max_size_counts_every_fragment_of_a_message() -> None:
    deflater = Deflater()
    inflater = Inflater(max_size=1500)
    assert inflater.decompress(deflater.compress(bytes(1000), fin=False), fin=False) == bytes(1000)
    with pytest.raises(PayloadTooBig):
        inflater.decompress(deflater.compress(bytes(1000)))


def test_max_size_applies_per_message() -> None:
    deflater, inflater = Deflater(), Inflater(max_size=1000)
    for _ in range(3):
        assert inflater.decompress(deflater.compress(bytes(1000))) == bytes(1000)


def test_max_size_none_means_no_limit() -> None:
    data = bytes(3_000_000)
    assert Inflater(max_size=None).decompress(Deflater().compress(data)) == data


def test_corrupt_data_raises_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="invalid compressed data"):
        Inflater().decompress(b"\xff\xff\xff")


def test_inflater_accepts_any_bytes_like_object() -> None:
    assert Inflater().decompress(bytearray(HELLO_COMPRESSED)) == HELLO
    assert Inflater().decompress(memoryview(b"xx" + HELLO_COMPRESSED)[2:]) == HELLO
    assert Deflater().compress(memoryview(HELLO)) == HELLO_COMPRESSED


def test_deflater_and_inflater_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="side"):
        Deflater(side="peer")
    with pytest.raises(ValueError, match="side"):
        Inflater(side="peer")
    with pytest.raises(ValueError, match="level"):
        Deflater(level=10)
    with pytest.raises(TypeError):
        Deflater().compress("text")


# DeflateParams and DeflateConfig.


def test_deflate_params_default_to_rfc_defaults() -> None:
    params = DeflateParams()
    assert params.server_no_context_takeover is False
    assert params.client_no_context_takeover is False
    assert params.server_max_window_bits is None
    assert params.client_max_window_bits is None
    assert params.to_header_value() == "permessage-deflate"


def test_deflate_params_format_every_parameter() -> None:
    params = DeflateParams(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=12,
        client_max_window_bits=10,
    )
    assert params.to_header_value() == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=12; client_max_window_bits=10"
    )
    assert repr(params) == (
        "DeflateParams(server_no_context_takeover=True, client_no_context_takeover=True, "
        "server_max_window_bits=12, client_max_window_bits=10)"
    )


def test_deflate_params_compare_and_hash_by_value() -> None:
    assert DeflateParams(server_max_window_bits=9) == DeflateParams(server_max_window_bits=9)
    assert DeflateParams(server_max_window_bits=9) != DeflateParams()
    assert len({DeflateParams(), DeflateParams()}) == 1


def test_deflate_params_are_immutable_and_keyword_only() -> None:
    params = DeflateParams()
    with pytest.raises(AttributeError):
        params.server_max_window_bits = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        DeflateParams(True)  # type: ignore[misc]


@pytest.mark.parametrize("bits", [7, 16, 0])
def test_deflate_params_reject_window_bits_out_of_range(bits: int) -> None:
    with pytest.raises(ValueError, match="between 8 and 15"):
        DeflateParams(server_max_window_bits=bits)
    with pytest.raises(ValueError, match="between 8 and 15"):
        DeflateConfig(client_max_window_bits=bits)


def test_deflate_config_has_sane_defaults() -> None:
    config = DeflateConfig()
    assert config.level == 1
    assert config.mem_level == 5
    assert config.compress_window_bits == 12
    assert config.server_max_window_bits is None
    assert config.client_max_window_bits is None
    assert not config.server_no_context_takeover
    assert not config.client_no_context_takeover
    assert config == DeflateConfig()
    assert "level=1, mem_level=5, compress_window_bits=12" in repr(config)
    assert config.compressor_idle == 5.0
    assert repr(config).endswith("compressor_idle=5.0)")


@pytest.mark.parametrize("idle", [None, 0, 0.0, 0.25, 3, 3600.0])
def test_deflate_config_takes_compressor_idle_seconds_or_none(idle: float | None) -> None:
    config = DeflateConfig(compressor_idle=idle)
    assert config.compressor_idle == idle
    assert f"compressor_idle={idle if idle is None else float(idle)!r})" in repr(config)
    assert config == DeflateConfig(compressor_idle=idle)
    assert config != DeflateConfig(compressor_idle=7)


@pytest.mark.parametrize("idle", ["1", b"1", [1.0]])
def test_deflate_config_rejects_compressor_idle_of_wrong_type(idle: object) -> None:
    with pytest.raises(TypeError, match="compressor_idle"):
        DeflateConfig(compressor_idle=idle)  # type: ignore[arg-type]


@pytest.mark.parametrize("idle", [-1, -0.001, float("nan"), float("inf")])
def test_deflate_config_rejects_compressor_idle_out_of_range(idle: float) -> None:
    with pytest.raises(ValueError, match="compressor_idle"):
        DeflateConfig(compressor_idle=idle)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mem_level": 0},
        {"mem_level": 10},
        {"compress_window_bits": 7},
        {"compress_window_bits": 16},
    ],
)
def test_deflate_config_rejects_bad_compressor_settings(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DeflateConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"mem_level": 0}, {"mem_level": 10}, {"window_bits": 16}])
def test_deflater_rejects_bad_settings(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Deflater(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("level", [1, 6])
@pytest.mark.parametrize("mem_level", [1, 5, 8, 9])
@pytest.mark.parametrize("window_bits", [9, 12, 15])
def test_deflater_settings_output_inflates_with_zlib(
    level: int, mem_level: int, window_bits: int
) -> None:
    deflater = Deflater(level=level, mem_level=mem_level, window_bits=window_bits)
    inflater = zlib.decompressobj(-window_bits)
    for i in range(5):
        data = json.dumps([{"id": i * 100 + j, "p": j * 7.31} for j in range(60)]).encode()
        assert inflater.decompress(deflater.compress(data) + TAIL) == data


def test_deflate_config_rejects_bad_level() -> None:
    with pytest.raises(ValueError, match="level"):
        DeflateConfig(level=10)


# Negotiation (RFC 7692 section 7.1).


def test_server_accepts_a_browser_offer() -> None:
    offer = ["permessage-deflate; client_max_window_bits"]
    assert rust.negotiate_deflate(offer, DeflateConfig()) == (DeflateParams(), "permessage-deflate")


def test_server_caps_the_client_window_when_offered() -> None:
    offer = ["permessage-deflate; client_max_window_bits"]
    params, header = rust.negotiate_deflate(offer, DeflateConfig(client_max_window_bits=10))
    assert params == DeflateParams(client_max_window_bits=10)
    assert header == "permessage-deflate; client_max_window_bits=10"


def test_server_declines_an_offer_that_cannot_cap_the_client_window() -> None:
    assert (
        rust.negotiate_deflate(["permessage-deflate"], DeflateConfig(client_max_window_bits=10))
        is None
    )


def test_server_honours_requested_server_parameters() -> None:
    offer = ["permessage-deflate; server_no_context_takeover; server_max_window_bits=9"]
    params, header = rust.negotiate_deflate(offer, DeflateConfig(server_max_window_bits=12))
    assert params == DeflateParams(server_no_context_takeover=True, server_max_window_bits=9)
    assert header == "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"


def test_server_falls_back_to_the_next_offer_after_a_malformed_one() -> None:
    offers = [
        "permessage-deflate; server_max_window_bits=16, permessage-deflate; foo",
        "permessage-deflate",
    ]
    assert rust.negotiate_deflate(offers, DeflateConfig()) == (
        DeflateParams(),
        "permessage-deflate",
    )


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; unknown",
        "x-webkit-deflate-frame",
    ],
)
def test_server_declines_unacceptable_offers(offer: str) -> None:
    assert rust.negotiate_deflate([offer], DeflateConfig()) is None


def test_server_accepts_quoted_window_bits() -> None:
    offer = ['permessage-deflate; client_max_window_bits="10"']
    params, _ = rust.negotiate_deflate(offer, DeflateConfig())
    assert params.client_max_window_bits == 10


def test_server_rejects_malformed_extension_header_with_400() -> None:
    with pytest.raises(InvalidRequest) as exc_info:
        rust.negotiate_deflate(["permessage-deflate;;"], DeflateConfig())
    assert exc_info.value.status == 400


def test_client_offers_its_configuration() -> None:
    assert rust.deflate_offer(DeflateConfig()) == "permessage-deflate; client_max_window_bits"
    config = DeflateConfig(
        server_no_context_takeover=True, server_max_window_bits=10, client_max_window_bits=9
    )
    assert rust.deflate_offer(config) == (
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; "
        "client_max_window_bits=9"
    )


def test_client_accepts_what_the_server_negotiated() -> None:
    config = DeflateConfig(client_no_context_takeover=True, server_max_window_bits=11)
    server_params, header = rust.negotiate_deflate([rust.deflate_offer(config)], DeflateConfig())
    client_params = rust.accept_deflate_response([header], config)
    assert client_params == server_params
    assert client_params == DeflateParams(
        client_no_context_takeover=True, server_max_window_bits=11
    )


def test_client_gets_none_when_the_server_accepts_no_compression() -> None:
    assert rust.accept_deflate_response([], DeflateConfig()) is None
    assert rust.accept_deflate_response(["x-other"], DeflateConfig()) is None


@pytest.mark.parametrize(
    ("config", "response"),
    [
        (DeflateConfig(), "permessage-deflate; client_max_window_bits"),
        (DeflateConfig(), "permessage-deflate; server_max_window_bits=16"),
        (DeflateConfig(), "permessage-deflate; mux"),
        (
            DeflateConfig(),
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        ),
        (DeflateConfig(), "permessage-deflate, permessage-deflate"),
        (DeflateConfig(), "permessage-deflate;"),
        (DeflateConfig(server_no_context_takeover=True), "permessage-deflate"),
        (DeflateConfig(server_max_window_bits=10), "permessage-deflate"),
        (DeflateConfig(server_max_window_bits=10), "permessage-deflate; server_max_window_bits=11"),
        (DeflateConfig(client_max_window_bits=10), "permessage-deflate; client_max_window_bits=11"),
    ],
)
def test_client_rejects_responses_that_break_rfc_7692(config: DeflateConfig, response: str) -> None:
    with pytest.raises(NegotiationError):
        rust.accept_deflate_response([response], config)


def test_negotiated_params_drive_a_working_pair() -> None:
    config = DeflateConfig(client_max_window_bits=9, server_no_context_takeover=True)
    params, _ = rust.negotiate_deflate(["permessage-deflate; client_max_window_bits"], config)
    client, server = Deflater(params, side="client"), Inflater(params, side="server")
    for _ in range(3):
        assert server.decompress(client.compress(TEXT)) == TEXT
    server_out, client_in = Deflater(params, side="server"), Inflater(params, side="client")
    for _ in range(3):
        assert client_in.decompress(server_out.compress(TEXT)) == TEXT
