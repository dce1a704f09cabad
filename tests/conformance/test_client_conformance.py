# SPDX-License-Identifier: MIT
"""Every conformance case against the wsfast client, driven by a raw fake server.

For each case a thread accepts one connection on 127.0.0.1:0, upgrades it by hand
(choosing the case's permessage-deflate parameters) and plays the case's frames,
unmasked, as a server would. The test thread runs ``wsfast.client.connect`` as an
echo endpoint: every message ``recv()`` returns is sent back with ``send()``. The
fake server checks what the client sends (echoes, automatic pongs, masking, its
close frame), and the test checks how ``recv()`` ended (``ConnectionClosed`` with
the right codes).
"""

from __future__ import annotations

import socket
import threading

import pytest

from tests.conformance.cases import CASES, DEFAULT_LIMIT, EMPTY, LIMIT, Case
from tests.conformance.peers import ClientEnd, memory, reset_peak, run_client
from tests.conformance.wire import TIMEOUT, Observed, RawPeer, check, server_handshake


class FakeServer(threading.Thread):
    """Serves one connection that plays ``case``; the result lands in ``observed``."""

    def __init__(self, case: Case) -> None:
        super().__init__(name=f"fake-server-{case.id}", daemon=True)
        self.case = case
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.observed: Observed | None = None
        self.error: BaseException | None = None
        self.problems: list[str] = []

    def run(self) -> None:
        try:
            sock, agreement, rest, self.problems = server_handshake(
                self.listener, self.case.deflate
            )
            with sock:
                peer = RawPeer(sock, client=False, agreement=agreement, received=rest)
                peer.play(self.case)
                self.observed = peer.finish(self.case)
        except BaseException as exc:  # reported by the test thread
            self.error = exc
        finally:
            self.listener.close()


def _check_end(case: Case, end: ClientEnd) -> None:
    """How ``recv()`` ended must match how the connection closed."""
    assert end.problem is None, end.problem
    expect = case.expect
    if expect.end == "open":
        assert end.ok and end.code == 1000, f"expected ConnectionClosedOK(1000), got {end}"
    elif expect.end == "fail":
        assert not end.ok, f"expected ConnectionClosedError, got {end}"
        assert end.sent_code in expect.codes, f"client should have sent {expect.codes}: {end}"
    else:
        codes = {1005 if c is EMPTY else c for c in expect.codes}
        assert end.code in codes, f"expected received close code {codes}: {end}"
        if end.code in (1000, 1001):
            assert end.ok, f"a normal closure must raise ConnectionClosedOK: {end}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_client(case: Case) -> None:
    """The client does what RFC 6455 / RFC 7692 require for this case."""
    server = FakeServer(case)
    server.start()
    # The case's own peak over the memory it started with: ru_maxrss would keep the
    # high-water mark of earlier cases, hiding this one's.
    before = reset_peak() if case.bounded_memory else 0
    try:
        end = run_client(
            f"ws://127.0.0.1:{server.port}/conformance",
            case.deflate,
            LIMIT if case.limited else DEFAULT_LIMIT,
        )
    finally:
        server.join(4 * TIMEOUT)
    assert not server.is_alive(), "fake server thread did not finish"
    if server.error is not None:
        raise server.error
    assert not server.problems, f"handshake: {server.problems}"
    assert server.observed is not None
    check(case, server.observed, client_under_test=True)
    _check_end(case, end)
    if case.bounded_memory:
        growth = memory("self", "VmHWM") - before
        assert growth < 128 << 20, f"peak memory grew by {growth >> 20} MiB"
