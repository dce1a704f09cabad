# SPDX-License-Identifier: MIT
"""The live dashboard: its page and feed over real sockets, and the page in Chromium.

The browser part drives headless Chromium over the DevTools protocol, as the demo's
test does (``test_browser.py``, whose client and fixture it reuses): the page must
connect to its feed, chart a nonzero connection count and message rates. Set
``WSFAST_UPDATE_SCREENSHOTS=1`` to write the screenshot to ``docs/img/dashboard.png``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

import wsfast
from wsfast.config import DEFAULT_DASHBOARD_PATH
from wsfast.metrics import ServerStats
from wsfast.server import Server

from .server_util import Echo, RawClient, running
from .test_browser import DevTools, browser, http_get

__all__ = ["browser"]  # the fixture, imported for the browser test

pytestmark = pytest.mark.timeout(90)

FEED = DEFAULT_DASHBOARD_PATH + "/feed"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"


def test_dashboard_page_is_one_self_contained_document() -> None:
    with running(dashboard=True) as server:
        status, content_type, body = http_get(
            f"http://127.0.0.1:{server.port}{DEFAULT_DASHBOARD_PATH}"
        )
    assert status == 200
    assert content_type.startswith("text/html")
    assert b"<title>wsfast dashboard</title>" in body
    assert b"new WebSocket(" in body and b"<canvas" in body
    # Works offline: no external script, stylesheet, font or image.
    assert b"<script src" not in body and b"<link" not in body and b"://" not in body


def test_feed_pushes_stats_on_open_then_every_second() -> None:
    with running(dashboard=True) as server:
        with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            ws.send("x")
            ws.recv()
            with connect(f"ws://127.0.0.1:{server.port}{FEED}") as feed:
                first = json.loads(feed.recv(timeout=5))
                second = json.loads(feed.recv(timeout=5))
    assert first["connections_open"] == 2  # the echo client and the feed itself
    assert first["messages_received"] == 1
    assert second["uptime"] > first["uptime"]
    assert set(first) == set(ServerStats.__dataclass_fields__)


def test_dashboard_is_off_by_default() -> None:
    with running(handler=None, routes={"/ws": Echo}) as server:
        assert http_get(f"http://127.0.0.1:{server.port}{DEFAULT_DASHBOARD_PATH}")[0] == 404


def test_dashboard_paths_refuse_other_methods_and_skip_handlers() -> None:
    handshakes: list[str] = []

    class Recorder(Echo):
        def on_handshake(self, request: wsfast.Request) -> None:
            handshakes.append(request.path)

    with running(Recorder, dashboard="/ops") as server:
        for path in ("/ops", "/ops/feed"):
            with RawClient(server.port) as client:
                client.sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                head = client.read_head()
            assert head.startswith(b"HTTP/1.1 405 ") and b"Allow: GET" in head
        # A plain GET of the feed asks for an upgrade; the feed upgrades without the
        # application's handler.
        assert http_get(f"http://127.0.0.1:{server.port}/ops/feed")[0] == 426
        with RawClient(server.port) as client:
            client.handshake("/ops/feed")
            assert json.loads(client.recv_frame().payload)["connections_open"] == 1
    assert handshakes == []


# ---- a real browser ------------------------------------------------------------------


def traffic(server: Server, stop: threading.Event) -> None:
    """Three clients echoing messages at a steady pace until ``stop``."""
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(f"ws://127.0.0.1:{server.port}/")) for _ in range(3)]
        while not stop.is_set():
            for ws in clients:
                ws.send("tick")
                ws.recv(timeout=10)
            time.sleep(0.02)


@pytest.mark.browser
def test_browser_charts_connections_and_message_rates(browser: DevTools, tmp_path: Path) -> None:
    with running(dashboard=True) as server:
        stop = threading.Event()
        thread = threading.Thread(target=traffic, args=(server, stop), daemon=True)
        thread.start()
        try:
            page = browser.open_page(f"http://127.0.0.1:{server.port}{DEFAULT_DASHBOARD_PATH}")
            browser.call(
                "Emulation.setDeviceMetricsOverride",
                page,
                width=1200,
                height=720,
                deviceScaleFactor=1,
                mobile=False,
            )
            status = browser.wait_status(
                page,
                "connected, 4 connections, 8 samples with messages",
                lambda s: (
                    s.get("connected") is True
                    and s.get("connections_open", 0) >= 4
                    and s.get("samples", 0) >= 8
                    and s.get("messages_received", 0) > 0
                ),
            )
            rendered: Any = browser.evaluate(
                page,
                "[document.getElementById('conn-open').textContent,"
                " document.getElementById('state').textContent,"
                " samples.some((s) => s.inRate > 0),"
                " document.getElementById('chart-connections').width > 0]",
            )
            shot = browser.call("Page.captureScreenshot", page, format="png")
        finally:
            stop.set()
            thread.join(15)
    assert int(rendered[0]) == status["connections_open"] >= 4
    assert rendered[1:] == ["open", True, True]
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG")
    (tmp_path / "dashboard.png").write_bytes(png)
    if os.environ.get("WSFAST_UPDATE_SCREENSHOTS"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(png)
