# SPDX-License-Identifier: MIT
"""websocket-client: ``websocket.create_connection(skip_utf8_validation=True)``.

Its own UTF-8 check is pure Python without the unmaintained wsaccel; skipping it loses no
check here, because every text message is then decoded with ``bytes.decode("utf-8")``,
which validates (exactly what ``WebSocket.recv`` does). ``recv_data`` is used instead of
``recv`` only to tell the close frame from an empty message. No permessage-deflate.
"""

from __future__ import annotations

import time

import _common as c
import websocket
from websocket import ABNF

CONFIG = "create_connection(skip_utf8_validation=True), recv_data + decode"


def main() -> None:
    args = c.parse_args(__doc__ or "")
    if args.deflate:
        c.skip("websocket-client does not support permessage-deflate")
    meter = c.Meter()
    if args.mode == "feed":
        msgs = nbytes = 0
        text, binary = ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY
        meter.start()
        ws = websocket.create_connection(args.url, skip_utf8_validation=True)
        recv_data = ws.recv_data
        try:
            while True:
                opcode, data = recv_data()
                if opcode == text:
                    msg = data.decode("utf-8")
                elif opcode == binary:
                    msg = data
                else:
                    break
                msgs += 1
                nbytes += len(msg)
            meter.stop()
        finally:
            ws.close()
        c.emit_feed("websocket-client", CONFIG, meter, msgs, nbytes)
        return
    payload = c.rtt_payload(args.size)
    samples: list[int] = []
    mismatches = 0
    clock = time.perf_counter_ns
    ws = websocket.create_connection(args.url, skip_utf8_validation=True)
    try:
        send, recv = ws.send_bytes, ws.recv
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
    finally:
        ws.close()
    c.emit_rtt(
        "websocket-client", "create_connection, send_bytes + recv", meter, samples, mismatches
    )


if __name__ == "__main__":
    main()
