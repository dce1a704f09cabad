# SPDX-License-Identifier: MIT
"""Client benchmark: how fast each Python WebSocket client consumes a feed.

    python bench/e2e/run_clients.py            # full run (about 8 minutes on 2 cores)
    python bench/e2e/run_clients.py --quick    # 1 repetition, short runs, under a minute

What it does, in order:

1. Reuses ``bench/e2e/run.py`` (read-only) to create or refresh ``bench/.venv`` (peers from
   PyPI, wsfast installed from this checkout, non-editable), then adds the client-only
   peers (``websocket-client``, ``aiofastnet``) to it.
2. Builds ``feed_server.c`` with gcc (-O2 -Wall -Wextra -Werror, -lz).
3. For every workload, starts one feed server pinned to CPU 0 and runs every client script
   of ``clients/`` in turn, pinned to CPU 1, in a different order each repetition. Feed
   workloads first calibrate each client with a short run, then ask the server (``?count=N``)
   for as many messages as that client consumes in about ``--seconds`` (``--quick`` skips
   the calibration and asks every client for the same, small count).
4. Checks every run (message count and payload bytes equal what the server sent, deflate
   and context takeover negotiated as the workload says, every echo equal to what was
   sent), takes medians over the repetitions and prints a markdown table; writes the raw
   runs and the medians to ``<out>/clients-<timestamp>.json`` and ``clients-latest.json``,
   the table to ``clients-latest.md`` and a chart to ``clients-latest.png``; ``<out>`` is
   ``bench/results``, or with ``--quick`` the git-ignored ``bench/results/scratch``.

Everything listens on and connects to 127.0.0.1 only; every child runs in its own process
group, is bounded in time, and is killed on exit.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as e2e  # noqa: E402  (bench/e2e/run.py: venv, versions, machine, kill)

CLIENTS_DIR = HERE / "clients"
RESULTS = e2e.RESULTS
SERVER_CPU = e2e.SERVER_CPU
CLIENT_CPU = e2e.CLIENT_CPU
EXTRA_PEERS = ["websocket-client", "aiofastnet"]


@dataclass(frozen=True)
class Client:
    name: str
    script: str
    variant: str = ""
    wsfast: bool = False  # wsfast's own clients are not peers
    feed_only: bool = False  # a receive-path variant: only in feeds with `variants`
    rtt_only: bool = False  # a latency option: measured in round trips only
    deflate_only: bool = False  # a max_size setting: only in compressed feeds


CLIENTS = [
    Client("wsfast", "wsfast_sync.py", wsfast=True),
    Client("wsfast (max_size=64 KiB)", "wsfast_sync.py", "max=65536", True, deflate_only=True),
    # wsfast's default max_size (the "wsfast" row, like the peers, has no limit)
    Client("wsfast (max_size=1 MiB)", "wsfast_sync.py", "max=1048576", True, deflate_only=True),
    Client("wsfast (recv_many)", "wsfast_sync.py", "many", wsfast=True, feed_only=True),
    Client("wsfast (run handler)", "wsfast_sync.py", "run", wsfast=True, feed_only=True),
    Client("wsfast (recv_view, no str)", "wsfast_sync.py", "view", wsfast=True, feed_only=True),
    # The Cython handler API: examples/cython_handler's FeedCounter through run(), each
    # payload in place (built by run.py's build_cython_example).
    Client("wsfast (Cython handler)", "wsfast_sync.py", "cython", wsfast=True, feed_only=True),
    Client("wsfast (busy_poll=50us)", "wsfast_sync.py", "busy", wsfast=True, rtt_only=True),
    Client("wsfast-asyncio", "wsfast_asyncio.py", wsfast=True),
    Client("wsfast-asyncio (asyncio loop)", "wsfast_asyncio.py", "asyncio", True, feed_only=True),
    Client("picows", "picows_core.py"),
    Client("picows-websockets", "picows_websockets.py"),
    Client("aiohttp", "aiohttp_client.py"),
    Client("websockets-asyncio", "websockets_asyncio.py"),
    Client("websockets-sync", "websockets_sync.py"),
    Client("websocket-client", "websocket_client.py"),
]


# Other configurations of the same peers, run with --alt-configs, to check that the default
# rows above use each peer's best configuration.
ALT_CLIENTS = [
    Client("picows (no aiofastnet)", "picows_core.py", "noaiofastnet"),
    Client("picows (asyncio loop)", "picows_core.py", "asyncio"),
    Client("picows-websockets (asyncio loop)", "picows_websockets.py", "asyncio"),
    Client("aiohttp (asyncio loop)", "aiohttp_client.py", "asyncio"),
    Client("websockets-asyncio (asyncio loop)", "websockets_asyncio.py", "asyncio"),
]


@dataclass(frozen=True)
class Workload:
    name: str
    mode: str  # "feed" or "rtt"
    size: int
    deflate: bool = False
    takeover: bool = False  # deflate: the server keeps its context across messages
    message: str = ""  # a payload of run.py sent over and over ("tick"), or the corpus
    calibrate: int = 0  # feed: messages in the calibration run
    variants: bool = True  # feed: the receive-path variants run too
    tls: bool = False  # wss: the feed server's TLS (same certificate and cipher for all)


DEFLATE = "deflate (1,024 messages)"
TICK = "JSON deflate, precompressed"
WORKLOADS = [
    Workload("feed 64 B", "feed", 64, calibrate=30000),
    Workload("feed 1 KiB", "feed", 1024, calibrate=20000),
    Workload(f"feed 1 KiB {DEFLATE}, no context takeover", "feed", 1024, True, calibrate=10000),
    Workload(
        f"feed 1 KiB {DEFLATE}, context takeover",
        "feed",
        1024,
        deflate=True,
        takeover=True,
        calibrate=10000,
        variants=False,
    ),
    # The traffic of the issue on max_size: one 1 KiB JSON tick compressed once (level 6,
    # window 15), sent over and over; it compresses about 4.7x.
    Workload(
        f"feed 1 KiB {TICK}, no context takeover",
        "feed",
        1024,
        deflate=True,
        message="tick",
        calibrate=10000,
        variants=False,
    ),
    Workload(
        f"feed 1 KiB {TICK}, context takeover",
        "feed",
        1024,
        deflate=True,
        takeover=True,
        message="tick",
        calibrate=10000,
        variants=False,
    ),
    Workload("round trip 256 B", "rtt", 256),
    # wss: TLS 1.3 TLS_AES_128_GCM_SHA256 (the feed server offers only that), the
    # certificate of run.py's tls_files(), trusted by every client through SSL_CERT_FILE.
    Workload("wss feed 64 B", "feed", 64, calibrate=30000, variants=False, tls=True),
    Workload("wss feed 1 KiB", "feed", 1024, calibrate=20000, variants=False, tls=True),
]
# --quick (a smoke test): every client script and variant, the feed server's plain feed,
# its --message and --context-takeover paths, and its echo mode
QUICK = ["feed 1 KiB", f"feed 1 KiB {TICK}, context takeover", "round trip 256 B", "wss feed 64 B"]
KINDS = 1024  # distinct messages in the feed corpus, cycled
MIN_COUNT, MAX_COUNT = 10_000, 20_000_000


# ---- environment ---------------------------------------------------------------------


def ensure_env(reinstall: bool) -> None:
    e2e.ensure_venv(reinstall)
    marker = e2e.VENV / ".client-peers-installed"
    if not marker.exists() or marker.read_text().split() != EXTRA_PEERS:
        e2e.log(f"installing client peers from PyPI: {' '.join(EXTRA_PEERS)}")
        e2e.pip(*EXTRA_PEERS)
        marker.write_text("\n".join(EXTRA_PEERS) + "\n")


def build_feed_server() -> Path:
    e2e.BUILD.mkdir(exist_ok=True)
    source, binary = HERE / "feed_server.c", e2e.BUILD / "feed_server"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        e2e.log("gcc feed_server.c")
        cmd = ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(source)]
        subprocess.run([*cmd, "-lz", "-lssl", "-lcrypto"], check=True)
    return binary


def client_versions() -> dict[str, str]:
    found = e2e.versions()
    code = (
        "import importlib.metadata as m, json\n"
        f"names = {EXTRA_PEERS!r}\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([str(e2e.venv_python()), "-c", code], capture_output=True, text=True)
    if result.returncode == 0:
        found.update(json.loads(result.stdout))
    return found


# ---- processes -----------------------------------------------------------------------


def message_file(name: str) -> Path:
    """Write the named payload of run.py (``tick``) to the build directory."""
    payloads = {"tick": e2e.tick_payload}
    path = e2e.BUILD / f"feed-{name}.json"
    path.write_bytes(payloads[name]())
    return path


class FeedServer:
    """The native feed/echo server, pinned to CPU 0; its JSON lines read by a thread."""

    def __init__(self, binary: Path, w: Workload, spin: bool, max_seconds: int) -> None:
        cmd = [str(binary), "--mode", "echo" if w.mode == "rtt" else "feed"]
        cmd += ["--size", str(w.size), "--kinds", str(KINDS), "--count", str(MIN_COUNT)]
        cmd += ["--max-seconds", str(max_seconds), "--max-conns", "4"]
        if w.message:
            cmd += ["--message", str(message_file(w.message))]
        if w.deflate:
            cmd.append("--deflate")
        if w.takeover:
            cmd.append("--context-takeover")
        if spin and w.mode == "rtt":
            cmd.append("--spin")
        if w.tls:
            cmd += ["--tls", *map(str, e2e.tls_files())]
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *cmd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        e2e.children.append(self.proc)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.next_line(10.0)
        if first is None or first.get("event") != "listening":
            raise RuntimeError(f"feed_server did not start: {first}")
        self.info = first
        self.port = int(first["port"])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                self.lines.put({"event": "garbage", "line": line.strip()})

    def next_line(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def next_conn(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self.next_line(left)
            if line is not None and line.get("event") == "conn":
                return line
        return None

    def drain(self) -> None:
        """Drop reports left over from an earlier (failed) run."""
        while self.next_line(0.0) is not None:
            pass

    def stop(self) -> dict[str, Any] | None:
        e2e.kill(self.proc)
        exit_line = None
        while (line := self.next_line(0.5)) is not None:
            if line.get("event") == "exit":
                exit_line = line
        return exit_line


def tls_env() -> dict[str, str]:
    """The environment of a wss client: our certificate as the only trusted one (Python's
    ssl and OpenSSL read SSL_CERT_FILE; websocket-client its own variable)."""
    cert = str(e2e.tls_files()[0])
    return {**os.environ, "SSL_CERT_FILE": cert, "WEBSOCKET_CLIENT_CA_BUNDLE": cert}


def run_client(
    client: Client, w: Workload, port: int, count: int, duration: float, timeout: float
) -> dict[str, Any]:
    scheme = "wss" if w.tls else "ws"
    url = f"{scheme}://127.0.0.1:{port}/" + (f"?count={count}" if w.mode == "feed" else "")
    args = ["--url", url, "--mode", w.mode]
    if w.deflate:
        args.append("--deflate")
    if w.mode == "rtt":
        args += ["--size", str(w.size), "--duration", str(duration)]
    if client.variant:
        args += ["--variant", client.variant]
    cmd = ["taskset", "-c", CLIENT_CPU, str(e2e.venv_python()), str(CLIENTS_DIR / client.script)]
    proc = subprocess.Popen(
        [*cmd, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=str(CLIENTS_DIR),
        start_new_session=True,
        env=tls_env() if w.tls else None,
    )
    e2e.children.append(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    finally:
        e2e.kill(proc)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:200]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# ---- one run -------------------------------------------------------------------------


def check_feed(
    result: dict[str, Any], conn: dict[str, Any] | None, w: Workload, count: int
) -> str | None:
    """Why a feed run is not valid, or None."""
    if conn is None:
        return "no report from the server"
    if not conn.get("complete") or conn.get("frames") != count:
        return f"server sent {conn.get('frames')} of {count} frames"
    if result.get("msgs") != count:
        return f"received {result.get('msgs')} of {count} messages"
    if result.get("bytes") != conn.get("payload_bytes"):
        return f"payload bytes {result.get('bytes')} != {conn.get('payload_bytes')}"
    if conn.get("deflate") != w.deflate:
        return "permessage-deflate not negotiated" if w.deflate else "deflate negotiated"
    if w.deflate and conn.get("context_takeover") != w.takeover:
        return f"context takeover {conn.get('context_takeover')}, expected {w.takeover}"
    return None


def one_run(
    server: FeedServer, client: Client, w: Workload, count: int, duration: float
) -> dict[str, Any]:
    timeout = 60.0 if w.mode == "feed" else duration + 30.0
    server.drain()
    result = run_client(client, w, server.port, count, duration, timeout)
    record: dict[str, Any] = {"workload": w.name, "client": client.name, "count": count}
    record.update(result)
    record.pop("pid", None)
    record["library"] = record.pop("client", client.name)
    record["client"] = client.name
    if "skipped" in result or "error" in result:
        return record
    conn = server.next_conn(5.0)
    if conn is not None:
        record["server_cpu_s"] = conn.get("cpu_s")
        record["server_cpu_share"] = conn["cpu_s"] / max(conn["seconds"], 1e-9)
        record["deflate"] = conn.get("deflate")
        record["context_takeover"] = conn.get("context_takeover")
        if conn.get("frames"):
            record["wire_bytes_per_msg"] = conn["wire_bytes"] / conn["frames"]
    if w.mode == "feed":
        problem = check_feed(result, conn, w, count)
        if problem:
            record["error"] = problem
            return record
        record["msgs_per_s"] = result["msgs"] / result["seconds"]
        record["cpu_s_per_m"] = result["cpu_s"] / result["msgs"] * 1e6
    else:
        if result.get("mismatches"):
            record["error"] = f"{result['mismatches']} echoes differ from what was sent"
            return record
        if not result.get("round_trips"):
            record["error"] = "no round trip"
            return record
        record["msgs_per_s"] = result["round_trips"] / result["seconds"]
        record["cpu_s_per_m"] = result["cpu_s"] / result["round_trips"] * 1e6
    return record


def brief(r: dict[str, Any]) -> str:
    if "skipped" in r:
        return f"skipped: {r['skipped']}"
    if r.get("error"):
        return f"ERROR {r['error']}"
    text = f"{r['msgs_per_s']:,.0f}/s, {r['cpu_s_per_m']:.2f} CPU-s/M"
    if "p50_us" in r:
        text += f", p50 {r['p50_us']:.1f} us p99 {r['p99_us']:.1f} us"
    return text + f", server CPU {r.get('server_cpu_share', 0):.2f}"


def runs_in(c: Client, w: Workload) -> bool:
    """Whether a client row is measured in a workload."""
    if w.mode != "feed":
        return not c.feed_only and not c.deflate_only
    if c.rtt_only or (c.deflate_only and not w.deflate):
        return False
    return w.variants or not c.feed_only


def run_workload(
    binary: Path,
    w: Workload,
    clients: list[Client],
    reps: int,
    seconds: float,
    rtt_duration: float,
    spin: bool,
    quick: bool,
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    server = FeedServer(binary, w, spin, max_seconds=900)
    try:
        counts: dict[str, int] = {}
        active = [c for c in clients if runs_in(c, w)]
        if w.mode == "feed" and quick:
            counts = {c.name: w.calibrate for c in clients}  # no calibration
        elif w.mode == "feed":
            for client in list(active):
                cal = one_run(server, client, w, w.calibrate, rtt_duration)
                if "skipped" in cal:
                    e2e.log(f"  {w.name:20} {client.name:20} {brief(cal)}")
                    runs.append(cal | {"rep": -1})
                    active.remove(client)
                    continue
                if cal.get("error"):
                    e2e.log(f"  {w.name:20} {client.name:20} calibration {brief(cal)}")
                    runs.append(cal | {"rep": 0, "calibration": True})
                    active.remove(client)
                    continue
                wanted = int(cal["msgs_per_s"] * seconds)
                counts[client.name] = max(MIN_COUNT, min(MAX_COUNT, wanted))
        for rep in range(reps):
            shift = rep % len(active) if active else 0
            for client in active[shift:] + active[:shift]:
                r = one_run(server, client, w, counts.get(client.name, 0), rtt_duration)
                r["rep"] = rep
                runs.append(r)
                e2e.log(f"  {w.name:20} {client.name:20} rep {rep}: {brief(r)}")
                if "skipped" in r:
                    active.remove(client)
    finally:
        exit_line = server.stop()
        if exit_line:
            e2e.log(f"  feed_server CPU {exit_line['cpu_user'] + exit_line['cpu_sys']:.2f} s")
    return runs


# ---- summary -------------------------------------------------------------------------

METRICS = [
    "msgs_per_s",
    "cpu_s_per_m",
    "server_cpu_share",
    "p50_us",
    "p99_us",
    "p999_us",
    "wire_bytes_per_msg",
]


def summarize(runs: list[dict[str, Any]], clients: list[Client]) -> dict[str, Any]:
    """Medians per workload and client; ratios to the best peer (a non-wsfast client)."""
    peers = {c.name for c in clients if not c.wsfast}
    order = {c.name: i for i, c in enumerate(clients)}
    runs = sorted(runs, key=lambda r: order.get(r["client"], len(order)))
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for r in runs:
        entry = summary.setdefault(r["workload"], {}).setdefault(r["client"], {"runs": []})
        entry["runs"].append(r)
    for per_client in summary.values():
        for entry in per_client.values():
            rs = entry.pop("runs")
            good = [r for r in rs if r.get("rep", 0) >= 0 and "msgs_per_s" in r]
            good = [r for r in good if not r.get("error")]
            entry["reps_ok"] = len(good)
            entry["skipped"] = next((r["skipped"] for r in rs if "skipped" in r), None)
            entry["errors"] = sorted({str(r["error"]) for r in rs if r.get("error")})
            entry["config"] = next((r["config"] for r in good if "config" in r), None)
            for metric in METRICS:
                values = [r[metric] for r in good if r.get(metric) is not None]
                if values:
                    entry[metric] = statistics.median(values)
        ranked = [
            (e["msgs_per_s"], name)
            for name, e in per_client.items()
            if name in peers and e.get("msgs_per_s")
        ]
        if not ranked:
            continue
        best_rate, best = max(ranked)
        for entry in per_client.values():
            entry["best_peer"] = best
            if entry.get("msgs_per_s"):
                entry["x_best_peer"] = entry["msgs_per_s"] / best_rate
    return summary


def fmt(value: Any, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def table(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        f"Client benchmark ({meta['date']}, medians of {meta['reps']} reps, about "
        f"{meta['seconds']} s per feed run, {meta['rtt_duration']} s per round-trip run; feed "
        f"server on CPU {SERVER_CPU}, client on CPU {CLIENT_CPU}; {meta['machine']['cpu']}, "
        f"commit {meta['machine']['commit']})",
    ]
    for workload, per_client in summary.items():
        rtt = workload.startswith("round trip")
        best = next((e.get("best_peer") for e in per_client.values() if e.get("best_peer")), "-")
        wire = [e["wire_bytes_per_msg"] for e in per_client.values() if e.get("wire_bytes_per_msg")]
        on_wire = f"; {statistics.median(wire):,.0f} B per frame on the wire" if wire else ""
        lines += ["", f"**{workload}** (best peer: {best}{on_wire})", ""]
        if rtt:
            lines += [
                "| client | round trips/s | x best peer | p50 us | p99 us | p99.9 us | "
                "CPU-s per M round trips | config / notes |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
            ]
        else:
            lines += [
                "| client | msgs/s | x best peer | CPU-s per M msgs | server CPU | "
                "config / notes |",
                "| --- | ---: | ---: | ---: | ---: | --- |",
            ]
        for name, e in per_client.items():
            notes = e.get("config") or ""
            if e.get("skipped"):
                notes = f"n/a: {e['skipped']}"
            if e.get("errors"):
                notes += (" ERRORS: " + "; ".join(e["errors"]))[:160]
            ratio = f"{e['x_best_peer']:.2f}x" if e.get("x_best_peer") else "-"
            if rtt:
                lines.append(
                    f"| {name} | {fmt(e.get('msgs_per_s'))} | {ratio} | "
                    f"{fmt(e.get('p50_us'), '.1f')} | {fmt(e.get('p99_us'), '.1f')} | "
                    f"{fmt(e.get('p999_us'), '.1f')} | {fmt(e.get('cpu_s_per_m'), '.1f')} | "
                    f"{notes} |"
                )
            else:
                lines.append(
                    f"| {name} | {fmt(e.get('msgs_per_s'))} | {ratio} | "
                    f"{fmt(e.get('cpu_s_per_m'), '.2f')} | "
                    f"{fmt(e.get('server_cpu_share'), '.2f')} | {notes} |"
                )
    return "\n".join(lines) + "\n"


# matplotlib lives in the bench venv, not necessarily in the interpreter running this file.
CHART_CODE = r"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import EngFormatter

data = json.load(sys.stdin)
summary = data["summary"]
workloads = [w for w in data["workloads"] if w in summary]
cols = min(4, len(workloads))
rows = (len(workloads) + cols - 1) // cols
fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 5.5 * rows), squeeze=False)
for ax in axes.flat[len(workloads):]:
    ax.set_visible(False)
for ax, workload in zip(axes.flat, workloads):
    per = summary[workload]
    names = [n for n in data["clients"] if per.get(n, {}).get("msgs_per_s")]
    values = [per[n]["msgs_per_s"] for n in names]
    colors = ["#d62728" if n.startswith("wsfast") else "#1f77b4" for n in names]
    bars = ax.barh(names[::-1], values[::-1], color=colors[::-1])
    for bar, n in zip(bars, names[::-1]):
        x = per[n].get("x_best_peer")
        label = f" {x:.2f}x" if x else ""
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, label, va="center",
                fontsize=8)
    rtt = workload.startswith("round trip")
    ax.set_title(workload, fontsize=9)
    ax.set_xlabel("round trips/s" if rtt else "messages/s")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.margins(x=0.25)
    ax.grid(axis="x", alpha=0.3)
fig.suptitle(data["title"], fontsize=10)
fig.tight_layout()
fig.savefig(data["path"], dpi=110)
"""


def chart(summary: dict[str, Any], meta: dict[str, Any], path: Path, title: str) -> None:
    """Bars of msgs/s (round trips/s) per client, one panel per workload, in run order."""
    order = {
        "workloads": [w["name"] for w in meta["workloads"]],
        "clients": [c["name"] for c in meta["clients"]],
    }
    payload = json.dumps({"summary": summary, "path": str(path), "title": title} | order)
    proc = subprocess.run(
        [str(e2e.venv_python()), "-c", CHART_CODE], input=payload, text=True, capture_output=True
    )
    if proc.returncode != 0:
        e2e.log(f"chart failed: {proc.stderr[-500:]}")


# ---- main ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="1 rep, short runs (< 60 s)")
    parser.add_argument("--reps", type=int, help="repetitions (default 3, --quick 1)")
    parser.add_argument("--seconds", type=float, help="seconds per feed run (default 1.0)")
    parser.add_argument(
        "--rtt-duration", type=float, help="seconds per round-trip run (default 1.5)"
    )
    parser.add_argument("--only", help="comma-separated client names")
    parser.add_argument("--workloads", help="comma-separated substrings of workload names")
    parser.add_argument("--alt-configs", action="store_true", help="add other peer configs")
    parser.add_argument("--no-spin", action="store_true", help="echo server sleeps in epoll")
    parser.add_argument("--reinstall", action="store_true", help="reinstall wsfast in the venv")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument(
        "--out", type=Path, help="results directory (default bench/results; --quick: scratch)"
    )
    args = parser.parse_args(argv)
    out: Path = args.out or (e2e.SCRATCH if args.quick else RESULTS)
    reps = args.reps or (1 if args.quick else 3)
    seconds = args.seconds or (0.3 if args.quick else 1.0)
    rtt_duration = args.rtt_duration or (0.3 if args.quick else 1.5)
    if not (1 <= reps <= 20 and 0 < seconds <= 10 and 0 < rtt_duration <= 10):
        parser.error("reps in 1..20, seconds and rtt-duration in (0, 10]")
    clients = CLIENTS + (ALT_CLIENTS if args.alt_configs else [])
    if args.only:
        wanted = set(args.only.split(","))
        clients = [c for c in clients if c.name in wanted]
    selected = [w for w in WORKLOADS if w.name in QUICK] if args.quick else WORKLOADS
    if args.workloads:
        keys = args.workloads.split(",")
        selected = [w for w in WORKLOADS if any(k in w.name for k in keys)]
    if not clients or not selected:
        parser.error("no client or no workload selected")

    started = time.monotonic()
    now = _dt.datetime.now(_dt.UTC)
    ensure_env(args.reinstall)
    e2e.build_cython_example()
    binary = build_feed_server()
    meta: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "reps": reps,
        "quick": args.quick,
        "seconds": seconds,
        "rtt_duration": rtt_duration,
        "spin": not args.no_spin,
        "kinds": KINDS,
        "machine": e2e.machine(),
        "versions": client_versions(),
        "pinning": {"server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU},
        "workloads": [asdict(w) for w in selected],
        "clients": [asdict(c) for c in clients],
    }
    e2e.log(f"{len(selected)} workloads x {len(clients)} clients x {reps} reps")
    runs: list[dict[str, Any]] = []
    with e2e.terminate_on_signal():
        for w in selected:
            spin = not args.no_spin
            runs += run_workload(binary, w, clients, reps, seconds, rtt_duration, spin, args.quick)
    summary = summarize(runs, clients)
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, "summary": summary, "runs": runs}
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(document, indent=1, sort_keys=True)
    (out / f"clients-{stamp}.json").write_text(text)
    (out / "clients-latest.json").write_text(text)
    rendered = table(summary, meta)
    (out / "clients-latest.md").write_text(rendered)
    print(rendered)
    if not args.no_chart:
        title = (
            f"wsfast client benchmark, {meta['date']}, medians of {reps} reps; "
            f"feed server CPU {SERVER_CPU}, client CPU {CLIENT_CPU}"
        )
        chart(summary, meta, out / "clients-latest.png", title)
    e2e.log(f"done in {meta['elapsed_s']} s; results in {out}/clients-{stamp}.json")
    measured = [r for r in runs if "msgs_per_s" in r or r.get("error")]
    failed = [r for r in measured if r.get("error")]
    return 1 if not measured or len(failed) == len(measured) else 0


if __name__ == "__main__":
    sys.exit(main())
