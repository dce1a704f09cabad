# SPDX-License-Identifier: MIT
"""wsfast.uvicorn.WSProtocol under a real uvicorn server with Starlette and FastAPI apps.

The same apps as users write them: ``WebSocket`` endpoints, ``WebSocketEndpoint``
classes, dependencies, exceptions and denial responses; the ``websockets`` package is
the client. Every test runs on asyncio's loop and on uvloop.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Query, WebSocket, WebSocketException
from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from .uvicorn_util import (
    LOOPS,
    bounded,
    make_runner,
    no_loop_errors,  # noqa: F401 (an autouse fixture)
    serving,
    until,
)


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a test coroutine on asyncio's loop, then on uvloop."""
    return make_runner(request.param)


def fastapi_app(events: list[Any]) -> FastAPI:
    """A FastAPI app with the kinds of WebSocket endpoints people write."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello from lifespan"}

    app = FastAPI(lifespan=lifespan)

    @app.websocket("/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    events.append(message["code"])
                    return
                if message.get("text") is not None:
                    await websocket.send_text(message["text"])
                else:
                    await websocket.send_bytes(message["bytes"])
        finally:
            events.append("echo done")

    @app.websocket("/rooms/{room}")
    async def room(websocket: WebSocket, room: str, user: str = Query()) -> None:
        await websocket.accept(
            subprotocol="chat" if "chat" in websocket.scope["subprotocols"] else None
        )
        await websocket.send_json({"room": room, "user": user, "state": websocket.state.greeting})
        async for data in websocket.iter_json():
            await websocket.send_json({"echo": data})

    @app.websocket("/disconnect")
    async def disconnect(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.receive_text()
        except WebSocketDisconnect as exc:
            events.append((exc.code, exc.reason))

    def token(websocket: WebSocket) -> str:
        value = websocket.headers.get("authorization")
        if value != "Bearer secret":
            raise WebSocketException(code=1008, reason="bad token")
        return value

    @app.websocket("/private")
    async def private(websocket: WebSocket, auth: str = Depends(token)) -> None:
        await websocket.accept()
        await websocket.send_text("welcome")
        await websocket.close(code=4001, reason="that is all")

    @app.websocket("/http-error")
    async def http_error(websocket: WebSocket) -> None:
        raise HTTPException(status_code=401, detail="log in first")

    @app.websocket("/fail-before")
    async def fail_before(websocket: WebSocket) -> None:
        raise ValueError("before accept")

    @app.websocket("/fail-after")
    async def fail_after(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise ValueError("after accept")

    @app.websocket("/policy")
    async def policy(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise WebSocketException(code=1008, reason="not allowed")

    return app


def test_fastapi_echo(run: Any) -> None:
    events: list[Any] = []

    async def main() -> None:
        async with (
            serving(fastapi_app(events), lifespan="on") as served,
            connect(served.url + "/echo", max_size=None) as ws,
        ):
            for message in ("hello", "é" * 1000, b"\x00\xff" * 40_000, "", b""):
                await ws.send(message)
                assert await bounded(ws.recv()) == message
        await until(lambda: "echo done" in events)
        assert events == [1000, "echo done"]

    run(main())


def test_fastapi_path_query_lifespan_state_and_json(run: Any) -> None:
    async def main() -> None:
        async with (
            serving(fastapi_app([]), lifespan="on") as served,
            connect(served.url + "/rooms/lobby?user=ann", subprotocols=["chat"]) as ws,
        ):
            assert ws.subprotocol == "chat"
            assert await bounded(ws.recv()) == (
                '{"room":"lobby","user":"ann","state":"hello from lifespan"}'
            )
            await ws.send('{"n": 1}')
            assert await bounded(ws.recv()) == '{"echo":{"n":1}}'

    run(main())


def test_fastapi_validation_error_before_accept_gets_403(run: Any) -> None:
    async def main() -> None:
        async with serving(fastapi_app([]), lifespan="on") as served:
            with pytest.raises(InvalidStatus) as caught:
                await bounded(connect(served.url + "/rooms/lobby"))  # no ?user=
            assert caught.value.response.status_code == 403

    run(main())


def test_fastapi_client_close_code_and_reason_reach_the_endpoint(run: Any) -> None:
    events: list[Any] = []

    async def main() -> None:
        async with serving(fastapi_app(events)) as served:
            async with connect(served.url + "/disconnect") as ws:
                await ws.close(code=4321, reason="going")
            await until(lambda: bool(events))
        assert events == [(4321, "going")]

    run(main())


def test_fastapi_websocket_exception_in_dependency_gets_403(run: Any) -> None:
    async def main() -> None:
        async with serving(fastapi_app([])) as served:
            with pytest.raises(InvalidStatus) as caught:
                await bounded(connect(served.url + "/private"))
            assert caught.value.response.status_code == 403

    run(main())


def test_fastapi_accepted_endpoint_closes_with_its_code_and_reason(run: Any) -> None:
    async def main() -> None:
        async with (
            serving(fastapi_app([])) as served,
            connect(
                served.url + "/private", additional_headers={"Authorization": "Bearer secret"}
            ) as ws,
        ):
            assert await bounded(ws.recv()) == "welcome"
            with pytest.raises(ConnectionClosed):
                await bounded(ws.recv())
            assert (ws.close_code, ws.close_reason) == (4001, "that is all")

    run(main())


def test_fastapi_http_exception_before_accept_is_a_denial_response(run: Any) -> None:
    async def main() -> None:
        async with serving(fastapi_app([])) as served, httpx.AsyncClient() as client:
            response = await bounded(
                client.get(
                    f"http://127.0.0.1:{served.port}/http-error",
                    headers={
                        "connection": "upgrade",
                        "upgrade": "websocket",
                        "sec-websocket-key": "x3JJHMbDL1EzLkh9GBhXDw==",
                        "sec-websocket-version": "13",
                    },
                )
            )
        assert response.status_code == 401
        assert response.json() == {"detail": "log in first"}

    run(main())


def test_fastapi_exception_before_accept_gets_500(run: Any) -> None:
    async def main() -> None:
        async with serving(fastapi_app([])) as served:
            with pytest.raises(InvalidStatus) as caught:
                await bounded(connect(served.url + "/fail-before"))
            assert caught.value.response.status_code == 500

    run(main())


def test_fastapi_exception_after_accept_closes_with_1011(run: Any) -> None:
    async def main() -> None:
        async with serving(fastapi_app([])) as served, connect(served.url + "/fail-after") as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosedError) as caught:
                await bounded(ws.recv())
            assert caught.value.rcvd is not None
            assert caught.value.rcvd.code == 1011

    run(main())


def test_fastapi_websocket_exception_after_accept_closes_with_its_code(run: Any) -> None:
    async def main() -> None:
        async with serving(fastapi_app([])) as served, connect(served.url + "/policy") as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosed):
                await bounded(ws.recv())
            assert (ws.close_code, ws.close_reason) == (1008, "not allowed")

    run(main())


class Counter(WebSocketEndpoint):
    """A Starlette endpoint class with JSON encoding."""

    encoding = "json"

    async def on_connect(self, websocket: Any) -> None:
        await websocket.accept()
        websocket.state.count = 0

    async def on_receive(self, websocket: Any, data: Any) -> None:
        websocket.state.count += data["add"]
        await websocket.send_json({"count": websocket.state.count})

    async def on_disconnect(self, websocket: Any, close_code: int) -> None:
        closed.append(close_code)


closed: list[int] = []


async def denied(websocket: Any) -> None:
    await websocket.send_denial_response(
        PlainTextResponse("nope", status_code=401, headers={"WWW-Authenticate": "Bearer"})
    )


async def headers_and_cookies(websocket: Any) -> None:
    await websocket.accept(headers=[(b"x-reply", b"yes")])
    await websocket.send_json(
        {
            "cookie": websocket.cookies.get("session"),
            "header": websocket.headers.get("x-custom"),
            "query": websocket.query_params.get("q"),
            "client": websocket.client.host,
            "url": str(websocket.url),
        }
    )
    await websocket.close(reason="done")


starlette_app = Starlette(
    routes=[
        WebSocketRoute("/count", Counter),
        WebSocketRoute("/denied", denied),
        WebSocketRoute("/info", headers_and_cookies),
    ]
)


def test_starlette_endpoint_class(run: Any) -> None:
    async def main() -> None:
        closed.clear()
        async with serving(starlette_app) as served:
            async with connect(served.url + "/count") as ws:
                for n in (1, 2, 3):
                    await ws.send(f'{{"add": {n}}}')
                await bounded(ws.recv())
                await bounded(ws.recv())
                assert await bounded(ws.recv()) == '{"count":6}'
            await until(lambda: bool(closed))
        assert closed == [1000]

    run(main())


def test_starlette_denial_response(run: Any) -> None:
    async def main() -> None:
        async with serving(starlette_app) as served:
            with pytest.raises(InvalidStatus) as caught:
                await bounded(connect(served.url + "/denied"))
        response = caught.value.response
        assert response.status_code == 401
        assert response.body == b"nope"
        assert response.headers["www-authenticate"] == "Bearer"

    run(main())


def test_starlette_headers_cookies_query_and_close_reason(run: Any) -> None:
    async def main() -> None:
        async with (
            serving(starlette_app) as served,
            connect(
                served.url + "/info?q=42",
                additional_headers={"X-Custom": "value", "Cookie": "session=abc"},
            ) as ws,
        ):
            assert ws.response.headers["x-reply"] == "yes"
            info = json.loads(await bounded(ws.recv()))
            assert info == {
                "cookie": "abc",
                "header": "value",
                "query": "42",
                "client": "127.0.0.1",
                "url": f"ws://127.0.0.1:{served.port}/info?q=42",
            }
            with pytest.raises(ConnectionClosed):
                await bounded(ws.recv())
            assert (ws.close_code, ws.close_reason) == (1000, "done")

    run(main())
