# SPDX-License-Identifier: MIT
"""The ``wsfast`` command line: ``echo``, ``serve module:handler`` and ``demo``.

``python -m wsfast echo --port 9001`` runs the reference echo server used by the
conformance suite and the benchmarks.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from wsfast.connection import Connection
from wsfast.server import Handler, Server, serve

__all__ = ["EchoHandler", "main"]


class EchoHandler(Handler):
    """Sends every text and binary message back unchanged."""

    def on_message(self, conn: Connection, data: str | bytes) -> None:
        """Echo ``data``."""
        conn.send(data)


def _size(text: str) -> int:
    """Parse a byte size such as ``65536``, ``64KiB`` or ``64MiB``."""
    units = {"kib": 1 << 10, "kb": 1 << 10, "k": 1 << 10, "mib": 1 << 20, "mb": 1 << 20}
    units["m"] = 1 << 20
    lowered = text.strip().lower()
    for suffix in sorted(units, key=len, reverse=True):
        if lowered.endswith(suffix):
            return int(float(lowered[: -len(suffix)]) * units[suffix])
    return int(lowered)


def _add_server_options(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=port, help=f"TCP port, 0 for any ({port})")
    parser.add_argument(
        "--max-size",
        type=_size,
        default=64 << 20,
        help="largest message in bytes, e.g. 1048576 or 64MiB (default 64MiB)",
    )
    parser.add_argument(
        "--no-compression", action="store_true", help="never negotiate permessage-deflate"
    )
    parser.add_argument(
        "--busy-poll",
        type=int,
        nargs="?",
        const=-1,
        default=0,
        metavar="US",
        help="spin on epoll for up to US microseconds (default 200) before blocking: "
        "lower latency, burns a core",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        metavar="N",
        help="most open WebSocket connections; more get HTTP 503 (default: no limit)",
    )
    parser.add_argument("--certfile", help="PEM certificate chain: serve wss://")
    parser.add_argument("--keyfile", help="PEM private key (with --certfile)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsfast", description="wsfast WebSocket server")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    echo = commands.add_parser("echo", help="echo every text and binary message")
    _add_server_options(echo, 9001)

    run = commands.add_parser("serve", help="run a handler: wsfast serve module:handler")
    run.add_argument("target", help="module:attribute of a Handler class, instance or App")
    _add_server_options(run, 8000)

    demo = commands.add_parser("demo", help="live ticker and chat room in the browser")
    demo.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    demo.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _load(target: str) -> object:
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise SystemExit(f"wsfast serve: expected module:handler, not {target!r}")
    obj: object = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def _server(args: argparse.Namespace, handler: object) -> Server:
    context = None
    if args.certfile:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.certfile, args.keyfile)
    return serve(
        handler,  # type: ignore[arg-type]
        args.host,
        args.port,
        max_size=args.max_size,
        compression=not args.no_compression,
        ssl=context,
        busy_poll=True if args.busy_poll < 0 else args.busy_poll,
        max_connections=args.max_connections,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if args.command == "demo":
        demo = importlib.import_module("wsfast.demo")
        status: int | None = demo.main(args)
        return status or 0

    handler = EchoHandler() if args.command == "echo" else _load(args.target)
    server = _server(args, handler)
    server.listen()
    print(f"wsfast {args.command} listening on {server.url}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
