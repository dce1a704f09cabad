# SPDX-License-Identifier: MIT
"""Property tests of received text: the str handed out, and sending that str back.

Whatever the text, fragmentation and read chunking, the str must equal CPython's
``bytes.decode("utf-8")``, in the same canonical kind; invalid
UTF-8 must still fail the connection with 1007; and a handler sending back the str it
got (framed from the received bytes, not re-encoded) must send exactly its UTF-8.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wsfast import Frame, Opcode
from wsfast._native import cy

KEY = b"\x01\x02\x03\x04"

# Every code point but surrogates (which str.encode refuses): ASCII, latin-1, BMP and
# astral ranges, each likely enough to mix within one message.
texts = st.text(
    st.one_of(
        st.characters(max_codepoint=0x7F),
        st.characters(min_codepoint=0x80, max_codepoint=0xFF),
        st.characters(min_codepoint=0x100, max_codepoint=0xFFFF, exclude_categories=("Cs",)),
        st.characters(min_codepoint=0x10000),
    ),
    max_size=300,
)


def wire(payload: bytes, cuts: list[int], opcode: int = Opcode.TEXT) -> bytes:
    """A message as masked frames split at ``cuts`` (byte offsets, maybe mid-sequence)."""
    points = sorted({min(c, len(payload)) for c in cuts} - {0, len(payload)})
    pieces = [payload[a:b] for a, b in zip([0, *points], [*points, len(payload)], strict=True)]
    out = b""
    for i, piece in enumerate(pieces):
        op = opcode if i == 0 else Opcode.CONTINUATION
        out += Frame(op, piece, fin=i == len(pieces) - 1).serialize(KEY)
    return out


def assert_same_str(got: object, expected: str) -> None:
    assert type(got) is str
    # CPython's str equality compares the PEP 393 kinds first, so this also checks that
    # the str is in its canonical (narrowest) kind. (Not getsizeof: it counts the UTF-8
    # that a send may have cached in a shared one-character str.)
    assert got == expected
    assert hash(got) == hash(expected)


@given(texts, st.lists(st.integers(min_value=0, max_value=1200), max_size=4), st.integers(1, 64))
def test_received_text_equals_python_decode_for_any_fragmentation_and_chunking(
    text: str, cuts: list[int], chunk: int
) -> None:
    payload = text.encode()
    data = wire(payload, cuts)
    core = cy.Core("server")
    events = []
    for i in range(0, len(data), chunk):
        events += core.receive_data(data[i : i + chunk])
    assert [kind for kind, _ in events] == [Opcode.TEXT]
    assert_same_str(events[0][1], payload.decode("utf-8"))


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=3))
def test_arbitrary_bytes_as_text_decode_like_python_or_fail_with_1007(
    payload: bytes, cuts: list[int]
) -> None:
    core = cy.Core("server")
    events = core.receive_data(wire(payload, cuts))
    try:
        expected = payload.decode("utf-8")
    except UnicodeDecodeError:
        assert Opcode.TEXT not in [kind for kind, _ in events]
        assert core.close_sent is not None and core.close_sent[0] == 1007
        return
    assert [kind for kind, _ in events] == [Opcode.TEXT]
    assert_same_str(events[0][1], expected)


@given(texts, texts)
def test_a_handler_sending_back_the_str_it_got_or_another_str_sends_their_utf8(
    first: str, second: str
) -> None:
    # Each handler call echoes its own str, then sends the previous message's str: the
    # first is framed from the received bytes, the second must not be.
    got: list[str] = []

    def on_message(core: cy.Core, data: str) -> None:
        core.send(data)
        if got:
            core.send(got[-1])
        got.append(data)

    core = cy.Core("server")
    core.set_handlers(core, on_message)
    core.receive_and_dispatch(wire(first.encode(), []) + wire(second.encode(), []))
    expected = (
        Frame(Opcode.TEXT, first.encode()).serialize()
        + Frame(Opcode.TEXT, second.encode()).serialize()
        + Frame(Opcode.TEXT, first.encode()).serialize()
    )
    assert core.data_to_send() == expected
    assert_same_str(got[0], first)
    assert_same_str(got[1], second)


@given(texts.map(lambda t: t[:40]))
def test_close_reasons_decode_like_python(reason: str) -> None:
    raw = reason.encode()[:123]
    try:
        expected = raw.decode()
    except UnicodeDecodeError:
        return  # cut inside a sequence: the validator's own tests cover that
    core = cy.Core("server")
    events = core.receive_data(Frame(Opcode.CLOSE, (4000).to_bytes(2, "big") + raw).serialize(KEY))
    assert events[0][0] == Opcode.CLOSE
    code, got = events[0][1]
    assert code == 4000
    assert_same_str(got, expected)


@given(texts, st.lists(st.integers(min_value=0, max_value=1200), max_size=4), st.integers(1, 64))
def test_client_receiving_unmasked_text_gets_the_same_str(
    text: str, cuts: list[int], chunk: int
) -> None:
    # The client's path has no unmasking pass to spot ASCII: the validator reports it.
    payload = text.encode()
    points = sorted({min(c, len(payload)) for c in cuts} - {0, len(payload)})
    pieces = [payload[a:b] for a, b in zip([0, *points], [*points, len(payload)], strict=True)]
    opcodes = [Opcode.TEXT] + [Opcode.CONTINUATION] * (len(pieces) - 1)
    data = b"".join(
        Frame(op, piece, fin=i == len(pieces) - 1).serialize()
        for i, (op, piece) in enumerate(zip(opcodes, pieces, strict=True))
    )
    core = cy.Core("client")
    events = []
    for i in range(0, len(data), chunk):
        events += core.receive_data(data[i : i + chunk])
    assert [kind for kind, _ in events] == [Opcode.TEXT]
    assert_same_str(events[0][1], text)
