# SPDX-License-Identifier: MIT
"""wsfast for asyncio (and uvloop), in the idiom of ``websockets.asyncio``.

::

    import wsfast.asyncio

    async with wsfast.asyncio.connect("ws://127.0.0.1:8000/") as ws:
        await ws.send("hello")
        async for message in ws:
            ...

Exceptions are wsfast's own (``wsfast.ConnectionClosedOK`` and so on).
"""

from __future__ import annotations

from wsfast.asyncio.client import ClientConnection, connect

__all__ = ["ClientConnection", "connect"]
