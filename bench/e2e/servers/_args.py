# SPDX-License-Identifier: MIT
"""The command line the competitor servers share (``--port``, ``--compression``,
``--fanout``, and ``--certfile``/``--keyfile`` for the wss rows), as bench/e2e/run.py
passes it."""

from __future__ import annotations

import argparse
import ssl


def server_parser() -> argparse.ArgumentParser:
    """A parser with the options every competitor server takes; add its own after."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--fanout", action="store_true")
    parser.add_argument("--certfile", help="PEM certificate: serve wss://")
    parser.add_argument("--keyfile", help="PEM private key (with --certfile)")
    return parser


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server's TLS context for --certfile/--keyfile (wss rows), else None."""
    if not args.certfile:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.certfile, args.keyfile)
    return context
