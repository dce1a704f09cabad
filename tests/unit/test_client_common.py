# SPDX-License-Identifier: MIT
"""wsfast._client_common: what the blocking and asyncio clients share, without I/O."""

from __future__ import annotations

import base64
import ssl

import pytest

from wsfast._client_common import (
    EV_CLOSE,
    EV_PONG,
    ClientHandshake,
    Pings,
    header_list,
    parse_url,
    ssl_context,
)
from wsfast.exceptions import InvalidState
from wsfast.frames import Opcode

# ---- URLs and options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://example.com", (False, "example.com", 80, "example.com", "/")),
        ("wss://example.com/a?b=1", (True, "example.com", 443, "example.com", "/a?b=1")),
        ("ws://example.com:80/", (False, "example.com", 80, "example.com", "/")),
        ("ws://example.com:8000/x", (False, "example.com", 8000, "example.com:8000", "/x")),
        ("ws://[::1]:9/", (False, "::1", 9, "[::1]:9", "/")),
        ("WS://example.com/a b", (False, "example.com", 80, "example.com", "/a%20b")),
    ],
)
def test_parse_url(url: str, expected: tuple[bool, str, int, str, str]) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize("url", ["http://example.com/", "ws:///path", "example.com"])
def test_parse_url_refuses_what_is_not_a_websocket_url(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


def test_credentials_in_the_url_become_basic_authorization() -> None:
    pairs = header_list("ws://al%20ice:s%3Acret@example.com/", {"X-A": "1"})
    token = base64.b64encode(b"al ice:s:cret").decode()
    assert pairs == [("X-A", "1"), ("Authorization", f"Basic {token}")]
    assert header_list("ws://example.com/", [("X-B", "2")]) == [("X-B", "2")]
    assert header_list("ws://example.com/", None) == []


def test_ssl_context_is_only_for_wss() -> None:
    context = ssl.create_default_context()
    assert ssl_context(False, None) is None
    with pytest.raises(ValueError, match="only for wss://"):
        ssl_context(False, context)
    assert ssl_context(True, context) is context
    default = ssl_context(True, None)
    assert isinstance(default, ssl.SSLContext)
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname


def test_handshake_refuses_a_compression_of_the_wrong_type() -> None:
    with pytest.raises(TypeError):
        ClientHandshake("ws://example.com/", compression="yes")


def test_control_event_kinds_are_the_opcodes() -> None:
    assert (EV_CLOSE, EV_PONG) == (Opcode.CLOSE, Opcode.PONG)


# ---- pings ---------------------------------------------------------------------------------


def recording() -> tuple[Pings[str], list[str]]:
    resolved: list[str] = []
    return Pings(resolved.append), resolved


def test_default_ping_payloads_are_four_fresh_random_bytes() -> None:
    pings, _ = recording()
    seen = set()
    for i in range(50):
        payload = pings.payload(None)
        assert len(payload) == 4 and payload not in seen
        seen.add(payload)
        pings.add(payload, str(i))


def test_ping_payload_is_encoded_and_must_not_be_pending() -> None:
    pings, _ = recording()
    assert pings.payload("hé") == "hé".encode()
    assert pings.payload(bytearray(b"ab")) == b"ab"
    pings.add(b"ab", "first")
    with pytest.raises(InvalidState):
        pings.payload(b"ab")
    with pytest.raises(InvalidState):
        pings.payload("ab")
    pings.discard(b"ab")
    assert pings.payload(b"ab") == b"ab"


def test_pong_resolves_its_ping_and_every_earlier_one_in_order() -> None:
    pings, resolved = recording()
    for payload in (b"1", b"2", b"3"):
        pings.add(payload, payload.decode())
    pings.pong_received(b"2")
    assert resolved == ["1", "2"]
    pings.pong_received(b"2")  # answered already: unsolicited now
    pings.pong_received(b"x")  # never sent
    assert resolved == ["1", "2"]
    assert pings.clear() == ["3"]
    assert pings.clear() == []


def test_control_events_resolve_pongs_and_report_a_close() -> None:
    pings, resolved = recording()
    pings.add(b"p", "waiter")
    assert not pings.controls_received([(int(Opcode.PING), b"x"), (EV_PONG, b"p")])
    assert resolved == ["waiter"]
    assert pings.controls_received([(EV_CLOSE, (1000, ""))])
