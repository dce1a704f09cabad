# SPDX-License-Identifier: MIT
"""The Cython glue (wsfast._cy.Core) over the Rust C API, against the PyO3 Protocol."""

from __future__ import annotations

from typing import Any

import pytest

import wsfast
from wsfast import Frame, Opcode
from wsfast._native import cy

KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def masked(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin=fin).serialize(KEY)


def as_tuples(events: list[Any]) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    for e in events:
        if isinstance(e, wsfast.TextMessage):
            out.append((1, e.data))
        elif isinstance(e, wsfast.BinaryMessage):
            out.append((2, e.data))
        elif isinstance(e, wsfast.Close):
            out.append((8, (e.code, e.reason)))
        elif isinstance(e, wsfast.Ping):
            out.append((9, e.data))
        else:
            out.append((10, e.data))
    return out


WIRE = (
    masked(Opcode.TEXT, "κόσμε".encode())
    + masked(Opcode.BINARY, bytes(range(256)) * 300, fin=False)
    + masked(Opcode.PING, b"hb")
    + masked(Opcode.CONTINUATION, b"end")
    + masked(Opcode.PONG, b"")
    + masked(Opcode.CLOSE, (4000).to_bytes(2, "big") + b"bye")
)


@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
def test_core_and_pyo3_protocol_give_the_same_events_for_any_chunking(chunk: int) -> None:
    core = cy.Core("server")
    proto = wsfast.Protocol("server")
    got_core: list[tuple[int, Any]] = []
    got_proto: list[tuple[int, Any]] = []
    for i in range(0, len(WIRE), chunk):
        got_core += core.receive_data(WIRE[i : i + chunk])
        proto.receive_data(WIRE[i : i + chunk])
        got_proto += as_tuples(proto.events_received())
    assert got_core == got_proto
    assert [kind for kind, _ in got_core] == [1, 9, 2, 10, 8]
    assert core.data_to_send() == b"".join(proto.data_to_send())


def test_core_dispatches_events_to_bound_handlers_in_order() -> None:
    calls: list[tuple[str, Any]] = []
    owner = object()

    def on_message(conn: object, data: str | bytes) -> None:
        assert conn is owner
        calls.append(("message", data))

    core = cy.Core("server")
    core.set_handlers(
        owner,
        on_message,
        lambda c, d: calls.append(("ping", d)),
        lambda c, d: calls.append(("pong", d)),
        lambda c, code, reason: calls.append(("close", (code, reason))),
    )
    assert core.receive_and_dispatch(WIRE) == 5
    assert [name for name, _ in calls] == ["message", "ping", "message", "pong", "close"]
    assert calls[0][1] == "κόσμε"
    assert calls[4][1] == (4000, "bye")


def test_handler_exception_propagates_to_the_loop() -> None:
    def boom(conn: object, data: object) -> None:
        raise RuntimeError("handler failed")

    core = cy.Core("server")
    core.set_handlers(None, boom)
    with pytest.raises(RuntimeError, match="handler failed"):
        core.receive_and_dispatch(masked(Opcode.TEXT, b"x"))


def test_large_server_payloads_are_queued_without_copying() -> None:
    core = cy.Core("server")
    payload = bytearray(b"z" * 100_000)
    core.send(b"small")
    core.send(payload)
    assert core.chunks[-1] is payload  # the caller's own buffer, not a copy
    assert core.output_size() == 7 + 10 + 100_000
    wire = core.data_to_send()
    assert Frame.parse(wire) == (Frame(Opcode.BINARY, b"small"), 7)
    assert Frame.parse(wire[7:]) == (Frame(Opcode.BINARY, bytes(payload)), 100_010)


def test_client_core_masks_and_can_be_parsed_by_a_server_protocol() -> None:
    client = cy.Core("client")
    client.send("hello")
    client.send(bytes(70_000))
    server = wsfast.Protocol("server")
    server.receive_data(client.data_to_send())
    assert server.events_received() == [
        wsfast.TextMessage("hello"),
        wsfast.BinaryMessage(bytes(70_000)),
    ]


def test_core_send_errors_and_state() -> None:
    core = cy.Core("server")
    assert core.state == wsfast.State.OPEN
    with pytest.raises(ValueError, match="exceeds limit of 125"):
        core.send_ping(bytes(200))
    core.send_close(1000, "bye")
    assert core.state == wsfast.State.CLOSING
    assert core.close_sent == (1000, "bye")
    with pytest.raises(wsfast.InvalidState):
        core.send("late")
    with pytest.raises(ValueError, match="side must be"):
        cy.Core("peer")


def test_core_reports_protocol_errors() -> None:
    core = cy.Core("server", max_size=10)
    assert core.receive_data(masked(Opcode.BINARY, bytes(11))) == []
    assert core.close_expected()
    assert core.error == "frame of 11 bytes exceeds limit of 10"
    assert core.close_sent == (1009, "frame of 11 bytes exceeds limit of 10")


def test_eof_reports_abnormal_closure() -> None:
    core = cy.Core("client")
    assert core.receive_eof() == [(8, (1006, ""))]


def test_core_accepts_any_contiguous_buffer_and_rejects_others() -> None:
    core = cy.Core("server")
    core.send(bytearray(b"ab"))
    core.send(memoryview(b"xabcx")[1:4])
    assert core.data_to_send() == bytes.fromhex("82026162") + bytes.fromhex("8203616263")
    with pytest.raises(TypeError):
        core.send(12345)
    with pytest.raises(BufferError):
        core.send(memoryview(b"abcdef")[::2])
    assert core.receive_data(bytearray(masked(Opcode.BINARY, b"z"))) == [(2, b"z")]
