# SPDX-License-Identifier: MIT
"""wsfast.asyncio's server against the ``websockets`` asyncio client and wsfast's clients.

Every test runs on asyncio's default loop and, when it is installed, on uvloop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosedError as WsClosedError
from websockets.exceptions import ConnectionClosedOK as WsClosedOK
from websockets.exceptions import InvalidStatus as WsInvalidStatus

import wsfast
import wsfast.asyncio
from wsfast.asyncio import Response, Server, ServerConnection, broadcast, serve
from wsfast.exceptions import ConnectionClosedOK
from wsfast.frames import State
from wsfast.handler import Request


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def url_of(server: Server, scheme: str = "ws") -> str:
    port = server.sockets[0].getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}/"


@asynccontextmanager
async def running(
    handler: Callable[[ServerConnection], Awaitable[None]] = echo, **kwargs: Any
) -> AsyncIterator[tuple[Server, str]]:
    kwargs.setdefault("ping_interval", None)
    async with serve(handler, "127.0.0.1", 0, **kwargs) as server:
        yield server, url_of(server)


# ---- messages --------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_with_the_websockets_client(run: Any, compression: str | None) -> None:
    async def main() -> None:
        async with running(compression=compression) as (_, url):
            async with ws_connect(url, compression=compression) as ws:
                for message in ["hello", b"\x00\xff" * 1000, "é" * 5000, b""]:
                    await ws.send(message)
                    assert await ws.recv() == message
                if compression:
                    assert ws.protocol.extensions
                else:
                    assert not ws.protocol.extensions

    run(main())


@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_with_the_wsfast_asyncio_client(run: Any, compression: str | None) -> None:
    async def main() -> None:
        async with running(compression="deflate") as (_, url):
            async with wsfast.asyncio.connect(url, compression=compression) as ws:
                assert (ws.deflate_params is not None) == (compression is not None)
                for i in range(100):
                    await ws.send(f"message {i}")
                for i in range(100):
                    assert await ws.recv() == f"message {i}"

    run(main())


def test_echo_with_the_blocking_client(run: Any) -> None:
    def talk(url: str) -> list[Any]:
        with wsfast.connect(url, compression="deflate") as ws:
            assert ws.deflate_params is not None
            ws.send("one")
            ws.send(b"two")
            return [ws.recv(), ws.recv()]

    async def main() -> None:
        async with running() as (_, url):
            assert await asyncio.to_thread(talk, url) == ["one", b"two"]

    run(main())


def test_many_connections_concurrently(run: Any) -> None:
    async def client(url: str, n: int) -> None:
        async with ws_connect(url) as ws:
            for i in range(20):
                await ws.send(f"{n}:{i}")
            for i in range(20):
                assert await ws.recv() == f"{n}:{i}"

    async def main() -> None:
        async with running() as (_, url):
            await asyncio.gather(*(client(url, n) for n in range(16)))

    run(main())


def test_recv_and_async_for_end_when_the_client_closes(run: Any) -> None:
    seen: list[Any] = []
    done: asyncio.Future[Any]

    async def handler(ws: ServerConnection) -> None:
        seen.append(await ws.recv())
        async for message in ws:
            seen.append(message)
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.recv()
        done.set_result((info.value.code, info.value.reason, ws.state, ws.close_code))

    async def main() -> None:
        nonlocal done
        done = asyncio.get_running_loop().create_future()
        async with running(handler) as (_, url):
            async with ws_connect(url) as ws:
                await ws.send("a")
                await ws.send("b")
                await ws.close(1000, "bye")
            code, reason, state, close_code = await done
            assert (code, reason) == (1000, "bye")
            assert state is State.CLOSED and close_code == 1000
        assert seen == ["a", "b"]

    run(main())


def test_handler_return_closes_with_1000(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("only")

    async def main() -> None:
        async with running(handler) as (_, url):
            async with ws_connect(url) as ws:
                assert await ws.recv() == "only"
                with pytest.raises(WsClosedOK):
                    await ws.recv()
                assert ws.close_code == 1000

    run(main())


def test_server_close_with_code_and_reason(run: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.close(4000, "custom")
        await ws.wait_closed()
        assert ws.state is State.CLOSED

    async def main() -> None:
        async with running(handler) as (_, url):
            async with ws_connect(url) as ws:
                with pytest.raises(WsClosedError):
                    await ws.recv()
                assert (ws.close_code, ws.close_reason) == (4000, "custom")

    run(main())


async def queued(ws: ServerConnection, n: int) -> None:
    """Wait until ``n`` received messages wait in ``ws`` (the fast paths need them)."""
    while ws._reader.pending_count() < n:
        await asyncio.sleep(0.001)


def test_anext_of_a_waiting_message_is_an_awaitable_that_loses_nothing(run: Any) -> None:
    # __anext__ returns an object complete at once when a message waits; if it is
    # cancelled, closed or dropped before it delivered, the message stays first.
    result: asyncio.Future[list[Any]]

    async def handler(ws: ServerConnection) -> None:
        await queued(ws, 4)
        cancelled = asyncio.create_task(anext(ws))
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        ready = anext(ws)
        assert type(ready).__name__ == "Ready" and asyncio.iscoroutine(ready)
        ready.close()  # type: ignore[attr-defined]
        dropped = anext(ws)
        del dropped
        got = [await anext(ws)]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(ws), 0)  # cancelled before it ran
        got += [await asyncio.wait_for(anext(ws), 1)]
        got += [await asyncio.ensure_future(anext(ws))]
        got += await asyncio.gather(anext(ws))
        async for message in ws:
            got.append(message)
        result.set_result(got)

    async def main() -> None:
        nonlocal result
        result = asyncio.get_running_loop().create_future()
        async with running(handler) as (_, url):
            async with wsfast.asyncio.connect(url) as ws:
                for i in range(5):
                    await ws.send(f"m{i}")
            assert await result == [f"m{i}" for i in range(5)]

    run(main())


def test_recv_of_a_waiting_message_cancelled_or_dropped_loses_nothing(run: Any) -> None:
    result: asyncio.Future[list[Any]]

    async def handler(ws: ServerConnection) -> None:
        await queued(ws, 3)
        cancelled = asyncio.create_task(ws.recv())  # type: ignore[arg-type]
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        dropped = ws.recv()
        del dropped
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0)
        result.set_result([await ws.recv(), await asyncio.wait_for(ws.recv(), 1)])
        assert await ws.recv() == "m2"

    async def main() -> None:
        nonlocal result
        result = asyncio.get_running_loop().create_future()
        async with running(handler) as (_, url):
            async with wsfast.asyncio.connect(url) as ws:
                for i in range(3):
                    await ws.send(f"m{i}")
                assert await result == ["m0", "m1"]

    run(main())


def test_send_result_works_with_create_task_wait_for_and_gather(run: Any) -> None:
    # send() queues at once and returns an awaitable that is complete unless the
    # write buffer is full; asyncio must take it as it takes a coroutine.
    async def handler(ws: ServerConnection) -> None:
        await asyncio.create_task(ws.send("one"))  # type: ignore[arg-type]
        await asyncio.ensure_future(ws.send("two"))
        await asyncio.wait_for(ws.send("three"), 1)
        await asyncio.gather(ws.send("four"), ws.send(b"five"))
        sent = ws.send("six")
        assert await sent is None
        assert await sent is None  # the shared completed result: awaitable again
        with pytest.raises(TypeError):
            await ws.send(42)  # type: ignore[arg-type]

    async def main() -> None:
        async with running(handler) as (_, url):
            async with wsfast.asyncio.connect(url) as ws:
                got = [await ws.recv() for _ in range(6)]
                assert got == ["one", "two", "three", "four", b"five", "six"]

    run(main())


def test_send_on_a_closed_connection_raises_when_awaited(run: Any) -> None:
    result: asyncio.Future[Any]

    async def handler(ws: ServerConnection) -> None:
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        sent = ws.send("late")  # no exception before the await, as a coroutine
        with pytest.raises(ConnectionClosedOK) as info:
            await sent
        result.set_result(info.value.__suppress_context__)

    async def main() -> None:
        nonlocal result
        result = asyncio.get_running_loop().create_future()
        async with running(handler) as (_, url):
            async with wsfast.asyncio.connect(url):
                pass
            assert await result is True

    run(main())


# ---- handshake attributes and options ----------------------------------------------------


def test_request_subprotocol_and_addresses(run: Any) -> None:
    info: asyncio.Future[Any]

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        info.set_result(
            (ws.request.path, ws.request.query, ws.request.get("X-Test"), ws.subprotocol,
             ws.remote_address, ws.local_address)
        )  # fmt: skip
        await ws.wait_closed()

    async def main() -> None:
        nonlocal info
        info = asyncio.get_running_loop().create_future()
        async with running(handler, subprotocols=["chat", "superchat"]) as (server, url):
            async with ws_connect(
                url + "room?x=1",
                subprotocols=["superchat", "chat"],
                additional_headers={"X-Test": "yes"},
            ) as ws:
                assert ws.subprotocol == "superchat"
                path, query, header, subprotocol, remote, local = await info
                assert (path, query, header, subprotocol) == ("/room", "x=1", "yes", "superchat")
                assert remote == ws.local_address
                assert local == server.sockets[0].getsockname()

    run(main())


def test_origins(run: Any) -> None:
    async def main() -> None:
        async with running(origins=["https://good.example"]) as (_, url):
            async with ws_connect(url, origin="https://good.example") as ws:  # type: ignore[arg-type]
                await ws.send("ok")
                assert await ws.recv() == "ok"
            with pytest.raises(WsInvalidStatus) as info:
                async with ws_connect(url, origin="https://evil.example"):  # type: ignore[arg-type]
                    pass
            assert info.value.response.status_code == 403

    run(main())


def test_max_size_fails_the_connection_with_1009(run: Any) -> None:
    async def main() -> None:
        async with running(max_size=1000) as (_, url):
            async with ws_connect(url) as ws:
                await ws.send(b"x" * 1000)
                assert await ws.recv() == b"x" * 1000
                await ws.send(b"x" * 1001)
                with pytest.raises(WsClosedError):
                    await ws.recv()
                assert ws.close_code == 1009

    run(main())


def test_process_request_rejects_with_a_response(run: Any) -> None:
    calls: list[str] = []

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        calls.append(request.path)
        if request.get("Authorization") != "Bearer good":
            return connection.respond(401, "who are you?\n")
        return None

    async def main() -> None:
        async with running(process_request=process_request) as (_, url):
            with pytest.raises(WsInvalidStatus) as info:
                async with ws_connect(url + "a"):
                    pass
            assert info.value.response.status_code == 401
            assert info.value.response.body == b"who are you?\n"
            headers = {"Authorization": "Bearer good"}
            async with ws_connect(url + "b", additional_headers=headers) as ws:
                await ws.send("in")
                assert await ws.recv() == "in"
        assert calls == ["/a", "/b"]

    run(main())


def test_process_request_may_be_a_coroutine_and_set_headers(run: Any) -> None:
    async def process_request(connection: ServerConnection, request: Request) -> Response:
        await asyncio.sleep(0)
        return Response(418, "I'm a teapot", {"X-Why": "tea"}, b"short and stout")

    async def main() -> None:
        async with running(process_request=process_request) as (_, url):
            with pytest.raises(WsInvalidStatus) as info:
                async with ws_connect(url):
                    pass
            response = info.value.response
            assert response.status_code == 418
            assert response.headers["X-Why"] == "tea"
            assert response.body == b"short and stout"

    run(main())


def test_process_request_that_raises_gives_500(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    def process_request(connection: ServerConnection, request: Request) -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        async with running(process_request=process_request) as (_, url):
            with pytest.raises(WsInvalidStatus) as info:
                async with ws_connect(url):
                    pass
            assert info.value.response.status_code == 500

    with caplog.at_level(logging.ERROR, logger="wsfast.asyncio.server"):
        run(main())
    assert "opening handshake failed" in caplog.text


def test_plain_http_request_gets_426(run: Any) -> None:
    async def main() -> None:
        async with running() as (server, _):
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            response = await reader.read()
            assert response.startswith(b"HTTP/1.1 426")
            writer.close()
            await writer.wait_closed()

    run(main())


# ---- faults ---------------------------------------------------------------------------


def test_handler_exception_closes_with_1011_and_is_logged(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        raise ValueError("handler bug")

    async def main() -> None:
        async with running(handler) as (_, url):
            async with ws_connect(url) as ws:
                await ws.send("trigger")
                with pytest.raises(WsClosedError):
                    await ws.recv()
                assert ws.close_code == 1011

    with caplog.at_level(logging.ERROR, logger="wsfast.asyncio.server"):
        run(main())
    assert "connection handler failed" in caplog.text
    assert "handler bug" in caplog.text


def test_keepalive_timeout_fails_with_1011(run: Any) -> None:
    """A client that never answers pings: a ping, then a close frame with 1011."""

    async def main() -> None:
        async with running(ping_interval=0.01, ping_timeout=0.01) as (server, _):
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            # Read everything until the server closes TCP, answering nothing.
            data = await reader.read()
            head, _, frames = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101")
            assert frames[0] == 0x89  # the ping
            ping_len = frames[1]
            close = frames[2 + ping_len :]
            assert close[0] == 0x88
            assert int.from_bytes(close[2:4], "big") == 1011
            writer.close()
            await writer.wait_closed()

    run(main())


def test_ping_returns_an_awaitable_pong(run: Any) -> None:
    latencies: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        pong = await ws.ping()
        latencies.append(await pong)
        pong = await ws.ping(b"custom")
        latencies.append(await pong)
        await ws.pong(b"unsolicited")
        await ws.send("done")
        await ws.wait_closed()

    async def main() -> None:
        async with running(handler) as (_, url):
            async with ws_connect(url) as ws:
                assert await ws.recv() == "done"
        assert len(latencies) == 2 and all(latency >= 0 for latency in latencies)

    run(main())


# ---- backpressure ----------------------------------------------------------------------


class PauseSignal(ServerConnection):
    """Reports when the transport's write buffer goes above its high-water mark."""

    paused: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.paused is not None and not self.paused.done():
            self.paused.set_result(None)


def test_send_waits_while_the_client_does_not_read(run: Any) -> None:
    high = 64 * 1024
    chunk = b"x" * (256 * 1024)
    count = 128  # 32 MiB: far more than the socket buffers hold
    after_send: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        for i in range(count):
            await ws.send(chunk[:-1] + bytes([i]))
            after_send.append(ws.transport.get_write_buffer_size())
        await ws.wait_closed()

    async def main() -> None:
        paused = asyncio.get_running_loop().create_future()
        PauseSignal.paused = paused
        try:
            async with running(
                handler, write_limit=high, create_connection=PauseSignal, compression=None
            ) as (_, url):
                async with ws_connect(url, max_size=None, max_queue=1) as ws:
                    # The client reads nothing until the server's buffer is full.
                    await paused
                    assert len(after_send) < count
                    for i in range(count):
                        message = await ws.recv()
                        assert message[-1] == i and len(message) == len(chunk)
        finally:
            PauseSignal.paused = None
        # Each send returned only once the buffer was under the high-water mark.
        assert len(after_send) == count
        assert max(after_send) <= high

    run(main())


class ReadPauseSignal(ServerConnection):
    """Reports when the connection stops reading from its transport."""

    stopped: asyncio.Future[None] | None = None

    def buffer_updated(self, nbytes: int) -> None:
        super().buffer_updated(nbytes)
        stopped = self.stopped
        # Reading also pauses during the opening handshake: only a pause once open counts.
        if (
            stopped is not None
            and not stopped.done()
            and self.state is State.OPEN
            and not self.transport.is_reading()
        ):
            stopped.set_result(None)


def test_reading_pauses_while_the_receive_queue_is_full(run: Any) -> None:
    count = 200

    async def handler(ws: ServerConnection) -> None:
        assert ReadPauseSignal.stopped is not None
        await ReadPauseSignal.stopped
        assert not ws.transport.is_reading()
        for i in range(count):
            assert await ws.recv() == f"m{i}"
        await ws.send("all received")
        await ws.wait_closed()

    async def main() -> None:
        ReadPauseSignal.stopped = asyncio.get_running_loop().create_future()
        try:
            async with running(handler, max_queue=4, create_connection=ReadPauseSignal) as (_, url):
                async with ws_connect(url) as ws:
                    for i in range(count):
                        await ws.send(f"m{i}")
                    assert await ws.recv() == "all received"
        finally:
            ReadPauseSignal.stopped = None

    run(main())


# ---- broadcast and the server's lifecycle ---------------------------------------------


def test_broadcast_reaches_every_open_connection(run: Any) -> None:
    ready: asyncio.Queue[ServerConnection]

    async def handler(ws: ServerConnection) -> None:
        await ready.put(ws)
        await ws.wait_closed()

    async def main() -> None:
        nonlocal ready
        ready = asyncio.Queue()
        async with running(handler) as (server, url):
            clients = [await ws_connect(url) for _ in range(5)]
            for _ in range(5):
                await ready.get()
            assert len(server.connections) == 5
            broadcast(server.connections, "news")
            broadcast(server.connections, b"bytes news")
            for client in clients:
                assert await client.recv() == "news"
                assert await client.recv() == b"bytes news"
            with pytest.raises(TypeError):
                broadcast(server.connections, 42)  # type: ignore[arg-type]
            for client in clients:
                await client.close()

    run(main())


def test_server_close_sends_1001_to_clients(run: Any) -> None:
    ended: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        finally:
            ended.append(ws.close_code)

    async def main() -> None:
        server = await serve(handler, "127.0.0.1", 0, ping_interval=None)
        url = url_of(server)
        clients = [await ws_connect(url) for _ in range(3)]
        for client in clients:
            await client.send("hi")
            assert await client.recv() == "hi"
        forever = asyncio.create_task(server.serve_forever())
        server.close()
        await server.wait_closed()
        await forever  # close() ends serve_forever() normally
        for client in clients:
            with pytest.raises(WsClosedOK):
                await client.recv()
            assert client.close_code == 1001
        assert sorted(ended) == [1001, 1001, 1001]  # type: ignore[type-var]
        with pytest.raises(OSError):
            await ws_connect(url, open_timeout=5)

    run(main())


def test_ssl(run: Any, certificate: tuple[Path, Path]) -> None:
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(*certificate)
    client_tls = ssl.create_default_context(cafile=str(certificate[0]))

    async def main() -> None:
        async with serve(echo, "127.0.0.1", 0, ssl=server_tls, ping_interval=None) as server:
            url = url_of(server, "wss")
            async with ws_connect(url, ssl=client_tls) as ws:
                await ws.send("secret")
                assert await ws.recv() == "secret"
            async with wsfast.asyncio.connect(url, ssl=client_tls) as ws2:
                await ws2.send(b"secret too")
                assert await ws2.recv() == b"secret too"

    run(main())


def test_open_timeout_drops_a_silent_client(run: Any) -> None:
    async def main() -> None:
        async with running(open_timeout=0.01) as (server, _):
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            # Nothing sent: the server closes the connection without an answer.
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()

    run(main())


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="compression"):
        serve(echo, compression="gzip")
    with pytest.raises(ValueError, match="max_queue"):
        serve(echo, max_queue=0)


def test_websockets_compatible_names() -> None:
    import wsfast.exceptions as exc

    for name in ["serve", "connect", "broadcast", "ServerConnection", "ClientConnection"]:
        assert name in wsfast.asyncio.__all__
    for name in [
        "ConnectionClosed",
        "ConnectionClosedOK",
        "ConnectionClosedError",
        "InvalidStatus",
        "InvalidHandshake",
    ]:
        assert hasattr(exc, name)
    assert websockets.__version__  # the peer these tests use


def test_port_in_use_raises() -> None:
    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(OSError):
                await serve(echo, "127.0.0.1", port)

    asyncio.run(main())


def test_wsfast_clients_take_websockets_option_spellings(run: Any) -> None:
    headers: asyncio.Future[str | None]

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        headers.set_result(ws.request.get("X-Token"))
        await echo(ws)

    async def main() -> None:
        nonlocal headers
        headers = asyncio.get_running_loop().create_future()
        async with running(handler) as (_, url):
            async with wsfast.asyncio.connect(
                url, additional_headers={"X-Token": "t"}, compression=None
            ) as ws:
                assert ws.deflate_params is None
                await ws.send("x")
                assert await ws.recv() == "x"
            assert await headers == "t"
            with pytest.raises(ValueError, match="additional_headers"):
                wsfast.asyncio.connect(url, headers={"a": "b"}, additional_headers={"c": "d"})
            with pytest.raises(TypeError, match="compression"):
                wsfast.asyncio.connect(url, compression="gzip")

    run(main())
