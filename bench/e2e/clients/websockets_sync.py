# SPDX-License-Identifier: MIT
"""websockets sync client: ``websockets.sync.client.connect``, iteration / send + recv."""

from __future__ import annotations

import time

import _common as c
from websockets.sync.client import connect


def main() -> None:
    args = c.parse_args(__doc__ or "")
    meter = c.Meter()
    compression = "deflate" if args.deflate else None
    config = "websockets.sync.client.connect"
    if args.mode == "feed":
        msgs = nbytes = 0
        meter.start()
        with connect(args.url, compression=compression, max_size=None) as ws:
            for msg in ws:
                msgs += 1
                nbytes += len(msg)
            meter.stop()
        c.emit_feed("websockets-sync", config, meter, msgs, nbytes)
        return
    payload = c.rtt_payload(args.size)
    samples: list[int] = []
    mismatches = 0
    clock = time.perf_counter_ns
    with connect(args.url, compression=None, max_size=None) as ws:
        send, recv = ws.send, ws.recv
        for _ in range(c.RTT_WARMUP):
            send(payload)
            recv()
        meter.start()
        end = clock() + int(args.duration * 1e9)
        t = clock()
        while t < end:
            send(payload)
            echo = recv()
            t2 = clock()
            samples.append(t2 - t)
            t = t2
            if echo != payload:
                mismatches += 1
        meter.stop()
    c.emit_rtt("websockets-sync", config, meter, samples, mismatches)


if __name__ == "__main__":
    main()
