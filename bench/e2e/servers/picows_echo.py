# SPDX-License-Identifier: MIT
"""picows echo (or fan-out) server on uvloop, for the end-to-end benchmark.

picows has no permessage-deflate, so ``--compression`` is refused.
Usage: python picows_echo.py --port P [--fanout]
"""

from __future__ import annotations

import argparse
import sys

import uvloop
from _args import server_parser, tls_context
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

clients: set[WSTransport] = set()


class Echo(WSListener):
    """Echoes every data frame with its own type (binary stays binary, text stays text).

    picows hands frames over unvalidated; a text frame is decoded to ``str`` (which
    validates its UTF-8, as every other server here does) and that ``str`` is sent back.
    """

    def __init__(self, fanout: bool) -> None:
        self.fanout = fanout

    def on_ws_connected(self, transport: WSTransport) -> None:
        clients.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        clients.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif kind in (WSMsgType.BINARY, WSMsgType.TEXT):
            payload: str | memoryview
            if kind == WSMsgType.TEXT:
                payload = frame.get_payload_as_utf8_text()
            else:
                payload = frame.get_payload_as_memoryview()
            if self.fanout:
                for client in list(clients):
                    client.send(kind, payload)
            else:
                transport.send(kind, payload)


async def main(args: argparse.Namespace) -> None:
    server = await ws_create_server(
        lambda _request: Echo(args.fanout),
        "127.0.0.1",
        args.port,
        max_frame_size=64 << 20,
        ssl=tls_context(args),
    )
    print(f"picows echo listening on ws://127.0.0.1:{args.port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = server_parser()
    arguments = parser.parse_args()
    if arguments.compression:
        sys.exit("picows does not implement permessage-deflate")
    uvloop.run(main(arguments))
