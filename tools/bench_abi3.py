# SPDX-License-Identifier: MIT
"""Does the stable ABI (abi3) cost speed on the PyO3 side of wsfast?

Usage: ``python tools/bench_abi3.py NAME=DIR NAME=DIR ...``, where each DIR holds a
``wsfast`` package whose ``_rust`` module is one build variant (for example one copied
from a normal wheel and one from an abi3 wheel). Each variant runs in its own process,
interleaved over several rounds so machine load hits every variant alike; the best
round per workload is reported (the least disturbed one).

Only the PyO3 class ``wsfast.Protocol`` can be affected: the Cython glue calls the Rust
core through the C-API capsule, whose function pointers do not depend on the ABI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

ROUNDS = 11
FRAMES = 2000


def _workloads() -> dict[str, float]:
    """Time each workload once in this process; return nanoseconds per frame."""
    from wsfast import Protocol

    results: dict[str, float] = {}
    for name, payload in (
        ("recv text 16 B", "x" * 16),
        ("recv text 1 KiB", "y" * 1024),
        ("recv binary 64 KiB", b"z" * 65536),
    ):
        client = Protocol("client")
        for _ in range(FRAMES):
            if isinstance(payload, str):
                client.send_text(payload)
            else:
                client.send_binary(payload)
        wire = b"".join(client.data_to_send())
        server = Protocol("server", max_size=1 << 20)
        start = time.perf_counter_ns()
        # Feed in 64 KiB slices, as a socket reader would, then collect the events.
        for i in range(0, len(wire), 65536):
            server.receive_data(wire[i : i + 65536])
            server.events_received()
        results[name] = (time.perf_counter_ns() - start) / FRAMES
    server = Protocol("server")
    start = time.perf_counter_ns()
    for _ in range(FRAMES):
        server.send_text("hello")
        server.data_to_send()
    results["send text 5 B"] = (time.perf_counter_ns() - start) / FRAMES
    return results


def main() -> None:
    """Run the comparison, or one measurement when called as ``--child``."""
    if sys.argv[1:] == ["--child"]:
        _workloads()  # warm-up
        print(json.dumps(_workloads()))
        return
    variants = dict(arg.split("=", 1) for arg in sys.argv[1:])
    best: dict[str, dict[str, float]] = {name: {} for name in variants}
    for _ in range(ROUNDS):
        for name, path in variants.items():
            env = {**os.environ, "PYTHONPATH": path}
            out = subprocess.run(
                [sys.executable, __file__, "--child"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
                cwd="/",
            ).stdout
            for workload, ns in json.loads(out).items():
                best[name][workload] = min(best[name].get(workload, ns), ns)
    names = list(variants)
    print(f"{'ns per frame (best of ' + str(ROUNDS) + ')':28}" + "".join(f"{n:>12}" for n in names))
    for workload in best[names[0]]:
        row = "".join(f"{best[n][workload]:12.0f}" for n in names)
        print(f"{workload:28}{row}")


if __name__ == "__main__":
    main()
