# SPDX-License-Identifier: MIT
"""Reconnecting clients: ``for ws in connect(url, reconnect=True)`` and
``async for ws in wsfast.asyncio.connect(url)``.

A real wsfast server is stopped and started again on the same port. Between the
two, the port is held by a peer that drops every connection, so the client's
failed attempts (and their retries) are observed instead of timed: the new server
starts once two attempts were dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from typing import Any

import pytest

import wsfast.asyncio
from wsfast._client_common import Backoff, is_transient
from wsfast.client import connect
from wsfast.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidHeader,
    InvalidProxyStatus,
    InvalidStatus,
    ProxyError,
)
from wsfast.server import Server, serve

from .scripted_peer import ScriptedPeer
from .server_util import Echo

BOUND = 30.0
FAST = {"backoff_initial_delay": 0.01, "backoff_max_delay": 0.05, "proxy": None}


# ---- backoff and the retry rule (no I/O) ---------------------------------------------


def test_backoff_grows_exponentially_up_to_the_maximum() -> None:
    backoff = Backoff(initial_delay=1.0, factor=2.0, max_delay=5.0, jitter=0.0)
    assert list(itertools.islice(backoff.delays(), 6)) == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_backoff_jitter_takes_off_at_most_its_fraction() -> None:
    backoff = Backoff(initial_delay=1.0, factor=2.0, max_delay=8.0, jitter=0.5)
    assert list(itertools.islice(backoff.delays(lambda: 1.0), 3)) == [0.5, 1.0, 2.0]
    assert list(itertools.islice(backoff.delays(lambda: 0.0), 3)) == [1.0, 2.0, 4.0]


def test_backoff_defaults_spread_reconnections() -> None:
    delays = list(itertools.islice(Backoff().delays(), 50))
    assert all(0.0 <= delay <= 90.0 for delay in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(
    "options",
    [
        {"initial_delay": -1.0},
        {"initial_delay": 10.0, "max_delay": 1.0},
        {"factor": 0.5},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
def test_backoff_rejects_bad_settings(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**options)


def test_bad_backoff_settings_fail_at_connect() -> None:
    with pytest.raises(ValueError, match="backoff"):
        connect("ws://127.0.0.1:1/", reconnect=True, backoff_factor=0.1)
    with pytest.raises(ValueError, match="backoff"):
        wsfast.asyncio.connect("ws://127.0.0.1:1/", backoff_jitter=2.0)


def early_close() -> InvalidHandshake:
    exc = InvalidHandshake("connection closed during the opening handshake")
    exc.__cause__ = EOFError()
    return exc


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (early_close(), True),
        (InvalidStatus(503), True),
        (InvalidStatus(500), True),
        (InvalidProxyStatus(502, "http://proxy:8080"), True),
        (InvalidStatus(403), False),
        (InvalidStatus(404), False),
        (InvalidProxyStatus(407, "http://proxy:8080"), False),
        (InvalidHeader("missing Upgrade"), False),
        (ProxyError("refused"), False),
        (ValueError("bad URL"), False),
    ],
)
def test_which_errors_are_retried(exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient


# ---- the blocking client ---------------------------------------------------------------


def restart_when_dropped(
    holder: ScriptedPeer, port: int, started: list[Server]
) -> threading.Thread:
    """Once the holder dropped two attempts, free the port and start a new server."""

    def restart() -> None:
        holder.wait_accepted(2)
        holder.close()
        started.append(serve(Echo, "127.0.0.1", port, ping_interval=None).start())

    thread = threading.Thread(target=restart)
    thread.start()
    return thread


def test_blocking_loop_reconnects_after_the_server_restarts() -> None:
    server = serve(Echo, "127.0.0.1", 0, ping_interval=None).start()
    port = server.port
    started: list[Server] = [server]
    holder: ScriptedPeer | None = None
    restarter: threading.Thread | None = None
    answers = []
    try:
        for ws in connect(f"ws://127.0.0.1:{port}/", reconnect=True, ping_interval=None, **FAST):
            ws.send(f"hello {len(answers)}")
            answers.append(ws.recv(BOUND))
            if len(answers) == 2:
                break
            server.close(drain=1.0)
            with pytest.raises(ConnectionClosed):
                ws.recv(BOUND)
            holder = ScriptedPeer("drop", port=port)
            restarter = restart_when_dropped(holder, port, started)
        assert answers == ["hello 0", "hello 1"]
        assert holder is not None
        assert holder.accepted >= 2
    finally:
        if restarter is not None:
            restarter.join(BOUND)
        if holder is not None:
            holder.close()
        for each in started:
            each.close(drain=1.0)


def test_blocking_loop_retries_5xx_and_early_close() -> None:
    with ScriptedPeer("503", "drop", "open-live") as peer:
        for ws in connect(peer.url, reconnect=True, ping_interval=None, **FAST):
            ws.send("made it")
            assert ws.recv(BOUND) == "made it"
            break
        assert peer.accepted == 3


def test_blocking_loop_ends_with_invalid_status_on_403() -> None:
    with ScriptedPeer("403") as peer:
        with pytest.raises(InvalidStatus) as info:
            for _ws in connect(peer.url, reconnect=True, **FAST):
                pytest.fail("no connection expected")
        assert info.value.status == 403
        assert peer.accepted == 1


def test_blocking_loop_break_closes_the_connection() -> None:
    with ScriptedPeer("open-live") as peer:
        connections = connect(peer.url, reconnect=True, ping_interval=None, **FAST)
        ws = next(connections)
        assert ws.state.name == "OPEN"
        del connections  # finalizing the loop closes its connection
        assert ws.state.name == "CLOSED"


def test_blocking_loop_gives_a_new_connection_each_time() -> None:
    with ScriptedPeer("open-live") as peer:
        seen = []
        for ws in connect(peer.url, reconnect=True, ping_interval=None, **FAST):
            seen.append(ws)
            if len(seen) == 3:
                break
        assert len({id(ws) for ws in seen}) == 3
        assert all(ws.state.name == "CLOSED" for ws in seen[:2])
        assert peer.accepted == 3


# ---- the asyncio client ----------------------------------------------------------------


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


def test_asyncio_loop_reconnects_after_the_server_restarts(run: Any) -> None:
    async def main() -> list[str]:
        server = await wsfast.asyncio.serve(echo, "127.0.0.1", 0, ping_interval=None)
        port = server.sockets[0].getsockname()[1]
        servers = [server]
        holder: ScriptedPeer | None = None

        async def restart() -> None:
            assert holder is not None
            async with asyncio.timeout(BOUND):
                while holder.accepted < 2:
                    await asyncio.sleep(0.01)
            holder.close()
            servers.append(await wsfast.asyncio.serve(echo, "127.0.0.1", port, ping_interval=None))

        answers: list[str] = []
        restarter = None
        try:
            client = wsfast.asyncio.connect(f"ws://127.0.0.1:{port}/", ping_interval=None, **FAST)
            async with contextlib.aclosing(aiter(client)) as connections:
                async for ws in connections:
                    await ws.send(f"hello {len(answers)}")
                    answers.append(str(await ws.recv()))
                    if len(answers) == 2:
                        break
                    server.close()
                    await server.wait_closed()
                    with pytest.raises(ConnectionClosed):
                        await ws.recv()
                    holder = ScriptedPeer("drop", port=port)
                    restarter = asyncio.create_task(restart())
            assert holder is not None
            assert holder.accepted >= 2
        finally:
            if restarter is not None:
                await restarter
            if holder is not None:
                holder.close()
            for each in servers:
                each.close()
                await each.wait_closed()
        return answers

    assert run(main()) == ["hello 0", "hello 1"]


def test_asyncio_loop_retries_5xx_and_early_close(run: Any) -> None:
    async def main() -> None:
        with ScriptedPeer("503", "drop", "open-live") as peer:
            client = wsfast.asyncio.connect(peer.url, ping_interval=None, **FAST)
            async with contextlib.aclosing(aiter(client)) as connections:
                async for ws in connections:
                    await ws.send("made it")
                    assert await ws.recv() == "made it"
                    break
            assert peer.accepted == 3

    run(main())


def test_asyncio_loop_ends_with_invalid_status_on_403(run: Any) -> None:
    async def main() -> None:
        with ScriptedPeer("403") as peer:
            with pytest.raises(InvalidStatus) as info:
                async for _ws in wsfast.asyncio.connect(peer.url, **FAST):
                    pytest.fail("no connection expected")
            assert info.value.status == 403
            assert peer.accepted == 1

    run(main())


def test_asyncio_loop_gives_a_new_connection_each_time(run: Any) -> None:
    async def main() -> None:
        with ScriptedPeer("open-live") as peer:
            seen = []
            client = wsfast.asyncio.connect(peer.url, ping_interval=None, **FAST)
            async with contextlib.aclosing(aiter(client)) as connections:
                async for ws in connections:
                    seen.append(ws)
                    if len(seen) == 3:
                        break
            assert len({id(ws) for ws in seen}) == 3
            assert all(ws.state.name == "CLOSED" for ws in seen)
            assert peer.accepted == 3

    run(main())
