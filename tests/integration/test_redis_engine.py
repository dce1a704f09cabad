# SPDX-License-Identifier: MIT
"""The Redis topics engine against a real redis-server: topics shared by two server
processes, order, history and recovery (trim, TTL, epoch change after a restart), a
broker restart in the middle of traffic, and bad input."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("redis")

from websockets.sync.client import connect

from wsfast.redis_engine import EngineStats, RedisEngine, check_url, redact
from wsfast.server import Server
from wsfast.topics import StreamPosition, TopicsConfig, engine_from_url

from .redis_util import NodeProcess, RedisServer, free_port, redis_node
from .redis_util import redis_server as redis_server
from .server_util import on_loop, wait_for


def uri(server: Server) -> str:
    return f"ws://127.0.0.1:{server.port}/"


def subscribe(ws: Any, topic: str, since: tuple[str, int] | None = None) -> list[str]:
    """Subscribe; return the reply's fields (``ok EPOCH OFFSET RECOVERED MISSED``)."""
    return recover(ws, topic, since)[1]


def recover(
    ws: Any, topic: str, since: tuple[str, int] | None = None
) -> tuple[list[str], list[str]]:
    """Subscribe; return the recovered messages (queued before the reply) and the
    reply's fields."""
    ws.send(f"sub {topic}" + (f" {since[0]} {since[1]}" if since else ""))
    *missed, reply = recv_until(ws, "ok ")
    return missed, reply.split(" ")


def recv_until(ws: Any, prefix: str) -> list[str]:
    """Messages up to and including the first that starts with ``prefix``."""
    got: list[str] = []
    while not got or not got[-1].startswith(prefix):
        got.append(ws.recv(timeout=10))
    return got


def publish(server: Server, topic: str, data: str | bytes) -> None:
    on_loop(server, lambda: server.publish(topic, data))


def position(server: Server, topic: str) -> StreamPosition:
    pos: StreamPosition = on_loop(server, lambda: server.topics.stats(topic).position)
    return pos


@pytest.fixture
def history_node(redis_server: RedisServer) -> Iterator[tuple[Server, RedisEngine]]:
    with redis_node(redis_server.url, TopicsConfig(history_size=5)) as node:
        yield node


# ---- two processes share topics ----------------------------------------------------


def test_a_publish_on_one_process_reaches_both_exactly_once_in_order(
    redis_server: RedisServer,
) -> None:
    a, b = NodeProcess(redis_server.url), NodeProcess(redis_server.url)
    try:
        with (
            connect(a.uri) as on_a,
            connect(b.uri) as on_b,
            connect(a.uri) as publisher,
        ):
            for ws in (on_a, on_b, publisher):
                subscribe(ws, "room")
            for i in range(300):
                publisher.send(f"pub room m{i}")
            publisher.send("pub room end")
            expected = [f"m{i}" for i in range(300)] + ["end"]
            assert recv_until(on_a, "end") == expected
            assert recv_until(on_b, "end") == expected
            # The publisher gets none of its own, and nobody gets anything twice:
            # the next message each gets is the one published from B.
            on_b.send("pub room from-b")
            assert publisher.recv(timeout=10) == "from-b"
            assert on_a.recv(timeout=10) == "from-b"
            # A delivered "from-b" already (its clients got it): its counters are final.
            on_a.send("stats")
            stats = json.loads(on_a.recv(timeout=10))
            assert stats["received"] == 302 and stats["gaps"] == 0 and stats["lost"] == 0
    finally:
        assert a.stop() == 0
        assert b.stop() == 0


def test_history_published_through_one_process_is_recovered_on_another(
    redis_server: RedisServer,
) -> None:
    a, b = NodeProcess(redis_server.url, 10), NodeProcess(redis_server.url, 10)
    try:
        with connect(a.uri) as on_a, connect(a.uri) as publisher, connect(b.uri) as on_b:
            _, epoch, offset, *_ = subscribe(on_a, "feed")
            for i in range(4):
                publisher.send(f"pub feed p{i}")
            publisher.send("pub feed last")
            assert recv_until(on_a, "last") == ["p0", "p1", "p2", "p3", "last"]
            # B's subscriber was away: it recovers from Redis what A published.
            missed, reply = recover(on_b, "feed", (epoch, int(offset) + 2))
            assert missed == ["p2", "p3", "last"]
            assert reply[1:] == [epoch, str(int(offset) + 5), "True", "3"]
    finally:
        a.stop()
        b.stop()


# ---- in one process ----------------------------------------------------------------


def test_publications_arrive_in_order_through_redis(redis_server: RedisServer) -> None:
    with redis_node(redis_server.url) as (server, engine), connect(uri(server)) as ws:
        subscribe(ws, "t")
        payloads: list[str | bytes] = [
            f"m{i}" if i % 3 else bytes([i % 256]) * i for i in range(500)
        ]

        def burst() -> None:
            # One loop turn: the writer thread sends them in pipelines.
            for p in payloads:
                server.publish("t", p)

        on_loop(server, burst)
        assert [ws.recv(timeout=10) for _ in payloads] == payloads
        assert position(server, "t").offset == 500
        stats = engine.stats()
        assert (stats.published, stats.sent, stats.received, stats.lost) == (500, 500, 500, 0)
        assert stats.connected


def test_publish_returns_zero_and_delivery_waits_for_redis(redis_server: RedisServer) -> None:
    with redis_node(redis_server.url) as (server, _), connect(uri(server)) as ws:
        subscribe(ws, "t")
        assert on_loop(server, lambda: server.publish("t", "x")) == 0
        assert ws.recv(timeout=10) == "x"
        st = on_loop(server, lambda: server.topics.stats("t"))
        assert (st.subscribers, st.published, st.deliveries) == (1, 1, 1)


def test_subscribe_since_recovers_from_the_stream(
    history_node: tuple[Server, RedisEngine],
) -> None:
    server, _ = history_node
    with connect(uri(server)) as ws:
        _, epoch, offset, *_ = subscribe(ws, "news")
        assert offset == "0"
        for i in range(3):
            publish(server, "news", f"n{i}")
        assert [ws.recv(timeout=10) for _ in range(3)] == ["n0", "n1", "n2"]
    with connect(uri(server)) as ws:
        missed, reply = recover(ws, "news", (epoch, 1))
        assert missed == ["n1", "n2"]
        assert reply[1:] == [epoch, "3", "True", "2"]
        # Up to date: nothing missed; binary messages come back binary.
        assert subscribe(ws, "other", (epoch, 0))[3] == "False"  # another topic's epoch
        publish(server, "news", b"\x00\xff")
        assert ws.recv(timeout=10) == b"\x00\xff"
    with connect(uri(server)) as ws:
        assert subscribe(ws, "news", (epoch, 4))[1:] == [epoch, "4", "True", "0"]


def test_recovery_is_impossible_once_the_history_is_trimmed(
    history_node: tuple[Server, RedisEngine],
) -> None:
    server, _ = history_node  # history_size=5
    with connect(uri(server)) as ws:
        _, epoch, *_ = subscribe(ws, "t")
        for i in range(8):
            publish(server, "t", f"m{i}")
        assert [ws.recv(timeout=10) for _ in range(8)][-1] == "m7"
    with connect(uri(server)) as ws:
        # Offsets 4..8 are kept: from 3 on it can recover, from 2 it cannot.
        assert subscribe(ws, "t", (epoch, 2))[1:] == [epoch, "8", "False", "0"]
    with connect(uri(server)) as ws:
        missed, reply = recover(ws, "t", (epoch, 3))
        assert missed == ["m3", "m4", "m5", "m6", "m7"]
        assert reply[3:] == ["True", "5"]
    with connect(uri(server)) as ws:
        # Ahead of the stream, or another epoch: impossible.
        assert subscribe(ws, "t", (epoch, 9))[3] == "False"
    with connect(uri(server)) as ws:
        assert subscribe(ws, "t", ("0" * 16, 8))[3] == "False"


def test_recovery_is_impossible_once_the_history_expired(redis_server: RedisServer) -> None:
    config = TopicsConfig(history_size=10, history_ttl=0.2)
    with redis_node(redis_server.url, config) as (server, _):
        with connect(uri(server)) as ws:
            _, epoch, *_ = subscribe(ws, "t")
            publish(server, "t", "old")
            assert ws.recv(timeout=10) == "old"

        def expired() -> bool:
            with connect(uri(server)) as ws:
                return subscribe(ws, "t", (epoch, 0))[3] == "False"

        wait_for(expired, timeout=10)


def test_epoch_changes_after_a_redis_restart_and_subscribers_keep_receiving(
    redis_server: RedisServer,
) -> None:
    config = TopicsConfig(history_size=10)
    with redis_node(redis_server.url, config) as (server, engine), connect(uri(server)) as ws:
        _, epoch, *_ = subscribe(ws, "t")
        publish(server, "t", "before")
        assert ws.recv(timeout=10) == "before"
        redis_server.restart()  # no persistence: every key is gone
        wait_for(lambda: engine.following("t"), timeout=20)

        # The writer notices the restart on its next publish; keep publishing until
        # one goes through (the ones that fail are counted as lost).
        def delivered_after_restart() -> bool:
            publish(server, "t", "after")
            try:
                return bool(ws.recv(timeout=0.5) == "after")
            except TimeoutError:
                return False

        wait_for(delivered_after_restart, timeout=20)
        new = position(server, "t")
        assert new.epoch != epoch
        stats = engine.stats()
        assert stats.connected and stats.reconnects >= 1
    with redis_node(redis_server.url, config) as (server, _), connect(uri(server)) as ws:
        # The old position cannot be resumed: its epoch is gone.
        assert subscribe(ws, "t", (epoch, 1))[1:] == [new.epoch, str(new.offset), "False", "0"]


def test_redis_killed_mid_traffic_then_restarted(redis_server: RedisServer) -> None:
    with redis_node(redis_server.url) as (server, engine), connect(uri(server)) as ws:
        subscribe(ws, "t")
        stop = threading.Event()
        sent = [0]

        def traffic() -> None:
            # Publishes from another thread go through the loop, in order.
            while not stop.is_set():
                server.publish("t", f"m{sent[0]}")
                sent[0] += 1
                stop.wait(0.001)

        thread = threading.Thread(target=traffic)
        thread.start()
        try:
            assert ws.recv(timeout=10).startswith("m")
            redis_server.kill()
            wait_for(lambda: engine.stats().lost > 0 and not engine.connected, timeout=20)
            assert server.is_serving
            redis_server.start()
            wait_for(lambda: engine.connected and engine.following("t"), timeout=20)
            sent_before = engine.stats().sent
            # Publications go through again.
            wait_for(lambda: engine.stats().sent > sent_before, timeout=20)
        finally:
            stop.set()
            thread.join()
        publish(server, "t", "end")
        got = recv_until(ws, "end")
        numbers = [int(m[1:]) for m in got[:-1]]
        assert numbers == sorted(numbers)  # in order, with a hole for the outage
        stats = engine.stats()
        assert stats.reconnects >= 1 and stats.lost > 0
        assert stats.published == sent[0] + 1
        # Every publication is accounted for, once the writer is done with them.
        wait_for(lambda: (s := engine.stats()).sent + s.lost == s.published)


def publish_through_pubsub_drops(
    admin: Any, server: Server, engine: RedisEngine, until: Callable[[EngineStats], bool]
) -> int:
    """Publish ``m0``, ``m1``, ... on topic ``t`` while Redis drops every pub/sub
    connection, until ``until(engine.stats())`` holds; return how many were published."""
    sent = [0]

    def next_message() -> None:
        publish(server, "t", f"m{sent[0]}")
        sent[0] += 1

    def dropped_some() -> bool:
        # Publish while Redis drops every pub/sub connection: some publications
        # miss this process, which sees the hole in the offsets once it is back.
        admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        for _ in range(20):
            next_message()
        received = engine.stats().received

        def back() -> bool:
            next_message()
            return engine.stats().received > received

        wait_for(back, timeout=20)
        return until(engine.stats())

    wait_for(dropped_some, timeout=30)
    return sent[0]


def test_a_dropped_pubsub_connection_counts_gaps_and_is_reestablished(
    redis_server: RedisServer,
) -> None:
    import redis

    admin = redis.Redis.from_url(redis_server.url)
    with redis_node(redis_server.url) as (server, engine), connect(uri(server)) as ws:
        subscribe(ws, "t")
        sent = publish_through_pubsub_drops(admin, server, engine, lambda s: s.gaps > 0)
        publish(server, "t", "end")
        got = recv_until(ws, "end")
        numbers = [int(m[1:]) for m in got[:-1]]
        assert numbers == sorted(numbers) and len(numbers) < sent
        stats = engine.stats()
        assert stats.reconnects >= 1 and stats.lost == 0
        assert stats.received + stats.gaps == sent + 1
    admin.close()


def test_with_history_what_pubsub_missed_is_filled_in_from_the_stream(
    redis_server: RedisServer,
) -> None:
    import redis

    admin = redis.Redis.from_url(redis_server.url)
    config = TopicsConfig(history_size=1000)
    with redis_node(redis_server.url, config) as (server, engine), connect(uri(server)) as ws:
        subscribe(ws, "t")
        sent = publish_through_pubsub_drops(admin, server, engine, lambda s: s.filled > 0)
        publish(server, "t", "end")
        # Every publication, in order, none twice: the missed ones came from the stream.
        assert recv_until(ws, "end") == [f"m{i}" for i in range(sent)] + ["end"]
        stats = engine.stats()
        assert stats.gaps == 0 and stats.lost == 0 and stats.reconnects >= 1
        assert stats.received + stats.filled == sent + 1
    admin.close()


def test_lifecycle_start_once_and_nothing_queued_outside_it(redis_server: RedisServer) -> None:
    engine = RedisEngine(redis_server.url)
    assert engine.publish("t", "before start", frozenset()) == 0
    assert engine.stats().lost == 1 and not engine.connected
    engine.start(lambda fn, *args: None)
    with pytest.raises(RuntimeError, match="already started"):
        engine.start(lambda fn, *args: None)
    wait_for(lambda: engine.connected)
    engine.publish("t", "sent", frozenset())
    wait_for(lambda: engine.stats().sent == 1)
    engine.close()
    engine.close()  # idempotent
    engine.publish("t", "after close", frozenset())
    stats = engine.stats()
    assert (stats.published, stats.sent, stats.lost, stats.pending) == (3, 1, 2, 0)
    assert not stats.connected


# ---- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:6379", "redis://", "redis://host:notaport", "redis://host/db0", ""],
)
def test_malformed_urls_are_refused_at_construction(url: str) -> None:
    with pytest.raises(ValueError, match="redis"):
        RedisEngine(url)


def test_engine_from_url_picks_redis_and_refuses_other_schemes() -> None:
    assert isinstance(engine_from_url("redis://127.0.0.1:6379/0"), RedisEngine)
    assert isinstance(engine_from_url("rediss://127.0.0.1/1", prefix="x"), RedisEngine)
    with pytest.raises(ValueError, match=r"unsupported broker url 'host:4222': expected redis://"):
        engine_from_url("nats://user:secret@host:4222")
    with pytest.raises(TypeError):
        engine_from_url(None)  # type: ignore[arg-type]


def test_a_host_that_does_not_resolve_fails_at_start() -> None:
    engine = RedisEngine("redis://:secret@no-such-host.invalid:6379/0", timeout=2.0)
    with pytest.raises(ConnectionError, match=r"cannot reach redis at redis://:\*\*\*@no-such"):
        engine.start(lambda fn, *args: None)
    assert "secret" not in repr(engine)
    engine.close()


def test_a_refused_connection_fails_at_start() -> None:
    engine = RedisEngine(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ConnectionError, match="cannot reach redis"):
        engine.start(lambda fn, *args: None)


def test_bad_topics_raise_and_lose_nothing(redis_server: RedisServer) -> None:
    with redis_node(redis_server.url) as (server, engine), connect(uri(server)) as ws:
        subscribe(ws, "t")
        for topic, error in (("", ValueError), ("x" * 256, ValueError), (b"t", TypeError)):
            with pytest.raises(error):
                publish(server, topic, "bad")  # type: ignore[arg-type]
        publish(server, "t", "good")
        assert ws.recv(timeout=10) == "good"
        assert engine.stats().published == 1


def test_helpers_check_and_redact_urls() -> None:
    assert check_url("redis://localhost") == "redis://localhost"
    with pytest.raises(TypeError):
        check_url(6379)
    assert redact("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"
    assert redact("redis://h:1/0") == "redis://h:1/0"
    assert EngineStats(0, 0, 0, 0, 0, 0, 0, 0, False, 0).connected is False
