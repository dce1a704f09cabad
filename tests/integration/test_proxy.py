# SPDX-License-Identifier: MIT
"""Both clients through real proxies on 127.0.0.1: HTTP CONNECT and SOCKS5.

The proxies (``scripted_peer.ConnectProxy`` and ``Socks5Proxy``) relay bytes to a
real wsfast server; SOCKS goes through python-socks, as in production.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import wsfast.asyncio
from wsfast.client import connect
from wsfast.exceptions import InvalidProxy, InvalidProxyStatus, ProxyError
from wsfast.server import Server

from ..proxy_util import clean_environment as clean_environment
from .scripted_peer import ConnectProxy, ScriptedPeer, Socks5Proxy
from .server_util import Echo, running

# One client interface for both: open, echo one message, close.
Roundtrip = Callable[..., str]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running(Echo) as srv:
        yield srv


@pytest.fixture
def url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.port}/"


@pytest.fixture(params=["blocking", "asyncio"])
def roundtrip(request: pytest.FixtureRequest, run: Any) -> Roundtrip:
    """Connect with the client under test, echo "hello" and return the answer."""

    def blocking(url: str, **options: Any) -> str:
        options.setdefault("ping_interval", None)
        with connect(url, **options) as ws:
            ws.send("hello")
            return str(ws.recv(10))

    def asyncio_(url: str, **options: Any) -> str:
        options.setdefault("ping_interval", None)

        async def main() -> str:
            async with wsfast.asyncio.connect(url, **options) as ws:
                await ws.send("hello")
                return str(await ws.recv())

        return str(run(main()))

    return blocking if request.param == "blocking" else asyncio_


@pytest.fixture
def http_proxy() -> Iterator[ConnectProxy]:
    proxy = ConnectProxy()
    yield proxy
    proxy.close()


# ---- HTTP CONNECT ----------------------------------------------------------------------


def test_through_http_proxy(
    roundtrip: Roundtrip, url: str, server: Server, http_proxy: ConnectProxy
) -> None:
    assert roundtrip(url, proxy=http_proxy.url) == "hello"
    assert len(http_proxy.requests) == 1
    assert http_proxy.requests[0].startswith(
        f"CONNECT 127.0.0.1:{server.port} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    )


def test_proxy_credentials_from_the_url(roundtrip: Roundtrip, url: str) -> None:
    proxy = ConnectProxy(auth="user:s3cret")
    try:
        authenticated = proxy.url.replace("http://", "http://user:s3cret@")
        assert roundtrip(url, proxy=authenticated) == "hello"
        with pytest.raises(InvalidProxyStatus) as info:
            roundtrip(url, proxy=proxy.url)
    finally:
        proxy.close()
    assert info.value.status == 407
    assert str(info.value) == f"proxy {proxy.url} rejected the tunnel with HTTP 407"
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize("status", [403, 502])
def test_proxy_refusal_names_proxy_and_status(roundtrip: Roundtrip, url: str, status: int) -> None:
    proxy = ConnectProxy(status=status)
    try:
        with pytest.raises(InvalidProxyStatus, match=f"proxy {proxy.url} .* HTTP {status}") as info:
            roundtrip(url, proxy=proxy.url)
    finally:
        proxy.close()
    assert info.value.status == status
    assert info.value.proxy == proxy.url


def test_proxy_that_is_not_listening(roundtrip: Roundtrip, url: str) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    # Nothing listens on that port now: the connection is refused.
    with pytest.raises(ConnectionRefusedError, match=f"proxy http://127.0.0.1:{port}"):
        roundtrip(url, proxy=f"http://127.0.0.1:{port}")


def test_unsupported_proxy_scheme(roundtrip: Roundtrip, url: str) -> None:
    with pytest.raises(InvalidProxy, match="unsupported proxy scheme"):
        roundtrip(url, proxy="https://127.0.0.1:1")


def test_proxy_from_the_environment(
    roundtrip: Roundtrip, url: str, http_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", http_proxy.url)
    assert roundtrip(url) == "hello"
    assert len(http_proxy.requests) == 1
    # proxy=None ignores the environment.
    assert roundtrip(url, proxy=None) == "hello"
    assert len(http_proxy.requests) == 1


def test_no_proxy_bypasses_the_proxy(
    roundtrip: Roundtrip, url: str, http_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", http_proxy.url)
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    assert roundtrip(url) == "hello"
    assert http_proxy.requests == []


def test_wss_through_http_proxy(
    roundtrip: Roundtrip, certificate: tuple[Path, Path], http_proxy: ConnectProxy
) -> None:
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(*certificate)
    client_tls = ssl.create_default_context(cafile=str(certificate[0]))
    with running(Echo, ssl=server_tls) as srv:
        url = f"wss://127.0.0.1:{srv.port}/"
        assert roundtrip(url, proxy=http_proxy.url, ssl=client_tls) == "hello"
    # The proxy saw the tunnel request only; TLS ran inside the tunnel.
    assert http_proxy.requests[0].startswith(f"CONNECT 127.0.0.1:{srv.port} ")


def test_wss_proxy_from_https_proxy_variable(
    roundtrip: Roundtrip,
    certificate: tuple[Path, Path],
    http_proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(*certificate)
    client_tls = ssl.create_default_context(cafile=str(certificate[0]))
    monkeypatch.setenv("https_proxy", http_proxy.url)
    with running(Echo, ssl=server_tls) as srv:
        url = f"wss://127.0.0.1:{srv.port}/"
        assert roundtrip(url, ssl=client_tls) == "hello"
    assert len(http_proxy.requests) == 1


# ---- SOCKS -----------------------------------------------------------------------------


def test_through_socks5_proxy(roundtrip: Roundtrip, url: str, server: Server) -> None:
    proxy = Socks5Proxy()
    try:
        assert roundtrip(url, proxy=proxy.url) == "hello"
        # socks5:// resolves the name locally; socks5h:// lets the proxy do it.
        local = f"ws://localhost:{server.port}/"
        assert roundtrip(local, proxy=proxy.url.replace("socks5:", "socks5h:")) == "hello"
    finally:
        proxy.close()
    assert proxy.targets == [("127.0.0.1", server.port), ("localhost", server.port)]


def test_socks5_proxy_with_credentials(roundtrip: Roundtrip, url: str) -> None:
    proxy = Socks5Proxy(auth=("user", "s3cret"))
    try:
        authenticated = proxy.url.replace("socks5://", "socks5://user:s3cret@")
        assert roundtrip(url, proxy=authenticated) == "hello"
        wrong = proxy.url.replace("socks5://", "socks5://user:wrong@")
        with pytest.raises(ProxyError, match=f"proxy {proxy.url} refused") as info:
            roundtrip(url, proxy=wrong)
    finally:
        proxy.close()
    assert "wrong" not in str(info.value)


def test_socks5_proxy_cannot_reach_the_server(roundtrip: Roundtrip) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    proxy = Socks5Proxy()
    try:
        with pytest.raises(ProxyError, match=f"proxy {proxy.url} refused"):
            roundtrip(f"ws://127.0.0.1:{port}/", proxy=proxy.url)
    finally:
        proxy.close()


def test_wss_through_socks5_proxy(roundtrip: Roundtrip, certificate: tuple[Path, Path]) -> None:
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(*certificate)
    client_tls = ssl.create_default_context(cafile=str(certificate[0]))
    proxy = Socks5Proxy()
    try:
        with running(Echo, ssl=server_tls) as srv:
            url = f"wss://127.0.0.1:{srv.port}/"
            assert roundtrip(url, proxy=proxy.url, ssl=client_tls) == "hello"
    finally:
        proxy.close()


def test_large_messages_through_the_tunnel(url: str, http_proxy: ConnectProxy) -> None:
    data = os.urandom(512 * 1024)
    with connect(url, proxy=http_proxy.url) as ws:
        ws.send(data)
        assert ws.recv(10) == data


def test_open_timeout_covers_a_proxy_that_never_answers(roundtrip: Roundtrip, url: str) -> None:
    # A TCP peer that reads the CONNECT request and never answers.
    with ScriptedPeer("silent") as silent:
        proxy = f"http://127.0.0.1:{silent.port}"
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            roundtrip(url, proxy=proxy, open_timeout=0.3)
        assert time.monotonic() - started < 30
