# SPDX-License-Identifier: MIT
"""aiohttp echo or fan-out server (one web app, one ws route) on uvloop, for the
end-to-end benchmark.

Compression is off unless ``--compression`` (``WebSocketResponse(compress=True)``: the
window the client allows, 15 by default; aiohttp compresses at zlib level 1
(Z_BEST_SPEED) with memLevel 8, neither of which it lets an application change).
Usage: python aiohttp_echo.py --port P [--compression] [--fanout]
"""

from __future__ import annotations

import argparse
import asyncio

import uvloop
from _args import server_parser, tls_context
from aiohttp import WSMsgType, web

clients: set[web.WebSocketResponse] = set()


def make_app(args: argparse.Namespace) -> web.Application:
    async def ws_route(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=64 << 20, compress=args.compression)
        await ws.prepare(request)
        clients.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    targets = list(clients) if args.fanout else [ws]
                    for target in targets:
                        await target.send_bytes(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    targets = list(clients) if args.fanout else [ws]
                    for target in targets:
                        await target.send_str(msg.data)
        finally:
            clients.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/", ws_route)
    return app


async def main(args: argparse.Namespace) -> None:
    runner = web.AppRunner(make_app(args), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096, ssl_context=tls_context(args))
    await site.start()
    print(f"aiohttp echo listening on ws://127.0.0.1:{args.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = server_parser()
    uvloop.run(main(parser.parse_args()))
