# SPDX-License-Identifier: MIT
"""wsfast.asyncio echo or fan-out server on uvloop, for the end-to-end benchmark.

The same application as ``websockets_echo.py`` with only the imports changed, so the
rows compare the two servers' asyncio front ends on the same code. Compression is
off unless ``--compression`` (then ``compression="deflate"``: wsfast's defaults).
Usage: python wsfast_asyncio_echo.py --port P [--compression] [--fanout] [--asyncio]
"""

from __future__ import annotations

import argparse
import asyncio

import uvloop

from wsfast.asyncio import ServerConnection, broadcast, serve

clients: set[ServerConnection] = set()


async def main(args: argparse.Namespace) -> None:
    async def handler(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            async for message in ws:
                if args.fanout:
                    broadcast(clients, message)
                else:
                    await ws.send(message)
        finally:
            clients.discard(ws)

    async with serve(
        handler,
        "127.0.0.1",
        args.port,
        max_size=64 << 20,
        ping_interval=None,
        compression="deflate" if args.compression else None,
    ) as server:
        print(f"wsfast.asyncio echo listening on ws://127.0.0.1:{args.port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--fanout", action="store_true")
    parser.add_argument("--asyncio", action="store_true", help="asyncio's loop, not uvloop")
    arguments = parser.parse_args()
    if arguments.asyncio:
        asyncio.run(main(arguments))
    else:
        uvloop.run(main(arguments))
