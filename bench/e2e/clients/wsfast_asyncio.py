# SPDX-License-Identifier: MIT
"""wsfast asyncio client: ``wsfast.asyncio.connect`` on uvloop (``--variant asyncio``: the
default loop); ``async for`` / send + recv. Skipped while ``wsfast.asyncio`` does not exist.

The calls assumed are the websockets-style ones: ``async with connect(url, compression=...,
max_size=None) as ws``, ``async for msg in ws``, ``await ws.send(data)``, ``await ws.recv()``.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

import _common as c


def load_connect() -> Any:
    try:
        module = importlib.import_module("wsfast.asyncio")
    except ImportError as exc:
        c.skip(f"wsfast.asyncio not available ({exc})")
    connect = getattr(module, "connect", None)
    if connect is None:
        c.skip("wsfast.asyncio has no connect()")
    return connect


async def feed(connect: Any, url: str, deflate: bool) -> tuple[c.Meter, int, int]:
    meter = c.Meter()
    msgs = nbytes = 0
    meter.start()
    async with connect(url, compression=deflate, max_size=None) as ws:
        async for msg in ws:
            msgs += 1
            nbytes += len(msg)
        meter.stop()
    return meter, msgs, nbytes


async def rtt(connect: Any, url: str, size: int, duration: float) -> tuple[c.Meter, list[int], int]:
    meter = c.Meter()
    payload = c.rtt_payload(size)
    samples: list[int] = []
    mismatches = 0
    clock = time.perf_counter_ns
    async with connect(url, compression=False, max_size=None) as ws:
        send, recv = ws.send, ws.recv
        for _ in range(c.RTT_WARMUP):
            await send(payload)
            await recv()
        meter.start()
        end = clock() + int(duration * 1e9)
        t = clock()
        while t < end:
            await send(payload)
            echo = await recv()
            t2 = clock()
            samples.append(t2 - t)
            t = t2
            if echo != payload:
                mismatches += 1
        meter.stop()
    return meter, samples, mismatches


def main() -> None:
    args = c.parse_args(__doc__ or "")
    connect = load_connect()
    loop = c.loop_choice(args.variant)
    config = f"wsfast.asyncio.connect, {loop}"
    if args.mode == "feed":
        result = c.run_async(feed(connect, args.url, args.deflate), loop)
        c.emit_feed("wsfast-asyncio", config, *result)
    else:
        res = c.run_async(rtt(connect, args.url, args.size, args.duration), loop)
        c.emit_rtt("wsfast-asyncio", config, *res)


if __name__ == "__main__":
    main()
