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
//! [`Compressor::release`] and [`Decompressor::release`] free them between
//! messages (for a connection gone idle); the next message allocates afresh.

use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush, Status};

use crate::frame::Role;
use crate::handshake::Extension;
use crate::inflate::FastInflater;

/// The extension name, as registered in RFC 7692 section 7.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The four bytes that end every sync-flushed DEFLATE stream (an empty stored
/// block), stripped by the sender and put back by the receiver (section 7.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Largest output step of one inflate call. Output grows geometrically up to
/// the caller's limit, never past it.
const MAX_STEP: usize = 64 * 1024;

/// Smallest output step of one inflate call.
const MIN_STEP: usize = 1024;

/// Largest compressed message [`Decompressor::decompress_message`] gives to
/// the one-shot decoder. Past a few KiB it is no faster than zlib-rs (about
/// even at 2.7 KiB for 16 KiB of JSON, 8% slower at 10 KiB for 64 KiB).
const FAST_MAX_INPUT: usize = 4096;

/// Default window bits when a `*_max_window_bits` parameter is absent.
const DEFAULT_WINDOW_BITS: u8 = 15;

/// Default compression level of [`DeflateConfig`]: 1, zlib-rs' fast "quick"
/// strategy (see [`DeflateConfig`]).
pub const DEFAULT_LEVEL: u32 = 1;

/// Default zlib `memLevel` of [`DeflateConfig`]: 5, as websockets uses.
pub const DEFAULT_MEM_LEVEL: u8 = 5;

/// Default largest window (log2) our compressor uses: 12 (4 KiB), the window
/// websockets' server compresses with.
pub const DEFAULT_COMPRESS_WINDOW_BITS: u8 = 12;

const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

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

/// Negotiated parameters: what both sides agreed on. `None` window bits means 15.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DeflateParams {
    /// The server resets its compression context after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after every message.
    pub client_no_context_takeover: bool,
    /// Largest LZ77 window (log2) the server compresses with, 8 to 15.
    pub server_max_window_bits: Option<u8>,
    /// Largest LZ77 window (log2) the client compresses with, 8 to 15.
    pub client_max_window_bits: Option<u8>,
}

impl DeflateParams {
    /// The extension element for a `Sec-WebSocket-Extensions` header, e.g.
    /// `permessage-deflate; server_no_context_takeover; client_max_window_bits=10`.
    pub fn to_header_value(&self) -> String {
        let mut parts = vec![EXTENSION_NAME.to_owned()];
        if self.server_no_context_takeover {
            parts.push(SERVER_NO_CONTEXT_TAKEOVER.to_owned());
        }
        if self.client_no_context_takeover {
            parts.push(CLIENT_NO_CONTEXT_TAKEOVER.to_owned());
        }
        if let Some(bits) = self.server_max_window_bits {
            parts.push(format!("{SERVER_MAX_WINDOW_BITS}={bits}"));
        }
        if let Some(bits) = self.client_max_window_bits {
            parts.push(format!("{CLIENT_MAX_WINDOW_BITS}={bits}"));
        }
        parts.join("; ")
    }

    /// Window bits and context reset of the side playing `role`.
    fn side(self, role: Role) -> (u8, bool) {
        match role {
            Role::Server => (
                self.server_max_window_bits.unwrap_or(DEFAULT_WINDOW_BITS),
                self.server_no_context_takeover,
            ),
            Role::Client => (
                self.client_max_window_bits.unwrap_or(DEFAULT_WINDOW_BITS),
                self.client_no_context_takeover,
            ),
        }
    }
}

/// Local preferences: what a client offers, or what a server accepts, and
/// how our compressor runs.
///
/// On a server, the `*_no_context_takeover` flags are requested from the
/// client even if it did not offer them, and the window bits cap what the
/// server agrees to. An offer that cannot satisfy `client_max_window_bits`
/// (the client did not offer that parameter) is declined. On a client, the
/// fields are exactly what [`client_offer`] sends.
///
/// `level`, `mem_level` and `compress_window_bits` are never negotiated: they
/// set our own compressor. The defaults aim at realtime servers, where CPU per
/// message matters more than bytes on the wire (measured on a stream of 1 KiB
/// JSON-like messages):
///
/// * `level` 1 ([`DEFAULT_LEVEL`]), also gorilla/websocket's default:
///   zlib-rs' quick strategy takes about 2.5 µs per message with context
///   takeover against about 11 µs at level 6, for output of 36 to 46% of the
///   input against 25 to 30%.
/// * `mem_level` 5 ([`DEFAULT_MEM_LEVEL`]), as websockets: zlib-rs' buffers
///   drop from 112 KiB to 14 KiB, at no measurable cost in ratio or speed here.
/// * `compress_window_bits` 12 ([`DEFAULT_COMPRESS_WINDOW_BITS`]), the window
///   websockets' server compresses with: 16 KiB of window and hash chain
///   instead of 128 KiB at 15. It only lowers the negotiated window of our
///   side, which a sender may always do, so the handshake is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Ask that the server reset its context after every message.
    pub server_no_context_takeover: bool,
    /// Ask that the client reset its context after every message.
    pub client_no_context_takeover: bool,
    /// Cap on the server's window, 8 to 15.
    pub server_max_window_bits: Option<u8>,
    /// Cap on the client's window, 8 to 15.
    pub client_max_window_bits: Option<u8>,
    /// zlib compression level, 0 (stored) to 9.
    pub level: u32,
    /// zlib `memLevel`, 1 to 9: the size of the compressor's buffers.
    pub mem_level: u8,
    /// Largest window (log2, 8 to 15) our compressor uses, whatever larger
    /// window the negotiation allows.
    pub compress_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
            level: DEFAULT_LEVEL,
            mem_level: DEFAULT_MEM_LEVEL,
            compress_window_bits: DEFAULT_COMPRESS_WINDOW_BITS,
        }
    }
}

impl DeflateConfig {
    /// Check that window bits are within 8..=15, the level within 0..=9 and
    /// `mem_level` within 1..=9.
    pub fn check(&self) -> Result<(), DeflateError> {
        for (name, bits) in [
            (SERVER_MAX_WINDOW_BITS, self.server_max_window_bits),
            (CLIENT_MAX_WINDOW_BITS, self.client_max_window_bits),
            ("compress_window_bits", Some(self.compress_window_bits)),
        ] {
            if let Some(bits) = bits.filter(|bits| !(8..=15).contains(bits)) {
                return Err(DeflateError::InvalidParameterValue {
                    name: name.to_owned(),
                    value: bits.to_string(),
                });
            }
        }
        if self.level > 9 {
            return Err(DeflateError::InvalidParameterValue {
                name: "level".to_owned(),
                value: self.level.to_string(),
            });
        }
        if !(1..=9).contains(&self.mem_level) {
            return Err(DeflateError::InvalidParameterValue {
                name: "mem_level".to_owned(),
                value: self.mem_level.to_string(),
            });
        }
        Ok(())
    }

    /// The settings of our compressor.
    pub fn compressor_settings(&self) -> CompressorSettings {
        CompressorSettings {
            level: self.level,
            mem_level: self.mem_level,
            window_bits: self.compress_window_bits,
        }
    }
}

/// How a [`Compressor`] runs: local choices, never negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressorSettings {
    /// zlib compression level, 0 (stored) to 9; larger values are capped.
    pub level: u32,
    /// zlib `memLevel`, 1 to 9; values outside are clamped.
    pub mem_level: u8,
    /// Largest window (log2) used, 8 to 15, further capped by negotiation.
    pub window_bits: u8,
}

impl Default for CompressorSettings {
    fn default() -> Self {
        DeflateConfig::default().compressor_settings()
    }
}

/// Compresses the messages one side sends.
///
/// zlib, and zlib-rs after it, cannot compress raw DEFLATE with an 8-bit
/// window: asked for 8, they silently use 9 and may emit back-references up to
/// 512 bytes, which a peer with a 256-byte window rejects. When the agreed
/// window is 8, this compressor therefore runs with window 9 at level 0:
/// stored blocks hold no back-references at all, so every peer window is
/// respected, at the cost of no size reduction for that connection.
///
/// The zlib-rs state is allocated on the first call to [`Compressor::compress`].
pub struct Compressor {
    inner: Option<Deflate>,
    config: zlib_rs::DeflateConfig,
    no_context_takeover: bool,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("allocated", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor for the side playing `role`, at zlib `level` (capped at 9),
    /// with the default `memLevel` and window cap of [`CompressorSettings`].
    /// Window bits out of 8..=15 are clamped into that range.
    pub fn new(params: &DeflateParams, role: Role, level: u32) -> Self {
        Self::with_settings(
            params,
            role,
            CompressorSettings {
                level,
                ..CompressorSettings::default()
            },
        )
    }

    /// A compressor for the side playing `role` with explicit settings. The
    /// window is the smaller of the negotiated one and `settings.window_bits`.
    pub fn with_settings(params: &DeflateParams, role: Role, settings: CompressorSettings) -> Self {
        let (agreed, no_context_takeover) = params.side(role);
        let bits = agreed.min(settings.window_bits).clamp(8, 15);
        let (bits, level) = match bits {
            // See the type's documentation: no back-references with window 8.
            8 => (9, 0),
            bits => (bits, settings.level.min(9)),
        };
        let config = zlib_rs::DeflateConfig {
            // A negative window asks for raw DEFLATE (no zlib header).
            window_bits: -i32::from(bits),
            // Both fit: level <= 9, mem_level <= 9.
            level: i32::try_from(level).unwrap_or(9),
            mem_level: i32::from(settings.mem_level.clamp(1, 9)),
            ..zlib_rs::DeflateConfig::default()
        };
        Self {
            inner: None,
            config,
            no_context_takeover,
        }
    }

    /// Compress one fragment of a message, appending to `out`.
    ///
    /// Every fragment ends with a sync flush, so it can be sent at once. With
    /// `fin`, the trailing `00 00 ff ff` is stripped (RFC 7692 section
    /// 7.2.1) and, if our side agreed to no context takeover, the context is
    /// reset for the next message.
    pub fn compress(
        &mut self,
        data: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), DeflateError> {
        let config = self.config;
        let inner = self
            .inner
            .get_or_insert_with(|| Deflate::new_with_config(config));
        let start = out.len();
        let mut input = data;
        loop {
            // Sync-flushed output rarely exceeds the input by more than a few
            // block headers; Vec::reserve grows geometrically past that.
            out.reserve(input.len().min(MAX_STEP) + 64);
            let len = out.len();
            let buffer = out.spare_capacity_mut();
            let space = buffer.len();
            let in_before = inner.total_in();
            let out_before = inner.total_out();
            inner
                .compress_uninit(input, buffer, DeflateFlush::SyncFlush)
                .map_err(|err| DeflateError::Compress(err.as_str().to_owned()))?;
            let consumed = usize::try_from(inner.total_in() - in_before).unwrap_or(usize::MAX);
            let produced = usize::try_from(inner.total_out() - out_before).unwrap_or(usize::MAX);
            // SAFETY: the compressor initialised exactly the first `produced`
            // bytes of `buffer` (total_out counts every byte it writes), and
            // `produced <= space = capacity - len`.
            unsafe { out.set_len(len + produced) };
            input = &input[consumed..];
            // A full output buffer may hide pending output: go round again.
            let full = produced == space;
            if input.is_empty() && !full {
                break;
            }
            if consumed == 0 && produced == 0 {
                return Err(DeflateError::Compress(
                    "compressor made no progress".to_owned(),
                ));
            }
        }
        if fin {
            if out[start..].ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            } else if out.len() == start {
                // zlib emits nothing for a sync flush right after another one
                // (an empty message, or an empty last fragment). The stream is
                // byte-aligned, so the payload is one empty stored block
                // header, as in RFC 7692 section 7.2.3.6.
                out.push(0x00);
            } else {
                return Err(DeflateError::Compress(
                    "sync flush did not end with an empty stored block".to_owned(),
                ));
            }
            if self.no_context_takeover {
                inner.reset();
            }
        }
        Ok(())
    }

    /// Drop the compression context, as at the start of a connection.
    pub fn reset(&mut self) {
        if let Some(inner) = &mut self.inner {
            inner.reset();
        }
    }

    /// Free the compressor's memory; the next message allocates it again.
    ///
    /// Call it between messages only (after a fragment with `fin`). It is
    /// always safe for the peer: a sender may drop its context at any message
    /// boundary, the next message then simply refers to no earlier one. With
    /// context takeover the next message compresses a little less well.
    pub fn release(&mut self) {
        self.inner = None;
    }

    /// Whether the zlib-rs state is currently allocated.
    pub fn is_allocated(&self) -> bool {
        self.inner.is_some()
    }
}

/// Decompresses the messages the peer sends.
///
/// zlib-rs allocates a 32 KiB window whatever size is asked, so this
/// decompressor always inflates with a 15-bit window: it decodes everything a
/// smaller window produces, and can be reset in place between messages.
/// A peer reaching further back than the window it agreed on is tolerated.
///
/// The zlib-rs state is allocated on the first compressed message.
pub struct Decompressor {
    inner: Option<Inflate>,
    /// The one-shot decoder of [`Decompressor::decompress_message`], allocated
    /// on its first use.
    fast: Option<FastInflater>,
    /// The current message was decoded whole by `fast`: [`Decompressor::finish`]
    /// has nothing left to do.
    fast_done: bool,
    no_context_takeover: bool,
    /// The peer ended its DEFLATE stream (a block with BFINAL set, RFC 7692
    /// section 7.2.3.4) in the current message; the rest of the message is
    /// ignored and the context is reset at the end of the message.
    stream_ended: bool,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("stream_ended", &self.stream_ended)
            .field("allocated", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

impl Decompressor {
    /// A decompressor for the side playing `role`: it inflates what the peer
    /// (the other role) compresses.
    pub fn new(params: &DeflateParams, role: Role) -> Self {
        let peer = match role {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        };
        let (_, no_context_takeover) = params.side(peer);
        Self {
            inner: None,
            fast: None,
            fast_done: false,
            no_context_takeover,
            stream_ended: false,
        }
    }

    /// Inflate a whole compressed message at once, appending to `out`:
    /// `data` is all of its payload, and [`Decompressor::finish`] follows.
    ///
    /// Same result as [`Decompressor::decompress`] (output, errors, limit),
    /// faster for small messages: without context takeover, a message of at
    /// most 4 KiB is first decoded in one go by [`FastInflater`]; a stream it
    /// does not accept (anything unusual, invalid or over the limit) goes
    /// through zlib-rs from a clean state instead.
    pub fn decompress_message(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DeflateError> {
        if self.no_context_takeover
            && !self.stream_ended
            && !self.fast_done
            && data.len() <= FAST_MAX_INPUT
        {
            let fast = self.fast.get_or_insert_with(FastInflater::new);
            if fast.inflate(data, &TAIL, out, limit).is_ok() {
                self.fast_done = true;
                return Ok(());
            }
        }
        self.inflate(data, out, limit)
    }

    /// Inflate a chunk of a compressed message, appending to `out`.
    ///
    /// `limit` is the largest `out.len()` allowed (the caller passes its start
    /// offset plus the maximum message size). Output is produced in bounded
    /// steps and `out` never grows past `limit`, not even its capacity unless
    /// it was larger on entry: a decompression bomb ends in
    /// [`DeflateError::TooBig`], not in memory growth.
    pub fn decompress(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DeflateError> {
        self.inflate(data, out, limit)
    }

    /// End of message: feed the `00 00 ff ff` tail, then reset the context if
    /// the peer agreed to no context takeover.
    pub fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), DeflateError> {
        if self.fast_done {
            // zlib-rs never saw the message: its state is still clean.
            self.fast_done = false;
            return Ok(());
        }
        self.inflate(&TAIL, out, limit)?;
        if self.no_context_takeover || self.stream_ended {
            self.reset();
        }
        Ok(())
    }

    /// Drop the decompression context, as at the start of a connection.
    pub fn reset(&mut self) {
        if let Some(inner) = &mut self.inner {
            inner.reset(false);
        }
        self.stream_ended = false;
        self.fast_done = false;
    }

    /// Free the decompressor's memory if no state needs keeping: between
    /// messages, when the peer agreed to no context takeover. Returns whether
    /// it was freed; the next compressed message allocates it again.
    pub fn release(&mut self) -> bool {
        if self.no_context_takeover {
            self.inner = None;
            self.fast = None;
            self.stream_ended = false;
            self.fast_done = false;
        }
        self.inner.is_none() && self.fast.is_none()
    }

    /// Whether the zlib-rs state (or the one-shot decoder) is allocated.
    pub fn is_allocated(&self) -> bool {
        self.inner.is_some() || self.fast.is_some()
    }

    fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DeflateError> {
        if self.stream_ended {
            // Bytes after the final block (padding, the tail) carry nothing.
            return Ok(());
        }
        let inner = self
            .inner
            .get_or_insert_with(|| Inflate::new(false, DEFAULT_WINDOW_BITS));
        loop {
            let room = limit.saturating_sub(out.len());
            let in_before = inner.total_in();
            let out_before = inner.total_out();
            let (status, space) = if room == 0 {
                // `out` is at its limit: one more byte would be too big. Probe
                // with a one-byte buffer so that a message ending exactly at
                // the limit still passes.
                let mut probe = [0u8; 1];
                let status = inner
                    .decompress(input, &mut probe, InflateFlush::NoFlush)
                    .map_err(|err| corrupt(inner, err))?;
                if inner.total_out() != out_before {
                    return Err(DeflateError::TooBig { limit });
                }
                (status, 1)
            } else {
                let hint = input.len().saturating_mul(4).clamp(MIN_STEP, MAX_STEP);
                reserve_bounded(out, hint.min(room), limit);
                let space = (out.capacity() - out.len()).min(room);
                let len = out.len();
                let buffer = &mut out.spare_capacity_mut()[..space];
                let status = inner
                    .decompress_uninit(input, buffer, InflateFlush::NoFlush)
                    .map_err(|err| corrupt(inner, err))?;
                let produced =
                    usize::try_from(inner.total_out() - out_before).unwrap_or(usize::MAX);
                // SAFETY: the inflater initialised exactly the first `produced`
                // bytes of `buffer` (total_out counts every byte it writes), and
                // `produced <= space <= capacity - len`.
                unsafe { out.set_len(len + produced) };
                (status, space)
            };
            let consumed = usize::try_from(inner.total_in() - in_before).unwrap_or(usize::MAX);
            let produced = usize::try_from(inner.total_out() - out_before).unwrap_or(usize::MAX);
            input = &input[consumed..];
            if status == Status::StreamEnd {
                self.stream_ended = true;
                return Ok(());
            }
            // A full step may hide pending output: go round again.
            let full = produced == space;
            if input.is_empty() && !full {
                return Ok(());
            }
            if consumed == 0 && produced == 0 {
                return Err(DeflateError::Corrupt(
                    "inflater made no progress".to_owned(),
                ));
            }
        }
    }
}

fn corrupt(inner: &Inflate, err: zlib_rs::InflateError) -> DeflateError {
    DeflateError::Corrupt(
        inner
            .error_message()
            .unwrap_or_else(|| err.as_str())
            .to_owned(),
    )
}

/// Make room for at least `step` more bytes (`out.len() + step <= limit`),
/// growing geometrically like `Vec::reserve` but never past `limit`.
fn reserve_bounded(out: &mut Vec<u8>, step: usize, limit: usize) {
    let needed = out.len() + step;
    if out.capacity() >= needed {
        return;
    }
    let target = out.capacity().saturating_mul(2).max(needed).min(limit);
    out.reserve_exact(target - out.len());
}

/// `client_max_window_bits` in an offer or response.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum ClientWindow {
    /// The parameter is absent.
    #[default]
    Absent,
    /// Present without a value: the server may choose (offers only).
    Any,
    /// Present with a value.
    Bits(u8),
}

/// Parameters of one permessage-deflate offer or response, checked for
/// duplicates and value syntax.
#[derive(Default)]
struct Parameters {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: ClientWindow,
}

/// Parse the parameters of a permessage-deflate element; `offer` selects the
/// client-offer grammar (where `client_max_window_bits` may have no value).
fn parse_parameters(ext: &Extension, offer: bool) -> Result<Parameters, DeflateError> {
    let mut parsed = Parameters::default();
    for (name, value) in &ext.params {
        let value = value.as_deref();
        let duplicate = || DeflateError::DuplicateParameter(name.clone());
        if name.eq_ignore_ascii_case(SERVER_NO_CONTEXT_TAKEOVER) {
            no_value(name, value)?;
            if parsed.server_no_context_takeover {
                return Err(duplicate());
            }
            parsed.server_no_context_takeover = true;
        } else if name.eq_ignore_ascii_case(CLIENT_NO_CONTEXT_TAKEOVER) {
            no_value(name, value)?;
            if parsed.client_no_context_takeover {
                return Err(duplicate());
            }
            parsed.client_no_context_takeover = true;
        } else if name.eq_ignore_ascii_case(SERVER_MAX_WINDOW_BITS) {
            if parsed.server_max_window_bits.is_some() {
                return Err(duplicate());
            }
            let value = value.ok_or_else(|| DeflateError::MissingParameterValue(name.clone()))?;
            parsed.server_max_window_bits = Some(window_bits(name, value)?);
        } else if name.eq_ignore_ascii_case(CLIENT_MAX_WINDOW_BITS) {
            if parsed.client_max_window_bits != ClientWindow::Absent {
                return Err(duplicate());
            }
            parsed.client_max_window_bits = match value {
                Some(value) => ClientWindow::Bits(window_bits(name, value)?),
                None if offer => ClientWindow::Any,
                None => return Err(DeflateError::MissingParameterValue(name.clone())),
            };
        } else {
            return Err(DeflateError::UnknownParameter(name.clone()));
        }
    }
    Ok(parsed)
}

fn no_value(name: &str, value: Option<&str>) -> Result<(), DeflateError> {
    match value {
        None => Ok(()),
        Some(value) => Err(DeflateError::InvalidParameterValue {
            name: name.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// A window size: a decimal 8 to 15 without leading zeros (RFC 7692 section 7.1.2).
fn window_bits(name: &str, value: &str) -> Result<u8, DeflateError> {
    let bits = match value {
        "8" => 8,
        "9" => 9,
        "10" => 10,
        "11" => 11,
        "12" => 12,
        "13" => 13,
        "14" => 14,
        "15" => 15,
        _ => {
            return Err(DeflateError::InvalidParameterValue {
                name: name.to_owned(),
                value: value.to_owned(),
            })
        }
    };
    Ok(bits)
}

fn is_deflate(ext: &Extension) -> bool {
    ext.name.eq_ignore_ascii_case(EXTENSION_NAME)
}

/// Server side: pick the first acceptable permessage-deflate offer among the
/// client's extension offers (in order) and return the agreed parameters and
/// the response element for `Sec-WebSocket-Extensions`.
///
/// Malformed offers (unknown or duplicate parameters, bad values) are declined
/// (RFC 7692 section 5), as are offers that cannot meet `cfg`; `None` means no
/// offer was acceptable and the connection proceeds uncompressed.
pub fn negotiate_server(
    offers: &[Extension],
    cfg: &DeflateConfig,
) -> Option<(DeflateParams, String)> {
    offers
        .iter()
        .filter(|ext| is_deflate(ext))
        .find_map(|ext| accept_offer(ext, cfg))
        .map(|params| (params, params.to_header_value()))
}

/// The response to one offer, or `None` to decline it.
fn accept_offer(ext: &Extension, cfg: &DeflateConfig) -> Option<DeflateParams> {
    let offer = parse_parameters(ext, true).ok()?;
    // The server's window: the client's cap (which the response must repeat,
    // section 7.1.2.1), lowered to our own cap if we have one.
    let server_max_window_bits = match (offer.server_max_window_bits, cfg.server_max_window_bits) {
        (Some(offered), Some(ours)) => Some(offered.min(ours)),
        (offered, ours) => offered.or(ours),
    };
    // The client's window: the response may carry it only if the offer had
    // the parameter (section 7.1.2.2); without it we cannot cap the client.
    let client_max_window_bits = match (offer.client_max_window_bits, cfg.client_max_window_bits) {
        (ClientWindow::Absent, Some(ours)) if ours < DEFAULT_WINDOW_BITS => return None,
        (ClientWindow::Absent, _) => None,
        (ClientWindow::Any, ours) => ours,
        (ClientWindow::Bits(offered), ours) => Some(ours.map_or(offered, |ours| offered.min(ours))),
    };
    Some(DeflateParams {
        // Must be echoed when offered (section 7.1.1.1); may be added.
        server_no_context_takeover: offer.server_no_context_takeover
            || cfg.server_no_context_takeover,
        // A hint when offered, echoed so our decompressor may reset too.
        client_no_context_takeover: offer.client_no_context_takeover
            || cfg.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    })
}

/// Client side: the `Sec-WebSocket-Extensions` element to offer.
///
/// `client_max_window_bits` is always sent, without a value if `cfg` sets no
/// cap, so the server may choose our window.
pub fn client_offer(cfg: &DeflateConfig) -> String {
    let mut parts = vec![EXTENSION_NAME.to_owned()];
    if cfg.server_no_context_takeover {
        parts.push(SERVER_NO_CONTEXT_TAKEOVER.to_owned());
    }
    if cfg.client_no_context_takeover {
        parts.push(CLIENT_NO_CONTEXT_TAKEOVER.to_owned());
    }
    if let Some(bits) = cfg.server_max_window_bits {
        parts.push(format!("{SERVER_MAX_WINDOW_BITS}={bits}"));
    }
    parts.push(match cfg.client_max_window_bits {
        Some(bits) => format!("{CLIENT_MAX_WINDOW_BITS}={bits}"),
        None => CLIENT_MAX_WINDOW_BITS.to_owned(),
    });
    parts.join("; ")
}

/// Client side: check the server's permessage-deflate response against what
/// [`client_offer`] offered for `cfg` (RFC 7692 section 7.1). Any violation
/// is an error, and the client must fail the connection.
pub fn accept_response(
    ext: &Extension,
    cfg: &DeflateConfig,
) -> Result<DeflateParams, DeflateError> {
    if !is_deflate(ext) {
        return Err(DeflateError::Unsupported(format!(
            "unexpected extension {}",
            ext.name
        )));
    }
    let response = parse_parameters(ext, false)?;
    if cfg.server_no_context_takeover && !response.server_no_context_takeover {
        return Err(DeflateError::Unsupported(format!(
            "server did not accept the offered {SERVER_NO_CONTEXT_TAKEOVER}"
        )));
    }
    let server_max_window_bits = match (cfg.server_max_window_bits, response.server_max_window_bits)
    {
        (Some(offered), None) => {
            return Err(DeflateError::Unsupported(format!(
                "server did not accept the offered {SERVER_MAX_WINDOW_BITS}={offered}"
            )))
        }
        (Some(offered), Some(agreed)) if agreed > offered => {
            return Err(DeflateError::Unsupported(format!(
                "server chose {SERVER_MAX_WINDOW_BITS}={agreed} above the offered {offered}"
            )))
        }
        (_, agreed) => agreed,
    };
    // client_max_window_bits is always offered; a value in the offer is a cap
    // the server may lower but not raise.
    let agreed_client_bits = match response.client_max_window_bits {
        ClientWindow::Bits(bits) => Some(bits),
        // A response without a value was already rejected by the parser.
        ClientWindow::Absent | ClientWindow::Any => None,
    };
    let client_max_window_bits = match (cfg.client_max_window_bits, agreed_client_bits) {
        (Some(offered), Some(agreed)) if agreed > offered => {
            return Err(DeflateError::Unsupported(format!(
                "server chose {CLIENT_MAX_WINDOW_BITS}={agreed} above the offered {offered}"
            )))
        }
        (offered, agreed) => agreed.or(offered),
    };
    Ok(DeflateParams {
        server_no_context_takeover: response.server_no_context_takeover,
        // Our own offer of no context takeover binds us even if not echoed.
        client_no_context_takeover: response.client_no_context_takeover
            || cfg.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HELLO: &[u8] = b"Hello";
    const LIMIT: usize = 1 << 20;

    fn ext(params: &[(&str, Option<&str>)]) -> Extension {
        Extension {
            name: EXTENSION_NAME.to_owned(),
            params: params
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.map(str::to_owned)))
                .collect(),
        }
    }

    fn compress(compressor: &mut Compressor, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        compressor.compress(data, true, &mut out).unwrap();
        out
    }

    fn decompress(decompressor: &mut Decompressor, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decompressor.decompress(payload, &mut out, LIMIT).unwrap();
        decompressor.finish(&mut out, LIMIT).unwrap();
        out
    }

    fn pair(params: DeflateParams, level: u32) -> (Compressor, Decompressor) {
        (
            Compressor::new(&params, Role::Client, level),
            Decompressor::new(&params, Role::Server),
        )
    }

    // Compression: RFC 7692 section 7.2.3.

    #[test]
    fn compresses_hello_as_in_rfc_7692_7_2_3_1() {
        let mut compressor = Compressor::new(&DeflateParams::default(), Role::Server, 6);
        assert_eq!(
            compress(&mut compressor, HELLO),
            [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
    }

    #[test]
    fn compresses_second_hello_with_context_takeover_as_in_rfc_7692_7_2_3_2() {
        let mut compressor = Compressor::new(&DeflateParams::default(), Role::Server, 6);
        compress(&mut compressor, HELLO);
        assert_eq!(
            compress(&mut compressor, HELLO),
            [0xf2, 0x00, 0x11, 0x00, 0x00]
        );
    }

    #[test]
    fn compresses_second_hello_afresh_without_context_takeover() {
        let params = DeflateParams {
            server_no_context_takeover: true,
            ..DeflateParams::default()
        };
        let mut compressor = Compressor::new(&params, Role::Server, 6);
        compress(&mut compressor, HELLO);
        assert_eq!(
            compress(&mut compressor, HELLO),
            [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
    }

    #[test]
    fn compressor_honours_only_its_own_sides_no_context_takeover() {
        let params = DeflateParams {
            client_no_context_takeover: true,
            ..DeflateParams::default()
        };
        let mut compressor = Compressor::new(&params, Role::Server, 6);
        compress(&mut compressor, HELLO);
        assert_eq!(
            compress(&mut compressor, HELLO),
            [0xf2, 0x00, 0x11, 0x00, 0x00]
        );
    }

    #[test]
    fn compresses_with_stored_blocks_at_level_0() {
        let mut compressor = Compressor::new(&DeflateParams::default(), Role::Server, 0);
        assert_eq!(
            compress(&mut compressor, HELLO),
            [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]
        );
    }

    #[test]
    fn compresses_empty_message_to_one_zero_byte_as_in_rfc_7692_7_2_3_6() {
        let mut compressor = Compressor::new(&DeflateParams::default(), Role::Server, 6);
        assert_eq!(compress(&mut compressor, b""), [0x00]);
        // Right after another sync flush, zlib emits nothing: still one byte.
        assert_eq!(compress(&mut compressor, b""), [0x00]);
        compress(&mut compressor, HELLO);
        assert_eq!(compress(&mut compressor, b""), [0x00]);
    }

    #[test]
    fn compressed_empty_messages_inflate_to_nothing() {
        let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 6);
        for data in [&b""[..], b"", HELLO, b"", HELLO] {
            let payload = compress(&mut compressor, data);
            assert_eq!(decompress(&mut decompressor, &payload), data);
        }
    }

    #[test]
    fn compresses_fragments_that_decompress_separately() {
        let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 6);
        let mut first = Vec::new();
        compressor.compress(b"Hel", false, &mut first).unwrap();
        assert!(
            first.ends_with(&TAIL),
            "a non-final fragment keeps its sync flush"
        );
        let mut last = Vec::new();
        compressor.compress(b"lo", true, &mut last).unwrap();
        assert!(!last.ends_with(&TAIL));
        let mut out = Vec::new();
        decompressor.decompress(&first, &mut out, LIMIT).unwrap();
        assert_eq!(out, b"Hel", "a flushed fragment inflates without the rest");
        decompressor.decompress(&last, &mut out, LIMIT).unwrap();
        decompressor.finish(&mut out, LIMIT).unwrap();
        assert_eq!(out, HELLO);
    }

    #[test]
    fn compresses_empty_last_fragment_to_one_zero_byte() {
        let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 6);
        let mut payload = Vec::new();
        compressor.compress(HELLO, false, &mut payload).unwrap();
        let mut last = Vec::new();
        compressor.compress(b"", true, &mut last).unwrap();
        assert_eq!(last, [0x00]);
        payload.extend_from_slice(&last);
        assert_eq!(decompress(&mut decompressor, &payload), HELLO);
    }

    #[test]
    fn compresses_large_messages_in_several_steps() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 1);
        let payload = compress(&mut compressor, &data);
        let mut out = Vec::new();
        decompressor
            .decompress(&payload, &mut out, data.len())
            .unwrap();
        decompressor.finish(&mut out, data.len()).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn window_8_compresses_with_stored_blocks_only() {
        let params = DeflateParams {
            server_max_window_bits: Some(8),
            ..DeflateParams::default()
        };
        let mut compressor = Compressor::new(&params, Role::Server, 9);
        let data = b"abcabcabcabcabcabcabcabcabcabcabc".repeat(40);
        let payload = compress(&mut compressor, &data);
        // Stored blocks: a header byte, LEN, NLEN, then the data verbatim.
        assert_eq!(payload[0], 0x00);
        assert_eq!(&payload[5..5 + data.len()], &data[..]);
        let mut decompressor = Decompressor::new(&params, Role::Client);
        assert_eq!(decompress(&mut decompressor, &payload), data);
    }

    #[test]
    fn compressor_clamps_out_of_range_settings_instead_of_panicking() {
        let params = DeflateParams {
            server_max_window_bits: Some(200),
            client_max_window_bits: Some(0),
            ..DeflateParams::default()
        };
        for role in [Role::Server, Role::Client] {
            let mut compressor = Compressor::new(&params, role, 99);
            let mut decompressor = Decompressor::new(
                &params,
                match role {
                    Role::Server => Role::Client,
                    Role::Client => Role::Server,
                },
            );
            let payload = compress(&mut compressor, HELLO);
            assert_eq!(decompress(&mut decompressor, &payload), HELLO);
        }
    }

    // Allocation and settings.

    #[test]
    fn compressor_allocates_on_first_message_and_release_frees_it() {
        let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 6);
        assert!(!compressor.is_allocated());
        let first = compress(&mut compressor, HELLO);
        assert!(compressor.is_allocated());
        // Dropping the sender's context is always safe for the receiver.
        compressor.release();
        assert!(!compressor.is_allocated());
        let second = compress(&mut compressor, HELLO);
        assert_eq!(second, first, "after release, a message starts afresh");
        assert_eq!(decompress(&mut decompressor, &first), HELLO);
        assert_eq!(decompress(&mut decompressor, &second), HELLO);
    }

    #[test]
    fn decompressor_allocates_on_first_message_and_frees_only_without_context_takeover() {
        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
        assert!(!decompressor.is_allocated());
        assert!(decompressor.release(), "nothing allocated yet");
        decompress(
            &mut decompressor,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        );
        assert!(decompressor.is_allocated());
        assert!(!decompressor.release(), "the window must be kept");
        assert_eq!(
            decompress(&mut decompressor, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            HELLO
        );
        let params = DeflateParams {
            server_no_context_takeover: true,
            ..DeflateParams::default()
        };
        let mut decompressor = Decompressor::new(&params, Role::Client);
        decompress(
            &mut decompressor,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        );
        assert!(decompressor.release());
        assert!(!decompressor.is_allocated());
        assert_eq!(
            decompress(
                &mut decompressor,
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
            ),
            HELLO
        );
    }

    #[test]
    fn every_compressor_setting_round_trips_with_and_without_context_takeover() {
        let data: Vec<u8> = (0..200)
            .flat_map(|i| {
                format!("{{\"id\":{i},\"p\":{}.{}}},", i * 7919 % 1000, i % 7).into_bytes()
            })
            .collect();
        for no_context_takeover in [false, true] {
            for agreed in [None, Some(8), Some(10), Some(15)] {
                let params = DeflateParams {
                    client_no_context_takeover: no_context_takeover,
                    client_max_window_bits: agreed,
                    ..DeflateParams::default()
                };
                for window_bits in 8..=15 {
                    for mem_level in [1, 5, 8, 9] {
                        for level in [0, 1, 6, 9] {
                            let settings = CompressorSettings {
                                level,
                                mem_level,
                                window_bits,
                            };
                            let mut compressor =
                                Compressor::with_settings(&params, Role::Client, settings);
                            let mut decompressor = Decompressor::new(&params, Role::Server);
                            for _ in 0..3 {
                                let payload = compress(&mut compressor, &data);
                                assert_eq!(
                                    decompress(&mut decompressor, &payload),
                                    data,
                                    "{settings:?} {params:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn compressor_window_is_the_smaller_of_setting_and_agreement() {
        // With a 9-bit window, a repeat 1000 bytes back cannot be referenced.
        let block: Vec<u8> = (0..1000u32).map(|i| (i * 131 % 251) as u8).collect();
        let data = [&block[..], &block[..]].concat();
        let size = |agreed: Option<u8>, window_bits: u8| {
            let params = DeflateParams {
                server_max_window_bits: agreed,
                ..DeflateParams::default()
            };
            let settings = CompressorSettings {
                level: 6,
                mem_level: 8,
                window_bits,
            };
            let mut compressor = Compressor::with_settings(&params, Role::Server, settings);
            compress(&mut compressor, &data).len()
        };
        assert!(size(None, 15) < 1500);
        assert!(size(None, 9) > 1500);
        assert!(size(Some(9), 15) > 1500);
    }

    #[test]
    fn deflate_config_checks_compressor_settings() {
        assert_eq!(DeflateConfig::default().check(), Ok(()));
        for cfg in [
            DeflateConfig {
                mem_level: 0,
                ..DeflateConfig::default()
            },
            DeflateConfig {
                mem_level: 10,
                ..DeflateConfig::default()
            },
            DeflateConfig {
                compress_window_bits: 16,
                ..DeflateConfig::default()
            },
        ] {
            assert!(cfg.check().is_err(), "{cfg:?}");
        }
        assert_eq!(
            DeflateConfig::default().compressor_settings(),
            CompressorSettings {
                level: DEFAULT_LEVEL,
                mem_level: DEFAULT_MEM_LEVEL,
                window_bits: DEFAULT_COMPRESS_WINDOW_BITS,
            }
        );
    }

    // Decompression: RFC 7692 section 7.2.3.

    #[test]
    fn decompresses_hello_as_in_rfc_7692_7_2_3_1() {
        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
        assert_eq!(
            decompress(
                &mut decompressor,
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
            ),
            HELLO
        );
    }

    #[test]
    fn decompresses_fragmented_hello_as_in_rfc_7692_7_2_3_1() {
        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
        let mut out = Vec::new();
        decompressor
            .decompress(&[0xf2, 0x48, 0xcd], &mut out, LIMIT)
            .unwrap();
        decompressor
            .decompress(&[0xc9, 0xc9, 0x07, 0x00], &mut out, LIMIT)
            .unwrap();
        decompressor.finish(&mut out, LIMIT).unwrap();
        assert_eq!(out, HELLO);
    }

    #[test]
    fn decompresses_shared_window_as_in_rfc_7692_7_2_3_2() {
        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
        assert_eq!(
            decompress(
                &mut decompressor,
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
            ),
            HELLO
        );
        assert_eq!(
            decompress(&mut decompressor, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            HELLO
        );
    }

    #[test]
    fn decompressor_without_context_takeover_rejects_back_references_to_older_messages() {
        let params = DeflateParams {
            server_no_context_takeover: true,
            ..DeflateParams::default()
        };
        let mut decompressor = Decompressor::new(&params, Role::Client);
        decompress(
            &mut decompressor,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        );
        let mut out = Vec::new();
        let result = decompressor
            .decompress(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, LIMIT)
            .and_then(|()| decompressor.finish(&mut out, LIMIT));
        assert!(
            matches!(result, Err(DeflateError::Corrupt(_))),
            "{result:?}"
        );
    }

    #[test]
    fn decompresses_stored_block_as_in_rfc_7692_7_2_3_3() {
        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
        let payload = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(decompress(&mut decompressor, &payload), HELLO);
    }

    #[test]
    fn decompresses_bfinal_block_as_in_rfc_7692_7_2_3_4() {
        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
        let payload = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(decompress(&mut decompressor, &payload), HELLO);
        // The ended stream is reset: the next message starts a new one.
        assert_eq!(decompress(&mut decompressor, &payload), HELLO);
        assert_eq!(
            decompress(
                &mut decompressor,
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
            ),
            HELLO
        );
    }

    #[test]
    fn decompresses_two_blocks_as_in_rfc_7692_7_2_3_5() {
        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
        let payload = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(decompress(&mut decompressor, &payload), HELLO);
    }

    #[test]
    fn decompresses_empty_fragment_as_in_rfc_7692_7_2_3_6() {
        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
        assert_eq!(decompress(&mut decompressor, &[0x00]), b"");
        assert_eq!(decompress(&mut decompressor, &[0x00]), b"");
        assert_eq!(
            decompress(
                &mut decompressor,
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
            ),
            HELLO
        );
    }

    #[test]
    fn rejects_corrupt_data() {
        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
        let mut out = Vec::new();
        // BTYPE 11 is reserved.
        let result = decompressor.decompress(&[0xff, 0xff, 0xff], &mut out, LIMIT);
        assert!(
            matches!(result, Err(DeflateError::Corrupt(_))),
            "{result:?}"
        );
    }

    #[test]
    fn decompressor_appends_after_existing_output() {
        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
        let mut out = b"prefix".to_vec();
        decompressor
            .decompress(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 6 + 5)
            .unwrap();
        decompressor.finish(&mut out, 6 + 5).unwrap();
        assert_eq!(out, b"prefixHello");
    }

    // Limits.

    #[test]
    fn accepts_message_exactly_at_the_limit() {
        let data = vec![b'a'; 100_000];
        let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 6);
        let payload = compress(&mut compressor, &data);
        let mut out = Vec::new();
        decompressor
            .decompress(&payload, &mut out, data.len())
            .unwrap();
        decompressor.finish(&mut out, data.len()).unwrap();
        assert_eq!(out, data);
        assert!(out.capacity() <= data.len());
    }

    #[test]
    fn rejects_message_one_byte_over_the_limit() {
        let data = vec![b'a'; 100_001];
        let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 6);
        let payload = compress(&mut compressor, &data);
        let mut out = Vec::new();
        let result = decompressor
            .decompress(&payload, &mut out, 100_000)
            .and_then(|()| decompressor.finish(&mut out, 100_000));
        assert_eq!(result, Err(DeflateError::TooBig { limit: 100_000 }));
        assert_eq!(out.len(), 100_000);
    }

    #[test]
    fn decompression_bomb_fails_without_allocating_past_the_limit() {
        // 100 MB of zeros compress to about 100 KB.
        let mut compressor = Compressor::new(&DeflateParams::default(), Role::Client, 9);
        let mut payload = Vec::new();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..99 {
            compressor.compress(&zeros, false, &mut payload).unwrap();
        }
        compressor.compress(&zeros, true, &mut payload).unwrap();
        assert!(payload.len() < 200_000, "{}", payload.len());

        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Server);
        let mut out = Vec::new();
        let result = decompressor.decompress(&payload, &mut out, LIMIT);
        assert_eq!(result, Err(DeflateError::TooBig { limit: LIMIT }));
        assert!(out.len() <= LIMIT);
        assert!(out.capacity() <= LIMIT, "capacity {}", out.capacity());
    }

    #[test]
    fn limit_counts_existing_output() {
        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
        let mut out = vec![0u8; 10];
        let result =
            decompressor.decompress(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 12);
        assert_eq!(result, Err(DeflateError::TooBig { limit: 12 }));
        assert_eq!(out.len(), 12);
    }

    // Parameters and negotiation: RFC 7692 section 7.1.

    #[test]
    fn formats_parameters_as_header_value() {
        assert_eq!(
            DeflateParams::default().to_header_value(),
            "permessage-deflate"
        );
        let params = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(12),
            client_max_window_bits: Some(10),
        };
        assert_eq!(
            params.to_header_value(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=10"
        );
    }

    #[test]
    fn checks_config_ranges() {
        assert_eq!(DeflateConfig::default().check(), Ok(()));
        for bits in [Some(7), Some(16)] {
            let cfg = DeflateConfig {
                server_max_window_bits: bits,
                ..DeflateConfig::default()
            };
            assert!(cfg.check().is_err());
            let cfg = DeflateConfig {
                client_max_window_bits: bits,
                ..DeflateConfig::default()
            };
            assert!(cfg.check().is_err());
        }
        let cfg = DeflateConfig {
            level: 10,
            ..DeflateConfig::default()
        };
        assert!(cfg.check().is_err());
    }

    fn negotiate(
        params: &[(&str, Option<&str>)],
        cfg: &DeflateConfig,
    ) -> Option<(DeflateParams, String)> {
        negotiate_server(&[ext(params)], cfg)
    }

    fn agreed(params: &[(&str, Option<&str>)], cfg: &DeflateConfig) -> Option<DeflateParams> {
        negotiate(params, cfg).map(|(params, _)| params)
    }

    #[test]
    fn server_accepts_plain_offer() {
        assert_eq!(
            negotiate(&[], &DeflateConfig::default()),
            Some((DeflateParams::default(), "permessage-deflate".to_owned()))
        );
    }

    #[test]
    fn server_ignores_other_extensions_and_takes_first_acceptable_offer() {
        let offers = [
            Extension {
                name: "x-webkit-deflate-frame".to_owned(),
                params: vec![],
            },
            ext(&[("bogus", None)]),
            ext(&[("server_max_window_bits", Some("10"))]),
            ext(&[]),
        ];
        let (params, header) = negotiate_server(&offers, &DeflateConfig::default()).unwrap();
        assert_eq!(params.server_max_window_bits, Some(10));
        assert_eq!(header, "permessage-deflate; server_max_window_bits=10");
    }

    #[test]
    fn server_matches_extension_name_case_insensitively() {
        let offer = Extension {
            name: "PerMessage-Deflate".to_owned(),
            params: vec![],
        };
        assert!(negotiate_server(&[offer], &DeflateConfig::default()).is_some());
    }

    #[test]
    fn server_declines_when_nothing_is_offered() {
        assert_eq!(negotiate_server(&[], &DeflateConfig::default()), None);
    }

    #[test]
    fn server_echoes_server_no_context_takeover() {
        let params = agreed(
            &[("server_no_context_takeover", None)],
            &DeflateConfig::default(),
        )
        .unwrap();
        assert!(params.server_no_context_takeover);
    }

    #[test]
    fn server_adds_its_own_no_context_takeover() {
        let cfg = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let (params, header) = negotiate(&[], &cfg).unwrap();
        assert!(params.server_no_context_takeover && params.client_no_context_takeover);
        assert_eq!(
            header,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn server_echoes_client_no_context_takeover() {
        let params = agreed(
            &[("client_no_context_takeover", None)],
            &DeflateConfig::default(),
        )
        .unwrap();
        assert!(params.client_no_context_takeover);
    }

    #[test]
    fn server_repeats_offered_server_max_window_bits() {
        let params = agreed(
            &[("server_max_window_bits", Some("10"))],
            &DeflateConfig::default(),
        )
        .unwrap();
        assert_eq!(params.server_max_window_bits, Some(10));
    }

    #[test]
    fn server_lowers_server_max_window_bits_to_its_config() {
        let cfg = DeflateConfig {
            server_max_window_bits: Some(9),
            ..DeflateConfig::default()
        };
        assert_eq!(
            agreed(&[("server_max_window_bits", Some("12"))], &cfg)
                .unwrap()
                .server_max_window_bits,
            Some(9)
        );
        assert_eq!(
            agreed(&[("server_max_window_bits", Some("8"))], &cfg)
                .unwrap()
                .server_max_window_bits,
            Some(8)
        );
        assert_eq!(agreed(&[], &cfg).unwrap().server_max_window_bits, Some(9));
    }

    #[test]
    fn server_accepts_server_max_window_bits_8() {
        let params = agreed(
            &[("server_max_window_bits", Some("8"))],
            &DeflateConfig::default(),
        )
        .unwrap();
        assert_eq!(params.server_max_window_bits, Some(8));
    }

    #[test]
    fn server_leaves_client_window_alone_by_default() {
        let params = agreed(
            &[("client_max_window_bits", None)],
            &DeflateConfig::default(),
        )
        .unwrap();
        assert_eq!(params.client_max_window_bits, None);
    }

    #[test]
    fn server_sets_client_max_window_bits_when_allowed() {
        let cfg = DeflateConfig {
            client_max_window_bits: Some(10),
            ..DeflateConfig::default()
        };
        let (params, header) = negotiate(&[("client_max_window_bits", None)], &cfg).unwrap();
        assert_eq!(params.client_max_window_bits, Some(10));
        assert_eq!(header, "permessage-deflate; client_max_window_bits=10");
        assert_eq!(
            agreed(&[("client_max_window_bits", Some("12"))], &cfg)
                .unwrap()
                .client_max_window_bits,
            Some(10)
        );
        assert_eq!(
            agreed(&[("client_max_window_bits", Some("9"))], &cfg)
                .unwrap()
                .client_max_window_bits,
            Some(9)
        );
    }

    #[test]
    fn server_takes_the_clients_window_hint() {
        let params = agreed(
            &[("client_max_window_bits", Some("11"))],
            &DeflateConfig::default(),
        )
        .unwrap();
        assert_eq!(params.client_max_window_bits, Some(11));
    }

    #[test]
    fn server_declines_offer_that_cannot_cap_the_client_window() {
        let cfg = DeflateConfig {
            client_max_window_bits: Some(10),
            ..DeflateConfig::default()
        };
        assert_eq!(negotiate(&[], &cfg), None);
        let cfg = DeflateConfig {
            client_max_window_bits: Some(15),
            ..DeflateConfig::default()
        };
        assert_eq!(agreed(&[], &cfg), Some(DeflateParams::default()));
    }

    #[test]
    fn server_declines_duplicate_parameters() {
        let cfg = DeflateConfig::default();
        for name in [
            "server_no_context_takeover",
            "client_no_context_takeover",
            "client_max_window_bits",
        ] {
            assert_eq!(
                negotiate(&[(name, None), (name, None)], &cfg),
                None,
                "{name}"
            );
        }
        assert_eq!(
            negotiate(
                &[
                    ("server_max_window_bits", Some("10")),
                    ("server_max_window_bits", Some("10"))
                ],
                &cfg
            ),
            None
        );
        assert_eq!(
            negotiate(
                &[
                    ("client_max_window_bits", None),
                    ("client_max_window_bits", Some("10"))
                ],
                &cfg
            ),
            None
        );
    }

    #[test]
    fn server_declines_unknown_parameters() {
        assert_eq!(negotiate(&[("mux", None)], &DeflateConfig::default()), None);
    }

    #[test]
    fn server_declines_bad_values() {
        let cfg = DeflateConfig::default();
        for value in ["7", "16", "08", "+9", "9.0", "", "ten", " 9", "150"] {
            assert_eq!(
                negotiate(&[("server_max_window_bits", Some(value))], &cfg),
                None,
                "{value}"
            );
            assert_eq!(
                negotiate(&[("client_max_window_bits", Some(value))], &cfg),
                None,
                "{value}"
            );
        }
        assert_eq!(negotiate(&[("server_max_window_bits", None)], &cfg), None);
        assert_eq!(
            negotiate(&[("server_no_context_takeover", Some("1"))], &cfg),
            None
        );
        assert_eq!(
            negotiate(&[("client_no_context_takeover", Some(""))], &cfg),
            None
        );
    }

    #[test]
    fn server_accepts_every_valid_window_size() {
        for bits in 8..=15u8 {
            let value = bits.to_string();
            let params = agreed(
                &[
                    ("server_max_window_bits", Some(&value)),
                    ("client_max_window_bits", Some(&value)),
                ],
                &DeflateConfig::default(),
            )
            .unwrap();
            assert_eq!(params.server_max_window_bits, Some(bits));
            assert_eq!(params.client_max_window_bits, Some(bits));
        }
    }

    #[test]
    fn client_offers_client_max_window_bits_without_value_by_default() {
        assert_eq!(
            client_offer(&DeflateConfig::default()),
            "permessage-deflate; client_max_window_bits"
        );
    }

    #[test]
    fn client_offers_every_configured_parameter() {
        let cfg = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(11),
            ..DeflateConfig::default()
        };
        assert_eq!(
            client_offer(&cfg),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=11"
        );
    }

    #[test]
    fn server_accepts_what_the_client_offers() {
        let cfg = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(11),
            ..DeflateConfig::default()
        };
        let offers = crate::handshake::parse_extensions(&[&client_offer(&cfg)]).unwrap();
        let (server_params, header) = negotiate_server(&offers, &DeflateConfig::default()).unwrap();
        let response = crate::handshake::parse_extensions(&[&header]).unwrap();
        let client_params = accept_response(&response[0], &cfg).unwrap();
        assert_eq!(client_params, server_params);
        assert_eq!(
            server_params,
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: Some(10),
                client_max_window_bits: Some(11),
            }
        );
    }

    fn accept(
        params: &[(&str, Option<&str>)],
        cfg: &DeflateConfig,
    ) -> Result<DeflateParams, DeflateError> {
        accept_response(&ext(params), cfg)
    }

    #[test]
    fn client_accepts_plain_response() {
        assert_eq!(
            accept(&[], &DeflateConfig::default()),
            Ok(DeflateParams::default())
        );
    }

    #[test]
    fn client_rejects_other_extension() {
        let response = Extension {
            name: "x-foo".to_owned(),
            params: vec![],
        };
        assert!(matches!(
            accept_response(&response, &DeflateConfig::default()),
            Err(DeflateError::Unsupported(_))
        ));
    }

    #[test]
    fn client_accepts_unrequested_no_context_takeover() {
        let params = accept(
            &[
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
            ],
            &DeflateConfig::default(),
        )
        .unwrap();
        assert!(params.server_no_context_takeover && params.client_no_context_takeover);
    }

    #[test]
    fn client_keeps_its_own_no_context_takeover_when_not_echoed() {
        let cfg = DeflateConfig {
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        assert!(accept(&[], &cfg).unwrap().client_no_context_takeover);
    }

    #[test]
    fn client_requires_requested_server_no_context_takeover() {
        let cfg = DeflateConfig {
            server_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        assert!(matches!(
            accept(&[], &cfg),
            Err(DeflateError::Unsupported(_))
        ));
        assert!(accept(&[("server_no_context_takeover", None)], &cfg).is_ok());
    }

    #[test]
    fn client_accepts_unrequested_server_max_window_bits() {
        let params = accept(
            &[("server_max_window_bits", Some("9"))],
            &DeflateConfig::default(),
        )
        .unwrap();
        assert_eq!(params.server_max_window_bits, Some(9));
    }

    #[test]
    fn client_requires_requested_server_max_window_bits() {
        let cfg = DeflateConfig {
            server_max_window_bits: Some(10),
            ..DeflateConfig::default()
        };
        assert!(matches!(
            accept(&[], &cfg),
            Err(DeflateError::Unsupported(_))
        ));
        assert!(matches!(
            accept(&[("server_max_window_bits", Some("11"))], &cfg),
            Err(DeflateError::Unsupported(_))
        ));
        assert_eq!(
            accept(&[("server_max_window_bits", Some("10"))], &cfg)
                .unwrap()
                .server_max_window_bits,
            Some(10)
        );
        assert_eq!(
            accept(&[("server_max_window_bits", Some("8"))], &cfg)
                .unwrap()
                .server_max_window_bits,
            Some(8)
        );
    }

    #[test]
    fn client_accepts_client_max_window_bits_with_value() {
        let params = accept(
            &[("client_max_window_bits", Some("8"))],
            &DeflateConfig::default(),
        )
        .unwrap();
        assert_eq!(params.client_max_window_bits, Some(8));
    }

    #[test]
    fn client_rejects_client_max_window_bits_without_value() {
        assert_eq!(
            accept(
                &[("client_max_window_bits", None)],
                &DeflateConfig::default()
            ),
            Err(DeflateError::MissingParameterValue(
                "client_max_window_bits".to_owned()
            ))
        );
    }

    #[test]
    fn client_rejects_client_max_window_bits_above_its_offer() {
        let cfg = DeflateConfig {
            client_max_window_bits: Some(10),
            ..DeflateConfig::default()
        };
        assert!(matches!(
            accept(&[("client_max_window_bits", Some("12"))], &cfg),
            Err(DeflateError::Unsupported(_))
        ));
        assert_eq!(
            accept(&[("client_max_window_bits", Some("9"))], &cfg)
                .unwrap()
                .client_max_window_bits,
            Some(9)
        );
        // Without an answer, the client keeps to its own cap.
        assert_eq!(accept(&[], &cfg).unwrap().client_max_window_bits, Some(10));
    }

    #[test]
    fn client_rejects_malformed_responses() {
        let cfg = DeflateConfig::default();
        assert_eq!(
            accept(&[("mux", None)], &cfg),
            Err(DeflateError::UnknownParameter("mux".to_owned()))
        );
        assert_eq!(
            accept(
                &[
                    ("server_no_context_takeover", None),
                    ("server_no_context_takeover", None)
                ],
                &cfg
            ),
            Err(DeflateError::DuplicateParameter(
                "server_no_context_takeover".to_owned()
            ))
        );
        assert_eq!(
            accept(&[("server_max_window_bits", Some("16"))], &cfg),
            Err(DeflateError::InvalidParameterValue {
                name: "server_max_window_bits".to_owned(),
                value: "16".to_owned()
            })
        );
        assert_eq!(
            accept(&[("client_no_context_takeover", Some("yes"))], &cfg),
            Err(DeflateError::InvalidParameterValue {
                name: "client_no_context_takeover".to_owned(),
                value: "yes".to_owned()
            })
        );
        assert!(accept(&[("server_max_window_bits", None)], &cfg).is_err());
    }

    #[test]
    fn error_messages_are_lowercase_without_period() {
        let errors = [
            DeflateError::TooBig { limit: 1 },
            DeflateError::Corrupt("invalid block type".to_owned()),
            DeflateError::DuplicateParameter("x".to_owned()),
            DeflateError::UnknownParameter("x".to_owned()),
            DeflateError::MissingParameterValue("x".to_owned()),
        ];
        for error in errors {
            let message = error.to_string();
            assert!(
                message.starts_with(|c: char| c.is_ascii_lowercase()),
                "{message}"
            );
            assert!(!message.ends_with('.'), "{message}");
        }
    }

    // Properties.

    fn arb_params() -> impl Strategy<Value = DeflateParams> {
        (
            any::<bool>(),
            any::<bool>(),
            prop::option::of(8u8..=15),
            prop::option::of(8u8..=15),
        )
            .prop_map(
                |(
                    server_no_context_takeover,
                    client_no_context_takeover,
                    server_max_window_bits,
                    client_max_window_bits,
                )| {
                    DeflateParams {
                        server_no_context_takeover,
                        client_no_context_takeover,
                        server_max_window_bits,
                        client_max_window_bits,
                    }
                },
            )
    }

    /// Split `data` at the given fractions (in thousandths).
    fn split<'a>(data: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|cut| data.len() * usize::from(*cut) / 1000)
            .collect();
        points.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for point in points {
            pieces.push(&data[start..point]);
            start = point;
        }
        pieces.push(&data[start..]);
        pieces
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn compressed_messages_round_trip_over_any_fragmentation(
            params in arb_params(),
            level in 0u32..=9,
            messages in prop::collection::vec(
                (
                    prop_oneof![
                        prop::collection::vec(any::<u8>(), 0..2000),
                        prop::collection::vec(prop::sample::select(b"ab ".to_vec()), 0..5000),
                    ],
                    prop::collection::vec(0u16..=1000, 0..4),
                    prop::collection::vec(0u16..=1000, 0..4),
                ),
                1..5,
            ),
        ) {
            for (sender, receiver) in [(Role::Server, Role::Client), (Role::Client, Role::Server)] {
                let mut compressor = Compressor::new(&params, sender, level);
                let mut decompressor = Decompressor::new(&params, receiver);
                for (data, send_cuts, receive_cuts) in &messages {
                    // Compress fragment by fragment, then feed the concatenated
                    // payload in arbitrary chunks.
                    let fragments = split(data, send_cuts);
                    let mut payload = Vec::new();
                    for (i, fragment) in fragments.iter().enumerate() {
                        compressor.compress(fragment, i + 1 == fragments.len(), &mut payload).unwrap();
                    }
                    let mut out = Vec::new();
                    for chunk in split(&payload, receive_cuts) {
                        decompressor.decompress(chunk, &mut out, data.len()).unwrap();
                    }
                    decompressor.finish(&mut out, data.len()).unwrap();
                    prop_assert_eq!(&out, data);
                }
            }
        }

        #[test]
        fn decompressor_never_panics_or_exceeds_its_limit(
            payload in prop::collection::vec(any::<u8>(), 0..512),
            limit in 0usize..4096,
        ) {
            let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Server);
            let mut out = Vec::new();
            let _ = decompressor
                .decompress(&payload, &mut out, limit)
                .and_then(|()| decompressor.finish(&mut out, limit));
            prop_assert!(out.len() <= limit);
            prop_assert!(out.capacity() <= limit);
        }
    }
}
