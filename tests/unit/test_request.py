# SPDX-License-Identifier: MIT
"""wsfast.Request: immutable, equal by value, headers parsed lazily from the raw head."""

from __future__ import annotations

import pytest

from wsfast.handler import Request

RAW = (
    b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nOrigin: https://a.example\r\nX-Twice: 1\r\nX-Twice: 2\r\n\r\n"
)


def test_raw_head_headers_parse_on_first_read_in_order() -> None:
    request = Request("GET", "/chat", "room=1", raw_head=RAW)
    assert request.headers == (
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Origin", "https://a.example"),
        ("X-Twice", "1"),
        ("X-Twice", "2"),
    )
    assert request.headers is request.headers  # parsed once, then cached
    assert request.origin == "https://a.example"
    assert request.get("x-twice") == "1"
    assert request.get("absent", "d") == "d"


def test_equal_by_value_whichever_way_headers_were_given() -> None:
    lazy = Request("GET", "/chat", "room=1", raw_head=RAW, remote_address=("127.0.0.1", 5))
    eager = Request("GET", "/chat", "room=1", lazy.headers, ("127.0.0.1", 5))
    assert lazy == eager
    assert hash(lazy) == hash(eager)
    assert lazy != Request("GET", "/other", "room=1", lazy.headers, ("127.0.0.1", 5))
    assert "X-Twice" in repr(lazy)


def test_immutable() -> None:
    request = Request("GET", "/", "", (("Host", "h"),))
    with pytest.raises(AttributeError, match="immutable"):
        request.path = "/x"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del request.method
    assert request.subprotocols == ()
