# SPDX-License-Identifier: MIT
"""The worker mesh's record format (``wsfast.workers``), without sockets.

Worker processes and the engine over real sockets are in
``tests/integration/test_workers.py``.
"""

from __future__ import annotations

import pytest

from wsfast.workers import decode_records, encode_record

PUBLICATIONS: list[tuple[str, str | bytes]] = [
    ("t", "hello"),
    ("news.é", "héllo wörld"),
    ("bin", b"\x00\xff" * 3),
    ("empty", b""),
    ("empty-text", ""),
    ("x" * 255, "a" * 70_000),
]


def test_records_round_trip_in_order() -> None:
    buf = bytearray(b"".join(encode_record(t, d) for t, d in PUBLICATIONS))
    assert decode_records(buf) == PUBLICATIONS
    assert buf == bytearray()


def test_text_stays_text_and_binary_stays_binary() -> None:
    buf = bytearray(encode_record("t", "1") + encode_record("t", b"1"))
    assert [type(d) for _, d in decode_records(buf)] == [str, bytes]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 4096])
def test_any_chunking_gives_the_same_records(step: int) -> None:
    stream = b"".join(encode_record(t, d) for t, d in PUBLICATIONS)
    buf = bytearray()
    out: list[tuple[str, str | bytes]] = []
    for i in range(0, len(stream), step):
        buf += stream[i : i + step]
        out.extend(decode_records(buf))
    assert out == PUBLICATIONS
    assert not buf


def test_a_partial_record_is_kept_for_the_next_read() -> None:
    record = encode_record("topic", "payload")
    buf = bytearray(record[:-1])
    assert decode_records(buf) == []
    assert buf == record[:-1]
    buf += record[-1:]
    assert decode_records(buf) == [("topic", "payload")]
