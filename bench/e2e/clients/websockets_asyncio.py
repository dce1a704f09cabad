# SPDX-License-Identifier: MIT
"""websockets asyncio client: ``websockets.asyncio.client.connect`` on uvloop
(``--variant asyncio``: the default loop); ``async for`` / send + recv."""

from __future__ import annotations

import time

import _common as c
from websockets.asyncio.client import connect


async def feed(url: str, deflate: bool) -> tuple[c.Meter, int, int]:
    meter = c.Meter()
    msgs = nbytes = 0
    meter.start()
    compression = "deflate" if deflate else None
    async with connect(url, compression=compression, max_size=None, ping_interval=None) as ws:
        async for msg in ws:
            msgs += 1
            nbytes += len(msg)
        meter.stop()
    return meter, msgs, nbytes


async def rtt(url: str, size: int, duration: float) -> tuple[c.Meter, list[int], int]:
    meter = c.Meter()
    payload = c.rtt_payload(size)
    samples: list[int] = []
    mismatches = 0
    clock = time.perf_counter_ns
    async with connect(url, compression=None, max_size=None, ping_interval=None) as ws:
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
    loop = c.loop_choice(args.variant)
    config = f"websockets.asyncio.client.connect, {loop}"
    if args.mode == "feed":
        c.emit_feed("websockets-asyncio", config, *c.run_async(feed(args.url, args.deflate), loop))
    else:
        result = c.run_async(rtt(args.url, args.size, args.duration), loop)
        c.emit_rtt("websockets-asyncio", config, *result)


if __name__ == "__main__":
    main()
