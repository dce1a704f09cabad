// SPDX-License-Identifier: MIT
//! Incremental UTF-8 validation across fragments and reads.
//!
//! `simdutf8::compat` reports where validation stopped and whether the input ended
//! inside a sequence (`error_len() == None`); only that unfinished tail, at most
//! three bytes, is carried to the next call. Invalid bytes are reported as soon as
//! they arrive, even when the message has more fragments to come.

use simdutf8::compat::from_utf8;

/// Invalid UTF-8 at byte `offset` of the stream (the start of the bad sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid utf-8 at byte {offset}")]
pub struct Utf8Error {
    /// Offset from the start of the stream of the first byte of the invalid sequence.
    pub offset: usize,
}

/// Validates one stream (a text message or a close reason) fed in arbitrary pieces.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: usize,
    consumed: usize,
}

/// Length of the sequence that `lead` starts (1 for invalid leads, which fail anyway).
#[inline]
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    }
}

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget everything: the next byte starts a new stream.
    pub fn reset(&mut self) {
        self.pending_len = 0;
        self.consumed = 0;
    }

    /// Bytes of the stream seen so far.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// Validate the next piece of the stream.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), Utf8Error> {
        self.feed_report_ascii(data).map(|_| ())
    }

    /// Take `n` bytes that the caller already knows are ASCII (it saw every byte,
    /// e.g. while unmasking) without reading them again. Returns false, taking
    /// nothing, when a sequence is still open: then the bytes must go to `feed`.
    #[inline]
    pub fn skip_ascii(&mut self, n: usize) -> bool {
        if self.pending_len > 0 {
            return false;
        }
        self.consumed += n;
        true
    }

    /// [`feed`](Self::feed), also telling whether the piece was all ASCII with no
    /// sequence open before it (false when unsure: a caller only uses `true`).
    pub fn feed_report_ascii(&mut self, mut data: &[u8]) -> Result<bool, Utf8Error> {
        let start = self.consumed;
        self.consumed += data.len();
        let mut base = start;
        if self.pending_len > 0 {
            // Finish the sequence left open by the previous piece.
            let need = sequence_len(self.pending[0]) - self.pending_len;
            let take = need.min(data.len());
            let mut tmp = [0u8; 4];
            tmp[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            tmp[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            let len = self.pending_len + take;
            let seq_start = start - self.pending_len;
            match from_utf8(&tmp[..len]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_none() => {
                    self.pending = tmp;
                    self.pending_len = len;
                    return Ok(false);
                }
                Err(_) => return Err(Utf8Error { offset: seq_start }),
            }
            data = &data[take..];
            base += take;
        }
        // ASCII is the common case; checking it first skips simdutf8's setup.
        if data.is_ascii() {
            return Ok(base == start);
        }
        match from_utf8(data) {
            Ok(_) => Ok(false),
            Err(e) => {
                let valid = e.valid_up_to();
                if e.error_len().is_none() {
                    let tail = &data[valid..];
                    self.pending[..tail.len()].copy_from_slice(tail);
                    self.pending_len = tail.len();
                    Ok(false)
                } else {
                    Err(Utf8Error {
                        offset: base + valid,
                    })
                }
            }
        }
    }

    /// End of the stream: an unfinished sequence is an error.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let result = if self.pending_len > 0 {
            Err(Utf8Error {
                offset: self.consumed - self.pending_len,
            })
        } else {
            Ok(())
        };
        self.reset();
        result
    }
}

/// Validate a complete buffer; `Err` carries the offset of the first bad sequence.
pub fn validate(data: &[u8]) -> Result<(), Utf8Error> {
    let mut v = Utf8Validator::new();
    v.feed(data)?;
    v.finish()
}

/// What a `str` of some valid UTF-8 needs: its length in code points and the
/// largest code point, rounded up to its storage class (CPython's PEP 393 kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextShape {
    /// Number of code points.
    pub chars: usize,
    /// 0x7f (ASCII), 0xff (latin-1), 0xffff (BMP) or 0x10ffff (astral).
    pub max_char: u32,
}

/// The [`TextShape`] of `data`, which must be valid UTF-8 (what the validator
/// passed): one branch-free pass that the compiler vectorises.
///
/// The largest byte alone decides the class: a lead of at most 0xc3 only starts
/// U+0080..U+00FF, 0xc4..0xef only U+0100..U+FFFF (never below), 0xf0 and up only
/// astral code points. So the class is exact, as a canonical `str` requires.
pub fn shape(data: &[u8]) -> TextShape {
    // ASCII, the common case, needs neither count: the word-at-a-time check is cheaper.
    if data.is_ascii() {
        return TextShape {
            chars: data.len(),
            max_char: 0x7f,
        };
    }
    let mut continuation = 0usize;
    let mut max = 0u8;
    // Chunks of 64 keep the per-chunk count in a u8, so the loop stays in vectors.
    let mut chunks = data.chunks_exact(64);
    for chunk in &mut chunks {
        let mut n = 0u8;
        let mut m = 0u8;
        for &b in chunk {
            n += u8::from((b & 0xc0) == 0x80);
            m = m.max(b);
        }
        continuation += usize::from(n);
        max = max.max(m);
    }
    for &b in chunks.remainder() {
        continuation += usize::from((b & 0xc0) == 0x80);
        max = max.max(b);
    }
    let max_char = match max {
        0..=0x7f => 0x7f,
        0x80..=0xc3 => 0xff,
        0xc4..=0xef => 0xffff,
        _ => 0x10_ffff,
    };
    TextShape {
        chars: data.len() - continuation,
        max_char,
    }
}

/// A code unit of one CPython string kind: `u8` (latin-1), `u16` (UCS-2), `u32` (UCS-4).
pub trait CodeUnit: Copy {
    /// The code point as this unit; the caller's [`shape`] ensures that it fits.
    fn from_code_point(c: u32) -> Self;
}

impl CodeUnit for u8 {
    #[inline]
    #[allow(clippy::cast_possible_truncation)] // shape() chose this kind: c <= U+00FF
    fn from_code_point(c: u32) -> Self {
        c as u8
    }
}

impl CodeUnit for u16 {
    #[inline]
    #[allow(clippy::cast_possible_truncation)] // shape() chose this kind: c <= U+FFFF
    fn from_code_point(c: u32) -> Self {
        c as u16
    }
}

impl CodeUnit for u32 {
    #[inline]
    fn from_code_point(c: u32) -> Self {
        c
    }
}

/// Decode `text` into `out`, one unit per code point; returns the units written
/// (at most `out.len()`: a short `out` truncates, it never overflows).
///
/// `&str` carries the validator's verdict, so each sequence is decoded from its lead
/// byte's length alone, with none of the checks a decoder of unknown bytes makes.
pub fn decode_into<T: CodeUnit>(text: &str, out: &mut [T]) -> usize {
    let bytes = text.as_bytes();
    let cont = |at: usize| u32::from(bytes[at] & 0x3f);
    let mut at = 0;
    let mut written = 0;
    for unit in out.iter_mut() {
        let Some(&lead) = bytes.get(at) else { break };
        let (c, len) = match lead {
            0..=0x7f => (u32::from(lead), 1),
            0x80..=0xdf => ((u32::from(lead & 0x1f) << 6) | cont(at + 1), 2),
            0xe0..=0xef => (
                (u32::from(lead & 0x0f) << 12) | (cont(at + 1) << 6) | cont(at + 2),
                3,
            ),
            _ => (
                (u32::from(lead & 0x07) << 18)
                    | (cont(at + 1) << 12)
                    | (cont(at + 2) << 6)
                    | cont(at + 3),
                4,
            ),
        };
        *unit = T::from_code_point(c);
        at += len;
        written += 1;
    }
    written
}

#[cfg(test)]
#[path = "utf8_tests.rs"]
mod tests;
