# SPDX-License-Identifier: MIT
"""The ``wsfast`` command line: ``echo``, ``serve module:handler`` and ``demo``.

``python -m wsfast echo --port 9001`` runs the reference echo server used by the
conformance suite and the benchmarks. Every command takes ``--workers N`` (N processes
on one port, topics shared between them) and ``--redis URL`` (topics shared through
Redis with other servers).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from wsfast.connection import Connection
from wsfast.server import Handler, Server, serve

__all__ = ["EchoHandler", "main", "run"]


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
    _add_process_options(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    _add_metrics_options(parser)


def _add_metrics_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="serve Prometheus metrics at GET /metrics on the same port",
    )
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="serve a live dashboard page at /_wsfast/dashboard",
    )


def _workers(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def _add_process_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="worker processes on the port (SO_REUSEPORT); topics reach all (default 1)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="share topics with other servers through Redis, e.g. redis://127.0.0.1:6379/0",
    )


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
    _add_process_options(demo)
    demo.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    _add_metrics_options(demo)
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
        workers=args.workers,
        broker=args.redis,
        metrics=args.metrics,
        dashboard=args.dashboard,
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
    return run(server, f"wsfast {args.command} listening on {{url}}")


def run(server: Server, banner: str) -> int:
    """Listen, print ``banner`` (``{url}`` replaced), serve until SIGINT/SIGTERM.

    With ``server.workers`` > 1 this process supervises the workers, and the banner
    is printed once every worker listens.

    Args:
        server: a server that does not listen yet.
        banner: the line to print, with ``{url}`` and ``{port}`` placeholders.

    Returns:
        The exit status: 0, or 1 if the server could not listen or start its
        broker, or a worker failed.
    """
    if server.workers == 1:
        try:
            server.listen()
        except OSError as exc:  # the address, or a broker that cannot be reached
            print(f"wsfast: {exc}", file=sys.stderr)
            return 1
        print(banner.format(url=server.url, port=server.port), flush=True)
        _print_endpoints(server)
        server.serve_forever()
        return 0
    from wsfast.workers import Supervisor, WorkerError

    supervisor = Supervisor(server)
    try:
        supervisor.start()
    except (WorkerError, OSError) as exc:
        print(f"wsfast: {exc}", file=sys.stderr)
        return 1
    print(
        f"{banner.format(url=server.url, port=server.port)} ({server.workers} workers)", flush=True
    )
    _print_endpoints(server)
    return supervisor.wait()


def _print_endpoints(server: Server) -> None:
    base = server.url.replace("ws", "http", 1)
    config = server.config
    if config.metrics_path is not None:
        print(f"metrics: {base}{config.metrics_path}", flush=True)
    if config.dashboard_path is not None:
        print(f"dashboard: {base}{config.dashboard_path}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
