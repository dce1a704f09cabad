# SPDX-License-Identifier: MIT
from __future__ import annotations

import pytest

import wsfast

SAMPLES = [
    b"",
    b"plain ascii",
    "κόσμε".encode(),
    "𝄞 music ✓".encode(),
    b"\xc0\xaf",  # overlong
    b"\xed\xa0\x80",  # surrogate
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"ok\xe2\x82",  # truncated
    b"\xff",
    b"abc\x80def",
]


@pytest.mark.parametrize("data", SAMPLES)
def test_validate_utf8_agrees_with_python_decoder(data: bytes) -> None:
    try:
        data.decode("utf-8")
        expected = None
    except UnicodeDecodeError as exc:
        expected = exc.start
    assert wsfast.validate_utf8(data) == expected


def test_validator_accepts_a_sequence_split_at_every_point() -> None:
    text = "ok κόσμε 𝄞 ✓".encode()
    for split in range(len(text) + 1):
        v = wsfast.Utf8Validator()
        v.feed(text[:split])
        v.feed(text[split:])
        v.finish()


def test_validator_fails_at_the_first_bad_byte_before_more_data_arrives() -> None:
    v = wsfast.Utf8Validator()
    v.feed(b"hello ")
    with pytest.raises(wsfast.InvalidUTF8) as info:
        v.feed(b"\xf4\x90")  # cannot start any valid sequence continuation
    assert info.value.offset == 6  # type: ignore[attr-defined]


def test_validator_reports_offset_inside_a_carried_sequence() -> None:
    v = wsfast.Utf8Validator()
    v.feed(b"abc\xe2")
    with pytest.raises(wsfast.InvalidUTF8, match="byte 3"):
        v.feed(b"\x82x")


def test_validator_rejects_unfinished_sequence_at_finish() -> None:
    v = wsfast.Utf8Validator()
    v.feed(b"ok\xe2\x82")
    assert v.consumed == 4
    with pytest.raises(wsfast.InvalidUTF8):
        v.finish()
    # finish() resets: the validator is ready for the next message.
    v.feed(b"fine")
    v.finish()
