# SPDX-License-Identifier: MIT
"""wsfast.client against real servers on 127.0.0.1.

Two kinds of peer: the ``websockets`` package (interop: sizes, fragmentation, every
permessage-deflate parameter combination, subprotocols, headers, closing, TLS), and a
scripted raw-socket server for what a well-behaved server never sends (masked
frames, invalid UTF-8, oversized messages, a wrong Sec-WebSocket-Accept).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import queue
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed as WebsocketsClosed
from websockets.exceptions import ConnectionClosedOK as WebsocketsClosedOK
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.sync.server import Server, ServerConnection, serve

from wsfast import DeflateConfig
from wsfast.client import ClientConnection, connect
from wsfast.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeader,
    InvalidState,
    InvalidStatus,
    NegotiationError,
)
from wsfast.frames import State

BIG = 32 << 20
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# ---- fixtures and helpers ------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every thread a test starts (servers, handlers) has ended when it returns."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        time.sleep(0.01)
    pytest.fail(f"leaked threads: {leaked}")


@contextmanager
def running(handler: Callable[[ServerConnection], None], **kwargs: Any) -> Iterator[Server]:
    """A websockets server on 127.0.0.1 (port 0) served from a background thread."""
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("max_size", BIG)
    if "sock" not in kwargs:
        kwargs.setdefault("host", "127.0.0.1")
        kwargs.setdefault("port", 0)
    with serve(handler, **kwargs) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            yield server
        finally:
            server.shutdown()
            thread.join(10)


def url_of(server: Server, scheme: str = "ws", path: str = "/") -> str:
    host, port = server.socket.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}{path}"


def echo(ws: ServerConnection) -> None:
    for message in ws:
        ws.send(message)


@pytest.fixture(scope="module", params=["deflate", None], ids=["deflate", "plain"])
def echo_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with running(echo, compression=request.param) as server:
        yield url_of(server)


def text_of_size(n: int) -> str:
    """A str of exactly n UTF-8 bytes, mixing 1- to 4-byte characters."""
    unit = "aé€😀"  # 1 + 2 + 3 + 4 bytes
    return unit * (n // 10) + "a" * (n % 10)


def recv_closed(ws: ClientConnection, timeout: float = 5) -> ConnectionClosed:
    """Receive until ConnectionClosed; fail on a message."""
    with pytest.raises(ConnectionClosed) as info:
        message = ws.recv(timeout)
        pytest.fail(f"unexpected message {message!r}")
    return info.value


# ---- a scripted raw-socket server ------------------------------------------------------


class FakeServer:
    """Accepts one connection on 127.0.0.1 and runs ``script(sock)`` in a thread."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self) -> None:
        try:
            sock, _ = self.listener.accept()
            with sock:
                sock.settimeout(10)
                self.script(sock)
        except BaseException as exc:
            self.error = exc
        finally:
            self.listener.close()

    def join(self) -> None:
        self.thread.join(15)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


@pytest.fixture
def fake_server() -> Iterator[Callable[[Callable[[socket.socket], None]], FakeServer]]:
    servers: list[FakeServer] = []

    def start(script: Callable[[socket.socket], None]) -> FakeServer:
        servers.append(FakeServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.join()


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def server_handshake(
    sock: socket.socket,
    *,
    headers: tuple[str, ...] = (),
    accept: str | None = None,
    then: bytes = b"",
) -> dict[str, str]:
    """Read the upgrade request and answer 101; return the request headers."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "connection closed during the handshake"
        head += chunk
    lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert lines[0].startswith("GET ")
    request = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    if accept is None:
        digest = hashlib.sha1(request["sec-websocket-key"].encode() + GUID).digest()
        accept = base64.b64encode(digest).decode()
    response = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept}",
        *headers,
    ]
    sock.sendall("\r\n".join(response).encode() + b"\r\n\r\n" + then)
    return request


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bytes | None = None,
) -> bytes:
    """Encode one frame (our own encoder, independent of the code under test)."""
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    bit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def read_frame(sock: socket.socket) -> tuple[bool, bool, int, bytes, bool]:
    """Read one frame: (fin, rsv1, opcode, unmasked payload, was masked)."""
    b0, b1 = recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", recv_exact(sock, 2))
    elif n == 127:
        (n,) = struct.unpack("!Q", recv_exact(sock, 8))
    masked = bool(b1 & 0x80)
    key = recv_exact(sock, 4) if masked else b"\0\0\0\0"
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(recv_exact(sock, n)))
    return bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, payload, masked


def read_close(sock: socket.socket) -> tuple[int, str]:
    """Read frames until a close frame; return its code and reason."""
    while True:
        _, _, opcode, payload, masked = read_frame(sock)
        assert masked, "client frames must be masked"
        if opcode == 8:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def wait_eof(sock: socket.socket) -> None:
    """Wait for the client to close TCP (after a failure it ignores our data)."""
    while sock.recv(65536):
        pass


# ---- messages: sizes and types ---------------------------------------------------------

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_client_echoes_message_of_each_size(echo_url: str, kind: str, size: int) -> None:
    message: str | bytes = text_of_size(size) if kind == "text" else os.urandom(size)
    with connect(echo_url, max_size=BIG) as ws:
        ws.send(message)
        # No deadline of our own (pytest's per-test timeout catches a hang): the peer
        # deflates 16 MiB in pure Python, which takes many seconds on a busy machine.
        assert ws.recv() == message


def test_client_sends_bytearray_and_memoryview_as_binary(echo_url: str) -> None:
    with connect(echo_url) as ws:
        ws.send(bytearray(b"array"))
        ws.send(memoryview(b"__view__")[2:6])
        ws.send_binary(b"explicit")
        ws.send_text("text")
        assert [ws.recv(5) for _ in range(4)] == [b"array", b"view", b"explicit", "text"]


def test_client_receives_a_batch_of_messages_in_order(echo_url: str) -> None:
    with connect(echo_url) as ws:
        for i in range(200):
            ws.send(str(i))
        received: list[str | bytes] = []
        while len(received) < 200:
            received += ws.recv_many(5)
        assert received == [str(i) for i in range(200)]


def test_client_rejects_message_of_wrong_type(echo_url: str) -> None:
    with connect(echo_url) as ws:
        with pytest.raises(TypeError):
            ws.send(12345)  # type: ignore[arg-type]
        ws.send("still open")
        assert ws.recv(5) == "still open"


def test_client_sends_from_one_thread_while_another_receives(echo_url: str) -> None:
    count = 2000
    with connect(echo_url) as ws:
        errors: list[BaseException] = []

        def sender(prefix: str) -> None:
            try:
                for i in range(count):
                    ws.send(f"{prefix}{i}")
                    if i % 500 == 0:
                        ws.ping()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=sender, args=(p,)) for p in "ab"]
        for thread in threads:
            thread.start()
        received = [ws.recv(10) for _ in range(2 * count)]
        for thread in threads:
            thread.join(10)
        assert not errors
        # Each sender's messages arrive whole and in its order.
        for prefix in "ab":
            mine = [m for m in received if isinstance(m, str) and m.startswith(prefix)]
            assert mine == [f"{prefix}{i}" for i in range(count)]


def test_pong_waiter_waits_while_another_thread_receives(echo_url: str) -> None:
    with connect(echo_url) as ws:
        got: list[str | bytes] = []
        reader = threading.Thread(target=lambda: got.append(ws.recv(10)))
        reader.start()
        time.sleep(0.05)
        assert ws.ping().wait(5)
        ws.send("wake the reader")
        reader.join(10)
        assert got == ["wake the reader"]


# ---- fragmentation -------------------------------------------------------------------


def fragment_echo(ws: ServerConnection) -> None:
    """Report how each message arrived, then send it back in three fragments."""
    while True:
        try:
            fragments = list(ws.recv_streaming())
        except WebsocketsClosedOK:
            return
        ws.send(json.dumps(len(fragments)))
        whole: Any = fragments[0][:0].join(fragments)  # type: ignore[arg-type]
        third = max(len(whole) // 3, 1)
        ws.send([whole[:third], whole[third : 2 * third], whole[2 * third :]])


@pytest.mark.parametrize("compression", ["deflate", None])
@pytest.mark.parametrize(
    "fragments",
    [["a", "bc", "", "déf😀"], [b"\x00", b"", b"\xff" * 70000, b"end"], ["x" * 300000] * 5],
    ids=["text", "binary", "large"],
)
def test_client_sends_and_receives_fragmented_messages(
    compression: str | None, fragments: list[Any]
) -> None:
    whole = fragments[0][:0].join(fragments)
    with running(fragment_echo, compression=compression) as server:
        with connect(url_of(server), max_size=BIG) as ws:
            ws.send_fragments(iter(fragments))
            assert ws.recv(10) == str(len(fragments))
            assert ws.recv(10) == whole


def test_client_sends_nothing_for_no_fragments(echo_url: str) -> None:
    with connect(echo_url) as ws:
        ws.send_fragments([])
        ws.send("after")
        assert ws.recv(5) == "after"


def test_client_fails_on_mixed_fragment_types() -> None:
    closes: queue.Queue[tuple[int | None, str | None]] = queue.Queue()

    def handler(ws: ServerConnection) -> None:
        try:
            ws.recv()
        except Exception:
            closes.put((ws.close_code, ws.close_reason))

    with running(handler) as server:
        with connect(url_of(server)) as ws:
            with pytest.raises(TypeError):
                ws.send_fragments(["text", b"bytes"])
            exc = recv_closed(ws)
        assert isinstance(exc, ConnectionClosedError)
        assert exc.sent_code == 1011
        assert closes.get(timeout=5)[0] == 1011


# ---- permessage-deflate: every parameter combination ---------------------------------


def deflate_report(ws: ServerConnection) -> None:
    """Tell the client what the server negotiated, send a fragmented message, echo."""
    report = None
    for extension in ws.protocol.extensions:
        if isinstance(extension, PerMessageDeflate):
            report = {
                "server_no_context_takeover": extension.local_no_context_takeover,
                "client_no_context_takeover": extension.remote_no_context_takeover,
                "server_max_window_bits": extension.local_max_window_bits,
                "client_max_window_bits": extension.remote_max_window_bits,
            }
    ws.send(json.dumps(report))
    ws.send(["compressed ", "fragments ", "from the server " * 50])
    echo(ws)


CLIENT_CONFIGS = {
    "default": True,
    "no-takeover": DeflateConfig(server_no_context_takeover=True, client_no_context_takeover=True),
    "windows": DeflateConfig(server_max_window_bits=11, client_max_window_bits=9, level=9),
    "server-window-8": DeflateConfig(server_max_window_bits=8),
    "off": False,
}


@pytest.mark.parametrize("client_config", list(CLIENT_CONFIGS))
@pytest.mark.parametrize("server_window", [None, 9, 12])
@pytest.mark.parametrize("client_window", [None, 10])
@pytest.mark.parametrize("server_takeover", [True, False], ids=["s-takeover", "s-no-takeover"])
@pytest.mark.parametrize("client_takeover", [True, False], ids=["c-takeover", "c-no-takeover"])
def test_client_negotiates_and_uses_permessage_deflate(
    client_config: str,
    server_window: int | None,
    client_window: int | None,
    server_takeover: bool,
    client_takeover: bool,
) -> None:
    factory = ServerPerMessageDeflateFactory(
        server_no_context_takeover=not server_takeover,
        client_no_context_takeover=not client_takeover,
        server_max_window_bits=server_window,
        client_max_window_bits=client_window,
    )
    compressible = "the quick brown fox jumps over the lazy dog " * 500
    messages: list[str | bytes] = [
        compressible,
        compressible,  # a second time: context takeover makes it tiny
        b"",
        os.urandom(100_000),
        bytes(300_000),
        text_of_size(70_000),
    ]
    with running(deflate_report, extensions=[factory], compression=None) as server:
        with connect(url_of(server), compression=CLIENT_CONFIGS[client_config]) as ws:
            server_view = json.loads(ws.recv(5))
            params = ws.deflate_params
            if params is None:
                client_view = None
            else:
                client_view = {
                    "server_no_context_takeover": params.server_no_context_takeover,
                    "client_no_context_takeover": params.client_no_context_takeover,
                    "server_max_window_bits": params.server_max_window_bits or 15,
                    "client_max_window_bits": params.client_max_window_bits or 15,
                }
            # Both sides agree on what was negotiated.
            assert client_view == server_view
            if client_config == "off":
                assert params is None and ws.extensions == ()
            if client_config == "default":
                assert params is not None
            if client_config == "server-window-8":
                assert params is None  # websockets supports 9 to 15 only, so it declines
            if params is not None:
                assert ws.extensions[0].startswith("permessage-deflate")
            assert ws.recv(5) == "compressed fragments " + "from the server " * 50
            for message in messages:
                ws.send(message)
            for message in messages:
                assert ws.recv(5) == message
            ws.send_fragments([b"one", b"two" * 1000, b"three"])
            assert ws.recv(5) == b"one" + b"two" * 1000 + b"three"


def test_client_compresses_what_it_sends(fake_server: Any) -> None:
    """Check our compressed frames with zlib itself, and that we inflate zlib's."""
    text = "compress me " * 1000
    seen: list[tuple[bool, int]] = []

    def script(sock: socket.socket) -> None:
        request = server_handshake(sock, headers=("Sec-WebSocket-Extensions: permessage-deflate",))
        assert request["sec-websocket-extensions"].startswith("permessage-deflate")
        compressor = zlib.compressobj(wbits=-15)
        data = compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        sock.sendall(frame(1, data[:-4], rsv1=True))
        fin, rsv1, opcode, payload, _ = read_frame(sock)
        seen.append((rsv1, len(payload)))
        decompressor = zlib.decompressobj(wbits=-15)
        assert decompressor.decompress(payload + b"\x00\x00\xff\xff") == text.encode()
        assert fin and opcode == 1
        sock.sendall(frame(8, struct.pack("!H", 1000)))
        read_close(sock)

    server = fake_server(script)
    with connect(server.url) as ws:
        assert ws.recv(5) == text
        ws.send(text)
        assert isinstance(recv_closed(ws), ConnectionClosedOK)
    server.join()
    assert seen[0][0] is True
    assert seen[0][1] < len(text) // 10


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        (DeflateConfig(server_max_window_bits=10), "permessage-deflate; server_max_window_bits=12"),
        (DeflateConfig(server_max_window_bits=10), "permessage-deflate"),
        (DeflateConfig(server_no_context_takeover=True), "permessage-deflate"),
        (DeflateConfig(), "permessage-deflate; bogus=1"),
        (DeflateConfig(), "permessage-deflate, permessage-deflate"),
        (False, "permessage-deflate"),
        (True, "x-unknown-extension"),
    ],
)
def test_client_rejects_deflate_answer_it_did_not_offer(
    fake_server: Any, offer: Any, answer: str
) -> None:
    def script(sock: socket.socket) -> None:
        server_handshake(sock, headers=(f"Sec-WebSocket-Extensions: {answer}",))
        assert sock.recv(1) == b""  # the client hangs up

    server = fake_server(script)
    with pytest.raises(NegotiationError):
        connect(server.url, compression=offer)


# ---- handshake: subprotocols, headers, rejection ------------------------------------


def test_client_negotiates_subprotocol() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.send(ws.request.headers["Sec-WebSocket-Protocol"] if ws.request else "")

    with running(handler, subprotocols=["chat", "superchat"]) as server:
        with connect(url_of(server), subprotocols=["superchat", "other"]) as ws:
            assert ws.subprotocol == "superchat"
            assert ws.recv(5) == "superchat, other"


def test_client_gets_400_when_no_subprotocol_matches() -> None:
    with running(echo, subprotocols=["chat"]) as server:
        with pytest.raises(InvalidStatus) as info:
            connect(url_of(server), subprotocols=["other"])
        assert info.value.status == 400


@pytest.mark.parametrize("offered", [["chat"], []])
def test_client_rejects_subprotocol_it_did_not_offer(fake_server: Any, offered: list[str]) -> None:
    def script(sock: socket.socket) -> None:
        server_handshake(sock, headers=("Sec-WebSocket-Protocol: bogus",))
        assert sock.recv(1) == b""

    server = fake_server(script)
    with pytest.raises(NegotiationError):
        connect(server.url, subprotocols=offered)


@pytest.mark.parametrize("as_pairs", [False, True], ids=["dict", "pairs"])
def test_server_sees_extra_headers_and_request_target(as_pairs: bool) -> None:
    def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        ws.send(json.dumps([ws.request.path, *ws.request.headers.get_all("X-Token")]))
        ws.send(ws.request.headers["Host"])

    headers: Any = [("X-Token", "a"), ("X-Token", "b")] if as_pairs else {"X-Token": "a"}
    with running(handler) as server:
        with connect(url_of(server, path="/path/é?q=1&r=two"), headers=headers) as ws:
            expected = ["a", "b"] if as_pairs else ["a"]
            assert json.loads(ws.recv(5)) == ["/path/%C3%A9?q=1&r=two", *expected]
            assert ws.recv(5) == url_of(server).split("/")[2]
            assert any(name.lower() == "upgrade" for name, _ in ws.response_headers)


def test_client_raises_invalid_status_when_server_rejects() -> None:
    def process_request(ws: ServerConnection, request: Any) -> Any:
        return ws.respond(403, "Forbidden\n")

    with running(echo, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            connect(url_of(server))
        assert info.value.status == 403


@pytest.mark.parametrize(
    ("headers", "accept"),
    [
        ((), "dGhlIHNhbXBsZSBub25jZQ=="),  # valid base64, wrong value
        (("Sec-WebSocket-Accept: again",), None),  # two values
    ],
)
def test_client_rejects_bad_sec_websocket_accept(
    fake_server: Any, headers: tuple[str, ...], accept: str | None
) -> None:
    def script(sock: socket.socket) -> None:
        server_handshake(sock, headers=headers, accept=accept)
        assert sock.recv(1) == b""

    server = fake_server(script)
    with pytest.raises(InvalidHeader):
        connect(server.url)


def test_client_rejects_response_that_is_not_http(fake_server: Any) -> None:
    def script(sock: socket.socket) -> None:
        sock.recv(4096)
        sock.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")
        assert sock.recv(1) == b""

    server = fake_server(script)
    with pytest.raises(InvalidHandshake):
        connect(server.url)


def test_client_raises_when_server_hangs_up_during_handshake(fake_server: Any) -> None:
    def script(sock: socket.socket) -> None:
        sock.recv(4096)
        sock.sendall(b"HTTP/1.1 101 Switching")

    server = fake_server(script)
    with pytest.raises(InvalidHandshake, match="closed during the opening handshake"):
        connect(server.url)


def test_client_times_out_when_server_never_answers(fake_server: Any) -> None:
    done = threading.Event()

    def script(sock: socket.socket) -> None:
        done.wait(5)

    server = fake_server(script)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        connect(server.url, open_timeout=0.3)
    assert time.monotonic() - start < 2
    done.set()


def test_client_receives_frames_sent_right_after_the_response(fake_server: Any) -> None:
    def script(sock: socket.socket) -> None:
        server_handshake(sock, then=frame(1, b"early") + frame(2, b"bird"))
        assert read_close(sock) == (1000, "")
        sock.sendall(frame(8, struct.pack("!H", 1000)))

    server = fake_server(script)
    with connect(server.url) as ws:
        assert ws.recv(5) == "early"
        assert ws.recv(5) == b"bird"


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "ws:///path", "ws://127.0.0.1:99999/"])
def test_client_rejects_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        connect(url)


def test_client_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="wss://"):
        connect("ws://127.0.0.1:1/", ssl=ssl.create_default_context())
    with pytest.raises(TypeError):
        connect("ws://127.0.0.1:1/", compression="yes")


def test_client_rejects_invalid_header_values() -> None:
    with pytest.raises(ValueError):
        connect("ws://127.0.0.1:1/", headers={"X-Bad": "line\r\nbreak"})


def test_client_connects_over_ipv6() -> None:
    try:
        listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback")
    with running(echo, sock=listener) as server:
        url = url_of(server)
        assert url.startswith("ws://[::1]:")
        with connect(url) as ws:
            ws.send("over v6")
            assert ws.recv(5) == "over v6"
            assert ws.remote_address[0] == "::1"


# ---- receiving: timeouts, pings -----------------------------------------------------


def test_recv_times_out_and_later_delivers() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.recv()
        time.sleep(0.3)
        ws.send("late")
        ws.recv()

    with running(handler) as server:
        with connect(url_of(server)) as ws:
            ws.send("go")
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.05)
            assert time.monotonic() - start < 0.25
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0)
            assert ws.recv(timeout=5) == "late"
            ws.send("bye")


def test_recv_timeout_keeps_partial_frame(fake_server: Any) -> None:
    resume = threading.Event()
    message = b"x" * 100_000
    data = frame(2, message)

    def script(sock: socket.socket) -> None:
        server_handshake(sock)
        sock.sendall(data[:50_000])
        assert resume.wait(5)
        sock.sendall(data[50_000:])
        assert read_close(sock) == (1000, "")
        sock.sendall(frame(8, struct.pack("!H", 1000)))

    server = fake_server(script)
    with connect(server.url) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.2)
        resume.set()
        assert ws.recv(timeout=5) == message


def test_client_ping_waits_for_pong(echo_url: str) -> None:
    with connect(echo_url) as ws:
        waiter = ws.ping()
        assert waiter.wait(5)
        assert waiter.received and waiter.latency is not None
        custom = ws.ping(b"custom")
        with pytest.raises(InvalidState):
            ws.ping(b"custom")
        ws.send("queued meanwhile")
        assert custom.wait(5)
        assert custom.data == b"custom"
        # The message that came while waiting for the pong is not lost.
        assert ws.recv(5) == "queued meanwhile"
        with pytest.raises(ValueError):
            ws.ping(b"x" * 126)


def test_pong_resolves_earlier_pings(fake_server: Any) -> None:
    def script(sock: socket.socket) -> None:
        server_handshake(sock)
        payloads = [read_frame(sock)[3] for _ in range(3)]
        sock.sendall(frame(10, b"unsolicited") + frame(10, payloads[1]))
        assert read_close(sock) == (1000, "")
        sock.sendall(frame(8, struct.pack("!H", 1000)))

    server = fake_server(script)
    with connect(server.url) as ws:
        first, second, third = ws.ping(), ws.ping("two"), ws.ping()
        assert second.wait(5)
        assert first.received
        assert not third.received
        assert not third.wait(0.05)


def test_client_answers_server_ping() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.recv()
        ws.send("pong received" if ws.ping(b"server").wait(5) else "no pong")
        ws.recv()

    with running(handler) as server:
        with connect(url_of(server)) as ws:
            ws.send("start")
            assert ws.recv(10) == "pong received"
            ws.send("done")


def test_client_answers_ping_with_masked_pong(fake_server: Any) -> None:
    def script(sock: socket.socket) -> None:
        server_handshake(sock)
        sock.sendall(frame(9, b"hello?"))
        fin, _, opcode, payload, masked = read_frame(sock)
        assert (fin, opcode, payload, masked) == (True, 10, b"hello?", True)
        sock.sendall(frame(1, b"done"))
        assert read_close(sock) == (1000, "")
        sock.sendall(frame(8, struct.pack("!H", 1000)))

    server = fake_server(script)
    with connect(server.url) as ws:
        assert ws.recv(5) == "done"


# ---- closing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (1000, "", ConnectionClosedOK),
        (1001, "going", ConnectionClosedOK),
        (4000, "bye", ConnectionClosedError),
    ],
)
def test_server_closes_with_code_and_reason(
    code: int, reason: str, expected: type[ConnectionClosed]
) -> None:
    def handler(ws: ServerConnection) -> None:
        ws.send("last words")
        ws.close(code, reason)

    with running(handler) as server:
        with connect(url_of(server)) as ws:
            # Messages sent before the close frame come first.
            assert ws.recv(5) == "last words"
            exc = recv_closed(ws)
            assert type(exc) is expected
            assert (exc.code, exc.reason) == (code, reason)
            assert exc.sent_code == code  # the client echoes the code
            assert ws.state is State.CLOSED
            # Closed stays closed: every later call raises the same way.
            assert type(recv_closed(ws)) is expected
            with pytest.raises(expected):
                ws.send("too late")
            with pytest.raises(expected):
                ws.ping()


def test_iterating_stops_at_normal_closure() -> None:
    def handler(ws: ServerConnection) -> None:
        for i in range(3):
            ws.send(f"message {i}")
        ws.close()

    with running(handler) as server:
        with connect(url_of(server)) as ws:
            assert list(ws) == ["message 0", "message 1", "message 2"]


def test_iterating_raises_on_error_closure() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.send("one")
        ws.close(1011, "oops")

    with running(handler) as server:
        with connect(url_of(server)) as ws:
            received = []
            with pytest.raises(ConnectionClosedError) as info:
                for message in ws:
                    received.append(message)
            assert received == ["one"]
            assert info.value.code == 1011


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [(1000, "done", ConnectionClosedOK), (4001, "custom", ConnectionClosedError)],
)
def test_client_closes_with_code_and_reason(
    code: int, reason: str, expected: type[ConnectionClosed]
) -> None:
    seen: queue.Queue[tuple[int | None, str | None]] = queue.Queue()

    def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(WebsocketsClosed):
            for _ in ws:
                pass
        seen.put((ws.close_code, ws.close_reason))

    with running(handler) as server:
        ws = connect(url_of(server))
        assert ws.state is State.OPEN
        ws.send("hello")
        ws.close(code, reason)
        assert ws.state is State.CLOSED  # type: ignore[comparison-overlap]
        assert seen.get(timeout=5) == (code, reason)
        exc = recv_closed(ws)
        assert type(exc) is expected
        assert (exc.code, exc.sent_code, exc.sent_reason) == (code, code, reason)
        ws.close()  # idempotent


def test_close_rejects_invalid_code_and_stays_open(echo_url: str) -> None:
    with connect(echo_url) as ws:
        with pytest.raises(ValueError):
            ws.close(1005)
        with pytest.raises(ValueError):
            ws.close(1000, "x" * 124)
        ws.send("open")
        assert ws.recv(5) == "open"


def test_close_from_another_thread_ends_a_blocked_recv() -> None:
    with running(echo) as server:
        ws = connect(url_of(server))
        result: list[BaseException] = []

        def reader() -> None:
            try:
                ws.recv()
            except BaseException as exc:
                result.append(exc)

        thread = threading.Thread(target=reader)
        thread.start()
        time.sleep(0.1)
        ws.close()
        thread.join(5)
        assert not thread.is_alive()
        assert isinstance(result[0], ConnectionClosedOK)
        assert ws.state is State.CLOSED


def test_close_gives_up_after_close_timeout(fake_server: Any) -> None:
    def script(sock: socket.socket) -> None:
        server_handshake(sock)
        assert read_close(sock) == (1000, "")
        wait_eof(sock)  # never answer: the client must hang up by itself

    server = fake_server(script)
    ws = connect(server.url, close_timeout=0.3)
    start = time.monotonic()
    ws.close()
    assert 0.25 < time.monotonic() - start < 3
    exc = recv_closed(ws)
    assert isinstance(exc, ConnectionClosedError)
    assert (exc.code, exc.sent_code) == (1006, 1000)


def test_client_waits_for_server_to_close_tcp(fake_server: Any) -> None:
    order: list[str] = []

    def script(sock: socket.socket) -> None:
        server_handshake(sock)
        sock.sendall(frame(8, struct.pack("!H", 1000) + b"bye"))
        assert read_close(sock) == (1000, "")
        time.sleep(0.2)
        order.append("server closes")

    server = fake_server(script)
    with connect(server.url) as ws:
        exc = recv_closed(ws)
        order.append("client done")
        assert isinstance(exc, ConnectionClosedOK)
        assert exc.reason == "bye"
    server.join()
    assert order == ["server closes", "client done"]


def test_client_reports_abnormal_closure_on_eof(fake_server: Any) -> None:
    def script(sock: socket.socket) -> None:
        server_handshake(sock, then=frame(1, b"before eof"))

    server = fake_server(script)
    with connect(server.url) as ws:
        assert ws.recv(5) == "before eof"
        exc = recv_closed(ws)
        assert isinstance(exc, ConnectionClosedError)
        assert (exc.code, exc.sent_code) == (1006, None)


# ---- hostile servers: the client fails the connection -----------------------------


@pytest.mark.parametrize(
    ("data", "code", "max_size"),
    [
        (frame(1, b"masked", mask=b"abcd"), 1002, 1 << 20),
        (frame(3, b"reserved opcode"), 1002, 1 << 20),
        (frame(1, b"rsv1 without extension", rsv1=True), 1002, 1 << 20),
        (frame(0, b"continuation of nothing"), 1002, 1 << 20),
        (frame(9, b"fragmented ping", fin=False), 1002, 1 << 20),
        (frame(1, b"valid \xf0\x9f\x98"), 1007, 1 << 20),
        (frame(1, b"\xc3", fin=False) + frame(0, b"\x28"), 1007, 1 << 20),
        (frame(8, struct.pack("!H", 1000) + b"\xff"), 1007, 1 << 20),
        (frame(8, struct.pack("!H", 999)), 1002, 1 << 20),
        (frame(2, bytes(2000)), 1009, 1000),
        (frame(2, bytes(600), fin=False) + frame(0, bytes(600)), 1009, 1000),
    ],
    ids=[
        "masked",
        "reserved-opcode",
        "rsv1",
        "orphan-continuation",
        "fragmented-control",
        "invalid-utf8",
        "invalid-utf8-across-fragments",
        "invalid-utf8-close-reason",
        "invalid-close-code",
        "too-big",
        "too-big-fragmented",
    ],
)
def test_client_fails_connection_on_protocol_violation(
    fake_server: Any, data: bytes, code: int, max_size: int
) -> None:
    sent: list[tuple[int, str]] = []

    def script(sock: socket.socket) -> None:
        server_handshake(sock)
        sock.sendall(frame(1, b"fine") + data + frame(1, b"after the error"))
        sent.append(read_close(sock))
        # Closing TCP without a close frame: the client must not wait for one.

    server = fake_server(script)
    with connect(server.url, max_size=max_size) as ws:
        assert ws.recv(5) == "fine"
        exc = recv_closed(ws)
        assert isinstance(exc, ConnectionClosedError)
        assert exc.sent_code == code
        assert exc.code == 1006
        assert ws.state is State.CLOSED
    server.join()
    assert sent[0][0] == code


# ---- TLS -------------------------------------------------------------------------------


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with running(echo, ssl=context) as server:
        yield server


def test_client_connects_over_tls(tls_server: Server, certificate: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(cafile=str(certificate[0]))
    with connect(url_of(tls_server, "wss"), ssl=context, max_size=BIG) as ws:
        big = os.urandom(3 << 20)
        ws.send(big)
        ws.send("é" * 10_000)
        assert ws.recv(10) == big
        assert ws.recv(10) == "é" * 10_000
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.05)
        assert ws.ping().wait(5)
        ws.send("after timeout")
        assert ws.recv(5) == "after timeout"
    with pytest.raises(ConnectionClosedOK):
        ws.recv()


def test_client_checks_the_server_certificate(tls_server: Server) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(url_of(tls_server, "wss"))


def test_client_checks_the_certificate_hostname(
    tls_server: Server, certificate: tuple[Path, Path]
) -> None:
    context = ssl.create_default_context(cafile=str(certificate[0]))
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(url_of(tls_server, "wss"), ssl=context, server_hostname="example.com")
    with connect(url_of(tls_server, "wss"), ssl=context, server_hostname="localhost") as ws:
        ws.send("named")
        assert ws.recv(5) == "named"
