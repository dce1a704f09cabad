# SPDX-License-Identifier: MIT
from __future__ import annotations

from collections.abc import Callable

import pytest

import wsfast
from wsfast import _reference

KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def test_rfc6455_hello_is_masked_as_in_section_5_7(mask_impl: Callable[..., bytes]) -> None:
    assert mask_impl(b"Hello", KEY) == bytes([0x7F, 0x9F, 0x4D, 0x51, 0x58])


@pytest.mark.parametrize("offset", range(4))
@pytest.mark.parametrize("align", range(4))
def test_native_mask_matches_reference_for_lengths_0_to_64(offset: int, align: int) -> None:
    source = bytes(range(256))
    for length in range(65):
        data = memoryview(source)[align : align + length]
        expected = _reference.apply_mask(bytes(data), KEY, offset)
        assert wsfast.apply_mask(data, KEY, offset) == expected
        buf = bytearray(source)
        window = memoryview(buf)[align : align + length]
        wsfast.apply_mask_inplace(window, KEY, offset)
        assert bytes(window) == expected
        assert buf[:align] == source[:align]
        assert buf[align + length :] == source[align + length :]


def test_unmasking_in_pieces_with_offsets_equals_whole() -> None:
    data = bytes(range(200)) * 50
    whole = wsfast.apply_mask(data, KEY)
    buf = bytearray(data)
    view = memoryview(buf)
    for start in range(0, len(buf), 333):
        wsfast.apply_mask_inplace(view[start : start + 333], KEY, start)
    assert bytes(buf) == whole


def test_masking_large_buffer_twice_restores_it() -> None:
    data = bytes(range(256)) * 4096 + b"tail"
    assert wsfast.apply_mask(wsfast.apply_mask(data, KEY, 3), KEY, 3) == data


def test_inplace_mask_rejects_read_only_buffers() -> None:
    with pytest.raises(TypeError, match="read-only"):
        wsfast.apply_mask_inplace(memoryview(b"abcd"), KEY)


def test_mask_must_be_four_bytes() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        wsfast.apply_mask(b"data", b"abc")


def test_mask_rejects_non_buffers() -> None:
    with pytest.raises(TypeError, match="bytes-like"):
        wsfast.apply_mask("text", KEY)  # type: ignore[arg-type]
