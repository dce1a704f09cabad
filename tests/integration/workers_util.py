# SPDX-License-Identifier: MIT
"""Helpers for the multi-process tests: the ``wsfast`` command line as a subprocess,
and a throwaway ``redis-server``."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection

ROOT = Path(__file__).resolve().parents[2]
#: Seconds to wait for anything a process or a client should do.
WAIT = 15.0


def start_cli(*args: str) -> tuple[subprocess.Popen[str], int]:
    """Run ``python -m wsfast ARGS``; return it and the port from its banner."""
    process = subprocess.Popen(
        [sys.executable, "-m", "wsfast", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner = process.stdout.readline()
    match = re.search(r"127\.0\.0\.1:(\d+)", banner)
    if not match:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"no banner: {banner!r} {err}")
    return process, int(match.group(1))


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM ``process``; return its exit status and stderr."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=WAIT + 5)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"did not stop on SIGTERM: {err}")
    return process.returncode, err


@contextlib.contextmanager
def cli(*args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    process, port = start_cli(*args)
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway ``redis-server`` on a free loopback port; yields its URL.

    Skips the test when ``wsfast.redis_engine`` is missing.
    """
    if importlib.util.find_spec("wsfast.redis_engine") is None:
        pytest.skip("needs the redis engine")
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        pytest.skip("redis-server is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + WAIT
            while True:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), timeout=1.0) as probe,
                ):
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        break
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=WAIT)


def recv_json(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """Receive messages until a JSON text message of type ``kind``; return it."""
    deadline = time.monotonic() + WAIT
    while True:
        message = ws.recv(timeout=max(deadline - time.monotonic(), 0.0))
        if isinstance(message, str):
            event: dict[str, Any] = json.loads(message)
            if event["type"] == kind:
                return event
