# SPDX-License-Identifier: MIT
"""A FastAPI echo endpoint under uvicorn, with any of uvicorn's WebSocket backends.

The endpoint is the one the FastAPI documentation shows: ``receive_text`` then
``send_text`` (``--binary``: ``receive_bytes`` / ``send_bytes``). uvicorn runs with its
defaults (uvloop and httptools when installed), access logs off.
Usage: python fastapi_echo.py --port P --ws {wsfast.uvicorn:WSProtocol,websockets,...}
"""

from __future__ import annotations

import argparse
import socket

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect


def make_app(binary: bool) -> FastAPI:
    app = FastAPI()

    if binary:

        @app.websocket("/")
        async def echo_bytes(websocket: WebSocket) -> None:
            await websocket.accept()
            try:
                while True:
                    await websocket.send_bytes(await websocket.receive_bytes())
            except WebSocketDisconnect:
                pass

    else:

        @app.websocket("/")
        async def echo_text(websocket: WebSocket) -> None:
            await websocket.accept()
            try:
                while True:
                    await websocket.send_text(await websocket.receive_text())
            except WebSocketDisconnect:
                pass

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ws", required=True, help="uvicorn's --ws value")
    parser.add_argument("--binary", action="store_true")
    args = parser.parse_args()
    # Listen before uvicorn starts: connections wait in the backlog meanwhile.
    sock = socket.create_server(("127.0.0.1", args.port), backlog=2048)
    config = uvicorn.Config(
        make_app(args.binary),
        ws=args.ws,
        ws_max_size=64 << 20,
        ws_ping_interval=None,
        ws_per_message_deflate=False,
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    print(f"fastapi echo ({args.ws}) listening on ws://127.0.0.1:{args.port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
