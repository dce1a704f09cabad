# SPDX-License-Identifier: MIT
"""The opening handshake (RFC 6455 section 4) through the Python API of the Rust core."""

from __future__ import annotations

import pytest

from wsfast._native import rust
from wsfast.exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidRequest,
    InvalidStatus,
    NegotiationError,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def request_with(replace: dict[bytes, bytes | None] | None = None, extra: bytes = b"") -> bytes:
    """REQUEST with some header lines replaced (None: removed) and extra lines added."""
    replace = replace or {}
    lines = REQUEST.split(b"\r\n")[:-2]
    out = []
    for line in lines:
        name = line.split(b":", 1)[0]
        if name in replace:
            if replace[name] is not None:
                out.append(name + b": " + replace[name])  # type: ignore[operator]
        else:
            out.append(line)
    return b"\r\n".join(out) + b"\r\n" + extra + b"\r\n"


def rejection_status(data: bytes, max_size: int = 16384) -> int:
    with pytest.raises(InvalidRequest) as exc_info:
        rust.parse_request(data, max_size)
    return exc_info.value.status


def test_accept_key_matches_rfc_6455_section_1_3() -> None:
    assert rust.accept_key(KEY) == ACCEPT


# Parsing and checking requests.


def test_rfc_6455_example_request_is_parsed_and_validated() -> None:
    parsed = rust.parse_request(REQUEST + b"\x81\x85")
    assert parsed is not None
    request, consumed = parsed
    assert consumed == len(REQUEST)
    assert request.method == "GET"
    assert request.path == "/chat"
    assert request.key == KEY
    assert request.host == "server.example.com"
    assert request.origin == "http://example.com"
    assert request.subprotocols == ["chat", "superchat"]
    assert request.extensions == []
    assert request.headers[0] == ("Host", "server.example.com")
    assert len(request.headers) == 7


def test_request_headers_are_looked_up_case_insensitively() -> None:
    request, _ = rust.parse_request(request_with(extra=b"X-Tag: a\r\nx-tag: b\r\n"))
    assert request.get("sec-websocket-key") == KEY
    assert request.get("X-TAG") == "a"
    assert request.get_all("x-tag") == ["a", "b"]
    assert request.get("missing") is None
    assert request.get("missing", "fallback") == "fallback"
    assert request.get_all("missing") == []


def test_request_keeps_raw_extension_header_values() -> None:
    extra = (
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        b"Sec-WebSocket-Extensions: x-foo\r\n"
    )
    request, _ = rust.parse_request(request_with(extra=extra))
    assert request.extensions == ["permessage-deflate; client_max_window_bits", "x-foo"]


def test_incomplete_request_returns_none_whatever_the_split() -> None:
    for end in range(len(REQUEST)):
        assert rust.parse_request(REQUEST[:end]) is None


def test_request_may_come_in_any_bytes_like_object() -> None:
    assert rust.parse_request(bytearray(REQUEST)) is not None
    assert rust.parse_request(memoryview(b"xx" + REQUEST)[2:]) is not None


def test_request_without_origin_or_subprotocols_has_empty_values() -> None:
    data = request_with({b"Origin": None, b"Sec-WebSocket-Protocol": None})
    request, _ = rust.parse_request(data)
    assert request.origin is None
    assert request.subprotocols == []


def test_token_lists_in_upgrade_and_connection_are_accepted() -> None:
    data = request_with({b"Upgrade": b"h2c, WebSocket", b"Connection": b"keep-alive, Upgrade"})
    assert rust.parse_request(data) is not None


@pytest.mark.parametrize(
    "data",
    [
        request_with({b"Sec-WebSocket-Key": None}),
        request_with({b"Sec-WebSocket-Key": b"c2hvcnQ="}),
        request_with({b"Sec-WebSocket-Key": b"not base64 at all!!!!!=="}),
        request_with({b"Host": None}),
        request_with(extra=b"Host: other.example.com\r\n"),
        request_with(extra=b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\n"),
        request_with(extra=b"Sec-WebSocket-Version: 13\r\n"),
        request_with(extra=b"Sec-WebSocket-Extensions: permessage-deflate; =1\r\n"),
        request_with({b"Sec-WebSocket-Protocol": b"chat room"}),
        REQUEST.replace(b"GET", b"POST", 1),
        REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0", 1),
        b"GET /chat HTTP/1.1\r\nHost server.example.com\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ],
)
def test_invalid_requests_are_rejected_with_400(data: bytes) -> None:
    assert rejection_status(data) == 400


@pytest.mark.parametrize(
    "data",
    [
        request_with({b"Sec-WebSocket-Version": b"8"}),
        request_with({b"Sec-WebSocket-Version": None}),
        request_with({b"Upgrade": None}),
        request_with({b"Upgrade": b"h2c"}),
        request_with({b"Connection": b"keep-alive"}),
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    ],
)
def test_requests_that_are_not_websocket_13_upgrades_are_rejected_with_426(data: bytes) -> None:
    assert rejection_status(data) == 426


def test_oversized_request_is_rejected_with_431() -> None:
    data = request_with(extra=b"Cookie: " + b"a" * 20_000 + b"\r\n")
    assert rejection_status(data) == 431
    assert rejection_status(data[:16384]) == 431
    assert rust.parse_request(data[:16383]) is None
    assert rust.parse_request(data, max_size=len(data)) is not None


def test_request_with_too_many_headers_is_rejected_with_431() -> None:
    extra = b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(64))
    assert rejection_status(request_with(extra=extra)) == 431


def test_invalid_request_carries_a_lowercase_reason() -> None:
    with pytest.raises(InvalidRequest) as exc_info:
        rust.parse_request(request_with({b"Sec-WebSocket-Version": b"8"}))
    assert exc_info.value.reason == "unsupported websocket version 8"
    assert str(exc_info.value) == "HTTP 426: unsupported websocket version 8"


# Building responses.


def test_response_accepts_the_rfc_6455_example_key() -> None:
    response = rust.build_response(KEY, "chat", "permessage-deflate", [("Server", "wsfast")])
    assert response == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Sec-WebSocket-Protocol: chat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
        b"Server: wsfast\r\n"
        b"\r\n"
    )


def test_rejection_carries_its_reason_as_body() -> None:
    assert rust.build_rejection(400, b"missing Host header") == (
        b"HTTP/1.1 400 Bad Request\r\n"
        b"Connection: close\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 19\r\n"
        b"\r\n"
        b"missing Host header"
    )
    assert rust.build_rejection(400, "missing Host header") == rust.build_rejection(
        400, b"missing Host header"
    )


def test_426_rejection_names_the_supported_version() -> None:
    with pytest.raises(InvalidRequest) as exc_info:
        rust.parse_request(request_with({b"Sec-WebSocket-Version": b"8"}))
    error = exc_info.value
    response = rust.build_rejection(error.status, error.reason.encode())
    assert response.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in response
    assert b"\r\nUpgrade: websocket\r\n" in response


def test_rejection_keeps_a_caller_content_type() -> None:
    response = rust.build_rejection(403, b"{}", [("Content-Type", "application/json")])
    assert b"text/plain" not in response
    assert b"\r\nContent-Type: application/json\r\n" in response


@pytest.mark.parametrize("status", [101, 199, 600])
def test_rejection_status_must_be_200_to_599(status: int) -> None:
    with pytest.raises(ValueError, match="status"):
        rust.build_rejection(status)


@pytest.mark.parametrize(
    "build",
    [
        lambda: rust.build_response(KEY, headers=[("X-A", "1\r\nSet-Cookie: x")]),
        lambda: rust.build_response(KEY, headers=[("X-A: 1\r\nX-B", "2")]),
        lambda: rust.build_response(KEY, subprotocol="chat\r\nX: 1"),
        lambda: rust.build_response(KEY, extensions="permessage-deflate\nX: 1"),
        lambda: rust.build_rejection(400, b"", [("X-A", "\x00")]),
        lambda: rust.build_request("example.com\r\nX: 1", "/", KEY),
        lambda: rust.build_request("example.com", "/ HTTP/1.0\r\nX: 1", KEY),
        lambda: rust.build_request("example.com", "/", KEY, ["chat, other"]),
    ],
)
def test_header_injection_is_refused_when_building(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


# Client side: building requests, parsing and checking responses.


def test_built_request_parses_and_validates() -> None:
    data = rust.build_request(
        "example.com:8080",
        "/chat?room=1",
        KEY,
        ["chat", "superchat"],
        "permessage-deflate; client_max_window_bits",
        [("Origin", "http://example.com")],
    )
    request, consumed = rust.parse_request(data)
    assert consumed == len(data)
    assert request.path == "/chat?room=1"
    assert request.host == "example.com:8080"
    assert request.subprotocols == ["chat", "superchat"]
    assert request.origin == "http://example.com"
    assert request.extensions == ["permessage-deflate; client_max_window_bits"]


def test_built_response_parses_and_validates() -> None:
    data = rust.build_response(KEY, "chat", "permessage-deflate; server_max_window_bits=10")
    parsed = rust.parse_response(data + b"\x81\x00")
    assert parsed is not None
    response, consumed = parsed
    assert consumed == len(data)
    assert response.status == 101
    assert response.reason == "Switching Protocols"
    assert response.get("sec-websocket-accept") == ACCEPT
    subprotocol, extensions = rust.validate_response(
        response, KEY, ["superchat", "chat"], "permessage-deflate; client_max_window_bits"
    )
    assert subprotocol == "chat"
    assert extensions == ["permessage-deflate; server_max_window_bits=10"]


def test_incomplete_response_returns_none() -> None:
    data = rust.build_response(KEY)
    for end in range(len(data)):
        assert rust.parse_response(data[:end]) is None


def test_malformed_response_raises_invalid_handshake() -> None:
    with pytest.raises(InvalidHandshake):
        rust.parse_response(b"HTTP/1.1 abc Nope\r\n\r\n")
    with pytest.raises(InvalidHandshake, match="exceeds 100 bytes"):
        rust.parse_response(b"HTTP/1.1 101 Switching Protocols\r\nX: " + b"a" * 200, 100)


def test_non_101_response_raises_invalid_status() -> None:
    response, _ = rust.parse_response(rust.build_rejection(403, b"go away"))
    with pytest.raises(InvalidStatus) as exc_info:
        rust.validate_response(response, KEY)
    assert exc_info.value.status == 403


def response_with(*headers: tuple[str, str]) -> object:
    return rust.Response(101, "Switching Protocols", list(headers))


UPGRADE = ("Upgrade", "websocket")
CONNECTION = ("Connection", "Upgrade")
ACCEPT_HEADER = ("Sec-WebSocket-Accept", ACCEPT)


@pytest.mark.parametrize(
    "response",
    [
        response_with(CONNECTION, ACCEPT_HEADER),
        response_with(("Upgrade", "h2c"), CONNECTION, ACCEPT_HEADER),
        response_with(UPGRADE, ACCEPT_HEADER),
        response_with(UPGRADE, CONNECTION),
        response_with(UPGRADE, CONNECTION, ("Sec-WebSocket-Accept", "wrong")),
        response_with(UPGRADE, CONNECTION, ACCEPT_HEADER, ACCEPT_HEADER),
        response_with(
            UPGRADE, CONNECTION, ACCEPT_HEADER, ("Sec-WebSocket-Extensions", "permessage-deflate;")
        ),
    ],
)
def test_response_with_bad_upgrade_headers_raises_invalid_header(response: object) -> None:
    with pytest.raises(InvalidHeader):
        rust.validate_response(response, KEY, [], "permessage-deflate")


@pytest.mark.parametrize(
    ("header", "subprotocols", "extensions"),
    [
        (("Sec-WebSocket-Protocol", "chat"), [], None),
        (("Sec-WebSocket-Protocol", "chat"), ["superchat"], None),
        (("Sec-WebSocket-Protocol", "chat, superchat"), ["chat", "superchat"], None),
        (("Sec-WebSocket-Extensions", "permessage-deflate"), [], None),
        (("Sec-WebSocket-Extensions", "x-foo"), [], "permessage-deflate"),
        (
            ("Sec-WebSocket-Extensions", "permessage-deflate, permessage-deflate"),
            [],
            "permessage-deflate",
        ),
    ],
)
def test_response_choosing_what_we_did_not_offer_raises_negotiation_error(
    header: tuple[str, str], subprotocols: list[str], extensions: str | None
) -> None:
    response = response_with(UPGRADE, CONNECTION, ACCEPT_HEADER, header)
    with pytest.raises(NegotiationError):
        rust.validate_response(response, KEY, subprotocols, extensions)


def test_response_without_subprotocol_or_extensions_is_accepted() -> None:
    response = response_with(UPGRADE, CONNECTION, ACCEPT_HEADER)
    assert rust.validate_response(response, KEY, ["chat"], "permessage-deflate") == (None, [])


# Interoperability with the websockets library (sans-I/O, no sockets).


def test_websockets_client_request_is_accepted_and_our_response_satisfies_it() -> None:
    from websockets.client import ClientProtocol
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
    from websockets.protocol import State
    from websockets.typing import Subprotocol
    from websockets.uri import parse_uri

    client = ClientProtocol(
        parse_uri("ws://example.com/chat?x=1"),
        subprotocols=[Subprotocol("chat")],
        extensions=[ClientPerMessageDeflateFactory()],
    )
    client.send_request(client.connect())
    (data,) = client.data_to_send()

    request, consumed = rust.parse_request(data)
    assert consumed == len(data)
    assert request.path == "/chat?x=1"
    assert request.subprotocols == ["chat"]
    negotiated = rust.negotiate_deflate(
        request.extensions, rust.DeflateConfig(client_max_window_bits=12)
    )
    assert negotiated is not None
    params, extension = negotiated
    assert params.client_max_window_bits == 12

    client.receive_data(rust.build_response(request.key, "chat", extension))
    assert client.handshake_exc is None
    assert client.state is State.OPEN
    assert client.subprotocol == "chat"


def test_our_request_is_accepted_by_a_websockets_server_and_its_response_validates() -> None:
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
    from websockets.server import ServerProtocol
    from websockets.typing import Subprotocol

    server = ServerProtocol(
        subprotocols=[Subprotocol("chat")],
        extensions=[ServerPerMessageDeflateFactory(server_max_window_bits=11)],
    )
    config = rust.DeflateConfig()
    offer = rust.deflate_offer(config)
    server.receive_data(rust.build_request("example.com", "/", KEY, ["chat"], offer))
    (request,) = server.events_received()
    server.send_response(server.accept(request))
    (data,) = server.data_to_send()

    response, _ = rust.parse_response(data)
    subprotocol, extensions = rust.validate_response(response, KEY, ["chat"], offer)
    assert subprotocol == "chat"
    params = rust.accept_deflate_response(extensions, config)
    assert params is not None
    assert params.server_max_window_bits == 11
