# SPDX-License-Identifier: MIT
"""A feed: COUNT text frames of SIZE bytes to each client after its handshake, then a close.

Usage: feed_server.py PORT SIZE COUNT
"""

import base64
import hashlib
import socket
import struct
import sys

port, size, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
payload = b"y" * size
head = struct.pack("!BB", 0x81, size) if size < 126 else struct.pack("!BBH", 0x81, 126, size)
frame = head + payload
ls = socket.create_server(("127.0.0.1", port))
print("ready", flush=True)
for _ in range(2):
    s, _ = ls.accept()
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in buf.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    acc = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    s.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + acc + b"\r\n\r\n"
    )
    block = frame * 256
    n = count
    while n >= 256:
        s.sendall(block)
        n -= 256
    s.sendall(frame * n + b"\x88\x02\x03\xe8")
    s.recv(100)
    s.close()
