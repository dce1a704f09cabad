# SPDX-License-Identifier: MIT
"""Soak a WebSocket echo server and prove that nothing is lost and nothing leaks.

``make soak`` runs this for ``SOAK_SECONDS`` (default 600; CI runs 60). Clients from the
independent ``websockets`` package connect and disconnect all the time, half of them with
permessage-deflate, some of them slow readers, and send text and binary messages of random
size (0 B to 1 MiB), some fragmented. Every message carries its connection id, a sequence
number and a CRC-32 of its body, and the client keeps a copy: each echo must come back
byte-identical, in order, exactly once.

The run is split into rounds. Between two rounds every client has closed, and the script
reads the server's idle RSS and open file descriptors from ``/proc``. The first round is the
warm-up; the slope of the idle RSS over the others (KiB per minute) is the leak figure. The
script exits non-zero if a message was lost, duplicated, reordered or corrupted, if a
connection closed with anything but 1000, if descriptors leaked, or if the slope exceeds
``--max-slope`` while the idle RSS also grew more than ``--max-growth`` after warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

from _procs import add_server_arguments, free_port, proc_fds, proc_status, start_server
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

MiB = 1 << 20
#: Every message starts with this header: connection id, sequence number, CRC-32 of the body.
HEADER = "{:08x}:{:08x}:{:08x}|"
HEADER_SIZE = len(HEADER.format(0, 0, 0))
TEXT_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 éü€中文😀"


@dataclass
class Tally:
    """What the clients saw, summed over every connection."""

    connections: int = 0
    compressed_connections: int = 0
    slow_connections: int = 0
    sent: int = 0
    echoed: int = 0
    bytes_sent: int = 0
    fragmented: int = 0
    text: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    corrupted: int = 0
    bad_closes: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def problems(self) -> int:
        """Messages or connections that went wrong."""
        return (
            self.lost
            + self.duplicated
            + self.reordered
            + self.corrupted
            + sum(self.bad_closes.values())
            + sum(self.errors.values())
        )


def message_size(rng: random.Random, largest: int) -> int:
    """Mostly small messages, some large: log-uniform from 0 B to ``largest``."""
    if rng.random() < 0.05:
        return 0
    return min(largest, int(2 ** rng.uniform(0, largest.bit_length())))


def make_message(rng: random.Random, conn_id: int, seq: int, size: int) -> str | bytes:
    """A text or binary message of ``size`` bytes at most, header included."""
    body_size = max(0, size - HEADER_SIZE)
    if rng.random() < 0.5:
        # Text: mixed scripts so the server's UTF-8 validation sees multi-byte sequences.
        chunk = "".join(rng.choices(TEXT_ALPHABET, k=256))
        text = (chunk * (body_size // 256 + 1))[: max(0, body_size // 2)]
        body = text.encode()
        return HEADER.format(conn_id, seq, zlib.crc32(body)) + text
    raw = rng.randbytes(body_size)
    return HEADER.format(conn_id, seq, zlib.crc32(raw)).encode() + raw


def check_echo(tally: Tally, conn_id: int, expected_seq: int, sent: str | bytes, got: Any) -> None:
    """Compare one echo with the copy kept at send time."""
    if type(got) is not type(sent):
        tally.corrupted += 1
        return
    head = got[:HEADER_SIZE]
    head_text = head.decode() if isinstance(head, bytes) else head
    try:
        got_conn, got_seq, got_crc = (int(part, 16) for part in head_text[:-1].split(":"))
    except ValueError:
        tally.corrupted += 1
        return
    body = got[HEADER_SIZE:]
    body_bytes = body.encode() if isinstance(body, str) else body
    if got_conn != conn_id or zlib.crc32(body_bytes) != got_crc or got != sent:
        tally.corrupted += 1
    elif got_seq < expected_seq:
        tally.duplicated += 1
    elif got_seq > expected_seq:
        tally.reordered += 1
    else:
        tally.echoed += 1


async def one_connection(
    url: str, rng: random.Random, conn_id: int, tally: Tally, largest: int
) -> None:
    """Open, exchange a random batch of messages with pipelining, verify, close cleanly."""
    compressed = rng.random() < 0.5
    slow = rng.random() < 0.15
    # Half the connections are brief (churn), the others exchange up to 40 messages.
    count = rng.randint(1, 3) if rng.random() < 0.5 else rng.randint(4, 40)
    window = rng.randint(1, 8)
    tally.connections += 1
    tally.compressed_connections += compressed
    tally.slow_connections += slow
    pending: list[tuple[int, str | bytes]] = []
    async with connect(
        url,
        compression="deflate" if compressed else None,
        max_size=None,
        ping_interval=None,
        open_timeout=60,
        close_timeout=60,
    ) as ws:
        try:
            for seq in range(count):
                message = make_message(rng, conn_id, seq, message_size(rng, largest))
                if rng.random() < 0.2 and len(message) > 1:
                    # A fragmented message: the websockets client sends an iterable as fragments.
                    cuts = sorted(rng.sample(range(1, len(message)), min(3, len(message) - 1)))
                    parts = [
                        message[a:b] for a, b in zip([0, *cuts], [*cuts, len(message)], strict=True)
                    ]
                    await ws.send(parts)
                    tally.fragmented += 1
                else:
                    await ws.send(message)
                tally.sent += 1
                tally.bytes_sent += len(message)
                tally.text += isinstance(message, str)
                pending.append((seq, message))
                while len(pending) >= window or (seq == count - 1 and pending):
                    if slow:
                        await asyncio.sleep(rng.uniform(0.005, 0.05))
                    expected_seq, sent = pending.pop(0)
                    check_echo(tally, conn_id, expected_seq, sent, await ws.recv())
        except ConnectionClosed as exc:
            tally.lost += len(pending)
            key = f"{exc.rcvd.code if exc.rcvd else 'none'}"
            tally.bad_closes[key] = tally.bad_closes.get(key, 0) + 1
            return
    code = ws.close_code
    if code != 1000:
        tally.bad_closes[str(code)] = tally.bad_closes.get(str(code), 0) + 1


async def client_worker(
    url: str, seed: int, first_id: int, stride: int, deadline: float, tally: Tally, largest: int
) -> None:
    """Connect, exchange, disconnect, again, until the round's deadline."""
    rng = random.Random(seed)
    conn_id = first_id
    while time.monotonic() < deadline:
        try:
            await one_connection(url, rng, conn_id, tally, largest)
        except (TimeoutError, OSError) as exc:
            name = type(exc).__name__
            tally.errors[name] = tally.errors.get(name, 0) + 1
        conn_id += stride


def slope_kib_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, KiB) samples, in KiB per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_r = sum(r for _, r in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (r - mean_r) for t, r in samples)
    return 60.0 * cov / var if var else 0.0


async def settle(pid: int, seconds: float = 2.0) -> tuple[int, int]:
    """Idle RSS and fd count once the server has had a moment to finish closing."""
    await asyncio.sleep(seconds)
    return proc_status(pid, "VmRSS"), proc_fds(pid)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run every round against one server process; return the report."""
    port = free_port()
    server = start_server(args.server, port, tool="soak")
    url = f"ws://127.0.0.1:{port}/"
    tally = Tally()
    rounds: list[dict[str, Any]] = []
    try:
        rss0, fds0 = await settle(server.pid, 1.0)
        start = time.monotonic()
        round_seconds = args.seconds / args.rounds
        for number in range(args.rounds):
            deadline = time.monotonic() + round_seconds
            before = tally.connections
            await asyncio.gather(
                *(
                    client_worker(
                        url,
                        args.seed * 1000 + number * 100 + i,
                        (number << 24) + i,
                        args.clients,
                        deadline,
                        tally,
                        args.largest,
                    )
                    for i in range(args.clients)
                )
            )
            if server.poll() is not None:
                raise SystemExit(f"soak: server died with status {server.returncode}")
            rss, fds = await settle(server.pid)
            rounds.append(
                {
                    "round": number + 1,
                    "elapsed_s": round(time.monotonic() - start, 1),
                    "connections": tally.connections - before,
                    "idle_rss_kib": rss,
                    "fds": fds,
                }
            )
            print(f"soak: round {rounds[-1]}", flush=True)
        elapsed = time.monotonic() - start
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    steady = [(r["elapsed_s"], r["idle_rss_kib"]) for r in rounds[1:]]
    slope = slope_kib_per_min(steady)
    return {
        "server": " ".join(args.server),
        "seconds": round(elapsed, 1),
        "clients": args.clients,
        "connections_per_minute": round(tally.connections / elapsed * 60),
        "start_rss_kib": rss0,
        "start_fds": fds0,
        "rounds": rounds,
        "rss_slope_kib_per_min": round(slope, 1),
        "rss_growth_kib": rounds[-1]["idle_rss_kib"] - rounds[0]["idle_rss_kib"] if rounds else 0,
        "fd_leak": rounds[-1]["fds"] - fds0 if rounds else 0,
        **asdict(tally),
        "problems": tally.problems(),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the soak, print and check the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--rounds", type=int, default=0, help="default: one per minute, at least 3")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--largest", type=int, default=MiB, help="largest message (1 MiB)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--max-slope", type=float, default=1024.0, help="largest idle RSS slope, KiB/min"
    )
    parser.add_argument(
        "--max-growth",
        type=float,
        default=8192.0,
        help="idle RSS growth after warm-up (KiB) below which a slope is noise",
    )
    add_server_arguments(parser)
    args = parser.parse_args(argv)
    if not args.rounds:
        args.rounds = max(3, round(args.seconds / 60))
    report = asyncio.run(soak(args))
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    failures = []
    if report["problems"]:
        failures.append(
            "messages or connections went wrong (see lost, duplicated, reordered, corrupted, "
            "bad_closes, errors)"
        )
    if report["fd_leak"] > 0:
        failures.append(f"{report['fd_leak']} file descriptors leaked")
    # A leak shows as a slope *and* real growth: over a short run a few MiB of
    # allocator noise between two rounds makes a steep but meaningless slope.
    if (
        report["rss_slope_kib_per_min"] > args.max_slope
        and report["rss_growth_kib"] > args.max_growth
    ):
        failures.append(
            f"idle RSS grows {report['rss_slope_kib_per_min']} KiB/min (> {args.max_slope}), "
            f"{report['rss_growth_kib']} KiB after warm-up (> {args.max_growth})"
        )
    if report["echoed"] == 0:
        failures.append("no message was echoed")
    for failure in failures:
        print(f"soak: FAILED: {failure}", file=sys.stderr)
    if not failures:
        print(
            f"soak: OK: {report['echoed']:,} messages echoed over {report['connections']:,} "
            f"connections in {report['seconds']} s, none lost; idle RSS slope "
            f"{report['rss_slope_kib_per_min']} KiB/min",
            flush=True,
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
