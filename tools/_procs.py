# SPDX-License-Identifier: MIT
"""What the load tools (many_connections.py, soak.py) share: the server under test as a
subprocess, its /proc counters, and the command-line arguments naming it."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--json`` (where to write the report) and the server command to ``parser``.

    Args:
        parser: the tool's parser.
    """
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument(
        "server",
        nargs="*",
        default=[sys.executable, "-m", "wsfast", "echo", "--port", "{port}"],
        help="server command; {port} is replaced (default: wsfast echo)",
    )


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    command: list[str],
    port: int,
    *,
    tool: str,
    preexec_fn: Callable[[], object] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the server under test and wait (60 s at most) until it accepts connections.

    Args:
        command: the server's argv; ``{port}`` in it is replaced by ``port``.
        port: the port it listens on.
        tool: the tool's name, which prefixes its error messages.
        preexec_fn: run in the child before the server starts (e.g. to raise limits).

    Returns:
        The server's process.

    Raises:
        SystemExit: the server exited, or did not accept within 60 s.
    """
    argv = [arg.replace("{port}", str(port)) for arg in command]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=preexec_fn
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"{tool}: server exited at start: {err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{tool}: server did not start within 60 s")


def proc_status(pid: int, key: str) -> int:
    """A field of /proc/PID/status in KiB (``VmRSS``, ``VmHWM``...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


def proc_fds(pid: int) -> int:
    """Open file descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))
