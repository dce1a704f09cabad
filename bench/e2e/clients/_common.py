# SPDX-License-Identifier: MIT
"""Shared by the client scripts: arguments, timing, CPU accounting, one JSON line out.

Every client script is run as ``python clients/<name>.py --url ws://127.0.0.1:P/ --mode
feed|rtt [--deflate] [--duration S] [--size B]`` and prints exactly one JSON line:

- feed: ``msgs``, ``bytes`` (sum of ``len`` of every received ``str``/``bytes``),
  ``seconds`` and ``cpu_s`` (user + system CPU of this process) from just before the
  connection is opened until the server's close frame was received.
- rtt: ``round_trips``, ``seconds``, ``cpu_s``, ``p50_us``, ``p99_us``, ``p999_us``,
  ``mismatches`` (echoes that differ from what was sent).

A client that cannot run a workload prints ``{"skipped": "why"}`` and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

RTT_WARMUP = 200  # round trips before the clock starts


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["feed", "rtt"], default="feed")
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--duration", type=float, default=2.0, help="rtt: seconds measured")
    parser.add_argument("--size", type=int, default=256, help="rtt: message size in bytes")
    parser.add_argument("--variant", default="", help="client-specific configuration")
    args = parser.parse_args()
    # wss: the certificate is trusted through SSL_CERT_FILE (run_clients.py sets it).
    if not args.url.startswith(("ws://127.0.0.1:", "wss://127.0.0.1:")):
        parser.error("only ws:// and wss://127.0.0.1 are served")
    if not 0 < args.duration <= 60:
        parser.error("duration must be in (0, 60]")
    return args


def cpu_now() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Meter:
    """Wall-clock and CPU seconds between start() and stop()."""

    def __init__(self) -> None:
        self.t0 = self.c0 = self.seconds = self.cpu = 0.0

    def start(self) -> None:
        self.c0 = cpu_now()
        self.t0 = time.perf_counter()

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.cpu = cpu_now() - self.c0


def rtt_payload(size: int) -> bytes:
    """The binary message sent in round trips (seeded random bytes)."""
    return random.Random(256).randbytes(size)


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index] / 1000.0  # ns -> us


def emit_feed(client: str, config: str, meter: Meter, msgs: int, nbytes: int) -> None:
    emit(
        {
            "client": client,
            "config": config,
            "msgs": msgs,
            "bytes": nbytes,
            "seconds": meter.seconds,
            "cpu_s": meter.cpu,
        }
    )


def emit_rtt(
    client: str, config: str, meter: Meter, samples_ns: list[int], mismatches: int
) -> None:
    samples = sorted(samples_ns)
    emit(
        {
            "client": client,
            "config": config,
            "round_trips": len(samples),
            "seconds": meter.seconds,
            "cpu_s": meter.cpu,
            "p50_us": percentile(samples, 0.50),
            "p99_us": percentile(samples, 0.99),
            "p999_us": percentile(samples, 0.999),
            "mismatches": mismatches,
        }
    )


def skip(reason: str) -> None:
    emit({"skipped": reason})
    sys.exit(0)


def emit(record: dict[str, Any]) -> None:
    record["pid"] = os.getpid()
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def run_async(main: Coroutine[Any, Any, T], loop: str) -> T:
    """Run ``main`` on uvloop (``loop="uvloop"``) or the default asyncio loop."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


def loop_choice(variant: str, default: str = "uvloop") -> str:
    """The event loop named in ``--variant`` (``asyncio`` or ``uvloop``)."""
    return "asyncio" if "asyncio" in variant.split(",") else default
