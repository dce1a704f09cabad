# SPDX-License-Identifier: MIT
"""websockets (asyncio implementation) echo or fan-out server on uvloop, for the
end-to-end benchmark.

Compression is off unless ``--compression``: then websockets' default permessage-deflate
(``compression="deflate"``: level 6, window 12, memLevel 5), or, with ``--level``,
``--mem-level`` and ``--compress-window-bits``, those settings (the same-settings rows).
Usage: python websockets_echo.py --port P [--compression [--level L --mem-level M
--compress-window-bits W]] [--fanout]
"""

from __future__ import annotations

import argparse
from typing import Any

import uvloop
from _args import server_parser, tls_context
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

clients: set[ServerConnection] = set()


def compression_options(args: argparse.Namespace) -> dict[str, Any]:
    """serve() keyword arguments for the compression asked for."""
    if not args.compression:
        return {"compression": None}
    if args.level is None:
        return {"compression": "deflate"}
    factory = ServerPerMessageDeflateFactory(
        server_max_window_bits=args.compress_window_bits,
        compress_settings={"level": args.level, "memLevel": args.mem_level},
    )
    return {"compression": None, "extensions": [factory]}


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
        ssl=tls_context(args),
        **compression_options(args),
    ) as server:
        print(f"websockets echo listening on ws://127.0.0.1:{args.port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = server_parser()
    parser.add_argument("--level", type=int, default=None)
    parser.add_argument("--mem-level", type=int, default=8)
    parser.add_argument("--compress-window-bits", type=int, default=15)
    uvloop.run(main(parser.parse_args()))
