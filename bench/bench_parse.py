# SPDX-License-Identifier: MIT
"""Parsing one buffer of 1,000 masked 16-byte frames into events.

wsfast (Rust core through PyO3, and through the Cython glue) against websockets'
own sans-I/O parser, ``websockets.protocol.Protocol``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode
from websockets.protocol import Protocol as WsProtocol
from websockets.protocol import Side

import wsfast
from wsfast._native import cy

N = 1000
PAYLOAD = b"0123456789abcdef"
BUFFER = b"".join(
    wsfast.Frame(wsfast.Opcode.BINARY, PAYLOAD).serialize(i.to_bytes(4, "big")) for i in range(N)
)


def parse_wsfast_protocol() -> list[object]:
    p = wsfast.Protocol("server")
    p.receive_data(BUFFER)
    return p.events_received()


def parse_wsfast_core() -> list[object]:
    return cy.Core("server").receive_data(BUFFER)


def parse_websockets() -> list[object]:
    p = WsProtocol(Side.SERVER, max_size=None)
    p.receive_data(BUFFER)
    return p.events_received()


IMPLS: dict[str, Callable[[], list[object]]] = {
    "wsfast.Protocol": parse_wsfast_protocol,
    "wsfast Core (Cython)": parse_wsfast_core,
    "websockets": parse_websockets,
}


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_parse_1000_frames(benchmark: pytest.FixtureDef, impl: str) -> None:  # type: ignore[type-arg]
    benchmark.group = "parse 1000 x 16 B masked frames"
    events = benchmark(IMPLS[impl])
    payloads = [
        e.data if hasattr(e, "data") else e[1]  # type: ignore[attr-defined,index]
        for e in events
    ]
    ok = len(events) == N and all(p == PAYLOAD for p in payloads)
    if impl == "websockets":
        ok = ok and all(isinstance(e, WsFrame) and e.opcode == WsOpcode.BINARY for e in events)
    benchmark.extra_info["correct"] = ok
    assert ok
