# SPDX-License-Identifier: MIT
"""Protocol vocabulary of RFC 6455: opcodes, close codes and connection states."""

from __future__ import annotations

import enum

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "CTRL_OPCODES",
    "DATA_OPCODES",
    "PING",
    "PONG",
    "TEXT",
    "CloseCode",
    "Opcode",
    "State",
    "is_valid_close_code",
]


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 section 5.2)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


CONTINUATION = Opcode.CONTINUATION
TEXT = Opcode.TEXT
BINARY = Opcode.BINARY
CLOSE = Opcode.CLOSE
PING = Opcode.PING
PONG = Opcode.PONG

DATA_OPCODES = (CONTINUATION, TEXT, BINARY)
CTRL_OPCODES = (CLOSE, PING, PONG)


class CloseCode(enum.IntEnum):
    """Close codes (RFC 6455 section 7.4.1 and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # never on the wire
    ABNORMAL_CLOSURE = 1006  # never on the wire
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never on the wire


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may be sent in a close frame.

    Args:
        code: a close code.

    Returns:
        True for 1000-1003, 1007-1014 and 3000-4999.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class State(enum.IntEnum):
    """Connection state (RFC 6455 sections 4 and 7)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3
