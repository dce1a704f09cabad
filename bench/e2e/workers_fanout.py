# SPDX-License-Identifier: MIT
"""Topics across worker processes: deliveries per second with 1 and 2 workers.

    python bench/e2e/workers_fanout.py                # 1 and 2 workers, ~20 s in all
    python bench/e2e/workers_fanout.py --seconds 4    # shorter

Method: ``wsfast.serve(..., workers=N)`` runs in a subprocess (N worker processes on one
port, SO_REUSEPORT); this script opens S subscriber connections (raw sockets, epoll, the
handshake and frame counting of ``fanout.py``), which the kernel spreads over the workers,
and one publisher connection on each worker (each tells its worker's pid). A round: every
publisher sends ``burst K``; its worker publishes K messages of B bytes to topic ``t``,
delivered to its own subscribers natively and to the other workers' through the worker
mesh (Unix stream sockets). The round ends when every subscriber has received all N x K
frames. Deliveries per second = S x N x K x rounds / elapsed; the scaling factor is the
2-worker figure over the 1-worker one.

The client is one Python process: on a 2-core machine it competes with the workers for
the cores, so the scaling factor measured there is a floor, not the server's ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout import _connect, _frame_length, _mask, _message, _request


def serve(port: int, workers: int) -> None:
    import wsfast
    from wsfast.connection import Connection

    server: Any = None

    class Fan(wsfast.Handler):
        def on_open(self, conn: Connection) -> None:
            if conn.path == "/sub":
                conn.subscribe("t")
            else:
                conn.send(f"pid {os.getpid()}")

        def on_message(self, conn: Connection, data: str | bytes) -> None:
            _, k, size = str(data).split()
            msg = _message(int(size))
            for _ in range(int(k)):
                server.publish("t", msg)

    server = wsfast.serve(
        Fan(),
        "127.0.0.1",
        port,
        compression=False,
        ping_interval=None,
        backlog=4096,
        write_limit=(64 << 20, 16 << 20),
        workers=workers,
    )
    server.serve_forever()


def _connect_publisher(port: int) -> tuple[socket.socket, int]:
    """Connect to ``/pub``; return the socket and the pid its worker sends on open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(_request("/pub", False))
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, data = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head.decode(errors="replace"))
    while len(data) < 2 or len(data) < _frame_length(data):
        data += sock.recv(64)
    return sock, int(data[2 : _frame_length(data)].split()[1])


def run_one(workers: int, subscribers: int, size: int, seconds: float, burst: int) -> float:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--workers", str(workers), "--port", str(port)],
        stdin=subprocess.DEVNULL,
    )
    socks: list[socket.socket] = []
    publishers: dict[int, socket.socket] = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socks.append(_connect(port, "/sub", False))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        for _ in range(subscribers - 1):
            socks.append(_connect(port, "/sub", False))
        for _ in range(200):
            pub, pid = _connect_publisher(port)
            if pid in publishers:
                pub.close()
            else:
                publishers[pid] = pub
            if len(publishers) == workers:
                break
        assert len(publishers) == workers, "no publisher on some worker"
        for s in socks:
            s.setblocking(False)
        ep = select.epoll()
        fds = {s.fileno(): i for i, s in enumerate(socks)}
        for s in socks:
            ep.register(s.fileno(), select.EPOLLIN)
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        got = [0] * subscribers
        frame_len = 0

        def round_trip(k: int) -> None:
            nonlocal frame_len
            for pub in publishers.values():
                pub.sendall(_mask(f"burst {k} {size}".encode()))
            for i in range(subscribers):
                got[i] = 0
            done = 0
            per_sub = k * len(publishers)
            target = frame_len * per_sub
            give_up = time.monotonic() + 60
            while done < subscribers:
                if time.monotonic() > give_up:
                    raise TimeoutError(f"{subscribers - done} subscribers still waiting")
                for fd, _ in ep.poll(1.0):
                    i = fds[fd]
                    s = socks[i]
                    while True:
                        try:
                            n = s.recv_into(view)
                        except BlockingIOError:
                            break
                        if n == 0:
                            raise EOFError("subscriber closed")
                        if not frame_len:
                            frame_len = _frame_length(bytes(buf[:10]))
                            target = frame_len * per_sub
                        before = got[i]
                        got[i] = before + n
                        if before < target <= got[i]:
                            done += 1
                        if n < len(buf):
                            break
            assert got == [target] * subscribers, "a subscriber got a partial frame or extra"

        # Warm-up; with workers it also proves every subscription is in place.
        round_trip(1)
        rounds = 0
        t0 = time.perf_counter()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            round_trip(burst)
            rounds += 1
        elapsed = time.perf_counter() - t0
        return subscribers * workers * burst * rounds / elapsed
    finally:
        for s in [*socks, *publishers.values()]:
            s.close()
        proc.terminate()
        proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int, default=0, help="one run only")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--burst", type=int, default=128)
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--out", type=Path, help="also write workers-latest.{md,json} here")
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.workers)
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rates: dict[int, float] = {}
    for workers in [args.workers] if args.workers else [1, 2]:
        rate = run_one(workers, args.subscribers, args.size, args.seconds, args.burst)
        rates[workers] = rate
        print(
            f"workers={workers} subs={args.subscribers} size={args.size} B burst={args.burst}: "
            f"{rate / 1e6:6.3f} M deliveries/s",
            flush=True,
        )
    lines = [
        f"Topics across worker processes ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{args.subscribers} subscribers, {args.size} B, burst {args.burst}, "
        f"{args.seconds:g} s per run, {os.cpu_count()} cores shared with the client)",
        "",
        "| workers | deliveries/s |",
        "| ---: | ---: |",
        *(f"| {w} | {r:,.0f} |" for w, r in sorted(rates.items())),
    ]
    scaling = rates[2] / rates[1] if 1 in rates and 2 in rates else None
    if scaling is not None:
        print(f"scaling factor (2 workers / 1): {scaling:.2f}x", flush=True)
        lines += ["", f"Scaling factor (2 workers / 1): {scaling:.2f}x"]
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "workers-latest.md").write_text("\n".join(lines) + "\n")
        record = {
            "subscribers": args.subscribers,
            "size": args.size,
            "burst": args.burst,
            "seconds": args.seconds,
            "deliveries_per_s": {str(w): r for w, r in rates.items()},
            "scaling": scaling,
        }
        (args.out / "workers-latest.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
