# SPDX-License-Identifier: MIT
"""Fan-out benchmark: one publication to N subscribers, wsfast topics against
``websockets.broadcast``, a picows send loop and uWebSockets' publish (socketify).

    python bench/e2e/fanout.py             # 64 B and 1 KiB, 1,000 and 10,000 subscribers
    python bench/e2e/fanout.py --quick     # smoke run: 1,000 subscribers, 64 B, 2 s each
    python bench/e2e/fanout.py --callgrind --subscribers 1000 --sizes 64
        # each server's user-space instructions per delivery (valgrind, load-independent)
    python bench/e2e/fanout.py --syscalls --subscribers 1000 --sizes 64
        # each server's system calls and TCP segments per delivery (strace, ss)

The script re-runs itself in ``bench/.venv`` (run.py's environment: picows, uvloop,
websockets, a non-editable wsfast; socketify is added there), unless ``--here``.
socketify imports only where the system has libuv.so.1 (Debian: ``libuv1``); without
it its rows are skipped, and the reason is printed and recorded.

Method: each server runs in its own process pinned to CPU 0 (one core); this script,
pinned to CPU 1, opens N subscriber connections (raw sockets, epoll, its own handshake)
and one publisher connection. A round: the publisher sends ``burst K``; the server
publishes K messages of S bytes, and the round ends when every subscriber has received
all K frames (counted in bytes: every frame of a run has the same length, learnt from
the first one). Deliveries per second = N x K x rounds / elapsed. Latency, per
subscriber and round: from sending the command to receiving the subscriber's last
frame of the round (publish-to-receive, including the command's trip and the
client's epoll); p50/p99 over all subscribers and rounds, measured with K=1. Each
row also records the client's CPU share (near 100% would mean the client sets the
pace) and the server's user and system CPU time per delivery, which a busy machine
disturbs less than deliveries/s.

Compression "on": subscribers offer permessage-deflate with server_no_context_takeover
(wsfast compresses each publication once for all of them; websockets compresses it for
each subscriber; picows has no permessage-deflate: not run). The message is JSON-like
text, so it compresses.

The numbers are only as quiet as the machine: on a shared 2-core box they are smoke
figures. Results: ``fanout-latest.{json,md}`` in ``--out`` (default bench/results;
with ``--quick`` the git-ignored bench/results/scratch).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import resource
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
OFFER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


# ---- servers (run as `fanout.py --serve NAME`) ------------------------------------------


def _message(size: int) -> str:
    """An ASCII, JSON-like message of exactly ``size`` bytes (compressible)."""
    unit = '{"sym":"ABC","px":101.25,"qty":300,"side":"buy"},'
    return (unit * (size // len(unit) + 1))[:size]


def serve_wsfast(port: int, compression: bool) -> None:
    import wsfast
    from wsfast.connection import Connection

    server: Any = None

    class Fan(wsfast.Handler):
        def on_open(self, conn: Connection) -> None:
            if conn.path == "/sub":
                conn.subscribe("t")

        def on_message(self, conn: Connection, data: str | bytes) -> None:
            _, k, size = str(data).split()
            msg = _message(int(size))
            for _ in range(int(k)):
                server.publish("t", msg)

    server = wsfast.serve(
        Fan(),
        "127.0.0.1",
        port,
        compression=compression,
        ping_interval=None,
        backlog=4096,
        write_limit=(64 << 20, 16 << 20),
    )
    server.serve_forever()


def serve_websockets(port: int, compression: bool) -> None:
    import uvloop
    from websockets.asyncio.server import broadcast, serve

    subs: set[Any] = set()

    async def handler(ws: Any) -> None:
        if ws.request.path == "/sub":
            subs.add(ws)
            try:
                await ws.wait_closed()
            finally:
                subs.discard(ws)
            return
        async for data in ws:
            _, k, size = str(data).split()
            msg = _message(int(size))
            for _ in range(int(k)):
                broadcast(subs, msg)

    async def main() -> None:
        async with serve(
            handler,
            "127.0.0.1",
            port,
            compression="deflate" if compression else None,
            ping_interval=None,
            max_queue=None,
            write_limit=64 << 20,
            backlog=4096,
        ) as server:
            await server.serve_forever()

    uvloop.run(main())


def serve_picows(port: int, compression: bool) -> None:
    import uvloop
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

    if compression:
        raise SystemExit("picows has no permessage-deflate")
    subs: set[WSTransport] = set()

    class Sub(WSListener):
        def on_ws_connected(self, transport: WSTransport) -> None:
            subs.add(transport)

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            subs.discard(transport)

    class Pub(WSListener):
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type != WSMsgType.TEXT:
                return
            _, k, size = frame.get_payload_as_ascii_text().split()
            msg = _message(int(size)).encode()
            for _ in range(int(k)):
                for t in subs:
                    t.send(WSMsgType.TEXT, msg)

    def route(request: Any) -> Any:
        # picows gives the path as bytes.
        return Sub() if request.path in (b"/sub", "/sub") else Pub()

    async def main() -> None:
        server = await ws_create_server(route, "127.0.0.1", port, backlog=4096)
        await server.serve_forever()

    uvloop.run(main())


def serve_socketify(port: int, compression: bool) -> None:
    # uWebSockets' own pub/sub: the publication is framed (and, with the shared
    # compressor, compressed) once and queued on every subscriber in C++.
    from socketify import App, CompressOptions, OpCode

    app = App()
    compress = CompressOptions.SHARED_COMPRESSOR if compression else CompressOptions.DISABLED
    limits = {"max_payload_length": 1 << 20, "max_backpressure": 64 << 20, "idle_timeout": 0}

    def on_message(ws: Any, data: Any, opcode: Any) -> None:
        text = data.decode() if isinstance(data, bytes) else str(data)
        _, k, size = text.split()
        msg = _message(int(size))
        for _ in range(int(k)):
            app.publish("t", msg, OpCode.TEXT, compression)

    app.ws("/sub", {"compression": compress, **limits, "open": lambda ws: ws.subscribe("t")})
    app.ws("/*", {"compression": compress, **limits, "message": on_message})
    app.listen(port, lambda config: None)
    app.run()


SERVERS = {
    "wsfast": serve_wsfast,
    "websockets": serve_websockets,
    "picows": serve_picows,
    "socketify": serve_socketify,
}


# ---- the client side ----------------------------------------------------------------------


def _request(path: str, deflate: bool) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if deflate:
        lines.append(f"Sec-WebSocket-Extensions: {OFFER}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _connect(port: int, path: str, deflate: bool) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(_request(path, deflate))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head.decode(errors="replace"))
    if deflate and b"permessage-deflate" not in head.lower():
        raise RuntimeError("server did not accept permessage-deflate")
    # Anything after the head would be a frame: none is sent before the first round.
    assert head.endswith(b"\r\n\r\n")
    return sock


def _mask(payload: bytes) -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + key + masked


def _frame_length(data: bytes) -> int:
    n = data[1] & 0x7F
    if n == 126:
        return 4 + int.from_bytes(data[2:4], "big")
    if n == 127:
        return 10 + int.from_bytes(data[2:10], "big")
    return 2 + n


def _server_cpu(pid: int) -> tuple[float, float]:
    """A process's user and system CPU seconds so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def run_one(
    name: str,
    subscribers: int,
    size: int,
    compression: bool,
    seconds: float,
    burst: int,
    rounds_only: int = 0,
    wrap: list[str] | None = None,
    kernel_probe: KernelProbe | None = None,
) -> dict[str, Any]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [*(wrap or []), sys.executable, __file__, "--serve", name, "--port", str(port)]
        + (["--compression"] if compression else []),
        stdin=subprocess.DEVNULL,
    )
    socks: list[socket.socket] = []
    try:
        # Under valgrind the server takes a while to start.
        deadline = time.monotonic() + (300 if wrap else 30)
        while True:
            try:
                socks.append(_connect(port, "/sub", compression))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        for _ in range(subscribers - 1):
            socks.append(_connect(port, "/sub", compression))
        publisher = _connect(port, "/pub", compression)
        # Subscriptions happen at open; a first round also proves every one is in.
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

        def round_trip(k: int, latencies: list[float] | None) -> None:
            nonlocal frame_len
            t0 = time.perf_counter()
            publisher.sendall(_mask(f"burst {k} {size}".encode()))
            for i in range(subscribers):
                got[i] = 0
            done = 0
            target = frame_len * k
            give_up = time.monotonic() + 60
            while done < subscribers:
                if time.monotonic() > give_up:
                    raise TimeoutError(f"{name}: {subscribers - done} subscribers still waiting")
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
                            target = frame_len * k
                        before = got[i]
                        got[i] = before + n
                        if before < target <= got[i]:
                            done += 1
                            if latencies is not None:
                                latencies.append(time.perf_counter() - t0)
                        if n < len(buf):
                            break
            assert got == [target] * subscribers, "a subscriber got a partial frame or extra"

        round_trip(1, None)  # warm-up, and learn the frame length
        if rounds_only:
            # Instruction counting (--callgrind): a fixed amount of work, no clock.
            if kernel_probe is not None:
                kernel_probe.start(proc.pid, port)
            for _ in range(rounds_only):
                round_trip(burst, None)
            if kernel_probe is not None:
                kernel_probe.stop()
            return {"server": name, "frame_bytes": frame_len, "rounds": rounds_only}
        latencies: list[float] = []
        end = time.monotonic() + seconds / 2
        while time.monotonic() < end:
            round_trip(1, latencies)
        rounds = 0
        cpu0 = time.process_time()
        user0, sys0 = _server_cpu(proc.pid)
        t0 = time.perf_counter()
        end = time.monotonic() + seconds / 2
        while time.monotonic() < end:
            round_trip(burst, None)
            rounds += 1
        elapsed = time.perf_counter() - t0
        # The client's own CPU share: near 1.0 would mean the client, not the
        # server, sets the pace (the comparison would then say nothing).
        client_cpu = (time.process_time() - cpu0) / elapsed
        # The server's CPU per delivery, user and kernel apart: less load-dependent
        # than deliveries/s on a shared machine, and it shows where the time goes.
        user1, sys1 = _server_cpu(proc.pid)
        deliveries = subscribers * burst * rounds
        latencies.sort()
        return {
            "server": name,
            "subscribers": subscribers,
            "size": size,
            "compression": compression,
            "frame_bytes": frame_len,
            "deliveries_per_s": subscribers * burst * rounds / elapsed,
            "latency_p50_ms": 1e3 * latencies[len(latencies) // 2],
            "latency_p99_ms": 1e3 * latencies[int(len(latencies) * 0.99)],
            "rounds": rounds,
            "client_cpu": round(client_cpu, 2),
            "server_user_us": round(1e6 * (user1 - user0) / deliveries, 3),
            "server_sys_us": round(1e6 * (sys1 - sys0) / deliveries, 3),
        }
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait(120 if wrap else 10)


class KernelProbe:
    """What the server asks of the kernel over a span of rounds: its system calls
    (``strace -c`` attached after the warm-up) and its connections' TCP segments
    and bytes (``ss -ti`` before and after). Counts, so the machine's load does
    not change them."""

    def start(self, pid: int, port: int) -> None:
        self.port = port
        self.before = self._tcp()
        self.out = Path(f"/tmp/fanout-strace-{pid}.txt")
        self.strace = subprocess.Popen(
            ["strace", "-f", "-c", "-o", str(self.out), "-p", str(pid)],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # strace attaches asynchronously: no round before it has

    def stop(self) -> None:
        self.strace.send_signal(2)  # SIGINT: detach and write the summary
        self.strace.wait(60)
        after = self._tcp()
        self.tcp = {k: after[k] - self.before[k] for k in after}
        self.calls: dict[str, int] = {}
        for line in self.out.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                self.calls[parts[-1]] = int(parts[3])
        self.out.unlink()

    def _tcp(self) -> dict[str, int]:
        text = subprocess.run(
            ["ss", "-tni", "state", "established", f"( sport = :{self.port} )"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        keys = ("segs_out", "data_segs_out", "segs_in", "bytes_sent")
        return {k: sum(int(v) for v in re.findall(rf"\b{k}:(\d+)", text)) for k in keys}


def kernel_counts(name: str, subscribers: int, size: int, burst: int, rounds: int = 10) -> str:
    """Per delivery: the server's system calls and TCP segments (see KernelProbe)."""
    probe = KernelProbe()
    run_one(name, subscribers, size, False, 0.0, burst, rounds, kernel_probe=probe)
    per = subscribers * burst * rounds
    calls = ", ".join(
        f"{sc} {n / per:.4f}" for sc, n in sorted(probe.calls.items(), key=lambda kv: -kv[1])
    )
    tcp = ", ".join(f"{k} {n / per:.4f}" for k, n in probe.tcp.items())
    return f"syscalls: {calls}; tcp: {tcp}"


def callgrind(name: str, subscribers: int, size: int, compression: bool, burst: int) -> float:
    """Server instructions per delivery: (I(R2) - I(R1)) / (N x K x (R2 - R1)), from two
    runs under callgrind with R1 and R2 rounds (start-up and connections cancel out;
    instruction counts do not depend on machine load)."""
    totals = []
    r1, r2 = 2, 12
    for rounds in (r1, r2):
        out = Path(f"/tmp/fanout-cg-{name}-{os.getpid()}-{rounds}.out")
        wrap = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        run_one(name, subscribers, size, compression, 0.0, burst, rounds, wrap)
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                totals.append(int(line.split()[1]))
                break
        print(f"{name}: {rounds} rounds: {totals[-1]:,} instructions ({out})", flush=True)
    return (totals[1] - totals[0]) / (subscribers * burst * (r2 - r1))


def available(name: str) -> str | None:
    """Why ``name`` cannot run in this interpreter, or None when it can."""
    done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True)
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"import {name} failed"


def ensure_environment() -> None:
    """Re-run this script in bench/.venv (run.py's: the peers and a non-editable
    wsfast), installing socketify there first when it does not import."""
    import run as e2e  # the harness next to this file: its venv and helpers

    e2e.ensure_venv(reinstall=False)
    python = str(e2e.venv_python())
    if subprocess.run([python, "-c", "import socketify"], capture_output=True).returncode:
        # Best effort: socketify's wheel also needs the system's libuv.so.1 to import.
        subprocess.run([python, "-m", "pip", "install", "-q", "socketify"], check=False)
    os.execv(python, [python, __file__, *sys.argv[1:], "--in-venv"])


def table(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Fan-out: one publication to N subscribers, server on one core",
        "",
        f"{meta['date']}; {meta['seconds']} s per run, bursts of {meta['burst']}"
        f"{' (--quick smoke run: noisy)' if meta['quick'] else ''}; Python {meta['python']}. "
        "Deliveries/s = subscribers x messages published / elapsed; latency = publish "
        "command sent to the subscriber's frame received (bursts of 1).",
        "",
        "| subscribers | size | deflate | server | deliveries/s | x websockets | "
        "x socketify | p50 ms | p99 ms |",
        "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    rates: dict[tuple[int, int, bool], dict[str, float]] = {}
    for r in results:
        key = (r["subscribers"], r["size"], r["compression"])
        rates.setdefault(key, {})[r["server"]] = r["deliveries_per_s"]
    for r in results:
        per = rates[(r["subscribers"], r["size"], r["compression"])]
        ratios = [
            f"{r['deliveries_per_s'] / per[other]:.2f}x"
            if r["server"] == "wsfast" and per.get(other)
            else ""
            for other in ("websockets", "socketify")
        ]
        lines.append(
            f"| {r['subscribers']:,} | {r['size']} | {'on' if r['compression'] else 'off'} | "
            f"{r['server']} | {r['deliveries_per_s']:,.0f} | {ratios[0]} | {ratios[1]} | "
            f"{r['latency_p50_ms']:.2f} | {r['latency_p99_ms']:.2f} |"
        )
    for name, why in meta["skipped"].items():
        lines += ["", f"{name}: not run ({why})"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=SERVERS)
    parser.add_argument("--port", type=int)
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--burst", type=int, default=16)
    parser.add_argument("--only", default="wsfast,websockets,picows,socketify")
    parser.add_argument("--subscribers", default="1000,10000")
    parser.add_argument("--sizes", default="64,1024")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results directory for fanout-latest.{json,md} (default bench/results; "
        "--quick: bench/results/scratch)",
    )
    parser.add_argument("--here", action="store_true", help="run in this interpreter")
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="print each server's instructions per delivery (valgrind; no timing)",
    )
    parser.add_argument(
        "--syscalls",
        action="store_true",
        help="print each server's system calls and TCP segments per delivery (strace, ss)",
    )
    parser.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {0})
        SERVERS[args.serve](args.port, args.compression)
        return
    if not args.here and not args.in_venv:
        ensure_environment()

    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    counts = [1000] if args.quick else [int(n) for n in args.subscribers.split(",")]
    sizes = [64] if args.quick else [int(s) for s in args.sizes.split(",")]
    seconds = 2.0 if args.quick else args.seconds
    skipped: dict[str, str] = {}
    names = []
    for name in args.only.split(","):
        why = available(name)
        if why is None:
            names.append(name)
        else:
            skipped[name] = why
            print(f"{name}: not run ({why})", flush=True)
    if args.syscalls:
        for subscribers in counts:
            for size in sizes:
                for name in names:
                    print(
                        f"{name:10} subs={subscribers} size={size} deflate=off: "
                        f"{kernel_counts(name, subscribers, size, args.burst)} per delivery",
                        flush=True,
                    )
        return
    if args.callgrind:
        for subscribers in counts:
            for size in sizes:
                for name in names:
                    per = callgrind(name, subscribers, size, False, args.burst)
                    print(
                        f"{name:10} subs={subscribers} size={size} deflate=off: "
                        f"{per:,.0f} instructions/delivery",
                        flush=True,
                    )
        return
    results = []
    started = time.monotonic()
    for subscribers in counts:
        for size in sizes:
            for compression in (False, True):
                for name in names:
                    if name == "picows" and compression:
                        continue
                    r = run_one(name, subscribers, size, compression, seconds, args.burst)
                    results.append(r)
                    print(
                        f"{name:10} subs={subscribers:5} size={size:5} "
                        f"deflate={'on ' if compression else 'off'} "
                        f"frame={r['frame_bytes']:5} B  "
                        f"{r['deliveries_per_s'] / 1e6:6.2f} M deliveries/s  "
                        f"p50 {r['latency_p50_ms']:7.2f} ms  p99 {r['latency_p99_ms']:7.2f} ms  "
                        f"client CPU {r['client_cpu']:.0%}  server CPU/delivery: "
                        f"user {r['server_user_us']:.2f} us, sys {r['server_sys_us']:.2f} us",
                        flush=True,
                    )
    import run as e2e  # the harness next to this file: machine and commit

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": e2e.machine(),
        "quick": args.quick,
        "seconds": seconds,
        "burst": args.burst,
        "python": sys.version.split()[0],
        "skipped": skipped,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    out: Path = args.out or (HERE.parent / "results" / ("scratch" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, "results": results}
    (out / "fanout-latest.json").write_text(json.dumps(document, indent=1) + "\n")
    rendered = table(results, meta)
    (out / "fanout-latest.md").write_text(rendered)
    print(rendered)


if __name__ == "__main__":
    main()
