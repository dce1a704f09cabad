# SPDX-License-Identifier: MIT
"""wsfast blocking client: ``wsfast.connect``; feed by iteration (``--variant many``:
``recv_many``), round trips with ``send`` + ``recv``."""

from __future__ import annotations

import time

import _common as c

import wsfast
from wsfast import ConnectionClosedOK


def main() -> None:
    args = c.parse_args(__doc__ or "")
    meter = c.Meter()
    config = f"wsfast.connect, {args.variant or 'iter'}"
    if args.mode == "feed":
        msgs = nbytes = 0
        meter.start()
        with wsfast.connect(args.url, compression=args.deflate, max_size=None) as ws:
            if args.variant == "many":
                recv_many = ws.recv_many
                try:
                    while True:
                        for msg in recv_many():
                            msgs += 1
                            nbytes += len(msg)
                except ConnectionClosedOK:
                    pass
            else:
                for msg in ws:
                    msgs += 1
                    nbytes += len(msg)
            meter.stop()
        c.emit_feed("wsfast", config, meter, msgs, nbytes)
        return
    payload = c.rtt_payload(args.size)
    samples: list[int] = []
    mismatches = 0
    clock = time.perf_counter_ns
    with wsfast.connect(args.url, compression=False, max_size=None) as ws:
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
    c.emit_rtt("wsfast", "wsfast.connect, send + recv", meter, samples, mismatches)


if __name__ == "__main__":
    main()
