# SPDX-License-Identifier: MIT
"""wsfast.uvicorn.WSProtocol under a real uvicorn server, with raw ASGI apps.

The cases follow uvicorn's own WebSocket tests (tests/protocols/test_websocket.py):
handshake, headers, subprotocols, messages both ways, closing from either side,
size limits, denial responses, app errors, keepalive and shutdown; plus bad input
(invalid handshakes, protocol violations) and flow control. Clients are the
``websockets`` package, httpx, and a raw client for frames no library sends. Every
test runs on asyncio's loop and on uvloop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from wsfast.uvicorn import WSProtocol

from .uvicorn_util import (
    ACCEPT,
    HTTP_PROTOCOLS,
    LOOPS,
    RawClient,
    bounded,
    close_payload,
    frame,
    make_runner,
    no_loop_errors,  # noqa: F401 (an autouse fixture)
    serving,
    until,
)

Receive = Callable[[], Coroutine[Any, Any, dict[str, Any]]]
Send = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a test coroutine on asyncio's loop, then on uvloop."""
    return make_runner(request.param)


async def accept_then_echo(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Accept, echo every message, stop at the disconnect."""
    assert scope["type"] == "websocket"
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            reply = {"text": message.get("text"), "bytes": message.get("bytes")}
            await send({"type": "websocket.send", **reply})
        else:
            return


async def accept_only(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Accept, then wait for the disconnect."""
    while (await receive())["type"] != "websocket.disconnect":
        if not scope.get("accepted"):
            scope["accepted"] = True
            await send({"type": "websocket.accept"})


async def upgrade_with_httpx(port: int, headers: dict[str, str] | None = None) -> httpx.Response:
    """An upgrade request through httpx, which reads a non-101 answer as a response."""
    base = {
        "connection": "upgrade",
        "upgrade": "websocket",
        "sec-websocket-key": "x3JJHMbDL1EzLkh9GBhXDw==",
        "sec-websocket-version": "13",
    }
    async with httpx.AsyncClient() as client:
        return await bounded(client.get(f"http://127.0.0.1:{port}/", headers=headers or base))


# ---- the opening handshake -----------------------------------------------------------


@pytest.mark.parametrize("http", HTTP_PROTOCOLS)
def test_accepts_a_connection_from_each_http_protocol(run: Any, http: str) -> None:
    async def main() -> None:
        async with (
            serving(accept_then_echo, http=http) as served,
            connect(served.url) as ws,
        ):
            await ws.send("hello")
            assert await bounded(ws.recv()) == "hello"
            assert ws.response.headers["Sec-WebSocket-Accept"]

    run(main())


def test_backend_given_as_an_import_string(run: Any) -> None:
    async def main() -> None:
        async with (
            serving(accept_then_echo, ws="wsfast.uvicorn:WSProtocol") as served,
            connect(served.url) as ws,
        ):
            await ws.send(b"by name")
            assert await bounded(ws.recv()) == b"by name"
            assert type(await served.protocol()) is WSProtocol

    run(main())


def test_version_other_than_13_gets_426(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only) as served:
            response = await upgrade_with_httpx(
                served.port,
                {"upgrade": "websocket", "connection": "upgrade", "sec-websocket-version": "11"},
            )
        assert response.status_code == 426
        assert response.headers["sec-websocket-version"] == "13"
        assert "unsupported websocket version 11" in response.text

    run(main())


def test_missing_key_gets_400(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only) as served:
            response = await upgrade_with_httpx(
                served.port,
                {"upgrade": "websocket", "connection": "upgrade", "sec-websocket-version": "13"},
            )
        assert response.status_code == 400
        assert response.text.lower() == "missing sec-websocket-key header"

    run(main())


def test_invalid_key_gets_400_and_the_app_never_runs(run: Any) -> None:
    called = False

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        nonlocal called
        called = True

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.connect(
                served.port,
                request=b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade"
                b"\r\nSec-WebSocket-Key: tooshort\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
        assert client.status == 400
        assert b"invalid Sec-WebSocket-Key" in client.body
        assert not called

    run(main())


def test_invalid_extension_header_gets_400(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only) as served:
            client = await RawClient.connect(
                served.port, extra=b"Sec-WebSocket-Extensions: permessage-deflate; =\r\n"
            )
        assert client.status == 400

    run(main())


def test_accept_sends_101_with_the_right_accept_key(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only) as served:
            client = await RawClient.connect(served.port)
            assert client.status == 101
            assert client.header(b"sec-websocket-accept") == ACCEPT.encode()
            assert client.header(b"upgrade") == b"websocket"
            client.send(frame(8, close_payload(1000)))
            assert await client.recv_close() == (1000, "")
            assert await client.at_eof()
            await client.close()

    run(main())


def test_scope(run: Any) -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await accept_only(scope, receive, send)

    async def main() -> None:
        async with serving(app, root_path="/root") as served:
            async with connect(served.url + "/one%2Ftwo/caf%C3%A9?a=1&b=%20") as ws:
                local = ws.local_address
        scope = scopes[0]
        assert scope["type"] == "websocket"
        assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
        assert scope["http_version"] == "1.1"
        assert scope["scheme"] == "ws"
        assert scope["server"] == ("127.0.0.1", served.port)
        assert scope["client"] == tuple(local[:2])
        assert scope["root_path"] == "/root"
        assert scope["path"] == "/root/one/two/café"
        assert scope["raw_path"] == b"/root/one%2Ftwo/caf%C3%A9"
        assert scope["query_string"] == b"a=1&b=%20"
        assert scope["subprotocols"] == []
        assert scope["extensions"] == {"websocket.http.response": {}}
        assert scope["state"] == {}

    run(main())


def test_request_headers_are_lowercased_bytes_as_received(run: Any) -> None:
    headers: list[tuple[bytes, bytes]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        headers.extend(scope["headers"])
        await accept_only(scope, receive, send)

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.connect(
                served.port, extra=b"X-Name: abra\xc3\xa3o\r\nX-Latin: caf\xe9\r\n"
            )
            assert client.status == 101
            await client.close()
        found = dict(headers)
        assert found[b"host"] == f"127.0.0.1:{served.port}".encode()
        assert found[b"x-name"] == "abraão".encode()
        assert found[b"x-latin"] == b"caf\xe9"
        assert all(name == name.lower() for name, _ in headers)

    run(main())


def test_accept_with_extra_headers_sends_their_bytes(run: Any) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "websocket.accept",
                "headers": [(b"extra", b"header"), (b"x-utf8", "é".encode())],
            }
        )
        await receive()

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.connect(served.port)
            assert client.status == 101
            assert client.header(b"extra") == b"header"
            assert client.header(b"x-utf8") == "é".encode()
            await client.close()

    run(main())


@pytest.mark.parametrize(
    "header",
    [(b"bad name", b"x"), (b"x", b"line\r\nbreak"), (b"", b"x")],
    ids=["space_in_name", "crlf_in_value", "empty_name"],
)
def test_accept_with_an_invalid_header_fails_with_500(
    run: Any, header: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept", "headers": [header]})

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.connect(served.port)
        assert client.status == 500
        assert client.body == b"Internal Server Error"

    run(main())
    assert "Invalid HTTP header" in caplog.text


def test_default_server_headers(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only) as served, connect(served.url) as ws:
            headers = ws.response.headers
        assert headers.get("server") == "uvicorn"
        assert "date" in headers

    run(main())


def test_no_server_header(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only, server_header=False) as served, connect(served.url) as ws:
            assert "server" not in ws.response.headers

    run(main())


def test_no_date_header(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only, date_header=False) as served, connect(served.url) as ws:
            assert "date" not in ws.response.headers

    run(main())


def test_server_headers_from_the_app_follow_the_default_ones(run: Any) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"Server", b"over-ridden"), (b"Server", b"another-value")]
        await send({"type": "websocket.accept", "headers": headers})
        await receive()

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            assert ws.response.headers.get_all("Server") == [
                "uvicorn",
                "over-ridden",
                "another-value",
            ]

    run(main())


@pytest.mark.parametrize("subprotocol", ["proto1", "proto2"])
def test_subprotocols(run: Any, subprotocol: str) -> None:
    offered: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        offered.extend(scope["subprotocols"])
        await receive()
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        await receive()

    async def main() -> None:
        async with (
            serving(app) as served,
            connect(served.url, subprotocols=["proto1", "proto2"]) as ws,
        ):
            assert ws.subprotocol == subprotocol
        assert offered == ["proto1", "proto2"]

    run(main())


def test_no_subprotocol_header_without_a_choice(run: Any) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": None})
        await receive()

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.connect(served.port, extra=b"Sec-WebSocket-Protocol: a\r\n")
            assert client.status == 101
            assert client.header(b"sec-websocket-protocol") is None
            await client.close()

    run(main())


def test_permessage_deflate_is_negotiated(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_then_echo) as served, connect(served.url) as ws:
            assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
            text = "compress me " * 10_000
            await ws.send(text)
            assert await bounded(ws.recv()) == text
            data = os.urandom(100_000)
            await ws.send(data)
            assert await bounded(ws.recv()) == data

    run(main())


def test_permessage_deflate_can_be_disabled(run: Any) -> None:
    async def main() -> None:
        async with (
            serving(accept_then_echo, ws_per_message_deflate=False) as served,
            connect(served.url) as ws,
        ):
            assert ws.protocol.extensions == []
            await ws.send("plain")
            assert await bounded(ws.recv()) == "plain"

    run(main())


def test_lifespan_state_is_copied_into_each_scope(run: Any) -> None:
    states: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            assert message["type"] == "lifespan.startup"
            scope["state"]["a"] = 123
            await send({"type": "lifespan.startup.complete"})
            assert (await receive())["type"] == "lifespan.shutdown"
            await send({"type": "lifespan.shutdown.complete"})
            return
        states.append(dict(scope["state"]))
        scope["state"]["a"] = 456
        await accept_only(scope, receive, send)

    async def main() -> None:
        async with serving(app, lifespan="on") as served:
            for _ in range(2):
                async with connect(served.url):
                    pass
        assert states == [{"a": 123}, {"a": 123}]

    run(main())


# ---- messages ------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["123", b"123"], ids=["text", "bytes"])
def test_send_to_client(run: Any, data: str | bytes) -> None:
    key = "text" if isinstance(data, str) else "bytes"

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", key: data})
        await receive()

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            assert await bounded(ws.recv()) == data

    run(main())


def test_receive_events_carry_text_or_bytes(run: Any) -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert await receive() == {"type": "websocket.connect"}
        await send({"type": "websocket.accept"})
        received.append(await receive())
        received.append(await receive())
        await send({"type": "websocket.send", "text": "done"})
        await receive()

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            await ws.send("abc")
            await ws.send(b"abc")
            assert await bounded(ws.recv()) == "done"
        assert received == [
            {"type": "websocket.receive", "text": "abc"},
            {"type": "websocket.receive", "bytes": b"abc"},
        ]

    run(main())


@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_of_every_size_up_to_ws_max_size(run: Any, compression: str | None) -> None:
    limit = 4 << 20

    async def main() -> None:
        async with (
            serving(accept_then_echo, ws_max_size=limit) as served,
            connect(served.url, max_size=None, compression=compression) as ws,
        ):
            for size in (0, 1, 125, 126, 127, 65535, 65536, 1 << 20, limit):
                # Compressed random bytes outgrow the limit on the wire: at the limit
                # itself, send compressible bytes.
                data = b"\x01" * size if compression and size == limit else os.urandom(size)
                await ws.send(data)
                assert await bounded(ws.recv()) == data
                text = ("é" * size)[: size // 2]
                await ws.send(text)
                assert await bounded(ws.recv()) == text

    run(main())


def test_sixteen_mib_message_with_uvicorn_defaults(run: Any) -> None:
    async def main() -> None:
        async with (
            serving(accept_then_echo) as served,
            connect(served.url, max_size=None, compression=None) as ws,
        ):
            data = os.urandom(16 << 20)
            await ws.send(data)
            assert await bounded(ws.recv(), 30) == data

    run(main())


@pytest.mark.parametrize("opcode", [1, 2], ids=["text", "binary"])
def test_fragmented_message_is_reassembled(run: Any, opcode: int) -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        received.append(await receive())
        await send({"type": "websocket.close"})

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            fragment = "A" * 512 if opcode == 1 else b"A" * 512
            await ws.send([fragment] * 6)
            with pytest.raises(ConnectionClosed):
                await bounded(ws.recv())
        key = "text" if opcode == 1 else "bytes"
        assert received == [{"type": "websocket.receive", key: fragment * 6}]

    run(main())


@pytest.mark.parametrize(
    ("sent", "limit", "code"),
    [(10, 10, None), (11, 10, 1009), (1 << 20, 1 << 20, None), ((1 << 20) + 1, 1 << 20, 1009)],
    ids=["max=10 sent=10", "max=10 sent=11", "max=1MiB sent=1MiB", "max=1MiB sent=1MiB+1"],
)
def test_ws_max_size(run: Any, sent: int, limit: int, code: int | None) -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif message["type"] == "websocket.receive":
                await send({"type": "websocket.send", "bytes": message["bytes"]})
            else:
                disconnects.append(message)
                return

    async def main() -> None:
        async with serving(app, ws_max_size=limit) as served:
            async with connect(served.url, max_size=None, compression=None) as ws:
                if code is None:
                    await ws.send(b"\x01" * sent)
                    assert await bounded(ws.recv()) == b"\x01" * sent
                    return
                with pytest.raises(ConnectionClosed):
                    await ws.send(b"\x01" * sent)
                    await bounded(ws.recv())
            await until(lambda: bool(disconnects))
        assert disconnects[0]["code"] == code
        assert str(limit) in disconnects[0]["reason"]

    run(main())


def test_fragments_past_ws_max_size_close_with_1009(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only, ws_max_size=2048) as served:
            client = await RawClient.connect(served.port)
            for i in range(4):
                client.send(frame(2 if i == 0 else 0, b"A" * 1024, fin=False))
            assert (await client.recv_close())[0] == 1009
            assert await client.at_eof()
            await client.close()

    run(main())


# ---- protocol violations -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(1, b"x", mask=False), 1002),
        (frame(3, b"x"), 1002),
        (frame(1, b"x", rsv=4), 1002),
        (frame(9, b"x" * 126), 1002),
        (frame(9, b"x", fin=False), 1002),
        (frame(0, b"x"), 1002),
        (frame(1, b"\xff\xfe"), 1007),
        (frame(8, close_payload(1000) + b"\xff"), 1007),
        (frame(8, b"\x03"), 1002),
        (frame(8, close_payload(999)), 1002),
    ],
    ids=[
        "unmasked",
        "reserved_opcode",
        "rsv1_without_extension",
        "long_ping",
        "fragmented_ping",
        "continuation_first",
        "invalid_utf8",
        "invalid_utf8_close_reason",
        "one_byte_close",
        "invalid_close_code",
    ],
)
def test_protocol_violation_closes_with_the_right_code(run: Any, data: bytes, code: int) -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnects.append(await receive())

    async def main() -> None:
        async with serving(app, ws_per_message_deflate=False) as served:
            client = await RawClient.connect(served.port)
            client.send(data)
            assert (await client.recv_close())[0] == code
            assert await client.at_eof()
            await client.close()
            await until(lambda: bool(disconnects))
        assert disconnects[0]["type"] == "websocket.disconnect"
        assert disconnects[0]["code"] == code

    run(main())


def test_messages_before_a_violation_still_reach_the_app(run: Any) -> None:
    events: list[dict[str, Any]] = []
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await release.wait()
        while True:
            events.append(await receive())
            if events[-1]["type"] == "websocket.disconnect":
                return

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.connect(served.port)
            client.send(frame(1, b"one") + frame(2, b"two") + frame(1, b"x", mask=False))
            assert (await client.recv_close())[0] == 1002
            release.set()
            await until(lambda: bool(events) and events[-1]["type"] == "websocket.disconnect")
            await client.close()
        assert events[:2] == [
            {"type": "websocket.receive", "text": "one"},
            {"type": "websocket.receive", "bytes": b"two"},
        ]
        assert events[2]["code"] == 1002

    run(main())


def test_ping_gets_a_pong(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only) as served:
            client = await RawClient.connect(served.port)
            client.send(frame(9, b"are you there"))
            assert await client.recv_frame() == (10, b"are you there")
            await client.close()

    run(main())


def test_replies_to_a_burst_arrive_in_order(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_then_echo) as served:
            client = await RawClient.connect(served.port)
            # One write of 200 messages: the app answers them in one task step.
            client.send(b"".join(frame(1, str(i).encode()) for i in range(200)))
            for i in range(200):
                assert await client.recv_frame() == (1, str(i).encode())
            await client.close()

    run(main())


def test_reply_is_written_before_the_app_returns_and_tcp_closes(run: Any) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        # More messages wait, so this reply is held back to share one write...
        await send({"type": "websocket.send", "text": message["text"].upper()})
        # ...and must still go out before TCP closes.

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.connect(served.port)
            client.send(frame(1, b"first") + frame(1, b"second") + frame(1, b"third"))
            assert await client.recv_frame() == (1, b"FIRST")
            assert await client.recv_frame() is None
            await client.close()

    run(main())


def test_concurrent_receivers_each_get_a_message(run: Any) -> None:
    got: list[Any] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})

        async def one() -> None:
            got.append((await receive())["text"])

        tasks = [asyncio.ensure_future(one()) for _ in range(3)]
        await asyncio.sleep(0)  # all three wait in receive() now
        await send({"type": "websocket.send", "text": "ready"})
        await asyncio.gather(*tasks)
        await send({"type": "websocket.send", "text": ",".join(sorted(got))})
        await receive()

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            assert await bounded(ws.recv()) == "ready"
            for text in ("a", "b", "c"):
                await ws.send(text)
            assert await bounded(ws.recv()) == "a,b,c"

    run(main())


@pytest.mark.parametrize("cancelled", [0, 1], ids=["first", "second"])
def test_cancelled_receive_loses_no_message(run: Any, cancelled: int) -> None:
    got: list[Any] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        waiting = [asyncio.ensure_future(receive()) for _ in range(2)]
        await asyncio.sleep(0)  # both wait in receive() now
        waiting[cancelled].cancel()
        await send({"type": "websocket.send", "text": "ready"})
        got.append((await waiting[1 - cancelled])["text"])
        got.append((await receive())["text"])
        await send({"type": "websocket.send", "text": "done"})
        await receive()

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            assert await bounded(ws.recv()) == "ready"
            await ws.send("one")
            await ws.send("two")
            assert await bounded(ws.recv()) == "done"
        assert got == ["one", "two"]

    run(main())


# ---- closing ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", [None, 1000, 1001, 4000])
@pytest.mark.parametrize("reason", [None, "test", False], ids=["none", "text", "absent"])
def test_app_close(run: Any, code: int | None, reason: str | bool | None) -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif message["type"] == "websocket.receive":
                close: dict[str, Any] = {"type": "websocket.close"}
                if code is not None:
                    close["code"] = code
                if reason is not False:
                    close["reason"] = reason
                await send(close)
            else:
                disconnects.append(message)
                return

    async def main() -> None:
        async with serving(app) as served:
            async with connect(served.url) as ws:
                await ws.ping()
                await ws.send("abc")
                with pytest.raises(ConnectionClosed):
                    await bounded(ws.recv())
            assert ws.close_code == (code or 1000)
            assert ws.close_reason == (reason or "")
        assert disconnects == [
            {"type": "websocket.disconnect", "code": code or 1000, "reason": reason or ""}
        ]

    run(main())


@pytest.mark.parametrize(("code", "reason"), [(1005, ""), (999, ""), (5000, ""), (1000, "x" * 124)])
def test_invalid_close_raises_valueerror_and_leaves_the_connection_open(
    run: Any, code: int, reason: str
) -> None:
    errors: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await send({"type": "websocket.close", "code": code, "reason": reason})
        except ValueError as exc:
            errors.append(exc)
        await send({"type": "websocket.close", "code": 4000})

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            with pytest.raises(ConnectionClosed):
                await bounded(ws.recv())
            assert ws.close_code == 4000
        assert len(errors) == 1

    run(main())


def test_app_close_waits_for_the_client_close_frame(run: Any) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1001, "reason": "bye"})

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.connect(served.port)
            assert await client.recv_close() == (1001, "bye")
            protocol = await served.protocol()
            # The server keeps TCP open until the client answers (RFC 6455 7.1.1).
            assert not protocol.transport.is_closing()
            client.send(frame(8, close_payload(1001)))
            assert await client.at_eof()
            await client.close()

    run(main())


def test_app_close_times_out_without_the_client_close_frame(run: Any) -> None:
    class Quick(WSProtocol):
        close_timeout = 0.05

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})

    async def main() -> None:
        async with serving(app, ws=Quick) as served:
            client = await RawClient.connect(served.port)
            assert await client.recv_close() == (1000, "")
            assert await client.at_eof()
            await client.close()

    run(main())


def test_messages_after_the_app_close_are_dropped(run: Any) -> None:
    events: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        events.append(await receive())
        await send({"type": "websocket.close", "code": 1000})
        events.append(await receive())
        events.append(await receive())

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.connect(served.port)
            client.send(frame(1, b"before"))
            assert (await client.recv_close())[0] == 1000
            client.send(frame(1, b"after") + frame(8, close_payload(1000)))
            assert await client.at_eof()
            await client.close()
            await until(lambda: len(events) == 3)
        assert events == [
            {"type": "websocket.receive", "text": "before"},
            {"type": "websocket.disconnect", "code": 1000, "reason": ""},
            {"type": "websocket.disconnect", "code": 1000, "reason": ""},
        ]

    run(main())


def test_client_close(run: Any) -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif message["type"] == "websocket.disconnect":
                disconnects.append(message)
                return

    async def main() -> None:
        async with serving(app) as served:
            async with connect(served.url) as ws:
                await ws.ping()
                await ws.send("abc")
                await ws.close(code=1001, reason="custom reason")
            await until(lambda: bool(disconnects))
        assert disconnects == [
            {"type": "websocket.disconnect", "code": 1001, "reason": "custom reason"}
        ]

    run(main())


def test_client_close_without_status_code_is_1005(run: Any) -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnects.append(await receive())

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.connect(served.port)
            client.send(frame(8))
            assert await client.recv_close() == (1005, "")
            assert await client.at_eof()
            await client.close()
            await until(lambda: bool(disconnects))
        assert disconnects == [{"type": "websocket.disconnect", "code": 1005, "reason": ""}]

    run(main())


def test_messages_before_the_client_close_reach_the_app(run: Any) -> None:
    events: list[dict[str, Any]] = []
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        # Reads nothing until the client's close handshake is over.
        await release.wait()
        while not events or events[-1]["type"] != "websocket.disconnect":
            events.append(await receive())

    async def main() -> None:
        async with serving(app) as served:
            async with connect(served.url) as ws:
                for _ in range(3):
                    await ws.send(b"abc")
            release.set()
            await until(lambda: len(events) == 4)
        assert events == [{"type": "websocket.receive", "bytes": b"abc"}] * 3 + [
            {"type": "websocket.disconnect", "code": 1000, "reason": ""}
        ]

    run(main())


def test_client_connection_lost(run: Any) -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnects.append(await receive())

    async def main() -> None:
        async with serving(app, ws_ping_interval=None) as served:
            client = await RawClient.connect(served.port)
            client.writer.transport.abort()
            await until(lambda: bool(disconnects))
        assert disconnects == [{"type": "websocket.disconnect", "code": 1006}]

    run(main())


def test_end_of_file_without_close_frame_is_1006(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while not events or events[-1]["type"] != "websocket.disconnect":
            events.append(await receive())
        with pytest.raises(OSError):
            await send({"type": "websocket.send", "text": "too late"})

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.connect(served.port)
            client.send(frame(1, b"last words"))
            client.writer.write_eof()
            assert await client.at_eof()
            await client.close()
            await until(lambda: len(events) == 2)
        assert events == [
            {"type": "websocket.receive", "text": "last words"},
            {"type": "websocket.disconnect", "code": 1006},
        ]

    run(main())
    # Nothing went wrong inside the protocol's callbacks.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_send_after_the_client_is_gone_raises_oserror(run: Any) -> None:
    outcome: list[object] = []
    gone = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        await gone.wait()
        try:
            await send({"type": "websocket.send", "text": "123"})
        except OSError as exc:
            outcome.append(exc)
        # Closing a connection that is gone is a no-op, not an error.
        await send({"type": "websocket.close"})
        outcome.append("closed")

    async def main() -> None:
        async with serving(app) as served:
            async with connect(served.url):
                pass
            await until(lambda: not served.protocols)
            gone.set()
            await until(lambda: len(outcome) == 2)
        assert isinstance(outcome[0], OSError)
        assert outcome[1] == "closed"

    run(main())


def test_send_after_the_client_closed_raises_oserror(run: Any) -> None:
    outcome: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        # The close frame was handled in this same loop turn: TCP may still be open.
        try:
            await send({"type": "websocket.send", "bytes": b"late"})
        except OSError as exc:
            outcome.append(exc)

    async def main() -> None:
        async with serving(app) as served:
            async with connect(served.url):
                pass
            await until(lambda: bool(outcome))

    run(main())


def test_client_disconnected_out_of_the_app_is_not_logged(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    done = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        try:
            await send({"type": "websocket.send", "text": "nobody listens"})
        finally:
            done.set()

    async def main() -> None:
        async with serving(app) as served:
            async with connect(served.url):
                pass
            await bounded(done.wait())

    run(main())
    assert "Exception in ASGI application" not in caplog.text


def test_disconnect_before_accept_is_1006(run: Any) -> None:
    disconnects: list[dict[str, Any]] = []
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await release.wait()
        disconnects.append(await receive())
        with pytest.raises(OSError):
            await send({"type": "websocket.accept"})

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.request(served.port)
            await served.protocol()
            client.writer.transport.abort()
            await until(lambda: not served.protocols)
            release.set()
            await until(lambda: bool(disconnects))
        assert disconnects == [{"type": "websocket.disconnect", "code": 1006}]

    run(main())


def test_frame_after_the_close_handshake_is_ignored(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_then_echo) as served:
            async with connect(served.url):
                protocol = await served.protocol()
            protocol.data_received(frame(10, b"", mask=True))
            assert protocol.transport.is_closing()

    run(main())


# ---- message order and app errors ----------------------------------------------------


def test_close_before_accept_gets_403(run: Any) -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close"})
        disconnects.append(await receive())

    async def main() -> None:
        async with serving(app) as served:
            with pytest.raises(InvalidStatus) as caught:
                await bounded(connect(served.url))
            assert caught.value.response.status_code == 403
            await until(lambda: bool(disconnects))
        assert disconnects == [{"type": "websocket.disconnect", "code": 1006}]

    run(main())


def test_app_returning_without_accept_gets_500(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        pass

    async def main() -> None:
        async with serving(app) as served:
            with pytest.raises(InvalidStatus) as caught:
                await bounded(connect(served.url))
            assert caught.value.response.status_code == 500
            assert caught.value.response.body == b"Internal Server Error"

    run(main())
    assert "ASGI callable returned without completing handshake." in caplog.text


def test_send_before_accept_gets_500(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    errors: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        try:
            await send({"type": "websocket.send", "text": "123"})
        except RuntimeError as exc:
            errors.append(str(exc))
            raise

    async def main() -> None:
        async with serving(app) as served:
            with pytest.raises(InvalidStatus) as caught:
                await bounded(connect(served.url))
            assert caught.value.response.status_code == 500

    run(main())
    assert errors == [
        "Expected ASGI message 'websocket.accept', 'websocket.close' or "
        "'websocket.http.response.start' but got 'websocket.send'."
    ]
    assert "Exception in ASGI application" in caplog.text


def test_app_exception_before_accept_gets_500(run: Any) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        raise ValueError("boom")

    async def main() -> None:
        async with serving(app) as served:
            response = await upgrade_with_httpx(served.port)
        assert response.status_code == 500
        assert response.text == "Internal Server Error"
        assert response.headers["content-length"] == "21"
        assert response.headers["connection"] == "close"

    run(main())


def test_app_exception_after_accept_closes_with_1011(run: Any) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise ValueError("boom")

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosedError) as caught:
                await bounded(ws.recv())
            assert caught.value.rcvd is not None
            assert caught.value.rcvd.code == 1011

    run(main())


def test_duplicate_accept_raises_and_closes_with_1011(run: Any) -> None:
    errors: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "websocket.accept"})
        try:
            await send({"type": "websocket.accept"})
        except RuntimeError as exc:
            errors.append(str(exc))
            raise

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            with pytest.raises(ConnectionClosed):
                await bounded(ws.recv())
            assert ws.close_code == 1011

    run(main())
    assert errors == [
        "Expected ASGI message 'websocket.send' or 'websocket.close', but got 'websocket.accept'."
    ]


def test_send_after_app_close_raises(run: Any) -> None:
    errors: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "123"})
        await send({"type": "websocket.close"})
        try:
            await send({"type": "websocket.send", "text": "123"})
        except RuntimeError as exc:
            errors.append(str(exc))

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            assert await bounded(ws.recv()) == "123"
            with pytest.raises(ConnectionClosed):
                await bounded(ws.recv())
        assert errors == [
            "Unexpected ASGI message 'websocket.send', after sending 'websocket.close'."
        ]

    run(main())


def test_send_without_text_or_bytes_raises(run: Any) -> None:
    errors: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await send({"type": "websocket.send"})
        except RuntimeError as exc:
            errors.append(str(exc))
        await send({"type": "websocket.close"})

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            with pytest.raises(ConnectionClosed):
                await bounded(ws.recv())
        assert errors == ["Expected 'bytes' or 'text' in ASGI message 'websocket.send'."]

    run(main())


def test_asgi_return_value_is_logged(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> int:
        await send({"type": "websocket.accept"})
        return 123

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            with pytest.raises(ConnectionClosed):
                await bounded(ws.recv())
            assert ws.close_code == 1006

    run(main())
    assert "ASGI callable should return None, but returned '123'." in caplog.text


def test_app_return_without_close_drops_tcp_like_uvicorn(run: Any) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if (await receive())["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            with pytest.raises(ConnectionClosed):
                await bounded(ws.recv())
            assert ws.close_code == 1006

    run(main())


# ---- denial responses ----------------------------------------------------------------


def response_app(*messages: dict[str, Any], after: list[Any] | None = None) -> Any:
    """An app that answers the upgrade with ``messages``; ``after`` gets what follows."""

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert "websocket.http.response" in scope["extensions"]
        assert (await receive())["type"] == "websocket.connect"
        for message in messages:
            await send(message)
        if after is not None:
            after.append(await receive())

    return app


def start(status: int, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "websocket.http.response.start", "status": status, "headers": headers or []}


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "websocket.http.response.body", "body": data, "more_body": more}


def test_denial_response(run: Any) -> None:
    after: list[Any] = []
    app = response_app(
        start(400, [(b"content-type", b"text/plain"), (b"x-why", b"because")]),
        body(b"goodbye"),
        after=after,
    )

    async def main() -> None:
        async with serving(app) as served:
            response = await upgrade_with_httpx(served.port)
            await until(lambda: bool(after))
        assert response.status_code == 400
        assert response.content == b"goodbye"
        assert response.headers["content-length"] == "7"
        assert response.headers["x-why"] == "because"
        assert response.headers["connection"] == "close"
        assert response.headers["server"] == "uvicorn"
        assert after == [{"type": "websocket.disconnect", "code": 1006}]

    run(main())


def test_denial_response_keeps_the_app_connection_header(run: Any) -> None:
    app = response_app(start(400, [(b"Connection", b"close")]), body(b"no"))

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.connect(served.port)
        assert client.status == 400
        assert [v for k, v in client.headers if k == b"connection"] == [b"close"]
        assert client.body == b"no"

    run(main())


def test_denial_response_with_a_status_without_a_phrase(run: Any) -> None:
    async def main() -> None:
        async with serving(response_app(start(599), body(b"odd"))) as served:
            client = await RawClient.connect(served.port)
        assert client.head.startswith(b"HTTP/1.1 599 \r\n")
        assert client.body == b"odd"

    run(main())


def test_denial_response_in_several_bodies(run: Any) -> None:
    app = response_app(
        start(400, [(b"Content-Length", b"20"), (b"Content-Type", b"text/plain")]),
        body(b"x" * 10, more=True),
        body(b"y" * 10),
    )

    async def main() -> None:
        async with serving(app) as served:
            response = await upgrade_with_httpx(served.port)
        assert response.status_code == 400
        assert response.content == b"x" * 10 + b"y" * 10

    run(main())


def test_denial_response_without_length_in_one_body_gets_content_length(run: Any) -> None:
    async def main() -> None:
        async with serving(response_app(start(403), body(b"hardbody"))) as served:
            response = await upgrade_with_httpx(served.port)
        assert response.status_code == 403
        assert response.content == b"hardbody"
        assert response.headers["content-length"] == "8"

    run(main())


def test_denial_response_without_length_in_several_bodies_is_chunked(run: Any) -> None:
    app = response_app(start(403), body(b"hard", more=True), body(b""), after=None)

    async def main() -> None:
        async with serving(app) as served:
            response = await upgrade_with_httpx(served.port)
        assert response.status_code == 403
        assert response.content == b"hard"
        assert response.headers["transfer-encoding"] == "chunked"

    run(main())


def test_denial_response_with_invalid_status_gets_500(run: Any) -> None:
    async def main() -> None:
        async with serving(response_app(start(700))) as served:
            response = await upgrade_with_httpx(served.port)
        assert response.status_code == 500
        assert response.content == b"Internal Server Error"

    run(main())


def test_second_response_start_raises(run: Any) -> None:
    errors: list[str] = []
    message = start(404, [(b"Content-Length", b"0"), (b"Content-Type", b"text/plain")])

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send(message)
        try:
            await send(message)
        except RuntimeError as exc:
            errors.append(str(exc))

    async def main() -> None:
        async with serving(app) as served:
            with pytest.raises(InvalidStatus) as caught:
                await bounded(connect(served.url))
            assert caught.value.response.status_code == 404

    run(main())
    assert errors == [
        "Expected ASGI message 'websocket.http.response.body' but got "
        "'websocket.http.response.start'."
    ]


def test_response_without_body_message_sends_its_head(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = response_app(start(404, [(b"Content-Length", b"0")]))

    async def main() -> None:
        async with serving(app) as served:
            with pytest.raises(InvalidStatus) as caught:
                await bounded(connect(served.url))
            assert caught.value.response.status_code == 404

    run(main())
    assert "ASGI callable returned without completing response." in caplog.text


def test_app_exception_after_response_start_without_head_gets_500(run: Any) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send(start(401))
        raise ValueError("boom")

    async def main() -> None:
        async with serving(app) as served:
            response = await upgrade_with_httpx(served.port)
        assert response.status_code == 500

    run(main())


def test_response_start_without_length_or_body_sends_an_empty_response(run: Any) -> None:
    async def main() -> None:
        async with serving(response_app(start(401))) as served:
            response = await upgrade_with_httpx(served.port)
        assert response.status_code == 401
        assert response.content == b""

    run(main())


# ---- keepalive -----------------------------------------------------------------------


def test_keepalive_pings_continue_while_the_client_answers(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only, ws_ping_interval=0.01, ws_ping_timeout=5.0) as served:
            client = await RawClient.connect(served.port)
            payloads = set()
            # Each ping after the first proves the previous pong was accepted.
            while len(payloads) < 3:
                got = await client.recv_frame()
                assert got is not None and got[0] == 9
                payloads.add(got[1])
                client.send(frame(10, got[1]))
            await client.close()

    run(main())


def test_keepalive_timeout_closes_with_1011(run: Any) -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnects.append(await receive())

    async def main() -> None:
        async with serving(app, ws_ping_interval=0.01, ws_ping_timeout=0.01) as served:
            client = await RawClient.connect(served.port)
            opcode, _ = await client.recv_frame() or (0, b"")
            assert opcode == 9
            # No pong: the server gives up.
            assert await client.recv_close() == (1011, "keepalive ping timeout")
            assert await client.at_eof()
            await client.close()
            await until(lambda: bool(disconnects))
        assert disconnects == [
            {"type": "websocket.disconnect", "code": 1011, "reason": "keepalive ping timeout"}
        ]

    run(main())


def test_keepalive_ignores_unsolicited_pongs(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only, ws_ping_interval=0.01, ws_ping_timeout=0.5) as served:
            client = await RawClient.connect(served.port)
            opcode, _ = await client.recv_frame() or (0, b"")
            assert opcode == 9
            client.send(frame(10, b"not the payload"))
            # Had that pong counted, the next frame would be another ping.
            got = await client.recv_frame()
            assert got is not None and got[0] == 8
            assert got[1][:2] == b"\x03\xf3"  # 1011
            await client.close()

    run(main())


def test_keepalive_without_timeout_keeps_pinging(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only, ws_ping_interval=0.01, ws_ping_timeout=None) as served:
            client = await RawClient.connect(served.port)
            for _ in range(3):
                got = await client.recv_frame()
                assert got is not None and got[0] == 9
            await client.close()

    run(main())


def test_keepalive_disabled(run: Any) -> None:
    async def main() -> None:
        async with serving(accept_only, ws_ping_interval=None) as served:
            async with connect(served.url, ping_interval=None):
                protocol = await served.protocol()
                assert protocol._ping_timer is None

    run(main())


# ---- flow control ----------------------------------------------------------------------


def test_reading_pauses_at_ws_max_queue_and_resumes_when_the_app_catches_up(run: Any) -> None:
    got: list[Any] = []
    take = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await take.wait()
        while len(got) < 40:
            got.append((await receive())["bytes"])

    async def main() -> None:
        async with serving(app, ws_max_queue=8) as served:
            client = await RawClient.connect(served.port)
            protocol = await served.protocol()
            client.send(b"".join(frame(2, bytes([i])) for i in range(8)))
            # Eight messages wait for the app: the server stops reading the socket.
            await until(lambda: not protocol.transport.is_reading())
            client.send(b"".join(frame(2, bytes([i])) for i in range(8, 40)))
            take.set()
            await until(lambda: len(got) == 40)
            assert got == [bytes([i]) for i in range(40)]
            await client.close()

    run(main())


def test_send_waits_while_the_write_buffer_is_full(run: Any) -> None:
    sent = 0
    done = asyncio.Event()
    chunk = os.urandom(1 << 20)

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        nonlocal sent
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(64):
            await send({"type": "websocket.send", "bytes": chunk})
            sent += 1
        done.set()
        await receive()

    async def main() -> None:
        async with serving(app, ws_per_message_deflate=False) as served:
            client = await RawClient.connect(served.port)
            protocol = await served.protocol()
            # The client reads nothing: send() must block before 64 MiB are buffered.
            await until(lambda: bool(protocol._drain_waiters) or done.is_set())
            assert not done.is_set()
            assert protocol.transport.get_write_buffer_size() < 8 << 20
            for _ in range(64):
                got = await client.recv_frame()
                assert got == (2, chunk)
            await bounded(done.wait())
            assert sent == 64
            await client.close()

    run(main())


def test_app_close_while_reading_is_paused_still_reads_the_client_close(run: Any) -> None:
    class Patient(WSProtocol):
        close_timeout = 600.0

    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await release.wait()
        await send({"type": "websocket.close"})

    async def main() -> None:
        async with serving(app, ws=Patient, ws_max_queue=2) as served:
            client = await RawClient.connect(served.port)
            protocol = await served.protocol()
            client.send(b"".join(frame(1, b"unread") for _ in range(4)))
            await until(lambda: not protocol.transport.is_reading())
            release.set()
            assert await client.recv_close() == (1000, "")
            client.send(frame(8, close_payload(1000)))
            # Only reading the answer closes TCP before the (ten-minute) timeout.
            assert await client.at_eof()
            await client.close()

    run(main())


def test_send_waiting_for_drain_raises_when_the_client_is_lost(run: Any) -> None:
    outcome: list[BaseException] = []
    chunk = os.urandom(1 << 20)

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            while True:
                await send({"type": "websocket.send", "bytes": chunk})
        except OSError as exc:
            outcome.append(exc)

    async def main() -> None:
        async with serving(app, ws_per_message_deflate=False) as served:
            client = await RawClient.connect(served.port)
            protocol = await served.protocol()
            await until(lambda: bool(protocol._drain_waiters))
            client.writer.transport.abort()
            await until(lambda: bool(outcome))

    run(main())


@pytest.mark.parametrize("size", [5, 100_000], ids=["small", "over_the_early_data_limit"])
def test_frames_sent_before_the_accept_are_processed_after_it(run: Any, size: int) -> None:
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await release.wait()
        await send({"type": "websocket.accept"})
        for _ in range(2):
            message = await receive()
            await send({"type": "websocket.send", "bytes": message["bytes"][:10]})
        await receive()

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.request(served.port)
            protocol = await served.protocol()
            client.send(frame(2, b"A" * size) + frame(2, b"second"))
            # The frames reach the server before the app accepts (white box: the
            # protocol holds them; past the limit it stops reading the socket).
            await until(lambda: len(protocol._early) >= min(size, 64 << 10))
            if size > 64 << 10:
                await until(lambda: not protocol.transport.is_reading())
            release.set()
            head = await bounded(client.reader.readuntil(b"\r\n\r\n"))
            assert head.startswith(b"HTTP/1.1 101 ")
            assert await client.recv_frame() == (2, b"A" * min(size, 10))
            assert await client.recv_frame() == (2, b"second")
            await client.close()

    run(main())


def test_end_of_file_before_accept(run: Any) -> None:
    events: list[Any] = []
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        events.append(await receive())
        await release.wait()
        try:
            await send({"type": "websocket.accept"})
        except OSError as exc:
            events.append(exc)

    async def main() -> None:
        async with serving(app) as served:
            client = await RawClient.request(served.port)
            await served.protocol()
            client.writer.write_eof()
            await until(lambda: bool(events))
            release.set()
            await until(lambda: len(events) == 2)
            await client.close()
        assert events[0] == {"type": "websocket.disconnect", "code": 1006}
        assert isinstance(events[1], OSError)

    run(main())


# ---- shutdown --------------------------------------------------------------------------


def test_shutdown_closes_open_connections_with_1012(run: Any) -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnects.append(await receive())

    async def main() -> None:
        async with serving(app) as served, connect(served.url) as ws:
            served.server.should_exit = True
            with pytest.raises(ConnectionClosed):
                await bounded(ws.recv())
            assert ws.close_code == 1012
            assert disconnects == [{"type": "websocket.disconnect", "code": 1012}]

    run(main())


def test_shutdown_stops_waiting_for_the_client_close_frame(run: Any) -> None:
    class Patient(WSProtocol):
        close_timeout = 600.0

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1001})

    async def main() -> None:
        async with serving(app, ws=Patient) as served:
            client = await RawClient.connect(served.port)
            assert await client.recv_close() == (1001, "")
            # No answer from the client; the server would wait ten minutes.
            served.server.should_exit = True
            assert await client.at_eof()
            await client.close()

    run(main())


def test_shutdown_before_accept_answers_500(run: Any) -> None:
    disconnects: list[dict[str, Any]] = []
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await release.wait()
        disconnects.append(await receive())

    async def main() -> None:
        async with serving(app) as served:
            task = asyncio.ensure_future(upgrade_with_httpx(served.port))
            await served.protocol()
            served.server.should_exit = True
            response = await bounded(task)
            release.set()
            await until(lambda: bool(disconnects))
        assert response.status_code == 500
        assert disconnects == [{"type": "websocket.disconnect", "code": 1006}]

    run(main())


def test_shutdown_waits_for_the_app_to_finish(run: Any) -> None:
    finished = asyncio.Event()
    release = asyncio.Event()
    disconnected = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        disconnected.set()
        await release.wait()
        finished.set()

    async def main() -> None:
        async with serving(app) as served:
            async with connect(served.url):
                pass
            await bounded(disconnected.wait())
            # Shutdown waits for the tasks uvicorn knows of: the app's is one.
            assert len(served.server.server_state.tasks) == 1
            served.server.should_exit = True
            await until(lambda: not served.server.servers[0].is_serving())
            assert not finished.is_set()
            release.set()
        assert finished.is_set()
        assert not served.server.server_state.tasks

    run(main())


def test_wss(run: Any, certificate: tuple[Any, Any]) -> None:
    import ssl

    cert, key = certificate

    async def main() -> None:
        context = ssl.create_default_context(cafile=str(cert))
        async with (
            serving(accept_then_echo, ssl_certfile=str(cert), ssl_keyfile=str(key)) as served,
            connect(f"wss://127.0.0.1:{served.port}", ssl=context, max_size=None) as ws,
        ):
            for size in (5, 70_000, 3 << 20):
                data = os.urandom(size)
                await ws.send(data)
                assert await bounded(ws.recv()) == data

    run(main())


def test_trace_logs(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with serving(
            accept_only, log_level="trace", ws_ping_interval=0.01, ws_ping_timeout=0.01
        ) as served:
            client = await RawClient.connect(served.port)
            assert (await client.recv_close())[0] == 1011
            await client.close()

    with caplog.at_level(5, logger="uvicorn.error"):
        run(main())
    for message in ("connection made", "keepalive ping timeout", "connection lost"):
        assert f" - WebSocket {message}" in caplog.text


def test_logs_accept_and_reject_like_uvicorn(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with serving(accept_only) as served, connect(served.url + "/path?q=1"):
            pass
        async with serving(response_app(start(401), body(b""))) as served:
            await upgrade_with_httpx(served.port)

    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        run(main())
    assert '"WebSocket /path?q=1" [accepted]' in caplog.text
    assert '"WebSocket /" 401' in caplog.text
