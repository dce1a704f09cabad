# SPDX-License-Identifier: MIT
"""The Cython handler API (``cimport wsfast.capi``), over real sockets.

The example under ``examples/cython_handler`` is built here against the installed
wsfast (``wsfast.get_include()``), the way a user builds theirs. Its ``Echo`` serves
the ``websockets`` client through ``wsfast.serve``; its ``FeedCounter`` reads a feed
from the ``websockets`` sync server through ``ClientConnection.run``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect
from websockets.sync.server import ServerConnection, serve

import wsfast

from .server_util import KEY, RawClient
from .server_util import running as wsfast_running

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cython_handler"
SIZES = [0, 1, 64, 125, 126, 1024, 65535, 65536, 1 << 20]


@pytest.fixture(scope="module")
def handlers(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The example, compiled in a temporary directory and imported."""
    build = tmp_path_factory.mktemp("cython_handler")
    for name in ("handlers.pyx", "setup.py"):
        shutil.copy(EXAMPLE / name, build / name)
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=build,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (so,) = build.glob("handlers*.so")
    spec = importlib.util.spec_from_file_location("handlers", so)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_get_include_holds_the_public_header() -> None:
    include = Path(wsfast.get_include())
    assert (include / "wsfast" / "capi.pxd").is_file()
    assert (include / "includes" / "wsfast_rs.h").is_file()


def test_get_include_fails_loudly_without_the_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installation built without setup.py (no wsfast/include) must not hand out a
    # directory a Cython build would then fail on obscurely.
    import wsfast._include

    monkeypatch.setattr(wsfast._include, "__file__", str(tmp_path / "_include.py"))
    with pytest.raises(FileNotFoundError, match="Cython declarations are missing"):
        wsfast.get_include()


# The first test that uses the module fixture compiles the example: allow for it.
@pytest.mark.timeout(600)
@pytest.mark.parametrize("compression", [None, "deflate"])
def test_cython_echo_handler_answers_every_size(
    handlers: ModuleType, compression: str | None
) -> None:
    with wsfast_running(handlers.Echo(), max_size=4 << 20) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        with ws_connect(url, compression=compression, max_size=None) as ws:
            for size in SIZES:
                binary = os.urandom(size)
                ws.send(binary)
                assert ws.recv(timeout=10) == binary, size
                text = ("é€𝄞" * size)[:size]
                ws.send(text)
                assert ws.recv(timeout=10) == text, size


def test_cython_echo_handler_answers_a_burst_in_order(handlers: ModuleType) -> None:
    # Many messages in one read: each is dispatched from the same batch of records.
    with wsfast_running(handlers.Echo()) as server:
        with ws_connect(f"ws://127.0.0.1:{server.port}/") as ws:
            messages = [os.urandom(64) for _ in range(500)]
            for message in messages:
                ws.send(message)
            assert [ws.recv(timeout=10) for _ in messages] == messages


def test_cython_echo_of_a_message_read_with_the_peers_close_is_not_an_error(
    handlers: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    # One write, so the server reads the message and the close frame in one read: the
    # core has answered the close before the handler runs, and the echo cannot follow
    # it (RFC 6455 5.5.1). As for a Python handler, that is no handler error.
    caplog.set_level(logging.ERROR, logger="wsfast")
    with wsfast_running(handlers.Echo()) as server, RawClient(server.port) as raw:
        raw.handshake()
        message = wsfast.Frame(wsfast.BINARY, b"last words").serialize(KEY)
        close = wsfast.Frame(wsfast.CLOSE, b"\x03\xe8").serialize(KEY)
        raw.sock.sendall(message + close)
        frame = raw.recv_frame()
        assert (frame.opcode, frame.payload) == (wsfast.CLOSE, b"\x03\xe8")
        raw.read_all()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_chandler_python_on_message_refuses_other_front_ends(handlers: ModuleType) -> None:
    with pytest.raises(TypeError, match="CHandler"):
        handlers.Echo().on_message(None, b"x")


@contextmanager
def feed(send: Callable[[ServerConnection], None]) -> Iterator[str]:
    """A websockets server that runs ``send`` for each client; yields its URL."""
    with serve(send, "127.0.0.1", 0, ping_interval=None, max_size=None) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            host, port = server.socket.getsockname()[:2]
            yield f"ws://{host}:{port}/"
        finally:
            server.shutdown()
            thread.join(10)


def messages(count: int) -> list[Any]:
    """Text and binary messages of varied sizes, some large enough for a bytes handle."""
    out: list[Any] = []
    for i in range(count):
        # Every fifth message is 200 kB: binary ones then come in a bytes object of
        # their own (the record's handle), text ones through Rust's buffer.
        size = 200_000 if i % 5 == 0 else (i * 37) % 2000
        out.append(os.urandom(size) if i % 2 else "x" * size)
    return out


def checksum(items: list[Any]) -> int:
    return sum(sum(m.encode() if isinstance(m, str) else m) for m in items)


def test_cython_feed_reader_receives_every_message(handlers: ModuleType) -> None:
    sent = messages(300)

    def publish(ws: ServerConnection) -> None:
        for message in sent:
            ws.send(message)
        ws.close()

    with feed(publish) as url, wsfast.connect(url, max_size=1 << 20) as conn:
        counter = handlers.FeedCounter()
        assert conn.run(counter) is False  # closed normally
    assert counter.messages == len(sent)
    assert counter.binary == sum(isinstance(m, bytes) for m in sent)
    assert counter.size == sum(len(m) for m in sent)
    assert counter.checksum == checksum(sent)


def test_cython_feed_reader_stops_and_recv_goes_on(handlers: ModuleType) -> None:
    sent = messages(50)

    def publish(ws: ServerConnection) -> None:
        for message in sent:
            ws.send(message)
        ws.recv()  # wait for the client's goodbye

    with feed(publish) as url, wsfast.connect(url, max_size=1 << 20) as conn:
        # Messages already queued as objects are delivered first, then the records.
        assert conn.recv(timeout=10) == sent[0]
        counter = handlers.FeedCounter(20)
        assert conn.run(counter) is True
        assert counter.messages == 20
        assert counter.checksum == checksum(sent[1:21])
        assert [conn.recv(timeout=10) for _ in sent[21:]] == sent[21:]
        conn.send("bye")
