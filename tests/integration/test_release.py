# SPDX-License-Identifier: MIT
"""A closed connection's native state is freed at once, not at the next full GC.

Closed connections, with their compression state (about 200 KiB each), used to stay
alive in reference cycles until a full garbage collection, which an allocation-light
server rarely triggers. These tests count the live native states (process-wide
counters in the Rust core) with the garbage collector off, so nothing but reference
counting and the explicit release at close can free them; and one test measures a
server's RSS over many compressed connections with the collector left at its defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Collection, Iterator
from typing import Any

import pytest
from websockets.sync.client import connect as websockets_connect

import wsfast
import wsfast.asyncio
from wsfast._native import rust

from ..gc_util import collector_off
from .server_util import Echo, running, wait_for

MESSAGE = "compressible " * 200  # large enough to be compressed both ways


def live() -> dict[str, int]:
    states: dict[str, int] = rust._live_native_states()
    return states


def assert_compression_states_back_to(base: dict[str, int]) -> None:
    """The live compressors and decompressors are as many as in ``base``."""
    states = live()
    assert (states["compressors"], states["decompressors"]) == (
        base["compressors"],
        base["decompressors"],
    )


async def until_empty(collection: Callable[[], Collection[Any]], tries: int) -> None:
    """Poll every 10 ms, ``tries`` times at most, until ``collection()`` is empty."""
    for _ in range(tries):
        if not collection():
            break
        await asyncio.sleep(0.01)


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Turn the cyclic garbage collector off: only reference counting frees objects."""
    with collector_off():
        yield
    gc.collect()


def test_server_frees_each_closed_connection_at_once(no_gc: None) -> None:
    # websockets is the client: the only wsfast cores in this process are the server's.
    with running(Echo) as server:
        base = live()
        for _ in range(20):
            with websockets_connect(f"ws://127.0.0.1:{server.port}/") as ws:
                ws.send(MESSAGE)
                assert ws.recv() == MESSAGE
        wait_for(lambda: not server.connections)
        # The core, its compressor and decompressor all went with the last reference.
        wait_for(lambda: live() == base)


def test_server_frees_a_connection_closed_by_its_handler(no_gc: None) -> None:
    class Closer(Echo):
        def on_message(self, conn: Any, data: str | bytes) -> None:
            conn.send(data)
            if data == "abort":
                conn.abort()
            elif data == "close":
                conn.close()

    with running(Closer()) as server:
        base = live()
        for how in ["abort", "close"] * 5:
            with (
                contextlib.suppress(Exception),
                websockets_connect(f"ws://127.0.0.1:{server.port}/") as ws,
            ):
                ws.send(MESSAGE)
                assert ws.recv() == MESSAGE
                ws.send(how)
                ws.recv()
                ws.recv()
        wait_for(lambda: not server.connections)
        wait_for(lambda: live() == base)


def test_blocking_client_frees_its_compression_state_on_close(no_gc: None) -> None:
    with running(Echo) as server:
        base = live()
        cores = []
        for _ in range(10):
            with wsfast.connect(f"ws://127.0.0.1:{server.port}/", compression=True) as ws:
                ws.send(MESSAGE)
                assert ws.recv() == MESSAGE
                cores.append(ws._core)
            # Freed as the connection closed, whatever still refers to the client.
            assert cores[-1].released
        wait_for(lambda: not server.connections)
        assert_compression_states_back_to(base)


def test_asyncio_client_and_server_free_their_compression_state_on_close(
    no_gc: None,
) -> None:
    async def echo(ws: Any) -> None:
        with contextlib.suppress(wsfast.ConnectionClosed):
            async for message in ws:
                await ws.send(message)

    async def main() -> None:
        base = live()
        async with wsfast.asyncio.serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            for _ in range(10):
                async with wsfast.asyncio.connect(
                    f"ws://127.0.0.1:{port}/", compression=True
                ) as ws:
                    await ws.send(MESSAGE)
                    assert await ws.recv() == MESSAGE
            await until_empty(lambda: server.connections, tries=200)
        assert_compression_states_back_to(base)

    asyncio.run(main())


# ---- RSS: the collector left at its defaults, many compressed connections ---------

SERVER = textwrap.dedent(
    """
    import ctypes, json, sys
    from wsfast.server import Handler, serve

    class Echo(Handler):
        def on_message(self, conn, data):
            conn.send(data)

    server = serve(Echo, "127.0.0.1", 0, ping_interval=None).start()
    print(server.port, flush=True)
    libc = ctypes.CDLL(None)
    for line in sys.stdin:
        # Hand free heap memory back to the OS first, so that RSS counts what is
        # alive, not what the allocator keeps cached (that varies run to run).
        libc.malloc_trim(0)
        with open("/proc/self/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        print(json.dumps({"rss_kib": rss, "open": len(server.connections)}), flush=True)
    server.close()
    """
)


class ServerProcess:
    """The echo server in a child process (gc at its defaults), asked for its RSS."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def stats(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        stats: dict[str, int] = json.loads(self.proc.stdout.readline())
        return stats

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(10)
        self.proc.stdout.close()


def churn(port: int, n: int, at_once: int = 300) -> None:
    """Open ``n`` compressed connections, ``at_once`` at a time, one message each.

    Connections open together live long enough for the collector to move them to its
    oldest generation, which it rarely examines: that is where cycles used to pile up.
    """
    for _ in range(n // at_once):
        conns = [
            wsfast.connect(f"ws://127.0.0.1:{port}/", compression=True) for _ in range(at_once)
        ]
        for ws in conns:
            ws.send(MESSAGE)
        for ws in conns:
            assert ws.recv() == MESSAGE
        for ws in conns:
            ws.close()


def rss_growth(env: dict[str, str] | None = None, n: int = 1500) -> int:
    """KiB the server's RSS grew over ``n`` connections, after a warm-up."""
    server = ServerProcess(env)
    try:
        churn(server.port, 300)
        wait_for(lambda: server.stats()["open"] == 0)
        before = server.stats()["rss_kib"]
        churn(server.port, n)
        wait_for(lambda: server.stats()["open"] == 0)
        return server.stats()["rss_kib"] - before
    finally:
        server.close()


# Each leaked connection held about 200 KiB: up to 1500 of them, 300 MiB (measured
# before the fix: 136 MiB; after: under 3 MiB).
RSS_BOUND_KIB = 32 * 1024


def test_server_rss_stays_flat_over_many_compressed_connections() -> None:
    growth = rss_growth()
    assert growth < RSS_BOUND_KIB, f"server RSS grew by {growth} KiB"


@pytest.mark.skipif(
    not os.environ.get("WSFAST_LEAK_BASELINE"),
    reason="set WSFAST_LEAK_BASELINE to a build's python/ dir to check the test fails there",
)
def test_the_rss_bound_catches_the_leak_on_a_baseline_build() -> None:
    env = dict(os.environ, PYTHONPATH=os.environ["WSFAST_LEAK_BASELINE"])
    growth = rss_growth(env)
    assert growth >= RSS_BOUND_KIB, f"baseline grew by only {growth} KiB"


# ---- compression state: allocated on first use, freed when not needed ----------


@pytest.mark.parametrize("takeover", [True, False])
def test_server_allocates_compression_state_on_first_use(no_gc: None, takeover: bool) -> None:
    config = wsfast.DeflateConfig(
        server_no_context_takeover=not takeover,
        client_no_context_takeover=not takeover,
        # An idle compressor is freed after a while (test_compressor_idle.py); here it
        # must stay however slowly the test runs.
        compressor_idle=None,
    )
    with running(Echo, compression=config) as server:
        base = live()
        with websockets_connect(f"ws://127.0.0.1:{server.port}/") as ws:
            assert "permessage-deflate" in (ws.response.headers["Sec-WebSocket-Extensions"])
            # Open, nothing sent yet: no compression state at all.
            assert live() == dict(base, protocols=base["protocols"] + 1)
            ws.send(MESSAGE)
            assert ws.recv() == MESSAGE
            expected = 1 if takeover else 0
            # With context takeover both contexts must stay for the next message;
            # without, they were freed as soon as the message was handled.
            assert live() == {
                "protocols": base["protocols"] + 1,
                "compressors": base["compressors"] + expected,
                "decompressors": base["decompressors"] + expected,
            }
        wait_for(lambda: live() == base)


def test_uvicorn_backend_frees_its_compression_state_on_close(no_gc: None) -> None:
    from websockets.asyncio.client import connect as websockets_async_connect

    from .test_uvicorn import accept_then_echo
    from .uvicorn_util import serving

    async def main() -> None:
        base = live()
        async with serving(accept_then_echo) as served:
            for _ in range(5):
                async with websockets_async_connect(served.url) as ws:
                    assert ws.response is not None
                    assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
                    await ws.send(MESSAGE)
                    assert await ws.recv() == MESSAGE
            await until_empty(lambda: served.protocols, tries=500)
        assert_compression_states_back_to(base)

    asyncio.run(main())
