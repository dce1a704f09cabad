# SPDX-License-Identifier: MIT
"""Plain HTTP request heads through the Rust parser (``parse_request_head``).

A server answers requests that are not WebSocket upgrades (health checks, pages,
404s and 426s) from the same httparse-based parser as upgrades, without the
upgrade checks of ``parse_request``.
"""

from __future__ import annotations

import pytest

from wsfast._native import rust
from wsfast.exceptions import InvalidRequest

UPGRADE = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)

PLAIN = b"GET /health?full=1 HTTP/1.1\r\nHost: example.com\r\nAccept:  text/plain \r\n\r\n"


def status_of(data: bytes, max_size: int = 16384) -> int:
    with pytest.raises(InvalidRequest) as exc_info:
        rust.parse_request_head(data, max_size)
    return exc_info.value.status


def test_parses_a_plain_get() -> None:
    parsed = rust.parse_request_head(PLAIN + b"leftover")
    assert parsed is not None
    head, consumed = parsed
    assert consumed == len(PLAIN)
    assert head.method == "GET"
    assert head.target == "/health?full=1"
    assert head.http_version == 1
    assert head.headers == [("Host", "example.com"), ("Accept", "text/plain")]
    assert head.get("accept") == "text/plain"
    assert head.get("X-Missing") is None
    assert head.get("X-Missing", "none") == "none"
    assert head.get_all("HOST") == ["example.com"]
    assert head.is_upgrade is False
    assert repr(head) == 'RequestHead(method="GET", target="/health?full=1", is_upgrade=False)'


def test_parses_any_method_and_http_1_0() -> None:
    parsed = rust.parse_request_head(b"POST /form HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
    assert parsed is not None
    head, _ = parsed
    assert (head.method, head.target, head.http_version) == ("POST", "/form", 0)


def test_waits_for_the_rest_of_the_head_whatever_the_split() -> None:
    for end in range(len(PLAIN)):
        assert rust.parse_request_head(PLAIN[:end]) is None, end
    assert rust.parse_request_head(PLAIN) is not None


def test_accepts_bytearray_and_memoryview() -> None:
    for data in (bytearray(PLAIN), memoryview(PLAIN)):
        parsed = rust.parse_request_head(data)
        assert parsed is not None
        assert parsed[0].target == "/health?full=1"


def test_rejects_str() -> None:
    with pytest.raises(TypeError):
        rust.parse_request_head(PLAIN.decode())  # type: ignore[arg-type]


def test_decodes_header_values_as_latin1() -> None:
    parsed = rust.parse_request_head(b"GET / HTTP/1.1\r\nX-Name: caf\xe9\r\n\r\n")
    assert parsed is not None
    assert parsed[0].get("x-name") == "café"


def test_reports_a_websocket_upgrade() -> None:
    parsed = rust.parse_request_head(UPGRADE)
    assert parsed is not None
    assert parsed[0].is_upgrade is True
    # The same request as parse_request sees it.
    upgrade = rust.parse_request(UPGRADE)
    assert upgrade is not None
    assert parsed[0].headers == upgrade[0].headers


def test_an_invalid_upgrade_is_still_an_upgrade() -> None:
    # parse_request refuses it (426); the head says a WebSocket was asked for, so a
    # server answers with that refusal, not as plain HTTP.
    request = UPGRADE.replace(b"Version: 13", b"Version: 8")
    with pytest.raises(InvalidRequest) as exc_info:
        rust.parse_request(request)
    assert exc_info.value.status == 426
    parsed = rust.parse_request_head(request)
    assert parsed is not None
    assert parsed[0].is_upgrade is True


@pytest.mark.parametrize(
    ("upgrade", "expected"),
    [
        (b"websocket", True),
        (b"WebSocket", True),
        (b"h2c, websocket", True),
        (b"websocket/13", True),
        (b"h2c", False),
        (b"websockets", False),
    ],
)
def test_is_upgrade_looks_for_websocket_in_the_upgrade_header(
    upgrade: bytes, expected: bool
) -> None:
    parsed = rust.parse_request_head(b"GET / HTTP/1.1\r\nUpgrade: " + upgrade + b"\r\n\r\n")
    assert parsed is not None
    assert parsed[0].is_upgrade is expected


def test_other_headers_naming_websocket_are_not_an_upgrade() -> None:
    parsed = rust.parse_request_head(b"GET / HTTP/1.1\r\nConnection: websocket\r\n\r\n")
    assert parsed is not None
    assert parsed[0].is_upgrade is False


@pytest.mark.parametrize(
    "data",
    [
        # Bad request lines.
        b"GET\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET / FTP/1.1\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        # A header line without a colon.
        b"GET / HTTP/1.1\r\nHost\r\n\r\n",
        # Whitespace around a header name.
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
        # An empty header name, a control character in a value.
        b"GET / HTTP/1.1\r\n: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
    ],
)
def test_rejects_malformed_heads_with_400(data: bytes) -> None:
    assert status_of(data) == 400


def test_rejects_a_head_longer_than_max_size_with_431() -> None:
    data = b"GET / HTTP/1.1\r\nCookie: " + b"a" * 200 + b"\r\n\r\n"
    assert rust.parse_request_head(data[:99], 100) is None
    assert status_of(data[:100], 100) == 431
    assert status_of(data, 100) == 431
    assert rust.parse_request_head(data, len(data)) is not None


def test_rejects_too_many_headers_with_431() -> None:
    headers = b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(65))
    assert status_of(b"GET / HTTP/1.1\r\n" + headers + b"\r\n") == 431


def test_errors_match_parse_request() -> None:
    for data in (b"GET / HTTP/1.1\r\nHost\r\n\r\n", b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 65):
        with pytest.raises(InvalidRequest) as head_error:
            rust.parse_request_head(data + b"\r\n")
        with pytest.raises(InvalidRequest) as request_error:
            rust.parse_request(data + b"\r\n")
        assert head_error.value.status == request_error.value.status
        assert str(head_error.value) == str(request_error.value)
