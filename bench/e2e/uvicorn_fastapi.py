# SPDX-License-Identifier: MIT
"""End-to-end benchmark: a FastAPI echo endpoint under uvicorn, per WebSocket backend.

    python bench/e2e/uvicorn_fastapi.py            # 3 reps x 3 s (about 4 minutes)
    python bench/e2e/uvicorn_fastapi.py --quick    # smoke test: 1 rep x 1 s

The same app (``servers/fastapi_echo.py``: FastAPI's ``receive_text`` / ``send_text``
endpoint) runs under uvicorn with ``--ws wsfast.uvicorn:WSProtocol`` and with uvicorn's
own backends ``websockets``, ``websockets-sansio`` and ``wsproto``; the C load generator
(``loadgen.c``) drives it. As in ``run.py``: server pinned to CPU 0, load generator to
CPU 1, servers round robin within each repetition, medians over repetitions, and the
server's CPU time from ``/proc`` gives messages per server-CPU-second.

Unlike ``run.py``, the servers run in this interpreter's environment (uvicorn,
FastAPI and the backends come from wsfast's ``test`` extras), so install wsfast there
first (``make build``). Results: ``uvicorn-latest.{json,md}`` in ``--out`` (default
bench/results; with ``--quick`` the git-ignored bench/results/scratch).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as e2e  # noqa: E402  (the harness next to this file)

BACKENDS = {
    "wsfast": "wsfast.uvicorn:WSProtocol",
    "websockets": "websockets",
    "websockets-sansio": "websockets-sansio",
    "wsproto": "wsproto",
}
OURS = "wsfast"
METRICS = ("msgs_per_s", "msgs_per_server_cpu_s", "server_cpu_share", "p50_us", "p99_us")


@dataclass
class Workload:
    id: str
    mode: str  # loadgen mode: echo | latency
    size: int
    conns: int = 1
    window: int = 1


WORKLOADS = [
    Workload("echo-64B-c64", "echo", 64, 64, 16),
    Workload("echo-1KiB-c64", "echo", 1024, 64, 16),
    Workload("echo-64B-c1", "echo", 64, 1, 16),
    Workload("latency-64B", "latency", 64),
]


def text_payload(size: int) -> bytes:
    """ASCII text of ``size`` bytes (JSON-looking; FastAPI's receive_text decodes it)."""
    if size >= 256:
        return e2e.json_payload(size)
    head = b'{"type":"tick","seq":1234567,"pad":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def versions() -> dict[str, str]:
    import importlib.metadata as metadata
    import platform

    names = ["wsfast", "uvicorn", "fastapi", "starlette", "websockets", "wsproto", "uvloop"]
    found = {}
    for name in [*names, "httptools"]:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "-"
    found["python"] = platform.python_version()
    return found


def run_all(
    workloads: list[Workload], backends: list[str], reps: int, warmup: float, duration: float
) -> list[dict[str, Any]]:
    port = e2e.PortAllocator(21000 + os.getpid() % 2000 * 10)
    servers: dict[str, e2e.ServerProcess] = {}
    runs: list[dict[str, Any]] = []
    payloads = {}
    for w in workloads:
        path = e2e.BUILD / f"text-{w.size}.txt"
        path.write_bytes(text_payload(w.size))
        payloads[w.size] = path
    try:
        for w in workloads:
            for rep in range(reps):
                order = backends[rep % len(backends) :] + backends[: rep % len(backends)]
                for name in order:
                    server = servers.get(name)
                    if server is None or not server.alive():
                        p = port()
                        cmd = [sys.executable, str(HERE / "servers" / "fastapi_echo.py")]
                        cmd += ["--port", str(p), "--ws", BACKENDS[name]]
                        server = servers[name] = e2e.start_server(name, p, cmd)
                    args = [w.mode, "--port", str(server.port), "--server-pid", str(server.pid)]
                    args += ["--conns", str(w.conns), "--window", str(w.window)]
                    args += ["--text", "--payload", str(payloads[w.size])]
                    args += ["--warmup", str(warmup), "--duration", str(duration)]
                    result = e2e.run_loadgen(args, warmup + duration + 60)
                    if not server.alive():
                        tail = e2e.server_output(server)[-300:]
                        result["error"] = f"{result.get('error', '')}; server died: {tail}"
                    record = {"workload": w.id, "backend": name, "rep": rep, **result}
                    runs.append(record)
                    e2e.log(f"  {w.id:16} {name:18} rep {rep}: {brief(record)}")
    finally:
        for server in servers.values():
            e2e.kill(server.proc)
    return runs


def brief(record: dict[str, Any]) -> str:
    if record.get("error"):
        return f"ERROR {record['error'][:100]}"
    text = f"{record.get('msgs_per_s', 0):,.0f} msgs/s"
    if record.get("p50_us"):
        text += f", p50 {record['p50_us']:.1f} us, p99 {record['p99_us']:.1f} us"
    return text + f", server CPU {record.get('server_cpu_share', 0):.2f}"


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Medians per workload and backend; wsfast's ratio to the best other backend."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for r in runs:
        entry = summary.setdefault(r["workload"], {}).setdefault(r["backend"], {"runs": []})
        entry["runs"].append(r)
    for per_backend in summary.values():
        for entry in per_backend.values():
            good = [r for r in entry.pop("runs") if not r.get("error")]
            entry["reps_ok"] = len(good)
            for metric in METRICS:
                values = [r[metric] for r in good if r.get(metric) is not None]
                if values:
                    entry[metric] = statistics.median(values)
        ours = per_backend.get(OURS, {})
        others = {k: v for k, v in per_backend.items() if k != OURS}
        for metric, better in (
            ("msgs_per_s", max),
            ("msgs_per_server_cpu_s", max),
            ("p50_us", min),
        ):
            values = [v[metric] for v in others.values() if v.get(metric)]
            if values and ours.get(metric):
                best = better(values)
                # Latency: lower is better, so the ratio is theirs over ours.
                ours[f"{metric}_x_best"] = (
                    best / ours[metric] if metric == "p50_us" else ours[metric] / best
                )
    return summary


def table(summary: dict[str, dict[str, dict[str, Any]]], meta: dict[str, Any]) -> str:
    v = meta["versions"]
    lines = [
        "# FastAPI echo under uvicorn, per WebSocket backend",
        "",
        f"{meta['date']}; {meta['reps']} x {meta['duration']} s after {meta['warmup']} s "
        f"warm-up{' (--quick smoke run: noisy)' if meta['quick'] else ''}; "
        f"{meta['machine']['cpu']}, server on CPU 0, load generator on CPU 1; "
        f"wsfast {v['wsfast']}, uvicorn {v['uvicorn']}, FastAPI {v['fastapi']}, "
        f"Starlette {v['starlette']}, websockets {v['websockets']}, wsproto {v['wsproto']}, "
        f"uvloop {v['uvloop']}, httptools {v['httptools']}, Python {v['python']}. "
        "x best = wsfast over the best of the other backends.",
        "",
        "| workload | backend | msgs/s | msgs per server CPU-s | server CPU | p50 us | p99 us |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workload, per_backend in summary.items():
        for name in BACKENDS:
            e = per_backend.get(name)
            if e is None:
                continue
            rate = e2e.fmt(e.get("msgs_per_s"))
            eff = e2e.fmt(e.get("msgs_per_server_cpu_s"))
            p50 = e2e.fmt(e.get("p50_us"), ".1f")
            if name == OURS:
                rate += f" ({e2e.ratio(e, 'msgs_per_s_x_best')} best)"
                eff += f" ({e2e.ratio(e, 'msgs_per_server_cpu_s_x_best')} best)"
                if e.get("p50_us_x_best"):
                    p50 += f" ({e2e.ratio(e, 'p50_us_x_best')} best)"
            lines.append(
                f"| {workload} | {name} | {rate} | {eff} | "
                f"{e2e.fmt(e.get('server_cpu_share'), '.2f')} | {p50} | "
                f"{e2e.fmt(e.get('p99_us'), '.1f')} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 rep x 1 s: smoke test")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--only", default="", help="comma-separated backends and/or workloads")
    parser.add_argument(
        "--out", type=Path, help="results directory (default bench/results; --quick: scratch)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.duration, args.warmup = 1, 1.0, 0.5
    for tool in ("gcc", "taskset"):
        if not shutil.which(tool):
            e2e.log(f"{tool} is required")
            return 2
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    backends = [b for b in BACKENDS if b in only] or list(BACKENDS)
    wanted = [x for x in only if x not in BACKENDS]
    workloads = [w for w in WORKLOADS if not wanted or any(w.id.startswith(x) for x in wanted)]
    e2e.build_tools()
    now = _dt.datetime.now(_dt.UTC)
    meta: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "reps": args.reps,
        "duration": args.duration,
        "warmup": args.warmup,
        "quick": args.quick,
        "machine": e2e.machine(),
        "versions": versions(),
        "backends": {b: BACKENDS[b] for b in backends},
        "workloads": [w.__dict__ for w in workloads],
    }
    e2e.log(f"{len(workloads)} workloads x {len(backends)} backends x {args.reps} reps")
    with e2e.terminate_on_signal():
        runs = run_all(workloads, backends, args.reps, args.warmup, args.duration)
    summary = summarize(runs)
    document = {"meta": meta, "summary": summary, "runs": runs}
    out: Path = args.out or (e2e.SCRATCH if args.quick else e2e.RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    (out / "uvicorn-latest.json").write_text(json.dumps(document, indent=1))
    rendered = table(summary, meta)
    (out / "uvicorn-latest.md").write_text(rendered)
    print(rendered)
    return 1 if runs and all(r.get("error") for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
