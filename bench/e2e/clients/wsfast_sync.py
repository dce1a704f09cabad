# SPDX-License-Identifier: MIT
"""wsfast blocking client: ``wsfast.connect``; round trips with ``send`` + ``recv``.

Feed variants: iteration (default); ``many``: ``recv_many``; ``run``: ``ws.run(handler)``
(the handler gets each ``str``); ``view``: the opt-in ``recv_view`` loop, a borrowed
memoryview per message and no ``str`` (measures the zero-copy path; not comparable with
the other rows); ``cython``: ``ws.run(FeedCounter())``, the Cython handler of
examples/cython_handler (built into ../build/cython_handler by run.py), each payload as a
pointer and length, no object per message (not comparable with the other rows either).
A variant whose method does not exist in the installed wsfast is skipped.
``max=N`` sets ``max_size=N`` (default: ``max_size=None``, no limit, like the peers).
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import _common as c

import wsfast
from wsfast import ConnectionClosedOK


def main() -> None:
    args = c.parse_args(__doc__ or "")
    meter = c.Meter()
    flags = [f for f in args.variant.split(",") if f and not f.startswith("max=")]
    variant = flags[0] if flags else ""
    limits = [int(f[4:]) for f in args.variant.split(",") if f.startswith("max=")]
    max_size = limits[0] if limits else None
    config = f"wsfast.connect, {variant or 'iter'}, max_size={max_size}"
    if args.mode == "feed":
        msgs = nbytes = 0
        meter.start()
        with wsfast.connect(args.url, compression=args.deflate, max_size=max_size) as ws:
            method = {"many": "recv_many", "run": "run", "view": "recv_view"}.get(variant)
            if method and not hasattr(ws, method):
                c.skip(f"this wsfast has no ClientConnection.{method}")
            if variant == "cython":
                sys.path.insert(
                    0, str(Path(__file__).resolve().parent.parent / "build" / "cython_handler")
                )
                counter = importlib.import_module("handlers").FeedCounter()
                ws.run(counter)
                msgs, nbytes = counter.messages, counter.size
            elif variant == "run":
                counts = [0, 0]

                def handler(msg: str | bytes) -> None:
                    counts[0] += 1
                    counts[1] += len(msg)

                ws.run(handler)
                msgs, nbytes = counts
            elif variant == "view":
                recv_view = ws.recv_view
                try:
                    while True:
                        view = recv_view()
                        msgs += 1
                        nbytes += len(view)
                except ConnectionClosedOK:
                    pass
            elif variant == "many":
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
    busy = variant == "busy"
    if variant and not busy:
        c.skip(f"the {variant!r} variant is for feeds (one in flight: same as recv)")
    payload = c.rtt_payload(args.size)
    samples: list[int] = []
    mismatches = 0
    clock = time.perf_counter_ns
    # "busy": the opt-in busy-poll receive (spins up to 50 us before blocking).
    options = {"busy_poll": 50} if busy else {}
    with wsfast.connect(args.url, compression=False, max_size=None, **options) as ws:
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
    config = "wsfast.connect(busy_poll=50), send + recv" if busy else "wsfast.connect, send + recv"
    c.emit_rtt("wsfast", config, meter, samples, mismatches)


if __name__ == "__main__":
    main()
