# SPDX-License-Identifier: MIT
"""wsfast.topics without sockets: names, messages, settings, the in-memory engine's
numbering, history and TTL, and the shared compressor."""

from __future__ import annotations

import zlib
from typing import Any

import pytest

import wsfast
from wsfast.topics import (
    MAX_TOPIC_LENGTH,
    Broker,
    InMemoryEngine,
    Publication,
    StreamPosition,
    TopicsConfig,
    check_message,
    check_topic,
)


class Clock:
    """A clock the test moves by hand (the TTL is measured with it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingBroker(Broker):
    """A broker that records what the engine hands it (no subscribers needed)."""

    def __init__(self, engine: InMemoryEngine) -> None:
        super().__init__(engine=engine)
        self.delivered: list[tuple[str, str | bytes, frozenset[Any]]] = []

    def deliver(self, topic: str, data: str | bytes, exclude: frozenset[Any] = frozenset()) -> int:
        self.delivered.append((topic, data, exclude))
        return 7


def engine(
    size: int = 0, ttl: float | None = None
) -> tuple[InMemoryEngine, Clock, RecordingBroker]:
    clock = Clock()
    eng = InMemoryEngine(TopicsConfig(history_size=size, history_ttl=ttl), clock=clock)
    return eng, clock, RecordingBroker(eng)


# ---- names and messages -------------------------------------------------------------------


@pytest.mark.parametrize("topic", ["a", "news/eu", "é" * 127, "x" * MAX_TOPIC_LENGTH])
def test_valid_topic_names_are_accepted(topic: str) -> None:
    assert check_topic(topic) == topic


@pytest.mark.parametrize(
    ("topic", "error", "match"),
    [
        (b"t", TypeError, "topic must be str, not bytes"),
        (None, TypeError, "topic must be str, not NoneType"),
        (1, TypeError, "topic must be str, not int"),
        ("", ValueError, "topic must not be empty"),
        ("x" * (MAX_TOPIC_LENGTH + 1), ValueError, "topic of 256 bytes exceeds limit of 255"),
        ("é" * 128, ValueError, "topic of 256 bytes exceeds limit of 255"),
    ],
)
def test_invalid_topic_names_are_rejected(topic: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        check_topic(topic)


def test_messages_are_checked_and_mutable_ones_copied() -> None:
    assert check_message("text") == "text"
    data = b"bytes"
    assert check_message(data) is data
    buf = bytearray(b"abc")
    copy = check_message(buf)
    buf[0] = 0
    assert copy == b"abc" and type(copy) is bytes
    assert check_message(memoryview(b"xyz")) == b"xyz"
    for bad in (1, 1.5, None, ["x"], {"a": 1}):
        with pytest.raises(TypeError, match="data must be str or bytes-like"):
            check_message(bad)
    with pytest.raises(UnicodeEncodeError):
        check_message("\ud800")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"slow_subscriber": "drop"}, "slow_subscriber must be"),
        ({"buffer_limit": -1}, "buffer_limit must be"),
        ({"history_size": -1}, "history_size must be"),
        ({"history_ttl": 0}, "history_ttl must be positive"),
    ],
)
def test_bad_settings_are_rejected(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TopicsConfig(**options)


# ---- the in-memory engine -------------------------------------------------------------------


def test_publications_are_numbered_and_handed_to_the_broker() -> None:
    eng, _, broker = engine()
    epoch = eng.position("t").epoch
    assert eng.position("t") == StreamPosition(epoch, 0)
    assert eng.publish("t", "a", frozenset()) == 7
    assert eng.publish("t", b"b", frozenset({"x"})) == 7
    assert eng.position("t") == StreamPosition(epoch, 2)
    assert broker.delivered == [("t", "a", frozenset()), ("t", b"b", frozenset({"x"}))]


def test_each_topic_has_its_own_epoch_and_offsets() -> None:
    eng, _, _ = engine()
    eng.publish("a", "1", frozenset())
    assert eng.position("b").offset == 0
    assert eng.position("a").epoch != eng.position("b").epoch


def test_history_returns_what_was_missed() -> None:
    eng, clock, _ = engine(size=3)
    epoch = eng.position("t").epoch
    for i in range(1, 6):
        clock.now += 1
        eng.publish("t", f"m{i}", frozenset())
    missed = eng.history("t", StreamPosition(epoch, 3))
    assert missed is not None
    assert [(p.offset, p.data) for p in missed] == [(4, "m4"), (5, "m5")]
    assert eng.history("t", StreamPosition(epoch, 2)) == [
        Publication(3, 1003.0, "m3"),
        Publication(4, 1004.0, "m4"),
        Publication(5, 1005.0, "m5"),
    ]
    assert eng.history("t", StreamPosition(epoch, 5)) == []


def test_history_is_impossible_after_trimming_or_another_epoch() -> None:
    eng, _, _ = engine(size=3)
    epoch = eng.position("t").epoch
    for i in range(5):
        eng.publish("t", str(i), frozenset())
    assert eng.history("t", StreamPosition(epoch, 1)) is None  # 2 was trimmed
    assert eng.history("t", StreamPosition("other", 4)) is None
    assert eng.history("t", StreamPosition(epoch, 6)) is None  # ahead of the stream
    assert eng.history("t", StreamPosition(epoch, -1)) is None


def test_history_ttl_trims_old_publications() -> None:
    eng, clock, _ = engine(size=100, ttl=10.0)
    epoch = eng.position("t").epoch
    eng.publish("t", "old", frozenset())
    clock.now += 6
    eng.publish("t", "newer", frozenset())
    assert [p.data for p in eng.history("t", StreamPosition(epoch, 0)) or []] == ["old", "newer"]
    clock.now += 5  # "old" is 11 s old now
    assert eng.history("t", StreamPosition(epoch, 0)) is None
    assert [p.data for p in eng.history("t", StreamPosition(epoch, 1)) or []] == ["newer"]


def test_without_history_only_the_current_position_recovers() -> None:
    eng, _, _ = engine()
    epoch = eng.position("t").epoch
    eng.publish("t", "x", frozenset())
    assert eng.history("t", StreamPosition(epoch, 1)) == []
    assert eng.history("t", StreamPosition(epoch, 0)) is None


def test_a_topic_without_history_is_forgotten_when_its_last_subscriber_leaves() -> None:
    eng, _, _ = engine()
    before = eng.position("t")
    eng.publish("t", "x", frozenset())
    eng.unsubscribed("t")
    assert eng.position("t").epoch != before.epoch
    kept, _, _ = engine(size=1)
    before = kept.position("t")
    kept.unsubscribed("t")
    assert kept.position("t") == before


def test_deliver_to_a_topic_without_subscribers_queues_nothing() -> None:
    broker = Broker()
    assert broker.deliver("nobody", "x") == 0
    assert broker.publish("nobody", "x") == 0
    stats = broker.stats("nobody")
    assert (stats.subscribers, stats.published, stats.deliveries) == (0, 0, 0)
    assert stats.position.offset == 1
    assert "nobody" not in broker and broker.names == []


# ---- framing once ---------------------------------------------------------------------------


def test_plain_frames_are_encoded_once_per_opcode() -> None:
    broker = Broker()
    frame = broker._frame(0, 1, b"hello")
    assert frame == wsfast.Frame(wsfast.Opcode.TEXT, b"hello").serialize()


@pytest.mark.parametrize("bits", [9, 10, 15])
def test_the_shared_compressor_keeps_no_context(bits: int) -> None:
    broker = Broker()
    message = b"the same message, compressed alike every time " * 20
    first = broker._frame(bits, 2, message)
    second = broker._frame(bits, 2, message)
    assert first == second
    parsed = wsfast.Frame.parse(first, mask_required=False, rsv1_allowed=True)
    assert parsed is not None
    frame, _ = parsed
    assert frame.rsv1 and frame.opcode == wsfast.Opcode.BINARY
    # Decodable with the subscriber's (possibly smaller) window.
    inflater = zlib.decompressobj(-max(bits, 9))
    assert inflater.decompress(frame.payload + b"\x00\x00\xff\xff") == message
