# SPDX-License-Identifier: MIT
"""Keepalive of both clients: a server that stops answering is detected.

The dead server is a real TCP peer that completes the opening handshake and then
never sends another byte (as a frozen or partitioned server would). The tests use
short intervals and assert only the outcome, with a generous upper bound.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wsfast.asyncio
from wsfast.client import ClientConnection, connect
from wsfast.exceptions import ConnectionClosedError
from wsfast.frames import State

from .scripted_peer import ScriptedPeer

# Far above ping_interval + ping_timeout, for a loaded machine.
BOUND = 30.0


@pytest.fixture
def silent_server() -> Iterator[ScriptedPeer]:
    with ScriptedPeer("open-silent") as peer:
        yield peer


@pytest.fixture
def live_server() -> Iterator[ScriptedPeer]:
    with ScriptedPeer("open-live") as peer:
        yield peer


def recv_fails_on_keepalive_timeout(ws: ClientConnection) -> ConnectionClosedError:
    """A blocking ``recv()`` fails within BOUND: the client's keepalive gave up on the
    silent server and closed the connection. Return the error."""
    started = time.monotonic()
    with pytest.raises(ConnectionClosedError) as info:
        ws.recv()
    assert time.monotonic() - started < BOUND
    assert info.value.sent_code == 1011
    assert info.value.sent_reason == "keepalive ping timeout"
    assert ws.state is State.CLOSED
    return info.value


def test_blocking_recv_raises_when_server_stops_answering(silent_server: ScriptedPeer) -> None:
    ws = connect(silent_server.url, ping_interval=0.2, ping_timeout=0.2, proxy=None)
    # recv() without a timeout: the hot path, blocked in the kernel.
    assert recv_fails_on_keepalive_timeout(ws).code == 1006
    ws.close()


def test_blocking_keepalive_detects_dead_server_without_a_receiver(
    silent_server: ScriptedPeer,
) -> None:
    ws = connect(silent_server.url, ping_interval=0.2, ping_timeout=0.2, proxy=None)
    deadline = time.monotonic() + BOUND
    while ws.state is not State.CLOSED:
        assert time.monotonic() < deadline, "keepalive did not close the connection"
        time.sleep(0.01)
    with pytest.raises(ConnectionClosedError) as info:
        ws.recv(1)
    assert info.value.sent_code == 1011


def test_blocking_keepalive_keeps_a_live_connection(live_server: ScriptedPeer) -> None:
    with connect(live_server.url, ping_interval=0.01, ping_timeout=BOUND, proxy=None) as ws:
        # Pongs are read by whoever receives: here, the keepalive thread itself.
        with live_server.changed:
            assert live_server.changed.wait_for(lambda: live_server.pings >= 5, BOUND)
        assert ws.state is State.OPEN
        ws.send("still here")
        assert ws.recv(BOUND) == "still here"


def test_blocking_keepalive_with_a_thread_blocked_in_recv(live_server: ScriptedPeer) -> None:
    with connect(live_server.url, ping_interval=0.01, ping_timeout=BOUND, proxy=None) as ws:
        received: list[Any] = []
        reader = threading.Thread(target=lambda: received.append(ws.recv(BOUND)))
        reader.start()
        with live_server.changed:
            assert live_server.changed.wait_for(lambda: live_server.pings >= 5, BOUND)
        ws.send("done")
        reader.join(BOUND)
        assert received == ["done"]
        assert ws.state is State.OPEN


def test_blocking_keepalive_can_be_disabled(silent_server: ScriptedPeer) -> None:
    with connect(silent_server.url, ping_interval=None, close_timeout=0.5, proxy=None) as ws:
        assert ws._keepalive is None
        with pytest.raises(TimeoutError):
            ws.recv(0.3)
        assert ws.state is State.OPEN


def test_blocking_keepalive_defaults_match_websockets(live_server: ScriptedPeer) -> None:
    with connect(live_server.url, proxy=None) as ws:
        assert ws._keepalive is not None
        assert ws._keepalive.is_alive()


@pytest.mark.parametrize("option", ["ping_interval", "ping_timeout"])
@pytest.mark.parametrize("value", [0, -1.0])
def test_keepalive_options_must_be_positive(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=option):
        connect("ws://127.0.0.1:1/", proxy=None, **{option: value})
    with pytest.raises(ValueError, match=option):
        wsfast.asyncio.connect("ws://127.0.0.1:1/", proxy=None, **{option: value})


def test_asyncio_recv_raises_when_server_stops_answering(
    run: Any, silent_server: ScriptedPeer
) -> None:
    async def main() -> None:
        ws = await wsfast.asyncio.connect(
            silent_server.url, ping_interval=0.2, ping_timeout=0.2, proxy=None
        )
        async with asyncio.timeout(BOUND):
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.sent_code == 1011
        assert info.value.sent_reason == "keepalive ping timeout"
        assert ws.state is State.CLOSED
        await ws.close()

    run(main())


def test_asyncio_keepalive_keeps_a_live_connection(run: Any, live_server: ScriptedPeer) -> None:
    async def main() -> None:
        async with wsfast.asyncio.connect(
            live_server.url, ping_interval=0.01, ping_timeout=BOUND, proxy=None
        ) as ws:
            async with asyncio.timeout(BOUND):
                while live_server.pings < 5:
                    await asyncio.sleep(0.01)
            assert ws.state is State.OPEN
            await ws.send("still here")
            assert await ws.recv() == "still here"

    run(main())


def test_asyncio_keepalive_can_be_disabled(run: Any, silent_server: ScriptedPeer) -> None:
    async def main() -> None:
        async with wsfast.asyncio.connect(
            silent_server.url, ping_interval=None, close_timeout=0.5, proxy=None
        ) as ws:
            assert ws._keepalive is None
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
            assert ws.state is State.OPEN

    run(main())


# ---- TLS: the keepalive runs in the receiving thread -----------------------------------


def tls_contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*certificate)
    return server, ssl.create_default_context(cafile=str(certificate[0]))


def test_blocking_tls_recv_raises_when_server_stops_answering(
    certificate: tuple[Path, Path],
) -> None:
    server_tls, client_tls = tls_contexts(certificate)
    with ScriptedPeer("open-silent", ssl=server_tls) as peer:
        ws = connect(peer.url, ssl=client_tls, ping_interval=0.2, ping_timeout=0.2, proxy=None)
        assert ws._keepalive is None  # no thread: OpenSSL forbids concurrent use
        recv_fails_on_keepalive_timeout(ws)
        ws.close()


def test_blocking_tls_keepalive_keeps_a_live_connection(certificate: tuple[Path, Path]) -> None:
    server_tls, client_tls = tls_contexts(certificate)
    with ScriptedPeer("open-live", ssl=server_tls) as peer:
        with connect(
            peer.url, ssl=client_tls, ping_interval=0.01, ping_timeout=BOUND, proxy=None
        ) as ws:
            deadline = time.monotonic() + BOUND
            while peer.pings < 5:
                assert time.monotonic() < deadline
                with pytest.raises(TimeoutError):
                    ws.recv(0.05)
            ws.send("still here")
            assert ws.recv(BOUND) == "still here"
            assert ws.state is State.OPEN
