# SPDX-License-Identifier: MIT
"""Sans-I/O tests of wsfast.Protocol (the Rust core through PyO3)."""

from __future__ import annotations

import pytest

import wsfast
from wsfast import BinaryMessage, Close, Frame, Opcode, Ping, Pong, Protocol, State, TextMessage

KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def masked(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin=fin).serialize(KEY)


def sent_frames(p: Protocol) -> list[Frame]:
    out = b"".join(p.data_to_send())
    frames = []
    while out:
        parsed = Frame.parse(out)
        assert parsed is not None
        frame, n = parsed
        frames.append(frame)
        out = out[n:]
    return frames


def assert_failing(p: Protocol, code: int) -> None:
    frames = sent_frames(p)
    assert frames[-1].opcode == Opcode.CLOSE
    assert int.from_bytes(frames[-1].payload[:2], "big") == code
    assert p.close_expected()


def test_server_receives_text_binary_ping_pong() -> None:
    p = Protocol("server")
    p.receive_data(
        masked(Opcode.TEXT, "héllo".encode())
        + masked(Opcode.BINARY, b"\x00\x01")
        + masked(Opcode.PING, b"p")
        + masked(Opcode.PONG, b"q")
    )
    assert p.events_received() == [
        TextMessage("héllo"),
        BinaryMessage(b"\x00\x01"),
        Ping(b"p"),
        Pong(b"q"),
    ]
    assert sent_frames(p) == [Frame(Opcode.PONG, b"p")]


def test_events_of_a_batch_are_cleared_by_the_next_call() -> None:
    p = Protocol("server")
    p.receive_data(masked(Opcode.TEXT, b"a"))
    p.receive_data(b"")
    assert p.events_received() == []


def test_fragmented_message_with_interleaved_ping() -> None:
    p = Protocol("server")
    p.receive_data(
        masked(Opcode.TEXT, b"Hel", fin=False)
        + masked(Opcode.PING, b"")
        + masked(Opcode.CONTINUATION, b"lo")
    )
    assert p.events_received() == [Ping(b""), TextMessage("Hello")]


def test_client_sends_masked_frames_with_the_injected_key() -> None:
    p = Protocol("client", mask_key=KEY)
    p.send_text("Hello")
    assert p.data_to_send() == [bytes.fromhex("818537fa213d7f9f4d5158")]


def test_server_sends_unmasked_frames() -> None:
    p = Protocol("server")
    p.send_binary(b"abc")
    p.send_text(b"utf-8 bytes", fin=False)
    p.send_continuation(b"!", fin=True)
    assert sent_frames(p) == [
        Frame(Opcode.BINARY, b"abc"),
        Frame(Opcode.TEXT, b"utf-8 bytes", fin=False),
        Frame(Opcode.CONTINUATION, b"!"),
    ]


def test_closing_handshake_started_by_the_peer() -> None:
    p = Protocol("server")
    p.receive_data(masked(Opcode.CLOSE, (1001).to_bytes(2, "big") + b"bye"))
    assert p.events_received() == [Close(1001, "bye")]
    assert sent_frames(p) == [Frame(Opcode.CLOSE, (1001).to_bytes(2, "big"))]
    assert p.state == State.CLOSED
    assert p.close_received == (1001, "bye")
    assert p.close_expected()


def test_closing_handshake_started_by_us() -> None:
    p = Protocol("client", mask_key=KEY)
    p.send_close(1000, "done")
    assert p.state == State.CLOSING
    with pytest.raises(wsfast.InvalidState):
        p.send_text("late")
    p.receive_data(Frame(Opcode.CLOSE, (1000).to_bytes(2, "big")).serialize())
    assert p.state == State.CLOSED
    assert p.close_sent == (1000, "done")


@pytest.mark.parametrize(
    ("wire", "code", "exc"),
    [
        (Frame(Opcode.TEXT, b"x").serialize(), 1002, wsfast.ProtocolError),
        (masked(Opcode.CONTINUATION, b"x"), 1002, wsfast.ProtocolError),
        (masked(Opcode.TEXT, b"\xff"), 1007, wsfast.InvalidUTF8),
        (masked(Opcode.TEXT, b"ok\xf4\x90", fin=False), 1007, wsfast.InvalidUTF8),
        (masked(Opcode.CLOSE, b"\x03"), 1002, wsfast.ProtocolError),
        (masked(Opcode.CLOSE, (1005).to_bytes(2, "big")), 1002, wsfast.ProtocolError),
        (masked(Opcode.CLOSE, (1000).to_bytes(2, "big") + b"\xff"), 1007, wsfast.InvalidUTF8),
        (masked(Opcode.BINARY, bytes(2000)), 1009, wsfast.PayloadTooBig),
    ],
)
def test_protocol_errors_fail_with_the_right_close_code(
    wire: bytes, code: int, exc: type[Exception]
) -> None:
    p = Protocol("server", max_size=1000)
    p.receive_data(wire)
    assert_failing(p, code)
    assert isinstance(p.error, exc)


def test_eof_without_close_frame_is_abnormal_closure() -> None:
    p = Protocol("server")
    p.receive_eof()
    assert p.events_received() == [Close(1006, "")]
    assert p.state == State.CLOSED


def test_send_errors_are_clear() -> None:
    p = Protocol("server")
    with pytest.raises(ValueError, match="exceeds limit of 125"):
        p.send_ping(bytes(126))
    with pytest.raises(ValueError, match="invalid close code 999"):
        p.send_close(999)
    with pytest.raises(wsfast.InvalidState, match="no fragmented message"):
        p.send_continuation(b"x", fin=True)
    with pytest.raises(ValueError, match="side must be"):
        Protocol("middle")


def test_event_values_compare_and_print() -> None:
    assert TextMessage("a") == TextMessage("a") != TextMessage("b")
    assert BinaryMessage(b"a") != TextMessage("a")
    assert repr(Close(1000, "ok")) == "Close(code=1000, reason='ok')"
    assert repr(BinaryMessage(bytes(100))) == "BinaryMessage(data=<100 bytes>)"
    assert len({Ping(b"x"), Ping(b"x")}) == 1


@pytest.mark.parametrize(
    "params",
    [
        wsfast.DeflateParams(),
        wsfast.DeflateParams(server_no_context_takeover=True, client_no_context_takeover=True),
        wsfast.DeflateParams(server_max_window_bits=9, client_max_window_bits=10),
    ],
)
def test_compressed_messages_round_trip_between_client_and_server(
    params: wsfast.DeflateParams,
) -> None:
    client = Protocol("client", deflate=params)
    server = Protocol("server", deflate=params)
    texts = ["hello " * 50, "κόσμε " * 30, "", "x"]
    for t in texts:
        client.send_text(t)
    client.send_binary(bytes(range(256)) * 40)
    wire = b"".join(client.data_to_send())
    # The first frame carries RSV1 and is smaller than its payload.
    assert wire[0] & 0x40
    server.receive_data(wire)
    assert server.events_received() == [
        *(TextMessage(t) for t in texts),
        BinaryMessage(bytes(range(256)) * 40),
    ]
    for t in texts:
        server.send_text(t)
    client.receive_data(b"".join(server.data_to_send()))
    assert client.events_received() == [TextMessage(t) for t in texts]


def test_decompression_bomb_fails_with_1009_without_inflating_it_all() -> None:
    deflater = wsfast.Deflater(side="client")
    bomb = deflater.compress(bytes(50 << 20))  # 50 MiB of zeros, a few KiB compressed
    assert len(bomb) < 100_000
    server = Protocol("server", deflate=wsfast.DeflateParams(), max_size=1 << 20)
    server.receive_data(Frame(Opcode.BINARY, bomb, rsv1=True).serialize(KEY))
    assert server.events_received() == []
    assert_failing(server, 1009)
    assert isinstance(server.error, wsfast.PayloadTooBig)


def test_rsv1_without_negotiated_compression_fails_with_1002() -> None:
    server = Protocol("server")
    server.receive_data(Frame(Opcode.TEXT, b"x", rsv1=True).serialize(KEY))
    assert_failing(server, 1002)
