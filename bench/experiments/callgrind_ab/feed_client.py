# SPDX-License-Identifier: MIT
"""Reads a feed with wsfast.connect until the server closes; checks the message count."""

import sys

import wsfast

port, count = int(sys.argv[1]), int(sys.argv[2])
got = 0
with wsfast.connect(f"ws://127.0.0.1:{port}/", compression=False) as ws:
    try:
        while True:
            m = ws.recv()
            got += 1
    except wsfast.ConnectionClosed:
        pass
assert got == count, got
