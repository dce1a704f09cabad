# SPDX-License-Identifier: MIT
"""wsfast servers the CLI does not cover: fan-out, and echo with chosen deflate settings.

The plain echo workloads (and compression at wsfast's defaults) use ``python -m wsfast
echo``; this script serves ``--fanout`` (every message goes to every connection through
``Server.broadcast``), ``--window-bits N`` (permessage-deflate with
server_max_window_bits and client_max_window_bits N, to state the memory per connection
for each setting) and ``--level L --mem-level M --compress-window-bits W`` (our own
compressor's settings, for the rows that give every library the same settings).
Usage: python wsfast_echo.py --port P [--compression [--window-bits N] [--level L
--mem-level M --compress-window-bits W]] [--fanout]
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
    parser.add_argument("--level", type=int, default=None)
    parser.add_argument("--mem-level", type=int, default=None)
    parser.add_argument("--compress-window-bits", type=int, default=None)
    parser.add_argument("--fanout", action="store_true")
    args = parser.parse_args()

    compression: bool | wsfast.DeflateConfig = args.compression
    options = {
        name: value
        for name, value in [
            ("server_max_window_bits", args.window_bits),
            ("client_max_window_bits", args.window_bits),
            ("level", args.level),
            ("mem_level", args.mem_level),
            ("compress_window_bits", args.compress_window_bits),
        ]
        if value is not None
    }
    if args.compression and options:
        compression = wsfast.DeflateConfig(**options)
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
