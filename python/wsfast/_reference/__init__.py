# SPDX-License-Identifier: MIT
"""Pure-Python reference kernels, used only by the differential tests.

They are written for clarity, not speed; nothing in wsfast imports them at run time.
"""

from __future__ import annotations

__all__ = ["apply_mask", "parse_frame", "serialize_frame", "validate_utf8"]


def apply_mask(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """XOR ``data`` with ``mask`` repeated, starting at payload position ``offset``."""
    return bytes(b ^ mask[(offset + i) % 4] for i, b in enumerate(data))


def validate_utf8(data: bytes) -> int | None:
    """None if ``data`` is valid UTF-8, else the offset of the first bad sequence."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def serialize_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False, mask: bytes | None = None
) -> bytes:
    """Encode one frame (RFC 6455 section 5.2)."""
    head = bytearray([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        head.append(mask_bit | n)
    elif n < 1 << 16:
        head.append(mask_bit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(mask_bit | 127)
        head += n.to_bytes(8, "big")
    if mask is not None:
        return bytes(head) + mask + apply_mask(payload, mask)
    return bytes(head) + payload


def parse_frame(data: bytes) -> tuple[int, bool, bool, bytes, int] | None:
    """Decode one frame: ``(opcode, fin, rsv1, payload, consumed)``, or None if incomplete."""
    if len(data) < 2:
        return None
    fin, rsv1, opcode = bool(data[0] & 0x80), bool(data[0] & 0x40), data[0] & 0x0F
    masked, n, pos = bool(data[1] & 0x80), data[1] & 0x7F, 2
    if n == 126:
        if len(data) < 4:
            return None
        n, pos = int.from_bytes(data[2:4], "big"), 4
    elif n == 127:
        if len(data) < 10:
            return None
        n, pos = int.from_bytes(data[2:10], "big"), 10
    mask = None
    if masked:
        if len(data) < pos + 4:
            return None
        mask, pos = data[pos : pos + 4], pos + 4
    if len(data) < pos + n:
        return None
    payload = data[pos : pos + n]
    if mask is not None:
        payload = apply_mask(payload, mask)
    return opcode, fin, rsv1, payload, pos + n
