// SPDX-License-Identifier: MIT
//! The permessage-deflate extension (RFC 7692): parameter negotiation, and
//! per-message compression and decompression over raw DEFLATE streams.
//!
//! The compressor and decompressor drive `zlib-rs` (pure Rust, every window
//! size, section 10 of the style guide) through its own stable API rather
//! than through `flate2`: that API sets `memLevel`, and resets an inflater of
//! any window size in place, where `flate2` re-creates it.
//!
//! # Memory per connection
//!
//! Both halves are allocated on first use (the first compressed message sent
//! or received), so a connection that never compresses costs nothing here.
//! With zlib-rs:
//!
//! * [`Compressor`]: one allocation of `4 * 2^w` bytes (the window, doubled,
//!   and its hash chain) + 128 KiB (hash heads: zlib-rs, like zlib-ng, fixes
//!   the hash table at 2^16 entries whatever `memLevel` is) +
//!   `7 * 2^(memLevel + 6)` bytes (pending and symbol buffers) + a few KiB of
//!   state. At the defaults (window 12, `memLevel` 5) that is about 165 KiB;
//!   at zlib's defaults (window 15, `memLevel` 8) about 370 KiB.
//! * [`Decompressor`]: about 42 KiB (a 32 KiB window, which zlib-rs allocates
//!   at full size whatever `w` is, plus decoding tables). Without context
//!   takeover from the peer, about 21 KiB more for the one-shot decoder of
//!   whole messages ([`crate::inflate::FastInflater`]: tables and code
//!   lengths), allocated on the first message that arrives whole.
//!
//! Without context takeover on a side, that side's state is released after
//! every message ([`Compressor::release_idle`], [`Decompressor::release`],
//! called by the protocol), so an idle connection holds none: the state goes
//! to a per-thread spare that the next message of any such connection reuses.
//! With context takeover on the peer's side the decompressor must stay (the
//! peer may refer to earlier messages). With context takeover on our side the
//! compressor may go: dropping it is always valid for the peer, it only costs
//! compression ratio on the next message. [`Compressor::release_unused`]
//! frees it once it went unused for a while (the I/O layer calls it every
//! [`DeflateConfig::compressor_idle`]), and `keep_context: false` in
//! [`CompressorSettings`] treats our side as without takeover.
//! [`crate::protocol::Protocol::release_all`]
//! frees both when the connection closes. [`live_states`] counts the states
//! connections hold, process-wide.
//!
//! `negotiate` agrees on parameters ([`DeflateParams`]) from local preferences
//! ([`DeflateConfig`]) and the peer's offer or response; `codec` compresses and
//! decompresses with them. This file holds what both share: the error type,
//! the defaults and the compressor's settings.

mod codec;
mod negotiate;

use std::time::Duration;

pub use codec::{live_states, Compressor, Decompressor};
pub use negotiate::{
    accept_response, client_offer, negotiate_server, DeflateConfig, DeflateParams,
};

/// The extension name, as registered in RFC 7692 section 7.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// Default window bits when a `*_max_window_bits` parameter is absent.
const DEFAULT_WINDOW_BITS: u8 = 15;

/// Default zlib compression level of every connection, and of [`DeflateConfig`]
/// and [`CompressorSettings`]: 1, zlib-rs' fast "quick" strategy (see
/// [`DeflateConfig`] for the measurements behind it).
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 1;

/// Default zlib `memLevel` of [`DeflateConfig`]: 5, as websockets uses.
pub const DEFAULT_MEM_LEVEL: u8 = 5;

/// Default largest window (log2) our compressor uses: 12 (4 KiB), the window
/// websockets' server compresses with.
pub const DEFAULT_COMPRESS_WINDOW_BITS: u8 = 12;

/// Errors of the permessage-deflate extension: negotiation and (de)compression.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DeflateError {
    /// Decompressed output would grow past `limit` bytes (the absolute length
    /// of the output buffer the caller allowed).
    #[error("decompressed data exceeds limit of {limit} bytes")]
    TooBig {
        /// The output length that would have been exceeded.
        limit: usize,
    },
    /// The peer sent data that is not a valid raw DEFLATE stream.
    #[error("invalid compressed data: {0}")]
    Corrupt(String),
    /// The compressor failed (an internal error, not caused by the peer).
    #[error("compression failed: {0}")]
    Compress(String),
    /// A parameter appears twice in one offer or response.
    #[error("duplicate parameter {0}")]
    DuplicateParameter(String),
    /// A parameter not defined for this offer or response.
    #[error("unknown parameter {0}")]
    UnknownParameter(String),
    /// A parameter has a value it may not have.
    #[error("invalid value for parameter {name}: {value}")]
    InvalidParameterValue {
        /// The parameter name.
        name: String,
        /// The value received.
        value: String,
    },
    /// A parameter that needs a value came without one.
    #[error("parameter {0} requires a value")]
    MissingParameterValue(String),
    /// The server's response does not match what the client offered.
    #[error("{0}")]
    Unsupported(String),
}

/// Default of [`DeflateConfig::compressor_idle`]: a takeover connection that
/// sent no compressed message for 5 s gives its compressor back.
pub const DEFAULT_COMPRESSOR_IDLE: Duration = Duration::from_secs(5);

/// How a [`Compressor`] runs: local choices, never negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressorSettings {
    /// zlib compression level, 0 (stored) to 9; larger values are capped.
    pub level: u32,
    /// zlib `memLevel`, 1 to 9; values outside are clamped.
    pub mem_level: u8,
    /// Largest window (log2) used, 8 to 15, further capped by negotiation.
    pub window_bits: u8,
    /// Keep the compression context from one message to the next when the
    /// negotiation allows it (context takeover on our side). `false`
    /// compresses every message alone, as without context takeover, so that
    /// no compressor stays allocated between messages: a sender may always
    /// drop its context (RFC 7692 section 7.1.1.1), the peer cannot tell.
    pub keep_context: bool,
}

impl Default for CompressorSettings {
    fn default() -> Self {
        Self {
            level: DEFAULT_COMPRESSION_LEVEL,
            mem_level: DEFAULT_MEM_LEVEL,
            window_bits: DEFAULT_COMPRESS_WINDOW_BITS,
            keep_context: true,
        }
    }
}

#[cfg(test)]
mod tests;
