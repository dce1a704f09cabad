# SPDX-License-Identifier: MIT
"""The server's opening handshake, sans I/O: request bytes in, a decision out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest

from wsfast._core import new_core
from wsfast._native import rust
from wsfast.config import ServerConfig
from wsfast.exceptions import InvalidState
from wsfast.frames import Opcode
from wsfast.handler import Handler, HandshakeResponse, HTTPResponse, Request
from wsfast.handshake import Accept, Reject, ServerHandshake, decide

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
PEER = ("192.0.2.7", 50123)


def upgrade(target: str = "/chat?room=1", headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """A valid upgrade request head, with extra header lines."""
    lines = [
        f"GET {target} HTTP/1.1",
        "Host: server.example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
    ]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def plain(method: str = "GET", target: str = "/health") -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: server.example.com\r\n\r\n".encode()


class Recorder(Handler):
    """Records the requests its hook saw; answers with ``answer`` (or raises it)."""

    def __init__(self, answer: HandshakeResponse | Exception | None = None) -> None:
        self.answer = answer
        self.requests: list[Request] = []

    def on_handshake(self, request: Request) -> HandshakeResponse | None:
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def run(
    data: bytes,
    handler: Handler | None = None,
    routes: dict[str, Handler] | None = None,
    **options: Any,
) -> Accept | Reject | None:
    """Decide on ``data`` with a server of ``options``, serving ``handler`` on every path."""
    config = ServerConfig.make(**options)
    table = routes if routes is not None else {}
    default = handler if handler is not None else Recorder()

    def route(path: str) -> Handler | None:
        return table.get(path, default if routes is None else None)

    return decide(config, route, PEER, data)


def accepted(data: bytes, *args: Any, **options: Any) -> Accept:
    decision = run(data, *args, **options)
    assert isinstance(decision, Accept), decision
    return decision


def rejected(data: bytes, *args: Any, **options: Any) -> Reject:
    decision = run(data, *args, **options)
    assert isinstance(decision, Reject), decision
    assert decision.response.startswith(f"HTTP/1.1 {decision.status} ".encode())
    return decision


def body(reject: Reject) -> bytes:
    return reject.response.partition(b"\r\n\r\n")[2]


# ---- accepting ---------------------------------------------------------------------------


def test_upgrade_request_is_accepted_with_the_101_response() -> None:
    handler = Recorder()
    accept = accepted(upgrade(headers=[("X-Trace", "7")]), handler)
    assert accept.response == rust.build_response(KEY, None, None, [])
    assert accept.response.startswith(b"HTTP/1.1 101 ")
    assert accept.handler is handler
    assert accept.subprotocol is None
    assert accept.extensions is None
    assert accept.deflate_params is None
    assert accept.deflate_config is None
    assert accept.leftover == b""
    assert accept.max_size == 1 << 20
    request = accept.request
    assert handler.requests == [request]
    assert (request.method, request.path, request.query) == ("GET", "/chat", "room=1")
    assert request.get("x-trace") == "7"
    assert request.remote_address == PEER
    assert request.subprotocols == ()


def test_head_fed_byte_by_byte_is_decided_at_its_last_byte() -> None:
    data = upgrade()
    handshake = ServerHandshake(ServerConfig.make(), lambda path: Recorder(), PEER)
    for i in range(len(data) - 1):
        assert handshake.receive_data(data[i : i + 1]) is None, i
    accept = handshake.receive_data(data[-1:])
    assert isinstance(accept, Accept)
    assert accept.response == accepted(data).response
    assert accept.leftover == b""


def test_plain_request_fed_byte_by_byte_gets_its_answer_at_its_last_byte() -> None:
    data = plain()
    handshake = ServerHandshake(ServerConfig.make(), lambda path: None, PEER)
    for i in range(len(data) - 1):
        assert handshake.receive_data(data[i : i + 1]) is None, i
    reject = handshake.receive_data(data[-1:])
    assert isinstance(reject, Reject)
    assert (reject.status, body(reject)) == (200, b"ok")


@pytest.mark.parametrize("split", [1, 40, -1])
def test_bytes_after_the_head_are_handed_back_as_leftover(split: int) -> None:
    frame = rust.Frame(Opcode.TEXT, b"first", fin=True).serialize(b"abcd")
    data = upgrade() + frame
    handshake = ServerHandshake(ServerConfig.make(), lambda path: Recorder(), PEER)
    head_end = len(upgrade())
    cut = head_end + split if split > 0 else head_end - 1
    first = handshake.receive_data(data[:cut])
    decision = first if first is not None else handshake.receive_data(data[cut:])
    assert isinstance(decision, Accept)
    received_after_head = data[head_end:cut] if first is not None else data[head_end:]
    assert decision.leftover == received_after_head
    assert frame.startswith(decision.leftover)


def test_handshake_is_decided_once() -> None:
    handshake = ServerHandshake(ServerConfig.make(), lambda path: Recorder(), PEER)
    assert isinstance(handshake.receive_data(upgrade()), Accept)
    with pytest.raises(InvalidState):
        handshake.receive_data(b"more")


def test_remote_address_may_be_unknown() -> None:
    decision = decide(ServerConfig.make(), lambda path: Recorder(), None, upgrade())
    assert isinstance(decision, Accept)
    assert decision.request.remote_address is None


# ---- subprotocols and the hook -------------------------------------------------------------


def test_subprotocol_is_the_clients_first_offer_the_server_supports() -> None:
    offer = [("Sec-WebSocket-Protocol", "x, a, b")]
    accept = accepted(upgrade(headers=offer), subprotocols=["b", "a"])
    assert accept.subprotocol == "a"
    assert accept.request.subprotocols == ("x", "a", "b")
    assert accept.response == rust.build_response(KEY, "a", None, [])
    none = accepted(upgrade(headers=[("Sec-WebSocket-Protocol", "x")]), subprotocols=["a"])
    assert none.subprotocol is None


def test_hook_accepts_with_its_subprotocol_and_headers() -> None:
    handler = Recorder(HandshakeResponse.accept("v2", headers=[("X-Server", "wsfast")]))
    offer = [("Sec-WebSocket-Protocol", "v1, v2")]
    accept = accepted(upgrade(headers=offer), handler, subprotocols=["v1"])
    assert accept.subprotocol == "v2"
    assert accept.response == rust.build_response(KEY, "v2", None, [("X-Server", "wsfast")])


def test_hook_rejects_with_its_status_body_and_headers() -> None:
    answer = HandshakeResponse.reject(401, "who are you?", [("WWW-Authenticate", "Bearer")])
    reject = rejected(upgrade(), Recorder(answer))
    assert reject.status == 401
    assert reject.response == rust.build_rejection(
        401, "who are you?", [("WWW-Authenticate", "Bearer")]
    )


def test_hook_that_raises_gives_500_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="wsfast.server"):
        reject = rejected(upgrade(), Recorder(RuntimeError("broken hook")))
    assert reject.response == rust.build_rejection(500, "internal server error")
    assert "on_handshake failed on /chat" in caplog.text
    assert "broken hook" in caplog.text


def test_hook_rejection_that_cannot_be_built_gives_500(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="wsfast.server"):
        reject = rejected(upgrade(), Recorder(HandshakeResponse.reject(99)))
    assert reject.status == 500
    assert "cannot build a 99 response" in caplog.text


def test_hook_headers_that_cannot_be_sent_give_500(caplog: pytest.LogCaptureFixture) -> None:
    handler = Recorder(HandshakeResponse.accept(headers=[("X-Bad", "a\r\nInjected: yes")]))
    with caplog.at_level(logging.ERROR, logger="wsfast.server"):
        reject = rejected(upgrade(), handler)
    assert reject.status == 500
    assert "cannot build the handshake response for /chat" in caplog.text


# ---- origin and routing --------------------------------------------------------------------


def test_origin_outside_the_allow_list_gets_403_before_the_hook() -> None:
    handler = Recorder()
    origins = ["https://good.example"]
    good = upgrade(headers=[("Origin", "https://good.example")])
    assert isinstance(run(good, handler, origins=origins), Accept)
    evil = rejected(upgrade(headers=[("Origin", "https://evil.example")]), handler, origins=origins)
    assert evil.response == rust.build_rejection(403, "origin not allowed")
    assert rejected(upgrade(), handler, origins=origins).status == 403
    assert len(handler.requests) == 1


def test_none_in_the_allow_list_admits_requests_without_origin() -> None:
    assert isinstance(run(upgrade(), origins=[None]), Accept)


def test_path_without_a_route_gets_404() -> None:
    handler = Recorder()
    reject = rejected(upgrade("/elsewhere"), routes={"/chat": handler})
    assert reject.response == rust.build_rejection(404, "not found")
    accept = accepted(upgrade("/chat"), routes={"/chat": handler})
    assert accept.handler is handler


# ---- permessage-deflate --------------------------------------------------------------------


def test_deflate_offer_is_negotiated_and_the_core_compresses() -> None:
    config = rust.DeflateConfig(level=9)
    offer = [("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]
    accept = accepted(upgrade(headers=offer), compression=config)
    assert accept.extensions is not None
    assert accept.extensions.startswith("permessage-deflate")
    assert accept.deflate_params is not None
    assert accept.deflate_config is config
    assert f"Sec-WebSocket-Extensions: {accept.extensions}\r\n".encode() in accept.response

    # Both ends built from the negotiated parameters understand each other.
    server = accept.new_core()
    client = new_core("client", max_size=None, params=accept.deflate_params, config=config)
    message = b"compressible " * 100
    server.send(message)
    wire = server.data_to_send()
    assert wire[0] & 0x40  # RSV1: compressed
    assert len(wire) < len(message)
    assert client.receive_data(wire) == [(Opcode.BINARY, message)]


def test_deflate_offer_is_ignored_when_compression_is_off() -> None:
    offer = [("Sec-WebSocket-Extensions", "permessage-deflate")]
    accept = accepted(upgrade(headers=offer), compression=False)
    assert (accept.extensions, accept.deflate_params, accept.deflate_config) == (None, None, None)
    assert b"Sec-WebSocket-Extensions" not in accept.response


def test_malformed_extension_header_gets_400() -> None:
    offer = [("Sec-WebSocket-Extensions", "permessage-deflate;;")]
    assert rejected(upgrade(headers=offer)).status == 400


# ---- plain HTTP ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_health_check_gets_200_ok(method: str) -> None:
    reject = rejected(plain(method, "/health"))
    assert reject.response == rust.build_rejection(200, "ok")


def test_plain_request_to_a_websocket_path_gets_426() -> None:
    reject = rejected(plain("GET", "/chat"), routes={"/chat": Recorder()})
    assert reject.response == rust.build_rejection(
        426, "this is a websocket endpoint: send an upgrade request"
    )
    assert rejected(plain("GET", "/other"), routes={"/chat": Recorder()}).status == 404


def test_plain_post_is_not_a_health_check() -> None:
    assert rejected(plain("POST", "/health"), routes={}).status == 404


def test_http_handler_answers_plain_requests_first() -> None:
    seen: list[Request] = []

    def pages(request: Request) -> HTTPResponse | None:
        seen.append(request)
        if request.path == "/":
            return 200, [("Content-Type", "text/html")], f"<p>{request.query}</p>"
        return None

    reject = rejected(plain("GET", "/?q=1"), http_handler=pages)
    assert reject.response == rust.build_rejection(
        200, "<p>q=1</p>", [("Content-Type", "text/html")]
    )
    assert (seen[0].method, seen[0].path, seen[0].query) == ("GET", "/", "q=1")
    assert seen[0].get("host") == "server.example.com"
    assert seen[0].remote_address == PEER
    # None falls back to the defaults.
    assert body(rejected(plain("GET", "/health"), http_handler=pages)) == b"ok"


def test_http_handler_that_raises_gives_500_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(request: Request) -> HTTPResponse | None:
        raise RuntimeError("broken page")

    with caplog.at_level(logging.ERROR, logger="wsfast.server"):
        reject = rejected(plain("GET", "/page"), http_handler=broken)
    assert reject.response == rust.build_rejection(500, "internal server error")
    assert "http_handler failed on /page" in caplog.text


def test_http_handler_result_that_is_not_a_triple_raises() -> None:
    def wrong(request: Request) -> Any:
        return (200, "no headers")

    with pytest.raises(ValueError):
        run(plain("GET", "/"), http_handler=wrong)


# ---- bad heads -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad header\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
        upgrade().replace(b"Sec-WebSocket-Key: ", b"Sec-WebSocket-Key: short"),
    ],
)
def test_malformed_heads_get_400(data: bytes) -> None:
    reject = rejected(data)
    assert reject.status == 400


def test_upgrade_to_an_unsupported_version_gets_426_naming_13() -> None:
    reject = rejected(upgrade().replace(b"Version: 13", b"Version: 8"))
    assert reject.status == 426
    assert b"Sec-WebSocket-Version: 13\r\n" in reject.response


def test_upgrade_that_is_not_valid_is_not_answered_as_plain_http() -> None:
    # An Upgrade: websocket header makes it an upgrade attempt: the refusal stands.
    data = upgrade().replace(b"Connection: Upgrade", b"Connection: keep-alive")
    reject = rejected(data, http_handler=lambda request: (200, [], "page"))
    assert reject.status != 200


@pytest.mark.parametrize("complete", [False, True])
def test_oversized_head_gets_431(complete: bool) -> None:
    data = b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + (b"\r\n\r\n" if complete else b"")
    reject = rejected(data, http_handler=lambda request: (200, [], "page"))
    assert reject.status == 431


def test_incomplete_head_needs_more_bytes() -> None:
    assert run(upgrade()[:-1]) is None
    assert run(b"") is None


def test_origin_is_checked_before_routing() -> None:
    routed: list[str] = []

    def route(path: str) -> Handler | None:
        routed.append(path)
        return None

    decision = decide(ServerConfig.make(origins=["https://good.example"]), route, PEER, upgrade())
    assert isinstance(decision, Reject) and decision.status == 403
    assert routed == []
