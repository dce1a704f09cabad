# SPDX-License-Identifier: MIT
"""aiohttp: ``ClientSession.ws_connect`` on uvloop (``--variant asyncio``: the default
loop), ``autoping=False``, no heartbeat, ``max_msg_size=0``; ``async for`` / send + receive.
"""

from __future__ import annotations

import time

import _common as c
import aiohttp
from aiohttp import WSMsgType


async def feed(url: str, deflate: bool) -> tuple[c.Meter, int, int]:
    meter = c.Meter()
    msgs = nbytes = 0
    text, binary = WSMsgType.TEXT, WSMsgType.BINARY
    meter.start()
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(
            url, compress=15 if deflate else 0, autoping=False, max_msg_size=0
        ) as ws:
            async for msg in ws:
                kind = msg.type
                if kind is text or kind is binary:
                    msgs += 1
                    nbytes += len(msg.data)
            meter.stop()
    return meter, msgs, nbytes


async def rtt(url: str, size: int, duration: float) -> tuple[c.Meter, list[int], int]:
    meter = c.Meter()
    payload = c.rtt_payload(size)
    samples: list[int] = []
    mismatches = 0
    clock = time.perf_counter_ns
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, compress=0, autoping=False, max_msg_size=0) as ws:
            send, recv = ws.send_bytes, ws.receive_bytes
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
    config = f"ClientSession.ws_connect(autoping=False), {loop}"
    if args.mode == "feed":
        c.emit_feed("aiohttp", config, *c.run_async(feed(args.url, args.deflate), loop))
    else:
        result = c.run_async(rtt(args.url, args.size, args.duration), loop)
        c.emit_rtt("aiohttp", config, *result)


if __name__ == "__main__":
    main()
