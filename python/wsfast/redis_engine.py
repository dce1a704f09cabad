# SPDX-License-Identifier: MIT
"""A topics engine that spans processes and hosts through Redis.

Every publication goes through Redis, and this process delivers it when Redis hands
it back (on the topic's pub/sub channel), never directly. A Lua script, run
atomically by Redis for each batch of publications, numbers each one (``HINCRBY``: dense, increasing
offsets), keeps it in the topic's stream when the topic has history (``XADD`` with
``MAXLEN``), and ``PUBLISH``es it with its epoch and offset. So every process sees
one order per topic, the same one, and the offsets the subscribers are told about
are the ones in the history. The price is one round trip to Redis before a local
subscriber gets a message.

Delivery guarantees (read them before relying on this engine):

- Redis pub/sub is at most once. A publication reaches the subscribers of every
  process that was subscribed to the channel when Redis ran the script, in publish
  order per topic; a process whose pub/sub connection is down (or that has just
  subscribed) misses what is published meanwhile. It sees the hole in the offsets
  when the next publication arrives: if the topic has history, it first delivers
  the missed ones from the stream, in order (``filled``); what the stream no
  longer holds, or everything without history, is counted in ``gaps``.
- A publication made while this process cannot reach Redis is dropped and counted
  (``lost``): nothing is buffered across an outage. A pipeline that fails midway
  counts all its publications as lost, though Redis may have run some of them.
- With history (``TopicsConfig.history_size``), ``subscribe(topic, since=...)``
  recovers what a subscriber missed from the topic's Redis stream, or says it
  cannot: the epoch changed (the topic's keys were lost, e.g. a Redis restart
  without persistence) or the history was trimmed (size or TTL).
- When Redis goes away, nothing raises: both connections reconnect with
  exponential backoff (counted in ``reconnects``) and re-subscribe every topic
  that still has local subscribers.

Threads: the server loop thread never waits for a publish. A writer thread sends
publications in pipelines, and a reader thread receives pub/sub messages and hands
them to the loop in batches through ``call_soon_threadsafe``. Two calls do one
bounded Redis round trip on the loop thread, because the :class:`~wsfast.topics.Engine`
contract answers synchronously: the first ``subscribe`` to a topic this process
does not follow yet (to learn the topic's position) and ``subscribe(since=...)``
(to read the history); and a hole in the offsets of a topic with history is filled
with one. Each waits at most ``timeout`` seconds; on failure the subscription is
made with recovery impossible (the hole is counted in ``gaps``).

Keys (``prefix`` is "wsfast" by default): ``{prefix}:meta:{topic}`` (a hash: epoch
``e``, last offset ``o``), ``{prefix}:stream:{topic}`` (the history) and the channel
``{prefix}:chan:{topic}``.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from wsfast.topics import Broker, Publication, ServiceEngine, StreamPosition, TopicsConfig

__all__ = ["EngineStats", "RedisEngine"]

logger = logging.getLogger("wsfast.redis")

# Messages on a channel: kind (b"t" text, b"b" binary), publishing node (16 hex),
# publication sequence on that node (16 hex), epoch (16 hex), offset (decimal), ":"
# and the payload. The first three are made here, the rest by the script.
_NODE_LEN: Final = 16
_HEADER_LEN: Final = 1 + _NODE_LEN + 16
_EPOCH_LEN: Final = 16

# Publishes a batch of publications, in order. KEYS: meta and stream of each one.
# ARGV: a new epoch (used by a topic that has none), history size, history TTL in ms
# (0: none), meta TTL in s (0: none), then channel, header and payload of each one.
# One call per batch: the per-call cost (parsing, Lua entry) is paid once.
_PUBLISH_LUA: Final = """
local size = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local meta_ttl = tonumber(ARGV[4])
local ms
if size > 0 then
  local now = redis.call('TIME')
  ms = string.format('%d', now[1] * 1000 + math.floor(now[2] / 1000))
end
for i = 1, #KEYS / 2 do
  local meta, stream = KEYS[2 * i - 1], KEYS[2 * i]
  local channel, header, payload = ARGV[3 * i + 2], ARGV[3 * i + 3], ARGV[3 * i + 4]
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = ARGV[1]
    redis.call('HSET', meta, 'e', epoch)
    -- A new epoch: a stream left over from the old one must not be mixed in.
    redis.call('DEL', stream)
  end
  local offset = string.format('%d', redis.call('HINCRBY', meta, 'o', 1))
  if size > 0 then
    redis.call('XADD', stream, 'MAXLEN', size, offset .. '-0',
               'h', header, 't', ms, 'd', payload)
    if ttl > 0 then
      redis.call('PEXPIRE', stream, ttl)
    end
  end
  if meta_ttl > 0 then
    redis.call('EXPIRE', meta, meta_ttl)
  end
  redis.call('PUBLISH', channel, header .. epoch .. offset .. ':' .. payload)
end
return #KEYS / 2
"""

# The loop thread's one read: the topic's epoch (made now if it has none, so every
# position has one) and offset, the server's time and the stream entries from an ID.
# KEYS: meta, stream. ARGV: a new epoch, the first ID, most entries (0: none), meta
# TTL in s (0: none).
_READ_LUA: Final = """
if redis.call('HSETNX', KEYS[1], 'e', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
  if tonumber(ARGV[4]) > 0 then
    redis.call('EXPIRE', KEYS[1], ARGV[4])
  end
end
local meta = redis.call('HMGET', KEYS[1], 'e', 'o')
local entries = {}
if tonumber(ARGV[3]) > 0 then
  entries = redis.call('XRANGE', KEYS[2], ARGV[2], '+', 'COUNT', ARGV[3])
end
local now = redis.call('TIME')
return {meta[1], meta[2] or '0', now[1], now[2], entries}
"""

# Publications per pipeline, per script call, and messages per hand-off to the loop.
_BATCH: Final = 1024
_PER_CALL: Final = 128


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Counters of a :class:`RedisEngine` (``engine.stats()``).

    Attributes:
        published: publications made in this process.
        sent: publications Redis accepted from this process.
        lost: publications of this process dropped because Redis was unreachable
            (or a pipeline failed) or the send queue was full.
        received: publications received from Redis (every process's).
        gaps: publications this process never received on the topics it follows (its
            pub/sub connection was down, or it had just subscribed) and could not
            take from the topic's history either.
        filled: publications this process missed on pub/sub but delivered from the
            topic's history (in order, before the next one).
        reconnects: successful reconnections after Redis went away.
        errors: publications Redis refused (a script error, a key of the wrong type).
        connected: whether both Redis connections are up.
        pending: publications queued for Redis now.
    """

    published: int
    sent: int
    lost: int
    received: int
    gaps: int
    filled: int
    reconnects: int
    errors: int
    connected: bool
    pending: int


class RedisEngine:
    """A topics :class:`~wsfast.topics.Engine` backed by Redis (pub/sub, Streams).

    Lifecycle: create it, give it to a :class:`~wsfast.topics.Broker`, call
    :meth:`start` with the server's ``call_soon_threadsafe`` once the server listens,
    and :meth:`close` after the server closed::

        engine = RedisEngine("redis://127.0.0.1:6379/0")
        server = wsfast.serve(handler, port=8000, topics=Broker(config, engine))
        engine.start(server.listen().call_soon_threadsafe)

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]`` or ``rediss://`` (TLS).
        config: the history settings (default: the broker's, at :meth:`bind`).
        prefix: the prefix of every Redis key and channel.
        timeout: seconds to connect and to wait for a reply.
        meta_ttl: seconds an idle topic's epoch and offset live in Redis (None:
            forever). When they expire, the topic starts a new epoch.
        max_pending: publications queued for Redis at most; more are dropped (lost).
        backoff: (first, longest) seconds between reconnection attempts.

    Raises:
        ValueError: if ``url`` is not a valid redis:// or rediss:// URL, or an
            option is out of range.
    """

    def __init__(
        self,
        url: str,
        config: TopicsConfig | None = None,
        *,
        prefix: str = "wsfast",
        timeout: float = 1.0,
        meta_ttl: float | None = None,
        max_pending: int = 65536,
        backoff: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        check_url(url)
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        if meta_ttl is not None and meta_ttl <= 0:
            raise ValueError(f"meta_ttl must be positive, not {meta_ttl}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, not {max_pending}")
        if not 0 < backoff[0] <= backoff[1]:
            raise ValueError(
                f"backoff must be (first, longest) with 0 < first <= longest, not {backoff}"
            )
        self.url = url
        self._config = config
        self._prefix = prefix
        self._timeout = timeout
        self._meta_ttl = 0 if meta_ttl is None else max(1, round(meta_ttl))
        self._max_pending = max_pending
        self._backoff = backoff
        self._node = os.urandom(_NODE_LEN // 2).hex().encode()
        self._wake_channel = f"{prefix}:node:{self._node.decode()}".encode()
        self._broker: Broker | None = None
        self._call: Callable[..., object] | None = None
        # Loop thread only: positions of followed topics, as [epoch, offset], and
        # the connections to exclude from this node's in-flight publications.
        self._positions: dict[str, list[Any]] = {}
        self._excludes: dict[int, tuple[str, frozenset[Any]]] = {}
        self._seq = 0
        # Shared with the reader: the channels wanted, and those Redis confirmed.
        self._lock = threading.Lock()
        self._wanted: set[bytes] = set()
        self._confirmed: set[bytes] = set()
        # Loop thread -> writer: (channel, meta key, stream key, header, payload).
        self._queue: deque[tuple[bytes, bytes, bytes, bytes, bytes]] = deque()
        self._names: dict[str, tuple[bytes, bytes, bytes]] = {}  # channel, meta, stream
        # The writer sleeps on _wake only after it set _writer_idle and found the
        # queue empty, so publishers need to set _wake only when _writer_idle is set.
        self._writer_idle = False
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._client: redis.Redis | None = None  # the loop thread's, for reads
        self._read_script: Any = None
        self._writer_up = False
        self._reader_up = False
        # Counters; each is written by one thread only.
        self._published = 0
        self._lost_queued = 0  # loop thread
        self._sent = 0
        self._lost_sent = 0
        self._errors = 0
        self._writer_reconnects = 0  # writer thread
        self._reader_reconnects = 0  # reader thread
        self._received = 0
        self._gaps = 0
        self._filled = 0  # loop thread

    def __repr__(self) -> str:
        return f"<RedisEngine {redact(self.url)} connected={self.connected}>"

    # ---- lifecycle ----------------------------------------------------------------

    def bind(self, broker: Broker) -> None:
        """Attach to the broker that delivers publications (takes its config if
        none was given).

        Args:
            broker: the server's broker.
        """
        self._broker = broker
        if self._config is None:
            self._config = broker.config

    def start(self, call_soon_threadsafe: Callable[..., object]) -> None:
        """Connect to Redis and start the writer and reader threads.

        Args:
            call_soon_threadsafe: runs ``fn(*args)`` on the server loop's thread
                (``server.call_soon_threadsafe``); deliveries go through it.

        Raises:
            RuntimeError: if already started or closed.
            ConnectionError: if Redis cannot be reached (host does not resolve,
                connection refused, no reply within ``timeout``).
        """
        if self._call is not None or self._closing.is_set():
            raise RuntimeError("redis engine already started or closed")
        # One retry for the loop thread's reads: the first command after Redis came
        # back finds a dead pooled connection, the retry a new one.
        client = self._new_client(retries=1)
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            client.close()
            raise ConnectionError(f"cannot reach redis at {redact(self.url)}: {exc}") from exc
        self._client = client
        self._read_script = client.register_script(_READ_LUA)
        self._call = call_soon_threadsafe
        self._writer_up = True
        for target, name in ((self._write, "writer"), (self._read, "reader")):
            thread = threading.Thread(target=target, name=f"wsfast-redis-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (if Redis is up), stop the threads and disconnect.

        Idempotent; call it after the server closed.

        Args:
            timeout: seconds to wait for each thread.
        """
        if self._threads and not self._closing.is_set():
            self._wake_reader()  # out of its blocking read
        self._closing.set()
        self._writer_up = False  # publications from now on are lost, not queued
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        if self._client is not None:
            self._client.close()

    @property
    def connected(self) -> bool:
        """Whether both Redis connections (publishing and pub/sub) are up."""
        return self._writer_up and self._reader_up

    def following(self, topic: str) -> bool:
        """Whether Redis confirmed this process's subscription to ``topic``'s channel
        (publications made from then on reach this process).

        Args:
            topic: the topic.

        Returns:
            True once confirmed, False before or while disconnected.
        """
        with self._lock:
            return self._channel(topic) in self._confirmed

    def stats(self) -> EngineStats:
        """The engine's counters (any thread; a snapshot, not atomic).

        Returns:
            The counters.
        """
        return EngineStats(
            published=self._published,
            sent=self._sent,
            lost=self._lost_queued + self._lost_sent,
            received=self._received,
            gaps=self._gaps,
            filled=self._filled,
            reconnects=self._writer_reconnects + self._reader_reconnects,
            errors=self._errors,
            connected=self.connected,
            pending=len(self._queue),
        )

    # ---- the Engine contract (loop thread) ----------------------------------------

    def _channel(self, topic: str) -> bytes:
        return f"{self._prefix}:chan:".encode() + topic.encode("utf-8", "surrogatepass")

    def _keys(self, topic: str) -> tuple[bytes, bytes]:
        name = topic.encode("utf-8", "surrogatepass")
        prefix = self._prefix.encode()
        return prefix + b":meta:" + name, prefix + b":stream:" + name

    def publish(self, topic: str, data: str | bytes, exclude: frozenset[Any]) -> int:
        """Queue the publication for Redis; it is delivered here when Redis hands it
        back.

        Args:
            topic: a checked topic name.
            data: a checked message.
            exclude: local connections not to deliver to.

        Returns:
            0: delivery is deferred.
        """
        self._published += 1
        if not self._writer_up or len(self._queue) >= self._max_pending:
            self._lost_queued += 1
            return 0
        self._seq += 1
        seq = self._seq
        if exclude and topic in self._positions:
            self._excludes[seq] = (topic, exclude)
        if isinstance(data, str):
            header = b"t%s%016x" % (self._node, seq)
            payload = data.encode("utf-8")
        else:
            header = b"b%s%016x" % (self._node, seq)
            payload = data
        names = self._names.get(topic)
        if names is None:
            if len(self._names) >= 4096:
                self._names.clear()
            names = self._names[topic] = (self._channel(topic), *self._keys(topic))
        self._queue.append((*names, header, payload))
        if self._writer_idle:
            self._wake.set()
        return 0

    def subscribed(self, topic: str) -> None:
        """Subscribe this process to the topic's channel (in the reader thread).

        Args:
            topic: the topic that got its first local subscriber.
        """
        with self._lock:
            self._wanted.add(self._channel(topic))
        self._wake_reader()

    def unsubscribed(self, topic: str) -> None:
        """Unsubscribe this process from the topic's channel.

        Args:
            topic: the topic that lost its last local subscriber.
        """
        with self._lock:
            self._wanted.discard(self._channel(topic))
        self._positions.pop(topic, None)
        for seq in [seq for seq, (t, _) in self._excludes.items() if t == topic]:
            del self._excludes[seq]
        self._wake_reader()

    def position(self, topic: str) -> StreamPosition:
        """The topic's position: for a followed topic, that of the last publication
        delivered here; otherwise read from Redis.

        Args:
            topic: the topic.

        Returns:
            Its position; epoch "" if Redis could not be read.
        """
        pos = self._positions.get(topic)
        if pos is None:
            epoch, offset, _ = self._read_history(topic, None)
            pos = [epoch, offset]
            with self._lock:
                if self._channel(topic) in self._wanted:
                    self._positions[topic] = pos
        return StreamPosition(pos[0], pos[1])

    def history(self, topic: str, since: StreamPosition) -> list[Publication] | None:
        """The publications after ``since``, from the topic's Redis stream.

        Args:
            topic: the topic.
            since: the last position the subscriber saw.

        Returns:
            The missed publications, oldest first, or None if the epoch differs,
            ``since`` is ahead, some were trimmed, or Redis could not be read.
        """
        epoch, offset, entries = self._read_history(topic, since.offset)
        pos = self._positions.get(topic)
        if pos is None:
            # The topic is about to be followed: from here on, deliveries continue
            # from what Redis has just said.
            self._positions[topic] = pos = [epoch, offset]
        elif pos[0] != epoch:
            return None
        # What the subscriber gets must end where the topic's deliveries here are.
        offset = pos[1]
        if not epoch or since.epoch != epoch or not 0 <= since.offset <= offset:
            return None
        missed = [p for p, _ in entries if p.offset <= offset]
        if since.offset == offset:
            return []
        if not missed or missed[0].offset != since.offset + 1:
            return None
        return missed

    def _read_history(
        self, topic: str, since: int | None
    ) -> tuple[str, int, list[tuple[Publication, bytes]]]:
        """One round trip: the topic's epoch and offset and, with ``since``, the
        stream entries after it that are within the TTL, with their headers."""
        client = self._client
        if client is None or self._read_script is None or not self._writer_up:
            return "", 0, []
        meta, stream = self._keys(topic)
        config = self._config or TopicsConfig()
        count = config.history_size if since is not None else 0
        first = f"{(since or 0) + 1}-0"
        try:
            reply = self._read_script(
                keys=[meta, stream],
                args=[os.urandom(_EPOCH_LEN // 2).hex(), first, count, self._meta_ttl],
            )
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            logger.warning("redis read of topic %r failed: %s", topic, exc)
            return "", 0, []
        raw_epoch, raw_offset, seconds, micros, raw_entries = reply
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        ttl = config.history_ttl
        entries: list[tuple[Publication, bytes]] = []
        for entry_id, flat in raw_entries:
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            sent_ms = int(fields[b"t"])
            if ttl is not None and now_ms - sent_ms >= ttl * 1000:
                # Expired entries count as trimmed, as in InMemoryEngine.
                entries.clear()
                continue
            header = fields[b"h"]
            data: str | bytes = fields[b"d"]
            if header[:1] == b"t":
                data = fields[b"d"].decode("utf-8")
            offset = int(entry_id.split(b"-")[0])
            entries.append((Publication(offset, sent_ms / 1000, data), header))
        return raw_epoch.decode(), int(raw_offset), entries

    # ---- deliveries (loop thread) -------------------------------------------------

    def _deliver(self, batch: list[tuple[bytes, bytes]]) -> None:
        """Deliver a batch of pub/sub messages, in the order Redis sent them."""
        broker = self._broker
        prefix_len = len(self._prefix) + len(":chan:")
        for channel, message in batch:
            self._received += 1
            topic = channel[prefix_len:].decode("utf-8", "surrogatepass")
            pos = self._positions.get(topic)
            if pos is None:
                continue  # no longer followed here
            rest = message[_HEADER_LEN + _EPOCH_LEN :]
            colon = rest.index(b":")
            offset = int(rest[:colon])
            epoch = message[_HEADER_LEN : _HEADER_LEN + _EPOCH_LEN].decode()
            if epoch == pos[0]:
                if offset <= pos[1]:
                    continue  # already counted in the position a subscriber was given
                if offset > pos[1] + 1:
                    self._fill(topic, pos[1], offset)
            pos[0] = epoch
            pos[1] = offset
            payload = rest[colon + 1 :]
            data: str | bytes = payload.decode("utf-8") if message[:1] == b"t" else payload
            if broker is not None:
                broker.deliver(topic, data, self._exclude(message))

    def _exclude(self, header: bytes) -> frozenset[Any]:
        """The connections to skip for a publication (those its publisher excluded,
        if it was published here)."""
        if header[1 : 1 + _NODE_LEN] == self._node:
            pending = self._excludes.pop(int(header[1 + _NODE_LEN : _HEADER_LEN], 16), None)
            if pending is not None:
                return pending[1]
        return frozenset()

    def _fill(self, topic: str, last: int, offset: int) -> None:
        """Deliver the publications between ``last`` and ``offset`` that this process
        missed, from the topic's stream if it has history; count the rest as gaps."""
        missing = offset - last - 1
        filled = 0
        config = self._config
        broker = self._broker
        if config is not None and config.history_size and broker is not None:
            # A bounded round trip on the loop thread, only when messages were missed.
            epoch, _, entries = self._read_history(topic, last)
            if epoch == self._positions[topic][0]:
                for pub, header in entries:
                    if pub.offset >= offset:
                        break
                    broker.deliver(topic, pub.data, self._exclude(header))
                    filled += 1
        self._filled += filled
        self._gaps += missing - filled

    def _forget(self, seqs: list[int]) -> None:
        for seq in seqs:
            self._excludes.pop(seq, None)

    def _hand_off(self, fn: Callable[..., object], *args: Any) -> bool:
        call = self._call
        if call is None:
            return False
        try:
            call(fn, *args)
        except RuntimeError:
            return False  # the server loop is gone
        return True

    # ---- threads ------------------------------------------------------------------

    def _new_client(self, retries: int = 0) -> redis.Redis:
        # No retries inside redis-py for the threads: a failure must surface at once,
        # so that the thread counts it and reconnects with its own backoff.
        return redis.Redis.from_url(
            self.url,
            socket_connect_timeout=self._timeout,
            socket_timeout=self._timeout,
            retry=Retry(NoBackoff(), retries),
            health_check_interval=0,
        )

    def _wake_reader(self) -> None:
        # The reader waits in a blocking read on its pub/sub connection; a message
        # on this node's own channel wakes it to apply subscription changes.
        self._queue.append((self._wake_channel, b"", b"", b"", b""))
        if self._writer_idle:
            self._wake.set()

    def _sleep(self, delay: float) -> bool:
        """Wait ``delay`` seconds (with jitter); False if the engine is closing."""
        return not self._closing.wait(delay * (0.5 + random.random() / 2))

    def _write(self) -> None:
        """Writer thread: send queued publications in pipelines, reconnect on failure."""
        client = self._new_client()
        script = client.register_script(_PUBLISH_LUA)
        config = self._config or TopicsConfig()
        size = str(config.history_size).encode()
        ttl_ms = b"0"
        if config.history_size and config.history_ttl is not None:
            ttl_ms = str(max(1, round(config.history_ttl * 1000))).encode()
        meta_ttl = str(self._meta_ttl).encode()
        queue = self._queue
        delay = self._backoff[0]
        while True:
            if not queue:
                if self._closing.is_set():
                    break
                self._writer_idle = True
                if not queue:  # a publisher that saw _writer_idle False queued before
                    self._wake.wait()
                self._wake.clear()
                self._writer_idle = False
                continue
            batch = [queue.popleft() for _ in range(min(len(queue), _BATCH))]
            # Consecutive publications go in one script call each; wake-ups between.
            calls: list[int] = []  # publications per pipeline command (0: a wake-up)
            try:
                pipe = client.pipeline(transaction=False)
                epoch = os.urandom(_EPOCH_LEN // 2).hex().encode()
                keys: list[bytes] = []
                args: list[bytes] = [epoch, size, ttl_ms, meta_ttl]
                for channel, meta, stream, header, payload in batch:
                    if header:
                        keys += (meta, stream)
                        args += (channel, header, payload)
                    if keys and (not header or len(keys) >= 2 * _PER_CALL):
                        script(keys=keys, args=args, client=pipe)
                        calls.append(len(keys) // 2)
                        keys, args = [], [epoch, size, ttl_ms, meta_ttl]
                    if not header:
                        pipe.publish(channel, b"")
                        calls.append(0)
                if keys:
                    script(keys=keys, args=args, client=pipe)
                    calls.append(len(keys) // 2)
                results = pipe.execute(raise_on_error=False)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                if self._closing.is_set():
                    break
                logger.warning("redis publish failed, reconnecting: %s", exc)
                self._writer_up = False
                self._fail(batch)
                client.close()
                while True:
                    if not self._sleep(delay):
                        return
                    delay = min(delay * 2, self._backoff[1])
                    self._fail([queue.popleft() for _ in range(len(queue))])
                    try:
                        client.ping()
                    except (redis.ConnectionError, redis.TimeoutError, OSError):
                        continue
                    break
                delay = self._backoff[0]
                self._writer_reconnects += 1
                self._writer_up = True
                logger.info("redis publishing reconnected")
                continue
            for count, result in zip(calls, results, strict=True):
                if isinstance(result, Exception):
                    # A script stops at its first error: the publications before it
                    # went out, but which ones is not known here.
                    self._errors += count
                    logger.error("redis refused %d publications: %s", count, result)
                else:
                    self._sent += count
        client.close()

    def _fail(self, batch: list[tuple[bytes, bytes, bytes, bytes, bytes]]) -> None:
        seqs = [int(header[1 + _NODE_LEN :], 16) for *_, header, _ in batch if header]
        self._lost_sent += len(seqs)
        if seqs:
            self._hand_off(self._forget, seqs)

    def _read(self) -> None:
        """Reader thread: follow the wanted channels, hand messages to the loop in
        batches, reconnect and re-subscribe on failure."""
        delay = self._backoff[0]
        failed = False
        while not self._closing.is_set():
            client = self._new_client()
            # redis-py leaves PubSub untyped.
            pubsub: Any = client.pubsub()  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self._wake_channel)
                active: set[bytes] = set()
                while not self._closing.is_set():
                    with self._lock:
                        wanted = set(self._wanted)
                    if wanted != active:
                        if wanted - active:
                            pubsub.subscribe(*(wanted - active))
                        if active - wanted:
                            pubsub.unsubscribe(*(active - wanted))
                            with self._lock:
                                self._confirmed -= active - wanted
                        active = wanted
                    self._pump(pubsub)
                    if failed:
                        failed = False
                        delay = self._backoff[0]
                        self._reader_reconnects += 1
                        logger.info("redis pub/sub reconnected")
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                if not self._closing.is_set():
                    logger.warning("redis pub/sub failed, reconnecting: %s", exc)
                self._reader_up = False
                with self._lock:
                    self._confirmed.clear()
                failed = True
                if not self._sleep(delay):
                    break
                delay = min(delay * 2, self._backoff[1])
            finally:
                pubsub.close()
                client.close()
        self._reader_up = False

    def _pump(self, pubsub: Any) -> None:
        """Wait for pub/sub messages (or a wake-up) and hand them to the loop."""
        batch: list[tuple[bytes, bytes]] = []
        message = pubsub.get_message(timeout=1.0)
        while message is not None:
            kind = message["type"]
            channel = message["channel"]
            if kind == "message":
                if channel != self._wake_channel:
                    batch.append((channel, message["data"]))
            elif kind == "subscribe":
                if channel == self._wake_channel:
                    self._reader_up = True
                else:
                    with self._lock:
                        self._confirmed.add(channel)
            if len(batch) >= _BATCH:
                break
            message = pubsub.get_message(timeout=0.0)
        if batch:
            self._hand_off(self._deliver, batch)


def check_url(url: object) -> str:
    """Check a Redis URL's form (not whether the host resolves: :meth:`RedisEngine.start`
    does that).

    Args:
        url: the URL.

    Returns:
        The URL.

    Raises:
        TypeError: if ``url`` is not a ``str``.
        ValueError: if it is not ``redis://`` or ``rediss://`` with a host, a valid
            port and an integer database.
    """
    if not isinstance(url, str):
        raise TypeError(f"redis url must be str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"redis url must start with redis:// or rediss://, not {url!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"invalid port in redis url {redact(url)!r}") from None
    if not parts.hostname:
        raise ValueError(f"no host in redis url {redact(url)!r}")
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        raise ValueError(f"redis database must be a number, not {db!r}")
    return url


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()


if TYPE_CHECKING:

    def _implements_the_contract(engine: RedisEngine) -> ServiceEngine:
        # mypy checks here that RedisEngine is a ServiceEngine (an Engine with a
        # lifecycle), as engine_from_url promises.
        return engine
