// SPDX-License-Identifier: MIT
//! Per-message compression and decompression over raw DEFLATE streams
//! (RFC 7692 section 7.2), with the parameters both sides agreed on.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush, Status};

use super::{CompressorSettings, DeflateError, DeflateParams, DEFAULT_WINDOW_BITS};
use crate::frame::Role;
use crate::inflate::FastInflater;

/// The four bytes that end every sync-flushed DEFLATE stream (an empty stored
/// block), stripped by the sender and put back by the receiver (section 7.2).
pub(super) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Largest output step of one inflate call. Output grows geometrically up to
/// the caller's limit, never past it.
const MAX_STEP: usize = 64 * 1024;

/// Smallest output step of one inflate call.
const MIN_STEP: usize = 1024;

/// Largest compressed message [`Decompressor::decompress_message`] gives to
/// the one-shot decoder. Past a few KiB it is no faster than zlib-rs (about
/// even at 2.7 KiB for 16 KiB of JSON, 8% slower at 10 KiB for 64 KiB).
const FAST_MAX_INPUT: usize = 4096;

/// Compressor states (zlib-rs `Deflate`) allocated now, in the whole process.
static LIVE_COMPRESSORS: AtomicUsize = AtomicUsize::new(0);
/// Decompressor states (zlib-rs `Inflate` or the one-shot decoder) allocated now.
static LIVE_DECOMPRESSORS: AtomicUsize = AtomicUsize::new(0);

/// How many compression states are allocated right now, process-wide:
/// `(compressors, decompressors)`. For tests and memory accounting: a closed
/// connection must bring both back down, without waiting for anything.
pub fn live_states() -> (usize, usize) {
    (
        LIVE_COMPRESSORS.load(Ordering::Relaxed),
        LIVE_DECOMPRESSORS.load(Ordering::Relaxed),
    )
}

/// A compression state counted in one of the counters above while it lives.
struct Counted<T> {
    value: T,
    counter: &'static AtomicUsize,
}

impl<T> Counted<T> {
    fn new(value: T, counter: &'static AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self { value, counter }
    }
}

impl<T> Counted<T> {
    /// The state itself, no longer counted (it goes back to the spares).
    fn into_inner(self) -> T {
        let this = std::mem::ManuallyDrop::new(self);
        this.counter.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: `this` is never dropped, so `value` is moved out exactly once.
        unsafe { std::ptr::read(&raw const this.value) }
    }
}

/// The settings a spare compressor must have been made with to be reused.
type DeflateKey = (i32, i32, i32);

fn deflate_key(config: &zlib_rs::DeflateConfig) -> DeflateKey {
    (config.level, config.window_bits, config.mem_level)
}

/// Clean states released between messages of connections without context
/// takeover, one of each kind per thread, for the next message of any such
/// connection. Reusing them instead of freeing costs no allocation per message,
/// and avoids the heap fragmentation of freeing and reallocating ~150 KiB blocks
/// between long-lived small allocations (measured: up to 150 KiB per idle
/// connection lost to it at some window sizes). Not counted as live.
#[derive(Default)]
struct Spares {
    deflate: Option<(DeflateKey, Deflate)>,
    inflate: Option<Inflate>,
    fast: Option<FastInflater>,
}

thread_local! {
    static SPARES: RefCell<Spares> = RefCell::new(Spares::default());
}

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<T> Deref for Counted<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Counted<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
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
    inner: Option<Counted<Deflate>>,
    config: zlib_rs::DeflateConfig,
    /// No context is kept between messages: our side agreed to no context
    /// takeover, or chose to keep none ([`CompressorSettings::keep_context`]).
    no_context_takeover: bool,
    /// A message was started and not finished (its context is in `inner`).
    mid_message: bool,
    /// Something was compressed since the last [`Compressor::release_unused`].
    used: bool,
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
        let no_context_takeover = no_context_takeover || !settings.keep_context;
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
            mid_message: false,
            used: false,
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
            .get_or_insert_with(|| Counted::new(new_deflate(config), &LIVE_COMPRESSORS));
        self.mid_message = !fin;
        self.used = true;
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
        self.mid_message = false;
    }

    /// Free the compressor's memory if no state needs keeping: between
    /// messages, when our side agreed to no context takeover (the context is
    /// reset after every message anyway). The state becomes the thread's spare
    /// for the next message of any such connection. Returns whether nothing is
    /// allocated.
    pub fn release_idle(&mut self) -> bool {
        if self.no_context_takeover && !self.mid_message {
            if let Some(inner) = self.inner.take() {
                // Reset after the message's last fragment: clean for anyone.
                let key = deflate_key(&self.config);
                let inner = inner.into_inner();
                SPARES.with_borrow_mut(|spares| {
                    if spares.deflate.is_none() {
                        spares.deflate = Some((key, inner));
                    }
                });
            }
        }
        self.inner.is_none()
    }

    /// Free the compressor's memory if it compressed nothing since the last
    /// call, whatever the context takeover: called periodically by the I/O
    /// layer, it frees the state of a connection idle for one to two periods.
    /// Returns whether it freed the state.
    ///
    /// Always safe for the peer (see [`Compressor::release`]): the next
    /// message starts from an empty window. Never in the middle of a
    /// fragmented message, whose later fragments need the context. The state
    /// is reset and becomes the thread's spare if it has none, so that the
    /// next connection to compress takes it without allocating.
    pub fn release_unused(&mut self) -> bool {
        if std::mem::take(&mut self.used) || self.mid_message {
            return false;
        }
        let Some(inner) = self.inner.take() else {
            return false;
        };
        let key = deflate_key(&self.config);
        let mut inner = inner.into_inner();
        SPARES.with_borrow_mut(|spares| {
            if spares.deflate.is_none() {
                inner.reset();
                spares.deflate = Some((key, inner));
            }
        });
        true
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
    inner: Option<Counted<Inflate>>,
    /// The one-shot decoder of [`Decompressor::decompress_message`], allocated
    /// on its first use.
    fast: Option<Counted<FastInflater>>,
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
            let fast = self.fast.get_or_insert_with(|| {
                let spare = SPARES.with_borrow_mut(|spares| spares.fast.take());
                Counted::new(spare.unwrap_or_default(), &LIVE_DECOMPRESSORS)
            });
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
    /// it was freed; the next compressed message allocates it again (the
    /// thread's spare state, if another connection left one).
    pub fn release(&mut self) -> bool {
        if self.no_context_takeover {
            let inner = self.inner.take().map(|mut inner| {
                // Clean for the next message of any connection.
                inner.reset(false);
                inner.into_inner()
            });
            let fast = self.fast.take().map(Counted::into_inner);
            SPARES.with_borrow_mut(|spares| {
                if spares.inflate.is_none() {
                    spares.inflate = inner;
                }
                if spares.fast.is_none() {
                    spares.fast = fast;
                }
            });
            self.stream_ended = false;
            self.fast_done = false;
        }
        self.inner.is_none() && self.fast.is_none()
    }

    /// Free the decompressor's memory whatever the context: the connection is
    /// over and will never receive another message.
    pub fn release_all(&mut self) {
        self.inner = None;
        self.fast = None;
        self.stream_ended = false;
        self.fast_done = false;
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
        let inner = self.inner.get_or_insert_with(|| {
            let spare = SPARES.with_borrow_mut(|spares| spares.inflate.take());
            let inflate = spare.unwrap_or_else(|| Inflate::new(false, DEFAULT_WINDOW_BITS));
            Counted::new(inflate, &LIVE_DECOMPRESSORS)
        });
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

/// A compressor with `config`: the thread's spare if it has one made alike.
fn new_deflate(config: zlib_rs::DeflateConfig) -> Deflate {
    let key = deflate_key(&config);
    SPARES
        .with_borrow_mut(|spares| match spares.deflate.take() {
            Some((k, deflate)) if k == key => Some(deflate),
            other => {
                spares.deflate = other;
                None
            }
        })
        .unwrap_or_else(|| Deflate::new_with_config(config))
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
