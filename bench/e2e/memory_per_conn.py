# SPDX-License-Identifier: MIT
"""Server memory per open connection: wsfast vs websockets, with and without deflate.

For each setting (no compression, then permessage-deflate with both windows at 9..15
bits, memLevel 5, context takeover or not), a server runs in a child process; this
process opens N connections to it (wsfast's blocking client), each exchanging one
compressible message so that compression state exists on both sides, and reads the
server's RSS (/proc/PID/status) before and with all N open. Memory per connection is
the difference divided by N. Runtime is bounded: about 2-5 s per row at N = 1000.

With context takeover there are three rows per window:

* "takeover, just used": right after the exchange, wsfast with compressor_idle=None
  (the compressor kept for the whole connection, as before that option existed);
* "takeover, idle": once the connections were idle past compressor_idle (--idle
  seconds): wsfast freed its compressors (the server reports its live count, and the
  row is read once it is zero); websockets, which keeps its compressor, is read after
  the same idle time;
* "takeover, keep none": wsfast with compressor_idle=0 (every message compressed
  alone, no compressor between messages), right after the exchange; websockets as in
  the just-used row (it has no such option).

Usage: python bench/e2e/memory_per_conn.py [--n 1000] [--windows 9,12,15] [--no-takeover]
    [--idle 1.0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time

import wsfast

MESSAGE = '{"id": 1, "name": "compressible", "tags": ["a", "b", "c"]} ' * 40

WSFAST_SERVER = textwrap.dedent(
    """
    import json, sys
    import wsfast
    from wsfast.server import Handler, serve

    class Echo(Handler):
        def on_message(self, conn, data):
            conn.send(data)

    from wsfast._native import rust

    w, takeover, idle = json.loads(sys.argv[1])
    compression = False if w is None else wsfast.DeflateConfig(
        server_max_window_bits=w, client_max_window_bits=w, mem_level=5,
        compress_window_bits=w, server_no_context_takeover=not takeover,
        client_no_context_takeover=not takeover, compressor_idle=idle)
    server = serve(Echo, "127.0.0.1", 0, compression=compression, ping_interval=None,
                   backlog=4096).start()
    print(server.port, flush=True)
    for line in sys.stdin:
        rss = open("/proc/self/status").read().split("VmRSS:")[1].split()[0]
        print(rss, rust._live_native_states()["compressors"], flush=True)
    """
)

WEBSOCKETS_SERVER = textwrap.dedent(
    """
    import asyncio, json, sys, threading
    from websockets.asyncio.server import serve
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    w, takeover, _ = json.loads(sys.argv[1])
    extensions = [] if w is None else [ServerPerMessageDeflateFactory(
        server_max_window_bits=w, client_max_window_bits=w,
        server_no_context_takeover=not takeover, client_no_context_takeover=not takeover,
        compress_settings={"memLevel": 5})]

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", 0, extensions=extensions, compression=None,
                         ping_interval=None, max_queue=4, backlog=4096) as server:
            print(server.sockets[0].getsockname()[1], flush=True)
            loop = asyncio.get_running_loop()
            done = asyncio.Event()
            def read():
                for line in sys.stdin:
                    rss = open("/proc/self/status").read().split("VmRSS:")[1].split()[0]
                    print(rss, flush=True)
                loop.call_soon_threadsafe(done.set)
            threading.Thread(target=read, daemon=True).start()
            await done.wait()

    asyncio.run(main())
    """
)


def measure(
    source: str,
    window: int | None,
    takeover: bool,
    n: int,
    compressor_idle: float | None = None,
    wait_idle: bool = False,
) -> float:
    """KiB of server RSS per open connection for one server and setting.

    ``compressor_idle`` goes to wsfast's DeflateConfig; with ``wait_idle`` the RSS is
    read once the connections were idle for longer than it (wsfast: once its server
    reports no live compressor; websockets: after the same wait).
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", source, json.dumps([window, takeover, compressor_idle])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    port = int(proc.stdout.readline())

    def status() -> list[int]:
        # RSS in KiB, then (wsfast only) the live compressors.
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        return [int(x) for x in proc.stdout.readline().split()]

    def rss() -> int:
        return status()[0]

    if window is None:
        compression: object = False
    else:
        compression = wsfast.DeflateConfig(
            server_max_window_bits=window,
            client_max_window_bits=window,
            server_no_context_takeover=not takeover,
            client_no_context_takeover=not takeover,
        )
    url = f"ws://127.0.0.1:{port}/"
    try:
        # Warm up: first-use allocations (code pages, pools) are not per connection.
        for _ in range(20):
            with wsfast.connect(url, compression=compression) as ws:
                ws.send(MESSAGE)
                ws.recv()
        time.sleep(0.2)
        before = rss()
        conns = [wsfast.connect(url, compression=compression) for _ in range(n)]
        for ws in conns:
            ws.send(MESSAGE)
        for ws in conns:
            assert ws.recv() == MESSAGE
        time.sleep(0.2)
        if wait_idle:
            assert compressor_idle is not None
            # Released after one to two periods of the server's check.
            deadline = time.monotonic() + 2 * compressor_idle + 30.0
            waited = time.monotonic()
            while (counts := status())[1:] != [0] and len(counts) > 1:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"compressors still live: {counts[1]}")
                time.sleep(0.1)
            # websockets (no count) waits as long as wsfast may take.
            time.sleep(max(0.0, 2 * compressor_idle + 0.5 - (time.monotonic() - waited)))
        after = rss()
        for ws in conns:
            ws.close()
        return (after - before) / n
    finally:
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="connections per measurement")
    parser.add_argument("--windows", default="9,10,11,12,13,14,15", help="window bits to try")
    parser.add_argument(
        "--no-takeover", action="store_true", help="also measure without context takeover"
    )
    parser.add_argument(
        "--idle", type=float, default=1.0, help="wsfast's compressor_idle for the idle rows"
    )
    args = parser.parse_args()
    # (label, window, takeover, wsfast compressor_idle, wait until idle)
    rows: list[tuple[str, int | None, bool, float | None, bool]] = [
        ("no compression", None, True, None, False)
    ]
    for w in (int(x) for x in args.windows.split(",")):
        rows.append((f"w={w} takeover, just used", w, True, None, False))
        rows.append((f"w={w} takeover, idle", w, True, args.idle, True))
        rows.append((f"w={w} takeover, keep none", w, True, 0.0, False))
        if args.no_takeover:
            rows.append((f"w={w} no takeover", w, False, None, False))
    print(f"server RSS per open connection (KiB), N = {args.n}, memLevel 5")
    print(f"{'setting':<28}{'wsfast':>10}{'websockets':>12}")
    for name, window, takeover, idle, wait_idle in rows:
        ours = measure(WSFAST_SERVER, window, takeover, args.n, idle, wait_idle)
        theirs = measure(WEBSOCKETS_SERVER, window, takeover, args.n, idle, wait_idle)
        print(f"{name:<28}{ours:>10.1f}{theirs:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
