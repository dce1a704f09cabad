# SPDX-License-Identifier: MIT
"""Every conformance case against ``wsfast echo`` (a subprocess), over raw sockets.

The tester is a hand-written client (``wire.py``): it upgrades by hand, masks its
frames, and checks each frame the server sends. Two servers run for the whole module:
one with the default max-size (64 MiB) and one started with ``--max-size 1048576``
for the limit cases.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.cases import CASES, LIMIT, Case
from tests.conformance.peers import ServerProcess
from tests.conformance.wire import RawPeer, check, client_handshake


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, ServerProcess]]:
    """The default server and the limited one, keyed by ``case.limited``."""
    logs = tmp_path_factory.mktemp("conformance-server")
    procs = {
        False: ServerProcess(logs / "default.log", None),
        True: ServerProcess(logs / "limited.log", LIMIT),
    }
    try:
        for proc in procs.values():
            proc.start()
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


def _run(case: Case, server: ServerProcess, tls: ssl.SSLContext | None = None) -> None:
    sock, agreement, rest, problems = client_handshake(server.port, case.deflate, tls)
    with sock:
        assert not problems, f"handshake: {problems}"
        tester = RawPeer(sock, client=True, agreement=agreement, received=rest)
        tester.play(case)
        observed = tester.finish(case)
    check(case, observed, client_under_test=False)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_server(case: Case, servers: dict[bool, ServerProcess]) -> None:
    """The echo server does what RFC 6455 / RFC 7692 require for this case."""
    server = servers[case.limited]
    server.ensure()
    # The case's own peak over the memory it started with.
    before = server.reset_peak_memory() if case.bounded_memory else 0
    try:
        _run(case, server)
    finally:
        assert server.alive(), f"server exited during {case.id}: {server.log_tail()}"
    if case.bounded_memory:
        growth = server.peak_memory() - before
        assert growth < 64 << 20, f"server peak memory grew by {growth >> 20} MiB"


def test_server_log_path(servers: dict[bool, ServerProcess]) -> None:
    """The fixture really runs two servers on different ports."""
    assert servers[False].port != servers[True].port
    assert isinstance(servers[False].log_path, Path)


# ---- over wss:// ---------------------------------------------------------------------------

#: A subset for TLS: every tenth case (of those the default server runs, without the
#: memory-peak ones), so that every category is crossed.
TLS_CASES = [
    c
    for i, c in enumerate(c for c in CASES if not c.limited and not c.bounded_memory)
    if i % 10 == 0
]


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]
) -> Iterator[tuple[ServerProcess, ssl.SSLContext]]:
    """``wsfast echo --certfile ... --keyfile ...``, and a client context trusting it."""
    logs = tmp_path_factory.mktemp("conformance-tls-server")
    proc = ServerProcess(logs / "tls.log", None, tls=certificate)
    try:
        proc.start()
        yield proc, ssl.create_default_context(cafile=str(certificate[0]))
    finally:
        proc.stop()


@pytest.mark.parametrize("case", TLS_CASES, ids=[c.id for c in TLS_CASES])
def test_server_over_tls(case: Case, tls_server: tuple[ServerProcess, ssl.SSLContext]) -> None:
    """The same cases over wss://: TLS changes the byte stream's chunking, not the rules."""
    server, context = tls_server
    server.ensure()
    try:
        _run(case, server, context)
    finally:
        assert server.alive(), f"server exited during {case.id}: {server.log_tail()}"
