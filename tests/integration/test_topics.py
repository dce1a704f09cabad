# SPDX-License-Identifier: MIT
"""Topics over real sockets: subscribe, publish, order, compression groups,
slow-subscriber policies, history and recovery."""

from __future__ import annotations

import contextlib
import threading
import zlib
from typing import Any

import pytest
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

import wsfast
from wsfast.connection import Connection
from wsfast.server import Server
from wsfast.topics import MAX_TOPIC_LENGTH, StreamPosition, TopicsConfig

from .server_util import RawClient, on_loop, running, wait_for
from .topics_util import TopicCommands


class PubSub(TopicCommands):
    """The topic commands (see :class:`TopicCommands`), with its connections and an
    event set at the first close."""

    def __init__(self) -> None:
        self.conns: list[Connection] = []
        self.closed = threading.Event()

    def on_open(self, conn: Connection) -> None:
        self.conns.append(conn)

    def on_close(self, conn: Connection, code: int, reason: str) -> None:
        self.closed.set()


def uri(server: Server) -> str:
    return f"ws://127.0.0.1:{server.port}/"


def subscribe(ws: Any, topic: str, since: tuple[str, int] | None = None) -> list[str]:
    """Subscribe; return the reply's fields (``ok EPOCH OFFSET RECOVERED MISSED``)."""
    ws.send(f"sub {topic}" + (f" {since[0]} {since[1]}" if since else ""))
    reply = ws.recv(timeout=5)
    assert reply.startswith("ok "), reply
    return list(reply.split(" "))


def stats(server: Server, topic: str) -> Any:
    return on_loop(server, lambda: server.topics.stats(topic))


# ---- topic semantics -----------------------------------------------------------------


def test_publish_reaches_every_subscriber_and_counts_deliveries() -> None:
    handler = PubSub()
    with running(handler) as server, connect(uri(server)) as a, connect(uri(server)) as b:
        subscribe(a, "news")
        subscribe(b, "news")
        with connect(uri(server)) as other:
            subscribe(other, "sport")
            assert on_loop(server, lambda: server.publish("news", "hello")) == 2
            assert on_loop(server, lambda: server.publish("news", b"\x00\x01")) == 2
            assert a.recv(timeout=5) == "hello" and b.recv(timeout=5) == "hello"
            assert a.recv(timeout=5) == b"\x00\x01" and b.recv(timeout=5) == b"\x00\x01"
            assert on_loop(server, lambda: server.publish("sport", "goal")) == 1
            assert other.recv(timeout=5) == "goal"
        assert on_loop(server, lambda: server.publish("nobody", "x")) == 0
        st = stats(server, "news")
        assert (st.subscribers, st.published, st.deliveries, st.skipped) == (2, 2, 4, 0)
        assert st.position.offset == 2
        assert on_loop(server, lambda: [c.topic_deliveries for c in handler.conns[:2]]) == [2, 2]
        assert on_loop(server, lambda: handler.conns[0].topics) == frozenset({"news"})


def test_unsubscribe_stops_delivery() -> None:
    handler = PubSub()
    with running(handler) as server, connect(uri(server)) as a:
        subscribe(a, "t")
        a.send("unsub t")
        assert a.recv(timeout=5) == "unsub True"
        a.send("unsub t")
        assert a.recv(timeout=5) == "unsub False"
        assert on_loop(server, lambda: server.publish("t", "lost")) == 0
        assert on_loop(server, lambda: handler.conns[0].topics) == frozenset()
        # The next frame the client gets is the reply to this, not "lost".
        subscribe(a, "u")


def test_connection_publish_skips_the_sender() -> None:
    handler = PubSub()
    with running(handler) as server, connect(uri(server)) as a, connect(uri(server)) as b:
        subscribe(a, "room")
        subscribe(b, "room")
        a.send("pub room from-a")
        assert b.recv(timeout=5) == "from-a"
        # a gets nothing from its own publication: the next thing it gets is b's.
        b.send("pub room from-b")
        assert a.recv(timeout=5) == "from-b"
        st = stats(server, "room")
        assert (st.published, st.deliveries) == (2, 2)


def test_server_publish_excludes_connections() -> None:
    handler = PubSub()
    with running(handler) as server, connect(uri(server)) as a, connect(uri(server)) as b:
        subscribe(a, "t")
        subscribe(b, "t")
        first = handler.conns[0]
        assert on_loop(server, lambda: server.publish("t", "not-a", exclude=first)) == 1
        assert on_loop(server, lambda: server.publish("t", "none", exclude=handler.conns)) == 0
        assert on_loop(server, lambda: server.publish("t", "all")) == 2
        assert b.recv(timeout=5) == "not-a"
        assert a.recv(timeout=5) == "all" and b.recv(timeout=5) == "all"


def test_messages_from_one_publisher_arrive_in_order() -> None:
    handler = PubSub()
    n = 2000
    with running(handler) as server, contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(uri(server))) for _ in range(4)]
        for ws in clients:
            subscribe(ws, "seq")
        # From another thread: each publish is scheduled on the loop, in order.
        for i in range(n):
            server.publish("seq", str(i) if i % 2 else str(i).encode())
        for ws in clients:
            got = [ws.recv(timeout=5) for _ in range(n)]
            assert got == [str(i) if i % 2 else str(i).encode() for i in range(n)]


def test_publish_interleaves_in_order_with_direct_sends() -> None:
    handler = PubSub()
    with running(handler) as server, connect(uri(server)) as a:
        subscribe(a, "t")
        conn = handler.conns[0]

        def mixed() -> None:
            for i in range(50):
                conn.send(f"direct {i}")
                server.publish("t", f"topic {i}")
                conn.send(b"x" * 70000)  # a zero-copy chunk between them

        on_loop(server, mixed)
        for i in range(50):
            assert a.recv(timeout=5) == f"direct {i}"
            assert a.recv(timeout=5) == f"topic {i}"
            assert a.recv(timeout=5) == b"x" * 70000


def test_publish_waits_for_a_fragmented_message_to_end() -> None:
    handler = PubSub()
    with running(handler) as server, RawClient(server.port) as raw:
        raw.handshake()
        raw.send_frame(wsfast.Opcode.TEXT, b"sub t")
        assert raw.recv_frame().payload.startswith(b"ok ")
        conn = handler.conns[0]

        def fragmented() -> None:
            conn.send_text("part1", fin=False)
            server.publish("t", "published")
            conn.send_continuation("part2", fin=True)

        on_loop(server, fragmented)
        frames = [raw.recv_frame() for _ in range(3)]
        assert [(f.opcode, f.payload, f.fin) for f in frames] == [
            (wsfast.Opcode.TEXT, b"part1", False),
            (wsfast.Opcode.CONTINUATION, b"part2", True),
            (wsfast.Opcode.TEXT, b"published", True),
        ]


def test_closing_a_connection_removes_its_subscriptions() -> None:
    handler = PubSub()
    with running(handler) as server:
        with connect(uri(server)) as a:
            subscribe(a, "t1")
            subscribe(a, "t2")
            assert stats(server, "t1").subscribers == 1
        handler.closed.wait(5)
        wait_for(lambda: stats(server, "t1").subscribers == 0)
        assert stats(server, "t2").subscribers == 0
        assert on_loop(server, lambda: server.topics.names) == []
        assert on_loop(server, lambda: server.publish("t1", "x")) == 0


def test_wsfast_client_receives_publications() -> None:
    handler = PubSub()
    with running(handler) as server, wsfast.connect(uri(server)) as ws:
        ws.send("sub t")
        assert str(ws.recv(timeout=5)).startswith("ok ")
        assert on_loop(server, lambda: server.publish("t", "hi")) == 1
        assert ws.recv(timeout=5) == "hi"


# ---- compression groups ----------------------------------------------------------------


def test_every_compression_group_gets_the_right_messages() -> None:
    handler = PubSub()
    factories = {
        "plain": None,
        "own": [ClientPerMessageDeflateFactory()],
        "shared": [ClientPerMessageDeflateFactory(server_no_context_takeover=True)],
        "shared10": [
            ClientPerMessageDeflateFactory(
                server_no_context_takeover=True, server_max_window_bits=10
            )
        ],
    }
    messages = [("abc" * 300), b"\x00" * 5000, "short", bytes(range(256)) * 8]
    with running(handler) as server, contextlib.ExitStack() as stack:
        clients = {}
        for name, ext in factories.items():
            clients[name] = stack.enter_context(
                connect(uri(server), extensions=ext, compression=None)
            )
            subscribe(clients[name], "z")
        for m in messages:
            assert on_loop(server, lambda m=m: server.publish("z", m)) == 4
        for ws in clients.values():
            assert [ws.recv(timeout=5) for _ in messages] == messages


def recv_compressed(raw: RawClient) -> Any:
    """The next frame, RSV1 allowed (RawClient.recv_frame rejects it)."""
    while True:
        parsed = wsfast.Frame.parse(bytes(raw.buf), mask_required=False, rsv1_allowed=True)
        if parsed is not None:
            frame, consumed = parsed
            del raw.buf[:consumed]
            return frame
        chunk = raw.sock.recv(1 << 20)
        assert chunk, "connection closed"
        raw.buf += chunk


def test_no_context_takeover_subscribers_share_one_compressed_frame() -> None:
    handler = PubSub()
    offer = ("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover")
    message = "compress me " * 100
    with running(handler) as server, RawClient(server.port) as r1, RawClient(server.port) as r2:
        for raw in (r1, r2):
            raw.sock.sendall(raw.request_bytes(headers=(offer,)))
            head = raw.read_head()
            assert b"server_no_context_takeover" in head, head
            raw.send_frame(wsfast.Opcode.TEXT, b"sub z")
        for raw in (r1, r2):
            # The reply is compressed by the connection's own compressor: skip it.
            assert recv_compressed(raw).rsv1
        for _ in range(2):
            assert on_loop(server, lambda: server.publish("z", message)) == 2
        frames = [recv_compressed(r) for r in (r1, r2, r1, r2)]
        assert all(f.rsv1 and f.opcode == wsfast.Opcode.TEXT for f in frames)
        # No context: the same payload each time and for each subscriber.
        assert len({f.payload for f in frames}) == 1
        inflater = zlib.decompressobj(-15)
        assert inflater.decompress(frames[0].payload + b"\x00\x00\xff\xff") == message.encode()
        assert len(frames[0].payload) < len(message) // 5


# ---- slow subscribers --------------------------------------------------------------------

HIGH, LOW = 128 << 10, 32 << 10
CHUNK = 64 << 10
# Far more than the kernel's socket buffers can hold for a peer that never reads.
COUNT = 600


def flood(server: Server, fast: RawClient, topic: str) -> None:
    """Publish COUNT messages, each once ``fast`` has received the previous one.

    So the fast subscriber's output drains between publications (it never reaches
    its high-water mark), while a subscriber that never reads falls behind.
    """
    for i in range(COUNT):
        assert (
            on_loop(server, lambda i=i: server.publish(topic, i.to_bytes(4, "big") * (CHUNK // 4)))
            >= 0
        )
        frame = fast.recv_frame()
        assert frame.payload[:4] == i.to_bytes(4, "big")


def slow_setup(raw: RawClient, topic: str) -> None:
    raw.handshake()
    raw.send_frame(wsfast.Opcode.TEXT, f"sub {topic}".encode())
    assert raw.recv_frame().payload.startswith(b"ok ")


def test_slow_subscriber_is_skipped_and_never_delays_the_others() -> None:
    handler = PubSub()
    with (
        running(
            handler, write_limit=(HIGH, LOW), topics=TopicsConfig(slow_subscriber="skip")
        ) as server,
        RawClient(server.port) as fast,
        RawClient(server.port, rcvbuf=4096) as slow,
    ):
        slow_setup(slow, "t")
        slow_setup(fast, "t")
        slow_conn = handler.conns[0]
        flood(server, fast, "t")
        skipped = on_loop(server, lambda: slow_conn.topic_skipped)
        assert skipped > 0
        assert on_loop(server, lambda: slow_conn.state) is wsfast.State.OPEN
        assert on_loop(server, lambda: slow_conn.buffered_amount) <= HIGH + CHUNK + 1024
        st = stats(server, "t")
        assert st.skipped == skipped and st.deliveries == 2 * COUNT - skipped
        # The slow subscriber gets a prefix of the messages, in order, no gaps inside.
        delivered = on_loop(server, lambda: slow_conn.topic_deliveries)
        assert delivered + skipped == COUNT
        for i in range(delivered):
            assert slow.recv_frame().payload[:4] == i.to_bytes(4, "big")


def test_slow_subscriber_is_closed_with_1008() -> None:
    handler = PubSub()
    with (
        running(
            handler, write_limit=(HIGH, LOW), topics=TopicsConfig(slow_subscriber="close")
        ) as server,
        RawClient(server.port) as fast,
        RawClient(server.port, rcvbuf=4096) as slow,
    ):
        slow_setup(slow, "t")
        slow_setup(fast, "t")
        flood(server, fast, "t")
        code, reason, frames = slow.recv_until_close()
        assert (code, reason) == (1008, "slow subscriber")
        assert 0 < len(frames) < COUNT
        wait_for(lambda: stats(server, "t").subscribers == 1)
        assert stats(server, "t").closed >= 1


def test_buffer_policy_buffers_up_to_the_limit_then_closes() -> None:
    limit = 1 << 20
    handler = PubSub()
    config = TopicsConfig(slow_subscriber="buffer", buffer_limit=limit)
    with (
        running(handler, write_limit=(HIGH, LOW), topics=config) as server,
        RawClient(server.port) as fast,
        RawClient(server.port, rcvbuf=4096) as slow,
    ):
        slow_setup(slow, "t")
        slow_setup(fast, "t")
        slow_conn = handler.conns[0]
        peak = [0]

        def publish_and_measure(i: int) -> None:
            server.publish("t", i.to_bytes(4, "big") * (CHUNK // 4))
            peak[0] = max(peak[0], slow_conn.buffered_amount)

        for i in range(COUNT):
            on_loop(server, lambda i=i: publish_and_measure(i))
            assert fast.recv_frame().payload[:4] == i.to_bytes(4, "big")
        # Over the high-water mark, but never over the limit.
        assert HIGH < peak[0] <= limit
        code, reason, frames = slow.recv_until_close()
        assert (code, reason) == (1008, "slow subscriber")
        # Nothing was skipped: every message before the close is there, in order.
        assert [f.payload[:4] for f in frames] == [i.to_bytes(4, "big") for i in range(len(frames))]
        assert stats(server, "t").skipped == 0


def test_buffer_policy_delivers_everything_within_the_limit() -> None:
    handler = PubSub()
    config = TopicsConfig(slow_subscriber="buffer", buffer_limit=64 << 20)
    n = 100
    with (
        running(handler, write_limit=(HIGH, LOW), topics=config) as server,
        RawClient(server.port, rcvbuf=4096) as slow,
    ):
        slow_setup(slow, "t")
        slow_conn = handler.conns[0]
        # One loop turn: nothing is written until it ends, so the output passes the
        # high-water mark after two messages; the rest is buffered, not skipped.
        on_loop(server, lambda: [server.publish("t", bytes([i]) * CHUNK) for i in range(n)])
        assert not on_loop(server, lambda: slow_conn.writable)
        for i in range(n):
            assert slow.recv_frame().payload == bytes([i]) * CHUNK
        assert on_loop(server, lambda: slow_conn.topic_skipped) == 0


# ---- history and recovery ---------------------------------------------------------------


def test_subscribe_since_delivers_what_was_missed() -> None:
    handler = PubSub()
    with running(handler, topics=TopicsConfig(history_size=5)) as server, connect(uri(server)) as a:
        _, epoch, offset, recovered, missed = subscribe(a, "h")
        assert (offset, recovered, missed) == ("0", "True", "0")
        for i in range(1, 11):
            assert on_loop(server, lambda i=i: server.publish("h", f"m{i}")) == 1
        assert [a.recv(timeout=5) for _ in range(10)] == [f"m{i}" for i in range(1, 11)]
        with connect(uri(server)) as b:
            # Saw up to 7: gets 8, 9, 10 first, then the reply.
            b.send(f"sub h {epoch} 7")
            assert [b.recv(timeout=5) for _ in range(3)] == ["m8", "m9", "m10"]
            assert b.recv(timeout=5) == f"ok {epoch} 10 True 3"
            assert on_loop(server, lambda: server.publish("h", "m11")) == 2
            assert b.recv(timeout=5) == "m11"
        with connect(uri(server)) as c:
            assert subscribe(c, "h", (epoch, 11))[1:] == [epoch, "11", "True", "0"]


def test_subscribe_since_says_when_recovery_is_impossible() -> None:
    handler = PubSub()
    with running(handler, topics=TopicsConfig(history_size=3)) as server, connect(uri(server)) as a:
        epoch = subscribe(a, "h")[1]
        for i in range(1, 8):
            on_loop(server, lambda i=i: server.publish("h", f"m{i}"))
        with connect(uri(server)) as b:
            # Trimmed: only 5, 6, 7 are kept.
            assert subscribe(b, "h", (epoch, 3))[3:] == ["False", "0"]
        with connect(uri(server)) as c:
            assert subscribe(c, "h", ("another-epoch", 6))[3:] == ["False", "0"]
        with connect(uri(server)) as d:
            assert subscribe(d, "h", (epoch, 99))[3:] == ["False", "0"]
            # Not recovered, yet subscribed: new messages arrive.
            on_loop(server, lambda: server.publish("h", "m8"))
            assert d.recv(timeout=5) == "m8"


def test_recovery_is_possible_right_at_the_history_edge() -> None:
    handler = PubSub()
    with running(handler, topics=TopicsConfig(history_size=3)) as server, connect(uri(server)) as a:
        epoch = subscribe(a, "h")[1]
        for i in range(1, 8):
            on_loop(server, lambda i=i: server.publish("h", f"m{i}"))
        with connect(uri(server)) as b:
            b.send(f"sub h {epoch} 4")
            assert [b.recv(timeout=5) for _ in range(3)] == ["m5", "m6", "m7"]
            assert b.recv(timeout=5) == f"ok {epoch} 7 True 3"


# ---- bad input ----------------------------------------------------------------------------


def test_bad_topics_and_messages_raise_clear_errors_and_lose_nothing() -> None:
    handler = PubSub()
    with running(handler) as server, connect(uri(server)) as a:
        subscribe(a, "t")
        conn = handler.conns[0]
        with pytest.raises(TypeError, match="topic must be str, not int"):
            server.publish(42, "x")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="topic must be str, not bytes"):
            server.publish(b"t", "x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="topic must not be empty"):
            server.publish("", "x")
        with pytest.raises(ValueError, match=f"exceeds limit of {MAX_TOPIC_LENGTH}"):
            server.publish("é" * 128, "x")
        with pytest.raises(TypeError, match="data must be str or bytes-like, not int"):
            server.publish("t", 42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not dict"):
            on_loop(server, lambda: conn.publish("t", {}))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="topic must be str"):
            on_loop(server, lambda: conn.subscribe(None))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="exceeds limit"):
            on_loop(server, lambda: conn.subscribe("x" * (MAX_TOPIC_LENGTH + 1)))
        assert on_loop(server, lambda: conn.subscribe("x" * MAX_TOPIC_LENGTH)).recovered
        assert stats(server, "t").published == 0
        # A mutable buffer is copied at publish time: changing it later changes nothing.
        buf = bytearray(b"before")
        assert on_loop(server, lambda: server.publish("t", buf)) == 1
        buf[:] = b"after!"
        assert a.recv(timeout=5) == b"before"
        assert stats(server, "t").published == 1


def test_subscribe_on_a_closed_connection_raises() -> None:
    handler = PubSub()
    with running(handler) as server:
        with connect(uri(server)) as a:
            subscribe(a, "t")
        handler.closed.wait(5)
        conn = handler.conns[0]
        with pytest.raises(wsfast.ConnectionClosed):
            on_loop(server, lambda: conn.subscribe("t"))
        assert on_loop(server, lambda: conn.topics) == frozenset()


def test_stream_position_is_accepted_as_since() -> None:
    handler = PubSub()
    with running(handler, topics=TopicsConfig(history_size=2)) as server, connect(uri(server)) as a:
        epoch = subscribe(a, "t")[1]
        on_loop(server, lambda: server.publish("t", "one"))
        assert a.recv(timeout=5) == "one"
        conn = handler.conns[0]
        on_loop(server, lambda: conn.unsubscribe("t"))
        on_loop(server, lambda: server.publish("t", "two"))
        sub = on_loop(server, lambda: conn.subscribe("t", since=StreamPosition(epoch, 1)))
        assert (sub.recovered, sub.missed, sub.position) == (True, 1, StreamPosition(epoch, 2))
        assert a.recv(timeout=5) == "two"


def test_a_burst_of_small_publications_in_one_turn_arrives_whole_and_in_order() -> None:
    handler = PubSub()
    n = 5000
    with running(handler) as server, connect(uri(server)) as a, connect(uri(server)) as b:
        subscribe(a, "t")
        subscribe(b, "t")
        # One loop turn: nothing is written until it ends, so the frames coalesce.
        queued = on_loop(server, lambda: sum(server.publish("t", f"m{i}") for i in range(n)))
        assert queued == 2 * n
        for ws in (a, b):
            assert [ws.recv(timeout=5) for _ in range(n)] == [f"m{i}" for i in range(n)]


def test_small_publications_queued_behind_a_partly_written_batch_keep_their_order() -> None:
    handler = PubSub()
    config = TopicsConfig(slow_subscriber="buffer", buffer_limit=64 << 20)
    n = 4000  # 4000 frames of 100 B: far more than a 4 KiB receive buffer holds
    with (
        running(handler, write_limit=(64 << 20, 32 << 20), topics=config) as server,
        RawClient(server.port, rcvbuf=4096) as slow,
    ):
        slow_setup(slow, "t")
        message = [b"%05d" % i + b"." * 95 for i in range(3 * n)]
        # Three loop turns: each one's batch is written only in part (the peer does
        # not read), so the next turn's frames queue behind a partly written batch.
        for turn in range(3):
            part = message[turn * n : (turn + 1) * n]
            on_loop(server, lambda part=part: [server.publish("t", m) for m in part])
        assert on_loop(server, lambda: server.topics.stats("t").deliveries) == 3 * n
        for expected in message:
            assert slow.recv_frame().payload == expected


def test_bursts_in_successive_turns_reuse_batch_storage_without_stale_bytes() -> None:
    # Each turn's batches are freed after the flush and their storage serves the
    # next turn's batches (transport.pyx, _pool_data): smaller and larger bursts in
    # turn after turn must each arrive exactly, with nothing of an earlier turn.
    handler = PubSub()
    with (
        running(handler) as server,
        connect(uri(server)) as a,
        connect(uri(server)) as b,
        connect(uri(server)) as c,
    ):
        for ws in (a, b, c):
            subscribe(ws, "t")
        for turn, (count, width) in enumerate([(40, 50), (3, 10), (200, 90), (1, 5), (60, 300)]):
            sent = [f"{turn}:{i}:" + chr(65 + turn) * width for i in range(count)]
            queued = on_loop(server, lambda sent=sent: [server.publish("t", m) for m in sent])
            assert queued == [3] * count
            for ws in (a, b, c):
                assert [ws.recv(timeout=5) for _ in range(count)] == sent
