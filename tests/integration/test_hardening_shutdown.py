# SPDX-License-Identifier: MIT
"""Graceful shutdown under load, in-process and by SIGTERM of the command line."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

import wsfast
from wsfast.connection import Connection
from wsfast.server import Handler, serve

from .server_util import RawClient, wait_for
from .workers_util import cli

CLIENTS = 20
MESSAGES = 50
SIZE = 16384


class CountingEcho(Handler):
    """Echoes, counts the sends each connection accepted, and starts the shutdown
    itself (on the loop thread) when the ``trigger``-th message arrives."""

    def __init__(self, trigger: int) -> None:
        self.trigger = trigger
        self.received = 0
        self.accepted: dict[int, int] = {}

    def on_open(self, conn: Connection) -> None:
        assert conn.remote_address is not None
        self.accepted[conn.remote_address[1]] = 0

    def on_message(self, conn: Connection, data: str | bytes) -> None:
        self.received += 1
        if self.received == self.trigger:
            # Deterministic "mid-stream": the rest of the clients' messages are
            # still in flight or unread when the shutdown begins.
            conn.server.close(drain=60.0)  # type: ignore[attr-defined]
        conn.send(data)  # raises ConnectionClosed once the shutdown has begun
        assert conn.remote_address is not None
        self.accepted[conn.remote_address[1]] += 1


def test_shutdown_under_load_delivers_every_accepted_message_then_1001() -> None:
    trigger = CLIENTS * MESSAGES // 2
    handler = CountingEcho(trigger)
    server = serve(
        handler,
        "127.0.0.1",
        0,
        ping_interval=None,
        close_timeout=60.0,
        compression=False,
        # Never paused: the clients read nothing until every message is sent, and
        # the server must keep reading them (a paused connection stops reading).
        write_limit=(256 << 20, 64 << 20),
    ).start()
    try:
        with contextlib.ExitStack() as stack:
            clients = [
                stack.enter_context(RawClient(server.port, timeout=60)) for _ in range(CLIENTS)
            ]
            for raw in clients:
                raw.handshake()
            wait_for(lambda: len(handler.accepted) == CLIENTS)
            sent: list[list[bytes]] = []
            for raw in clients:
                messages = [os.urandom(SIZE) for _ in range(MESSAGES)]
                sent.append(messages)
                burst = b"".join(
                    wsfast.Frame(wsfast.Opcode.BINARY, m).serialize(b"\x01\x02\x03\x04")
                    for m in messages
                )
                raw.sock.sendall(burst)
            for raw, messages in zip(clients, sent, strict=True):
                code, _, frames = raw.recv_until_close()
                assert code == 1001
                port = raw.sock.getsockname()[1]
                # Exactly the accepted sends, in order, none lost or invented.
                assert [f.payload for f in frames] == messages[: handler.accepted[port]]
                raw.send_frame(wsfast.Opcode.CLOSE, b"\x03\xe9")
                assert raw.at_eof(30.0)
        # The handler's trigger message was not echoed: the shutdown came first.
        assert sum(handler.accepted.values()) == trigger - 1
    finally:
        server.close()
    assert not server.is_serving


# ---- SIGTERM of the command line -------------------------------------------------------


def terminate(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    return proc.returncode, stderr


@pytest.mark.parametrize(
    "args", [("echo",), ("serve", "tests.integration.server_util:Echo")], ids=["echo", "serve"]
)
def test_sigterm_closes_every_client_with_1001_and_exits_0(args: tuple[str, ...]) -> None:
    cli_args = (*args, "--host", "127.0.0.1", "--port", "0")
    with cli(*cli_args) as (proc, port), contextlib.ExitStack() as stack:
        clients: list[Any] = [
            stack.enter_context(connect(f"ws://127.0.0.1:{port}/")) for _ in range(3)
        ]
        for i, ws in enumerate(clients):
            ws.send(f"before {i}")
            assert ws.recv(timeout=10) == f"before {i}"
        status, stderr = terminate(proc)
        assert status == 0, stderr
        assert "Traceback" not in stderr, stderr
        assert "received SIGTERM: closing" in stderr
        for ws in clients:
            with pytest.raises(ConnectionClosedOK) as info:
                ws.recv(timeout=10)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001
