# SPDX-License-Identifier: MIT
"""wsfast.asyncio's client against the ``websockets`` asyncio server and ``wsfast.serve``.

Every test runs on asyncio's default loop and, when it is installed, on uvloop.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response

import wsfast.asyncio
from wsfast import DeflateConfig
from wsfast.exceptions import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatus,
)
from wsfast.frames import State

from .scripted_peer import ScriptedPeer
from .server_util import Echo
from .server_util import running as wsfast_running

BIG = 32 << 20


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@asynccontextmanager
async def server(handler: Callable[[ServerConnection], Awaitable[None]] = echo, **kwargs: Any
                 ) -> AsyncIterator[str]:  # fmt: skip
    """A websockets asyncio server on 127.0.0.1; yields its URL."""
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("max_size", BIG)
    async with serve(handler, "127.0.0.1", 0, **kwargs) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_echo_of_every_size(run: Any, compression: str | None) -> None:
    async def main() -> None:
        async with (
            server(compression=compression) as url,
            wsfast.asyncio.connect(url, max_size=BIG) as ws,
        ):
            assert ws.state is State.OPEN
            assert (ws.deflate_params is not None) == (compression is not None)
            for size in (0, 1, 125, 126, 65536, 1 << 20, 16 << 20):
                data = os.urandom(size)
                await ws.send(data)
                assert await ws.recv() == data
                await ws.send("é" * (size // 2))
                assert await ws.recv() == "é" * (size // 2)
        assert ws.state is State.CLOSED

    run(main())


@pytest.mark.parametrize(
    "config",
    [
        DeflateConfig(),
        DeflateConfig(server_no_context_takeover=True),
        DeflateConfig(client_no_context_takeover=True),
        DeflateConfig(server_no_context_takeover=True, client_no_context_takeover=True),
        DeflateConfig(server_max_window_bits=10, client_max_window_bits=9),
        DeflateConfig(level=1),
    ],
    ids=["default", "server_nct", "client_nct", "both_nct", "window_bits", "level1"],
)
def test_compression_parameters(run: Any, config: Any) -> None:
    async def main() -> None:
        factory = ServerPerMessageDeflateFactory(
            server_max_window_bits=config.server_max_window_bits,
            client_max_window_bits=config.client_max_window_bits,
            server_no_context_takeover=config.server_no_context_takeover,
            client_no_context_takeover=config.client_no_context_takeover,
        )
        async with (
            server(extensions=[factory], compression=None) as url,
            wsfast.asyncio.connect(url, compression=config) as ws,
        ):
            assert ws.deflate_params is not None
            messages = [f'{{"price": {i * 1.5}, "id": {i}}}' * 20 for i in range(50)]
            for message in messages:
                await ws.send(message)
            assert [await ws.recv() for _ in messages] == messages

    run(main())


def test_iteration_ends_on_normal_closure(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        for i in range(10_000):
            await ws.send(str(i))
        await ws.close(1001, "going away")

    async def main() -> None:
        async with server(handler) as url, wsfast.asyncio.connect(url) as ws:
            received = [message async for message in ws]
            assert received == [str(i) for i in range(10_000)]
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.recv()
            assert (info.value.code, info.value.reason) == (1001, "going away")

    run(main())


def test_error_close_code(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("last")
        await ws.close(4000, "custom")

    async def main() -> None:
        async with server(handler) as url, wsfast.asyncio.connect(url) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                async for message in ws:
                    assert message == "last"
            assert info.value.code == 4000

    run(main())


def test_client_close_code_reaches_the_server(run: Any) -> None:
    async def main() -> None:
        seen: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

        async def handler(ws: ServerConnection) -> None:
            await ws.wait_closed()
            assert ws.close_code is not None
            seen.set_result((ws.close_code, ws.close_reason or ""))

        async with server(handler) as url:
            ws = await wsfast.asyncio.connect(url)
            await ws.close(4001, "done")
            assert await asyncio.wait_for(seen, 5) == (4001, "done")
            assert ws.state is State.CLOSED
            with pytest.raises(ConnectionClosedError):
                await ws.send("x")

    run(main())


def test_timeout_with_wait_for_loses_no_message(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send("late")
        await ws.wait_closed()

    async def main() -> None:
        async with server(handler) as url, wsfast.asyncio.connect(url) as ws:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.05)
            await ws.send("go")
            assert await asyncio.wait_for(ws.recv(), 5) == "late"

    run(main())


def test_concurrent_send_and_recv(run: Any) -> None:
    async def main() -> None:
        async with server() as url, wsfast.asyncio.connect(url) as ws:

            async def sender() -> None:
                for i in range(2_000):
                    await ws.send(f"m{i}")

            async def receiver() -> list[str | bytes]:
                return [await ws.recv() for _ in range(2_000)]

            _, received = await asyncio.gather(sender(), receiver())
            assert received == [f"m{i}" for i in range(2_000)]
            with pytest.raises(RuntimeError):
                await asyncio.gather(ws.recv(), ws.recv())

    run(main())


def test_ping_resolves_with_latency(run: Any) -> None:
    async def main() -> None:
        async with server() as url, wsfast.asyncio.connect(url) as ws:
            latency = await asyncio.wait_for(await ws.ping(), 5)
            assert 0 <= latency < 5
            waiter = await ws.ping(b"abc")
            assert await asyncio.wait_for(waiter, 5) >= 0

    run(main())


def test_flow_control_pauses_reading(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        for i in range(20_000):
            await ws.send(str(i))
        await ws.close()

    async def main() -> None:
        async with server(handler) as url, wsfast.asyncio.connect(url, max_queue=16) as ws:
            await asyncio.sleep(0.2)  # let the queue fill and reading pause
            assert [m async for m in ws] == [str(i) for i in range(20_000)]

    run(main())


def test_subprotocols_and_headers(run: Any) -> None:
    async def main() -> None:
        seen: list[Headers] = []

        def process_request(connection: ServerConnection, request: Request) -> None:
            seen.append(request.headers)

        async with (
            server(subprotocols=["v2", "v1"], process_request=process_request) as url,
            wsfast.asyncio.connect(url, subprotocols=["v1", "v2"], headers={"X-Token": "t"}) as ws,
        ):
            assert ws.subprotocol == "v2"
            assert seen[0]["X-Token"] == "t"
            assert any(name.lower() == "upgrade" for name, _ in ws.response_headers)

    run(main())


def test_rejected_upgrade_raises_invalid_status(run: Any) -> None:
    def process_request(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(403, "no\n")

    async def main() -> None:
        async with server(process_request=process_request) as url:
            with pytest.raises(InvalidStatus) as info:
                await wsfast.asyncio.connect(url)
            assert info.value.status == 403

    run(main())


def test_against_the_wsfast_server(run: Any) -> None:
    async def main() -> None:
        with wsfast_running(Echo, max_size=BIG) as srv:
            url = f"ws://127.0.0.1:{srv.port}/"
            async with wsfast.asyncio.connect(url, max_size=BIG) as ws:
                for size in (0, 100, 70_000, 4 << 20):
                    data = os.urandom(size)
                    await ws.send(data)
                    assert await ws.recv() == data
                await ws.send("héllo")
                assert await ws.recv() == "héllo"

    run(main())


# ---- TLS -------------------------------------------------------------------------------


def _server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def test_wss_against_websockets(run: Any, certificate: tuple[Path, Path]) -> None:
    client_tls = ssl.create_default_context(cafile=str(certificate[0]))

    async def main() -> None:
        async with server(ssl=_server_tls(certificate), compression="deflate") as url:
            url = url.replace("ws://", "wss://")
            async with wsfast.asyncio.connect(url, ssl=client_tls, max_size=BIG) as ws:
                assert ws.deflate_params is not None
                big = os.urandom(3 << 20)
                await ws.send(big)
                await ws.send("é" * 10_000)
                assert await ws.recv() == big
                assert await ws.recv() == "é" * 10_000
                assert await (await ws.ping()) >= 0
            # The default context does not trust the test certificate.
            with pytest.raises(ssl.SSLCertVerificationError):
                async with wsfast.asyncio.connect(url):
                    pass

    run(main())


def test_wss_against_the_wsfast_server(run: Any, certificate: tuple[Path, Path]) -> None:
    client_tls = ssl.create_default_context(cafile=str(certificate[0]))
    with wsfast_running(Echo, ssl=_server_tls(certificate), max_size=BIG) as srv:

        async def main() -> None:
            url = f"wss://127.0.0.1:{srv.port}/"
            async with wsfast.asyncio.connect(url, ssl=client_tls, max_size=BIG) as ws:
                for size in (0, 125, 70_000, 1 << 20):
                    data = os.urandom(size)
                    await ws.send(data)
                    assert await ws.recv() == data
                await ws.send("wss text")
                assert await ws.recv() == "wss text"

        run(main())


# ---- open_timeout and close_timeout ----------------------------------------------------


def test_open_timeout_when_the_server_never_answers(run: Any) -> None:
    async def main() -> None:
        with ScriptedPeer("silent") as peer:
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="opening handshake"):
                await wsfast.asyncio.connect(peer.url, open_timeout=0.3, proxy=None)
            assert time.monotonic() - started < 30
            peer.wait_accepted(1)

    run(main())


def test_close_gives_up_after_close_timeout(run: Any) -> None:
    async def main() -> None:
        with ScriptedPeer("no-close") as peer:
            ws = await wsfast.asyncio.connect(
                peer.url, close_timeout=0.3, ping_interval=None, proxy=None
            )
            started = time.monotonic()
            await ws.close()
            assert time.monotonic() - started < 30
            assert ws.state is State.CLOSED
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert (info.value.code, info.value.sent_code) == (1006, 1000)

    run(main())


def test_concurrent_senders_all_resume_after_write_pause(run: Any) -> None:
    # Two coroutines send while the server reads nothing: both wait for the
    # transport to drain, and both must be woken once it does.
    async def main() -> None:
        with ScriptedPeer("open-stalled") as peer:
            async with wsfast.asyncio.connect(peer.url, ping_interval=None, proxy=None) as ws:
                chunk = bytes(1 << 20)

                async def sender() -> None:
                    for _ in range(16):
                        await ws.send(chunk)

                senders = [asyncio.create_task(sender()) for _ in range(2)]
                async with asyncio.timeout(30):
                    while not ws._write_paused:
                        await asyncio.sleep(0.01)
                # Each sender runs until it must wait: let both get there.
                for _ in range(10):
                    await asyncio.sleep(0)
                assert not any(task.done() for task in senders)
                peer.release.set()
                async with asyncio.timeout(30):
                    await asyncio.gather(*senders)
                await ws.send("done")
                assert await ws.recv() == "done"

    run(main())
