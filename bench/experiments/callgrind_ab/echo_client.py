# SPDX-License-Identifier: MIT
"""Raw-socket echo client: N messages of SIZE bytes over C connections, 16 in flight each.

Every echo is compared with what was sent. Each connection ends with a closing
handshake (close frame 1000, then the server's close frame), so
the server's handler ends normally instead of logging ConnectionClosedError: a
traceback per connection was noise in the per-message instruction count.
Usage: echo_client.py PORT SIZE N C binary|text
"""

import base64
import os
import socket
import struct
import sys

port, size, total, conns, text = (
    int(sys.argv[1]),
    int(sys.argv[2]),
    int(sys.argv[3]),
    int(sys.argv[4]),
    sys.argv[5] == "text",
)
payload = (b"x" * size) if text else os.urandom(size)
opcode = 0x1 if text else 0x2
mask = b"\x01\x02\x03\x04"
masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
if size < 126:
    head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
elif size < 65536:
    head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
else:
    head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
frame = head + mask + masked
if size < 126:
    rhead = struct.pack("!BB", 0x80 | opcode, size)
elif size < 65536:
    rhead = struct.pack("!BBH", 0x80 | opcode, 126, size)
else:
    rhead = struct.pack("!BBQ", 0x80 | opcode, 127, size)
reply = rhead + payload
socks = []
for _ in range(conns):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    assert buf.startswith(b"HTTP/1.1 101"), buf
    socks.append(s)
per = total // conns
batch = 16
for s in socks:
    left = per
    while left:
        n = min(batch, left)
        s.sendall(frame * n)
        want = len(reply) * n
        got = bytearray()
        while len(got) < want:
            chunk = s.recv(want - len(got))
            assert chunk
            got += chunk
        assert got == reply * n, "echo mismatch"
        left -= n
# Close frame 1000, masked with the same key; the server answers with its own
# close frame (unmasked, payload < 126 bytes); stop there, not at the FIN, as not
# every server closes TCP first.
close_payload = struct.pack("!H", 1000)
close_frame = (
    struct.pack("!BB", 0x88, 0x80 | len(close_payload))
    + mask
    + bytes(b ^ mask[i % 4] for i, b in enumerate(close_payload))
)
for s in socks:
    s.sendall(close_frame)
    got = bytearray()
    while len(got) < 2 or len(got) < 2 + (got[1] & 0x7F):
        chunk = s.recv(4096)
        assert chunk, "no close frame"
        got += chunk
    assert got[:1] == b"\x88", got
    s.close()
print("ok", per * conns)
