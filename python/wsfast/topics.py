# SPDX-License-Identifier: MIT
"""Topics: encode-once publish/subscribe on one server.

Connections subscribe to named topics (``conn.subscribe(topic)``); a publication
(``server.publish(topic, data)`` or ``conn.publish(topic, data)``) reaches every
local subscriber. Two parts, so other engines can plug in later:

- :class:`Broker` (one per server, ``server.topics``) holds the local subscribers
  and does the fan-out: a message is framed once per (opcode, compression group) and
  the same ``bytes`` object is queued on every subscriber of the group, through the
  native ``Transport.send_frame`` (the topic's slow-subscriber policy, per-subscriber
  water marks, counters).
- An :class:`Engine` orders publications, numbers them and keeps their history.
  :class:`InMemoryEngine` (the default) serves one process; engines that span
  processes (workers, Redis) implement the same four calls and hand every
  publication back to :meth:`Broker.deliver`.

Compression groups: a subscriber without permessage-deflate gets the plain frame; a
subscriber that negotiated deflate with ``server_no_context_takeover`` gets a frame
compressed once for all such subscribers with the same window (a shared compressor
without context); a subscriber whose compression context is its own gets the message
through its own compressor (one compression per subscriber).

Everything here runs on the server loop's thread; ``Server.publish`` schedules
itself there when called from another thread.
"""

from __future__ import annotations

import importlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple, Protocol

from wsfast._native import cy, rust

# A wsfast.connection.Connection; not imported, since connection.py imports this module
# (the package imports downward only). The broker uses its private attributes _t (the
# native transport), _topics, _deflate_params and _deflate_config.
Connection = Any

__all__ = [
    "ENGINES",
    "MAX_TOPIC_LENGTH",
    "Broker",
    "Engine",
    "InMemoryEngine",
    "Publication",
    "ServiceEngine",
    "SlowSubscriberPolicy",
    "StreamPosition",
    "Subscription",
    "TopicStats",
    "TopicsConfig",
    "check_topic",
    "engine_from_url",
]

#: Longest topic name, in UTF-8 bytes.
MAX_TOPIC_LENGTH: Final = 255

#: What a publication does for a subscriber over its high-water mark: "skip" it
#: (counted), "buffer" it while the subscriber's output stays under
#: ``TopicsConfig.buffer_limit`` (then close), or "close" the subscriber with 1008.
SlowSubscriberPolicy = Literal["skip", "buffer", "close"]

# The native transport's policy numbers (transport.pyx, PUBLISH_*).
_POLICIES: Final[dict[str, int]] = {"skip": 0, "buffer": 1, "close": 2}

_OP_TEXT: Final = 1
_OP_BINARY: Final = 2


@dataclass(frozen=True, slots=True)
class TopicsConfig:
    """Server-wide topic settings (``serve(..., topics=TopicsConfig(...))``).

    Attributes:
        slow_subscriber: the :data:`SlowSubscriberPolicy` ("skip" by default).
        buffer_limit: with "buffer", the most bytes a subscriber may have queued
            before it is closed with 1008.
        history_size: publications kept per topic for recovery (0: none).
        history_ttl: seconds a publication stays in the history (None: no limit).
    """

    slow_subscriber: SlowSubscriberPolicy = "skip"
    buffer_limit: int = 16 << 20
    history_size: int = 0
    history_ttl: float | None = None

    def __post_init__(self) -> None:
        if self.slow_subscriber not in _POLICIES:
            raise ValueError(
                f"slow_subscriber must be 'skip', 'buffer' or 'close', not {self.slow_subscriber!r}"
            )
        if self.buffer_limit < 0:
            raise ValueError(f"buffer_limit must be >= 0, not {self.buffer_limit}")
        if self.history_size < 0:
            raise ValueError(f"history_size must be >= 0, not {self.history_size}")
        if self.history_ttl is not None and self.history_ttl <= 0:
            raise ValueError(f"history_ttl must be positive, not {self.history_ttl}")


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where a topic's stream is: its epoch and the offset of its last publication.

    Offsets count publications from 1 (0: none yet); the epoch changes when the
    stream is recreated (another process, a lost history), so a position from
    another epoch cannot be resumed.
    """

    epoch: str
    offset: int


@dataclass(frozen=True, slots=True)
class Subscription:
    """What :meth:`Connection.subscribe <wsfast.Connection.subscribe>` returns.

    Attributes:
        topic: the topic.
        position: the stream position after any recovered messages were queued:
            each later message on this topic is ``offset + 1``, ``+ 2``, ...
        recovered: False when ``since`` was given and the missed messages cannot be
            delivered (epoch changed or history trimmed): reload the state. True
            otherwise.
        missed: how many missed messages were queued before any new one.
    """

    topic: str
    position: StreamPosition
    recovered: bool = True
    missed: int = 0


@dataclass(frozen=True, slots=True)
class TopicStats:
    """Counters of one topic on this server.

    Attributes:
        subscribers: local subscribers now.
        published: publications delivered locally.
        deliveries: messages queued on subscribers.
        skipped: messages skipped by the "skip" policy.
        closed: subscribers found closing or closed by the policy at publication.
        position: the stream position.
    """

    subscribers: int
    published: int
    deliveries: int
    skipped: int
    closed: int
    position: StreamPosition


class Publication(NamedTuple):
    """One publication kept in a topic's history."""

    offset: int
    time: float
    data: str | bytes


def check_topic(topic: object) -> str:
    """Check a topic name.

    Args:
        topic: the name.

    Returns:
        The name.

    Raises:
        TypeError: if ``topic`` is not a ``str``.
        ValueError: if it is empty or longer than :data:`MAX_TOPIC_LENGTH` bytes.
    """
    if type(topic) is not str:
        raise TypeError(f"topic must be str, not {type(topic).__name__}")
    if not topic:
        raise ValueError("topic must not be empty")
    n = len(topic.encode("utf-8", "surrogatepass"))
    if n > MAX_TOPIC_LENGTH:
        raise ValueError(f"topic of {n} bytes exceeds limit of {MAX_TOPIC_LENGTH}")
    return topic


def check_message(data: object) -> str | bytes:
    """Check a message to publish and take an immutable copy of a mutable one.

    Args:
        data: ``str`` (a text message) or bytes-like (a binary message).

    Returns:
        ``data`` as ``str`` or ``bytes``.

    Raises:
        TypeError: if ``data`` is neither.
        UnicodeEncodeError: if a ``str`` holds lone surrogates.
    """
    if type(data) is str or type(data) is bytes:
        if type(data) is str:
            data.encode("utf-8")  # lone surrogates: fail here, not per subscriber
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        # The message outlives this call (queues, history): never share a mutable one.
        return bytes(data)
    if isinstance(data, str):
        return str(data)
    raise TypeError(f"data must be str or bytes-like, not {type(data).__name__}")


class Engine(Protocol):
    """What orders, numbers and stores publications; the broker delivers them.

    An engine calls :meth:`Broker.deliver` once per publication for this process's
    subscribers (for the in-memory engine, synchronously from :meth:`publish`).
    Every call is made on the server loop's thread.
    """

    def bind(self, broker: Broker) -> None:
        """Attach to the broker that delivers this process's publications."""

    def publish(self, topic: str, data: str | bytes, exclude: frozenset[Any]) -> int:
        """Publish; return the local deliveries queued (0 if delivery is deferred)."""

    def subscribed(self, topic: str) -> None:
        """The first local subscriber of ``topic`` arrived."""

    def unsubscribed(self, topic: str) -> None:
        """The last local subscriber of ``topic`` left."""

    def position(self, topic: str) -> StreamPosition:
        """The topic's stream position."""

    def history(self, topic: str, since: StreamPosition) -> list[Publication] | None:
        """Publications after ``since``, or None if they cannot all be given."""


class ServiceEngine(Engine, Protocol):
    """An :class:`Engine` that talks to a service (Redis; NATS later) from its own
    threads, and so has a lifecycle.

    The server (or whoever runs it) calls :meth:`start` once the loop exists and
    :meth:`close` after the server closed. Deliveries reach the loop thread only
    through the ``call_soon_threadsafe`` given to :meth:`start`.
    """

    def start(self, call_soon_threadsafe: Callable[..., object]) -> None:
        """Connect and start delivering; raise ``ConnectionError`` if unreachable."""

    def close(self) -> None:
        """Flush what can be flushed, stop the threads, disconnect (idempotent)."""


#: Broker URL schemes and the engine each one names ("module:class"). A registry of
#: names rather than imports: the package imports downward only, and an engine's
#: client library (redis-py) is needed only by those who use it. A NATS engine adds
#: "nats" here.
ENGINES: Final[dict[str, str]] = {
    "redis": "wsfast.redis_engine:RedisEngine",
    "rediss": "wsfast.redis_engine:RedisEngine",
}


def engine_from_url(url: str, config: TopicsConfig | None = None, **options: Any) -> ServiceEngine:
    """The engine for a broker URL (``serve(..., broker=url)``, ``--redis URL``).

    Args:
        url: ``redis://host[:port][/db]`` or ``rediss://...`` (Redis over TLS).
        config: the history settings (default: the broker's, when bound).
        **options: engine options (see :class:`wsfast.redis_engine.RedisEngine`).

    Returns:
        An engine, not started yet.

    Raises:
        TypeError: if ``url`` is not a ``str``.
        ValueError: if the URL's scheme is not supported or the URL is malformed.
        ImportError: if the engine's client library is not installed.
    """
    if not isinstance(url, str):
        raise TypeError(f"broker url must be str, not {type(url).__name__}")
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    target = ENGINES.get(scheme)
    if target is None:
        expected = " or ".join(f"{name}://" for name in ENGINES)
        raise ValueError(f"unsupported broker url {url.split('@')[-1]!r}: expected {expected}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"the {scheme}:// engine cannot be loaded ({exc}); for redis: pip install redis hiredis"
        ) from exc
    engine: ServiceEngine = getattr(module, class_name)(url, config, **options)
    return engine


class _Stream:
    __slots__ = ("entries", "epoch", "offset")

    def __init__(self) -> None:
        self.epoch = os.urandom(8).hex()
        self.offset = 0
        self.entries: deque[Publication] = deque()


class InMemoryEngine:
    """The default engine: one process, history in memory.

    Args:
        config: history size and TTL (a :class:`TopicsConfig`).
        clock: the monotonic clock the TTL is measured with.
    """

    def __init__(
        self, config: TopicsConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config or TopicsConfig()
        self._clock = clock
        self._streams: dict[str, _Stream] = {}
        self._broker: Broker | None = None

    def bind(self, broker: Broker) -> None:
        """Attach to the broker that delivers publications.

        Args:
            broker: the server's broker.
        """
        self._broker = broker

    def _stream(self, topic: str) -> _Stream:
        stream = self._streams.get(topic)
        if stream is None:
            stream = self._streams[topic] = _Stream()
        return stream

    def _trim(self, stream: _Stream, now: float) -> None:
        entries = stream.entries
        ttl = self._config.history_ttl
        if ttl is not None:
            while entries and now - entries[0].time >= ttl:
                entries.popleft()

    def publish(self, topic: str, data: str | bytes, exclude: frozenset[Any]) -> int:
        """Number the publication, keep it if the topic has history, deliver it.

        Args:
            topic: a checked topic name.
            data: a checked message.
            exclude: connections not to deliver to.

        Returns:
            The local deliveries queued.
        """
        stream = self._stream(topic)
        stream.offset += 1
        size = self._config.history_size
        if size:
            now = self._clock()
            stream.entries.append(Publication(stream.offset, now, data))
            if len(stream.entries) > size:
                stream.entries.popleft()
            self._trim(stream, now)
        if self._broker is None:
            return 0
        return self._broker.deliver(topic, data, exclude)

    def subscribed(self, topic: str) -> None:
        """Nothing to do in one process."""

    def unsubscribed(self, topic: str) -> None:
        """Forget the stream of a topic that keeps no history.

        Args:
            topic: the topic.
        """
        if not self._config.history_size:
            self._streams.pop(topic, None)

    def position(self, topic: str) -> StreamPosition:
        """The topic's epoch and last offset.

        Args:
            topic: the topic.

        Returns:
            Its position (a new stream starts at offset 0).
        """
        stream = self._stream(topic)
        return StreamPosition(stream.epoch, stream.offset)

    def history(self, topic: str, since: StreamPosition) -> list[Publication] | None:
        """The publications after ``since``.

        Args:
            topic: the topic.
            since: the last position the subscriber saw.

        Returns:
            The missed publications, oldest first, or None if the epoch differs,
            ``since`` is ahead of the stream, or some were trimmed.
        """
        stream = self._stream(topic)
        if since.epoch != stream.epoch or not 0 <= since.offset <= stream.offset:
            return None
        if since.offset == stream.offset:
            return []
        self._trim(stream, self._clock())
        entries = stream.entries
        if not entries or entries[0].offset > since.offset + 1:
            return None
        first = since.offset + 1 - entries[0].offset
        return [entries[i] for i in range(first, len(entries))]


# Compression groups: one frame per group and opcode.
_PLAIN: Final = 0  # no permessage-deflate: the uncompressed frame
_OWN: Final = -1  # a per-connection compression context: the connection encodes
# Any other key is the window bits of a shared no-context-takeover compressor.


def _group(conn: Connection) -> int:
    params = conn._deflate_params
    if params is None:
        return _PLAIN
    if not params.server_no_context_takeover:
        return _OWN
    bits = params.server_max_window_bits or 15
    config = conn._deflate_config
    if config is not None:
        bits = min(bits, config.compress_window_bits or 15)
    return int(bits)


class _Topic:
    __slots__ = ("closed", "deliveries", "groups", "published", "skipped", "subscribers")

    def __init__(self) -> None:
        self.subscribers: dict[Connection, int] = {}
        # group -> transports, rebuilt (never mutated) when subscribers change, so a
        # fan-out in progress keeps iterating over the list it started with.
        self.groups: dict[int, list[Any]] | None = None
        self.published = 0
        self.deliveries = 0
        self.skipped = 0
        self.closed = 0

    def get_groups(self) -> dict[int, list[Any]]:
        groups = self.groups
        if groups is None:
            groups = {}
            for conn, key in self.subscribers.items():
                groups.setdefault(key, []).append(conn._t)
            self.groups = groups
        return groups


class Broker:
    """A server's topics: local subscribers, fan-out and counters (``server.topics``).

    Args:
        config: the topic settings.
        engine: the engine (default: an :class:`InMemoryEngine` with ``config``).
    """

    def __init__(self, config: TopicsConfig | None = None, engine: Engine | None = None) -> None:
        self.config = config or TopicsConfig()
        self.engine: Engine = engine if engine is not None else InMemoryEngine(self.config)
        self.engine.bind(self)
        self._topics: dict[str, _Topic] = {}
        self._policy = _POLICIES[self.config.slow_subscriber]
        self._limit = self.config.buffer_limit
        self._deflaters: dict[tuple[int, int, int], Any] = {}
        self._deflate_config: Any = None

    # ---- subscriptions ------------------------------------------------------------

    def subscribe(
        self, conn: Connection, topic: str, since: StreamPosition | tuple[str, int] | None = None
    ) -> Subscription:
        """Subscribe ``conn`` (see :meth:`wsfast.Connection.subscribe`).

        Args:
            conn: an open connection.
            topic: a checked topic name.
            since: the last position the subscriber saw, or None.

        Returns:
            The subscription.
        """
        if since is not None and not isinstance(since, StreamPosition):
            epoch, offset = since
            since = StreamPosition(str(epoch), int(offset))
        t = self._topics.get(topic)
        if t is None:
            t = self._topics[topic] = _Topic()
        if conn in t.subscribers:
            return Subscription(topic, self.engine.position(topic))
        missed: list[Publication] | None = []
        if since is not None:
            missed = self.engine.history(topic, since)
        if conn._deflate_config is not None:
            self._deflate_config = conn._deflate_config
        first = not t.subscribers
        t.subscribers[conn] = _group(conn)
        t.groups = None
        topics = conn._topics
        if not isinstance(topics, set):  # the shared empty default (see Connection)
            topics = conn._topics = set()
        topics.add(topic)
        if first:
            self.engine.subscribed(topic)
        for pub in missed or ():
            self._deliver_one(t, conn, pub.data)
        return Subscription(
            topic,
            self.engine.position(topic),
            recovered=missed is not None,
            missed=len(missed or ()),
        )

    def unsubscribe(self, conn: Connection, topic: str) -> bool:
        """Unsubscribe ``conn`` from ``topic``.

        Args:
            conn: the connection.
            topic: the topic.

        Returns:
            Whether it was subscribed.
        """
        t = self._topics.get(topic)
        if isinstance(conn._topics, set):
            conn._topics.discard(topic)
        if t is None or t.subscribers.pop(conn, None) is None:
            return False
        t.groups = None
        if not t.subscribers:
            del self._topics[topic]
            self.engine.unsubscribed(topic)
        return True

    def unsubscribe_all(self, conn: Connection) -> None:
        """Remove every subscription of ``conn`` (it closed).

        Args:
            conn: the connection.
        """
        for topic in list(conn._topics):
            self.unsubscribe(conn, topic)

    # ---- publishing ----------------------------------------------------------------

    def publish(self, topic: str, data: str | bytes, exclude: Iterable[Connection] = ()) -> int:
        """Publish through the engine (arguments already checked; loop thread).

        Args:
            topic: the topic.
            data: the message.
            exclude: connections not to deliver to.

        Returns:
            The local deliveries queued.
        """
        return self.engine.publish(topic, data, frozenset(exclude))

    def deliver(self, topic: str, data: str | bytes, exclude: frozenset[Any] = frozenset()) -> int:
        """Queue a publication on every local subscriber (called by engines).

        Args:
            topic: the topic.
            data: the message.
            exclude: connections not to deliver to.

        Returns:
            The deliveries queued.
        """
        t = self._topics.get(topic)
        if t is None:
            return 0
        groups = t.get_groups()
        ex = frozenset(conn._t for conn in exclude) if exclude else None
        if isinstance(data, str):
            opcode = _OP_TEXT
            payload = data.encode("utf-8")
        else:
            opcode = _OP_BINARY
            payload = data
        policy = self._policy
        limit = self._limit
        queued = skipped = closed = 0
        for key, transports in groups.items():
            if key == _OWN:
                for tr in transports:
                    if ex is not None and tr in ex:
                        continue
                    rc = tr.publish_message(data, policy, limit)
                    if rc == 1:
                        queued += 1
                    elif rc == 0:
                        skipped += 1
                    else:
                        closed += 1
                continue
            frame = self._frame(key, opcode, payload)
            q, s, c = cy.fan_out(transports, frame, policy, limit, ex)
            queued += q
            skipped += s
            closed += c
        t.published += 1
        t.deliveries += queued
        t.skipped += skipped
        t.closed += closed
        return queued

    def _deliver_one(self, t: _Topic, conn: Connection, data: str | bytes) -> None:
        key = t.subscribers[conn]
        tr: Any = conn._t  # the native transport (not the typing contract)
        if key == _OWN:
            rc = tr.publish_message(data, self._policy, self._limit)
        else:
            opcode, payload = (
                (_OP_TEXT, data.encode("utf-8")) if type(data) is str else (_OP_BINARY, data)
            )
            rc = tr.send_frame(self._frame(key, opcode, payload), self._policy, self._limit)
        if rc == 1:
            t.deliveries += 1
        elif rc == 0:
            t.skipped += 1
        else:
            t.closed += 1

    def _frame(self, key: int, opcode: int, payload: Any) -> bytes:
        if key == _PLAIN:
            return bytes(rust.Frame(opcode, payload).serialize())
        return bytes(
            rust.Frame(opcode, self._deflater(key).compress(payload), rsv1=True).serialize()
        )

    def _deflater(self, bits: int) -> Any:
        config = self._deflate_config
        level = config.level if config is not None else 1
        mem_level = config.mem_level if config is not None else 8
        cache_key = (bits, level, mem_level)
        deflater = self._deflaters.get(cache_key)
        if deflater is None:
            # No context takeover: each message is compressed from an empty window,
            # so one compressor serves every subscriber of this window size.
            params = rust.DeflateParams(
                server_no_context_takeover=True, server_max_window_bits=bits
            )
            deflater = rust.Deflater(
                params, side="server", level=level, mem_level=mem_level, window_bits=bits
            )
            self._deflaters[cache_key] = deflater
        return deflater

    # ---- counters -------------------------------------------------------------------

    def stats(self, topic: str) -> TopicStats:
        """The counters of ``topic`` (zeros if it has no subscribers).

        Args:
            topic: the topic.

        Returns:
            Its counters and stream position.

        Raises:
            TypeError: if ``topic`` is not a ``str``.
            ValueError: if ``topic`` is not a valid name.
        """
        check_topic(topic)
        t = self._topics.get(topic) or _Topic()
        return TopicStats(
            len(t.subscribers),
            t.published,
            t.deliveries,
            t.skipped,
            t.closed,
            self.engine.position(topic),
        )

    def __contains__(self, topic: object) -> bool:
        return topic in self._topics

    @property
    def names(self) -> list[str]:
        """The topics with local subscribers."""
        return list(self._topics)
