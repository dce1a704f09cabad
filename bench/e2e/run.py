# SPDX-License-Identifier: MIT
"""End-to-end benchmark: wsfast against picows, websockets, aiohttp and a raw-TCP ceiling.

    python bench/e2e/run.py                      # full run (about 15 minutes on 2 cores)
    python bench/e2e/run.py --quick --only wsfast,ceiling   # smoke test, under a minute

What it does, in order:

1. Creates (or reuses) ``bench/.venv`` with the peers from PyPI (picows, uvloop,
   websockets, aiohttp, matplotlib) and installs wsfast from this checkout with a
   normal, non-editable ``pip install`` (rebuilt whenever the sources changed).
2. Builds the C tools (``loadgen.c``, ``tcp_echo.c``) with gcc into ``bench/e2e/build``.
3. For every workload and repetition, runs each server in turn (round robin, so slow
   drift of the machine hits every server alike), the server pinned to CPU 0 and the
   load generator to CPU 1 with ``taskset`` (``--loadgen-cpus 1,2,3``: one load
   generator per CPU, the connections split between them, measuring the same window).
   The load generator verifies every echo (header and every payload byte; compressed
   echoes inflated) and reads the server's CPU time from ``/proc/<pid>/stat`` over the
   measured window and its RSS from ``/proc/<pid>/status``.
4. Writes every raw run and the medians to ``<out>/e2e-<timestamp>.json`` and
   ``e2e-latest.json``, a markdown table to ``e2e-latest.md`` (also printed), and a
   chart to ``e2e-latest.png``; ``<out>`` is ``bench/results``, or with ``--quick``
   the git-ignored ``bench/results/scratch`` (``--out`` chooses another).

Everything listens on and connects to 127.0.0.1 only; every child runs in its own
process group and is killed on exit.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import random
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENV = REPO / "bench" / ".venv"
BUILD = HERE / "build"
RESULTS = REPO / "bench" / "results"
SCRATCH = RESULTS / "scratch"  # git-ignored: quick runs never touch committed results
PEERS = ["picows", "uvloop", "websockets", "aiohttp", "matplotlib"]
SERVER_CPU = "0"
CLIENT_CPU = "1"
ALL_SERVERS = [
    "wsfast",
    "picows",
    "websockets",
    "aiohttp",
    "ceiling",
    "wsfast-busy",
    "wsfast-asyncio",
    "wsfast-cython",
]
# The opt-in busy-poll mode only matters for latency; other workloads skip it.
DEFAULT_SERVERS = ("wsfast", "picows", "websockets", "aiohttp", "ceiling")
# The 64 B and 1 KiB echo rows also compare wsfast.asyncio on uvloop (against the
# asyncio servers websockets and picows) and a Cython handler (examples/cython_handler,
# against the Python handler and the ceiling).
ECHO_ROW_SERVERS = (*DEFAULT_SERVERS, "wsfast-asyncio", "wsfast-cython")
# The wss rows: every library with the same certificate (tls_files) and cipher (the load
# generator offers TLS 1.3 TLS_AES_128_GCM_SHA256 only). The raw-TCP ceiling has no TLS.
TLS_SERVERS = ("wsfast", "picows", "websockets", "aiohttp")
CYTHON_EXAMPLE = REPO / "examples" / "cython_handler"
WSFAST_SOURCES = ["rust", "cython_ext", "python", "pyproject.toml", "setup.py", "Cargo.toml"]
KiB = 1024
MiB = 1024 * 1024


# ---- environment ---------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def venv_python() -> Path:
    return VENV / "bin" / "python"


def pip(*args: str) -> None:
    cmd = [str(venv_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*cmd, *args], check=True)


def wsfast_source_hash() -> str:
    """Hash of every tracked or new file that goes into the wsfast wheel."""
    listing = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", *WSFAST_SOURCES],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    digest = hashlib.sha256()
    for name in sorted(listing):
        path = REPO / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def ensure_venv(reinstall: bool) -> None:
    """Create bench/.venv with the peers; (re)install wsfast when its sources changed."""
    if not venv_python().exists():
        log(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    marker = VENV / ".peers-installed"
    if not marker.exists():
        log(f"installing peers from PyPI: {' '.join(PEERS)}")
        pip(*PEERS)
        marker.write_text("\n".join(PEERS) + "\n")
    stamp = VENV / ".wsfast-source"
    current = wsfast_source_hash()
    if reinstall or not stamp.exists() or stamp.read_text() != current:
        log("installing wsfast from this checkout (pip install, non-editable)")
        lock = ["flock", "/tmp/wsfast-build.lock"] if shutil.which("flock") else []
        cmd = [str(venv_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*lock, *cmd, "--force-reinstall", "--no-deps", str(REPO)], check=True)
        stamp.write_text(current)


def build_tools() -> None:
    BUILD.mkdir(exist_ok=True)
    for name in ("loadgen", "tcp_echo"):
        source, binary = HERE / f"{name}.c", BUILD / name
        if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
            continue
        log(f"gcc {source.name}")
        cmd = ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(source)]
        subprocess.run(
            [*cmd, *(["-lz", "-lssl", "-lcrypto"] if name == "loadgen" else [])], check=True
        )


def tls_files() -> tuple[Path, Path]:
    """One self-signed certificate (EC P-256, for IP 127.0.0.1) and key that every wss
    server loads; wss clients trust it through SSL_CERT_FILE (run_clients.py)."""
    cert, key = BUILD / "tls-cert.pem", BUILD / "tls-key.pem"
    if not (cert.exists() and key.exists()):
        BUILD.mkdir(exist_ok=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        name = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        out = ["-days", "3650", "-keyout", str(key), "-out", str(cert)]
        subprocess.run(
            ["openssl", "req", "-x509", *ec, *name, *out], check=True, capture_output=True
        )
    return cert, key


def build_cython_example() -> Path:
    """Build examples/cython_handler against the bench venv's wsfast; returns its dir.

    Rebuilt whenever wsfast was reinstalled: the handler is compiled against wsfast's
    own declarations, so it must match the installed extension."""
    target = BUILD / "cython_handler"
    stamp = VENV / ".wsfast-source"
    built = list(target.glob("handlers*.so"))
    if built and stamp.exists() and built[0].stat().st_mtime >= stamp.stat().st_mtime:
        return target
    probe = [str(venv_python()), "-c", "import Cython, setuptools"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        pip("cython>=3.1", "setuptools")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("handlers.pyx", "setup.py"):
        shutil.copy(CYTHON_EXAMPLE / name, target / name)
    log("building examples/cython_handler")
    cmd = [str(venv_python()), "setup.py", "-q", "build_ext", "--inplace"]
    subprocess.run(cmd, cwd=target, check=True, stdout=subprocess.DEVNULL)
    return target


def versions() -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "names = ['wsfast', 'picows', 'uvloop', 'websockets', 'aiohttp', 'matplotlib']\n"
        "out = {n: m.version(n) for n in names}\n"
        "out['python'] = sys.version.split()[0]\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([str(venv_python()), "-c", code], capture_output=True, text=True)
    found: dict[str, str] = json.loads(result.stdout) if result.returncode == 0 else {}
    gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
    found["gcc"] = gcc.splitlines()[0] if gcc else "?"
    return found


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            # the harness counts too; results written by an earlier run do not
            ["git", "status", "--porcelain", "--", *WSFAST_SOURCES, "bench", ":!bench/results"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "commit": commit + ("+dirty" if dirty else ""),
    }


# ---- payloads ------------------------------------------------------------------------


def json_payload(size: int = KiB) -> bytes:
    """A market-data-like JSON text of exactly ``size`` bytes (seeded, varying values)."""
    rng = random.Random(20261126)
    trades = []
    text = ""
    while True:
        trades.append(
            {
                "id": rng.randrange(10**9, 10**10),
                "sym": rng.choice(["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"]),
                "px": round(rng.uniform(10, 70000), 2),
                "qty": round(rng.expovariate(2.0), 6),
                "side": rng.choice(["buy", "sell"]),
                "ts": 1764115200000 + rng.randrange(10**6),
            }
        )
        candidate = json.dumps({"type": "trades", "data": trades}, separators=(",", ":"))
        if len(candidate) + 12 > size:
            break
        text = candidate
    pad = size - len(text) - len(',"pad":""')
    text = text[:-1] + ',"pad":"' + "x" * pad + '"}'
    data = text.encode()
    assert len(data) == size, len(data)
    json.loads(data)
    return data


def raw_deflate(data: bytes, wbits: int = 15) -> bytes:
    """One message as RFC 7692 sends it: raw deflate, sync flush, 00 00 ff ff removed."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def text_payload(size: int = KiB) -> bytes:
    """Mixed-script UTF-8 text of exactly ``size`` bytes (seeded): a chat-like JSON message
    whose words come from several scripts, so that UTF-8 validation has multi-byte
    sequences of every length to check, not only ASCII."""
    rng = random.Random(20261202)
    words = [
        "hello", "world", "Grüße", "Zürich", "café", "naïve", "привет", "мир", "γειά",
        "σου", "שלום", "مرحبا", "नमस्ते", "你好", "世界", "こんにちは", "안녕하세요",  # noqa: RUF001
        "€", "→", "🙂", "🚀", "ok", "price", "42",
    ]  # fmt: skip
    head, tail = '{"type":"chat","room":"général","text":"', '"}'
    text = head
    while True:
        word = rng.choice(words) + " "
        if len((text + word + tail).encode()) > size:
            break
        text += word
    text += " " * (size - len((text + tail).encode())) + tail
    data = text.encode()
    assert len(data) == size, len(data)
    json.loads(data)
    return data


def tick_payload(size: int = KiB) -> bytes:
    """A 1 KiB JSON market-data tick (a batch of trades, seeded) of exactly ``size`` bytes.

    It compresses about 4.7x (level 6, window 15): a whole message inflates to more than
    four times its compressed size, the case where wsfast's one-shot inflater needs to
    grow its output while decoding (see ``make_room`` in ``rust/src/inflate.rs``)."""
    rng = random.Random(20261202)
    trades: list[dict[str, Any]] = []
    text, price = "", 43251.50
    while True:
        price += rng.choice([-0.5, 0.0, 0.0, 0.5])
        trades.append(
            {
                "eventType": "trade",
                "symbol": "BTCUSDT",
                "tradeId": 512345678 + len(trades),
                "price": f"{price:.2f}",
                "quantity": rng.choice(["0.00100000", "0.01000000", "0.00250000"]),
                "tradeTime": 1764158400123 + 3 * len(trades),
                "isBuyerMaker": rng.random() < 0.5,
            }
        )
        candidate = json.dumps({"stream": "btcusdt@trade", "data": trades}, separators=(",", ":"))
        if len(candidate) > size:
            break
        text = candidate
    data = (text[:-1] + " " * (size - len(text)) + "}").encode()  # JSON whitespace
    assert len(data) == size, len(data)
    json.loads(data)
    return data


# ---- processes -----------------------------------------------------------------------


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class ServerProcess:
    name: str
    port: int
    proc: subprocess.Popen[str]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None


children: list[subprocess.Popen[str]] = []


def kill(proc: subprocess.Popen[str], grace: float = 2.0) -> None:
    """Stop a child and its process group: SIGTERM, then SIGKILL after ``grace``."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)
    if proc in children:
        children.remove(proc)


def kill_all() -> None:
    for proc in list(children):
        kill(proc, grace=1.0)


# Compression settings per deflate setting and server: (level, compressor window bits,
# memLevel, note). "same-l6" and "same-l1" give every library the same settings as far as
# each allows; "default" is each library's own configuration, offered what a browser
# offers. Shown in the results table and in bench/README.md.
DEFLATE_SETTINGS: dict[str, dict[str, tuple[int, int, int, str]]] = {
    "same-l6": {
        "wsfast": (6, 15, 8, "DeflateConfig(level=6, mem_level=8, compress_window_bits=15)"),
        "websockets": (6, 15, 8, 'compress_settings={"level": 6, "memLevel": 8}'),
        "aiohttp": (1, 15, 8, "level and memLevel are not settable (zlib Z_BEST_SPEED)"),
    },
    "same-l1": {
        "wsfast": (1, 15, 8, "DeflateConfig(level=1, mem_level=8, compress_window_bits=15)"),
        "websockets": (1, 15, 8, 'compress_settings={"level": 1, "memLevel": 8}'),
        "aiohttp": (1, 15, 8, "its fixed settings"),
    },
    "default": {
        "wsfast": (1, 12, 5, "DeflateConfig() defaults"),
        "websockets": (6, 12, 5, 'compression="deflate" (asks the client for window 12)'),
        "aiohttp": (1, 15, 8, "compress=True"),
    },
}
# What the load generator offers: no context takeover either way for the same-settings
# rows (every server then compresses each message on its own); a browser's offer for
# the defaults (the servers keep their context, as they do by default).
DEFLATE_OFFERS = {
    "same-l6": "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
    "same-l1": "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
    "default": "permessage-deflate; client_max_window_bits",
}


def server_command(
    name: str,
    port: int,
    *,
    deflate: str | None,
    fanout: bool,
    window_bits: int | None,
    tls: bool = False,
) -> list[str] | None:
    """The command line of one server, or None if it cannot serve this workload.

    ``deflate`` is None (no compression) or a key of DEFLATE_SETTINGS; ``tls`` serves
    wss with the certificate of tls_files() (plain echo only)."""
    if tls:
        if deflate or fanout or window_bits or name not in TLS_SERVERS:
            return None
        cmd = server_command(name, port, deflate=None, fanout=False, window_bits=None)
        cert, key = tls_files()
        return None if cmd is None else [*cmd, "--certfile", str(cert), "--keyfile", str(key)]
    py = str(venv_python())
    servers = HERE / "servers"
    if name == "ceiling":
        if deflate or fanout or window_bits:
            return None
        return [str(BUILD / "tcp_echo"), "--port", str(port)]
    if name == "wsfast-busy":
        if deflate or fanout or window_bits:
            return None
        cmd = [py, "-m", "wsfast", "echo", "--host", "127.0.0.1", "--port", str(port)]
        return [*cmd, "--max-size", "64MiB", "--no-compression", "--busy-poll"]
    if name in ("wsfast-asyncio", "wsfast-cython"):
        if deflate or fanout or window_bits:
            return None
        script = [py, str(servers / f"{name.replace('-', '_')}_echo.py"), "--port", str(port)]
        if name == "wsfast-cython":
            script += ["--build", str(BUILD / "cython_handler")]
        return script
    if window_bits and name != "wsfast":
        return None
    if deflate and name not in DEFLATE_SETTINGS[deflate]:
        return None  # picows has no permessage-deflate
    script = [py, str(servers / f"{name}_echo.py"), "--port", str(port)]
    if fanout:
        script.append("--fanout")
    if deflate:
        script.append("--compression")
    if deflate and deflate != "default" and name != "aiohttp":
        level, wbits, mem_level, _ = DEFLATE_SETTINGS[deflate][name]
        script += ["--level", str(level), "--mem-level", str(mem_level)]
        script += ["--compress-window-bits", str(wbits)]
    if name == "wsfast":
        if window_bits:
            return [*script, "--window-bits", str(window_bits)]
        if fanout or (deflate and deflate != "default"):
            return script
        # the plain echo and the defaults: the CLI, as a user would run it
        cmd = [py, "-m", "wsfast", "echo", "--host", "127.0.0.1", "--port", str(port)]
        return [*cmd, "--max-size", "64MiB", *([] if deflate else ["--no-compression"])]
    return script


def start_server(name: str, port: int, cmd: list[str]) -> ServerProcess:
    """Start a server pinned to SERVER_CPU; its output goes to a log file, never a pipe
    (a pipe nobody reads would block a server that logs every dropped connection)."""
    logs = BUILD / "logs"
    logs.mkdir(exist_ok=True)
    log_path = logs / f"{name}-{port}.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *cmd],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=str(HERE),
            start_new_session=True,
            preexec_fn=_raise_nofile,
        )
    children.append(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if "listening on" in log_path.read_text(errors="replace"):
            return ServerProcess(name, port, proc, log_path)
        time.sleep(0.05)
    kill(proc)
    raise RuntimeError(f"{name} did not start: {log_path.read_text(errors='replace')[-500:]}")


def server_output(server: ServerProcess) -> str:
    """The server's log, for error reports."""
    try:
        return server.log_path.read_text(errors="replace")
    except OSError:
        return ""


def _loadgen_popen(cpu: str, args: list[str], sync: bool) -> subprocess.Popen[str]:
    cmd = ["taskset", "-c", cpu, str(BUILD / "loadgen"), *args, *(["--sync"] if sync else [])]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if sync else subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        preexec_fn=_raise_nofile,
    )
    children.append(proc)
    return proc


def _loadgen_result(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
        return {"error": f"loadgen timed out after {timeout:.0f} s", "msgs_per_s": 0}
    finally:
        if proc in children:
            children.remove(proc)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": f"loadgen exit {proc.returncode}: {err.strip()[-300:]}", "msgs_per_s": 0}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_loadgen(args: list[str], timeout: float, cpu: str = CLIENT_CPU) -> dict[str, Any]:
    """One load generator, pinned to ``cpu``."""
    return _loadgen_result(_loadgen_popen(cpu, args, sync=False), timeout)


def run_loadgens(
    cpus: Sequence[str], args: list[str], conns: int, timeout: float
) -> dict[str, Any]:
    """One load generator per CPU, ``conns`` split between them, started together.

    Each opens its connections, says "ready" and waits; once all are ready they all
    start warming up, so their measured windows coincide (to a few milliseconds).
    Message rates add up; the load generators' CPU shares are reported per process and
    summed per CPU (the busiest CPU decides "saturated"); the server's CPU comes from
    the first one.
    """
    n = min(len(cpus), conns)
    if n <= 1:
        return run_loadgen([*args, "--conns", str(conns)], timeout, cpus[0])
    procs = []
    for i, cpu in enumerate(cpus[:n]):
        share = conns // n + (1 if i < conns % n else 0)
        procs.append(_loadgen_popen(cpu, [*args, "--conns", str(share)], sync=True))
    deadline = time.monotonic() + 40
    for proc in procs:  # "ready" once the handshakes are done (or nothing: it failed)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        ready = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]
        if ready:
            proc.stdout.readline()
    for proc in procs:
        assert proc.stdin is not None
        try:  # communicate() closes stdin later
            proc.stdin.write("go\n")
            proc.stdin.flush()
        except OSError:
            pass  # it exited already; its result says why
    results = [_loadgen_result(proc, timeout) for proc in procs]
    merged = dict(results[0])
    errors = [str(r["error"]) for r in results if r.get("error")]
    merged["error"] = "; ".join(errors)
    for key in ("msgs", "msgs_per_s", "mb_per_s", "errors", "verified", "closed_by_server"):
        merged[key] = sum(r.get(key) or 0 for r in results)
    merged["conns"] = conns
    merged["loadgen_cpus"] = [r.get("loadgen_cpu") for r in results]
    per_cpu: dict[str, float] = {}  # load generators sharing a CPU add up
    for cpu, r in zip(cpus, results, strict=False):
        per_cpu[cpu] = per_cpu.get(cpu, 0.0) + (r.get("loadgen_cpu") or 0.0)
    merged["loadgen_cpu"] = max(per_cpu.values())
    merged["saturated"] = merged["loadgen_cpu"] > 0.9
    share = merged.get("server_cpu_share") or 0
    merged["msgs_per_server_cpu_s"] = merged["msgs_per_s"] / share if share > 0 else -1.0
    merged["loadgens"] = n
    return merged


# ---- workloads -----------------------------------------------------------------------


@dataclass
class Workload:
    id: str
    kind: str  # echo | latency | idle | deflate | fanout | idle-deflate
    mode: str  # loadgen mode
    size: int = 64
    conns: int = 1
    window: int = 1
    deflate: str | None = None  # a key of DEFLATE_SETTINGS
    fanout: bool = False
    window_bits: int | None = None
    per_echo: bool = False  # the client pattern: one frame per send, per echo received
    loadgen_extra: list[str] = field(default_factory=list)
    servers: Sequence[str] = DEFAULT_SERVERS
    fresh_server: bool = False  # a new server process for every run (memory)
    tls: bool = False  # wss: see TLS_SERVERS


def size_name(size: int) -> str:
    return (
        f"{size // MiB}MiB" if size >= MiB else f"{size // KiB}KiB" if size >= KiB else f"{size}B"
    )


QUICK = {
    "echo-64B-c64",
    "echo-1KiB-c64",
    "echo-64B-c64-per-echo",
    "echo-64KiB-c64",
    "echo-text-1KiB-c64",
    "echo-text-utf8-1KiB-c64",
    "latency-64B",
    "idle-1000",
    "deflate-1KiB-json-c64-same-l6",
    "fanout-64B-c64",
    "wss-echo-64B-c64",
}


def workloads(quick: bool, files: dict[str, Path]) -> list[Workload]:
    text_json = ["--text", "--payload", str(files["json"])]
    deflate = ["--deflate", "--payload-z", str(files["json_z"])]
    prime_offer = ["--prime", "1", "--offer", DEFLATE_OFFERS["default"]]
    all_: list[Workload] = []
    for size in [64, KiB, 64 * KiB, MiB]:
        for conns in (1, 64):
            name = f"echo-{size_name(size)}-c{conns}"
            row = ECHO_ROW_SERVERS if conns == 64 and size <= KiB else DEFAULT_SERVERS
            all_.append(Workload(name, "echo", "echo", size, conns, 16, servers=row))
    for size in (64, KiB):
        name = f"echo-{size_name(size)}-c64-per-echo"
        all_.append(Workload(name, "echo", "echo", size, 64, 16, per_echo=True))
    # text: the 1 KiB JSON (ASCII, the usual case) and a mixed-script message (720 of its
    # 1,024 bytes non-ASCII, up to 4-byte sequences)
    for name, payload in (("text", "json"), ("text-utf8", "text")):
        text = ["--text", "--payload", str(files[payload])]
        all_.append(
            Workload(f"echo-{name}-1KiB-c64", "echo", "echo", KiB, 64, 16, loadgen_extra=text)
        )
    for size in (64, KiB):
        name = f"wss-echo-{size_name(size)}-c64"
        all_.append(
            Workload(
                name,
                "echo",
                "echo",
                size,
                64,
                16,
                tls=True,
                loadgen_extra=["--tls"],
                servers=TLS_SERVERS,
            )
        )
    latency = (*DEFAULT_SERVERS, "wsfast-busy")
    all_.append(Workload("latency-64B", "latency", "latency", 64, servers=latency))
    for n in (1000, 10000):
        all_.append(Workload(f"idle-{n}", "idle", "idle", 64, n, fresh_server=True))
    for setting in DEFLATE_SETTINGS:
        all_.append(
            Workload(
                f"deflate-1KiB-json-c64-{setting}",
                "deflate",
                "echo",
                KiB,
                64,
                16,
                deflate=setting,
                loadgen_extra=[*text_json, *deflate, "--offer", DEFLATE_OFFERS[setting]],
                servers=("wsfast", "websockets", "aiohttp"),
            )
        )
    all_.append(
        Workload(
            "fanout-64B-c64",
            "fanout",
            "fanout",
            64,
            64,
            16,
            fanout=True,
            servers=("wsfast", "picows", "websockets", "aiohttp"),
        )
    )
    for bits in (9, 12, 15):
        # the server asks for client_max_window_bits=bits: our frames must respect it
        z_bits = ["--deflate", "--payload-z", str(files[f"json_z{bits}"])]
        z_bits += ["--payload-z-bits", str(bits)]
        all_.append(
            Workload(
                f"idle-deflate-wb{bits}-1000",
                "idle-deflate",
                "idle",
                KiB,
                1000,
                deflate="default",
                window_bits=bits,
                loadgen_extra=[*text_json, *z_bits, *prime_offer],
                servers=("wsfast",),
                fresh_server=True,
            )
        )
    all_.append(
        Workload(
            "idle-deflate-default-1000",
            "idle-deflate",
            "idle",
            KiB,
            1000,
            deflate="default",
            loadgen_extra=[*text_json, *deflate, *prime_offer],
            servers=("wsfast", "websockets", "aiohttp"),
            fresh_server=True,
        )
    )
    if quick:
        all_ = [w for w in all_ if w.id in QUICK]
    return all_


# ---- the run -------------------------------------------------------------------------


class PortAllocator:
    def __init__(self, start: int) -> None:
        self.next = start

    def __call__(self) -> int:
        # Skip ports still held (e.g. by TIME_WAIT sockets of an earlier run): a server
        # that cannot bind would cost a repetition.
        while True:
            self.next += 1
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind(("127.0.0.1", self.next))
                except OSError:
                    continue
            return self.next


def loadgen_args(w: Workload, server: ServerProcess, warmup: float, duration: float) -> list[str]:
    """The load generator's arguments, except ``--conns`` (see run_loadgens)."""
    args = [w.mode, "--port", str(server.port), "--server-pid", str(server.pid)]
    args += ["--window", str(w.window), "--size", str(w.size)]
    if w.size >= MiB:  # 64 connections x 16 MiB in flight take a while to reach a steady state
        warmup = max(warmup, 1.0)
    args += ["--warmup", str(warmup), "--duration", str(duration), *w.loadgen_extra]
    if w.per_echo:
        args.append("--per-echo")
    if server.name == "ceiling":
        args.append("--ceiling")
    return args


@contextmanager
def terminate_on_signal() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        kill_all()


def run_all(
    selected: list[Workload],
    servers: list[str],
    reps: int,
    warmup: float,
    duration: float,
    loadgen_cpus: Sequence[str],
) -> list[dict[str, Any]]:
    port = PortAllocator(19000 + os.getpid() % 2000 * 10)
    runs: list[dict[str, Any]] = []
    long_lived: dict[tuple[str, str | None, bool, bool], ServerProcess] = {}

    def command(w: Workload, name: str, p: int) -> list[str] | None:
        return server_command(
            name, p, deflate=w.deflate, fanout=w.fanout, window_bits=w.window_bits, tls=w.tls
        )

    def get_server(w: Workload, name: str) -> ServerProcess | None:
        cmd_key = (name, w.deflate, w.fanout, w.tls)
        if not w.fresh_server and w.window_bits is None:
            running = long_lived.get(cmd_key)
            if running is not None and running.alive():
                return running
        p = port()
        cmd = command(w, name, p)
        if cmd is None:
            return None
        server = start_server(name, p, cmd)
        if not w.fresh_server and w.window_bits is None:
            long_lived[cmd_key] = server
        return server

    try:
        for w in selected:
            names = [s for s in servers if s in w.servers and command(w, s, 1) is not None]
            for rep in range(reps):
                order = names[rep % len(names) :] + names[: rep % len(names)] if names else []
                for name in order:
                    record: dict[str, Any] = {"workload": w.id, "server": name, "rep": rep}
                    try:
                        server = get_server(w, name)
                    except RuntimeError as exc:
                        record.update(error=str(exc), msgs_per_s=0)
                        runs.append(record)
                        log(f"  {w.id:30} {name:10} FAILED to start: {exc}")
                        continue
                    assert server is not None
                    hold = duration if w.kind.startswith("idle") else duration + warmup
                    args = loadgen_args(w, server, warmup, duration)
                    # only echo splits its connections between several load generators
                    cpus = loadgen_cpus if w.mode == "echo" else [CLIENT_CPU]
                    result = run_loadgens(cpus, args, w.conns, hold + 60)
                    window = result.get("duration_s")
                    short = window is not None and window < 0.8 * duration
                    if w.mode != "idle" and short and not result.get("error"):
                        result["error"] = f"measured {window:.2f} s of {duration} s"
                    if not server.alive():
                        tail = server_output(server)[-300:]
                        result.setdefault("error", "")
                        result["error"] = (result["error"] + f"; server died: {tail}").strip("; ")
                    record.update(result)
                    runs.append(record)
                    log(f"  {w.id:30} {name:10} rep {rep}: {brief(record)}")
                    if w.fresh_server or w.window_bits is not None:
                        kill(server.proc)
                    elif not server.alive():
                        long_lived.pop((name, w.deflate, w.fanout), None)
                        kill(server.proc)
            # servers for fan-out or compression are not needed by later workloads
            for key in [k for k in long_lived if k[1] or k[2]]:
                kill(long_lived.pop(key).proc)
    finally:
        for server in long_lived.values():
            kill(server.proc)
    return runs


def brief(r: dict[str, Any]) -> str:
    if r.get("error"):
        return f"ERROR {r['error']}"
    if r.get("mode") == "latency":
        return f"p50 {r['p50_us']:.1f} us p99 {r['p99_us']:.1f} us"
    if r.get("mode") == "idle":
        return f"{r['bytes_per_conn']:.0f} B/conn (setup {r['setup_s']:.2f} s)"
    flag = " LOADGEN-BOUND" if r.get("saturated") else ""
    return (
        f"{r['msgs_per_s']:,.0f} msg/s, {r['msgs_per_server_cpu_s']:,.0f} msg/cpu-s, "
        f"server {r['server_cpu_share']:.2f} loadgen {r['loadgen_cpu']:.2f}{flag}, "
        f"{r.get('verified', 0):,} echoes verified"
    )


# ---- summary -------------------------------------------------------------------------

METRICS = [
    "msgs_per_s",
    "msgs_per_server_cpu_s",
    "server_cpu_share",
    "loadgen_cpu",
    "p50_us",
    "p99_us",
    "p999_us",
    "bytes_per_conn",
]


LOADGEN_BOUND = 0.9  # load generator CPU share (median) from which a row is its limit


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Medians per workload and server, and ratios to picows, websockets and the ceiling.

    A row is "loadgen-bound" when the load generator's median CPU share is at least
    LOADGEN_BOUND: the server may have had more to give.
    """
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for r in runs:
        summary.setdefault(r["workload"], {}).setdefault(r["server"], {"runs": []})["runs"].append(
            r
        )
    for per_server in summary.values():
        for entry in per_server.values():
            good = [r for r in entry.pop("runs") if not r.get("error")]
            entry["reps_ok"] = len(good)
            for metric in METRICS:
                values = [r[metric] for r in good if metric in r and r[metric] is not None]
                if values:
                    entry[metric] = statistics.median(values)
            entry["saturated"] = any(r.get("saturated") for r in good)
            entry["loadgen_bound"] = (entry.get("loadgen_cpu") or 0) >= LOADGEN_BOUND
            entry["verified"] = sum(r.get("verified") or 0 for r in good)
            takeover = {r.get("takeover") for r in good if r.get("deflate")}
            if takeover:
                entry["takeover"] = takeover.pop() if len(takeover) == 1 else None
    for workload, per_server in summary.items():
        errors: dict[str, set[str]] = {}
        for r in runs:
            if r["workload"] == workload and r.get("error"):
                errors.setdefault(r["server"], set()).add(str(r["error"]))
        for name, entry in per_server.items():
            entry["errors"] = sorted(errors.get(name, set()))
        for ref in ("picows", "websockets", "ceiling"):
            base = per_server.get(ref, {})
            for entry in per_server.values():
                for metric in ("msgs_per_s", "msgs_per_server_cpu_s"):
                    if base.get(metric) and entry.get(metric):
                        entry[f"{metric}_x_{ref}"] = entry[metric] / base[metric]
                if ref == "ceiling" and base.get("loadgen_bound"):
                    entry["ceiling_loadgen_bound"] = True
    return summary


def fmt(value: Any, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def ratio(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    return "-" if value is None else f"{value:.2f}x"


def limited_by(entry: dict[str, Any]) -> str:
    parts = []
    if entry.get("loadgen_bound"):
        parts.append("loadgen")
    if (entry.get("server_cpu_share") or 0) >= LOADGEN_BOUND:
        parts.append("server")
    return " + ".join(parts)


def deflate_setting(workload: str) -> str | None:
    return next((k for k in DEFLATE_SETTINGS if workload.endswith(f"-{k}")), None)


def table(summary: dict[str, dict[str, dict[str, Any]]], meta: dict[str, Any]) -> str:
    verified = sum(e.get("verified", 0) for per in summary.values() for e in per.values())
    lines = [
        f"End-to-end results ({meta['date']}, {meta['reps']} reps x {meta['duration']} s after "
        f"{meta['warmup']} s warm-up, medians; server on CPU {SERVER_CPU}, load generator on "
        f"CPU {','.join(meta['loadgen_cpus'])}; {meta['machine']['cpu']}, commit "
        f"{meta['machine']['commit']}). Every echo is verified (header and payload; "
        f'compressed echoes inflated): {verified:,} in these runs. "batch": each connection '
        'writes the frames it may start in one send; "per-echo": one frame per send, one '
        "per echo received. \"limited by\": the load generator's (median) or the server's CPU "
        f"share >= {LOADGEN_BOUND}; * = the ceiling row is limited by the load generator, so "
        "the true raw-TCP ceiling is higher and the ratio overstates the server.",
        "",
        "| workload | server | msgs/s | msgs per server-CPU-s | server CPU | loadgen CPU | "
        "limited by | x picows (msgs/s) | x picows (per CPU-s) | x ceiling (msgs/s) | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    lat, mem, comp = [], [], []
    for workload, per_server in summary.items():
        for name, e in per_server.items():
            errs = "; ".join(e["errors"])[:120] if e["errors"] else ""
            if workload.startswith("latency"):
                lat.append(
                    f"| {workload} | {name} | {fmt(e.get('p50_us'), '.1f')} | "
                    f"{fmt(e.get('p99_us'), '.1f')} | {fmt(e.get('p999_us'), '.1f')} | "
                    f"{fmt(e.get('msgs_per_s'))} | {errs} |"
                )
            elif workload.startswith("idle"):
                mem.append(
                    f"| {workload} | {name} | {fmt(e.get('bytes_per_conn'))} | "
                    f"{fmt((e.get('bytes_per_conn') or 0) / 1024, '.2f')} | {errs} |"
                )
            elif workload.startswith("deflate"):
                setting = deflate_setting(workload) or ""
                level, wbits, mem_level, note = DEFLATE_SETTINGS.get(setting, {}).get(
                    name, (None, None, None, "")
                )
                kept = e.get("takeover")
                takeover = "yes" if kept is True else "no" if kept is False else "-"
                comp.append(
                    f"| {workload} | {name} | {fmt(e.get('msgs_per_s'))} | "
                    f"{fmt(e.get('msgs_per_server_cpu_s'))} | "
                    f"{fmt(e.get('server_cpu_share'), '.2f')} | "
                    f"{fmt(e.get('loadgen_cpu'), '.2f')} | "
                    f"{ratio(e, 'msgs_per_s_x_websockets')} | {fmt(level, 'd')} | "
                    f"{fmt(wbits, 'd')} | {fmt(mem_level, 'd')} | {takeover} | {note} {errs} |"
                )
            else:
                mark = "*" if e.get("ceiling_loadgen_bound") and name != "ceiling" else ""
                ceiling = ratio(e, "msgs_per_s_x_ceiling")
                lines.append(
                    f"| {workload} | {name} | {fmt(e.get('msgs_per_s'))} | "
                    f"{fmt(e.get('msgs_per_server_cpu_s'))} | "
                    f"{fmt(e.get('server_cpu_share'), '.2f')} | "
                    f"{fmt(e.get('loadgen_cpu'), '.2f')} | {limited_by(e)} | "
                    f"{ratio(e, 'msgs_per_s_x_picows')} | "
                    f"{ratio(e, 'msgs_per_server_cpu_s_x_picows')} | "
                    f"{ceiling + mark if ceiling != '-' else ceiling} | {errs} |"
                )
    if comp:
        lines += [
            "",
            "Compression: a 1 KiB JSON text, pre-compressed by the load generator (zlib level "
            '6, window 15), every echo inflated and compared. "same-l6"/"same-l1": the same '
            "settings for every library as far as each allows, the load generator offering "
            'no context takeover either way; "default": each library\'s defaults, offered '
            f"what a browser offers ({DEFLATE_OFFERS['default']}).",
            "",
            "| workload | server | msgs/s | msgs per server-CPU-s | server CPU | loadgen CPU | "
            "x websockets | level | window bits | memLevel | context takeover | "
            "settings / errors |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
            *comp,
        ]
    if lat:
        lines += [
            "",
            "| latency | server | p50 us | p99 us | p99.9 us | round trips/s | errors |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |",
            *lat,
        ]
    if mem:
        lines += [
            "",
            "| memory (server RSS delta / N) | server | bytes per connection | KiB | errors |",
            "| --- | --- | ---: | ---: | --- |",
            *mem,
        ]
    return "\n".join(lines) + "\n"


def chart(summary: dict[str, dict[str, dict[str, Any]]], path: Path, title: str) -> None:
    """2x2 chart: msgs/s and msgs per server-CPU-second (echo), latency, memory."""
    payload = json.dumps({"summary": summary, "path": str(path), "title": title})
    proc = subprocess.run(
        [str(venv_python()), "-c", CHART_CODE], input=payload, text=True, capture_output=True
    )
    if proc.returncode != 0:
        log(f"chart failed: {proc.stderr[-500:]}")


# matplotlib lives in the bench venv, not necessarily in the interpreter running this file.
CHART_CODE = r"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

data = json.load(sys.stdin)
s = data["summary"]
servers = ["wsfast", "picows", "websockets", "aiohttp", "ceiling"]
colors = {"wsfast": "#d62728", "picows": "#1f77b4", "websockets": "#2ca02c",
          "aiohttp": "#9467bd", "ceiling": "#7f7f7f"}
fig, axes = plt.subplots(2, 2, figsize=(14, 9))

def bars(ax, workloads, metric, label, log=True, scale=1.0):
    width = 0.8 / len(servers)
    for i, name in enumerate(servers):
        xs, ys = [], []
        for j, w in enumerate(workloads):
            v = s.get(w, {}).get(name, {}).get(metric)
            if v:
                xs.append(j + (i - len(servers) / 2 + 0.5) * width)
                ys.append(v * scale)
        if xs:
            ax.bar(xs, ys, width, label=name, color=colors[name])
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(workloads, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(label)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)

echo = [w for w in s if w.startswith(("echo", "deflate", "fanout"))]
bars(axes[0][0], echo, "msgs_per_s", "messages per second (log)")
axes[0][0].set_title("Throughput")
axes[0][0].legend(fontsize=8)
bars(axes[0][1], echo, "msgs_per_server_cpu_s", "messages per server CPU-second (log)")
axes[0][1].set_title("Efficiency (msgs/s divided by the server's CPU share)")
lat = [w for w in s if w.startswith("latency")]
width = 0.35
for i, name in enumerate(servers):
    e = s.get("latency-64B", {}).get(name, {})
    if e.get("p50_us"):
        axes[1][0].bar(i - width / 2, e["p50_us"], width, color=colors[name])
        axes[1][0].bar(i + width / 2, e["p99_us"], width, color=colors[name], alpha=0.45)
axes[1][0].set_xticks(range(len(servers)))
axes[1][0].set_xticklabels(servers)
axes[1][0].set_ylabel("round trip, microseconds")
axes[1][0].set_title("Latency 64 B, one connection (solid p50, light p99)")
axes[1][0].grid(axis="y", alpha=0.3)
mem = [w for w in s if w.startswith("idle")]
bars(axes[1][1], mem, "bytes_per_conn", "KiB per connection", log=False, scale=1 / 1024)
axes[1][1].set_title("Memory per idle connection (server RSS delta / N)")
fig.suptitle(data["title"], fontsize=10)
fig.tight_layout()
fig.savefig(data["path"], dpi=110)
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 rep, 1 s, a subset: smoke test")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--duration", type=float, default=2.5, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds per run")
    parser.add_argument(
        "--only", default="", help="comma-separated servers and/or workload ids (or prefixes)"
    )
    parser.add_argument("--reinstall", action="store_true", help="reinstall wsfast anyway")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    parser.add_argument(
        "--out", type=Path, help="results directory (default bench/results; --quick: scratch)"
    )
    parser.add_argument(
        "--loadgen-cpus",
        default=CLIENT_CPU,
        help=f"comma-separated CPUs, one load generator each (default {CLIENT_CPU})",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.duration, args.warmup = 1, 1.0, 0.3
    out: Path = args.out or (SCRATCH if args.quick else RESULTS)
    loadgen_cpus = [c.strip() for c in args.loadgen_cpus.split(",") if c.strip()]
    if not loadgen_cpus or SERVER_CPU in loadgen_cpus:
        parser.error(f"--loadgen-cpus: one or more CPUs other than the server's ({SERVER_CPU})")
    if not 1 <= args.reps <= 20 or not 0 < args.duration <= 60 or not 0 <= args.warmup <= 10:
        parser.error("--reps 1..20, --duration 0..60, --warmup 0..10")
    if os.cpu_count() is None or (os.cpu_count() or 1) < 2:
        log("warning: fewer than 2 CPUs; server and load generator will share a core")
    for tool in ("gcc", "taskset", "git"):
        if not shutil.which(tool):
            log(f"{tool} is required")
            return 2

    ensure_venv(args.reinstall)
    build_tools()
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    if "wsfast-cython" in only or not [x for x in only if x in ALL_SERVERS]:
        build_cython_example()
    files = {
        "json": BUILD / "payload-1KiB.json",
        "json_z": BUILD / "payload-1KiB.json.deflate",
        "text": BUILD / "payload-1KiB-utf8.txt",
    }
    files["json"].write_bytes(json_payload())
    files["json_z"].write_bytes(raw_deflate(json_payload()))
    files["text"].write_bytes(text_payload())
    for bits in (9, 12, 15):
        files[f"json_z{bits}"] = BUILD / f"payload-1KiB.json.deflate{bits}"
        files[f"json_z{bits}"].write_bytes(raw_deflate(json_payload(), bits))

    servers = [s for s in ALL_SERVERS if s in only] or list(ALL_SERVERS)
    wanted = [x for x in only if x not in ALL_SERVERS]
    selected = [
        w
        for w in workloads(args.quick, files)
        if not wanted or any(w.id == x or w.id.startswith(x) for x in wanted)
    ]
    if not selected:
        parser.error(f"no workload matches {wanted}")

    started = time.monotonic()
    now = _dt.datetime.now(_dt.UTC)
    meta: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "reps": args.reps,
        "duration": args.duration,
        "warmup": args.warmup,
        "quick": args.quick,
        "servers": servers,
        "machine": machine(),
        "versions": versions(),
        "pinning": {"server_cpu": SERVER_CPU, "loadgen_cpus": loadgen_cpus},
        "loadgen_cpus": loadgen_cpus,
        "deflate_settings": DEFLATE_SETTINGS,
        "deflate_offers": DEFLATE_OFFERS,
        "workloads": [w.__dict__ | {"loadgen_extra": " ".join(w.loadgen_extra)} for w in selected],
    }
    log(f"{len(selected)} workloads x {len(servers)} servers x {args.reps} reps")
    with terminate_on_signal():
        runs = run_all(selected, servers, args.reps, args.warmup, args.duration, loadgen_cpus)
    summary = summarize(runs)
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, "summary": summary, "runs": runs}
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(document, indent=1, sort_keys=True)
    (out / f"e2e-{stamp}.json").write_text(text)
    (out / "e2e-latest.json").write_text(text)
    rendered = table(summary, meta)
    (out / "e2e-latest.md").write_text(rendered)
    print(rendered)
    if not args.no_chart:
        title = (
            f"wsfast end-to-end, {meta['date']}, medians of {args.reps} x {args.duration} s; "
            f"server CPU {SERVER_CPU}, load generator CPU {','.join(loadgen_cpus)}"
        )
        chart(summary, out / "e2e-latest.png", title)
    log(f"done in {meta['elapsed_s']} s; results in {out}/e2e-{stamp}.json")
    failed = [r for r in runs if r.get("error")]
    return 1 if failed and len(failed) == len(runs) else 0


if __name__ == "__main__":
    sys.exit(main())
