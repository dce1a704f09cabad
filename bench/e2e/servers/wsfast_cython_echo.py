# SPDX-License-Identifier: MIT
"""wsfast echo server with the Cython handler of examples/cython_handler.

The same server as ``python -m wsfast echo --no-compression``, but the handler is
``handlers.Echo``, a ``CHandler`` compiled against ``wsfast.capi``: each message
reaches it as a pointer and length, with no Python object per message. ``--build``
is the directory holding the compiled ``handlers`` module (run.py builds it).
Usage: python wsfast_cython_echo.py --port P --build DIR
"""

from __future__ import annotations

import argparse
import importlib
import sys

import wsfast


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--build", required=True)
    args = parser.parse_args()
    sys.path.insert(0, args.build)
    handlers = importlib.import_module("handlers")
    server = wsfast.serve(
        handlers.Echo(), "127.0.0.1", args.port, compression=False, max_size=64 << 20
    )
    server.listen()
    print(f"wsfast (Cython handler) echo listening on {server.url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
