# SPDX-License-Identifier: MIT
from __future__ import annotations

import pytest

import wsfast
from wsfast import Frame, Opcode

KEY = bytes([0x37, 0xFA, 0x21, 0x3D])

# RFC 6455 section 5.7, byte for byte.
RFC_EXAMPLES = [
    ("unmasked text", Frame(Opcode.TEXT, b"Hello"), None, "810548656c6c6f"),
    ("masked text", Frame(Opcode.TEXT, b"Hello"), KEY, "818537fa213d7f9f4d5158"),
    ("first fragment", Frame(Opcode.TEXT, b"Hel", fin=False), None, "010348656c"),
    ("last fragment", Frame(Opcode.CONTINUATION, b"lo"), None, "80026c6f"),
    ("unmasked ping", Frame(Opcode.PING, b"Hello"), None, "890548656c6c6f"),
    ("masked pong", Frame(Opcode.PONG, b"Hello"), KEY, "8a8537fa213d7f9f4d5158"),
]


@pytest.mark.parametrize(("name", "frame", "mask", "wire"), RFC_EXAMPLES)
def test_rfc6455_examples_serialize_and_parse(
    name: str, frame: Frame, mask: bytes | None, wire: str
) -> None:
    data = bytes.fromhex(wire)
    assert frame.serialize(mask) == data
    assert Frame.parse(data) == (frame, len(data))


def test_rfc6455_256_byte_and_64_kib_binary_length_encodings() -> None:
    assert Frame(Opcode.BINARY, bytes(256)).serialize()[:4] == bytes.fromhex("827e0100")
    assert Frame(Opcode.BINARY, bytes(65536)).serialize()[:10] == bytes.fromhex(
        "827f0000000000010000"
    )


def test_incomplete_frames_parse_to_none() -> None:
    wire = Frame(Opcode.BINARY, bytes(70000)).serialize(KEY)
    for n in (0, 1, 2, 9, 13, 14, len(wire) - 1):
        assert Frame.parse(wire[:n]) is None


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ("a180", "reserved bits"),
        ("8380", "invalid opcode 3"),
        ("0980", "fragmented control frame"),
        ("897f000000000000007e", "control frame of 126 bytes"),
        ("827f8000000000000001", "most significant bit"),
    ],
)
def test_frames_breaking_rfc6455_raise_protocol_error(wire: str, message: str) -> None:
    data = bytes.fromhex(wire) + bytes(4)
    with pytest.raises(wsfast.ProtocolError, match=message):
        Frame.parse(data + bytes(200))


def test_masking_rules_follow_the_receiving_side() -> None:
    masked = Frame(Opcode.TEXT, b"x").serialize(KEY)
    unmasked = Frame(Opcode.TEXT, b"x").serialize()
    assert Frame.parse(masked, mask_required=True) is not None
    with pytest.raises(wsfast.ProtocolError, match="must be masked"):
        Frame.parse(unmasked, mask_required=True)
    with pytest.raises(wsfast.ProtocolError, match="must not be masked"):
        Frame.parse(masked, mask_required=False)


def test_rsv1_needs_a_negotiated_extension() -> None:
    wire = Frame(Opcode.TEXT, b"x", rsv1=True).serialize()
    with pytest.raises(wsfast.ProtocolError, match="reserved bits"):
        Frame.parse(wire)
    assert Frame.parse(wire, rsv1_allowed=True) is not None


def test_max_size_is_enforced_from_the_header() -> None:
    wire = Frame(Opcode.BINARY, bytes(11)).serialize()
    with pytest.raises(wsfast.ProtocolError, match="exceeds limit of 10"):
        Frame.parse(wire[:4], max_size=10)
