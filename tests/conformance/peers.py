# SPDX-License-Identifier: MIT
"""The peers under test: the ``wsfast echo`` server process and the wsfast client.

``WSFAST_CONFORMANCE_PEER=websockets`` swaps in the ``websockets`` package for both
(``tests/conformance/standin.py`` and its sync client): a check of the suite itself
against a well-known implementation, not part of the normal run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests.conformance.cases import Deflate
from tests.conformance.wire import TIMEOUT

PEER = os.environ.get("WSFAST_CONFORMANCE_PEER", "wsfast")
ROOT = Path(__file__).resolve().parents[2]


def memory(pid: int | str, field: str) -> int:
    """A memory figure of a process from /proc (VmRSS, VmHWM...), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"{field}:\s+(\d+) kB", status)
    assert found, status
    return int(found.group(1)) * 1024


def reset_peak(pid: int | str = "self") -> int:
    """Reset a process's peak resident memory to its current one; return that.

    So that a case's peak is its own, not the high-water mark an earlier case left
    (writing 5 to clear_refs resets VmHWM, Linux 4.0+).
    """
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return memory(pid, "VmRSS")


class ServerProcess:
    """An echo server in a subprocess, restarted if a case made it exit."""

    def __init__(
        self, log: Path, max_size: int | None, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.log_path = log
        self.max_size = max_size
        self.tls = tls  # (certfile, keyfile) to serve wss://
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        if PEER == "websockets":
            cmd = [sys.executable, "-m", "tests.conformance.standin", "--port", "0"]
        else:
            cmd = [sys.executable, "-m", "wsfast", "echo", "--host", "127.0.0.1", "--port", "0"]
        if self.max_size is not None:
            cmd += ["--max-size", str(self.max_size)]
        if self.tls is not None:
            cmd += ["--certfile", str(self.tls[0]), "--keyfile", str(self.tls[1])]
        return cmd

    def start(self) -> None:
        """Start the server and read its port from the 'listening on' line."""
        self._log = self.log_path.open("ab")
        start = self._log.tell()
        self.proc = subprocess.Popen(
            self.command(), cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as f:
                f.seek(start)
                found = re.search(rb"listening on wss?://127\.0\.0\.1:(\d+)", f.read())
            if found:
                self.port = int(found.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"echo server did not start: {self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure(self) -> None:
        """Restart the server if a previous case killed it."""
        if not self.alive():
            self.stop()
            self.start()

    def peak_memory(self) -> int:
        """The server's peak resident memory (VmHWM) in bytes."""
        assert self.proc is not None
        return memory(self.proc.pid, "VmHWM")

    def reset_peak_memory(self) -> int:
        """Start a new peak (see :func:`reset_peak`); returns the resident memory."""
        assert self.proc is not None
        return reset_peak(self.proc.pid)

    def log_tail(self, size: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


# ---- the client under test ------------------------------------------------------------


@dataclass
class ClientEnd:
    """How the client's echo loop ended.

    Attributes:
        closed: the ConnectionClosed exception's class name ("ok" or "error" kind).
        ok: True for a normal closure (ConnectionClosedOK).
        code: the close code the client received (1005 for none, 1006 for no frame).
        sent_code: the close code the client sent, or None.
        problem: anything else (timeout, unexpected exception).
    """

    ok: bool = False
    code: int | None = None
    sent_code: int | None = None
    problem: str | None = None


def run_client(url: str, deflate: Deflate | None, max_size: int) -> ClientEnd:
    """Connect the client under test to ``url`` and echo messages until it closes."""
    if PEER == "websockets":
        return _run_websockets(url, deflate, max_size)
    return _run_wsfast(url, deflate, max_size)


def _run_wsfast(url: str, deflate: Deflate | None, max_size: int) -> ClientEnd:
    from wsfast.client import DeflateConfig, connect
    from wsfast.exceptions import ConnectionClosed, ConnectionClosedOK

    compression: Any = False
    if deflate is not None:
        bits = deflate.client_max_window_bits
        compression = DeflateConfig(
            server_no_context_takeover=deflate.server_no_context_takeover,
            client_no_context_takeover=deflate.client_no_context_takeover,
            server_max_window_bits=deflate.server_max_window_bits,
            client_max_window_bits=None if bits is True else bits,
        )
    with connect(
        url,
        compression=compression,
        max_size=max_size,
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
    ) as ws:
        while True:
            try:
                message = ws.recv(timeout=TIMEOUT)
            except ConnectionClosed as exc:
                return ClientEnd(
                    ok=isinstance(exc, ConnectionClosedOK), code=exc.code, sent_code=exc.sent_code
                )
            except TimeoutError:
                return ClientEnd(problem=f"recv() got nothing for {TIMEOUT} s")
            try:
                ws.send(message)
            except ConnectionClosed:
                continue  # the next recv() reports how it closed


def _run_websockets(url: str, deflate: Deflate | None, max_size: int) -> ClientEnd:
    from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
    from websockets.sync.client import connect

    extensions = None
    if deflate is not None:
        extensions = [
            ClientPerMessageDeflateFactory(
                server_no_context_takeover=deflate.server_no_context_takeover,
                client_no_context_takeover=deflate.client_no_context_takeover,
                server_max_window_bits=deflate.server_max_window_bits,
                client_max_window_bits=deflate.client_max_window_bits,
            )
        ]
    with connect(
        url,
        compression=None,
        extensions=extensions,
        max_size=max_size,
        ping_interval=None,
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        proxy=None,
    ) as ws:
        while True:
            try:
                message = ws.recv(timeout=TIMEOUT)
            except ConnectionClosed as exc:
                return ClientEnd(
                    ok=isinstance(exc, ConnectionClosedOK),
                    code=exc.rcvd.code if exc.rcvd else 1006,
                    sent_code=exc.sent.code if exc.sent else None,
                )
            except TimeoutError:
                return ClientEnd(problem=f"recv() got nothing for {TIMEOUT} s")
            try:
                ws.send(message)
            except ConnectionClosed:
                continue
