# SPDX-License-Identifier: MIT
"""10,000 connections open at once on one server process, all of them exchanging messages."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 10_000


def test_ten_thousand_busy_connections(tmp_path: Path) -> None:
    """Every connection completes its handshake, echoes 3 verified messages while all
    10,000 are open, and closes cleanly; the server frees every descriptor afterwards."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CONNECTIONS + 256:
        pytest.fail(f"the hard descriptor limit ({hard}) is below {CONNECTIONS + 256}")
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "many_connections.py"),
            "--connections",
            str(CONNECTIONS),
            "--rounds",
            "3",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["server_fds_open"] >= CONNECTIONS
    assert report["all_open_during_echoes"]
    assert report["echoes"] == report["expected_echoes"] == 3 * CONNECTIONS
    assert report["clean_closes"] == CONNECTIONS
    # Listening socket, epoll fd, wakeup pipe...: back to what the idle server had.
    assert report["server_fds_after"] < 32
    # A regression guard on memory (RSS delta per connection; the benchmark reports it).
    assert report["kib_per_connection"] < 8, report
