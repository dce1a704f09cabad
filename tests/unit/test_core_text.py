# SPDX-License-Identifier: MIT
"""Text messages in the Cython core: the str it builds and how a str is sent back."""

from __future__ import annotations

import pytest

from wsfast import Frame, Opcode
from wsfast._native import cy

KEY = b"\x01\x02\x03\x04"

KINDS = {
    "empty": "",
    "ascii": '{"type":"chat","text":"hello"}',
    "latin-1": "naïve café ÿ\x80",
    "bmp": "\u03b3\u03b5\u03b9\u03ac \u0100 你好 € \u07ff\u0800\uffff",
    "astral": "🙂 ok 🚀 \U0010ffff\U00010000 é 你",
}


def text_frame(text: str, *, masked: bool = True) -> bytes:
    return Frame(Opcode.TEXT, text.encode()).serialize(KEY if masked else None)


@pytest.mark.parametrize("text", KINDS.values(), ids=KINDS.keys())
def test_received_text_is_the_str_python_decodes_in_its_narrowest_kind(text: str) -> None:
    [(kind, got)] = cy.Core("server").receive_data(text_frame(text))
    assert kind == Opcode.TEXT
    # str equality compares PEP 393 kinds first: this also checks the canonical kind.
    assert got == text
    assert hash(got) == hash(text)


@pytest.mark.parametrize("text", KINDS.values(), ids=KINDS.keys())
def test_a_handler_echoing_its_str_sends_the_received_bytes(text: str) -> None:
    core = cy.Core("server")
    core.set_handlers(core, lambda c, data: c.send(data))
    core.receive_and_dispatch(text_frame(text) * 3)
    assert core.data_to_send() == text_frame(text, masked=False) * 3


def test_a_handler_sending_other_strs_sends_their_own_utf8() -> None:
    sent = ["γειά", "🙂", "x"]
    core = cy.Core("server")

    def on_message(c: cy.Core, data: str) -> None:
        c.send("".join(reversed(data)))  # a new str, not the one received
        c.send(data.upper())
        c.send(sent[0])  # a str that no batch produced

    core.set_handlers(core, on_message)
    core.receive_and_dispatch(text_frame("straße 你🙂"))
    expected = [text_frame(t, masked=False) for t in ("🙂你 eßarts", "STRASSE 你🙂", sent[0])]
    assert core.data_to_send() == b"".join(expected)


def test_a_str_kept_from_an_earlier_batch_is_encoded_not_taken_from_old_bytes() -> None:
    kept: list[str] = []
    core = cy.Core("server")

    def on_message(c: cy.Core, data: str) -> None:
        if kept:
            c.send(kept[0])
        kept.append(data)

    core.set_handlers(core, on_message)
    core.receive_and_dispatch(text_frame("你好 🙂"))
    core.release_memory()
    core.receive_and_dispatch(text_frame("second, longer than the first"))
    assert core.data_to_send() == text_frame("你好 🙂", masked=False)
    # Outside dispatch the received str is an ordinary str too.
    core.send(kept[1])
    assert core.data_to_send() == text_frame(kept[1], masked=False)


def test_invalid_utf8_and_surrogates_still_fail_with_1007() -> None:
    for payload in (b"\xed\xa0\x80", b"ok\xff", b"\xf4\x90\x80\x80", b"\xe2\x82"):
        core = cy.Core("server")
        events = core.receive_data(Frame(Opcode.TEXT, payload).serialize(KEY))
        assert Opcode.TEXT not in [kind for kind, _ in events]
        assert core.close_sent is not None and core.close_sent[0] == 1007


def test_fragmented_text_split_inside_a_sequence_is_one_str() -> None:
    data = "é🙂".encode()
    wire = Frame(Opcode.TEXT, data[:1], fin=False).serialize(KEY)
    wire += Frame(Opcode.CONTINUATION, data[1:4], fin=False).serialize(KEY)
    wire += Frame(Opcode.CONTINUATION, data[4:]).serialize(KEY)
    assert cy.Core("server").receive_data(wire) == [(Opcode.TEXT, "é🙂")]


def test_after_fail_the_handled_str_is_refused_like_any_send() -> None:
    errors: list[Exception] = []

    def on_message(c: cy.Core, data: str) -> None:
        c.fail(1011, "handler gave up")
        try:
            c.send(data)
        except Exception as exc:
            errors.append(exc)

    core = cy.Core("server")
    core.set_handlers(core, on_message)
    core.receive_and_dispatch(text_frame("你好 🙂"))
    assert [type(e).__name__ for e in errors] == ["InvalidState"]
    assert core.close_sent == (1011, "handler gave up")
