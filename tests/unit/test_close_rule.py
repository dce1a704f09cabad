# SPDX-License-Identifier: MIT
"""The one rule for "closed OK or with an error", decided in Rust (websockets' rule)."""

from __future__ import annotations

import itertools

import pytest

import wsfast
from wsfast import Frame, Opcode
from wsfast._native import rust

KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def close_frame(code: int | None, *, masked: bool = True) -> bytes:
    payload = b"" if code is None else code.to_bytes(2, "big")
    return Frame(Opcode.CLOSE, payload).serialize(KEY if masked else None)


def test_ok_close_codes_are_normal_going_away_and_no_status() -> None:
    assert rust.OK_CLOSE_CODES == frozenset({1000, 1001, 1005})


@pytest.mark.parametrize(
    ("sent", "received"), list(itertools.product(sorted(rust.OK_CLOSE_CODES), repeat=2))
)
def test_close_frames_both_ways_with_ok_codes_are_ok(sent: int, received: int) -> None:
    assert rust.close_is_ok(sent, received) is True


@pytest.mark.parametrize(
    ("sent", "received"),
    [
        (None, None),
        (1000, None),
        (None, 1000),
        (1000, 1006),
        (1000, 1002),
        (1011, 1000),
        (4000, 4000),
    ],
)
def test_anything_else_is_an_error(sent: int | None, received: int | None) -> None:
    assert rust.close_is_ok(sent, received) is False


def test_protocol_close_ok_after_the_peer_closes_normally() -> None:
    proto = wsfast.Protocol("server")
    assert proto.close_ok is False
    proto.receive_data(close_frame(1001))
    assert proto.close_sent == (1001, "")
    assert proto.close_ok is True


def test_protocol_close_ok_after_empty_close_frames() -> None:
    proto = wsfast.Protocol("server")
    proto.receive_data(close_frame(None))
    assert proto.close_sent == (1005, "")
    assert proto.close_received == (1005, "")
    assert proto.close_ok is True


def test_protocol_close_ok_is_false_until_the_peer_answers() -> None:
    proto = wsfast.Protocol("client")
    proto.send_close(1000)
    assert proto.close_ok is False
    proto.receive_eof()
    assert proto.close_ok is False


def test_protocol_close_ok_is_false_after_an_error_code() -> None:
    proto = wsfast.Protocol("client")
    proto.send_close(1000)
    proto.receive_data(close_frame(1011, masked=False))
    assert proto.close_ok is False
