# SPDX-License-Identifier: MIT
"""The demo app over real sockets on 127.0.0.1, with real peers.

* The page over plain HTTP, and the feed, chat and echo over ``/ws`` with the ``websockets``
  client.
* A real browser: headless Chromium (Debian's ``chromium``) opens the page twice, chats through
  the page's own form, and the test reads back from the page that text and binary messages went
  both ways with permessage-deflate negotiated.
* Two ``wsfast demo --redis URL`` processes on different ports share one chat room through a
  real ``redis-server``, seen from a page on each.

The browser is driven over the Chrome DevTools Protocol rather than with ``--dump-dom``: with
``--virtual-time-budget`` the page's clock races ahead of real WebSocket traffic, so a dump
shows a page that has not yet received its messages. Polling the page in real time, each wait
bounded by a deadline, is faster and does not depend on that heuristic.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect

from wsfast.demo import DEFAULT_SYMBOLS, build_server, main
from wsfast.server import Server

from .workers_util import cli, recv_json, redis_server

pytestmark = pytest.mark.timeout(90)

#: Seconds to wait for anything the page or a client should see.
WAIT = 15.0


@pytest.fixture
def demo() -> Iterator[Server]:
    """The demo server, listening on a free port of 127.0.0.1 in a background thread."""
    server = build_server("127.0.0.1", 0)
    server.start()
    try:
        yield server
    finally:
        server.close()


def http_get(url: str) -> tuple[int, str, bytes]:
    """GET ``url``; return the status, the Content-Type and the body (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read()


def recv_binary(ws: ClientConnection) -> bytes:
    """Receive messages until a binary one; return it."""
    deadline = time.monotonic() + WAIT
    while True:
        message = ws.recv(timeout=max(deadline - time.monotonic(), 0.0))
        if isinstance(message, bytes):
            return message


# ---- plain HTTP and the websockets client ----------------------------------------------


def test_get_root_returns_the_page(demo: Server) -> None:
    status, content_type, body = http_get(f"http://127.0.0.1:{demo.port}/")
    assert status == 200
    assert content_type.startswith("text/html")
    assert b"<title>wsfast demo</title>" in body
    assert b"new WebSocket(" in body
    # Everything inline: no external script, stylesheet or image.
    assert b"<script src" not in body
    assert b"<link" not in body


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/index.html", 200), ("/?x=1", 200), ("/health", 200), ("/ws", 426), ("/nope", 404)],
)
def test_other_paths_get_the_server_defaults(demo: Server, path: str, expected: int) -> None:
    status, _, _ = http_get(f"http://127.0.0.1:{demo.port}{path}")
    assert status == expected


def test_client_is_welcomed_with_compression_and_gets_ticker(demo: Server) -> None:
    with connect(f"ws://127.0.0.1:{demo.port}/ws") as ws:
        welcome = recv_json(ws, "welcome")
        assert welcome["compression"].startswith("permessage-deflate")
        assert recv_json(ws, "clients")["count"] == 1
        ticks = [recv_json(ws, "tick") for _ in range(3)]
    assert ticks[0]["time"] < ticks[1]["time"] < ticks[2]["time"]
    quote = ticks[-1]["quotes"][0]
    assert set(quote) == {"symbol", "price", "change"}
    assert len(ticks[-1]["quotes"]) >= 3


def test_client_without_compression_is_told_so(demo: Server) -> None:
    with connect(f"ws://127.0.0.1:{demo.port}/ws", compression=None) as ws:
        assert recv_json(ws, "welcome")["compression"] == ""


def test_chat_is_broadcast_to_every_client(demo: Server) -> None:
    url = f"ws://127.0.0.1:{demo.port}/ws"
    with connect(url) as alice, connect(url) as bob:
        alice_id = recv_json(alice, "welcome")["id"]
        recv_json(bob, "welcome")
        # Both see the second client arrive.
        while recv_json(alice, "clients")["count"] != 2:
            pass
        assert recv_json(bob, "clients")["count"] == 2
        alice.send(json.dumps({"type": "chat", "name": "alice", "text": "héllo  bob"}))
        for ws in (alice, bob):
            chat = recv_json(ws, "chat")
            assert (chat["id"], chat["name"], chat["text"]) == (alice_id, "alice", "héllo bob")
    # A newcomer gets the history, and the counter went back down.
    with connect(url) as carol:
        welcome = recv_json(carol, "welcome")
        assert [m["text"] for m in welcome["history"]] == ["héllo bob"]
        assert recv_json(carol, "clients")["count"] == 1


def test_binary_is_echoed(demo: Server) -> None:
    with connect(f"ws://127.0.0.1:{demo.port}/ws") as ws:
        payload = bytes(range(256)) * 4
        ws.send(payload)
        assert recv_binary(ws) == payload


def test_bad_chat_gets_an_error_not_a_close(demo: Server) -> None:
    with connect(f"ws://127.0.0.1:{demo.port}/ws") as ws:
        ws.send("not json")
        assert recv_json(ws, "error")["error"] == "message is not valid JSON"
        ws.send(json.dumps({"type": "chat", "text": "  "}))
        assert recv_json(ws, "error")["error"] == "empty chat message"
        ws.send(b"x")
        assert recv_binary(ws) == b"x"


def test_cli_serves_the_demo_until_sigint() -> None:
    # `python -m wsfast demo` on a free port; Ctrl-C closes the clients with 1001, exits 0.
    with cli("demo", "--host", "127.0.0.1", "--port", "0") as (process, port):
        assert http_get(f"http://127.0.0.1:{port}/")[0] == 200
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            recv_json(ws, "tick")
            process.send_signal(signal.SIGINT)
            with pytest.raises(ConnectionClosedOK):
                while True:
                    ws.recv(timeout=WAIT)
            assert ws.close_code == 1001
        _, stderr = process.communicate(timeout=WAIT)
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr


def test_main_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(argparse.Namespace(host="127.0.0.1", port=port)) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_main_reports_an_unsupported_broker(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(host="127.0.0.1", port=0, workers=1, redis="nats://127.0.0.1:1")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("wsfast demo: ") and "nats://127.0.0.1:1" in err


# ---- a real browser ----------------------------------------------------------------------


def chromium_path() -> str:
    """Where Chromium is; skip when it is missing, unless running in CI (then fail)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI is set: the browser test must run")
        pytest.skip("chromium is not installed (apt-get install chromium; CI=1 makes this fail)")
    return path


class DevTools:
    """A small Chrome DevTools Protocol client over the browser's WebSocket endpoint.

    Args:
        ws: a connection to the ``ws://127.0.0.1:PORT/devtools/browser/...`` endpoint.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._next_id = 0
        self._targets: dict[str, str] = {}

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send a command and return its result; events in between are ignored."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            command["sessionId"] = session
        self._ws.send(json.dumps(command))
        deadline = time.monotonic() + WAIT
        while True:
            reply = json.loads(self._ws.recv(timeout=max(deadline - time.monotonic(), 0.0)))
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def open_page(self, url: str) -> str:
        """Open ``url`` in a new tab; return the session to talk to that tab."""
        target = self.call("Target.createTarget", url=url)["targetId"]
        reply = self.call("Target.attachToTarget", targetId=target, flatten=True)
        session: str = reply["sessionId"]
        self._targets[session] = target
        return session

    def close_page(self, session: str) -> None:
        """Close the tab of ``session``."""
        self.call("Target.closeTarget", targetId=self._targets.pop(session))

    def evaluate(self, session: str, expression: str) -> Any:
        """Evaluate a JavaScript expression in a tab; return its value (JSON-able)."""
        result = self.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised {result['exceptionDetails']}")
        return result["result"].get("value")

    def status(self, session: str) -> dict[str, Any]:
        """The page's self-reported status (the JSON in ``<pre id="status">``)."""
        text = self.evaluate(
            session, "(document.getElementById('status') || {textContent: '{}'}).textContent"
        )
        status: dict[str, Any] = json.loads(text or "{}")
        return status

    def wait_status(
        self, session: str, what: str, check: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """Poll a tab's status until ``check`` holds; fail after ``WAIT`` seconds."""
        deadline = time.monotonic() + WAIT
        status = self.status(session)
        while not check(status):
            if time.monotonic() > deadline:
                pytest.fail(f"page never reached {what}: {status}")
            time.sleep(0.05)
            status = self.status(session)
        return status


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    """Headless Chromium, its DevTools endpoint on a free port of 127.0.0.1."""
    chromium = chromium_path()
    profile = tmp_path / "profile"
    args = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    log_path = tmp_path / "chromium.log"
    with log_path.open("wb") as log:
        # A session of its own, so the wrapper script and every Chromium process stop together.
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    try:
        # Chromium writes the port it picked, then the browser endpoint's path, to this file.
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30.0
        lines: list[str] = []
        while len(lines) < 2:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start: {log_path.read_text(errors='replace')}")
            time.sleep(0.05)
            if port_file.exists():
                lines = port_file.read_text().split()
        url = f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        with connect(url, max_size=None, compression=None, open_timeout=WAIT) as ws:
            devtools = DevTools(ws)
            yield devtools
            devtools.call("Browser.close")
        process.wait(timeout=WAIT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=WAIT)


@pytest.mark.browser
def test_browser_exchanges_text_and_binary_with_compression(
    demo: Server, browser: DevTools
) -> None:
    url = f"http://127.0.0.1:{demo.port}/"
    first = browser.open_page(url)
    second = browser.open_page(url)

    # Both pages connect, get prices and the counter; the page sends a binary ping on open
    # and checks that the echo came back intact.
    for page in (first, second):
        status = browser.wait_status(
            page,
            "open, 2 clients, 3 ticks, binary echoed",
            lambda s: (
                s.get("connected") is True
                and s["clients"] == 2
                and s["ticks"] >= 3
                and s["binary_ok"] is True
            ),
        )
        assert status["binary_sent"] is True and status["binary_received"] is True
        assert status["text_received"] is True
        assert status["compression"].startswith("permessage-deflate"), status
    rendered = browser.evaluate(
        first,
        "[document.querySelectorAll('#prices tr').length,"
        " document.getElementById('compression').textContent,"
        " document.getElementById('clients').textContent]",
    )
    assert rendered == [len(DEFAULT_SYMBOLS), "permessage-deflate", "2"]

    # Chat through the page's own form, as a person would.
    browser.evaluate(
        first,
        "document.getElementById('chat-input').value = 'hello from chromium';"
        "document.getElementById('chat-form').requestSubmit()",
    )
    status = browser.wait_status(first, "own chat echoed", lambda s: s["chat_echo"] is True)
    assert status["text_sent"] is True
    browser.wait_status(second, "chat from the other tab", lambda s: s["chat_messages"] >= 1)
    log = browser.evaluate(second, "document.getElementById('chat-log').textContent")
    assert "hello from chromium" in log

    # The button sends another binary ping.
    browser.evaluate(second, "document.getElementById('bin-send').click()")
    browser.wait_status(second, "second binary echo", lambda s: s["binary_echoed"] >= 2)

    # Closing a tab brings the counter down on the other one.
    browser.close_page(second)
    browser.wait_status(first, "1 client after a tab closed", lambda s: s["clients"] == 1)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A throwaway redis-server (skips the test without the Redis engine)."""
    with redis_server() as url:
        yield url


@pytest.mark.browser
def test_browser_chats_across_two_demo_processes_through_redis(
    redis_url: str, browser: DevTools
) -> None:
    with (
        cli("demo", "--port", "0", "--redis", redis_url) as (first_demo, port_a),
        cli("demo", "--port", "0", "--redis", redis_url) as (second_demo, port_b),
    ):
        assert port_a != port_b
        first = browser.open_page(f"http://127.0.0.1:{port_a}/")
        second = browser.open_page(f"http://127.0.0.1:{port_b}/")
        for page in (first, second):
            browser.wait_status(
                page, "open with ticks", lambda s: s.get("connected") is True and s["ticks"] >= 1
            )
        # Each process subscribes to Redis in the background: chat until one crosses.
        deadline = time.monotonic() + WAIT
        while browser.status(second)["chat_messages"] < 1:
            if time.monotonic() > deadline:
                pytest.fail("no chat crossed from one demo process to the other")
            browser.evaluate(
                first,
                "document.getElementById('chat-input').value = 'hello through redis';"
                "document.getElementById('chat-form').requestSubmit()",
            )
            time.sleep(0.5)
        browser.wait_status(first, "own chat echoed", lambda s: s["chat_echo"] is True)
        log = browser.evaluate(second, "document.getElementById('chat-log').textContent")
        assert "hello through redis" in log
        for process in (first_demo, second_demo):
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=WAIT)
            assert process.returncode == 0, stderr
