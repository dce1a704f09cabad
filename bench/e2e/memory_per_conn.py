# SPDX-License-Identifier: MIT
"""Server memory per open connection: wsfast vs websockets, with and without deflate.

For each setting (no compression, then permessage-deflate with both windows at 9..15
bits, memLevel 5, context takeover or not), a server runs in a child process; this
process opens N connections to it (wsfast's blocking client), each exchanging one
compressible message so that compression state exists on both sides, and reads the
server's RSS (/proc/PID/status) before and with all N open. Memory per connection is
the difference divided by N. Runtime is bounded: about 2-5 s per row at N = 1000.

Usage: python bench/e2e/memory_per_conn.py [--n 1000] [--windows 9,12,15] [--no-takeover]
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

    w, takeover = json.loads(sys.argv[1])
    compression = False if w is None else wsfast.DeflateConfig(
        server_max_window_bits=w, client_max_window_bits=w, mem_level=5,
        compress_window_bits=w, server_no_context_takeover=not takeover,
        client_no_context_takeover=not takeover)
    server = serve(Echo, "127.0.0.1", 0, compression=compression, ping_interval=None,
                   backlog=4096).start()
    print(server.port, flush=True)
    for line in sys.stdin:
        print(open("/proc/self/status").read().split("VmRSS:")[1].split()[0], flush=True)
    """
)

WEBSOCKETS_SERVER = textwrap.dedent(
    """
    import asyncio, json, sys, threading
    from websockets.asyncio.server import serve
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    w, takeover = json.loads(sys.argv[1])
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


def measure(source: str, window: int | None, takeover: bool, n: int) -> float:
    """KiB of server RSS per open connection for one server and setting."""
    proc = subprocess.Popen(
        [sys.executable, "-c", source, json.dumps([window, takeover])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    port = int(proc.stdout.readline())

    def rss() -> int:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        return int(proc.stdout.readline())

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
    args = parser.parse_args()
    settings: list[tuple[int | None, bool]] = [(None, True)]
    for w in (int(x) for x in args.windows.split(",")):
        settings.append((w, True))
        if args.no_takeover:
            settings.append((w, False))
    print(f"server RSS per open connection (KiB), N = {args.n}, memLevel 5")
    print(f"{'setting':<24}{'wsfast':>10}{'websockets':>12}")
    for window, takeover in settings:
        name = "no compression" if window is None else f"deflate w={window}"
        if window is not None and not takeover:
            name += " no-takeover"
        ours = measure(WSFAST_SERVER, window, takeover, args.n)
        theirs = measure(WEBSOCKETS_SERVER, window, takeover, args.n)
        print(f"{name:<24}{ours:>10.1f}{theirs:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
