# SPDX-License-Identifier: MIT
"""A raw WebSocket endpoint that plays conformance cases over a real socket.

Nothing here uses wsfast: frames are encoded and decoded by hand, DEFLATE goes through
Python's ``zlib`` (raw streams, ``wbits=-N``) and the handshake is written and checked
by hand, so the suite is an independent implementation of what it tests.

:class:`RawPeer` is one side of a connection: the client when testing a server (it
masks, the peer must not) or the server when testing a client (the reverse). It sends
the items of a :class:`~tests.conformance.cases.Case`, collects what the peer answers
(checking every received frame against RFC 6455), runs the closing handshake and
returns an :class:`Observed` record that :func:`check` compares with the case.
"""

from __future__ import annotations

import base64
import hashlib
import os
import select
import socket
import ssl
import time
import zlib
from dataclasses import dataclass, field

from tests.conformance.cases import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    Bomb,
    Case,
    Deflate,
    Deflated,
    Item,
    Msg,
    Pong,
    RawDeflated,
    Reply,
    Wait,
    Wire,
)

#: Seconds allowed for any single wait on the peer.
TIMEOUT = 5.0
#: Pause between writes when a case asks for one write per frame.
FRAME_PAUSE = 0.002
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TAIL = b"\x00\x00\xff\xff"
VALID_OPCODES = {CONT, TEXT, BINARY, CLOSE, PING, PONG}


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for ``key`` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def xor_mask(data: bytes, mask: bytes) -> bytes:
    """Mask or unmask ``data`` with a 4-byte key (RFC 6455 section 5.3)."""
    if not data:
        return b""
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """One frame on the wire; ``length`` overrides the length written in the header."""
    b0 = (fin << 7) | (rsv1 << 6) | (rsv2 << 5) | (rsv3 << 4) | opcode
    n = len(payload) if length is None else length
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes([b0, bit | n])
    elif n < 1 << 16:
        head = bytes([b0, bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, bit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + xor_mask(payload, mask)


def bomb_stream(size: int) -> bytes:
    """Raw DEFLATE of ``size`` zero bytes (a multiple of 1 MiB), built in O(1 MiB) work.

    Once the window is full of zeros, compressing the next MiB of zeros and
    sync-flushing always yields the same bytes, so they are repeated.
    """
    mib = 1 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(mib)
    first = c.compress(zeros) + c.flush(zlib.Z_SYNC_FLUSH)
    rest = c.compress(zeros) + c.flush(zlib.Z_SYNC_FLUSH)
    data = first + rest * (size // mib - 1)
    assert data.endswith(TAIL)
    return data[: -len(TAIL)]


# ---- permessage-deflate ------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """Negotiated permessage-deflate parameters (defaults filled in)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15


def parse_params(value: str) -> tuple[str, dict[str, str | None]]:
    """Split one extension ``name; a; b=1`` into its name and parameters."""
    name, *raw = (part.strip() for part in value.split(";"))
    params: dict[str, str | None] = {}
    for item in raw:
        key, sep, val = item.partition("=")
        key = key.strip()
        if key in params:
            raise ValueError(f"duplicate parameter {key}")
        params[key] = val.strip().strip('"') if sep else None
    return name, params


def check_response(offer: Deflate, header: str) -> tuple[Agreement, list[str]]:
    """The agreement in a server's response to ``offer``, and RFC 7692 violations."""
    problems: list[str] = []
    name, params = parse_params(header)
    if name != "permessage-deflate":
        problems.append(f"server accepted an unknown extension {name!r}")
    known = {
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
    }
    for key in params:
        if key not in known:
            problems.append(f"unknown parameter {key} in the response")
    server_bits = 15
    if "server_max_window_bits" in params:
        server_bits = int(params["server_max_window_bits"] or "0")
        if not 8 <= server_bits <= 15:
            problems.append(f"server_max_window_bits={server_bits} out of range")
        if offer.server_max_window_bits is not None and server_bits > offer.server_max_window_bits:
            problems.append("server_max_window_bits above the offered value (RFC 7692 7.1.2.1)")
    elif offer.server_max_window_bits is not None:
        problems.append("offered server_max_window_bits missing from the response (7.1.2.1)")
    client_bits = 15
    if "client_max_window_bits" in params:
        if offer.client_max_window_bits is None:
            problems.append("client_max_window_bits in the response but not offered (7.1.2.2)")
        raw = params["client_max_window_bits"]
        if raw is None:
            problems.append("client_max_window_bits without a value in the response (7.1.2.2)")
        else:
            client_bits = int(raw)
            if not 8 <= client_bits <= 15:
                problems.append(f"client_max_window_bits={client_bits} out of range")
            offered = offer.client_max_window_bits
            if isinstance(offered, int) and offered is not True and client_bits > offered:
                problems.append("client_max_window_bits above the offered value (7.1.2.2)")
    elif isinstance(offer.client_max_window_bits, int) and offer.client_max_window_bits is not True:
        # The server may omit it; the client still keeps its own offered cap.
        client_bits = offer.client_max_window_bits
    server_nct = "server_no_context_takeover" in params
    if offer.server_no_context_takeover and not server_nct:
        problems.append("offered server_no_context_takeover missing from the response (7.1.1.1)")
    agreement = Agreement(
        server_no_context_takeover=server_nct,
        client_no_context_takeover="client_no_context_takeover" in params
        or offer.client_no_context_takeover,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )
    return agreement, problems


class Deflater:
    """The tester's compressor for its own direction."""

    def __init__(self, bits: int, no_context_takeover: bool) -> None:
        # zlib cannot compress raw DEFLATE with an 8-bit window; 9 stays within it.
        self.bits = max(bits, 9)
        self.reset = no_context_takeover
        self._c = self._new()

    def _new(self) -> zlib._Compress:
        return zlib.compressobj(6, zlib.DEFLATED, -self.bits)

    def compress(self, data: bytes, *, keep_tail: bool = False, final_block: bool = False) -> bytes:
        """Compress one message (RFC 7692 section 7.2.1)."""
        if final_block:
            # A fresh stream ending with BFINAL=1; the next message starts a new one.
            c = self._new()
            out = c.compress(data) + c.flush(zlib.Z_FINISH)
            self._c = self._new()
            return out
        out = self._c.compress(data) + self._c.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(TAIL)
        if self.reset:
            self._c = self._new()
        return out if keep_tail else out[: -len(TAIL)]


class Inflater:
    """The tester's decompressor for the peer's direction (strict about the agreement)."""

    def __init__(self, bits: int, no_context_takeover: bool) -> None:
        self.bits = bits
        self.reset = no_context_takeover
        self._d = zlib.decompressobj(-bits)

    def inflate(self, data: bytes) -> bytes:
        """Decompress one message; raises zlib.error if it breaks the agreement."""
        if self.reset:
            # A fresh inflater: data that refers to an earlier message cannot decode.
            self._d = zlib.decompressobj(-self.bits)
        if self.bits == 15:
            return self._d.decompress(data + TAIL)
        # zlib accepts any distance into the output of the current inflate() call, so
        # a window over 2**bits inside one message would go unnoticed. Inflating in
        # 256-byte steps keeps the reachable history at 2**bits + 256 bytes.
        out: list[bytes] = []
        pending = data + TAIL
        while pending:
            out.append(self._d.decompress(pending, 256))
            pending = self._d.unconsumed_tail
        return b"".join(out)


# ---- received frames ----------------------------------------------------------------


@dataclass
class RxFrame:
    """One frame received from the peer (payload unmasked)."""

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    masked: bool
    payload: bytes
    head: bytes


@dataclass
class Observed:
    """What the peer did during one case."""

    replies: list[Reply] = field(default_factory=list)
    close_received: bool = False
    close_code: int | None = None
    close_reason: bytes = b""
    close_frame: bytes = b""
    eof: bool = False
    violations: list[str] = field(default_factory=list)
    timeout: str | None = None
    compressed_messages: int = 0
    agreement: Agreement | None = None


class RawPeer:
    """The raw endpoint: sends a case's items and records what the peer does."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        client: bool,
        agreement: Agreement | None,
        received: bytes = b"",
    ) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.client = client
        self.agreement = agreement
        self.rx = bytearray(received)
        self.pos = 0
        self.sent_close = False
        self.send_failed = False
        self.obs = Observed(agreement=agreement)
        self.deflater: Deflater | None = None
        self.inflater: Inflater | None = None
        if agreement is not None:
            if client:
                ours = (agreement.client_max_window_bits, agreement.client_no_context_takeover)
                theirs = (agreement.server_max_window_bits, agreement.server_no_context_takeover)
            else:
                ours = (agreement.server_max_window_bits, agreement.server_no_context_takeover)
                theirs = (agreement.client_max_window_bits, agreement.client_no_context_takeover)
            self.deflater = Deflater(*ours)
            self.inflater = Inflater(*theirs)
        self._msg_opcode: int | None = None
        self._msg_parts: list[bytes] = []
        self._msg_compressed = False

    # ---- sending ---------------------------------------------------------------------

    def _mask(self, wrong: bool = False) -> bytes | None:
        # Clients mask every frame, servers none (RFC 6455 5.1); wrong=True breaks it.
        return os.urandom(4) if self.client != wrong else None

    def encode(self, item: Item) -> list[bytes]:
        """The frames (as bytes) of one item."""
        if isinstance(item, Wire):
            if item.opcode == CLOSE:
                self.sent_close = True
            return [
                encode_frame(
                    item.opcode,
                    item.payload,
                    fin=item.fin,
                    rsv1=item.rsv1,
                    rsv2=item.rsv2,
                    rsv3=item.rsv3,
                    mask=self._mask(item.wrong_mask),
                    length=item.length,
                )
            ]
        if isinstance(item, Deflated | RawDeflated | Bomb):
            count = 1
            again = False
            if isinstance(item, Deflated):
                assert self.deflater is not None, "compressed item without permessage-deflate"
                data = self.deflater.compress(
                    item.payload, keep_tail=item.keep_tail, final_block=item.final_block
                )
                count, again = item.fragments, item.rsv1_on_continuations
            elif isinstance(item, Bomb):
                data, count = bomb_stream(item.size), item.fragments
            else:
                data = item.data
            size = -(-len(data) // count) if data else 0
            frames = []
            between = item.ping_between if isinstance(item, Deflated) else None
            for i in range(count):
                if i == 1 and between is not None:
                    frames.append(encode_frame(PING, between, mask=self._mask()))
                piece = data[i * size : (i + 1) * size]
                frames.append(
                    encode_frame(
                        item.opcode if i == 0 else CONT,
                        piece,
                        fin=i == count - 1,
                        rsv1=i == 0 or again,
                        mask=self._mask(),
                    )
                )
            return frames
        raise TypeError(f"cannot encode {item!r}")

    def write(self, data: bytes) -> None:
        """Write all of ``data``, reading meanwhile so neither side can block the other."""
        view = memoryview(data)
        deadline = time.monotonic() + TIMEOUT
        while view and not self.send_failed:
            wait_read = [] if self.obs.eof else [self.sock]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("peer stopped reading while we were writing")
            readable, writable, _ = select.select(wait_read, [self.sock], [], remaining)
            if readable:
                self._fill()
            if writable:
                try:
                    sent = self.sock.send(view[: 1 << 20])
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    # The peer failed the connection and closed: what it sent stays readable.
                    self.send_failed = True
                    break
                view = view[sent:]
                deadline = time.monotonic() + TIMEOUT

    def play(self, case: Case) -> None:
        """Send the case's items as its chunking says, waiting where it says."""
        pending: list[bytes] = []
        for item in case.send:
            if isinstance(item, Wait):
                self._flush(case, pending)
                pending = []
                self.collect(item.replies)
            else:
                pending.extend(self.encode(item))
        self._flush(case, pending)

    def _flush(self, case: Case, frames: list[bytes]) -> None:
        if not frames:
            return
        if case.per_frame:
            for frame in frames:
                self.write(frame)
                time.sleep(FRAME_PAUSE)
        elif case.chunk:
            data = b"".join(frames)
            # Tiny writes with a pause, so that the peer sees the pieces separately.
            pause = 0.0002 if len(data) <= 4096 else 0.0
            for start in range(0, len(data), case.chunk):
                self.write(data[start : start + case.chunk])
                if pause:
                    time.sleep(pause)
        else:
            self.write(b"".join(frames))

    def send_close(self, code: int | None) -> None:
        """Send a close frame (at most once)."""
        if self.sent_close:
            return
        payload = b"" if code is None else code.to_bytes(2, "big")
        self.sent_close = True
        self.write(encode_frame(CLOSE, payload, mask=self._mask()))

    # ---- receiving -------------------------------------------------------------------

    def _fill(self) -> None:
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            # (Over TLS: a record without application data, such as a session ticket.)
            return
        except ConnectionResetError:
            # After a failure the peer may reset instead of FIN (it had unread data).
            self.obs.eof = True
            return
        if not data:
            self.obs.eof = True
            return
        if self.pos > (1 << 20):
            del self.rx[: self.pos]
            self.pos = 0
        self.rx += data

    def _parse(self) -> RxFrame | None:
        buf, pos = self.rx, self.pos
        if len(buf) - pos < 2:
            return None
        b0, b1 = buf[pos], buf[pos + 1]
        n = b1 & 0x7F
        offset = pos + 2
        if n == 126:
            if len(buf) - offset < 2:
                return None
            n = int.from_bytes(buf[offset : offset + 2], "big")
            offset += 2
        elif n == 127:
            if len(buf) - offset < 8:
                return None
            n = int.from_bytes(buf[offset : offset + 8], "big")
            offset += 8
        masked = bool(b1 & 0x80)
        key = b""
        if masked:
            if len(buf) - offset < 4:
                return None
            key = bytes(buf[offset : offset + 4])
            offset += 4
        if len(buf) - offset < n:
            return None
        head = bytes(buf[pos:offset])
        payload = bytes(buf[offset : offset + n])
        self.pos = offset + n
        if masked:
            payload = xor_mask(payload, key)
        return RxFrame(
            fin=bool(b0 & 0x80),
            rsv1=bool(b0 & 0x40),
            rsv2=bool(b0 & 0x20),
            rsv3=bool(b0 & 0x10),
            opcode=b0 & 0x0F,
            masked=masked,
            payload=payload,
            head=head,
        )

    def _next_frame(self, deadline: float) -> RxFrame | None:
        """The next frame from the peer, or None at end of stream."""
        while True:
            frame = self._parse()
            if frame is not None:
                return frame
            if self.obs.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            readable, _, _ = select.select([self.sock], [], [], remaining)
            if readable:
                self._fill()

    def _violation(self, text: str) -> None:
        self.obs.violations.append(text)

    def _handle(self, frame: RxFrame) -> None:
        """Check one received frame against RFC 6455 and record what it means."""
        obs = self.obs
        peer = "server" if self.client else "client"
        if obs.close_received:
            self._violation(f"{peer} sent a frame (opcode {frame.opcode}) after its close frame")
            return
        if frame.masked == self.client:
            rule = "MUST NOT be masked" if self.client else "MUST be masked"
            self._violation(f"{peer} frame {rule} (RFC 6455 5.1)")
        if frame.rsv2 or frame.rsv3:
            self._violation(f"{peer} set RSV2/RSV3 (RFC 6455 5.2)")
        if frame.opcode not in VALID_OPCODES:
            self._violation(f"{peer} sent reserved opcode {frame.opcode}")
            return
        if frame.opcode >= CLOSE:
            if not frame.fin or len(frame.payload) > 125:
                self._violation(f"{peer} sent a fragmented or long control frame (5.5)")
            if frame.rsv1:
                self._violation(f"{peer} set RSV1 on a control frame")
            if frame.opcode == PING:
                # Answer, but do not count it as a reply: the peer may ping at any time.
                if not self.sent_close:
                    self.write(encode_frame(PONG, frame.payload, mask=self._mask()))
            elif frame.opcode == PONG:
                obs.replies.append(Pong(frame.payload))
            else:
                self._close_received(frame)
            return
        # Data frames: reassemble messages.
        if frame.opcode == CONT:
            if self._msg_opcode is None:
                self._violation(f"{peer} sent a continuation with no message started")
                return
            if frame.rsv1:
                self._violation(f"{peer} set RSV1 on a continuation frame (RFC 7692 6.1)")
        else:
            if self._msg_opcode is not None:
                self._violation(f"{peer} started a message inside another one")
            self._msg_opcode = frame.opcode
            self._msg_parts = []
            self._msg_compressed = frame.rsv1
            if frame.rsv1 and self.inflater is None:
                self._violation(f"{peer} set RSV1 without permessage-deflate")
        self._msg_parts.append(frame.payload)
        if not frame.fin:
            return
        opcode, data = self._msg_opcode, b"".join(self._msg_parts)
        self._msg_opcode, self._msg_parts = None, []
        if self._msg_compressed and self.inflater is not None:
            obs.compressed_messages += 1
            try:
                data = self.inflater.inflate(data)
            except zlib.error as exc:
                self._violation(f"{peer} sent DEFLATE data that breaks the agreement: {exc}")
                return
        if opcode == TEXT:
            try:
                data.decode()
            except UnicodeDecodeError:
                self._violation(f"{peer} sent a text message that is not UTF-8")
        obs.replies.append(Msg(opcode, data))

    def _close_received(self, frame: RxFrame) -> None:
        obs = self.obs
        obs.close_received = True
        obs.close_frame = frame.head + frame.payload
        payload = frame.payload
        if len(payload) == 1:
            self._violation("close frame with a 1-byte payload")
        elif len(payload) >= 2:
            obs.close_code = int.from_bytes(payload[:2], "big")
            obs.close_reason = payload[2:]
            code = obs.close_code
            if not (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
                self._violation(f"close code {code} may not be sent (RFC 6455 7.4)")
            try:
                obs.close_reason.decode()
            except UnicodeDecodeError:
                self._violation("close reason is not UTF-8")

    def collect(self, count: int) -> None:
        """Read until ``count`` replies came, the peer closed, or the time is up."""
        deadline = time.monotonic() + TIMEOUT
        try:
            while len(self.obs.replies) < count and not self.obs.close_received:
                frame = self._next_frame(deadline)
                if frame is None:
                    return
                self._handle(frame)
        except TimeoutError:
            # The replies are compared later; a missing one is reported there.
            return

    def finish(self, case: Case) -> Observed:
        """Run the closing handshake for the case and return what was observed."""
        obs = self.obs
        deadline = time.monotonic() + TIMEOUT
        try:
            if case.expect.end == "open":
                self.collect(len(case.expect.replies))
                if not obs.close_received:
                    self.send_close(1000)
            while not obs.close_received:
                frame = self._next_frame(deadline)
                if frame is None:
                    break
                self._handle(frame)
            if not obs.close_received:
                return obs
            if self.client:
                # The server closes the TCP connection first (RFC 6455 7.1.1), and
                # right away when failing (7.1.7): we do not answer its close frame.
                while True:
                    frame = self._next_frame(deadline)
                    if frame is None:
                        break
                    self._handle(frame)
            else:
                # As the server: answer the close frame, then close the TCP connection.
                if not self.sent_close:
                    self.send_close(obs.close_code)
                obs.eof = True
        except TimeoutError:
            phase = "its close frame" if not obs.close_received else "the TCP close"
            obs.timeout = f"waited {TIMEOUT} s for {phase}"
        return obs


def check(case: Case, obs: Observed, *, client_under_test: bool) -> None:
    """Assert that ``obs`` is what ``case`` requires."""
    expect = case.expect
    peer = "client" if client_under_test else "server"
    assert not obs.violations, f"{peer} broke the RFC: {obs.violations}"
    assert list(expect.replies) == obs.replies[: len(expect.replies)] and len(obs.replies) == len(
        expect.replies
    ), f"expected replies {list(expect.replies)}, got {obs.replies}" + (
        f" ({obs.timeout})" if obs.timeout else ""
    )
    assert obs.close_received, f"{peer} sent no close frame ({obs.timeout or 'connection closed'})"
    if expect.end == "open":
        codes: tuple[int | None, ...] = (1000,)
    else:
        codes = expect.codes
    assert obs.close_code in codes, (
        f"expected close code {codes}, {peer} sent {obs.close_code} (reason {obs.close_reason!r})"
    )
    # Byte-exact check of the close frame header: FIN + opcode 8, masking per side.
    first, second = obs.close_frame[0], obs.close_frame[1]
    assert first == 0x88, f"close frame starts with {first:#04x}, not 0x88"
    assert bool(second & 0x80) == client_under_test, "close frame masking is wrong"
    if obs.close_code is not None and not client_under_test:
        assert obs.close_frame[2:4] == obs.close_code.to_bytes(2, "big")
    assert obs.timeout is None, f"{peer}: {obs.timeout}"
    assert obs.eof, f"{peer} did not close the TCP connection"
    if case.compressed_echo:
        assert obs.compressed_messages > 0, f"{peer} compressed none of its messages"


# ---- opening handshakes --------------------------------------------------------------


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read an HTTP head; return it and the bytes that followed it."""
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed during the handshake after {data!r}")
        data += chunk
        if len(data) > 65536:
            raise AssertionError("HTTP head over 64 KiB")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        key = name.strip().lower()
        # Repeated headers (extensions) are one comma-separated list (RFC 9110 5.3).
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return headers


def client_handshake(
    port: int, deflate: Deflate | None, tls: ssl.SSLContext | None = None
) -> tuple[socket.socket, Agreement | None, bytes, list[str]]:
    """Connect (over TLS with a ``tls`` context) and upgrade by hand; return the
    socket, agreement, extra bytes, problems."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    if tls is not None:
        try:
            sock = tls.wrap_socket(sock, server_hostname="127.0.0.1")
        except BaseException:
            sock.close()
            raise
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET /conformance HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if deflate is not None:
            lines.append(f"Sec-WebSocket-Extensions: {deflate.offer()}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head, rest = _read_head(sock)
        status, *header_lines = head.split(b"\r\n")
        assert status.startswith(b"HTTP/1.1 101 "), f"expected 101, got {status!r}"
        headers = _headers(header_lines)
        assert headers.get("upgrade", "").lower() == "websocket", headers
        assert "upgrade" in headers.get("connection", "").lower(), headers
        assert headers.get("sec-websocket-accept") == accept_key(key), "wrong accept key"
        problems: list[str] = []
        agreement = None
        extensions = headers.get("sec-websocket-extensions")
        if deflate is None:
            if extensions:
                problems.append(f"server answered with an extension not offered: {extensions}")
        elif not extensions:
            problems.append("server declined permessage-deflate")
        else:
            agreement, problems = check_response(deflate, extensions)
        return sock, agreement, rest, problems
    except BaseException:
        sock.close()
        raise


def server_handshake(
    listener: socket.socket, deflate: Deflate | None
) -> tuple[socket.socket, Agreement | None, bytes, list[str]]:
    """Accept one client and upgrade by hand, choosing the ``deflate`` parameters."""
    listener.settimeout(TIMEOUT)
    sock, _ = listener.accept()
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head, rest = _read_head(sock)
        request, *header_lines = head.split(b"\r\n")
        problems: list[str] = []
        method, _, version = request.decode("latin-1").partition(" ")
        if method != "GET" or not version.endswith("HTTP/1.1"):
            problems.append(f"bad request line {request!r} (RFC 6455 4.1)")
        headers = _headers(header_lines)
        if "host" not in headers:
            problems.append("request without Host (RFC 6455 4.1)")
        if headers.get("upgrade", "").lower() != "websocket":
            problems.append("request without Upgrade: websocket")
        if "upgrade" not in headers.get("connection", "").lower():
            problems.append("request without Connection: Upgrade")
        if headers.get("sec-websocket-version") != "13":
            problems.append("request without Sec-WebSocket-Version: 13")
        key = headers.get("sec-websocket-key", "")
        if len(base64.b64decode(key + "==")[:17]) != 16:
            problems.append(f"Sec-WebSocket-Key {key!r} is not 16 base64 bytes")
        response = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept_key(key)}",
        ]
        agreement = None
        if deflate is not None:
            offers = [
                parse_params(v) for v in headers.get("sec-websocket-extensions", "").split(",")
            ]
            offered = next((p for name, p in offers if name == "permessage-deflate"), None)
            if offered is None:
                problems.append("client did not offer permessage-deflate")
            else:
                agreement, params = _choose(deflate, offered, problems)
                response.append(f"Sec-WebSocket-Extensions: {params}")
        sock.sendall(("\r\n".join(response) + "\r\n\r\n").encode())
        return sock, agreement, rest, problems
    except BaseException:
        sock.close()
        raise


def _choose(
    wanted: Deflate, offered: dict[str, str | None], problems: list[str]
) -> tuple[Agreement, str]:
    """As the server: answer an offer with the case's parameters (RFC 7692 7.1)."""
    params = ["permessage-deflate"]
    # Either no_context_takeover may appear in a response whatever the offer said.
    if wanted.server_no_context_takeover:
        params.append("server_no_context_takeover")
    if wanted.client_no_context_takeover:
        params.append("client_no_context_takeover")
    server_bits = 15
    if wanted.server_max_window_bits is not None:
        if "server_max_window_bits" not in offered:
            problems.append("client did not offer server_max_window_bits as configured")
        server_bits = wanted.server_max_window_bits
        params.append(f"server_max_window_bits={server_bits}")
    client_bits = 15
    if "client_max_window_bits" in offered:
        cap = int(offered["client_max_window_bits"] or 15)
        # A bare offer lets the server pick: pick 10 to check the client honours it.
        choice = 10 if wanted.client_max_window_bits is True else wanted.client_max_window_bits
        if isinstance(choice, int):
            client_bits = min(choice, cap)
            params.append(f"client_max_window_bits={client_bits}")
        else:
            client_bits = cap
    elif wanted.client_max_window_bits is not None:
        problems.append("client did not offer client_max_window_bits as configured")
    agreement = Agreement(
        server_no_context_takeover=wanted.server_no_context_takeover,
        client_no_context_takeover=wanted.client_no_context_takeover,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )
    return agreement, "; ".join(params)
