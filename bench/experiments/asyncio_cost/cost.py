# SPDX-License-Identifier: MIT
"""Instructions per echoed message of each asyncio / uvicorn server (callgrind).

Instruction counts do not depend on machine load, unlike wall-clock or even CPU
seconds on a shared box. Each server runs under ``valgrind --tool=callgrind``;
``../callgrind_ab/echo_client.py`` (closes each connection cleanly) echoes N1, then N2
messages (16 in flight, one connection at a time, every echo checked), and
(I(N2) - I(N1)) / (N2 - N1) is the cost of one message with start-up cancelled out.

    python bench/experiments/asyncio_cost/cost.py                # every server
    python bench/experiments/asyncio_cost/cost.py wsfast picows  # some of them
    python bench/experiments/asyncio_cost/cost.py --profile wsfast   # + callgrind_annotate

Run it with a real interpreter binary (a venv's python, not a pyenv shim): valgrind
must trace the interpreter, not a shell script.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
E2E = HERE.parent.parent / "e2e" / "servers"
CLIENT = HERE.parent / "callgrind_ab" / "echo_client.py"

# name -> server command after the interpreter (the port is appended).
SERVERS = {
    "wsfast": [str(E2E / "wsfast_asyncio_echo.py")],
    "picows": [str(E2E / "picows_echo.py")],
    "websockets": [str(E2E / "websockets_echo.py")],
    "uv-wsfast": [str(E2E / "fastapi_echo.py"), "--ws", "wsfast.uvicorn:WSProtocol"],
    "uv-websockets": [str(E2E / "fastapi_echo.py"), "--ws", "websockets"],
    "uv-websockets-sansio": [str(E2E / "fastapi_echo.py"), "--ws", "websockets-sansio"],
    "uv-wsproto": [str(E2E / "fastapi_echo.py"), "--ws", "wsproto"],
}

# (payload bytes, kind, N1, N2)
# N2 - N1 = 16384 messages: what does not cancel between the two runs (frames per
# read, garbage collections) is spread over more messages.
CASES = [(64, "binary", 2048, 18432), (1024, "text", 2048, 18432)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(6000):
        if proc.poll() is not None:
            raise RuntimeError("server exited before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not listen")


def _control(flag: str, pid: int, out: Path) -> Path | None:
    """Zero (-z) or dump (-d) the server's counters; return the new dump file if any."""
    before = set(out.parent.glob(out.name + ".*"))
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True)
    if flag != "-d":
        return None
    for _ in range(600):
        new = set(out.parent.glob(out.name + ".*")) - before
        if new:
            time.sleep(0.5)  # let callgrind finish writing it
            return new.pop()
        time.sleep(0.1)
    raise RuntimeError("no callgrind dump")


def _instructions(dump: Path) -> int:
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def _functions(dump: str) -> dict[str, int]:
    """Exclusive instructions per function of one dump (callgrind_annotate's table)."""
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--auto=no", dump],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    table: dict[str, int] = {}
    for line in text.splitlines():
        # "1,234 ( 5.67%)  file:function [object]"
        count, _, rest = line.strip().partition(" ")
        if count.replace(",", "").isdigit() and "%)" in rest:
            name = rest.split("%)", 1)[1].strip().split(" [")[0]
            table[name] = table.get(name, 0) + int(count.replace(",", ""))
    return table


def _profile(label: str, dumps: list[str], messages: int) -> None:
    """Write the per-message cost of each function (N2 run minus N1 run) to /tmp."""
    first, second = (_functions(d) for d in dumps)
    rows = sorted(
        ((second.get(k, 0) - first.get(k, 0)) / messages, k) for k in set(first) | set(second)
    )
    path = Path(f"/tmp/asyncio_cost.{label}.per_msg.txt")
    with path.open("w") as f:
        for per, name in reversed(rows):
            if abs(per) >= 20:
                f.write(f"{per:9.0f}  {name}\n")
    print(f"  per-function profile: {path}", flush=True)


def measure(name: str, cases: list[tuple[int, str, int, int]], profile: bool) -> None:
    """Print instructions per message of one server for each case.

    One server process serves every case, so its start-up (a minute under callgrind
    on a loaded machine) is paid once. Counters are zeroed before, and dumped after,
    each client run; a run of N1 and one of N2 messages cancel the handshakes.
    SIGINT is not used: a uvloop server under valgrind does not always honour it.
    """
    port = _free_port()
    args = list(SERVERS[name])
    binary = all(kind == "binary" for _, kind, _, _ in cases)
    if name.startswith("uv-") and binary:
        args.append("--binary")  # FastAPI's endpoint is text or binary, not both
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
        env = dict(os.environ, PYTHONHASHSEED="0")
        proc = subprocess.Popen(
            [*cmd, *args, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=open(f"/tmp/asyncio_cost.{name}.log", "w"),
            env=env,
            cwd="/tmp",
        )
        try:
            _wait_listening(port, proc)
            # Warm up: the first connections import and compile lazily (uvicorn, FastAPI).
            size, kind, n1, _ = cases[0]
            subprocess.run(
                [sys.executable, str(CLIENT), str(port), str(size), str(n1), "8", kind],
                check=True,
                stdout=subprocess.DEVNULL,
                timeout=1800,
            )
            for size, kind, n1, n2 in cases:
                counts = []
                dumps = []
                for n in (n1, n2):
                    _control("-z", proc.pid, out)
                    subprocess.run(
                        [sys.executable, str(CLIENT), str(port), str(size), str(n), "8", kind],
                        check=True,
                        stdout=subprocess.DEVNULL,
                        timeout=1800,
                    )
                    dump = _control("-d", proc.pid, out)
                    assert dump is not None
                    counts.append(_instructions(dump))
                    dumps.append(shutil.copy(dump, f"{dump}.{n}"))
                per = (counts[1] - counts[0]) // (n2 - n1)
                print(f"{name:22s} {size:5d} B {kind:6s} {per:9d} instr/msg", flush=True)
                if profile:
                    _profile(f"{name}.{size}", dumps, n2 - n1)
        finally:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("servers", nargs="*", default=list(SERVERS))
    parser.add_argument("--profile", action="store_true", help="annotate the N2 runs")
    parser.add_argument("--size", type=int, default=0, help="one payload size only")
    args = parser.parse_args()
    for name in args.servers:
        cases = [c for c in CASES if args.size in (0, c[0])]
        if name.startswith("uv-"):
            # One FastAPI endpoint per process: the text one (FastAPI's documented echo).
            cases = [c for c in cases if c[1] == "text"] or [(cases[0][0], "text", *cases[0][2:])]
        measure(name, cases, args.profile)


if __name__ == "__main__":
    main()
