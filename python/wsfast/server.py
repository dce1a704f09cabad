# SPDX-License-Identifier: MIT
"""The WebSocket server's lifecycle: listen, run the epoll loop, shut down.

The epoll loop, sockets and write coalescing live in Cython (``wsfast._cy.Loop``);
what to answer to a request head is decided in :mod:`wsfast.handshake` (sans I/O),
and handlers are defined in :mod:`wsfast.handler` (re-exported here). This module
binds them: it starts and stops the loop, configures each accepted transport, and
carries out the handshake's decision on it. Usage::

    class Echo(wsfast.Handler):
        def on_message(self, conn, data):
            conn.send(data)

    with wsfast.serve(Echo(), "127.0.0.1", 8000).start() as server:
        ...  # the loop runs in a background thread

    wsfast.serve(Echo(), port=8000).serve_forever()  # blocks; Ctrl-C closes with 1001
"""

from __future__ import annotations

import logging
import signal
import socket
import ssl as _ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import FrameType, TracebackType
from typing import Any

from wsfast import dashboard as _dashboard
from wsfast._native import cy as _cy
from wsfast.config import ServerConfig, SlowConsumerPolicy
from wsfast.connection import Connection
from wsfast.exceptions import ConnectionClosed
from wsfast.frames import CloseCode
from wsfast.handler import (
    App,
    Handler,
    HandshakeResponse,
    HTTPResponse,
    Request,
    _as_handler,
    _callback,
)
from wsfast.handshake import Accept, Reject, Reserved, ServerHandshake, reject_busy
from wsfast.metrics import CONTENT_TYPE, Metrics, ServerStats, render_prometheus
from wsfast.topics import Broker, Engine, TopicsConfig, check_message, check_topic
from wsfast.transport import ServerTransport, TransportOwner

__all__ = [
    "App",
    "HTTPResponse",
    "Handler",
    "HandshakeResponse",
    "Request",
    "Server",
    "ServerStats",
    "serve",
]

logger = logging.getLogger("wsfast.server")


class _HandshakeOwner:
    """The transport's owner until the request head is decided.

    A thin adapter: it feeds each read to the sans-I/O :class:`ServerHandshake`
    and carries out the decision on the epoll transport.
    """

    __slots__ = ("_handshake", "_server", "_t")

    def __init__(self, server: Server, transport: ServerTransport) -> None:
        self._server = server
        self._t = transport
        self._handshake = ServerHandshake(
            server.config, server._route, transport.remote_address, server._reserved
        )

    def http_data_received(self, data: bytes) -> None:
        """Feed one read to the handshake; answer once it is decided."""
        decision = self._handshake.receive_data(data)
        if decision is None:
            return
        # Capacity is the server's state, not the request's: checked here, after the
        # sans-I/O decision, so a bad request still gets its own error.
        limit = self._server.config.max_connections
        if isinstance(decision, Accept) and limit is not None:
            if len(self._server._connections) >= limit:
                decision = reject_busy()
        if isinstance(decision, Reject):
            self._server._metrics.rejected(decision.status)
            self._t.write(decision.response)
            self._t.close_after_write()
            return
        self._open(decision)

    def _open(self, accept: Accept) -> None:
        t = self._t
        core = accept.new_core()
        handler = accept.handler
        server = self._server
        conn = Connection(
            server,
            t,
            core,
            handler,
            accept.request,
            accept.subprotocol,
            accept.extensions,
            deflate_params=accept.deflate_params,
            deflate_config=accept.deflate_config,
        )
        # The core calls the handler itself (no Python frame per message); no-op
        # callbacks are left out so that pings and pongs cost no call at all.
        core.set_handlers(
            conn,
            handler.on_message,
            _callback(handler, "on_ping"),
            _callback(handler, "on_pong"),
            None,
        )
        # Raw bytes are written ahead of the core's output: the 101 precedes any
        # frame that on_open sends.
        t.write(accept.response)
        t.upgrade(core)
        t.owner = conn
        server._connections.add(conn)
        server._metrics.opened()
        conn._open()
        # Frames that came with the head reach the handler after its on_open.
        if accept.leftover and not t.closed:
            t.feed(accept.leftover)

    def connection_lost(self) -> None:
        """Nothing to clean up before the upgrade."""

    def resume_writing(self) -> None:
        """No handler to tell before the upgrade."""

    def handler_failed(self, exc: Exception) -> None:
        """No handler runs before the upgrade: this is a bug; let the loop log it."""
        raise exc


def _seconds(value: float | None) -> float:
    return 0.0 if value is None else float(value)


#: Seconds between runs of the stats timer (loop lag, dashboard feed).
STATS_INTERVAL = 1.0


class Server:
    """A WebSocket server on one epoll loop in one thread.

    Create it with :func:`serve`. Run it in the background with :meth:`start` (or
    ``with server:``), or in the calling thread with :meth:`serve_forever`. Stop it
    with :meth:`close`.

    Only :meth:`close`, :meth:`call_soon_threadsafe`, :meth:`call_later`,
    :meth:`call_every`, :meth:`broadcast` and :meth:`publish` may be called from
    other threads; connections belong to the loop's thread.
    """

    def __init__(
        self,
        handler: Handler | type[Handler] | None,
        config: ServerConfig,
        routes: Mapping[str, Handler | type[Handler]] | None = None,
        topics: TopicsConfig | Broker | None = None,
        *,
        workers: int = 1,
        broker: str | Engine | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}")
        self.config = config
        #: The topics of this server (subscribers, fan-out, counters).
        self.topics = topics if isinstance(topics, Broker) else Broker(topics)
        self.handler = None if handler is None else _as_handler(handler)
        app_routes = getattr(self.handler, "routes", None)
        merged: dict[str, Handler] = dict(app_routes) if isinstance(app_routes, dict) else {}
        merged.update({path: _as_handler(h) for path, h in (routes or {}).items()})
        self.routes = merged
        if self.handler is None and not self.routes:
            raise ValueError("serve() needs a handler or routes")
        self._init_stats()
        self._connections: set[Connection] = set()
        self._port = config.port
        self._loop: Any = None
        self._sockets: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._closing = False
        self._lock = threading.Lock()
        # Worker processes and the cross-process broker: see wsfast.workers.
        #: The number of worker processes :meth:`serve_forever` runs.
        self.workers = workers
        #: Which worker this process is (0 to workers - 1), or None in the supervisor
        #: or a single-process server.
        self.worker_index: int | None = None
        self._broker_spec = broker
        self._reuse_port = False
        self._listen_hooks: list[Callable[[Server], object]] = []

    def __repr__(self) -> str:
        return f"<Server {self.url} connections={len(self._connections)}>"

    # ---- stats, metrics and dashboard ----------------------------------------------------

    def _init_stats(self) -> None:
        """Counters, and the built-in endpoints the config turns on."""
        config = self.config
        self._metrics = Metrics()
        self._feed: _dashboard.Feed | None = None
        pages: dict[str, Any] = {}
        sockets: dict[str, Handler] = {}
        if config.metrics_path is not None:
            pages[config.metrics_path] = self._metrics_page
        if config.dashboard_path is not None:
            self._feed = _dashboard.Feed(self.stats)
            pages[config.dashboard_path] = _dashboard.page_response
            sockets[config.dashboard_path.rstrip("/") + _dashboard.FEED_SUFFIX] = self._feed
        self._reserved = Reserved(pages, sockets)
        for path in self.routes:
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(f"routes keys must be paths starting with '/', got {path!r}")
            if path in self._reserved:
                raise ValueError(f"route {path!r} is taken by the metrics or dashboard endpoint")

    def stats(self) -> ServerStats:
        """The server's counters and gauges since it started (see :class:`ServerStats`).

        Cheap: the per-message counters are kept in C on each connection and only
        added up here. From another thread, a connection closing at that moment may
        be missed or counted twice in the totals.

        Returns:
            A snapshot.
        """
        return self._metrics.snapshot([conn._t for conn in list(self._connections)])

    def _metrics_page(self, request: Request) -> HTTPResponse:
        return 200, [("Content-Type", CONTENT_TYPE)], render_prometheus(self.stats())

    def _start_stats_timer(self, loop: Any) -> None:
        # Loop lag: how late the loop runs this fixed-rate timer (its due time is
        # known, so the measure costs one clock read a second).
        handle = loop.new_timer(STATS_INTERVAL, STATS_INTERVAL, self._stats_tick, ())
        self._stats_timer = handle
        self._metrics.start_timer(handle.when)
        loop.push_timer(handle)

    def _stats_tick(self) -> None:
        self._metrics.tick(self._stats_timer.when)
        if self._feed is not None:
            self._feed.push()

    # ---- properties -------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port listened on (the real one when created with port 0)."""
        return self._port

    @property
    def host(self) -> str:
        """The interface listened on."""
        return self.config.host

    @property
    def url(self) -> str:
        """``ws://host:port`` (or ``wss://``) of this server."""
        scheme = "wss" if self.config.ssl is not None else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def connections(self) -> set[Connection]:
        """A snapshot of the open connections."""
        return set(self._connections)

    @property
    def is_serving(self) -> bool:
        """True while the loop runs and accepts connections."""
        return self._loop is not None and self._loop.running and not self._closing

    # ---- lifecycle ----------------------------------------------------------------------

    def listen(self) -> Server:
        """Bind and listen, without running the loop yet (idempotent).

        :meth:`start` and :meth:`serve_forever` call this; call it first to learn
        :attr:`port` before blocking in :meth:`serve_forever`.

        Returns:
            The server.

        Raises:
            RuntimeError: if the server was closed, or has workers (they listen in
                :meth:`serve_forever`).
            OSError: if the address cannot be bound, or the broker cannot be
                reached.
        """
        with self._lock:
            if self._loop is not None:
                return self
            if self._done.is_set():
                raise RuntimeError("server is closed")
            if self.workers > 1 and self.worker_index is None:
                raise RuntimeError("a server with workers listens in serve_forever()")
            config = self.config
            family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
            sock = socket.create_server(
                (config.host, config.port),
                family=family,
                backlog=config.backlog,
                reuse_port=self._reuse_port,
            )
            try:
                sock.setblocking(False)
                loop = _cy.Loop()
                loop.add_listener(sock.fileno(), self._accept)
            except BaseException:
                sock.close()
                raise
            # Idle takeover connections give back their compressor (see DeflateConfig).
            compressor_idle = config.deflate.compressor_idle if config.deflate else None
            timeouts = [
                config.handshake_timeout,
                config.ping_interval,
                config.ping_timeout,
                config.idle_timeout,
                config.close_timeout,
                compressor_idle or None,
            ]
            # The sweep also ends lingering HTTP closes, so it always runs.
            shortest = min((t for t in timeouts if t is not None), default=5.0)
            loop.sweep_interval = min(max(shortest / 5.0, 0.01), 1.0)
            loop.busy_poll_us = config.busy_poll_us
            loop.compressor_idle = compressor_idle or 0.0
            loop.max_buffered = config.max_buffered or 0
            self._sockets.append(sock)
            self._port = int(sock.getsockname()[1])
            self._loop = loop
        self._start_engine()
        for hook in self._listen_hooks:
            hook(self)
        return self

    def on_listen(self, fn: Callable[[Server], object]) -> None:
        """Run ``fn(server)`` once the server listens, in every process that serves.

        With ``workers=N`` each worker runs it after forking (a per-worker timer, a
        connection pool); otherwise :meth:`listen` runs it (at once if it already
        listened). It runs before the loop starts, in the thread that called
        :meth:`listen`.

        Args:
            fn: the callback.
        """
        self._listen_hooks.append(fn)
        if self._loop is not None:
            fn(self)

    def _start_engine(self) -> None:
        if self._broker_spec is not None:
            from wsfast.workers import make_engine

            engine = make_engine(self._broker_spec, self.topics.config)
            self._broker_spec = None
            self.topics = Broker(self.topics.config, engine)
        # Engines that span processes (wsfast.topics.ServiceEngine) run threads of their
        # own, which hand deliveries to this loop.
        start = getattr(self.topics.engine, "start", None)
        if callable(start):
            start(self.call_soon_threadsafe)

    def start(self) -> Server:
        """Start listening and run the loop in a background thread.

        Returns:
            The server, once it accepts connections.

        Raises:
            RuntimeError: if the server already runs, was closed or has workers.
            OSError: if the address cannot be bound.
        """
        if self.workers > 1:
            raise RuntimeError("a server with workers runs in serve_forever(), not start()")
        self.listen()
        if self._thread is not None or self._loop.running:
            raise RuntimeError("server is already running")
        self._thread = threading.Thread(target=self._run, name="wsfast-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Run the loop in this thread until :meth:`close` (or SIGINT/SIGTERM).

        On the main thread, SIGINT and SIGTERM start a graceful shutdown (a second
        signal stops at once). If :meth:`start` already runs the loop, this waits
        for it to finish.

        With ``workers`` > 1 this process becomes the supervisor of the workers
        (:class:`wsfast.workers.Supervisor`): it returns once they all exited.

        Raises:
            OSError: if the address cannot be bound.
            wsfast.workers.WorkerError: if a worker failed to start or exited with
                an error.
        """
        if self.workers > 1 and self.worker_index is None:
            from wsfast.workers import Supervisor

            Supervisor(self).run()
            return
        if self._thread is not None:
            while not self._done.wait(0.5):
                pass
            return
        self.listen()
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, self._on_signal)
        try:
            self._run()
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._closing:
            logger.warning("second signal: stopping now")
            self._loop.stop()
        else:
            logger.info("received %s: closing", signal.Signals(signum).name)
            self._begin_shutdown(CloseCode.GOING_AWAY, 2.0)

    def _run(self) -> None:
        # Armed as the loop starts, not at listen(): a wait in between is no lag.
        self._start_stats_timer(self._loop)
        try:
            self._loop.run()
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.close()
        for sock in self._sockets:
            sock.close()
        self._connections.clear()
        close = getattr(self.topics.engine, "close", None)
        if callable(close):
            close()
        self._done.set()

    def close(self, code: int = CloseCode.GOING_AWAY, drain: float = 2.0) -> None:
        """Shut down: stop accepting, send a close frame to every client, wait for
        the closing handshakes for up to ``drain`` seconds, then drop what is left.

        From another thread this blocks until the loop has stopped; from a handler
        (the loop's thread) it starts the shutdown and returns. Idempotent.

        Args:
            code: the close code sent to clients (1001 going away by default).
            drain: seconds to wait for clients to finish the closing handshake.
        """
        loop = self._loop
        if loop is None:
            self._done.set()
            return
        if not loop.running:
            if self._thread is None:
                self._cleanup()
            else:
                self._thread.join()
            return
        if threading.get_ident() == loop.thread_id:
            self._begin_shutdown(code, drain)
            return
        loop.call_soon_threadsafe(self._begin_shutdown, code, drain)
        # Bounded: the shutdown itself stops the loop after `drain` seconds.
        self._done.wait(drain + 10.0)
        if self._thread is not None:
            self._thread.join(5.0)

    def _begin_shutdown(self, code: int, drain: float) -> None:
        if self._closing:
            return
        self._closing = True
        loop = self._loop
        loop.remove_listeners()
        for sock in self._sockets:
            sock.close()
        for t in list(loop.transports):
            if isinstance(t.owner, Connection):
                try:
                    t.close(code, "server shutting down")
                except Exception:
                    t.abort()
            else:
                t.abort()
        deadline = time.monotonic() + drain

        def check() -> None:
            if not loop.transports or time.monotonic() >= deadline:
                for t in list(loop.transports):
                    t.abort()
                loop.stop()

        loop.call_every(0.01, check)

    def __enter__(self) -> Server:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- scheduling -------------------------------------------------------------------

    def _on_loop_thread(self) -> bool:
        loop = self._loop
        return loop is None or not loop.running or threading.get_ident() == loop.thread_id

    def call_soon_threadsafe(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread as soon as possible (any thread).

        Args:
            fn: the callback; exceptions are logged.
            *args: its arguments.

        Raises:
            RuntimeError: if the server was never started.
        """
        if self._loop is None:
            raise RuntimeError("server is not started")
        self._loop.call_soon_threadsafe(fn, *args)

    def call_later(self, delay: float, fn: Callable[..., object], *args: Any) -> Any:
        """Run ``fn(*args)`` on the loop thread once, after ``delay`` seconds.

        Args:
            delay: seconds from now.
            fn: the callback; exceptions are logged.
            *args: its arguments.

        Returns:
            A handle with a ``cancel()`` method.

        Raises:
            RuntimeError: if the server has not started listening.
        """
        return self._timer(delay, 0.0, fn, args)

    def call_every(self, interval: float, fn: Callable[..., object], *args: Any) -> Any:
        """Run ``fn(*args)`` on the loop thread every ``interval`` seconds.

        Args:
            interval: seconds between runs (fixed rate).
            fn: the callback; exceptions are logged and do not stop the timer.
            *args: its arguments.

        Returns:
            A handle with a ``cancel()`` method.

        Raises:
            RuntimeError: if the server has not started listening.
            ValueError: if ``interval`` is not positive.
        """
        if interval <= 0:
            raise ValueError(f"interval must be positive, not {interval}")
        return self._timer(interval, interval, fn, args)

    def _timer(self, delay: float, interval: float, fn: Callable[..., object], args: Any) -> Any:
        self.listen()
        loop = self._loop
        handle = loop.new_timer(delay, interval, fn, args)
        if self._on_loop_thread():
            loop.push_timer(handle)
        else:
            # The timer heap belongs to the loop thread.
            loop.call_soon_threadsafe(loop.push_timer, handle)
        return handle

    def broadcast(self, data: str | bytes, connections: Iterable[Connection] | None = None) -> int:
        """Send one message to many connections, skipping closed ones.

        Each connection's slow-consumer policy applies. From another thread the
        sends are scheduled on the loop thread and 0 is returned.

        Args:
            data: the message: ``str`` for text, bytes-like for binary.
            connections: the recipients (default: every open connection).

        Returns:
            How many connections the message was queued for.
        """
        if not self._on_loop_thread():
            targets = None if connections is None else list(connections)
            self._loop.call_soon_threadsafe(self.broadcast, data, targets)
            return 0
        count = 0
        for conn in list(self._connections if connections is None else connections):
            try:
                conn.send(data)
            except ConnectionClosed:
                continue
            count += 1
        return count

    def publish(
        self,
        topic: str,
        data: str | bytes | bytearray | memoryview,
        *,
        exclude: Connection | Iterable[Connection] | None = None,
    ) -> int:
        """Publish a message to a topic's subscribers.

        The message is framed (and, for subscribers without compression context,
        compressed) once; each subscriber's slow-subscriber policy applies
        (``TopicsConfig.slow_subscriber``). Messages published from one thread
        reach every subscriber in publish order. From another thread the delivery
        is scheduled on the loop thread and 0 is returned; the arguments are
        checked first, in the calling thread.

        Args:
            topic: the topic name (``str``, 1 to 255 UTF-8 bytes).
            data: ``str`` for a text message, bytes-like for a binary one (copied
                if mutable).
            exclude: a connection, or connections, not to deliver to.

        Returns:
            The number of local deliveries queued.

        Raises:
            TypeError: if ``topic`` is not a ``str`` or ``data`` is neither str nor
                bytes-like.
            ValueError: if ``topic`` is empty or too long.
        """
        check_topic(topic)
        message = check_message(data)
        if exclude is None:
            skip: tuple[Connection, ...] = ()
        elif isinstance(exclude, Connection):
            skip = (exclude,)
        else:
            skip = tuple(exclude)
        if not self._on_loop_thread():
            self._loop.call_soon_threadsafe(self.topics.publish, topic, message, skip)
            return 0
        return self.topics.publish(topic, message, skip)

    # ---- connections ------------------------------------------------------------------

    def _route(self, path: str) -> Handler | None:
        return self.routes.get(path, self.handler)

    def connection_closed(self, conn: Connection) -> None:
        """Forget a connection whose socket closed.

        Called by the connection (see :class:`wsfast.connection.ConnectionServer`),
        on the loop thread; not for applications.

        Args:
            conn: the connection.
        """
        if conn in self._connections:
            self._metrics.closed(conn._t)
        self._connections.discard(conn)

    def _accept(self, transport: ServerTransport) -> TransportOwner:
        config = self.config
        transport.handshake_timeout = _seconds(config.handshake_timeout)
        transport.ping_interval = _seconds(config.ping_interval)
        transport.ping_timeout = _seconds(config.ping_timeout)
        transport.idle_timeout = _seconds(config.idle_timeout)
        transport.close_timeout = _seconds(config.close_timeout)
        transport.high_water, transport.low_water = config.write_limit
        transport.policy = _cy.POLICY_DROP if config.slow_consumer == "drop" else _cy.POLICY_CLOSE
        if config.ssl is not None:
            transport.start_tls(config.ssl)
        return _HandshakeOwner(self, transport)


def serve(
    handler: Handler | type[Handler] | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    routes: Mapping[str, Handler | type[Handler]] | None = None,
    subprotocols: Sequence[str] = (),
    compression: bool | Any = True,
    max_size: int = 1 << 20,
    origins: Sequence[str | None] | None = None,
    handshake_timeout: float | None = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    idle_timeout: float | None = None,
    close_timeout: float | None = 10.0,
    write_limit: tuple[int, int] | int = (4 << 20, 1 << 20),
    slow_consumer: SlowConsumerPolicy = "close",
    ssl: _ssl.SSLContext | None = None,
    backlog: int = 1024,
    http_handler: Callable[[Request], HTTPResponse | None] | None = None,
    busy_poll: bool | int = False,
    topics: TopicsConfig | None = None,
    workers: int = 1,
    broker: str | Engine | None = None,
    metrics: bool | str = False,
    dashboard: bool | str = False,
    max_connections: int | None = None,
    max_buffered: int | None = None,
) -> Server:
    """Create a WebSocket server (not started: call ``start()`` or ``serve_forever()``).

    Args:
        handler: the default :class:`Handler` (instance or class, instantiated once),
            used for every path not in ``routes``; None to serve only ``routes``.
        host: interface to listen on.
        port: TCP port; 0 picks a free one (read it from ``Server.port``).
        routes: handlers by exact request path (the query string is ignored).
        subprotocols: supported subprotocols; the client's first offer that is in
            this list is selected (``on_handshake`` can override).
        compression: permessage-deflate: True (accept offers with default
            parameters), False, or a ``DeflateConfig``.
        max_size: largest incoming message in bytes; bigger ones fail with 1009.
        origins: allowed Origin values (include None to allow requests without an
            Origin header); others get 403. None allows all.
        handshake_timeout: seconds a client has to send its request head.
        ping_interval: seconds between keepalive pings, or None for none.
        ping_timeout: seconds to wait for a pong before failing the connection
            with 1011 ("keepalive ping timeout", as websockets does), or None.
        idle_timeout: seconds without a received message (text or binary) before
            the server closes the connection with 1001 "idle timeout", or None.
        close_timeout: seconds to wait for the client's closing handshake before
            closing the socket.
        write_limit: (high, low) write-buffer water marks in bytes, or just high.
        slow_consumer: what happens to a send while a connection is over its
            high-water mark: "close" fails the connection with 1008, "drop" drops
            the message and counts it in ``Connection.dropped``. Over the mark the
            server also stops reading from that connection (TCP pushes back on the
            peer), and one reply to each message it had already read is still
            accepted, so a pipelining client that reads is never failed for the
            server's own read-ahead.
        ssl: an ``ssl.SSLContext`` to serve wss://.
        backlog: the listen() backlog.
        http_handler: answers plain HTTP (non-upgrade) requests:
            ``http_handler(request) -> (status, headers, body)``, or None to fall
            back to the defaults (``GET /health`` -> 200 "ok", a WebSocket path ->
            426, anything else -> 404).
        busy_poll: for latency-critical feeds: before blocking in epoll_wait, the
            loop polls without blocking for up to this many microseconds (True:
            ``DEFAULT_BUSY_POLL_US``, 200), so a message arriving soon after the
            last one skips the scheduler's wake-up latency. It burns up to a whole
            core while connections are active (the loop blocks as usual once
            traffic stops for longer than the budget). False (default) never spins.
        topics: the topic settings (slow-subscriber policy, history); see
            :class:`wsfast.topics.TopicsConfig`. Default: skip slow subscribers,
            no history.
        workers: worker processes on this port (``SO_REUSEPORT``), each with its
            own loop; a publication in one reaches subscribers in all of them.
            :meth:`Server.serve_forever` forks them (the handler is inherited, see
            :mod:`wsfast.workers`); :meth:`Server.start` refuses.
        broker: where topics span processes: a URL (``redis://host:port/db``) or an
            engine; each worker makes its own. None: this process only (or, with
            workers, the workers' own mesh of Unix sockets).
        metrics: serve the Prometheus text exposition of :meth:`Server.stats` at
            ``GET /metrics`` (True) or at the given path; off by default.
        dashboard: serve the live dashboard page at ``GET /_wsfast/dashboard``
            (True) or at the given path, its WebSocket feed at that path plus
            ``/feed``; off by default. Built-in paths answer ``GET`` only (405
            otherwise) and are never routed to handlers.
        max_connections: the most open WebSocket connections; further upgrade
            requests get 503 with a Retry-After header while open connections are
            untouched (plain HTTP such as ``/health`` is still answered). None
            (default): no limit beyond the file-descriptor limit.
        max_buffered: a cap in bytes on the output buffered for all connections
            together (``write_limit`` bounds each one). Over it, a send to a
            connection that still has output queued gets the ``slow_consumer``
            policy (a topic's publish its ``slow_subscriber`` policy), as if that
            connection were over its high-water mark; connections that keep up are
            still served. None (default): no cap.

    Returns:
        The server, not yet listening.

    Raises:
        TypeError: if an option has the wrong type.
        ValueError: if an option is out of range, or a route takes a built-in path.
    """
    config = ServerConfig.make(
        compression=compression,
        origins=origins,
        subprotocols=subprotocols,
        write_limit=write_limit,
        host=host,
        port=port,
        max_size=max_size,
        handshake_timeout=handshake_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        idle_timeout=idle_timeout,
        close_timeout=close_timeout,
        slow_consumer=slow_consumer,
        ssl=ssl,
        backlog=backlog,
        http_handler=http_handler,
        busy_poll=busy_poll,
        metrics=metrics,
        dashboard=dashboard,
        max_connections=max_connections,
        max_buffered=max_buffered,
    )
    _check_serve_args(handler, routes, topics)
    return Server(handler, config, routes, topics, workers=workers, broker=broker)


def _check_serve_args(handler: object, routes: object, topics: object) -> None:
    """The type checks of serve()'s arguments that ServerConfig does not hold.

    Raises:
        TypeError: if one has the wrong type.
    """

    def is_handler(h: object) -> bool:
        if isinstance(h, Handler) or (isinstance(h, type) and issubclass(h, Handler)):
            return True
        # Duck-typed handlers, e.g. a Cython ``wsfast.capi.CHandler``: the callbacks
        # the server calls, not the Python base class, are what counts.
        return not isinstance(h, type) and callable(getattr(h, "on_message", None))

    if handler is not None and not is_handler(handler):
        raise TypeError(f"handler must be a Handler, a Handler class or None, got {handler!r}")
    if routes is not None:
        if not isinstance(routes, Mapping):
            raise TypeError(f"routes must be a mapping of paths to handlers, got {routes!r}")
        for path, h in routes.items():
            if not is_handler(h):
                raise TypeError(f"routes[{path!r}] must be a Handler or Handler class, got {h!r}")
    if topics is not None and not isinstance(topics, (TopicsConfig, Broker)):
        raise TypeError(f"topics must be a TopicsConfig or None, got {topics!r}")
