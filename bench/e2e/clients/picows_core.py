# SPDX-License-Identifier: MIT
"""picows core API: ``ws_connect`` + a ``WSListener`` on uvloop.

Every text frame becomes a ``str`` (``get_payload_as_utf8_text``), every binary frame
``bytes`` (``get_payload_as_bytes``). ``--variant aiofastnet`` / ``noaiofastnet`` picks
picows' optional aiofastnet transport (default: picows' own default, aiofastnet when
installed); ``--variant asyncio`` runs on the default loop. The core API has no
permessage-deflate (the deflate workload is n/a).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import _common as c
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect


class FeedListener(WSListener):
    def __init__(self, meter: c.Meter, done: asyncio.Future[None]) -> None:
        self.meter = meter
        self.done = done
        self.msgs = 0
        self.nbytes = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.TEXT:
            msg: str | bytes = frame.get_payload_as_utf8_text()
        elif kind == WSMsgType.BINARY:
            msg = frame.get_payload_as_bytes()
        elif kind == WSMsgType.CLOSE:
            self.meter.stop()
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            if not self.done.done():
                self.done.set_result(None)
            return
        else:
            return
        self.msgs += 1
        self.nbytes += len(msg)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.done.done():
            self.done.set_result(None)


class RttListener(WSListener):
    def __init__(self, meter: c.Meter, payload: bytes, duration: float) -> None:
        self.meter = meter
        self.payload = payload
        self.duration_ns = int(duration * 1e9)
        self.samples: list[int] = []
        self.mismatches = 0
        self.warmup = c.RTT_WARMUP
        self.t = 0
        self.end = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.BINARY, self.payload)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.BINARY:
            return
        echo = frame.get_payload_as_bytes()
        t2 = time.perf_counter_ns()
        if self.warmup:
            self.warmup -= 1
            if not self.warmup:
                self.meter.start()
                t2 = time.perf_counter_ns()
                self.end = t2 + self.duration_ns
        else:
            self.samples.append(t2 - self.t)
            if echo != self.payload:
                self.mismatches += 1
            if t2 >= self.end:
                self.meter.stop()
                transport.send_close()
                transport.disconnect()
                if not self.done.done():
                    self.done.set_result(None)
                return
        self.t = t2
        transport.send(WSMsgType.BINARY, self.payload)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.done.done():
            self.done.set_result(None)


def connect_kwargs(variant: str) -> dict[str, Any]:
    flags = variant.split(",")
    if "aiofastnet" in flags:
        return {"use_aiofastnet": True}
    if "noaiofastnet" in flags:
        return {"use_aiofastnet": False}
    return {}


async def feed(url: str, variant: str) -> tuple[c.Meter, int, int]:
    meter = c.Meter()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    listener = FeedListener(meter, done)
    meter.start()
    transport, _ = await ws_connect(lambda: listener, url, **connect_kwargs(variant))
    await done
    await transport.wait_disconnected()
    return meter, listener.msgs, listener.nbytes


async def rtt(url: str, size: int, duration: float, variant: str) -> tuple[c.Meter, list[int], int]:
    meter = c.Meter()
    listener = RttListener(meter, c.rtt_payload(size), duration)
    transport, _ = await ws_connect(lambda: listener, url, **connect_kwargs(variant))
    await listener.done
    await transport.wait_disconnected()
    return meter, listener.samples, listener.mismatches


def main() -> None:
    args = c.parse_args(__doc__ or "")
    if args.deflate:
        c.skip("picows core API has no permessage-deflate")
    loop = c.loop_choice(args.variant)
    flags = [f for f in args.variant.split(",") if f and f != loop]
    config = ", ".join(["ws_connect + WSListener", loop, *flags])
    if args.mode == "feed":
        c.emit_feed("picows", config, *c.run_async(feed(args.url, args.variant), loop))
    else:
        result = c.run_async(rtt(args.url, args.size, args.duration, args.variant), loop)
        c.emit_rtt("picows", config, *result)


if __name__ == "__main__":
    main()
