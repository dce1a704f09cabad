# SPDX-License-Identifier: MIT
"""An echo server built on the ``websockets`` package, with ``wsfast echo``'s CLI shape.

Used only to check the conformance suite itself (``WSFAST_CONFORMANCE_PEER=websockets``).
"""

from __future__ import annotations

import argparse

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve


def _echo(ws: ServerConnection) -> None:
    try:
        for message in ws:
            ws.send(message)
    except ConnectionClosed:
        pass


def main() -> None:
    """Parse ``--port`` / ``--max-size`` and serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-size", type=int, default=64 << 20)
    args = parser.parse_args()
    with serve(_echo, "127.0.0.1", args.port, max_size=args.max_size, ping_interval=None) as srv:
        port = srv.socket.getsockname()[1]
        print(f"websockets echo listening on ws://127.0.0.1:{port}", flush=True)
        srv.serve_forever()


if __name__ == "__main__":
    main()
