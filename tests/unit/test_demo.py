# SPDX-License-Identifier: MIT
"""The demo's rules (``wsfast.demo.DemoApp``) without sockets: fake peers record what they get.

The same app over real sockets and in a real browser is in ``tests/integration/test_browser.py``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from typing import Any

import pytest

from wsfast import ConnectionClosedOK
from wsfast.demo import (
    CHAT_TOPIC,
    CLIENTS_TOPIC,
    DEFAULT_SYMBOLS,
    MAX_CHAT_TEXT,
    MAX_ECHO,
    MAX_NAME,
    TICKER_TOPIC,
    DemoApp,
    http_handler,
    page,
)
from wsfast.server import Request


class FakePeer:
    """A connection that records what the app sends to it."""

    def __init__(self, extensions: str | None = None, *, closed: bool = False) -> None:
        self.extensions = extensions
        self.closed = closed
        self.sent: list[str | bytes] = []

    def send(self, data: str | bytes, /) -> None:
        if self.closed:
            raise ConnectionClosedOK(1000, "")
        self.sent.append(data)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The JSON text messages received (of type ``kind`` only, if given)."""
        decoded = [json.loads(m) for m in self.sent if isinstance(m, str)]
        return [e for e in decoded if kind is None or e["type"] == kind]


def make_app() -> DemoApp[FakePeer]:
    return DemoApp(rng=random.Random(7), clock=lambda: 1234.5)


def chat(text: Any, name: Any = None) -> str:
    return json.dumps({"type": "chat", "text": text, "name": name})


def test_open_sends_welcome_then_count_to_everyone() -> None:
    app = make_app()
    alice, bob = FakePeer("permessage-deflate"), FakePeer()
    app.open(alice)
    app.open(bob)
    assert alice.events() == [
        {
            "type": "welcome",
            "id": 1,
            "name": "guest-1",
            "compression": "permessage-deflate",
            "history": [],
        },
        {"type": "clients", "count": 1},
        {"type": "clients", "count": 2},
    ]
    assert bob.events("welcome")[0]["compression"] == ""
    assert bob.events("clients") == [{"type": "clients", "count": 2}]
    assert app.peers == [alice, bob]


def test_close_updates_count_once() -> None:
    app = make_app()
    alice, bob = FakePeer(), FakePeer()
    app.open(alice)
    app.open(bob)
    app.close(bob)
    app.close(bob)
    assert alice.events("clients")[-1] == {"type": "clients", "count": 1}
    assert len(alice.events("clients")) == 3
    assert app.peers == [alice]


def test_chat_is_cleaned_broadcast_and_kept_in_history() -> None:
    app = make_app()
    alice, bob = FakePeer(), FakePeer()
    app.open(alice)
    app.open(bob)
    app.message(alice, chat("  hello\n\tworld  ", name="  Alice  "))
    expected = {"type": "chat", "id": 1, "name": "Alice", "text": "hello world", "time": 1234.5}
    assert alice.events("chat") == bob.events("chat") == [expected]
    # The chosen name sticks; a newcomer gets the history.
    app.message(alice, chat("again"))
    carol = FakePeer()
    app.open(carol)
    history = carol.events("welcome")[0]["history"]
    assert [(m["name"], m["text"]) for m in history] == [
        ("Alice", "hello world"),
        ("Alice", "again"),
    ]


def test_chat_text_and_name_are_cut_to_their_limits() -> None:
    app = make_app()
    alice = FakePeer()
    app.open(alice)
    app.message(alice, chat("x" * (MAX_CHAT_TEXT + 10), name="n" * (MAX_NAME + 10)))
    event = alice.events("chat")[0]
    assert (len(event["text"]), len(event["name"])) == (MAX_CHAT_TEXT, MAX_NAME)


def test_lone_surrogates_are_replaced_so_the_chat_stays_sendable() -> None:
    app = make_app()
    alice = FakePeer()
    app.open(alice)
    app.message(alice, '{"type": "chat", "text": "a\\ud800b", "name": "\\udfff"}')
    event = alice.events("chat")[0]
    assert (event["text"], event["name"]) == ("a?b", "?")
    for message in alice.sent:
        assert isinstance(message, str)
        message.encode()


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("{", "message is not valid JSON"),
        ("[1, 2]", 'expected {"type": "chat", "text": "..."}'),
        ('{"type": "shout", "text": "hi"}', 'expected {"type": "chat", "text": "..."}'),
        (chat("   "), "empty chat message"),
        (chat(42), "empty chat message"),
    ],
)
def test_bad_text_gets_an_error_only_to_the_sender(message: str, error: str) -> None:
    app = make_app()
    alice, bob = FakePeer(), FakePeer()
    app.open(alice)
    app.open(bob)
    app.message(alice, message)
    assert alice.events("error") == [{"type": "error", "error": error}]
    assert bob.events("error") == bob.events("chat") == []


@pytest.mark.parametrize("data", [b"", b"\x00\xff" * 8, bytearray(b"abc"), memoryview(b"xyz")])
def test_binary_is_echoed_as_bytes(data: bytes | bytearray | memoryview) -> None:
    app = make_app()
    alice, bob = FakePeer(), FakePeer()
    app.open(alice)
    app.open(bob)
    app.message(alice, data)
    assert alice.sent[-1] == bytes(data)
    assert type(alice.sent[-1]) is bytes
    assert not any(isinstance(m, bytes) for m in bob.sent)


def test_binary_over_the_limit_is_refused() -> None:
    app = make_app()
    alice = FakePeer()
    app.open(alice)
    app.message(alice, bytes(MAX_ECHO + 1))
    assert alice.events("error") == [
        {"type": "error", "error": f"binary message of {MAX_ECHO + 1} bytes exceeds {MAX_ECHO}"}
    ]


def test_message_from_unknown_peer_is_ignored() -> None:
    app = make_app()
    stranger = FakePeer()
    app.message(stranger, chat("hi"))
    app.message(stranger, b"bin")
    assert stranger.sent == []


def test_tick_moves_prices_and_reaches_every_peer() -> None:
    app = make_app()
    app.tick()  # nobody listening: prices still move, nothing is sent
    alice, bob = FakePeer(), FakePeer()
    app.open(alice)
    app.open(bob)
    for _ in range(50):
        app.tick()
    ticks = alice.events("tick")
    assert ticks == bob.events("tick")
    assert len(ticks) == 50
    last = ticks[-1]
    assert last["time"] == 1234.5
    assert [q["symbol"] for q in last["quotes"]] == list(DEFAULT_SYMBOLS)
    for quote in last["quotes"]:
        opening = DEFAULT_SYMBOLS[quote["symbol"]]
        assert quote["price"] > 0
        assert quote["change"] == pytest.approx((quote["price"] / opening - 1) * 100, abs=0.1)
    assert {q["price"] for q in ticks[0]["quotes"]} != {q["price"] for q in last["quotes"]}


def test_same_seed_gives_same_prices() -> None:
    runs = []
    for _ in range(2):
        app = make_app()
        peer = FakePeer()
        app.open(peer)
        app.tick()
        runs.append(peer.events("tick"))
    assert runs[0] == runs[1]


def test_closed_peer_is_skipped_by_broadcast() -> None:
    app = make_app()
    alice, bob = FakePeer(), FakePeer()
    app.open(alice)
    app.open(bob)
    bob.closed = True
    app.message(alice, chat("still here"))
    app.tick()
    assert alice.events("chat")[0]["text"] == "still here"
    assert len(alice.events("tick")) == 1


def test_custom_broadcast_gets_every_peer() -> None:
    calls: list[tuple[str | bytes, list[FakePeer]]] = []

    def broadcast(data: str | bytes, peers: Iterable[FakePeer]) -> None:
        calls.append((data, list(peers)))

    app = DemoApp(broadcast, symbols={"ONE": 1.0})
    alice = FakePeer()
    app.open(alice)
    app.tick()
    assert [json.loads(data)["type"] for data, _ in calls] == ["clients", "tick"]
    assert all(peers == [alice] for _, peers in calls)
    assert [q["symbol"] for q in json.loads(calls[1][0])["quotes"]] == ["ONE"]


def test_page_is_self_contained_html() -> None:
    html = page().decode()
    assert html.startswith("<!DOCTYPE html>")
    assert 'new WebSocket(scheme + location.host + "/ws")' in html
    assert "http://" not in html and "https://" not in html


@pytest.mark.parametrize(
    ("method", "path", "served"),
    [
        ("GET", "/", True),
        ("HEAD", "/", True),
        ("GET", "/index.html", True),
        ("POST", "/", False),
        ("GET", "/ws", False),
        ("GET", "/other", False),
    ],
)
def test_http_handler_serves_only_the_page(method: str, path: str, served: bool) -> None:
    response = http_handler(Request(method, path, "", ()))
    if served:
        assert response is not None
        status, headers, body = response
        assert status == 200
        assert ("Content-Type", "text/html; charset=utf-8") in headers
        assert body == page()
    else:
        assert response is None


class FakeTopics:
    """Topics that record subscriptions and publications, and deliver them like a broker."""

    def __init__(self) -> None:
        self.subscribers: dict[str, list[FakePeer]] = {}
        self.published: list[tuple[str, str, bool]] = []

    def subscribe(self, peer: FakePeer, topic: str) -> None:
        self.subscribers.setdefault(topic, []).append(peer)

    def publish(self, topic: str, data: str) -> None:
        self.published.append((topic, data, False))
        for peer in self.subscribers.get(topic, []):
            peer.send(data)

    def publish_local(self, topic: str, data: str) -> None:
        self.published.append((topic, data, True))
        for peer in self.subscribers.get(topic, []):
            peer.send(data)


def test_with_topics_chat_is_published_everywhere_and_ticks_locally() -> None:
    topics = FakeTopics()
    app: DemoApp[FakePeer] = DemoApp(rng=random.Random(7), topics=topics, first_id=5001)
    alice, bob = FakePeer(), FakePeer()
    app.open(alice)
    app.open(bob)
    assert topics.subscribers == {
        CHAT_TOPIC: [alice, bob],
        TICKER_TOPIC: [alice, bob],
        CLIENTS_TOPIC: [alice, bob],
    }
    assert [e["id"] for e in (alice.events("welcome") + bob.events("welcome"))] == [5001, 5002]
    app.message(alice, chat("hi"))
    app.tick()
    assert [(t, local) for t, _, local in topics.published] == [
        (CLIENTS_TOPIC, True),
        (CLIENTS_TOPIC, True),
        (CHAT_TOPIC, False),
        (TICKER_TOPIC, True),
    ]
    assert alice.events("chat") == bob.events("chat")
    assert bob.events("chat")[0]["text"] == "hi"
    assert len(bob.events("tick")) == 1
    assert app.next_id == 5003
