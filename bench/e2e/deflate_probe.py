# SPDX-License-Identifier: MIT
"""In-process probe of the client's permessage-deflate receive path, per message.

The corpus is the one of the "feed 1 KiB deflate" client benchmark: feed_server.c is
built with gcc into a temporary directory and asked for its corpus (``--dump-corpus``,
same size, kind count and seed as run_clients.py), and every message is compressed on
its own as feed_server does (zlib level 6, memLevel 8, raw deflate with a 15-bit window,
sync flush, ``00 00 ff ff`` stripped). The messages are framed as unmasked text frames
with RSV1 and cycled into one buffer of ``--messages`` frames.

Timed, per message (median of ``--repeat`` rounds, all in one process so that the
columns are comparable):

* ``core``: ``wsfast._cy.Core("client", deflate=...).receive_data(buffer)``, the whole
  client-side receive path (frames, inflate, UTF-8, ``str`` objects) in one call.
* ``inflater``: ``wsfast.Inflater`` per message (PyO3, bytes out), for reference.
* ``zlib``: ``zlib.decompressobj(-15).decompress(payload + tail).decode()`` per message,
  what websockets (and picows' websockets layer) do with no context takeover.
* ``zlib (inflate only)``: the same without ``.decode()``.

``--write-corpus PATH`` also writes the compressed messages (u32 little-endian length,
then the bytes) for the pure Rust probe: ``cargo run --release -p wsfast-rs --example
inflate_probe -- PATH``.

Pin it: ``taskset -c 1 python bench/e2e/deflate_probe.py``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import wsfast
from wsfast import _cy  # type: ignore[attr-defined]

HERE = Path(__file__).resolve().parent
TAIL = b"\x00\x00\xff\xff"
SIZE = 1024
KINDS = 1024  # run_clients.KINDS


def corpus(size: int, kinds: int) -> list[bytes]:
    """The feed server's messages, from its own generator."""
    gcc = shutil.which("gcc")
    if gcc is None:
        sys.exit("deflate_probe: gcc is needed to build feed_server.c")
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "feed_server"
        subprocess.run(
            [gcc, "-O2", "-o", str(binary), str(HERE / "feed_server.c"), "-lz"], check=True
        )
        dump = subprocess.run(
            [str(binary), "--dump-corpus", "--size", str(size), "--kinds", str(kinds)],
            check=True,
            capture_output=True,
        ).stdout
    return dump.splitlines()


def compress(message: bytes) -> bytes:
    """One message compressed standalone, as feed_server.c does."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15, 8)
    out = c.compress(message) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def frame(payload: bytes) -> bytes:
    """An unmasked, final text frame with RSV1 set."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0xC1, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0xC1, 126, n)
    else:
        header = struct.pack("!BBQ", 0xC1, 127, n)
    return header + payload


def per_message(fn: Callable[[], object], count: int, repeat: int) -> tuple[float, float]:
    """Median and minimum microseconds per message over ``repeat`` rounds."""
    fn()  # warm up (allocations, first inflater)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / count / 1000)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000, help="frames per round")
    parser.add_argument("--repeat", type=int, default=31, help="rounds (median reported)")
    parser.add_argument("--only", choices=["core", "inflater", "zlib", "zlib-inflate"])
    parser.add_argument("--write-corpus", type=Path, help="write the compressed messages here")
    args = parser.parse_args()

    plain = corpus(SIZE, KINDS)
    packed = [compress(m) for m in plain]
    if args.write_corpus:
        args.write_corpus.write_bytes(b"".join(struct.pack("<I", len(p)) + p for p in packed))
    cycle = [packed[i % len(packed)] for i in range(args.messages)]
    expected = [plain[i % len(plain)].decode() for i in range(args.messages)]
    wire = b"".join(frame(p) for p in cycle)
    ratio = sum(map(len, packed)) / sum(map(len, plain))
    print(
        f"corpus: {len(plain)} messages, mean {sum(map(len, plain)) / len(plain):.0f} B, "
        f"compressed to {ratio:.1%}; {args.messages} frames per round, {args.repeat} rounds"
    )

    params = wsfast.DeflateParams(server_no_context_takeover=True, client_no_context_takeover=True)
    core = _cy.Core("client", deflate=params, max_size=1 << 20)
    got = [payload for _, payload in core.receive_data(wire)]
    assert got == expected, "core: wrong messages"

    def run_core() -> object:
        return core.receive_data(wire)

    inflater = wsfast.Inflater(params, side="client", max_size=1 << 20)

    def run_inflater() -> object:
        return [inflater.decompress(p) for p in cycle]

    def run_zlib() -> object:
        decompressobj = zlib.decompressobj
        return [decompressobj(-15).decompress(p + TAIL).decode() for p in cycle]

    def run_zlib_inflate() -> object:
        decompressobj = zlib.decompressobj
        return [decompressobj(-15).decompress(p + TAIL) for p in cycle]

    assert run_zlib() == expected
    cases = {
        "core": run_core,
        "inflater": run_inflater,
        "zlib": run_zlib,
        "zlib-inflate": run_zlib_inflate,
    }
    for name, fn in cases.items():
        if args.only and name != args.only:
            continue
        median, best = per_message(fn, args.messages, args.repeat)
        print(f"{name:14s} median {median:6.3f} us/msg   min {best:6.3f}")


if __name__ == "__main__":
    main()
