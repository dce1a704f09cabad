# SPDX-License-Identifier: MIT
"""wsfast: a Rust- and Cython-accelerated WebSocket engine (RFC 6455, RFC 7692).

The protocol core is Rust (frames, masking, UTF-8, permessage-deflate, handshake);
the glue that runs per message is Cython; this package is the thin Python API.
"""

from __future__ import annotations

from wsfast._include import get_include
from wsfast._native import BACKEND, build_info
from wsfast._native import rust as _rust
from wsfast.client import ClientConnection, PongWaiter, connect
from wsfast.config import ServerConfig
from wsfast.connection import Connection
from wsfast.events import BinaryMessage, Close, Event, Ping, Pong, TextMessage
from wsfast.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeader,
    InvalidProxy,
    InvalidProxyStatus,
    InvalidRequest,
    InvalidState,
    InvalidStatus,
    InvalidUTF8,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    ProxyError,
    WsfastError,
)
from wsfast.frames import (
    BINARY,
    CLOSE,
    CONTINUATION,
    CTRL_OPCODES,
    DATA_OPCODES,
    PING,
    PONG,
    TEXT,
    CloseCode,
    Opcode,
    State,
)
from wsfast.handler import App, Handler, HandshakeResponse, HTTPResponse, Request
from wsfast.server import Server, serve
from wsfast.topics import StreamPosition, Subscription, TopicsConfig, TopicStats

#: The package version; it lives in one place, rust/Cargo.toml (the wheel metadata too).
__version__: str = _rust.__version__

#: Sans-I/O protocol for one connection (Rust); see ``wsfast._rust.pyi``.
Protocol = _rust.Protocol
#: A single frame: ``Frame.parse(data)`` / ``frame.serialize(mask)``.
Frame = _rust.Frame
#: Incremental UTF-8 validator (state carried across pieces).
Utf8Validator = _rust.Utf8Validator
#: Negotiated permessage-deflate parameters (RFC 7692 section 7.1).
DeflateParams = _rust.DeflateParams
#: Local permessage-deflate preferences: what a client offers or a server accepts.
DeflateConfig = _rust.DeflateConfig
#: Standalone permessage-deflate compressor / decompressor (message framing rules).
Deflater = _rust.Deflater
Inflater = _rust.Inflater
apply_mask = _rust.apply_mask
apply_mask_inplace = _rust.apply_mask_inplace
validate_utf8 = _rust.validate_utf8

__all__ = [
    "BACKEND",
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "CTRL_OPCODES",
    "DATA_OPCODES",
    "PING",
    "PONG",
    "TEXT",
    "App",
    "BinaryMessage",
    "ClientConnection",
    "Close",
    "CloseCode",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DeflateConfig",
    "DeflateParams",
    "Deflater",
    "Event",
    "Frame",
    "HTTPResponse",
    "Handler",
    "HandshakeResponse",
    "Inflater",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidProxy",
    "InvalidProxyStatus",
    "InvalidRequest",
    "InvalidState",
    "InvalidStatus",
    "InvalidUTF8",
    "NegotiationError",
    "Opcode",
    "PayloadTooBig",
    "Ping",
    "Pong",
    "PongWaiter",
    "Protocol",
    "ProtocolError",
    "ProxyError",
    "Request",
    "Server",
    "ServerConfig",
    "State",
    "StreamPosition",
    "Subscription",
    "TextMessage",
    "TopicStats",
    "TopicsConfig",
    "Utf8Validator",
    "WsfastError",
    "__version__",
    "apply_mask",
    "apply_mask_inplace",
    "build_info",
    "connect",
    "get_include",
    "serve",
    "validate_utf8",
]
