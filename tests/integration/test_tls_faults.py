# SPDX-License-Identifier: MIT
"""TLS faults: clean errors on the client side, and the server keeps serving.

Already covered in tests/integration/test_server.py: a plaintext request to a TLS
port is dropped.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidMessage
from websockets.sync.client import connect

from tests.certs import self_signed_certificate
from wsfast.server import Server

from .server_util import Echo, RawClient, running, tls_server_context, wait_for


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[Server]:
    with running(Echo, ssl=tls_server_context(*certificate), handshake_timeout=1.0) as server:
        yield server


def still_serving(server: Server, certfile: Path) -> None:
    client = ssl.create_default_context(cafile=str(certfile))
    with connect(f"wss://127.0.0.1:{server.port}/", ssl=client, open_timeout=30) as ws:
        ws.send("alive?")
        assert ws.recv(timeout=30) == "alive?"


def test_untrusted_certificate_is_a_clean_client_error(
    tls_server: Server, certificate: tuple[Path, Path]
) -> None:
    # The default context trusts only the system's CAs: our self-signed one is unknown.
    with pytest.raises(ssl.SSLCertVerificationError, match=r"self-signed|unable to get"):
        connect(f"wss://127.0.0.1:{tls_server.port}/", open_timeout=30)
    still_serving(tls_server, certificate[0])


def expired_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 that expired yesterday."""
    return self_signed_certificate(
        directory,
        common_name="wsfast expired",
        not_before=-datetime.timedelta(days=3),
        not_after=-datetime.timedelta(days=1),
        stem="expired",
    )


def test_expired_certificate_is_a_clean_client_error(tmp_path: Path) -> None:
    certfile, keyfile = expired_certificate(tmp_path)
    client = ssl.create_default_context(cafile=str(certfile))
    with running(Echo, ssl=tls_server_context(certfile, keyfile)) as server:
        with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
            connect(f"wss://127.0.0.1:{server.port}/", ssl=client, open_timeout=30)
        # The same server still completes handshakes with a client that accepts it.
        lenient = ssl.create_default_context(cafile=str(certfile))
        lenient.check_hostname = False
        lenient.verify_mode = ssl.CERT_NONE
        with connect(f"wss://127.0.0.1:{server.port}/", ssl=lenient, open_timeout=30) as ws:
            ws.send("late")
            assert ws.recv(timeout=30) == "late"


def test_tls_client_on_a_plaintext_port_gets_a_clean_error(certificate: tuple[Path, Path]) -> None:
    client = ssl.create_default_context(cafile=str(certificate[0]))
    with running(Echo) as server:
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock,
            pytest.raises(ssl.SSLError),
        ):
            # The ClientHello is a malformed request head: the server answers 400
            # in plaintext and closes, which the TLS client reports as an error.
            client.wrap_socket(sock, server_hostname="127.0.0.1")
        with pytest.raises((ssl.SSLError, InvalidMessage, ConnectionError)):
            connect(f"wss://127.0.0.1:{server.port}/", ssl=client, open_timeout=30)
        with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            ws.send("plain")
            assert ws.recv(timeout=30) == "plain"


def test_plaintext_websocket_client_on_a_tls_port_gets_a_clean_error(
    tls_server: Server, certificate: tuple[Path, Path]
) -> None:
    with pytest.raises((InvalidMessage, ConnectionError, EOFError)):
        connect(f"ws://127.0.0.1:{tls_server.port}/", open_timeout=30)
    still_serving(tls_server, certificate[0])


def client_hello(certfile: Path) -> bytes:
    """The first flight of a real TLS client (its ClientHello record)."""
    context = ssl.create_default_context(cafile=str(certfile))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls: Any = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_tls_handshake_that_never_completes_is_dropped_at_the_handshake_timeout(
    tls_server: Server, certificate: tuple[Path, Path]
) -> None:
    hello = client_hello(certificate[0])
    with RawClient(tls_server.port, timeout=30) as silent, RawClient(tls_server.port) as half:
        half.sock.sendall(hello[: len(hello) // 2])
        # Neither finishes its handshake: both are dropped (handshake_timeout=1.0),
        # the silent one without ever sending a byte.
        assert silent.at_eof(30.0)
        assert half.at_eof(30.0)
    still_serving(tls_server, certificate[0])


def test_clients_that_disconnect_mid_tls_handshake(
    tls_server: Server, certificate: tuple[Path, Path]
) -> None:
    hello = client_hello(certificate[0])
    for cut in (0, 5, len(hello) // 2, len(hello)):
        with RawClient(tls_server.port) as raw:
            if cut:
                raw.sock.sendall(hello[:cut])
    still_serving(tls_server, certificate[0])
    wait_for(lambda: not tls_server._loop.transports, timeout=30)
