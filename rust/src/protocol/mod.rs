// SPDX-License-Identifier: MIT
//! The per-connection state machine: bytes in, events and bytes out.
//!
//! One [`Protocol::receive_data`] call handles a whole received buffer: every
//! complete frame in it is unmasked, validated, reassembled, inflated and turned
//! into an [`Event`]; pongs and close replies are queued in the output. Partial
//! frames are kept (at most one header's bytes, plus the message being assembled)
//! until the next call. Protocol errors never escape as `Err`: they queue a close
//! frame with the right code and are kept in [`Protocol::error`].
//!
//! The public API comes in the groups websockets' `protocol.py` uses, one file
//! each beside this one: `receive` (receiving data and getting events), `send`
//! (sending events and getting outgoing data) and `close` (the closing
//! handshake, failing, and the rule that says whether a connection closed
//! cleanly). This file holds the state they share; `error` its error types.

mod close;
mod error;
mod receive;
mod send;

pub use close::{
    close_is_ok, is_valid_close_code, CLOSE_ABNORMAL, CLOSE_NO_STATUS, OK_CLOSE_CODES,
};
pub use error::{ProtocolError, SendError};

use crate::deflate::{Compressor, CompressorSettings, Decompressor, DeflateParams};
use crate::external::{External, MessageAllocator};
use crate::frame::{Role, MAX_HEADER_LEN, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use crate::utf8::Utf8Validator;
use receive::Incoming;
use send::MaskSource;

/// Connection state (RFC 6455 section 4 and 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Opening handshake in progress (never the core's own state: it starts open).
    Connecting = 0,
    /// Data may flow both ways.
    Open = 1,
    /// One close frame has been sent or received.
    Closing = 2,
    /// Both close frames exchanged, or the transport ended.
    Closed = 3,
}

/// Options for one connection.
#[derive(Clone, Debug)]
pub struct Config {
    /// Server or client.
    pub role: Role,
    /// Largest frame payload accepted, in bytes.
    pub max_frame_size: usize,
    /// Largest message accepted (after decompression), in bytes.
    pub max_message_size: usize,
    /// Negotiated permessage-deflate parameters, if any.
    pub deflate: Option<DeflateParams>,
    /// How our compressor runs (zlib level, `memLevel`, window cap) when
    /// `deflate` is set: local choices, never negotiated.
    pub compressor: CompressorSettings,
    /// Messages shorter than this are sent uncompressed (RFC 7692 allows it per message).
    pub compress_min_size: usize,
    /// Answer pings with pongs automatically.
    pub auto_pong: bool,
    /// Entropy for client masking keys, supplied by the caller (the core has no RNG).
    pub mask_seed: [u8; 32],
    /// A fixed masking key, for deterministic tests only.
    pub fixed_mask: Option<[u8; 4]>,
}

impl Config {
    /// Defaults for `role`: 1 MiB messages and frames, auto-pong, no compression
    /// (and, once `deflate` is set, the compressor's defaults: level
    /// [`crate::deflate::DEFAULT_COMPRESSION_LEVEL`]).
    pub fn new(role: Role) -> Self {
        Self {
            role,
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
            deflate: None,
            compressor: CompressorSettings::default(),
            compress_min_size: 0,
            auto_pong: true,
            mask_seed: [0; 32],
            fixed_mask: None,
        }
    }
}

/// What an event carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// A complete text message (payload is valid UTF-8).
    Text = OP_TEXT,
    /// A complete binary message.
    Binary = OP_BINARY,
    /// A close frame (payload is the reason), or the end of the transport (code 1006).
    Close = OP_CLOSE,
    /// A ping.
    Ping = OP_PING,
    /// A pong.
    Pong = OP_PONG,
}

/// One event of a batch. The payload lives in the protocol's buffers until the next
/// `receive_data`/`receive_eof` call; read it with [`Protocol::payload`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The kind of event.
    pub kind: EventKind,
    /// Close code for `Close` events, 0 otherwise.
    pub code: u16,
    start: usize,
    len: usize,
    /// 1 + index into `Protocol::ext_done` for a message in embedder memory, else 0.
    ext: usize,
    /// A text message whose every byte is ASCII (false when unknown): its `str`
    /// is a plain copy, with no pass to measure it.
    pub ascii: bool,
}

/// A sans-I/O WebSocket connection (after the opening handshake).
pub struct Protocol {
    cfg: Config,
    state: State,
    // Receiving.
    header_buf: [u8; MAX_HEADER_LEN],
    header_len: usize,
    incoming: Option<Incoming>,
    msg_opcode: u8,
    msg_compressed: bool,
    /// Every byte of the text message so far was seen to be ASCII.
    msg_ascii: bool,
    msg_start: usize,
    data: Vec<u8>,
    ctrl: Vec<u8>,
    scratch: Vec<u8>,
    events: Vec<Event>,
    utf8: Utf8Validator,
    inflater: Option<Decompressor>,
    discard_input: bool,
    // Embedder memory for large binary messages (see `external`).
    allocator: Option<Box<dyn MessageAllocator>>,
    external_min: usize,
    ext_current: Option<External>,
    ext_done: Vec<External>,
    // Sending.
    out: Vec<u8>,
    deflater: Option<Compressor>,
    send_opcode: u8,
    send_compressed: bool,
    masks: MaskSource,
    // Closing.
    close_sent: Option<(u16, String)>,
    close_received: Option<(u16, String)>,
    error: Option<ProtocolError>,
    /// A protocol error found after complete messages in the same batch: the
    /// connection fails once those are handled ([`Protocol::end_batch`]).
    pending_error: Option<ProtocolError>,
    eof: bool,
}

impl Protocol {
    /// A protocol in the OPEN state, as after a successful opening handshake.
    pub fn new(cfg: Config) -> Self {
        let inflater = cfg.deflate.as_ref().map(|p| Decompressor::new(p, cfg.role));
        let deflater = cfg
            .deflate
            .as_ref()
            .map(|p| Compressor::with_settings(p, cfg.role, cfg.compressor));
        let masks = MaskSource::new(cfg.mask_seed, cfg.fixed_mask);
        Self {
            cfg,
            state: State::Open,
            header_buf: [0; MAX_HEADER_LEN],
            header_len: 0,
            incoming: None,
            msg_opcode: 0,
            msg_compressed: false,
            msg_ascii: false,
            msg_start: 0,
            data: Vec::new(),
            ctrl: Vec::new(),
            scratch: Vec::new(),
            events: Vec::new(),
            utf8: Utf8Validator::new(),
            inflater,
            discard_input: false,
            allocator: None,
            external_min: usize::MAX,
            ext_current: None,
            ext_done: Vec::new(),
            out: Vec::new(),
            deflater,
            send_opcode: 0,
            send_compressed: false,
            masks,
            close_sent: None,
            close_received: None,
            error: None,
            pending_error: None,
            eof: false,
        }
    }

    /// Receive whole unfragmented, uncompressed binary messages of at least
    /// `min_size` bytes into memory from `allocator` instead of the protocol's own
    /// buffer. Events carry the allocation's token ([`Protocol::event_token`]).
    /// Returns false (and changes nothing) while a message is being received into
    /// the current allocator's memory.
    pub fn set_allocator(&mut self, allocator: Box<dyn MessageAllocator>, min_size: usize) -> bool {
        if self.ext_current.is_some() {
            return false;
        }
        self.release_external();
        self.events.clear();
        self.allocator = Some(allocator);
        self.external_min = min_size.max(1);
        true
    }

    /// Give the finished external messages of the last batch back to the allocator.
    fn release_external(&mut self) {
        if let Some(alloc) = self.allocator.as_mut() {
            for ext in self.ext_done.drain(..) {
                alloc.release(ext.token);
            }
        }
    }

    // ---- state ----

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Role given at construction.
    pub fn role(&self) -> Role {
        self.cfg.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether compression state is allocated now: `(compressor, decompressor)`.
    /// Both are allocated on first use; without context takeover on a side,
    /// that side's is freed after every message, and [`Protocol::release_all`]
    /// frees both.
    pub fn compression_allocated(&self) -> (bool, bool) {
        (
            self.deflater.as_ref().is_some_and(Compressor::is_allocated),
            self.inflater
                .as_ref()
                .is_some_and(Decompressor::is_allocated),
        )
    }

    /// Free our compressor if it compressed nothing since the last call: the
    /// I/O layer calls it every `compressor_idle` seconds (the core has no
    /// clock), so a connection with context takeover that stopped sending
    /// holds no compressor after one to two periods. The next message then
    /// starts from an empty window, which any peer decodes (RFC 7692 section
    /// 7.1.1.1 lets a sender drop its context). Returns whether it freed it.
    pub fn release_idle_compressor(&mut self) -> bool {
        self.deflater
            .as_mut()
            .is_some_and(Compressor::release_unused)
    }

    /// The error that failed the connection, if any.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.error.as_ref()
    }

    /// Give back buffer memory beyond `keep` bytes each: when idle, or as soon as
    /// the last batch's events have been handled. This ends the batch: its events
    /// are dropped and their payloads must not be read any more. A message still
    /// being received keeps its bytes.
    ///
    /// Servers call it after each large read: the next large message then gets
    /// memory from the allocator, most likely a block another connection has just
    /// freed and that is still in the CPU cache, instead of this connection's own
    /// buffer, untouched since its last read (with many connections, out of cache).
    pub fn release_memory(&mut self, keep: usize) {
        self.end_batch();
        self.events.clear();
        self.release_external();
        if self.msg_opcode == 0 {
            self.data.clear();
            self.msg_start = 0;
            self.data.shrink_to(keep);
        }
        self.scratch.clear();
        self.scratch.shrink_to(keep);
        if self.out.is_empty() {
            self.out.shrink_to(keep);
        }
    }

    /// The transport is gone: free everything the connection no longer needs
    /// (compression state, buffers, output not yet written, embedder memory)
    /// at once, keeping only how it ended (state, close frames, error).
    ///
    /// Afterwards the protocol is CLOSED: input is ignored and sends fail as on
    /// a closed connection. Like [`Protocol::release_memory`] this ends the
    /// batch: the last events must not be read any more. Without it the memory
    /// lives as long as the protocol object, which garbage collection may keep
    /// alive long after the socket closed.
    pub fn release_all(&mut self) {
        self.end_batch();
        self.events = Vec::new();
        self.release_external();
        if let (Some(ext), Some(alloc)) = (self.ext_current.take(), self.allocator.as_mut()) {
            alloc.release(ext.token);
        }
        if let Some(inflater) = self.inflater.as_mut() {
            inflater.release_all();
        }
        if let Some(deflater) = self.deflater.as_mut() {
            deflater.release();
        }
        self.data = Vec::new();
        self.ctrl = Vec::new();
        self.scratch = Vec::new();
        self.out = Vec::new();
        self.ext_done = Vec::new();
        self.incoming = None;
        self.header_len = 0;
        self.msg_opcode = 0;
        self.msg_start = 0;
        self.send_opcode = 0;
        self.discard_input = true;
        self.eof = true;
        self.state = State::Closed;
    }
}

impl Drop for Protocol {
    fn drop(&mut self) {
        self.release_external();
        if let (Some(ext), Some(alloc)) = (self.ext_current.take(), self.allocator.as_mut()) {
            alloc.release(ext.token);
        }
    }
}

#[cfg(test)]
mod tests;
