# SPDX-License-Identifier: MIT
"""websockets (asyncio implementation) echo or fan-out server for the end-to-end benchmark.

Compression is off unless ``--compression`` (then websockets' default permessage-deflate).
Usage: python websockets_echo.py --port P [--compression] [--fanout]
"""

from __future__ import annotations

import argparse
import asyncio

from websockets.asyncio.server import ServerConnection, broadcast, serve

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
        compression="deflate" if args.compression else None,
        max_size=64 << 20,
        ping_interval=None,
    ) as server:
        print(f"websockets echo listening on ws://127.0.0.1:{args.port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--fanout", action="store_true")
    asyncio.run(main(parser.parse_args()))
