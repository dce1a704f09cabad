# SPDX-License-Identifier: MIT
"""The conformance case table: data only, no I/O.

Each :class:`Case` says what the tester sends (frames, compressed messages, pauses
for replies), how the bytes are cut into TCP writes, and what RFC 6455 / RFC 7692
require of the peer under test. The same table runs against our server (the tester
is a raw client and masks its frames) and against our client (the tester is a raw
server and does not mask); in both runs the peer is an *echo* endpoint, so every
data message it accepts comes back.

Outcome labels:

* ``ECHO``: the message comes back unchanged (the peer may fragment it differently).
* ``PONG(n B)``: a pong with exactly the ping's payload.
* ``FAIL(code)``: the peer fails the connection: it sends a close frame with ``code``
  and (as a server) closes the TCP connection without waiting for our reply.
* ``CLOSE_ECHO(code)``: the peer answers our close frame with ``code``.
* ``OPEN``: nothing comes back and the connection stays usable; the tester then
  closes with 1000 and the peer must answer 1000.

Categories follow the public Autobahn TestSuite numbering; the cases are our own.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

#: Category number -> name (the first component of a case id).
CATEGORIES: dict[str, str] = {
    "1": "framing",
    "2": "pings and pongs",
    "3": "reserved bits",
    "4": "opcodes",
    "5": "fragmentation",
    "6": "UTF-8 handling",
    "7": "close handling",
    "9": "limits",
    "12": "compression: payloads and errors",
    "13": "compression: negotiated parameters",
}

#: The max-size of the "limited" peer (a second server, or a client with this max_size).
LIMIT = 1 << 20
#: Message size limit of the default peer (the echo server's default is 64 MiB).
DEFAULT_LIMIT = 64 << 20


# ---- what the tester sends ----------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """One frame, written exactly as described (masked as the tester's side requires).

    Attributes:
        length: the payload length written in the header, if it must differ from
            ``len(payload)`` (malformed or oversized frames).
        wrong_mask: mask a frame sent to a client, or leave a frame to a server unmasked.
    """

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False
    length: int | None = None
    wrong_mask: bool = False


@dataclass(frozen=True)
class Deflated:
    """One message compressed by the tester's own zlib compressor, then fragmented.

    Attributes:
        fragments: number of frames the compressed bytes are cut into (RSV1 on the first).
        rsv1_on_continuations: also set RSV1 on the continuation frames (illegal).
        keep_tail: keep the ``00 00 ff ff`` tail that RFC 7692 section 7.2.1 removes.
        final_block: end the message with a BFINAL=1 block (RFC 7692 section 7.2.3.4).
        ping_between: send a ping with this payload after the first fragment.
    """

    opcode: int
    payload: bytes
    fragments: int = 1
    rsv1_on_continuations: bool = False
    keep_tail: bool = False
    final_block: bool = False
    ping_between: bytes | None = None


@dataclass(frozen=True)
class RawDeflated:
    """A message whose RSV1 payload is given verbatim (invalid DEFLATE data)."""

    opcode: int
    data: bytes


@dataclass(frozen=True)
class Bomb:
    """A compressed message of ``size`` zero bytes (about size/1000 bytes on the wire)."""

    opcode: int
    size: int
    fragments: int = 1


@dataclass(frozen=True)
class Wait:
    """Flush what was queued, then wait until ``replies`` replies (in total) came back."""

    replies: int


Item: TypeAlias = Wire | Deflated | RawDeflated | Bomb | Wait


# ---- what the peer must do -----------------------------------------------------------


@dataclass(frozen=True)
class Msg:
    """An echoed data message."""

    opcode: int
    payload: bytes

    def __repr__(self) -> str:
        kind = "TEXT" if self.opcode == TEXT else "BINARY"
        shown = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        return f"{kind}({len(self.payload)} B: {shown!r})"


@dataclass(frozen=True)
class Pong:
    """A pong frame."""

    payload: bytes

    def __repr__(self) -> str:
        return f"PONG({self.payload!r})"


Reply: TypeAlias = Msg | Pong
#: A close frame without a status code (payload of length 0).
EMPTY = None


@dataclass(frozen=True)
class Outcome:
    """What the peer must send back, in order, and how the connection ends.

    Attributes:
        replies: echoed messages and pongs, in order, before the peer's close frame.
        end: ``"open"`` (the tester closes with 1000 afterwards), ``"fail"`` (the peer
            fails the connection) or ``"close"`` (the peer answers our close frame).
        codes: the close codes allowed in the peer's close frame (``EMPTY``: no code).
    """

    replies: tuple[Reply, ...]
    end: Literal["open", "fail", "close"]
    codes: tuple[int | None, ...] = ()

    @property
    def label(self) -> str:
        """A short human-readable form, e.g. ``PONG(5 B) + ECHO + FAIL(1002)``."""
        names = [
            "ECHO" if isinstance(r, Msg) else f"PONG({len(r.payload)} B)" for r in self.replies
        ]
        parts: list[str] = []
        for name in names:
            if parts and parts[-1].split(" x")[0] == name:
                count = int(parts[-1].split(" x")[1]) + 1 if " x" in parts[-1] else 2
                parts[-1] = f"{name} x{count}"
            else:
                parts.append(name)
        shown = "/".join("empty" if c is None else str(c) for c in self.codes)
        if self.end == "fail":
            parts.append(f"FAIL({shown})")
        elif self.end == "close":
            parts.append(f"CLOSE_ECHO({shown})")
        elif not parts:
            parts.append("OPEN")
        return " + ".join(parts)


def echo(*replies: Reply) -> Outcome:
    """The peer sends ``replies`` and keeps the connection open."""
    return Outcome(replies, "open")


def fail(code: int, *replies: Reply) -> Outcome:
    """The peer sends ``replies``, then fails the connection with ``code``."""
    return Outcome(replies, "fail", (code,))


def close_echo(*codes: int | None, replies: tuple[Reply, ...] = ()) -> Outcome:
    """The peer sends ``replies``, then answers our close frame with one of ``codes``."""
    return Outcome(replies, "close", codes)


# ---- negotiation --------------------------------------------------------------------


@dataclass(frozen=True)
class Deflate:
    """permessage-deflate parameters (RFC 7692 section 7.1) that the tester offers.

    ``client_max_window_bits=True`` is the parameter without a value.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | bool | None = None

    def offer(self) -> str:
        """The ``Sec-WebSocket-Extensions`` value of an offer with these parameters."""
        params = ["permessage-deflate"]
        if self.server_no_context_takeover:
            params.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            params.append("client_no_context_takeover")
        if self.server_max_window_bits is not None:
            params.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits is True:
            params.append("client_max_window_bits")
        elif self.client_max_window_bits:
            params.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(params)


# ---- cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One conformance case.

    Attributes:
        id: e.g. ``"5.15"``; the first component is the category.
        description: what is sent, in words.
        rfc: the clause(s) that decide the outcome.
        send: what the tester sends, in order.
        expect: what the peer must do.
        chunk: write the bytes in pieces of this size (1: byte by byte); None: whole.
        per_frame: one write per frame, with a short pause between frames.
        deflate: negotiate permessage-deflate with these parameters.
        limited: run against the peer whose max-size is :data:`LIMIT`.
        compressed_echo: the peer must compress at least one echoed message
            (not an RFC rule: what our echo endpoints promise with compression on).
        bounded_memory: the peer's peak memory must not grow by the inflated size.
    """

    id: str
    description: str
    rfc: str
    send: tuple[Item, ...]
    expect: Outcome
    chunk: int | None = None
    per_frame: bool = False
    deflate: Deflate | None = None
    limited: bool = False
    compressed_echo: bool = False
    bounded_memory: bool = False
    tags: tuple[str, ...] = field(default=())

    @property
    def category(self) -> str:
        """The category number, e.g. ``"5"``."""
        return self.id.split(".")[0]

    @property
    def name(self) -> str:
        """The pytest id: ``5.15``."""
        return self.id


CASES: list[Case] = []


def _add(
    id: str,
    description: str,
    rfc: str,
    send: Sequence[Item],
    expect: Outcome,
    **options: object,
) -> None:
    CASES.append(Case(id, description, rfc, tuple(send), expect, **options))  # type: ignore[arg-type]


def text(payload: str | bytes, *, fin: bool = True, **kw: object) -> Wire:
    data = payload.encode() if isinstance(payload, str) else payload
    return Wire(TEXT, data, fin=fin, **kw)  # type: ignore[arg-type]


def binary(payload: bytes, *, fin: bool = True, **kw: object) -> Wire:
    return Wire(BINARY, payload, fin=fin, **kw)  # type: ignore[arg-type]


def cont(payload: str | bytes, *, fin: bool = True, **kw: object) -> Wire:
    data = payload.encode() if isinstance(payload, str) else payload
    return Wire(CONT, data, fin=fin, **kw)  # type: ignore[arg-type]


def ping(payload: bytes = b"", **kw: object) -> Wire:
    return Wire(PING, payload, **kw)  # type: ignore[arg-type]


def pong(payload: bytes = b"", **kw: object) -> Wire:
    return Wire(PONG, payload, **kw)  # type: ignore[arg-type]


def close(code: int | None = None, reason: bytes = b"", **kw: object) -> Wire:
    payload = b"" if code is None else code.to_bytes(2, "big") + reason
    return Wire(CLOSE, payload, **kw)  # type: ignore[arg-type]


def T(payload: str | bytes) -> Msg:
    """An expected text echo."""
    return Msg(TEXT, payload.encode() if isinstance(payload, str) else payload)


def B(payload: bytes) -> Msg:
    """An expected binary echo."""
    return Msg(BINARY, payload)


def fragments(opcode: int, data: bytes, sizes: list[int]) -> list[Wire]:
    """Cut ``data`` into frames of the given sizes (the last one takes the rest)."""
    frames: list[Wire] = []
    pos = 0
    for i, size in enumerate(sizes):
        end = len(data) if i == len(sizes) - 1 else pos + size
        last = i == len(sizes) - 1
        frames.append(Wire(opcode if i == 0 else CONT, data[pos:end], fin=last))
        pos = end
    return frames


def split_every(opcode: int, data: bytes, size: int) -> list[Wire]:
    """Cut ``data`` into frames of ``size`` bytes."""
    count = max(1, -(-len(data) // size))
    return fragments(opcode, data, [size] * count)


def _rand(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua. κόσμε, привет, 世界, 😀. "
)


def _lorem(n: int) -> bytes:
    data = (LOREM * (n // len(LOREM) + 2)).encode()[:n]
    # Never cut a character in half: trim to a valid UTF-8 prefix, pad with ASCII.
    while True:
        try:
            data.decode()
            break
        except UnicodeDecodeError as exc:
            data = data[: exc.start]
    return data + b"." * (n - len(data))


RFC_MASK = "RFC 6455 5.1: client frames MUST be masked, server frames MUST NOT; else fail"
RFC_CTRL = "RFC 6455 5.5: control frames MUST have payload <= 125 B and MUST NOT be fragmented"
RFC_PONG = "RFC 6455 5.5.2/5.5.3: MUST answer a ping with a pong carrying the same payload"
RFC_RSV = "RFC 6455 5.2: RSV1-3 MUST be 0 unless an extension defines them; else fail"
RFC_OPCODE = "RFC 6455 5.2: unknown opcode MUST fail the connection"
RFC_FRAG = "RFC 6455 5.4: fragments of one message in order, control frames may interleave"
RFC_UTF8 = "RFC 6455 8.1: invalid UTF-8 in a text message MUST fail the connection (1007)"
RFC_CLOSE = "RFC 6455 5.5.1: MUST answer a close frame with a close frame (echoing the code)"
RFC_CODES = "RFC 6455 7.4.1/7.4.2 + IANA registry: codes allowed on the wire"
RFC_LIMIT = "RFC 6455 10.4 + 7.4.1: a message over the size limit fails with 1009"
RFC_PMCE = "RFC 7692 6/7: per-message DEFLATE, RSV1 on the first frame of a message"


def _framing() -> None:
    lengths = [0, 125, 126, 127, 128, 65535, 65536]
    for n, length in enumerate(lengths, 1):
        _add(
            f"1.1.{n}",
            f"text message of {length} bytes in one frame",
            "RFC 6455 5.2: 7-bit, 16-bit and 64-bit payload length forms",
            [text(b"*" * length)],
            echo(T(b"*" * length)),
        )
    _add(
        "1.1.8",
        "text message of 65536 bytes written in 997-byte pieces",
        "RFC 6455 5.2: a frame may arrive in any number of TCP segments",
        [text(b"*" * 65536)],
        echo(T(b"*" * 65536)),
        chunk=997,
    )
    for n, length in enumerate(lengths, 1):
        data = bytes([0xFE]) * length
        _add(
            f"1.2.{n}",
            f"binary message of {length} bytes in one frame",
            "RFC 6455 5.2: 7-bit, 16-bit and 64-bit payload length forms",
            [binary(data)],
            echo(B(data)),
        )
    _add(
        "1.2.8",
        "binary message of 65536 bytes written in 997-byte pieces",
        "RFC 6455 5.2: a frame may arrive in any number of TCP segments",
        [binary(b"\xfe" * 65536)],
        echo(B(b"\xfe" * 65536)),
        chunk=997,
    )
    _add(
        "1.3.1",
        "text frame with the wrong masking for the direction",
        RFC_MASK,
        [text("Hello", wrong_mask=True)],
        fail(1002),
    )
    _add(
        "1.3.2",
        "binary frame with the wrong masking for the direction",
        RFC_MASK,
        [binary(b"\x00\x01", wrong_mask=True)],
        fail(1002),
    )
    _add(
        "1.3.3",
        "ping with the wrong masking: no pong, fail",
        RFC_MASK,
        [ping(b"ping", wrong_mask=True)],
        fail(1002),
    )
    _add(
        "1.3.4",
        "text echoed, then a wrongly masked frame, then a ping (ignored)",
        RFC_MASK,
        [text("first"), Wait(1), text("second", wrong_mask=True), ping(b"late")],
        fail(1002, T("first")),
    )
    _add(
        "1.3.5",
        "64-bit length with its most significant bit set (header only)",
        "RFC 6455 5.2: the most significant bit of a 64-bit length MUST be 0",
        [Wire(BINARY, b"abcde", length=(1 << 63) | 5)],
        fail(1002),
    )
    _add(
        "1.3.6",
        "text frame of 200 bytes written byte by byte (header split everywhere)",
        "RFC 6455 5.2: a frame may arrive in any number of TCP segments",
        [text(b"x" * 200)],
        echo(T(b"x" * 200)),
        chunk=1,
    )
    _add(
        "1.3.7",
        "three messages in one write",
        "RFC 6455 5.2: frames follow each other on one byte stream",
        [text("one"), binary(b"two"), text("three")],
        echo(T("one"), B(b"two"), T("three")),
    )
    _add(
        "1.3.8",
        "binary frame with a 16-bit length of 126 written byte by byte",
        "RFC 6455 5.2: 16-bit length form",
        [binary(b"\x01" * 126)],
        echo(B(b"\x01" * 126)),
        chunk=1,
    )


def _pings() -> None:
    _add("2.1", "ping without payload", RFC_PONG, [ping()], echo(Pong(b"")))
    _add(
        "2.2",
        "ping with a small text payload",
        RFC_PONG,
        [ping(b"Hello, world!")],
        echo(Pong(b"Hello, world!")),
    )
    data = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    _add("2.3", "ping with a small binary payload", RFC_PONG, [ping(data)], echo(Pong(data)))
    _add(
        "2.4",
        "ping with a 125-byte payload",
        RFC_PONG,
        [ping(b"\xfe" * 125)],
        echo(Pong(b"\xfe" * 125)),
    )
    _add("2.5", "ping with a 126-byte payload", RFC_CTRL, [ping(b"\xfe" * 126)], fail(1002))
    _add(
        "2.6",
        "ping with a 125-byte payload written byte by byte",
        RFC_PONG,
        [ping(b"\xfe" * 125)],
        echo(Pong(b"\xfe" * 125)),
        chunk=1,
    )
    _add(
        "2.7",
        "unsolicited pong without payload: ignored",
        "RFC 6455 5.5.3: an unsolicited pong MAY be sent; no response expected",
        [pong()],
        echo(),
    )
    _add(
        "2.8",
        "unsolicited pong with payload: ignored",
        "RFC 6455 5.5.3: an unsolicited pong MAY be sent; no response expected",
        [pong(b"unsolicited pong payload")],
        echo(),
    )
    _add(
        "2.9",
        "unsolicited pong, then a ping: one pong for the ping",
        RFC_PONG,
        [pong(b"unsolicited"), ping(b"solicited")],
        echo(Pong(b"solicited")),
    )
    pings = [ping(f"payload-{i}".encode()) for i in range(10)]
    pongs = [Pong(f"payload-{i}".encode()) for i in range(10)]
    _add("2.10", "ten pings in one write: ten pongs in order", RFC_PONG, pings, echo(*pongs))
    _add(
        "2.11",
        "ten pings, one write each: ten pongs in order",
        RFC_PONG,
        pings,
        echo(*pongs),
        per_frame=True,
    )
    _add(
        "2.12",
        "ten pings, then a text message",
        RFC_PONG,
        [*pings, text("after the pings")],
        echo(*pongs, T("after the pings")),
    )
    _add("2.13", "pong with a 126-byte payload", RFC_CTRL, [pong(b"\xfe" * 126)], fail(1002))
    _add(
        "2.14",
        "ping with a 0-byte payload written byte by byte",
        RFC_PONG,
        [ping()],
        echo(Pong(b"")),
        chunk=1,
    )


#: The three ways of writing a case: whole, one write per frame, byte by byte.
WRITES: list[tuple[str, dict[str, object]]] = [
    ("in one write", {}),
    ("one write per frame", {"per_frame": True}),
    ("byte by byte", {"chunk": 1}),
]


def _reserved_bits() -> None:
    frames: dict[str, Callable[..., Wire]] = {
        "text": (lambda **kw: text("Hello", **kw)),
        "binary": (lambda **kw: binary(b"\x00\xff", **kw)),
        "ping": (lambda **kw: ping(b"ping", **kw)),
        "pong": (lambda **kw: pong(b"pong", **kw)),
        "close": (lambda **kw: close(1000, **kw)),
    }
    for major, (name, make) in enumerate(frames.items(), 1):
        for minor, bit in enumerate(("rsv1", "rsv2", "rsv3"), 1):
            _add(
                f"3.{major}.{minor}",
                f"{name} frame with {bit.upper()} set (no extension)",
                RFC_RSV,
                [make(**{bit: True})],
                fail(1002),
            )
    bad = text("bad", rsv2=True, rsv3=True)
    for minor, (how, opts) in enumerate(
        WRITES,
        1,
    ):
        _add(
            f"3.6.{minor}",
            f"text echoed, then RSV2+RSV3 text, then a ping (ignored), {how}",
            RFC_RSV,
            [text("good"), Wait(1), bad, ping(b"late")],
            fail(1002, T("good")),
            **opts,
        )
    pmd = Deflate()
    _add(
        "3.7.1",
        "permessage-deflate on: ping with RSV1",
        f"{RFC_RSV}; RFC 7692 6",
        [ping(b"ping", rsv1=True)],
        fail(1002),
        deflate=pmd,
    )
    _add(
        "3.7.2",
        "permessage-deflate on: pong with RSV1",
        f"{RFC_RSV}; RFC 7692 6",
        [pong(b"pong", rsv1=True)],
        fail(1002),
        deflate=pmd,
    )
    _add(
        "3.7.3",
        "permessage-deflate on: close with RSV1",
        f"{RFC_RSV}; RFC 7692 6",
        [close(1000, rsv1=True)],
        fail(1002),
        deflate=pmd,
    )
    _add(
        "3.7.4",
        "permessage-deflate on: text with RSV2",
        RFC_RSV,
        [text("Hello", rsv2=True)],
        fail(1002),
        deflate=pmd,
    )
    _add(
        "3.7.5",
        "permessage-deflate on: binary with RSV3",
        RFC_RSV,
        [binary(b"\x00", rsv3=True)],
        fail(1002),
        deflate=pmd,
    )


def _opcodes() -> None:
    for major, codes in ((1, range(3, 8)), (2, range(11, 16))):
        kind = "non-control" if major == 1 else "control"
        for minor, opcode in enumerate(codes, 1):
            _add(
                f"4.{major}.{minor}",
                f"reserved {kind} opcode {opcode}",
                RFC_OPCODE,
                [Wire(opcode)],
                fail(1002),
            )
        opcode = codes[-1]
        _add(
            f"4.{major}.6",
            f"reserved {kind} opcode {codes[0]} with a payload",
            RFC_OPCODE,
            [Wire(codes[0], b"reserved payload")],
            fail(1002),
        )
        _add(
            f"4.{major}.7",
            f"text echoed, reserved opcode {opcode}, then a ping (ignored)",
            RFC_OPCODE,
            [text("good"), Wait(1), Wire(opcode, b"x"), ping(b"late")],
            fail(1002, T("good")),
        )
        _add(
            f"4.{major}.8",
            f"reserved opcode {opcode} written byte by byte",
            RFC_OPCODE,
            [Wire(opcode, b"payload")],
            fail(1002),
            chunk=1,
        )


def _fragmentation() -> None:
    hello = [text("fragment1", fin=False), cont("fragment2")]
    _add(
        "5.1",
        "ping in two fragments",
        RFC_CTRL,
        [ping(b"fragment1", fin=False), cont(b"fragment2")],
        fail(1002),
    )
    _add(
        "5.2",
        "pong in two fragments",
        RFC_CTRL,
        [pong(b"fragment1", fin=False), cont(b"fragment2")],
        fail(1002),
    )
    for n, (how, opts) in enumerate(
        WRITES,
        3,
    ):
        _add(
            f"5.{n}",
            f"text in two fragments, {how}",
            RFC_FRAG,
            hello,
            echo(T("fragment1fragment2")),
            **opts,
        )
    for n, (how, opts) in enumerate(
        WRITES,
        6,
    ):
        _add(
            f"5.{n}",
            f"text in two fragments with a ping between them, {how}",
            RFC_FRAG,
            [hello[0], ping(b"between"), hello[1]],
            echo(Pong(b"between"), T("fragment1fragment2")),
            **opts,
        )
    for n, (how, opts) in enumerate(
        WRITES,
        9,
    ):
        _add(
            f"5.{n}",
            f"continuation (FIN) with no message started, {how}",
            "RFC 6455 5.4: a continuation frame needs a started message; else fail",
            [cont("orphan"), text("never echoed")],
            fail(1002),
            **opts,
        )
    _add(
        "5.12",
        "continuation (no FIN) with no message started, then its final fragment",
        "RFC 6455 5.4: a continuation frame needs a started message; else fail",
        [cont("orphan", fin=False), cont("end")],
        fail(1002),
    )
    _add(
        "5.13",
        "continuation (no FIN) with no message started, then a text message",
        "RFC 6455 5.4: a continuation frame needs a started message; else fail",
        [cont("orphan", fin=False), text("never echoed")],
        fail(1002),
    )
    _add(
        "5.14",
        "text started, then a new text frame instead of a continuation",
        "RFC 6455 5.4: a new data frame while a message is unfinished MUST fail",
        [text("start", fin=False), text("new message")],
        fail(1002),
    )
    _add(
        "5.15",
        "text started, then a binary frame instead of a continuation",
        "RFC 6455 5.4: a new data frame while a message is unfinished MUST fail",
        [text("start", fin=False), binary(b"new message")],
        fail(1002),
    )
    _add(
        "5.16",
        "a complete fragmented message, then a stray continuation",
        "RFC 6455 5.4: a continuation frame needs a started message; else fail",
        [*hello, Wait(1), cont("stray")],
        fail(1002, T("fragment1fragment2")),
    )
    data = b"0123456789abcdef"
    _add(
        "5.17",
        "text in 16 fragments of one byte each",
        RFC_FRAG,
        split_every(TEXT, data, 1),
        echo(T(data)),
    )
    _add(
        "5.18",
        "text made of three empty fragments",
        RFC_FRAG,
        [text(b"", fin=False), cont(b"", fin=False), cont(b"")],
        echo(T(b"")),
    )
    _add(
        "5.19",
        "text: empty first fragment, payload in the middle, empty last",
        RFC_FRAG,
        [text(b"", fin=False), cont(b"middle", fin=False), cont(b"")],
        echo(T("middle")),
    )
    frames: list[Item] = []
    for i, frame in enumerate(fragments(TEXT, b"abcdefghij", [2, 2, 2, 2, 2])):
        frames += [ping(f"ping {i}".encode()), frame]
    _add(
        "5.20",
        "text in five fragments with a ping before each, one write per frame",
        RFC_FRAG,
        frames,
        echo(*(Pong(f"ping {i}".encode()) for i in range(5)), T("abcdefghij")),
        per_frame=True,
    )
    frames = []
    for frame in fragments(BINARY, b"\x01\x02\x03\x04\x05", [1, 1, 1, 1, 1]):
        frames += [frame, pong(b"unsolicited")]
    _add(
        "5.21",
        "binary in five fragments with unsolicited pongs between (ignored)",
        RFC_FRAG,
        frames,
        echo(B(b"\x01\x02\x03\x04\x05")),
    )
    _add(
        "5.22",
        "two fragmented messages back to back (text, then binary)",
        RFC_FRAG,
        [*hello, *fragments(BINARY, b"\x00" * 10, [3, 3, 4])],
        echo(T("fragment1fragment2"), B(b"\x00" * 10)),
    )
    _add(
        "5.23",
        "text in two fragments with a 125-byte ping between, byte by byte",
        RFC_FRAG,
        [hello[0], ping(b"p" * 125), hello[1]],
        echo(Pong(b"p" * 125), T("fragment1fragment2")),
        chunk=1,
    )
    _add(
        "5.24",
        "text started, then a close frame: the close is answered",
        f"{RFC_FRAG}; {RFC_CLOSE}",
        [hello[0], close(1000)],
        close_echo(1000),
    )
    big = _rand(1 << 20, 524)
    _add(
        "5.25",
        "1 MiB binary in sixteen 64 KiB fragments",
        RFC_FRAG,
        split_every(BINARY, big, 1 << 16),
        echo(B(big)),
    )
    _add(
        "5.26",
        "text started, then a fragmented ping inside it",
        RFC_CTRL,
        [hello[0], ping(b"x", fin=False), cont(b"y"), hello[1]],
        fail(1002),
    )
    _add(
        "5.27",
        "text started, then a reserved control opcode inside it",
        RFC_OPCODE,
        [hello[0], Wire(0xB, b"x"), hello[1]],
        fail(1002),
    )
    data = bytes(range(200))
    _add(
        "5.28",
        "binary in 200 one-byte fragments, one write each",
        RFC_FRAG,
        split_every(BINARY, data, 1),
        echo(B(data)),
        per_frame=True,
    )
    _add(
        "5.29",
        "binary started, then a text frame instead of a continuation",
        "RFC 6455 5.4: a new data frame while a message is unfinished MUST fail",
        [binary(b"start", fin=False), text("new")],
        fail(1002),
    )


VALID_UTF8 = [
    ("Latin", "Hello-µ@ßöäüàá-UTF-8!!"),
    ("Greek", "κόσμε"),
    ("Cyrillic", "Привет, мир"),
    ("Hebrew", "שלום עולם"),
    ("Arabic", "مرحبا بالعالم"),
    ("Devanagari", "नमस्ते दुनिया"),
    ("Japanese", "こんにちは世界"),
    ("Chinese", "你好\uff0c世界"),
    ("Korean", "안녕하세요 세계"),
    ("Runic", "ᚠᛇᚻ᛫ᛒᛦᚦ᛫ᚠᚱᚩᚠᚢᚱ"),
    ("4-byte characters", "😀🎉🚀 𝄞 \U0001d56c\U0001d587\U0001d588 𠜎𠜱"),
    ("mixed scripts", "Aé€😀κόσμε世界Привет"),
]

#: 1-, 2-, 3- and 4-byte characters back to back (10 bytes).
EVERY_WIDTH = "aé€𝄞"

BOUNDARIES = [
    0x0000,
    0x007F,
    0x0080,
    0x07FF,
    0x0800,
    0xD7FF,
    0xE000,
    0xFFFD,
    0xFFFE,
    0xFFFF,
    0x10000,
    0x10FFFF,
]

INVALID_UTF8: list[tuple[str, bytes]] = [
    ("lone continuation byte 0x80", b"\x80"),
    ("lone continuation byte 0xbf", b"ab\xbfcd"),
    ("two continuation bytes", b"\x80\xbf"),
    ("2-byte lead byte followed by ASCII", b"\xc2A"),
    ("overlong '/' in 2 bytes", b"\xc0\xaf"),
    ("overlong '/' in 3 bytes", b"\xe0\x80\xaf"),
    ("overlong '/' in 4 bytes", b"\xf0\x80\x80\xaf"),
    ("overlong U+007F (C1 BF)", b"\xc1\xbf"),
    ("overlong U+07FF in 3 bytes", b"\xe0\x9f\xbf"),
    ("overlong U+FFFF in 4 bytes", b"\xf0\x8f\xbf\xbf"),
    ("5-byte sequence", b"\xf8\x88\x80\x80\x80"),
    ("6-byte sequence", b"\xfc\x84\x80\x80\x80\x80"),
    ("surrogate U+D800", b"\xed\xa0\x80"),
    ("surrogate U+DB7F", b"\xed\xad\xbf"),
    ("surrogate U+DC00", b"\xed\xb0\x80"),
    ("surrogate U+DFFF", b"\xed\xbf\xbf"),
    ("surrogate pair U+D800 U+DC00", b"\xed\xa0\x80\xed\xb0\x80"),
    ("code point U+110000", b"\xf4\x90\x80\x80"),
    ("lead byte F5", b"\xf5\x80\x80\x80"),
    ("lead byte F7 (U+1FFFFF)", b"\xf7\xbf\xbf\xbf"),
    ("byte FE", b"\xfe"),
    ("byte FF", b"\xff"),
    ("truncated 2-byte char at end", "κόσμ".encode() + b"\xce"),
    ("truncated 3-byte char at end", b"euro \xe2\x82"),
    ("truncated 4-byte char at end", b"smile \xf0\x9f\x98"),
    ("invalid sequence in the middle", "κόσμε".encode() + b"\xed\xa0\x80edited"),
]


def _utf8() -> None:
    for n, (name, s) in enumerate(VALID_UTF8, 1):
        _add(f"6.1.{n}", f"valid UTF-8 ({name}) in one frame", RFC_UTF8, [text(s)], echo(T(s)))
    for n, (name, s) in enumerate(VALID_UTF8[:4] + VALID_UTF8[10:], 1):
        data = s.encode()
        _add(
            f"6.2.{n}",
            f"valid UTF-8 ({name}), one byte per fragment",
            RFC_UTF8,
            split_every(TEXT, data, 1),
            echo(T(data)),
        )
    data = EVERY_WIDTH.encode()
    for cut in range(1, len(data)):
        _add(
            f"6.3.{cut}",
            f"'aé€𝄞' split into two fragments after byte {cut}",
            RFC_UTF8,
            fragments(TEXT, data, [cut, len(data) - cut]),
            echo(T(data)),
        )
    data = "😀".encode()
    _add(
        f"6.3.{len(EVERY_WIDTH.encode())}",
        "one 4-byte character in four 1-byte fragments",
        RFC_UTF8,
        split_every(TEXT, data, 1),
        echo(T(data)),
        per_frame=True,
    )
    for n, cp in enumerate(BOUNDARIES, 1):
        data = chr(cp).encode("utf-8", "surrogatepass")
        _add(
            f"6.4.{n}",
            f"boundary code point U+{cp:04X} ({data.hex(' ')})",
            RFC_UTF8,
            [text(data)],
            echo(T(data)),
        )
    for n, (name, data) in enumerate(INVALID_UTF8, 1):
        _add(
            f"6.5.{n}",
            f"invalid UTF-8: {name} ({data.hex(' ')})",
            RFC_UTF8,
            [text(data)],
            fail(1007),
        )
    bad = b"ab" + b"\xed\xa0\x80" + b"cd"
    for cut in range(1, len(bad)):
        _add(
            f"6.6.{cut}",
            f"surrogate 'ab ED A0 80 cd' split into two fragments after byte {cut}",
            RFC_UTF8,
            fragments(TEXT, bad, [cut, len(bad) - cut]),
            fail(1007),
        )
    data = "κόσμ".encode() + b"\xce"
    _add(
        "6.6.7",
        "final fragment ends inside a 2-byte character",
        RFC_UTF8,
        [text("κόσμ", fin=False), cont(b"\xce")],
        fail(1007),
    )
    _add(
        "6.6.8",
        "valid text, then invalid UTF-8 in a 1-byte final fragment",
        RFC_UTF8,
        [text("valid", fin=False), cont(b"\xff")],
        fail(1007),
    )
    fast = (
        "RFC 6455 8.1 + issue 3 (fail fast): fail on the first invalid fragment, "
        "before the message ends"
    )
    fast_cases: list[tuple[str, list[Item], dict[str, object]]] = [
        (
            "first fragment is 0xFF; the other fragments are never sent",
            [text(b"\xff", fin=False)],
            {},
        ),
        (
            "first fragment has a surrogate after valid text",
            [text("κόσμε".encode() + b"\xed\xa0\x80edited", fin=False)],
            {},
        ),
        (
            "valid first fragment, overlong second fragment, message unfinished",
            [text("Hello", fin=False), cont(b"\xc0\xaf", fin=False)],
            {"per_frame": True},
        ),
        (
            "first fragment ends with F4 90 (above U+10FFFF already)",
            [text(b"ok \xf4\x90", fin=False)],
            {},
        ),
        (
            "first fragment ends with ED A0 (a surrogate already)",
            [text(b"ok \xed\xa0", fin=False)],
            {},
        ),
        (
            "first fragment ends with E0 80 (overlong already)",
            [text(b"ok \xe0\x80", fin=False)],
            {},
        ),
        (
            "surrogate split over the first two fragments, message unfinished",
            [text(b"ab\xed", fin=False), cont(b"\xa0\x80", fin=False)],
            {"per_frame": True},
        ),
        (
            "first of many fragments invalid, written byte by byte",
            [text(b"abc\xfe", fin=False)],
            {"chunk": 1},
        ),
        (
            "first fragment invalid, then a ping (no pong once failing)",
            [text(b"\xc0", fin=False), ping(b"after")],
            {},
        ),
    ]
    for n, (name, frames, opts) in enumerate(fast_cases, 1):
        _add(f"6.7.{n}", f"fail fast: {name}", fast, frames, fail(1007), **opts)
    _add(
        "6.8.1",
        "fragment ends with a valid incomplete prefix (E2 82), completed later",
        "RFC 6455 8.1: an incomplete character may be completed by the next fragment",
        [text(b"euro \xe2\x82", fin=False), cont(b"\xac")],
        echo(T("euro €")),
        per_frame=True,
    )
    _add(
        "6.8.2",
        "each fragment ends mid-character, the message completes: echo",
        RFC_UTF8,
        fragments(TEXT, "€€€".encode(), [2, 2, 2, 3]),
        echo(T("€€€")),
        per_frame=True,
    )
    big = ("κόσμε 😀 " * 20000).encode()
    _add(
        "6.8.3",
        f"{len(big)}-byte multi-byte text in 4099-byte fragments",
        RFC_UTF8,
        split_every(TEXT, big, 4099),
        echo(T(big)),
    )
    _add(
        "6.8.4",
        "large valid text with invalid UTF-8 in its last byte",
        RFC_UTF8,
        [text(big[:-1] + b"\xff")],
        fail(1007),
    )


VALID_CODES = [
    1000,
    1001,
    1002,
    1003,
    1007,
    1008,
    1009,
    1010,
    1011,
    1012,
    1013,
    1014,
    3000,
    3999,
    4000,
    4999,
]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def _close() -> None:
    _add(
        "7.1.1",
        "close without payload: answered (empty or 1000)",
        f"{RFC_CLOSE}; 7.1.5: no code means 1005, which is never sent",
        [close()],
        close_echo(EMPTY, 1000),
    )
    _add("7.1.2", "close 1000: answered with 1000", RFC_CLOSE, [close(1000)], close_echo(1000))
    _add(
        "7.1.3",
        "text echoed, then close 1000",
        RFC_CLOSE,
        [text("Hello"), Wait(1), close(1000)],
        close_echo(1000, replies=(T("Hello"),)),
    )
    _add(
        "7.1.4",
        "close 1000, then a text message (ignored after close)",
        "RFC 6455 5.5.1: after a close frame no more data frames are processed",
        [close(1000), text("after close")],
        close_echo(1000),
    )
    _add(
        "7.1.5",
        "close 1000, then a ping (no pong after close)",
        "RFC 6455 5.5.1: after a close frame no more data frames are processed",
        [close(1000), ping(b"after close")],
        close_echo(1000),
    )
    _add(
        "7.1.6",
        "close 1000 twice: a single close frame comes back",
        "RFC 6455 5.5.1: a close frame is sent at most once",
        [close(1000), close(1000)],
        close_echo(1000),
    )
    _add(
        "7.1.7",
        "ping, then close 1000 in one write: pong, then close",
        RFC_CLOSE,
        [ping(b"before"), close(1000)],
        close_echo(1000, replies=(Pong(b"before"),)),
    )
    _add(
        "7.1.8",
        "close 1000 written byte by byte",
        RFC_CLOSE,
        [close(1000, b"bye")],
        close_echo(1000),
        chunk=1,
    )
    _add(
        "7.2.1",
        "close with a 1-byte payload",
        "RFC 6455 5.5.1: a close body starts with a 2-byte code; 1 byte is invalid",
        [Wire(CLOSE, b"\x03")],
        fail(1002),
    )
    _add(
        "7.2.2",
        "close 1000 with reason 'Hello World!'",
        RFC_CLOSE,
        [close(1000, b"Hello World!")],
        close_echo(1000),
    )
    _add(
        "7.2.3",
        "close 1000 with a 123-byte reason (125-byte payload)",
        RFC_CLOSE,
        [close(1000, b"r" * 123)],
        close_echo(1000),
    )
    _add(
        "7.2.4",
        "close 1000 with a 124-byte reason (126-byte payload)",
        RFC_CTRL,
        [close(1000, b"r" * 124)],
        fail(1002),
    )
    _add(
        "7.2.5",
        "close reason that is invalid UTF-8",
        "RFC 6455 5.5.1 + 8.1: the close reason is UTF-8; invalid MUST fail (1007)",
        [close(1000, b"bad \xed\xa0\x80 reason")],
        fail(1007),
    )
    _add(
        "7.2.6",
        "close reason with multi-byte UTF-8",
        RFC_CLOSE,
        [close(1000, "κόσμε 😀".encode())],
        close_echo(1000),
    )
    _add(
        "7.2.7",
        "close reason ending in a truncated character",
        "RFC 6455 5.5.1 + 8.1: the close reason is UTF-8; invalid MUST fail (1007)",
        [close(1000, b"ok \xe2\x82")],
        fail(1007),
    )
    _add("7.2.8", "close frame without FIN", RFC_CTRL, [close(1000, fin=False)], fail(1002))
    for n, code in enumerate(VALID_CODES, 1):
        _add(
            f"7.3.{n}",
            f"close with valid code {code}: echoed",
            f"{RFC_CODES}; {RFC_CLOSE}",
            [close(code)],
            close_echo(code),
        )
    for n, code in enumerate(INVALID_CODES, 1):
        _add(
            f"7.4.{n}",
            f"close with invalid code {code}",
            f"{RFC_CODES}: other codes MUST fail the connection (1002)",
            [close(code)],
            fail(1002),
        )


def _limits() -> None:
    mib = 1 << 20
    text_1m = _lorem(mib)
    _add("9.1.1", "text message of 1 MiB", RFC_LIMIT, [text(text_1m)], echo(T(text_1m)))
    data = _rand(mib, 912)
    _add("9.1.2", "binary message of 1 MiB", RFC_LIMIT, [binary(data)], echo(B(data)))
    text_4m = _lorem(4 * mib)
    _add("9.1.3", "text message of 4 MiB", RFC_LIMIT, [text(text_4m)], echo(T(text_4m)))
    data16 = _rand(16 * mib, 914)
    _add(
        "9.1.4",
        "binary message of 16 MiB",
        RFC_LIMIT,
        [binary(data16)],
        echo(B(data16)),
        tags=("large",),
    )
    data4 = data16[: 4 * mib]
    _add(
        "9.2.1",
        "binary 4 MiB in 64 KiB fragments",
        RFC_LIMIT,
        split_every(BINARY, data4, 1 << 16),
        echo(B(data4)),
    )
    _add(
        "9.2.2",
        "binary 1 MiB in 1 KiB fragments",
        RFC_LIMIT,
        split_every(BINARY, data4[:mib], 1 << 10),
        echo(B(data4[:mib])),
    )
    _add(
        "9.2.3",
        "multi-byte text 1 MiB in 4095-byte fragments (characters cut)",
        RFC_LIMIT,
        split_every(TEXT, text_1m, 4095),
        echo(T(text_1m)),
    )
    small = [text(f"message {i:04}") for i in range(1000)]
    _add(
        "9.2.4",
        "1000 small text messages in one write",
        RFC_LIMIT,
        small,
        echo(*(T(f"message {i:04}") for i in range(1000))),
    )
    blobs = [data16[i * 65536 : (i + 1) * 65536] for i in range(64)]
    _add(
        "9.2.5",
        "64 binary messages of 64 KiB in one write (echoes flow meanwhile)",
        RFC_LIMIT,
        [binary(b) for b in blobs],
        echo(*(B(b) for b in blobs)),
    )
    limit = "max-size 1 MiB"
    exact = data4[:LIMIT]
    _add(
        "9.3.1",
        f"{limit}: binary of exactly 1 MiB is accepted",
        RFC_LIMIT,
        [binary(exact)],
        echo(B(exact)),
        limited=True,
    )
    _add(
        "9.3.2",
        f"{limit}: binary frame of 1 MiB + 1",
        RFC_LIMIT,
        [binary(data4[: LIMIT + 1])],
        fail(1009),
        limited=True,
    )
    _add(
        "9.3.3",
        f"{limit}: text frame of 1 MiB + 1",
        RFC_LIMIT,
        [text(_lorem(LIMIT + 1))],
        fail(1009),
        limited=True,
    )
    _add(
        "9.3.4",
        f"{limit}: binary of 1 MiB + 1 in seventeen fragments",
        RFC_LIMIT,
        [
            *split_every(BINARY, data4[:LIMIT], 1 << 16)[:-1],
            Wire(CONT, data4[LIMIT - (1 << 16) : LIMIT], fin=False),
            cont(b"!"),
        ],
        fail(1009),
        limited=True,
    )
    _add(
        "9.3.5",
        f"{limit}: 1 MiB fragment, then 1 more byte (message unfinished)",
        f"{RFC_LIMIT}: the message is over the limit before it ends",
        [binary(exact, fin=False), Wire(CONT, b"!", fin=False)],
        fail(1009),
        limited=True,
    )
    _add(
        "9.3.6",
        f"{limit}: header declaring 1 GiB, followed by only 1 KiB",
        f"{RFC_LIMIT}: the declared length alone exceeds the limit",
        [Wire(BINARY, b"\x00" * 1024, length=1 << 30)],
        fail(1009),
        limited=True,
    )
    _add(
        "9.3.7",
        f"{limit}: ping, then an oversized frame",
        RFC_LIMIT,
        [ping(b"first"), binary(data4[: LIMIT + 1])],
        fail(1009, Pong(b"first")),
        limited=True,
    )
    _add(
        "9.3.8",
        f"{limit}: 1 MiB text in fragments is accepted",
        RFC_LIMIT,
        split_every(TEXT, text_1m, 100_000),
        echo(T(text_1m)),
        limited=True,
    )


def _compression() -> None:
    pmd = Deflate()
    rfc = f"{RFC_PMCE}; RFC 7692 7.2: DEFLATE data, 00 00 ff ff tail removed"
    sizes = [0, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20]
    for n, size in enumerate(sizes, 1):
        data = _lorem(size)
        _add(
            f"12.1.{n}",
            f"compressible text of {size} bytes, three times",
            rfc,
            [Deflated(TEXT, data)] * 3,
            echo(*[T(data)] * 3),
            deflate=pmd,
            compressed_echo=size >= 1024,
        )
    for n, size in enumerate(sizes, 1):
        data = _rand(size, size)
        _add(
            f"12.2.{n}",
            f"incompressible binary of {size} bytes, twice",
            rfc,
            [Deflated(BINARY, data)] * 2,
            echo(*[B(data)] * 2),
            deflate=pmd,
        )
    data = _lorem(3000)
    _add(
        "12.3.1",
        "compressed text in three fragments (RSV1 on the first only)",
        rfc,
        [Deflated(TEXT, data, fragments=3)],
        echo(T(data)),
        deflate=pmd,
    )
    blob = _lorem(65536)
    _add(
        "12.3.2",
        "compressed binary 64 KiB in eight fragments, one write each",
        rfc,
        [Deflated(BINARY, blob, fragments=8)],
        echo(B(blob)),
        deflate=pmd,
        per_frame=True,
    )
    _add(
        "12.3.3",
        "uncompressed message (RSV1 clear) in a compressed session",
        "RFC 7692 6: a message with RSV1 clear is not compressed",
        [text("plain"), Deflated(TEXT, b"compressed"), binary(b"plain")],
        echo(T("plain"), T("compressed"), B(b"plain")),
        deflate=pmd,
    )
    _add(
        "12.3.4", "empty compressed message", rfc, [Deflated(TEXT, b"")], echo(T(b"")), deflate=pmd
    )
    _add(
        "12.3.5",
        "compressed message that keeps its 00 00 ff ff tail",
        "RFC 7692 7.2.3.5: DEFLATE ending in an empty stored block is valid",
        [Deflated(TEXT, b"Hello, tail", keep_tail=True)],
        echo(T("Hello, tail")),
        deflate=pmd,
    )
    _add(
        "12.3.6",
        "compressed message ending in a BFINAL=1 block (no context takeover)",
        "RFC 7692 7.2.3.4: a message may end with a BFINAL=1 block",
        [Deflated(TEXT, b"Hello, final", final_block=True)],
        echo(T("Hello, final")),
        deflate=Deflate(client_no_context_takeover=True),
    )
    _add(
        "12.3.7",
        "compressed text written byte by byte",
        rfc,
        [Deflated(TEXT, data[:300])],
        echo(T(data[:300])),
        deflate=pmd,
        chunk=1,
    )
    _add(
        "12.3.8",
        "compressed fragments with a ping between them",
        rfc,
        [Deflated(TEXT, data, fragments=2, ping_between=b"mid")],
        echo(Pong(b"mid"), T(data)),
        deflate=pmd,
    )
    _add(
        "12.4.1",
        "RSV1 set on a continuation frame",
        "RFC 7692 6.1: RSV1 only on the first frame of a message; else fail",
        [Deflated(TEXT, data, fragments=2, rsv1_on_continuations=True)],
        fail(1002),
        deflate=pmd,
    )
    _add(
        "12.4.2",
        "RSV1 on the continuation of an uncompressed fragmented message",
        "RFC 7692 6.1: RSV1 only on the first frame of a message; else fail",
        [text("plain", fin=False), cont("more", rsv1=True)],
        fail(1002),
        deflate=pmd,
    )
    _add(
        "12.4.3",
        "invalid DEFLATE data (reserved block type)",
        "RFC 7692 6.2 + wsfast rust/src/protocol/error.rs: corrupt data fails with 1002",
        [RawDeflated(BINARY, b"\xff\xff\xff\xff")],
        fail(1002),
        deflate=pmd,
    )
    _add(
        "12.4.4",
        "compressed text that inflates to invalid UTF-8",
        RFC_UTF8,
        [Deflated(TEXT, b"bad \xed\xa0\x80 text")],
        fail(1007),
        deflate=pmd,
    )
    _add(
        "12.4.5",
        "invalid DEFLATE data after a good compressed message",
        "RFC 7692 6.2 + wsfast rust/src/protocol/error.rs: corrupt data fails with 1002",
        [Deflated(TEXT, b"good"), Wait(1), RawDeflated(TEXT, b"\x07\x00\x00")],
        fail(1002, T("good")),
        deflate=pmd,
    )
    limit = "max-size 1 MiB"
    exact = _lorem(LIMIT)
    _add(
        "12.5.1",
        f"{limit}: compressed text inflating to exactly 1 MiB is accepted",
        RFC_LIMIT,
        [Deflated(TEXT, exact)],
        echo(T(exact)),
        deflate=pmd,
        limited=True,
    )
    _add(
        "12.5.2",
        f"{limit}: compressed binary inflating to 1 MiB + 1",
        f"{RFC_LIMIT} (after decompression)",
        [Deflated(BINARY, b"\x00" * (LIMIT + 1))],
        fail(1009),
        deflate=pmd,
        limited=True,
    )
    _add(
        "12.5.3",
        f"{limit}: decompression bomb, 512 MiB of zeros in ~0.5 MiB",
        f"{RFC_LIMIT}; bounded memory: inflate stops at the limit",
        [Bomb(BINARY, 512 << 20)],
        fail(1009),
        deflate=pmd,
        limited=True,
        bounded_memory=True,
    )
    _add(
        "12.5.4",
        f"{limit}: decompression bomb in eight fragments",
        RFC_LIMIT,
        [Bomb(BINARY, 512 << 20, fragments=8)],
        fail(1009),
        deflate=pmd,
        limited=True,
        bounded_memory=True,
    )


COMBINATIONS: list[Deflate] = [
    Deflate(),
    Deflate(client_max_window_bits=True),
    Deflate(server_no_context_takeover=True),
    Deflate(client_no_context_takeover=True),
    Deflate(server_no_context_takeover=True, client_no_context_takeover=True),
    Deflate(server_max_window_bits=9),
    Deflate(server_max_window_bits=12),
    Deflate(server_max_window_bits=15),
    Deflate(client_max_window_bits=9),
    Deflate(client_max_window_bits=12),
    Deflate(client_max_window_bits=15),
    Deflate(server_max_window_bits=9, client_max_window_bits=9),
    Deflate(True, True, 10, 11),
]


def _parameters() -> None:
    # Repeats make back-references into earlier messages (context takeover) and at a
    # distance of 5000 bytes (beyond windows of 9 to 12 bits): an endpoint that ignores
    # the agreed parameters produces data the tester's own inflater rejects.
    hello = b"Hello, permessage-deflate! " * 4
    block = _rand(5000, 13)
    messages: list[Item] = [
        Deflated(TEXT, hello),
        Deflated(TEXT, hello),
        Deflated(TEXT, hello),
        Deflated(BINARY, block + block),
        Deflated(TEXT, _lorem(20000)),
        Deflated(TEXT, _lorem(5000), fragments=3),
        text("uncompressed"),
    ]
    replies = (
        T(hello),
        T(hello),
        T(hello),
        B(block + block),
        T(_lorem(20000)),
        T(_lorem(5000)),
        T("uncompressed"),
    )
    for n, params in enumerate(COMBINATIONS, 1):
        rfc = f"RFC 7692 7.1: offer '{params.offer()}'; both sides honour the agreement"
        _add(
            f"13.{n}.1",
            f"'{params.offer()}', one write",
            rfc,
            messages,
            echo(*replies),
            deflate=params,
            compressed_echo=True,
        )
        _add(
            f"13.{n}.2",
            f"'{params.offer()}', written in 7-byte pieces",
            rfc,
            messages,
            echo(*replies),
            deflate=params,
            compressed_echo=True,
            chunk=7,
        )


_framing()
_pings()
_reserved_bits()
_opcodes()
_fragmentation()
_utf8()
_close()
_limits()
_compression()
_parameters()

#: Cases by id.
BY_ID: dict[str, Case] = {case.id: case for case in CASES}
