# SPDX-License-Identifier: MIT
"""Worker processes on one port, and topics that span them.

``serve(handler, port=8000, workers=4).serve_forever()`` (or ``wsfast serve
module:handler --workers 4``) makes this process a supervisor: it reserves the port,
forks the workers, forwards SIGINT/SIGTERM to them and waits. Each worker binds the
same port with ``SO_REUSEPORT`` (the kernel spreads new connections over the workers)
and runs its own epoll loop, exactly as a single server would.

Handlers reach the workers by ``fork``: each worker inherits the handler object the
parent built (so it must be built before ``serve_forever()``, and state in it is
per worker from then on). There is no spawn mode: a handler that cannot be forked
must be loaded by each worker itself, e.g. ``wsfast serve module:handler``.

Topics across workers: without a ``broker=``, each worker's topics run on a
:class:`WorkerEngine`. A publication is delivered to the local subscribers at once
and written as one length-prefixed record (opcode, topic, payload) to every other
worker over a Unix stream socket (a full mesh of socketpairs the supervisor creates
before forking). A reader thread in each worker reads its sockets and hands whole
batches of records to its loop with one ``call_soon_threadsafe`` per batch, where
they are fanned out natively like a local publication. Order: a stream socket keeps
the order of one writer and the loop runs callbacks in FIFO order, so messages from
one publisher reach every subscriber in publish order. Publications from different
workers may interleave differently on different workers.

Back-pressure: a worker writes its records once per loop turn (one ``send`` per peer
for all the turn's publications), blocking only while a peer's reader thread is
behind; that thread never waits for its loop, so a worker whose loop falls behind
holds the records in memory instead of stalling the others.

``SO_REUSEPORT`` also lets any other process of the same user join the port: do not
start two supervisors on one port.

With ``broker="redis://..."`` every worker makes its own engine from the URL instead
(:func:`wsfast.topics.engine_from_url`), and the mesh is not used.

Engines here have a lifecycle (``wsfast.topics.ServiceEngine``):
``start(call_soon_threadsafe)`` once the server listens (its loop exists) and
``close()`` after the loop stopped; the server calls both when the engine has them.

Restarts: none. A worker that dies is logged; the supervisor exits non-zero when a
worker fails to start, or when any worker exited with an error.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, Final, Protocol

from wsfast.config import ServerConfig
from wsfast.topics import (
    Broker,
    Engine,
    InMemoryEngine,
    Publication,
    StreamPosition,
    TopicsConfig,
)

__all__ = ["Served", "Supervisor", "WorkerEngine", "WorkerError", "make_engine"]

logger = logging.getLogger("wsfast.workers")

# One record: payload length (u32), opcode (u8), topic length (u8), topic, payload.
_HEADER: Final = struct.Struct("!IBB")
_OP_TEXT: Final = 1
_OP_BINARY: Final = 2
# Bytes read per recv: a batch of small records, or a good part of a big one.
_READ_SIZE: Final = 256 * 1024
# Seconds the supervisor gives workers to listen, and to stop after a signal.
_START_TIMEOUT: Final = 30.0
_STOP_TIMEOUT: Final = 15.0


class WorkerError(RuntimeError):
    """A worker process failed to start, or exited with an error."""


class Served(Protocol):
    """What the supervisor needs from a :class:`wsfast.server.Server`.

    (Written out here because the server module imports this one, never the reverse.)
    """

    config: ServerConfig
    topics: Broker
    workers: int
    worker_index: int | None
    _broker_spec: str | Engine | None
    _reuse_port: bool
    _port: int

    def listen(self) -> Any:
        """Bind and listen (in a worker)."""

    def serve_forever(self) -> None:
        """Run the loop until SIGINT/SIGTERM (in a worker)."""


def make_engine(spec: str | Engine, config: TopicsConfig) -> Engine:
    """The engine for ``serve(..., broker=spec)``.

    Args:
        spec: a broker URL (``redis://host:port/db``) or an engine object.
        config: the topic settings (history) the engine uses.

    Returns:
        The engine, not started.

    Raises:
        ValueError: if the URL's scheme is not supported.
        ImportError: if the engine's client library is not installed.
    """
    if not isinstance(spec, str):
        return spec
    # Looked up here: the Redis engine (and redis-py) only load when a URL is given.
    from wsfast import topics

    engine_from_url: Callable[..., Engine] | None = getattr(topics, "engine_from_url", None)
    if engine_from_url is None:
        raise ValueError(f"no broker engine is installed for {spec!r}")
    return engine_from_url(spec, config)


def encode_record(topic: str, data: str | bytes) -> bytes:
    """Serialize one publication for the other workers.

    Args:
        topic: a checked topic name (at most 255 UTF-8 bytes).
        data: ``str`` (text) or ``bytes`` (binary).

    Returns:
        The record: header, topic, payload.
    """
    name = topic.encode("utf-8", "surrogatepass")
    if isinstance(data, str):
        opcode, payload = _OP_TEXT, data.encode("utf-8")
    else:
        opcode, payload = _OP_BINARY, data
    return b"".join((_HEADER.pack(len(payload), opcode, len(name)), name, payload))


def decode_records(buf: bytearray) -> list[tuple[str, str | bytes]]:
    """Take every whole record off the front of ``buf``; leave a partial one.

    Args:
        buf: bytes read from a peer; consumed in place.

    Returns:
        The publications, in order, as ``(topic, data)``.
    """
    out: list[tuple[str, str | bytes]] = []
    pos = 0
    end = len(buf)
    with memoryview(buf) as view:
        while end - pos >= _HEADER.size:
            size, opcode, topic_len = _HEADER.unpack_from(buf, pos)
            start = pos + _HEADER.size
            stop = start + topic_len + size
            if stop > end:
                break
            with view[start : start + topic_len] as name, view[start + topic_len : stop] as raw:
                # One copy each, straight from the read buffer.
                topic = str(name, "utf-8", "surrogatepass")
                out.append((topic, str(raw, "utf-8") if opcode == _OP_TEXT else bytes(raw)))
            pos = stop
    del buf[:pos]
    return out


class WorkerEngine:
    """Topics across the workers of one supervisor (see the module docstring).

    Numbering and history are this worker's (an :class:`InMemoryEngine`), over every
    publication it delivered, local or from another worker: positions and epochs
    therefore differ between workers, and a client that reconnects to another
    worker cannot resume with ``since`` (it is told ``recovered=False``).

    Args:
        peers: sockets to the other workers, written from the loop thread.
        inbox: sockets from the other workers, read by this engine's thread.
        local: the engine that numbers, keeps history and delivers locally.
    """

    def __init__(
        self,
        peers: Sequence[socket.socket],
        inbox: Sequence[socket.socket],
        local: InMemoryEngine | None = None,
    ) -> None:
        self._peers = list(peers)
        self._inbox = list(inbox)
        self._local = local or InMemoryEngine()
        self._call: Callable[..., object] | None = None
        self._outbox: list[bytes] = []
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        #: Publications received from other workers.
        self.received = 0
        #: Publications written to other workers (one per publication, not per peer).
        self.sent = 0

    # ---- the Engine protocol -------------------------------------------------------

    def bind(self, broker: Broker) -> None:
        """Attach to the broker that delivers this worker's publications.

        Args:
            broker: the worker's broker.
        """
        self._local.bind(broker)

    def publish(self, topic: str, data: str | bytes, exclude: frozenset[Any]) -> int:
        """Deliver locally, then send the publication to every other worker.

        Args:
            topic: a checked topic name.
            data: a checked message.
            exclude: local connections not to deliver to.

        Returns:
            The local deliveries queued.
        """
        queued = self._local.publish(topic, data, exclude)
        if self._peers:
            outbox = self._outbox
            if not outbox and self._call is not None:
                # One write per peer per loop turn, however many publications the
                # turn makes: the flush runs at the start of the next turn.
                self._call(self._flush)
            outbox.append(encode_record(topic, data))
            self.sent += 1
            if self._call is None:
                self._flush()
        return queued

    def _flush(self) -> None:
        if not self._outbox:
            return
        data = b"".join(self._outbox)
        self._outbox.clear()
        for peer in list(self._peers):
            try:
                # Blocking, on purpose: it only waits while a peer's reader thread is
                # behind, and that thread never waits for its loop.
                peer.sendall(data)
            except OSError as exc:
                logger.warning("worker %d: peer gone (%s): dropped", os.getpid(), exc)
                self._peers.remove(peer)
                peer.close()

    def subscribed(self, topic: str) -> None:
        """Every worker receives every publication: nothing to tell.

        Args:
            topic: the topic.
        """

    def unsubscribed(self, topic: str) -> None:
        """Forget the topic's stream if it keeps no history.

        Args:
            topic: the topic.
        """
        self._local.unsubscribed(topic)

    def position(self, topic: str) -> StreamPosition:
        """The topic's position in this worker.

        Args:
            topic: the topic.

        Returns:
            This worker's epoch and offset of the topic.
        """
        return self._local.position(topic)

    def history(self, topic: str, since: StreamPosition) -> list[Publication] | None:
        """The publications this worker delivered after ``since``.

        Args:
            topic: the topic.
            since: a position from this worker.

        Returns:
            The missed publications, or None if they cannot all be given.
        """
        return self._local.history(topic, since)

    # ---- lifecycle -----------------------------------------------------------------

    def start(self, call_soon_threadsafe: Callable[..., object]) -> None:
        """Start reading the other workers (the server listens: its loop exists).

        Args:
            call_soon_threadsafe: runs ``fn(*args)`` on the worker's loop thread
                (``server.call_soon_threadsafe``); what arrives is delivered there.
        """
        self._call = call_soon_threadsafe
        self._thread = threading.Thread(target=self._read, name="wsfast-workers", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Send what is queued, stop the reader thread and close the sockets."""
        self._flush()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        for sock in (*self._peers, *self._inbox, self._wake_r, self._wake_w):
            sock.close()
        self._peers.clear()

    def _deliver(self, batch: list[tuple[str, str | bytes]]) -> None:
        # On the loop thread: number, keep and fan out, like a local publication.
        self.received += len(batch)
        publish = self._local.publish
        nobody: frozenset[Any] = frozenset()
        for topic, data in batch:
            publish(topic, data, nobody)

    def _read(self) -> None:
        call = self._call
        assert call is not None
        buffers: dict[socket.socket, bytearray] = {}
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ)
            for sock in self._inbox:
                buffers[sock] = bytearray()
                selector.register(sock, selectors.EVENT_READ)
            while buffers:
                batch: list[tuple[str, str | bytes]] = []
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    peer = key.fileobj
                    assert isinstance(peer, socket.socket)
                    try:
                        chunk = peer.recv(_READ_SIZE)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        # That worker exited: nothing more will come from it.
                        selector.unregister(peer)
                        del buffers[peer]
                        continue
                    buf = buffers[peer]
                    buf += chunk
                    batch.extend(decode_records(buf))
                if batch:
                    try:
                        call(self._deliver, batch)
                    except RuntimeError:
                        return  # the loop is gone


# ---- the supervisor --------------------------------------------------------------------


def _die_with_parent() -> None:
    # Linux: a worker gets SIGTERM when the supervisor dies, even by SIGKILL, so no
    # worker outlives it. Best effort: without prctl the supervisor still forwards
    # signals and waits.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


class Supervisor:
    """Runs a server as ``workers`` processes on one port (see the module docstring).

    Args:
        server: a server made with ``workers=N`` (N >= 1), not listening.
        workers: the number of worker processes (default: ``server.workers``).
    """

    def __init__(self, server: Served, workers: int | None = None) -> None:
        self.server = server
        self.workers = server.workers if workers is None else workers
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, not {self.workers}")
        #: The worker processes' ids, in worker order.
        self.pids: list[int] = []
        self._stopping = False
        self._placeholder: socket.socket | None = None
        self._previous: dict[int, Any] = {}

    def start(self) -> Supervisor:
        """Reserve the port, fork the workers and wait until each listens.

        Returns:
            The supervisor; ``server.port`` is the port the workers listen on.

        Raises:
            WorkerError: if a worker exits or does not listen within 30 seconds
                (the others are stopped first).
            OSError: if the address cannot be bound.
        """
        server = self.server
        config = server.config
        # Bind (not listen) the port here first: port 0 becomes a real port that every
        # worker then shares, and a busy port fails before anything is forked.
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        placeholder = socket.socket(family, socket.SOCK_STREAM)
        try:
            placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            placeholder.bind((config.host, config.port))
        except BaseException:
            placeholder.close()
            raise
        self._placeholder = placeholder
        port = int(placeholder.getsockname()[1])
        server.config = dataclasses.replace(config, port=port)
        server._port = port

        n = self.workers
        # mesh[i, j]: (the end worker i writes, the end worker j reads).
        mesh: dict[tuple[int, int], tuple[socket.socket, socket.socket]] = {}
        if server._broker_spec is None:
            for i in range(n):
                for j in range(n):
                    if i != j:
                        mesh[i, j] = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ready_r, ready_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            for index in range(n):
                pid = os.fork()
                if pid == 0:  # pragma: no cover - runs in the worker (tested end to end)
                    os.close(ready_r)
                    self._child(index, mesh, ready_w)
                self.pids.append(pid)
        finally:
            os.close(ready_w)
            for a, b in mesh.values():
                a.close()
                b.close()
        try:
            self._wait_ready(ready_r)
        except BaseException:
            self._signal_all(signal.SIGTERM)
            self._reap(_STOP_TIMEOUT)
            raise
        finally:
            os.close(ready_r)
        return self

    def _child(
        self,
        index: int,
        mesh: dict[tuple[int, int], tuple[socket.socket, socket.socket]],
        ready_w: int,
    ) -> None:  # pragma: no cover - runs in the worker
        status = 1
        try:
            _die_with_parent()
            # Its own process group: a terminal's Ctrl-C reaches the supervisor only,
            # which forwards it once (twice would mean "stop now" to the worker).
            os.setpgid(0, 0)
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_DFL)
            if self._placeholder is not None:
                self._placeholder.close()
            server = self.server
            if server._broker_spec is None and self.workers > 1:
                peers, inbox = [], []
                for (i, j), (a, b) in mesh.items():
                    if i == index:
                        peers.append(a)
                        b.close()
                    elif j == index:
                        inbox.append(b)
                        a.close()
                    else:
                        a.close()
                        b.close()
                config = server.topics.config
                engine = WorkerEngine(peers, inbox, InMemoryEngine(config))
                server.topics = Broker(config, engine)
            server.worker_index = index
            server._reuse_port = True
            server.listen()
            os.write(ready_w, bytes([index % 256]))
            os.close(ready_w)
            server.serve_forever()
            status = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def _wait_ready(self, ready_r: int) -> None:
        ready = 0
        deadline = time.monotonic() + _START_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(ready_r, selectors.EVENT_READ)
            while ready < self.workers:
                for pid in self.pids:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        self.pids.remove(pid)
                        raise WorkerError(f"worker {pid} exited at startup ({_describe(status)})")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkerError(f"{self.workers - ready} workers did not start in time")
                if selector.select(min(left, 0.1)):
                    data = os.read(ready_r, 64)
                    if not data:
                        # Every write end is closed: a worker died before it listened.
                        continue
                    ready += len(data)

    def wait(self) -> int:
        """Forward SIGINT/SIGTERM to the workers and wait until all exited.

        Call it on the main thread after :meth:`start`. A worker that dies is logged
        and not restarted; the others keep serving.

        Returns:
            0 if every worker exited cleanly, else 1.
        """
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        failed = False
        try:
            while self.pids:
                pid, status = os.waitpid(-1, 0)
                if pid not in self.pids:
                    continue
                self.pids.remove(pid)
                if os.waitstatus_to_exitcode(status) != 0:
                    failed = True
                    logger.error("worker %d exited (%s)", pid, _describe(status))
                elif not self._stopping:
                    logger.warning("worker %d exited", pid)
        finally:
            for number, old in self._previous.items():
                signal.signal(number, old)
            self._previous.clear()
            self._close_placeholder()
        return 1 if failed else 0

    def run(self) -> None:
        """:meth:`start`, then :meth:`wait` (``Server.serve_forever`` with workers).

        Raises:
            WorkerError: if a worker failed to start or exited with an error.
            OSError: if the address cannot be bound.
        """
        self.start()
        if self.wait():
            raise WorkerError("a worker exited with an error")

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask every worker to shut down (they close their clients with 1001).

        Args:
            signum: the signal to send.
        """
        self._stopping = True
        self._signal_all(signum)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        logger.info("received %s: stopping %d workers", signal.Signals(signum).name, len(self.pids))
        self.stop(signum)

    def _signal_all(self, signum: int) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _reap(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.pids:
            for pid in list(self.pids):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    self.pids.remove(pid)
            if self.pids and time.monotonic() > deadline:
                self._signal_all(signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.01)
        self._close_placeholder()

    def _close_placeholder(self) -> None:
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"status {code}"
