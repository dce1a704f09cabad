# SPDX-License-Identifier: MIT
"""Checks of the conformance suite itself: the case table, the codec and the verdicts.

A suite that cannot fail proves nothing, so these tests feed :func:`check` and the
tester's inflater wrong answers and expect them to be rejected, and cross-check the
hand-written frame codec against ``wsfast.Frame``.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from pathlib import Path

import pytest

import wsfast
from tests.conformance.cases import (
    BY_ID,
    CASES,
    CATEGORIES,
    INVALID_CODES,
    VALID_CODES,
    Deflate,
    Msg,
    Pong,
)
from tests.conformance.wire import (
    TAIL,
    Agreement,
    Inflater,
    Observed,
    bomb_stream,
    check,
    check_response,
    encode_frame,
    xor_mask,
)

README = Path(__file__).with_name("README.md")


def _good_close(code: int) -> bytes:
    return bytes([0x88, 2]) + code.to_bytes(2, "big")


def test_case_ids_are_unique_and_categorised() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert {case.category for case in CASES} == set(CATEGORIES)
    for case in CASES:
        assert re.fullmatch(r"\d+(\.\d+)+", case.id), case.id
        assert case.rfc.startswith("RFC "), case.id
        assert case.description and case.expect.label


def test_every_close_code_is_covered() -> None:
    echoed = {c.send[0].payload[:2] for c in CASES if c.id.startswith("7.3.")}  # type: ignore[union-attr]
    failed = {c.send[0].payload[:2] for c in CASES if c.id.startswith("7.4.")}  # type: ignore[union-attr]
    assert echoed == {code.to_bytes(2, "big") for code in VALID_CODES}
    assert failed == {code.to_bytes(2, "big") for code in INVALID_CODES}
    for code in VALID_CODES:
        assert wsfast.frames.is_valid_close_code(code)
    for code in INVALID_CODES:
        assert not wsfast.frames.is_valid_close_code(code)


def test_readme_table_matches_the_case_table() -> None:
    counts = Counter(case.category for case in CASES)
    text = README.read_text()
    for category, name in CATEGORIES.items():
        row = re.search(rf"^\| {re.escape(category)} \| {re.escape(name)} \| (\d+) \|", text, re.M)
        assert row, f"README lacks a row for category {category}"
        assert int(row.group(1)) == counts[category], f"category {category}"
    total = re.search(r"^\| \| \*\*total\*\* \| \*\*(\d+)\*\* \|", text, re.M)
    assert total and int(total.group(1)) == len(CASES)


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536])
@pytest.mark.parametrize("mask", [None, b"\x01\x02\x03\x04"])
def test_encode_frame_agrees_with_wsfast_frame(length: int, mask: bytes | None) -> None:
    payload = bytes(range(256)) * (length // 256) + bytes(length % 256)
    kinds = [(1, True, False), (2, False, True), (0, True, False)]
    if length <= 125:
        kinds.append((9, True, False))  # control frames carry at most 125 bytes
    for opcode, fin, rsv1 in kinds:
        ours = encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask)
        theirs = wsfast.Frame(opcode, payload, fin=fin, rsv1=rsv1).serialize(mask)
        assert ours == theirs
        parsed = wsfast.Frame.parse(ours, rsv1_allowed=True)
        assert parsed is not None
        frame, consumed = parsed
        assert consumed == len(ours) and frame.payload == payload


def test_xor_mask_is_an_involution() -> None:
    data = bytes(range(251))
    masked = xor_mask(data, b"\xaa\x55\x0f\xf0")
    assert masked != data and xor_mask(masked, b"\xaa\x55\x0f\xf0") == data
    assert masked == wsfast.apply_mask(data, b"\xaa\x55\x0f\xf0")


def test_bomb_stream_inflates_to_its_size() -> None:
    out = zlib.decompressobj(-15).decompress(bomb_stream(8 << 20) + TAIL)
    assert len(out) == 8 << 20 and not any(out[::4096])


def test_inflater_rejects_a_window_larger_than_agreed() -> None:
    block = bytes(range(256)) * 2 + b"x" * 100
    data = block + block  # the repeat lies 612 bytes back: beyond a 512-byte window
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert Inflater(15, False).inflate(stream) == data
    with pytest.raises(zlib.error):
        Inflater(9, False).inflate(stream)


def test_inflater_rejects_context_takeover_when_not_agreed() -> None:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = (c.compress(b"Hello, context!" * 4) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    second = (c.compress(b"Hello, context!" * 4) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    keeps = Inflater(15, False)
    assert keeps.inflate(first) == keeps.inflate(second)
    resets = Inflater(15, True)
    resets.inflate(first)
    with pytest.raises(zlib.error):
        resets.inflate(second)


def test_check_response_flags_rfc7692_violations() -> None:
    agreement, problems = check_response(
        Deflate(server_max_window_bits=10, server_no_context_takeover=True),
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=9; foo",
    )
    assert len(problems) == 4, problems
    agreement, problems = check_response(
        Deflate(client_max_window_bits=True), "permessage-deflate; client_max_window_bits=10"
    )
    assert not problems
    assert agreement == Agreement(client_max_window_bits=10)


def _observed(**kw: object) -> Observed:
    obs = Observed(close_received=True, close_code=1000, close_frame=_good_close(1000), eof=True)
    for key, value in kw.items():
        setattr(obs, key, value)
    return obs


def test_check_accepts_the_expected_outcome() -> None:
    check(BY_ID["2.2"], _observed(replies=[Pong(b"Hello, world!")]), client_under_test=False)
    check(
        BY_ID["7.4.3"],
        _observed(close_code=1002, close_frame=_good_close(1002)),
        client_under_test=False,
    )


@pytest.mark.parametrize(
    ("case_id", "wrong"),
    [
        ("2.2", {"replies": []}),  # no pong
        ("2.2", {"replies": [Pong(b"Hello, world")]}),  # wrong pong payload
        ("2.7", {"replies": [Pong(b"")]}),  # answered an unsolicited pong
        ("1.1.2", {"replies": [Msg(2, b"*" * 125)]}),  # text echoed as binary
        ("7.4.3", {}),  # answered an invalid close code with 1000
        ("7.4.3", {"close_code": 1002, "close_frame": _good_close(1000)}),  # bytes disagree
        ("6.7.1", {"close_received": False, "timeout": "waited"}),  # no fail fast
        ("2.1", {"replies": [Pong(b"")], "eof": False}),  # server kept TCP open
        ("2.1", {"replies": [Pong(b"")], "violations": ["masked frame"]}),
        ("12.1.5", {"replies": [Msg(1, b"")] * 3}),  # wrong echo, nothing compressed
    ],
)
def test_check_rejects_wrong_outcomes(case_id: str, wrong: dict[str, object]) -> None:
    with pytest.raises(AssertionError):
        check(BY_ID[case_id], _observed(**wrong), client_under_test=False)


def test_check_requires_masked_close_from_a_client() -> None:
    obs = _observed(replies=[Pong(b"")])
    check(BY_ID["2.1"], obs, client_under_test=False)
    with pytest.raises(AssertionError):
        check(BY_ID["2.1"], obs, client_under_test=True)
    masked = bytes([0x88, 0x82]) + xor_mask(b"\x03\xe8", b"abcd")
    check(BY_ID["2.1"], _observed(replies=[Pong(b"")], close_frame=masked), client_under_test=True)
