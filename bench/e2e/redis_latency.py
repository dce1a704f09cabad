# SPDX-License-Identifier: MIT
"""Topics through Redis, end to end: publish-to-receive latency across two processes,
and the throughput ceiling of pipelined publishes.

Server A runs in this process, server B in a subprocess; both use the Redis engine on
one ``redis-server`` (started here on a free loopback port unless ``--redis URL``).
A ``websockets`` client in this process subscribes on B (and one on A). Latency: one
publication at a time on A, timed from ``server.publish`` to the client's ``recv``
(both clocks are this process's). Throughput: a burst published on A in one loop
turn per 1,000 messages, timed until the client on B has the last one. For
comparison, the same one-at-a-time latency to a subscriber on A with the in-memory
engine (no broker). Bounded: well under 60 s.

    python bench/e2e/redis_latency.py [--redis URL] [--count 2000] [--burst 50000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from wsfast.redis_engine import RedisEngine
from wsfast.server import Handler, Server, serve
from wsfast.topics import Broker, TopicsConfig

TOPIC = "bench"


class Subscribe(Handler):
    """Subscribes every connection to :data:`TOPIC`; replies "ok" once followed."""

    def __init__(self, engine: RedisEngine | None) -> None:
        self.engine = engine
        self.server: Server | None = None

    def on_message(self, conn: Any, data: str | bytes) -> None:
        conn.subscribe(TOPIC)
        self._ready(conn)

    def _ready(self, conn: Any) -> None:
        if self.engine is None or self.engine.following(TOPIC):
            conn.send("ok")
        else:
            assert self.server is not None
            self.server.call_later(0.002, self._ready, conn)


def start_server(url: str | None) -> tuple[Server, RedisEngine | None]:
    engine = RedisEngine(url) if url else None
    handler = Subscribe(engine)
    broker = Broker(TopicsConfig(), engine)
    server = serve(handler, "127.0.0.1", 0, topics=broker, ping_interval=None)  # type: ignore[arg-type]
    handler.server = server
    # The server starts the engine when it listens and closes it when it closes.
    return server.start(), engine


def on_loop(server: Server, fn: Any) -> Any:
    done = threading.Event()
    out: list[Any] = []
    server.call_soon_threadsafe(lambda: (out.append(fn()), done.set()))
    done.wait(10)
    return out[0]


def start_redis() -> tuple[str, subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="wsfast-bench-redis-")
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port),
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    return f"redis://127.0.0.1:{port}/0", proc, workdir


def subscribed_client(stack: contextlib.ExitStack, server_port: int) -> Any:
    ws = stack.enter_context(connect(f"ws://127.0.0.1:{server_port}/", max_size=None))
    ws.send("sub")
    assert ws.recv(timeout=10) == "ok"
    return ws


def latency(server: Server, ws: Any, count: int) -> list[float]:
    """Microseconds from publish (another thread, as an application would) to recv."""
    samples = []
    for i in range(count + count // 10):
        t0 = time.perf_counter()
        server.publish(TOPIC, f"{i:08d}" + "x" * 56)  # 64 bytes
        ws.recv(timeout=10)
        if i >= count // 10:  # warm-up excluded
            samples.append((time.perf_counter() - t0) * 1e6)
    return samples


def burst(server: Server, payload: str, count: int) -> Any:
    """A callable that publishes ``count`` messages in one loop turn."""
    return lambda: [server.publish(TOPIC, payload) for _ in range(count)]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", help="use this redis-server instead of starting one")
    parser.add_argument("--count", type=int, default=2000, help="latency samples")
    parser.add_argument("--burst", type=int, default=50000, help="pipelined publications")
    parser.add_argument("--out", help="also write redis-latest.{md,json} to this directory")
    parser.add_argument("--node", help=argparse.SUPPRESS)  # run as server B
    args = parser.parse_args()

    if args.node:
        server, _engine = start_server(args.node)
        print(server.port, flush=True)
        sys.stdin.read()
        server.close(drain=1.0)  # closes the engine too
        return

    redis_proc = None
    url = args.redis
    if url is None:
        url, redis_proc, workdir = start_redis()
    node = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--node", url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert node.stdin is not None and node.stdout is not None
    stack = contextlib.ExitStack()
    try:
        port_b = int(node.stdout.readline())
        server_a, engine_a = start_server(url)
        assert engine_a is not None
        ws_b = subscribed_client(stack, port_b)
        # Remote latency: A -> redis -> B -> client.
        remote = latency(server_a, ws_b, args.count)
        # Throughput: bursts of 1,000 publications per loop turn on A.
        payload = "y" * 64
        n = args.burst
        t0 = time.perf_counter()
        for start in range(0, n, 1000):
            on_loop(server_a, burst(server_a, payload, min(1000, n - start)))
        for _ in range(n):
            ws_b.recv(timeout=30)
        elapsed = time.perf_counter() - t0
        stats = engine_a.stats()
        # Local subscribers of A: through Redis, then with the in-memory engine.
        ws_a = subscribed_client(stack, server_a.port)
        local_redis = latency(server_a, ws_a, args.count)
        ws_a.close()
        ws_b.close()
        server_a.close(drain=1.0)
        memory_server, _ = start_server(None)
        ws_m = subscribed_client(stack, memory_server.port)
        local_memory = latency(memory_server, ws_m, args.count)
        ws_m.close()
        memory_server.close(drain=1.0)
    finally:
        stack.close()
        node.stdin.close()
        node.wait(20)
        node.stdout.close()
        if redis_proc is not None:
            redis_proc.kill()
            redis_proc.wait()
            shutil.rmtree(workdir, ignore_errors=True)

    def row(name: str, s: list[float]) -> str:
        return (f"| {name} | {statistics.median(s):.0f} | {percentile(s, 0.99):.0f} | "
                f"{len(s)} |")  # fmt: skip

    rate = n / elapsed
    lines = [
        f"Topics through Redis ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, redis-server on loopback)",
        "",
        "| publish -> recv, 64 B | p50 (us) | p99 (us) | samples |",
        "| --- | ---: | ---: | ---: |",
        row("A -> redis -> B (two processes)", remote),
        row("A -> redis -> A (local subscriber)", local_redis),
        row("in-memory engine (no broker)", local_memory),
        "",
        f"Pipelined: {n:,} publications of 64 B in {elapsed:.2f} s = {rate:,.0f} msg/s "
        f"received on B (A's engine: sent {stats.sent}, lost {stats.lost}, errors {stats.errors}).",
    ]
    print(f"redis-server {url}")
    print("\n".join(lines))
    assert stats.lost == 0 and stats.errors == 0
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "redis-latest.md").write_text("\n".join(lines) + "\n")
        record = {
            "latency_us": {
                name: {"p50": statistics.median(s), "p99": percentile(s, 0.99), "samples": len(s)}
                for name, s in (
                    ("remote", remote),
                    ("local_redis", local_redis),
                    ("in_memory", local_memory),
                )
            },
            "pipelined_msgs_per_s": rate,
            "publications": n,
        }
        (out / "redis-latest.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
