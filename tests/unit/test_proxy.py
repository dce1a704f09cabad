# SPDX-License-Identifier: MIT
"""wsfast.proxy without sockets: URL parsing, the environment, the CONNECT request."""

from __future__ import annotations

import base64
import sys

import pytest

from wsfast.exceptions import InvalidProxy, InvalidProxyStatus, ProxyError
from wsfast.proxy import (
    ProxyURL,
    _connect_response,
    _socks_proxy,
    connect_request,
    get_proxy,
    parse_proxy,
)

from ..proxy_util import clean_environment as clean_environment


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy:3128", ProxyURL("http", "proxy", 3128)),
        ("http://proxy", ProxyURL("http", "proxy", 80)),
        ("HTTP://Proxy:1", ProxyURL("http", "proxy", 1)),
        ("socks5://10.0.0.1", ProxyURL("socks5", "10.0.0.1", 1080)),
        ("socks5h://[::1]:9050", ProxyURL("socks5h", "::1", 9050)),
        ("socks4://h:1", ProxyURL("socks4", "h", 1)),
        ("socks4a://h:1", ProxyURL("socks4a", "h", 1)),
        ("http://us%40er:p%3Ass@h:8", ProxyURL("http", "h", 8, "us@er", "p:ss")),
    ],
)
def test_parse_proxy(url: str, expected: ProxyURL) -> None:
    assert parse_proxy(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://proxy:443", "unsupported proxy scheme 'https'"),
        ("ftp://proxy", "unsupported proxy scheme"),
        ("proxy:3128", "unsupported proxy scheme"),
        ("http://:3128", "no host"),
        ("http://proxy:99999", "invalid proxy URL"),
    ],
)
def test_parse_proxy_rejects(url: str, message: str) -> None:
    with pytest.raises(InvalidProxy, match=message):
        parse_proxy(url)


def test_proxy_url_hides_credentials() -> None:
    assert str(parse_proxy("http://user:secret@[::1]:8")) == "http://[::1]:8"


def test_explicit_proxy_and_none() -> None:
    assert get_proxy(None, tls=False, host="h", port=80) is None
    assert get_proxy("http://p:1", tls=True, host="h", port=80) == ProxyURL("http", "p", 1)


def test_auto_without_variables_connects_directly() -> None:
    assert get_proxy("auto", tls=False, host="example.com", port=80) is None


def test_auto_picks_the_variable_of_the_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://plain:1")
    monkeypatch.setenv("https_proxy", "http://secure:2")
    assert get_proxy("auto", tls=False, host="example.com", port=80) == ProxyURL("http", "plain", 1)
    assert get_proxy("auto", tls=True, host="example.com", port=443) == ProxyURL(
        "http", "secure", 2
    )


def test_auto_falls_back_to_all_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("all_proxy", "socks5h://tor:9050")
    assert get_proxy("auto", tls=True, host="example.com", port=443) == ProxyURL(
        "socks5h", "tor", 9050
    )


@pytest.mark.parametrize(
    ("no_proxy", "host", "bypassed"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("localhost,.internal", "api.internal", True),
        ("*", "example.com", True),
        ("other.com", "example.com", False),
    ],
)
def test_auto_honours_no_proxy(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, host: str, bypassed: bool
) -> None:
    monkeypatch.setenv("http_proxy", "http://p:1")
    monkeypatch.setenv("no_proxy", no_proxy)
    found = get_proxy("auto", tls=False, host=host, port=8000)
    assert (found is None) is bypassed


def test_connect_request() -> None:
    assert connect_request(ProxyURL("http", "p", 1), "example.com", 443) == (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    )
    assert connect_request(ProxyURL("http", "p", 1), "::1", 8000).startswith(
        b"CONNECT [::1]:8000 HTTP/1.1\r\nHost: [::1]:8000\r\n"
    )


def test_connect_request_with_credentials() -> None:
    request = connect_request(ProxyURL("http", "p", 1, "user", "pa:ss"), "h", 80)
    token = base64.b64encode(b"user:pa:ss").decode()
    assert f"\r\nProxy-Authorization: Basic {token}\r\n".encode() in request


def test_connect_response() -> None:
    proxy = ProxyURL("http", "p", 1)
    assert not _connect_response(proxy, b"HTTP/1.1 200 OK\r\n")
    assert _connect_response(proxy, b"HTTP/1.1 200 Connection established\r\n\r\n")
    with pytest.raises(InvalidProxyStatus, match=r"proxy http://p:1 .* HTTP 407") as info:
        _connect_response(proxy, b"HTTP/1.1 407 Auth\r\n\r\n")
    assert info.value.status == 407
    with pytest.raises(ProxyError, match="unexpected data"):
        _connect_response(proxy, b"HTTP/1.1 200 OK\r\n\r\nextra")
    with pytest.raises(ProxyError, match="invalid response from proxy"):
        _connect_response(proxy, b"garbage garbage\r\n\r\n")


def test_socks_without_python_socks_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "python_socks", None)
    with pytest.raises(ImportError, match="pip install python-socks"):
        _socks_proxy(ProxyURL("socks5", "p", 1), sync=True)
