# SPDX-License-Identifier: MIT
"""Print each performance target of the end-to-end benchmarks and whether it is met.

Usage: python bench/targets.py [RESULTS_DIR]      (default bench/results)

Reads ``e2e-latest.json`` (bench/e2e/run.py), ``clients-latest.json``
(bench/e2e/run_clients.py), ``uvicorn-latest.json`` (bench/e2e/uvicorn_fastapi.py) and
``fanout-latest.json`` (bench/e2e/fanout.py) from RESULTS_DIR, prints one line per
target (the measured ratio, the threshold, met / NOT met / n/a when a row was not
measured) as a markdown table and writes it to ``RESULTS_DIR/targets-latest.md``. A
ratio to the raw-TCP ceiling is flagged when the ceiling row was limited by the load
generator: the true ceiling is then higher than measured, so the ratio overstates the
server. Targets are information, not a test: the exit status is 0 whenever the result
files could be read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Summary = dict[str, dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class Target:
    name: str
    source: str  # "e2e" or "clients"
    threshold: float
    measure: Callable[[Summary], tuple[float | None, str]]  # (value, caveat)
    at_most: bool = False  # the value must not exceed the threshold (latency)


def rate(summary: Summary, workload: str, row: str, metric: str = "msgs_per_s") -> float | None:
    value = summary.get(workload, {}).get(row, {}).get(metric)
    return float(value) if value else None


def quotient(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def vs_ceiling(workload: str) -> Callable[[Summary], tuple[float | None, str]]:
    def measure(s: Summary) -> tuple[float | None, str]:
        value = quotient(rate(s, workload, "wsfast"), rate(s, workload, "ceiling"))
        ceiling = s.get(workload, {}).get("ceiling", {})
        ours = s.get(workload, {}).get("wsfast", {})
        caveats = []
        if ceiling.get("loadgen_bound"):
            caveats.append(f"ceiling loadgen-bound (loadgen CPU {ceiling['loadgen_cpu']:.2f})")
        if ours.get("loadgen_bound"):
            caveats.append(f"wsfast loadgen-bound (loadgen CPU {ours['loadgen_cpu']:.2f})")
        return value, "; ".join(caveats)

    return measure


def vs_server(workload: str, other: str) -> Callable[[Summary], tuple[float | None, str]]:
    def measure(s: Summary) -> tuple[float | None, str]:
        return quotient(rate(s, workload, "wsfast"), rate(s, workload, other)), ""

    return measure


def text_vs_binary(workload: str) -> Callable[[Summary], tuple[float | None, str]]:
    def measure(s: Summary) -> tuple[float | None, str]:
        text, binary = rate(s, workload, "wsfast"), rate(s, "echo-1KiB-c64", "wsfast")
        per_cpu = quotient(
            rate(s, workload, "wsfast", "msgs_per_server_cpu_s"),
            rate(s, "echo-1KiB-c64", "wsfast", "msgs_per_server_cpu_s"),
        )
        return quotient(text, binary), f"per server-CPU-s: {per_cpu:.2f}x" if per_cpu else ""

    return measure


def latency_vs_ceiling(s: Summary) -> tuple[float | None, str]:
    ours = rate(s, "latency-64B", "wsfast", "p50_us")
    return quotient(ours, rate(s, "latency-64B", "ceiling", "p50_us")), ""


def client_vs(workload: str, peer: str | None) -> Callable[[Summary], tuple[float | None, str]]:
    """wsfast's blocking client against ``peer``, or against the best peer (None)."""

    def measure(s: Summary) -> tuple[float | None, str]:
        ours = s.get(workload, {}).get("wsfast", {})
        if peer is None:
            best = ours.get("best_peer")
            return ours.get("x_best_peer"), f"best peer: {best}" if best else ""
        return quotient(rate(s, workload, "wsfast"), rate(s, workload, peer)), ""

    return measure


def row_vs(
    workload: str, ours: str, other: str, metric: str = "msgs_per_server_cpu_s"
) -> Callable[[Summary], tuple[float | None, str]]:
    """Row ``ours`` over row ``other`` on ``metric``; the other metric as a note."""

    def measure(s: Summary) -> tuple[float | None, str]:
        value = quotient(rate(s, workload, ours, metric), rate(s, workload, other, metric))
        note_metric = "msgs_per_s" if metric != "msgs_per_s" else "msgs_per_server_cpu_s"
        note = quotient(rate(s, workload, ours, note_metric), rate(s, workload, other, note_metric))
        label = "msgs/s" if note_metric == "msgs_per_s" else "per server-CPU-s"
        return value, f"{label}: {note:.2f}x" if note else ""

    return measure


def cython_vs_ceiling(workload: str) -> Callable[[Summary], tuple[float | None, str]]:
    def measure(s: Summary) -> tuple[float | None, str]:
        value = quotient(rate(s, workload, "wsfast-cython"), rate(s, workload, "ceiling"))
        ceiling = s.get(workload, {}).get("ceiling", {})
        caveat = "ceiling loadgen-bound" if ceiling.get("loadgen_bound") else ""
        return value, caveat

    return measure


def uvicorn_vs_best(workload: str) -> Callable[[Summary], tuple[float | None, str]]:
    """wsfast's uvicorn backend over the best of uvicorn's own backends (msgs/s)."""

    def measure(s: Summary) -> tuple[float | None, str]:
        ours = s.get(workload, {}).get("wsfast", {})
        per_cpu = ours.get("msgs_per_server_cpu_s_x_best")
        note = f"per server-CPU-s: {per_cpu:.2f}x" if per_cpu else ""
        return ours.get("msgs_per_s_x_best"), note

    return measure


def fanout_key(subscribers: int, size: int, deflate: bool) -> str:
    return f"fanout-{subscribers}-{size}B-deflate-{'on' if deflate else 'off'}"


def fanout_vs(key: str, other: str) -> Callable[[Summary], tuple[float | None, str]]:
    def measure(s: Summary) -> tuple[float | None, str]:
        row = s.get(key, {})
        ours, theirs = row.get("wsfast", {}), row.get(other, {})
        notes = []
        if ours.get("latency_p99_ms") is not None:
            notes.append(f"wsfast p99 {ours['latency_p99_ms']:.2f} ms")
        # Server CPU per delivery (user + kernel) is the fairer ratio when the Python
        # subscriber client, not the server, sets the pace.
        cpu_ours = (ours.get("server_user_us") or 0) + (ours.get("server_sys_us") or 0)
        cpu_theirs = (theirs.get("server_user_us") or 0) + (theirs.get("server_sys_us") or 0)
        if cpu_ours and cpu_theirs:
            notes.append(f"per server-CPU-s: {cpu_theirs / cpu_ours:.2f}x")
        bound = [
            name
            for name, r in (("wsfast", ours), (other, theirs))
            if (r.get("client_cpu") or 0) >= 0.85
        ]
        if bound:
            notes.append(f"client-bound ({', '.join(bound)}: client CPU >= 85%)")
        value = quotient(
            rate(s, key, "wsfast", "deliveries_per_s"), rate(s, key, other, "deliveries_per_s")
        )
        return value, "; ".join(notes)

    return measure


def fanout_targets() -> list[Target]:
    out = []
    for subscribers in (1000, 10000):
        for size in (64, 1024):
            for deflate in (False, True):
                key = fanout_key(subscribers, size, deflate)
                label = f"fan-out {size} B to {subscribers:,}, deflate {'on' if deflate else 'off'}"
                out.append(
                    Target(
                        f"{label} >= 5x websockets.broadcast",
                        "fanout",
                        5.0,
                        fanout_vs(key, "websockets"),
                    )
                )
                out.append(
                    Target(
                        f"{label} >= 2x uWebSockets publish",
                        "fanout",
                        2.0,
                        fanout_vs(key, "socketify"),
                    )
                )
    return out


DEFLATE_TAKEOVER = "feed 1 KiB deflate (1,024 messages), context takeover"
TARGETS = [
    Target("echo 64 KiB x64 >= 0.9x ceiling", "e2e", 0.9, vs_ceiling("echo-64KiB-c64")),
    Target("echo 1 MiB x64 >= 0.9x ceiling", "e2e", 0.9, vs_ceiling("echo-1MiB-c64")),
    Target("echo 64 B x64, batch >= 0.8x ceiling", "e2e", 0.8, vs_ceiling("echo-64B-c64")),
    Target(
        "echo 64 B x64, per-echo >= 0.8x ceiling",
        "e2e",
        0.8,
        vs_ceiling("echo-64B-c64-per-echo"),
    ),
    Target("echo 1 KiB x64, batch >= 0.8x ceiling", "e2e", 0.8, vs_ceiling("echo-1KiB-c64")),
    Target(
        "echo 1 KiB x64, per-echo >= 0.8x ceiling",
        "e2e",
        0.8,
        vs_ceiling("echo-1KiB-c64-per-echo"),
    ),
    Target(
        "text echo 1 KiB JSON x64 >= 0.95x binary",
        "e2e",
        0.95,
        text_vs_binary("echo-text-1KiB-c64"),
    ),
    Target(
        "text echo 1 KiB mixed-script UTF-8 x64 >= 0.95x binary",
        "e2e",
        0.95,
        text_vs_binary("echo-text-utf8-1KiB-c64"),
    ),
    Target(
        "compressed echo 1 KiB JSON x64 >= 4x websockets, same settings, level 6",
        "e2e",
        4.0,
        vs_server("deflate-1KiB-json-c64-same-l6", "websockets"),
    ),
    Target(
        "compressed echo 1 KiB JSON x64 >= 4x websockets, same settings, level 1",
        "e2e",
        4.0,
        vs_server("deflate-1KiB-json-c64-same-l1", "websockets"),
    ),
    Target("latency 64 B p50 <= 1.1x ceiling", "e2e", 1.1, latency_vs_ceiling, at_most=True),
    Target(
        "client round trip 256 B >= 1.1x picows (core)",
        "clients",
        1.1,
        client_vs("round trip 256 B", "picows"),
    ),
    Target("client feed 1 KiB >= 1.2x best peer", "clients", 1.2, client_vs("feed 1 KiB", None)),
    Target(
        "client feed 1 KiB deflate, context takeover >= 2x best peer",
        "clients",
        2.0,
        client_vs(DEFLATE_TAKEOVER, None),
    ),
    *(
        Target(
            f"asyncio echo {size} x64 (uvloop) >= {threshold}x {peer}, per server CPU-s",
            "e2e",
            threshold,
            row_vs(f"echo-{size}-c64", "wsfast-asyncio", peer),
        )
        for size in ("64B", "1KiB")
        for peer, threshold in (("websockets", 3.0), ("picows", 1.5))
    ),
    *(
        Target(
            f"client wss feed {size} >= 1.5x picows (core)",
            "clients",
            1.5,
            client_vs(f"wss feed {size}", "picows"),
        )
        for size in ("64 B", "1 KiB")
    ),
    *(
        Target(
            f"wss echo {size} x64 >= 1.5x picows, msgs/s",
            "e2e",
            1.5,
            row_vs(f"wss-echo-{size}-c64", "wsfast", "picows", "msgs_per_s"),
        )
        for size in ("64B", "1KiB")
    ),
    Target(
        "Cython handler echo 64 B x64 >= 1x Python handler, msgs/s",
        "e2e",
        1.0,
        row_vs("echo-64B-c64", "wsfast-cython", "wsfast", "msgs_per_s"),
    ),
    Target(
        "Cython handler echo 64 B x64 >= 0.8x ceiling",
        "e2e",
        0.8,
        cython_vs_ceiling("echo-64B-c64"),
    ),
    *(
        Target(
            f"FastAPI echo {size} x64 under uvicorn >= 2x best other backend, msgs/s",
            "uvicorn",
            2.0,
            uvicorn_vs_best(f"echo-{size}-c64"),
        )
        for size in ("64B", "1KiB")
    ),
    *fanout_targets(),
]


def tls_cost(s: Summary, clients: Summary) -> list[str]:
    """What TLS costs each library: its wss row over its ws row (information only)."""
    lines = [
        "The cost of TLS (wss over ws, same library; TLS 1.3 AES-128-GCM):",
        "",
        "| workload | library | wss/ws msgs/s | wss/ws per server-CPU-s |",
        "| --- | --- | ---: | ---: |",
    ]
    for size in ("64 B", "1 KiB"):
        for name in sorted(clients.get(f"wss feed {size}", {})):
            value = quotient(
                rate(clients, f"wss feed {size}", name), rate(clients, f"feed {size}", name)
            )
            if value is not None:
                lines.append(f"| client feed {size} | {name} | {value:.2f} | - |")
    for size in ("64B", "1KiB"):
        for name in ("wsfast", "picows", "websockets", "aiohttp"):
            wss, ws = f"wss-echo-{size}-c64", f"echo-{size}-c64"
            rates = quotient(rate(s, wss, name), rate(s, ws, name))
            cpu = quotient(
                rate(s, wss, name, "msgs_per_server_cpu_s"),
                rate(s, ws, name, "msgs_per_server_cpu_s"),
            )
            if rates is not None or cpu is not None:
                shown = [f"{v:.2f}" if v is not None else "-" for v in (rates, cpu)]
                lines.append(f"| {ws} | {name} | {shown[0]} | {shown[1]} |")
    return lines


def load(path: Path) -> tuple[Summary, dict[str, Any]] | None:
    if not path.exists():
        return None
    document = json.loads(path.read_text())
    if "results" in document:  # fanout.py: a list of runs, keyed here like the others
        summary: Summary = {}
        for r in document["results"]:
            key = fanout_key(r["subscribers"], r["size"], r["compression"])
            summary.setdefault(key, {})[r["server"]] = r
        return summary, document["meta"]
    return document["summary"], document["meta"]


def report(results: Path) -> str:
    """The targets as a markdown table, from the latest results in ``results``."""
    sources = {
        "e2e": load(results / "e2e-latest.json"),
        "clients": load(results / "clients-latest.json"),
        "uvicorn": load(results / "uvicorn-latest.json"),
        "fanout": load(results / "fanout-latest.json"),
    }
    lines = []
    for source, loaded in sources.items():
        if loaded is None:
            lines.append(f"{source}: no {source}-latest.json in {results}")
            continue
        meta = loaded[1]
        quick = " (quick run: indicative only)" if meta.get("quick") else ""
        commit = meta.get("machine", {}).get("commit", "?")
        reps = meta.get("reps", 1)
        lines.append(f"{source}: {meta['date']}, commit {commit}, {reps} reps{quick}")
    lines += ["", "| target | measured | status | notes |", "| --- | ---: | --- | --- |"]
    met = 0
    for target in TARGETS:
        loaded = sources[target.source]
        value, caveat = target.measure(loaded[0]) if loaded else (None, "")
        if value is None:
            status, shown = "n/a (not measured)", "-"
        else:
            ok = value <= target.threshold if target.at_most else value >= target.threshold
            met += ok
            status, shown = ("met" if ok else "NOT met"), f"{value:.2f}x"
        lines.append(f"| {target.name} | {shown} | {status} | {caveat} |")
    lines += ["", f"{met} of {len(TARGETS)} targets met."]
    if sources["e2e"] or sources["clients"]:
        e2e, clients = (sources[k][0] if sources[k] else {} for k in ("e2e", "clients"))
        lines += ["", *tls_cost(e2e, clients)]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    results = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent / "results"
    text = report(results)
    print(text, end="")
    if results.is_dir():
        (results / "targets-latest.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
