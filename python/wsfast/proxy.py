# SPDX-License-Identifier: MIT
"""Reaching a WebSocket server through a proxy, for both clients.

Two kinds of proxy:

* HTTP (``http://[user:password@]host[:port]``): an HTTP/1.1 ``CONNECT`` request
  opens a TCP tunnel to the server (RFC 9110 section 9.3.6); credentials in the URL
  go as ``Proxy-Authorization: Basic``. Built in.
* SOCKS (``socks5://``, ``socks5h://``, ``socks4://``, ``socks4a://``): through the
  ``python-socks`` package, an optional dependency (``pip install python-socks``).
  The ``h``/``a`` variants let the proxy resolve the server's name.

Either way the proxy only carries bytes: for ``wss://`` the TLS handshake runs
inside the tunnel, with the server, so the proxy sees no plaintext.

``proxy="auto"`` (the clients' default) reads the environment like ``urllib`` and
websockets: ``https_proxy`` for wss://, ``http_proxy`` for ws://, else
``all_proxy``; ``no_proxy`` lists the hosts to reach directly.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Final

from wsfast._native import rust
from wsfast.exceptions import InvalidProxy, InvalidProxyStatus, ProxyError

__all__ = [
    "ProxyURL",
    "connect_request",
    "get_proxy",
    "open_tunnel",
    "open_tunnel_async",
    "parse_proxy",
]

_DEFAULT_PORTS: Final = {
    "http": 80,
    "socks5": 1080,
    "socks5h": 1080,
    "socks4": 1080,
    "socks4a": 1080,
}
# The largest CONNECT response head accepted: a proxy sends a few short headers.
_MAX_HEAD: Final = 16384


@dataclass(frozen=True)
class ProxyURL:
    """A parsed proxy URL.

    Attributes:
        scheme: ``http``, ``socks5``, ``socks5h``, ``socks4`` or ``socks4a``.
        host: the proxy's host name or address.
        port: the proxy's port.
        username: the user name from the URL, or None.
        password: the password from the URL, or None.
    """

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        """The URL without credentials, for error messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_proxy(url: str) -> ProxyURL:
    """Parse a proxy URL.

    Args:
        url: ``http://``, ``socks5://``, ``socks5h://``, ``socks4://`` or
            ``socks4a://``, with optional ``user:password@`` and port.

    Returns:
        The parsed URL.

    Raises:
        InvalidProxy: if the URL is malformed or its scheme is not supported.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidProxy(f"invalid proxy URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidProxy(f"unsupported proxy scheme {scheme!r} (use http or socks5)")
    if not parts.hostname:
        raise InvalidProxy(f"no host in proxy URL {url!r}")
    username = None if parts.username is None else urllib.parse.unquote(parts.username)
    password = None if parts.password is None else urllib.parse.unquote(parts.password)
    return ProxyURL(scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], username, password)


def get_proxy(proxy: str | None, *, tls: bool, host: str, port: int) -> ProxyURL | None:
    """The proxy to use for a connection, if any.

    Args:
        proxy: a proxy URL, None for a direct connection, or ``"auto"`` to read
            ``https_proxy`` (wss://) or ``http_proxy`` (ws://), else ``all_proxy``,
            unless ``no_proxy`` matches the host (as ``urllib.request`` does).
        tls: whether the WebSocket URL is wss://.
        host: the server's host.
        port: the server's port.

    Returns:
        The proxy, or None to connect directly.

    Raises:
        InvalidProxy: if the proxy URL is malformed or not supported.
    """
    if proxy is None:
        return None
    if proxy == "auto":
        proxies = urllib.request.getproxies()
        proxy = proxies.get("https" if tls else "http") or proxies.get("all")
        if not proxy:
            return None
        bracketed = f"[{host}]" if ":" in host else host
        if urllib.request.proxy_bypass(f"{bracketed}:{port}"):
            return None
    return parse_proxy(proxy)


def connect_request(proxy: ProxyURL, host: str, port: int) -> bytes:
    """The ``CONNECT`` request that opens a tunnel to ``host:port``."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.username is not None:
        credentials = f"{proxy.username}:{proxy.password or ''}".encode()
        lines.append(f"Proxy-Authorization: Basic {base64.b64encode(credentials).decode()}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _connect_response(proxy: ProxyURL, received: bytes | bytearray) -> bool:
    """Check the proxy's answer to CONNECT once its head is complete.

    Returns:
        False while the head is incomplete, True once the tunnel is open.

    Raises:
        InvalidProxyStatus: if the proxy answered with another status than 2xx.
        ProxyError: if the answer is malformed, or data follows the head (the
            server speaks only after the client, so it cannot be the server's).
    """
    try:
        parsed = rust.parse_response(received, _MAX_HEAD)
    except Exception as exc:
        raise ProxyError(f"invalid response from proxy {proxy}: {exc}") from None
    if parsed is None:
        return False
    response, consumed = parsed
    if not 200 <= response.status < 300:
        raise InvalidProxyStatus(response.status, str(proxy))
    if consumed != len(received):
        raise ProxyError(f"unexpected data from proxy {proxy} after its response")
    return True


def _socks_proxy(proxy: ProxyURL, *, sync: bool) -> Any:
    """A python-socks proxy object for ``proxy``.

    Raises:
        ImportError: if python-socks is not installed.
    """
    try:
        from python_socks import ProxyType

        if sync:
            from python_socks.sync import Proxy
        else:
            from python_socks.async_.asyncio import Proxy  # type: ignore[assignment]
    except ImportError as exc:
        raise ImportError(
            f"connecting through {proxy.scheme}:// proxies requires python-socks: "
            "pip install python-socks"
        ) from exc
    kind = ProxyType.SOCKS5 if proxy.scheme.startswith("socks5") else ProxyType.SOCKS4
    rdns = proxy.scheme in ("socks5h", "socks4a")
    return Proxy(kind, proxy.host, proxy.port, proxy.username, proxy.password, rdns=rdns)


def _proxy_failed(proxy: ProxyURL, exc: Exception) -> Exception:
    """The exception to raise when talking to ``proxy`` failed with ``exc``.

    Network errors stay OSErrors (a reconnecting client retries them), with the
    proxy named; refusals by the proxy become :class:`ProxyError`.
    """
    if isinstance(exc, TimeoutError):
        return TimeoutError(f"timed out connecting through proxy {proxy}")
    if isinstance(exc, OSError):
        return type(exc)(exc.errno, f"cannot reach proxy {proxy}: {exc.strerror or exc}")
    return ProxyError(f"proxy {proxy} refused the connection: {exc}")


def open_tunnel(proxy: ProxyURL, host: str, port: int, timeout: float | None) -> socket.socket:
    """Open a blocking socket to ``host:port`` through ``proxy``.

    Args:
        proxy: the proxy.
        host: the WebSocket server's host.
        port: the WebSocket server's port.
        timeout: seconds for the whole exchange with the proxy, or None.

    Returns:
        A connected socket (with ``timeout`` set) that carries bytes to the server.

    Raises:
        OSError: if the proxy cannot be reached (TimeoutError if it is too slow).
        InvalidProxyStatus: if an HTTP proxy refuses with a non-2xx status.
        ProxyError: if a SOCKS proxy refuses, or the proxy's reply is malformed.
        ImportError: for a SOCKS proxy, if python-socks is not installed.
    """
    if proxy.scheme != "http":
        socks = _socks_proxy(proxy, sync=True)
        try:
            sock: socket.socket = socks.connect(host, port, timeout=timeout)
        except Exception as exc:
            raise _proxy_failed(proxy, exc) from exc
        return sock
    try:
        sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    except OSError as exc:
        raise _proxy_failed(proxy, exc) from exc
    try:
        sock.sendall(connect_request(proxy, host, port))
        received = bytearray()
        while not _connect_response(proxy, received):
            # Read little at a time: bytes past the head would belong to the server.
            chunk = sock.recv(4096)
            if not chunk:
                raise ProxyError(f"proxy {proxy} closed the connection")
            received += chunk
    except OSError as exc:
        sock.close()
        raise _proxy_failed(proxy, exc) from exc
    except BaseException:
        sock.close()
        raise
    return sock


async def _connect_tcp(host: str, port: int) -> socket.socket:
    """A non-blocking socket connected to ``host:port`` on the running loop."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    assert error is not None  # getaddrinfo returns at least one address or raises
    raise error


async def open_tunnel_async(proxy: ProxyURL, host: str, port: int) -> socket.socket:
    """Open a non-blocking socket to ``host:port`` through ``proxy``, on the running loop.

    Bound it with ``asyncio.timeout``; the errors are those of :func:`open_tunnel`.
    """
    loop = asyncio.get_running_loop()
    if proxy.scheme != "http":
        socks = _socks_proxy(proxy, sync=False)
        try:
            sock: socket.socket = await socks.connect(host, port)
        except (asyncio.CancelledError, TimeoutError):
            raise
        except Exception as exc:
            raise _proxy_failed(proxy, exc) from exc
        return sock
    try:
        sock = await _connect_tcp(proxy.host, proxy.port)
    except OSError as exc:
        raise _proxy_failed(proxy, exc) from exc
    try:
        await loop.sock_sendall(sock, connect_request(proxy, host, port))
        received = bytearray()
        while not _connect_response(proxy, received):
            chunk = await loop.sock_recv(sock, 4096)
            if not chunk:
                raise ProxyError(f"proxy {proxy} closed the connection")
            received += chunk
    except (asyncio.CancelledError, TimeoutError):
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        raise _proxy_failed(proxy, exc) from exc
    except BaseException:
        sock.close()
        raise
    return sock
