# SPDX-License-Identifier: MIT
"""File-descriptor exhaustion on accept: no spinning, one log line per burst, recovery.

The server runs in a subprocess whose RLIMIT_NOFILE is lowered, so that accept()
fails with EMFILE while clients wait in the listen backlog.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

from websockets.sync.client import connect

from .server_util import RawClient, wait_for

FD_LIMIT = 48

SERVER = """
import logging, sys
from wsfast.server import serve
from tests.integration.server_util import Echo

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
server = serve(Echo(), "127.0.0.1", 0, ping_interval=None).listen()
print(server.port, flush=True)
server.serve_forever()
"""


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Lines:
    """Collects a stream's lines in a background thread."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line)

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def join(self) -> str:
        self._thread.join(30)
        return "".join(self.lines)


@contextlib.contextmanager
def limited_server() -> Iterator[tuple[subprocess.Popen[str], int, Lines]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit_fds,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert proc.stdout is not None and proc.stderr is not None
    log = Lines(proc.stderr)
    try:
        port = int(proc.stdout.readline())
        yield proc, port, log
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.join()
        proc.stdout.close()
        proc.stderr.close()


def open_fds(pid: int) -> int:
    """How many descriptors a process has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def readable(raw: RawClient) -> bool:
    return bool(select.select([raw.sock], [], [], 0)[0])


def test_accept_without_file_descriptors_neither_spins_nor_crashes_and_recovers() -> None:
    with limited_server() as (proc, port, log), contextlib.ExitStack() as stack:
        # Open clients until the server cannot accept one more.
        idle_fds = open_fds(proc.pid)  # stdio, listener, epoll, wake-up
        open_clients: list[RawClient] = []
        while True:
            assert len(open_clients) < FD_LIMIT, "the server never ran out of descriptors"
            raw = stack.enter_context(RawClient(port, timeout=30))
            raw.sock.sendall(raw.request_bytes())
            # Either it is answered, or it waits in the listen backlog: the server
            # holds every descriptor it may, and each of its connections is one of
            # the clients already answered. (Linux reserves the descriptor before it
            # looks at the backlog, so "cannot accept" is logged right after the last
            # accept, while that client's 101 may still be on its way.)
            wait_for(
                lambda r=raw: (
                    readable(r)
                    or (
                        log.count("cannot accept") > 0
                        and open_fds(proc.pid) >= FD_LIMIT
                        and open_fds(proc.pid) - idle_fds == len(open_clients)
                    )
                ),
                timeout=30,
            )
            if not readable(raw):
                stuck = raw  # in the listen backlog, not accepted
                break
            assert raw.read_head().startswith(b"HTTP/1.1 101 ")
            open_clients.append(raw)
        assert len(open_clients) > 10

        # Saturated: the loop must sleep, not spin on the ready listener. A spinning
        # loop burns a whole core; the bound is a small share of the window.
        before = cpu_seconds(proc.pid)
        window_start = time.monotonic()
        time.sleep(3.0)
        used = cpu_seconds(proc.pid) - before
        window = time.monotonic() - window_start
        assert used < 0.2 * window, f"{used:.2f} s of CPU in {window:.2f} s while saturated"
        assert proc.poll() is None
        assert not readable(stuck)
        assert log.count("cannot accept") == 1  # once per burst, not per retry

        # Free some descriptors: the waiting client is accepted, and new ones too.
        for raw in open_clients[:3]:
            raw.close()
        assert stuck.read_head().startswith(b"HTTP/1.1 101 ")
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=30) as ws:
            ws.send("back")
            assert ws.recv(timeout=30) == "back"
        # The recovered client was served: the rest still answer too.
        for raw in open_clients[3:]:
            raw.send_frame(1, b"still open")
            assert raw.recv_frame().payload == b"still open"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    text = log.join()
    assert text.count("cannot accept") == 1, text
    assert text.count("accepting again") == 1, text
    assert "Traceback" not in text, text
