# SPDX-License-Identifier: MIT
"""wsfast for asyncio (and uvloop), in the idiom of ``websockets.asyncio``.

::

    import wsfast.asyncio

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with wsfast.asyncio.serve(echo, "127.0.0.1", 8765) as server:
        await server.serve_forever()

    async with wsfast.asyncio.connect("ws://127.0.0.1:8765/") as ws:
        await ws.send("hello")
        print(await ws.recv())

An application written for ``websockets.asyncio`` switches by changing its imports
(``from wsfast.asyncio import serve, connect, broadcast`` and
``from wsfast.exceptions import ConnectionClosed, ...``); README.md lists what differs.
"""

from __future__ import annotations

from wsfast.asyncio.client import ClientConnection, connect
from wsfast.asyncio.server import Response, Server, ServerConnection, broadcast, serve

__all__ = [
    "ClientConnection",
    "Response",
    "Server",
    "ServerConnection",
    "broadcast",
    "connect",
    "serve",
]
