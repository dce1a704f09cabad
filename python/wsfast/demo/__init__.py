# SPDX-License-Identifier: MIT
"""The ``wsfast demo`` app: a live price ticker, a chat room and a client counter.

One server does everything: a plain HTTP GET of ``/`` returns the page (``index.html``,
inline CSS and JavaScript, no external assets), and the page opens a WebSocket to ``/ws``.

Messages from the server to the page are JSON text::

    {"type": "welcome", "id": 3, "name": "guest-3", "compression": "permessage-deflate; ...",
     "history": [<chat>, ...]}
    {"type": "tick", "time": 1700000000.1, "quotes": [{"symbol": "RUST", "price": 101.25,
     "change": 1.25}, ...]}
    {"type": "clients", "count": 2}
    {"type": "chat", "id": 3, "name": "guest-3", "text": "hi", "time": 1700000000.2}
    {"type": "error", "error": "message is not valid JSON"}

The page sends ``{"type": "chat", "text": "...", "name": "..."}`` (name optional) as text, and
binary messages, which the server echoes back unchanged (the page measures the round trip).

:class:`DemoApp` holds the logic and only needs objects with ``send()`` and ``extensions``;
:class:`DemoHandler` adapts it to the epoll server, and :func:`build_server` wires both.

On the server the demo runs on topics: every client subscribes to :data:`CHAT_TOPIC`,
:data:`TICKER_TOPIC` and :data:`CLIENTS_TOPIC`. A chat message is published to every
process (``server.publish``: the other workers with ``--workers N``, the other servers
with ``--redis URL``); the ticker and the client counter are per process: each process
(each worker) ticks its own clients, delivered locally through the topic's fan-out, so
N workers do not tick N times faster, and the counter counts that process's clients.
The chat history sent in the welcome is the chats published by that process.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from wsfast.connection import Connection
from wsfast.exceptions import ConnectionClosed
from wsfast.server import Handler, HTTPResponse, Request, Server, serve

if TYPE_CHECKING:
    import argparse

__all__ = [
    "CHAT_TOPIC",
    "CLIENTS_TOPIC",
    "DEFAULT_SYMBOLS",
    "TICKER_TOPIC",
    "TICK_INTERVAL",
    "DemoApp",
    "DemoHandler",
    "DemoTopics",
    "Peer",
    "build_server",
    "http_handler",
    "main",
    "page",
]

#: Seconds between two ticker broadcasts.
TICK_INTERVAL = 0.2
#: Symbols of the ticker and their opening prices.
DEFAULT_SYMBOLS: dict[str, float] = {
    "RUST": 100.0,
    "CYTH": 42.0,
    "EPOL": 250.0,
    "FRAM": 13.37,
    "MASK": 64.0,
    "UTF8": 8.0,
}
#: Longest chat message (characters) and name; longer ones are cut.
MAX_CHAT_TEXT = 500
MAX_NAME = 24
#: Chat messages replayed to a client that joins.
CHAT_HISTORY = 50
#: Largest binary message echoed back; larger ones get an error message instead.
MAX_ECHO = 64 * 1024
#: Largest message the server accepts at all.
MAX_MESSAGE = 1024 * 1024
#: Volatility of the random walk, per tick.
_SIGMA = 0.002
#: The topics every client subscribes to: chat (all processes), ticker and counter
#: (this process).
CHAT_TOPIC = "demo.chat"
TICKER_TOPIC = "demo.ticker"
CLIENTS_TOPIC = "demo.clients"

_PAGE_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Cache-Control", "no-store"),
]


class Peer(Protocol):
    """What the demo needs from a connection."""

    def send(self, data: str | bytes, /) -> Any:
        """Queue a text (``str``) or binary (``bytes``) message."""

    @property
    def extensions(self) -> str | None:
        """The negotiated Sec-WebSocket-Extensions value, or None."""


P = TypeVar("P", bound=Peer)
P_contra = TypeVar("P_contra", bound=Peer, contravariant=True)


class DemoTopics(Protocol[P_contra]):
    """What the demo needs from a server's topics."""

    def subscribe(self, peer: P_contra, topic: str) -> object:
        """Subscribe ``peer`` to ``topic``."""

    def publish(self, topic: str, data: str) -> object:
        """Publish to the topic's subscribers in every process."""

    def publish_local(self, topic: str, data: str) -> object:
        """Publish to the topic's subscribers in this process only."""


@dataclass
class _Member:
    id: int
    name: str


@dataclass
class _Quote:
    symbol: str
    open: float
    price: float = field(init=False)

    def __post_init__(self) -> None:
        self.price = self.open


@cache
def page() -> bytes:
    """Return the demo page (``index.html`` shipped inside the package).

    Returns:
        The UTF-8 encoded HTML document.
    """
    return resources.files(__name__).joinpath("index.html").read_bytes()


def _send_each(data: str | bytes, peers: Iterable[Peer]) -> None:
    for peer in list(peers):
        try:
            peer.send(data)
        except ConnectionClosed:
            # The peer is closing; its on_close removes it from the room.
            continue


class DemoApp(Generic[P]):
    """State and rules of the demo, independent of the transport.

    Every method must be called from one thread (the server's loop thread).

    Args:
        broadcast: sends one message to several peers; by default ``peer.send`` on each.
            Not used with ``topics``.
        symbols: ticker symbols and their opening prices.
        rng: randomness of the price walk (pass a seeded ``random.Random`` in tests).
        clock: returns the wall-clock time in seconds, for timestamps.
        topics: if given, peers are subscribed to the demo's topics and every message
            to several peers is published (see the module docstring).
        first_id: the first client id (processes sharing a chat need distinct ids).
    """

    def __init__(
        self,
        broadcast: Callable[[str | bytes, Iterable[P]], object] | None = None,
        *,
        symbols: dict[str, float] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        topics: DemoTopics[P] | None = None,
        first_id: int = 1,
    ) -> None:
        self._broadcast = broadcast or _send_each
        self._topics = topics
        self._rng = rng or random.Random()
        self._clock = clock
        self._quotes = [_Quote(s, p) for s, p in (symbols or DEFAULT_SYMBOLS).items()]
        self._members: dict[P, _Member] = {}
        self._history: deque[dict[str, Any]] = deque(maxlen=CHAT_HISTORY)
        self._next_id = first_id

    @property
    def next_id(self) -> int:
        """The id the next client gets."""
        return self._next_id

    @next_id.setter
    def next_id(self, value: int) -> None:
        self._next_id = value

    @property
    def peers(self) -> list[P]:
        """The connected peers, in order of arrival."""
        return list(self._members)

    def open(self, peer: P) -> None:
        """Welcome a new peer and tell everyone the new client count.

        Args:
            peer: the connection that just opened.
        """
        member = _Member(self._next_id, f"guest-{self._next_id}")
        self._next_id += 1
        self._members[peer] = member
        if self._topics is not None:
            for topic in (CHAT_TOPIC, TICKER_TOPIC, CLIENTS_TOPIC):
                self._topics.subscribe(peer, topic)
        welcome = {
            "type": "welcome",
            "id": member.id,
            "name": member.name,
            "compression": peer.extensions or "",
            "history": list(self._history),
        }
        peer.send(_dumps(welcome))
        self._send_count()

    def close(self, peer: P) -> None:
        """Forget a peer and tell the others the new client count.

        Args:
            peer: the connection that closed; unknown peers are ignored.
        """
        if self._members.pop(peer, None) is not None:
            self._send_count()

    def message(self, peer: P, data: str | bytes | bytearray | memoryview) -> None:
        """Handle one message: echo binary, broadcast chat.

        Args:
            peer: the sender.
            data: a text (``str``) or binary message.
        """
        member = self._members.get(peer)
        if member is None:
            return
        if not isinstance(data, str):
            if len(data) > MAX_ECHO:
                self._error(peer, f"binary message of {len(data)} bytes exceeds {MAX_ECHO}")
            else:
                peer.send(bytes(data))
            return
        try:
            request = json.loads(data)
        except ValueError:
            self._error(peer, "message is not valid JSON")
            return
        if not isinstance(request, dict) or request.get("type") != "chat":
            self._error(peer, 'expected {"type": "chat", "text": "..."}')
            return
        text = _clean(request.get("text"), MAX_CHAT_TEXT)
        if not text:
            self._error(peer, "empty chat message")
            return
        name = _clean(request.get("name"), MAX_NAME)
        if name:
            member.name = name
        chat = {
            "type": "chat",
            "id": member.id,
            "name": member.name,
            "text": text,
            "time": round(self._clock(), 3),
        }
        self._history.append(chat)
        if self._topics is not None:
            self._topics.publish(CHAT_TOPIC, _dumps(chat))
        else:
            self._broadcast(_dumps(chat), self.peers)

    def tick(self) -> None:
        """Move every price one random step and push the quotes to every peer."""
        for quote in self._quotes:
            quote.price *= math.exp(self._rng.gauss(0.0, _SIGMA))
        if not self._members:
            return
        tick = {
            "type": "tick",
            "time": round(self._clock(), 3),
            "quotes": [
                {
                    "symbol": q.symbol,
                    "price": round(q.price, 2),
                    "change": round((q.price / q.open - 1.0) * 100.0, 2),
                }
                for q in self._quotes
            ],
        }
        self._send_many(TICKER_TOPIC, _dumps(tick))

    def _send_count(self) -> None:
        self._send_many(CLIENTS_TOPIC, _dumps({"type": "clients", "count": len(self._members)}))

    def _send_many(self, topic: str, data: str) -> None:
        # The ticker and the counter are this process's: local delivery only.
        if self._topics is not None:
            self._topics.publish_local(topic, data)
        else:
            self._broadcast(data, self.peers)

    def _error(self, peer: P, error: str) -> None:
        peer.send(_dumps({"type": "error", "error": error}))


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _clean(value: Any, limit: int) -> str:
    """Collapse whitespace and cut to ``limit`` characters; non-strings become ``""``."""
    if not isinstance(value, str):
        return ""
    # JSON can carry lone surrogates ("\ud800"), which cannot be sent as UTF-8: one such
    # chat message would fail every broadcast, and every welcome through the history.
    value = value.encode("utf-8", "replace").decode("utf-8")
    return " ".join(value.split())[:limit]


class DemoHandler(Handler):
    """The ``/ws`` handler: hands every event to a :class:`DemoApp`.

    Args:
        app: the demo's state; by default a fresh one sending with ``conn.send``.
    """

    def __init__(self, app: DemoApp[Connection] | None = None) -> None:
        self.app: DemoApp[Connection] = app or DemoApp()

    def on_open(self, conn: Connection) -> None:
        """Welcome the client and update everyone's counter."""
        self.app.open(conn)

    def on_message(self, conn: Connection, data: str | bytes) -> None:
        """Broadcast a chat message, or echo a binary one."""
        self.app.message(conn, data)

    def on_close(self, conn: Connection, code: int, reason: str) -> None:
        """Update everyone's counter."""
        self.app.close(conn)


class _ServerTopics:
    """The demo's topics on a :class:`Server` (see :class:`DemoTopics`)."""

    def __init__(self, server: Server) -> None:
        self._server = server

    def subscribe(self, peer: Connection, topic: str) -> None:
        peer.subscribe(topic)

    def publish(self, topic: str, data: str) -> None:
        self._server.publish(topic, data)

    def publish_local(self, topic: str, data: str) -> None:
        # Through the broker's fan-out, bypassing the engine: not sent to other
        # processes, not numbered.
        self._server.topics.deliver(topic, data)


def http_handler(request: Request) -> HTTPResponse | None:
    """Serve the page at ``/``; anything else gets the server's default answer.

    Args:
        request: a plain (non-upgrade) HTTP request.

    Returns:
        (status, headers, body) for the page, or None for the server's default.
    """
    if request.path in ("/", "/index.html") and request.method in ("GET", "HEAD"):
        return 200, _PAGE_HEADERS, page()
    return None


def build_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    rng: random.Random | None = None,
    workers: int = 1,
    broker: str | None = None,
    metrics: bool = False,
    dashboard: bool = False,
) -> Server:
    """Create the demo server, listening but not yet running (unless ``workers`` > 1).

    The page is served at ``/`` and the WebSocket endpoint is ``/ws``; the ticker is a
    timer of the server's own loop, so it stops with the server. With workers, each
    worker starts its own ticker when it listens.

    Args:
        host: interface to listen on.
        port: TCP port; 0 picks a free one (read it from ``Server.port``).
        rng: randomness of the prices (seed it for reproducible runs).
        workers: worker processes (then call ``serve_forever()``, which forks them).
        broker: a broker URL (``redis://...``) to share the chat with other servers.
        metrics: also serve Prometheus metrics (``serve(metrics=...)``).
        dashboard: also serve the live dashboard (``serve(dashboard=...)``).

    Returns:
        The server: call ``start()`` (background thread) or ``serve_forever()``.

    Raises:
        OSError: if the address cannot be bound.
        ValueError: if the broker URL is not supported.
    """
    handler = DemoHandler()
    server = serve(
        None,
        host,
        port,
        routes={"/ws": handler},
        http_handler=http_handler,
        max_size=MAX_MESSAGE,
        # The feed is lossy by nature: a client that cannot keep up misses ticks
        # rather than being disconnected.
        slow_consumer="drop",
        workers=workers,
        broker=broker,
        metrics=metrics,
        dashboard=dashboard,
    )
    app: DemoApp[Connection] = DemoApp(rng=rng, topics=_ServerTopics(server))
    handler.app = app
    shared = workers > 1 or broker is not None

    def start_process(server: Server) -> None:
        if shared:
            # Client ids must not collide with those of the other processes: the
            # page recognises its own chat messages by id.
            app.next_id = os.getpid() * 1000 + 1
        server.call_every(TICK_INTERVAL, app.tick)

    server.on_listen(start_process)
    if workers == 1:
        try:
            server.listen()
        except BaseException:
            server.close()
            raise
    return server


def main(args: argparse.Namespace) -> int:
    """Run the demo until SIGINT or SIGTERM (``wsfast demo``).

    Args:
        args: parsed command line, with ``host`` and ``port`` (and optionally
            ``workers`` and ``redis``).

    Returns:
        The exit status: 0 after a clean shutdown, 1 if the address cannot be bound,
        the broker URL is not supported or a worker failed.
    """
    from wsfast.__main__ import run

    host = str(getattr(args, "host", None) or "127.0.0.1")
    port = getattr(args, "port", None)
    port = 8000 if port is None else int(port)
    workers = int(getattr(args, "workers", None) or 1)
    broker = getattr(args, "redis", None)
    try:
        server = build_server(
            host,
            port,
            workers=workers,
            broker=broker,
            metrics=bool(getattr(args, "metrics", False)),
            dashboard=bool(getattr(args, "dashboard", False)),
        )
    except OSError as exc:
        print(f"wsfast demo: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"wsfast demo: {exc}", file=sys.stderr)
        return 1
    shown = f"[{host}]" if ":" in host else host
    return run(server, f"wsfast demo: open http://{shown}:{{port}}/ (Ctrl-C to stop)")
