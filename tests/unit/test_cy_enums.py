# SPDX-License-Identifier: MIT
"""The named values of cython_ext/enums.pxd, as Python sees them on wsfast._cy."""

from __future__ import annotations

import enum

import pytest

from wsfast import Frame, Opcode, State
from wsfast._native import cy

KEY = bytes([0x37, 0xFA, 0x21, 0x3D])
ENUMS = [
    cy.Opcode,
    cy.EventKind,
    cy.ProtocolState,
    cy.SendResult,
    cy.TransportMode,
    cy.SlowConsumerPolicy,
]


def test_opcodes_equal_the_frames_opcodes_name_for_name() -> None:
    assert {m.name: m.value for m in cy.Opcode} == {f"OP_{m.name}": m.value for m in Opcode}


def test_event_kinds_are_the_opcodes_of_messages_and_control_frames() -> None:
    expected = {f"EV_{m.name}": m.value for m in Opcode if m is not Opcode.CONTINUATION}
    assert {m.name: m.value for m in cy.EventKind} == expected


def test_protocol_states_equal_the_frames_states_name_for_name() -> None:
    assert {m.name: m.value for m in cy.ProtocolState} == {
        f"STATE_{m.name}": m.value for m in State
    }


@pytest.mark.parametrize("kind", ENUMS, ids=lambda e: e.__name__)
def test_every_enum_member_is_also_a_module_constant(kind: type[enum.IntEnum]) -> None:
    assert issubclass(kind, enum.IntEnum)
    for member in kind:
        assert getattr(cy, member.name) == member
        assert getattr(cy, member.name) is member


def test_policy_constants_keep_their_values() -> None:
    # The Python layer sets Transport.policy from these.
    assert (cy.POLICY_CLOSE, cy.POLICY_DROP) == (0, 1)


def test_core_state_and_event_kinds_reach_python_as_plain_ints() -> None:
    # Plain ints, not IntEnum members: building an enum member per event would cost
    # a Python call on the hot path.
    core = cy.Core("server")
    assert type(core.state) is int
    assert core.state == State.OPEN == cy.STATE_OPEN
    wire = b"".join(
        Frame(op, payload).serialize(KEY)
        for op, payload in [
            (Opcode.TEXT, b"t"),
            (Opcode.BINARY, b"b"),
            (Opcode.PING, b"p"),
            (Opcode.PONG, b"q"),
            (Opcode.CLOSE, (1000).to_bytes(2, "big")),
        ]
    )
    events = core.receive_data(wire)
    assert [kind for kind, _ in events] == [
        cy.EV_TEXT,
        cy.EV_BINARY,
        cy.EV_PING,
        cy.EV_PONG,
        cy.EV_CLOSE,
    ]
    assert all(type(kind) is int for kind, _ in events)
    # The server echoed the close frame: the closing handshake is complete.
    assert core.state == State.CLOSED == cy.STATE_CLOSED
