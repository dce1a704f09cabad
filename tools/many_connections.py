# SPDX-License-Identifier: MIT
"""Hold N WebSocket connections open on one server process and keep them all busy.

The client side is a lean asyncio protocol (one object per connection, frames built once
and masked with a zero key), so one Python process can drive 10,000 connections. The run:

1. start the server (``wsfast echo`` by default) with its descriptor limit raised;
2. read its idle RSS, then open every connection and complete every handshake;
3. with all of them open at once, run ``--rounds`` rounds in which every connection sends
   one message and waits for its echo, verified byte for byte;
4. read the server's RSS and descriptor count while all connections are still open, and
   report memory per connection: (RSS with N open - idle RSS) / N;
5. close every connection with 1000 and check each close was answered.

It prints a JSON report and exits non-zero if any handshake, echo or close went wrong.
Used by ``tests/integration/test_many_connections.py`` and ``make bench-connections``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import struct
import subprocess
import sys
import time
from functools import partial
from typing import Any

from _procs import add_server_arguments, free_port, proc_fds, proc_status, start_server

REQUEST = (
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame with the all-zero mask (valid, and no copy needed)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + b"\0\0\0\0" + payload


class Client(asyncio.Protocol):
    """One connection: handshake, then request/response exchanges, then close."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[bytes] | None = None
        self.expect = 0
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            n = self._ready()
            if n:
                self.waiter.set_result(bytes(self.buffer[:n]))
                del self.buffer[:n]

    def _ready(self) -> int:
        """How many buffered bytes complete the current read (0: not yet)."""
        if self.expect:
            return self.expect if len(self.buffer) >= self.expect else 0
        end = self.buffer.find(b"\r\n\r\n")
        return end + 4 if end >= 0 else 0

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection {self.index} lost"))

    async def read(self, n: int) -> bytes:
        """The next ``n`` bytes from the server, or its HTTP head if ``n`` is 0."""
        self.expect = n
        ready = self._ready()
        if ready:
            data = bytes(self.buffer[:ready])
            del self.buffer[:ready]
            return data
        self.waiter = asyncio.get_running_loop().create_future()
        return await self.waiter

    async def handshake(self) -> None:
        """Send the upgrade request and check the 101 response."""
        assert self.transport is not None
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(REQUEST.format(key=key).encode())
        head = await self.read(0)
        if not head.startswith(b"HTTP/1.1 101"):
            status = head.split(b"\r\n")[0]
            raise ConnectionError(f"connection {self.index}: {status!r}")

    async def frame(self) -> tuple[int, bytes]:
        """The next data or close frame: (first header byte, payload).

        Pings (the server's keepalive, which a long run on a loaded machine meets)
        are answered with a pong, and pongs skipped, as a real client does.
        """
        assert self.transport is not None
        while True:
            head = await self.read(2)
            n = head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.read(8))[0]
            payload = await self.read(n) if n else b""
            opcode = head[0] & 0x0F
            if opcode == 0x9:
                self.transport.write(client_frame(0xA, payload))
            elif opcode != 0xA:
                return head[0], payload

    async def echo(self, payload: bytes) -> bool:
        """Send one binary message; True if the echo is one final binary frame, byte for byte."""
        assert self.transport is not None
        self.transport.write(client_frame(0x2, payload))
        return await self.frame() == (0x82, payload)

    async def close(self) -> bool:
        """Send close 1000; True if the server answers with close 1000."""
        assert self.transport is not None
        self.transport.write(client_frame(0x8, struct.pack("!H", 1000)))
        answer = await self.frame()
        self.transport.close()
        return answer == (0x88, struct.pack("!H", 1000))


def raise_nofile(needed: int) -> None:
    """Raise this process's descriptor limit to ``needed``, or fail saying why."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"need {needed} file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Open, exercise and close every connection; return the report."""
    raise_nofile(args.connections + 256)
    port = free_port()
    server = start_server(
        args.server,
        port,
        tool="many_connections",
        preexec_fn=lambda: raise_nofile(args.connections + 256),
    )
    loop = asyncio.get_running_loop()
    report: dict[str, Any] = {"connections": args.connections, "rounds": args.rounds}
    try:
        await asyncio.sleep(0.5)
        idle_kib = proc_status(server.pid, "VmRSS")
        started = time.monotonic()
        clients: list[Client] = []
        # Connect in batches so the listen backlog never overflows (no SYN retry delays).
        for first in range(0, args.connections, 500):
            batch = await asyncio.gather(
                *(
                    loop.create_connection(partial(Client, i), "127.0.0.1", port)
                    for i in range(first, min(first + 500, args.connections))
                )
            )
            clients += [proto for _, proto in batch]
            await asyncio.gather(*(c.handshake() for c in clients[first:]))
        report["open_s"] = round(time.monotonic() - started, 2)
        report["server_fds_open"] = proc_fds(server.pid)
        payload = os.urandom(args.size)
        started = time.monotonic()
        good = 0
        for _ in range(args.rounds):
            good += sum(await asyncio.gather(*(c.echo(payload) for c in clients)))
        elapsed = time.monotonic() - started
        busy_kib = proc_status(server.pid, "VmRSS")
        report.update(
            echoes=good,
            expected_echoes=args.connections * args.rounds,
            echo_s=round(elapsed, 2),
            msgs_per_s=round(good / elapsed) if elapsed else 0,
            server_idle_rss_kib=idle_kib,
            server_busy_rss_kib=busy_kib,
            server_hwm_kib=proc_status(server.pid, "VmHWM"),
            kib_per_connection=round((busy_kib - idle_kib) / args.connections, 2),
            all_open_during_echoes=all(not c.lost.done() for c in clients),
        )
        closes = await asyncio.gather(*(c.close() for c in clients))
        report["clean_closes"] = sum(closes)
        await asyncio.sleep(0.5)
        report["server_fds_after"] = proc_fds(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return report


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, print the report; exit 1 if anything went wrong."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="echoes per connection")
    parser.add_argument("--size", type=int, default=64, help="message size in bytes")
    add_server_arguments(parser)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    ok = (
        report["echoes"] == report["expected_echoes"]
        and report["clean_closes"] == args.connections
        and report["all_open_during_echoes"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
