# SPDX-License-Identifier: MIT
"""wsfast servers the CLI does not cover: fan-out, and echo with chosen window bits.

The plain echo workloads use ``python -m wsfast echo``; this script serves
``--fanout`` (every message goes to every connection through ``Server.broadcast``)
and ``--window-bits N`` (permessage-deflate with server_max_window_bits and
client_max_window_bits N, to state the memory per connection for each setting).
Usage: python wsfast_echo.py --port P [--compression] [--window-bits N] [--fanout]
"""

from __future__ import annotations

import argparse

import wsfast
from wsfast.connection import Connection


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--window-bits", type=int, default=None)
    parser.add_argument("--fanout", action="store_true")
    args = parser.parse_args()

    compression: bool | wsfast.DeflateConfig = args.compression
    if args.window_bits is not None:
        compression = wsfast.DeflateConfig(
            server_max_window_bits=args.window_bits, client_max_window_bits=args.window_bits
        )
    server: wsfast.Server | None = None

    class Echo(wsfast.Handler):
        def on_message(self, conn: Connection, data: str | bytes) -> None:
            if args.fanout and server is not None:
                server.broadcast(data)
            else:
                conn.send(data)

    server = wsfast.serve(
        Echo(), "127.0.0.1", args.port, compression=compression, max_size=64 << 20
    )
    server.listen()
    print(f"wsfast echo listening on {server.url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
