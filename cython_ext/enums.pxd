# SPDX-License-Identifier: MIT
# The named values every .pyx shares, declared once. Included by _cy.pxd.
#
# Cython enum members are unscoped (one namespace for the whole extension), hence
# the prefixes. In C they are plain ints: comparing against them costs nothing.
# From Python, each `cpdef enum` is an IntEnum class on wsfast._cy (_cy.pyx also
# exports the members as module constants). When a value is handed to Python on a
# hot path, cast it with <int> first: converting an enum member to its IntEnum
# object is a Python call.

cpdef enum Opcode:
    # Frame opcodes (RFC 6455 section 5.2); equal to wsfast.frames.Opcode.
    OP_CONTINUATION = 0x0
    OP_TEXT = 0x1
    OP_BINARY = 0x2
    OP_CLOSE = 0x8
    OP_PING = 0x9
    OP_PONG = 0xA

cpdef enum EventKind:
    # wsf_event.kind: the opcode of the message or control frame an event reports
    # (never a continuation: messages arrive whole).
    EV_TEXT = OP_TEXT
    EV_BINARY = OP_BINARY
    EV_CLOSE = OP_CLOSE
    EV_PING = OP_PING
    EV_PONG = OP_PONG

cpdef enum ProtocolState:
    # wsf_capi.state(); equal to wsfast.frames.State.
    STATE_CONNECTING = 0
    STATE_OPEN = 1
    STATE_CLOSING = 2
    STATE_CLOSED = 3

cpdef enum SendResult:
    # What wsf_capi.send_frame / send_frame_header / send_control / send_close return;
    # on a negative result last_error() says why.
    SEND_OK = 0
    # send_frame_header only: the header was queued and is the last thing in the
    # output, so the payload can follow as a separate chunk (0 there: not possible).
    SEND_ZERO_COPY = 1
    # Data after our close frame, or a second close frame.
    SEND_CLOSING = -1
    # A data frame while a fragmented message is in progress, or a continuation
    # frame without one.
    SEND_FRAGMENTATION = -2
    # A control payload over 125 bytes, or a close code that may not be sent.
    SEND_INVALID_ARGUMENT = -3
    # Compression failed (not expected with a valid state).
    SEND_DEFLATE_ERROR = -4

cpdef enum TransportMode:
    # What a server Transport does with the bytes it receives.
    MODE_HTTP = 0  # reading a request head: bytes go to the owner's HTTP parser
    MODE_WS = 1  # upgraded: bytes go to the Rust core
    MODE_DONE = 2  # write what is queued, then close the socket
    MODE_LINGER = 3  # response written and write side shut: wait for the client's EOF

cpdef enum SlowConsumerPolicy:
    # What a paused Transport (output over its high-water mark) does with a new message.
    POLICY_CLOSE = 0  # fail the connection with 1008
    POLICY_DROP = 1  # drop the message and count it in Transport.dropped


cdef inline bint is_data_event(uint8_t kind) noexcept nogil:
    """Whether an event kind is a message (text or binary), not a control frame."""
    # Control opcodes have the high bit set (RFC 6455 section 5.5).
    return kind < EV_CLOSE
