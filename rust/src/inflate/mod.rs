// SPDX-License-Identifier: MIT
//! A one-shot decoder for small, complete raw DEFLATE messages (RFC 1951).
//!
//! [`FastInflater::inflate`] decodes a whole permessage-deflate message (its
//! `00 00 ff ff` tail appended) in one call, with Huffman tables that are cheap
//! to build: a 10-bit root table with sub-tables for literal/length codes and
//! an 8-bit root for distance codes. It is a fast path only: it accepts the
//! streams it is sure zlib would decode without error and returns
//! [`Unhandled`] for anything else (invalid, incomplete or over-subscribed
//! codes, back-references before the start of the message, output past the
//! limit, truncated input, ...). The caller then decodes the same message with
//! zlib-rs from a clean state, so errors and limits behave exactly as before.
//!
//! The output for an accepted stream is the one zlib produces: every decoded
//! symbol is checked the way zlib checks it.
//!
//! `tables` builds the Huffman decoding tables, `decode` reads the bit stream
//! (block headers, stored blocks, and the hot loop over Huffman-coded
//! symbols); this file drives them over a whole message.

mod decode;
mod tables;

use decode::{decode_block, grow, read_dynamic_header, stored_block, Bits};
use tables::{fixed_tables, Code, Codes, FixedTables, DIST_SIZE, LITLEN_SIZE};

/// The stream is not one this decoder accepts; decode it with zlib-rs instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unhandled;

type Result<T> = std::result::Result<T, Unhandled>;

/// A reusable one-shot decoder: its tables.
pub struct FastInflater {
    litlen: Box<[u32; LITLEN_SIZE]>,
    dist: Box<[u32; DIST_SIZE]>,
    codes: Box<Codes>,
}

/// The fixed-code tables, shared by every decoder.
static FIXED: std::sync::OnceLock<Option<FixedTables>> = std::sync::OnceLock::new();

impl std::fmt::Debug for FastInflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastInflater").finish_non_exhaustive()
    }
}

impl Default for FastInflater {
    fn default() -> Self {
        Self::new()
    }
}

/// Which tables a block decodes with.
#[derive(Clone, Copy)]
enum Tables {
    Dynamic,
    Fixed,
}

impl FastInflater {
    /// A decoder with its tables allocated (about 12 KiB).
    pub fn new() -> Self {
        Self {
            litlen: Box::new([0; LITLEN_SIZE]),
            dist: Box::new([0; DIST_SIZE]),
            codes: Box::new(Codes {
                lengths: Code::new(),
                litlen: Code::new(),
                dist: Code::new(),
            }),
        }
    }

    /// Decode the raw DEFLATE message `data` followed by `tail` (the
    /// `00 00 ff ff` of RFC 7692), appending its output to `out`, which may
    /// not grow past `limit` bytes (nor its capacity, unless it was larger).
    ///
    /// On [`Unhandled`], `out` is left as it was on entry (same length and
    /// capacity) and the message must be decoded by another inflater.
    pub fn inflate(
        &mut self,
        data: &[u8],
        tail: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<()> {
        let start = out.len();
        let capacity = out.capacity();
        let result = self.run(data, tail, out, start, limit);
        match result {
            Ok(len) => {
                out.truncate(len);
                Ok(())
            }
            Err(Unhandled) => {
                // Leave `out` as it came, capacity included: zlib-rs' error
                // message for some corrupt streams depends on the size of the
                // output buffers it is given.
                out.truncate(start);
                if out.capacity() != capacity {
                    out.shrink_to(capacity);
                }
                Err(Unhandled)
            }
        }
    }

    fn run(
        &mut self,
        data: &[u8],
        tail: &[u8],
        out: &mut Vec<u8>,
        start: usize,
        limit: usize,
    ) -> Result<usize> {
        let Self {
            litlen,
            dist,
            codes,
        } = self;
        let end = data.len() + tail.len();
        let mut bits = Bits {
            data,
            tail,
            pos: 0,
            buf: 0,
            count: 0,
        };
        let end_bits = end * 8;
        // The output is written in place: `out` is extended with zeros (never
        // past `limit`) and truncated to what was produced at the end.
        let first = (end * 4).clamp(1024, 64 * 1024);
        grow(out, start + first, limit);
        let mut op = start;
        loop {
            bits.refill();
            let header = bits.take(3);
            let last = header & 1 != 0;
            let tables = match header >> 1 {
                0 => {
                    op = stored_block(&mut bits, end, out, start, op, limit)?;
                    None
                }
                1 => Some(Tables::Fixed),
                2 => {
                    read_dynamic_header(&mut bits, codes, litlen, dist)?;
                    Some(Tables::Dynamic)
                }
                _ => return Err(Unhandled),
            };
            if let Some(tables) = tables {
                let (l, d): (&[u32; LITLEN_SIZE], &[u32; DIST_SIZE]) = match tables {
                    Tables::Dynamic => (litlen, dist),
                    Tables::Fixed => match FIXED.get_or_init(|| fixed_tables().ok()) {
                        Some((l, d)) => (l, d),
                        None => return Err(Unhandled),
                    },
                };
                op = decode_block(&mut bits, end_bits, l, d, out, start, op, limit)?;
            }
            let consumed = bits.consumed();
            if consumed > end_bits {
                return Err(Unhandled);
            }
            if last || consumed == end_bits {
                return Ok(op);
            }
        }
    }
}

#[cfg(test)]
mod tests;
