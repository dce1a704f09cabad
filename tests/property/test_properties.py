# SPDX-License-Identifier: MIT
"""Property tests: round trips, masking involution, UTF-8 agreement, chunking."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import wsfast
from wsfast import Frame, Opcode, _reference
from wsfast._native import cy

keys = st.binary(min_size=4, max_size=4)


@given(st.binary(max_size=5000), keys, st.integers(min_value=0, max_value=5000))
def test_masking_is_an_involution_for_every_offset_split(data: bytes, key: bytes, at: int) -> None:
    at = min(at, len(data))
    buf = bytearray(data)
    view = memoryview(buf)
    wsfast.apply_mask_inplace(view[:at], key, 0)
    wsfast.apply_mask_inplace(view[at:], key, at)
    assert bytes(buf) == _reference.apply_mask(data, key)
    wsfast.apply_mask_inplace(buf, key)
    assert bytes(buf) == data


@given(st.binary(max_size=200), st.lists(st.integers(min_value=0, max_value=200), max_size=5))
def test_utf8_validator_agrees_with_python_at_arbitrary_split_points(
    data: bytes, cuts: list[int]
) -> None:
    try:
        data.decode("utf-8")
        expected = None
    except UnicodeDecodeError as exc:
        expected = exc.start
    points = [*sorted(min(c, len(data)) for c in cuts), len(data)]
    v = wsfast.Utf8Validator()
    got = None
    last = 0
    try:
        for p in points:
            v.feed(data[last:p])
            last = p
        v.finish()
    except wsfast.InvalidUTF8 as exc:
        got = exc.offset  # type: ignore[attr-defined]
    assert got == expected


@given(st.text(max_size=100).map(str.encode), st.binary(max_size=100))
def test_utf8_validator_agrees_on_mostly_valid_text(text: bytes, junk: bytes) -> None:
    data = text + junk + text
    try:
        data.decode("utf-8")
        expected = None
    except UnicodeDecodeError as exc:
        expected = exc.start
    assert wsfast.validate_utf8(data) == expected


@given(
    st.sampled_from([0, 1, 2, 8, 9, 10]),
    st.binary(max_size=70_000),
    st.booleans(),
    st.booleans(),
    st.one_of(st.none(), keys),
)
@settings(max_examples=60)
def test_parse_inverts_serialize(
    opcode: int, payload: bytes, fin: bool, rsv1: bool, mask: bytes | None
) -> None:
    if opcode >= 8:  # control frames: unfragmented, at most 125 bytes, no RSV1
        fin, rsv1, payload = True, False, payload[:125]
    frame = Frame(opcode, payload, fin=fin, rsv1=rsv1)
    wire = frame.serialize(mask)
    assert wire == _reference.serialize_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask)
    assert Frame.parse(wire, rsv1_allowed=rsv1 and opcode < 8) == (frame, len(wire))


messages = st.lists(
    st.one_of(st.text(max_size=300), st.binary(max_size=300)), min_size=1, max_size=10
)


@given(messages, st.lists(st.integers(min_value=0, max_value=10_000), max_size=10), keys)
def test_any_chunking_of_the_input_gives_the_same_events(
    msgs: list[str | bytes], cuts: list[int], key: bytes
) -> None:
    wire = b""
    for m in msgs:
        if isinstance(m, str):
            wire += _reference.serialize_frame(Opcode.TEXT, m.encode(), mask=key)
        else:
            wire += _reference.serialize_frame(Opcode.BINARY, m, mask=key)
    points = [*sorted(min(c, len(wire)) for c in cuts), len(wire)]
    core = cy.Core("server")
    got: list[object] = []
    last = 0
    for p in points:
        got += [payload for _, payload in core.receive_data(wire[last:p])]
        last = p
    assert got == msgs
