// SPDX-License-Identifier: MIT
//! Reading a DEFLATE stream: the bit reader, block headers, stored blocks,
//! and the hot loop that decodes Huffman-coded symbols into the output.

use super::tables::{
    build_table, CodeKind, Codes, CODE_LENGTH_ORDER, DIST_ROOT, DIST_SIZE, KIND_END, KIND_LENGTH,
    KIND_LITERAL, KIND_MASK, KIND_SUBTABLE, LITLEN_ROOT, LITLEN_SIZE,
};
use super::{Result, Unhandled};

/// How far past the end of the input (in bytes) the bit reader may load
/// zeros before the decoder gives up on a truncated stream.
const PADDING: usize = 8;

/// Bytes of slack kept after the output position for wide match copies.
pub(super) const SLACK: usize = 16;

/// A little-endian bit reader over `data` followed by `tail`, then zeros.
pub(super) struct Bits<'a> {
    pub(super) data: &'a [u8],
    pub(super) tail: &'a [u8],
    /// The next byte to load into `buf`.
    pub(super) pos: usize,
    pub(super) buf: u64,
    /// Valid bits in `buf`.
    pub(super) count: u32,
}

impl Bits<'_> {
    /// Make at least 56 bits available. Past the end of the input, zeros come
    /// in (the caller checks for over-reading with [`Bits::consumed`]).
    #[inline(always)]
    pub(super) fn refill(&mut self) {
        let word = match self.data.get(self.pos..self.pos + 8) {
            Some(bytes) => u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])),
            None => self.slow_word(self.pos),
        };
        self.buf |= word << self.count;
        self.pos += ((63 - self.count) >> 3) as usize;
        self.count |= 56;
    }

    /// Byte `at` of the stream: `data`, then `tail`, then zeros.
    fn byte(&self, at: usize) -> u8 {
        match self.data.get(at) {
            Some(&byte) => byte,
            None => self.tail.get(at - self.data.len()).copied().unwrap_or(0),
        }
    }

    /// The 8 bytes from `at` on, little-endian, near or past the end of `data`.
    #[inline(never)]
    fn slow_word(&self, at: usize) -> u64 {
        let mut word = 0;
        for k in (0..8).rev() {
            word = (word << 8) | u64::from(self.byte(at + k));
        }
        word
    }

    #[inline(always)]
    fn peek(&self, n: u32) -> u32 {
        (self.buf & ((1u64 << n) - 1)) as u32
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.buf >>= n;
        self.count -= n;
    }

    /// Take `n` bits (at most 32; the caller made them available).
    #[inline(always)]
    pub(super) fn take(&mut self, n: u32) -> u32 {
        let value = self.peek(n);
        self.consume(n);
        value
    }

    /// Bits consumed since the start of the input.
    pub(super) fn consumed(&self) -> usize {
        self.pos * 8 - self.count as usize
    }

    /// Skip to the next byte boundary and return its offset, emptying the
    /// bit buffer (for stored blocks).
    fn align(&mut self) -> usize {
        let byte = self.consumed().div_ceil(8);
        self.pos = byte;
        self.buf = 0;
        self.count = 0;
        byte
    }
}

/// Extend `out` with zeros to `len` bytes, capped at `limit`, without its
/// capacity growing past `limit` (unless it already was).
pub(super) fn grow(out: &mut Vec<u8>, len: usize, limit: usize) {
    let len = len.min(limit);
    if len <= out.len() {
        return;
    }
    if out.capacity() < len {
        let target = out.capacity().saturating_mul(2).max(len).min(limit);
        out.reserve_exact(target - out.len());
    }
    out.resize(len, 0);
}

/// Make room for `need` bytes at `op` plus [`SLACK`]; false if `limit` does
/// not allow `need` bytes (the slack is then not guaranteed either).
///
/// The zero-filled region grows geometrically with this message's own output
/// (from `start`), never with what `out` held before it: `out` may carry a
/// whole batch of earlier messages, and doubling *its* length zero-filled up to
/// `limit` bytes per message, so the cost of a small message grew with the
/// maximum message size.
#[inline(never)]
pub(super) fn make_room(
    out: &mut Vec<u8>,
    start: usize,
    op: usize,
    need: usize,
    limit: usize,
) -> bool {
    if op + need > limit {
        return false;
    }
    let produced = out.len().saturating_sub(start);
    let want = (op + need + SLACK).max(start + produced * 2);
    grow(out, want, limit);
    true
}

pub(super) fn stored_block(
    bits: &mut Bits<'_>,
    end: usize,
    out: &mut Vec<u8>,
    start: usize,
    op: usize,
    limit: usize,
) -> Result<usize> {
    let at = bits.align();
    if at + 4 > end {
        return Err(Unhandled);
    }
    let len = usize::from(u16::from_le_bytes([bits.byte(at), bits.byte(at + 1)]));
    let nlen = u16::from_le_bytes([bits.byte(at + 2), bits.byte(at + 3)]);
    if len != usize::from(!nlen) || at + 4 + len > end {
        return Err(Unhandled);
    }
    if op + len > out.len() && !make_room(out, start, op, len, limit) {
        return Err(Unhandled);
    }
    let from = at + 4;
    match bits.data.get(from..from + len) {
        Some(bytes) => out[op..op + len].copy_from_slice(bytes),
        None => {
            for (i, slot) in out[op..op + len].iter_mut().enumerate() {
                *slot = bits.byte(from + i);
            }
        }
    }
    bits.pos = from + len;
    Ok(op + len)
}

/// Read a dynamic block's code lengths and build its tables.
#[inline(never)]
pub(super) fn read_dynamic_header(
    bits: &mut Bits<'_>,
    codes: &mut Codes,
    litlen: &mut [u32; LITLEN_SIZE],
    dist: &mut [u32; DIST_SIZE],
) -> Result<()> {
    bits.refill();
    let nlen = bits.take(5) as usize + 257;
    let ndist = bits.take(5) as usize + 1;
    let ncode = bits.take(4) as usize + 4;
    if nlen > 286 || ndist > 30 {
        return Err(Unhandled);
    }
    let mut code_lens = [0u8; 19];
    // 19 * 3 = 57 bits: refill halfway.
    for (i, &symbol) in CODE_LENGTH_ORDER[..ncode].iter().enumerate() {
        if i == 10 {
            bits.refill();
        }
        code_lens[symbol] = bits.take(3) as u8;
    }
    let mut table = [0u32; 128];
    codes.lengths.set_lens(&code_lens);
    build_table(&mut table, &codes.lengths, 7, CodeKind::CodeLengths)?;

    codes.litlen.clear();
    codes.dist.clear();
    let total = nlen + ndist;
    let mut i = 0;
    let mut previous = 0u8;
    let mut end_of_block = false;
    while i < total {
        bits.refill();
        let e = table[bits.peek(7) as usize];
        bits.consume(e & 0xFF);
        let symbol = (e >> 16) as u8;
        let (value, repeat) = match symbol {
            0..=15 => (symbol, 1),
            16 => {
                if i == 0 {
                    return Err(Unhandled);
                }
                (previous, 3 + bits.take(2) as usize)
            }
            17 => (0, 3 + bits.take(3) as usize),
            _ => (0, 11 + bits.take(7) as usize),
        };
        if i + repeat > total {
            return Err(Unhandled);
        }
        if value != 0 {
            if i + repeat <= nlen {
                end_of_block |= i <= 256 && 256 < i + repeat;
                codes.litlen.push_run(value, i, repeat);
            } else if i >= nlen {
                codes.dist.push_run(value, i - nlen, repeat);
            } else {
                // A run across the two codes.
                end_of_block |= i <= 256;
                codes.litlen.push_run(value, i, nlen - i);
                codes.dist.push_run(value, 0, i + repeat - nlen);
            }
        }
        previous = value;
        i += repeat;
    }
    if !end_of_block {
        return Err(Unhandled);
    }
    build_table(
        &mut litlen[..],
        &codes.litlen,
        LITLEN_ROOT,
        CodeKind::Litlen,
    )?;
    build_table(&mut dist[..], &codes.dist, DIST_ROOT, CodeKind::Dist)?;
    Ok(())
}

/// Decode one Huffman block into `out` from `op`; returns the new position.
/// The hot loop runs over a slice; it comes back here when it needs room.
#[allow(clippy::too_many_arguments)]
pub(super) fn decode_block(
    bits: &mut Bits<'_>,
    end_bits: usize,
    litlen: &[u32; LITLEN_SIZE],
    dist: &[u32; DIST_SIZE],
    out: &mut Vec<u8>,
    start: usize,
    mut op: usize,
    limit: usize,
) -> Result<usize> {
    let end_pos = end_bits / 8 + PADDING;
    loop {
        match decode_symbols(bits, end_pos, litlen, dist, out, start, op) {
            Step::End(at) => return Ok(at),
            Step::Invalid => return Err(Unhandled),
            Step::Literal(at, byte) => {
                if !make_room(out, start, at, 1, limit) {
                    return Err(Unhandled);
                }
                out[at] = byte;
                op = at + 1;
            }
            Step::Match(at, distance, len) => {
                if !make_room(out, start, at, len, limit) {
                    return Err(Unhandled);
                }
                copy_match(out, at, distance, len);
                op = at + len;
            }
        }
    }
}

/// How [`decode_symbols`] stopped.
enum Step {
    /// End of block, at this output position.
    End(usize),
    /// Not handled.
    Invalid,
    /// A literal at this position needs room.
    Literal(usize, u8),
    /// A match (position, distance, length) needs room.
    Match(usize, usize, usize),
}

/// The value of a length or distance entry `e`: its base plus the extra bits
/// that follow the codeword in `saved` (the bit buffer before consuming).
#[inline(always)]
fn with_extra(e: u32, saved: u64) -> usize {
    let extra = (saved & ((1u64 << (e & 0xFF)) - 1)) >> ((e >> 8) & 0xF);
    (e >> 16) as usize + extra as usize
}

/// The hot loop: decode symbols into `out` from `op` while there is room.
///
/// The bit count is kept modulo 64 in the low bits of `count` only: whole
/// entries are subtracted from it (their low byte is the bits consumed), as
/// shifts use the low six bits of their amount.
#[inline(always)]
fn decode_symbols(
    bits: &mut Bits<'_>,
    end_pos: usize,
    litlen: &[u32; LITLEN_SIZE],
    dist: &[u32; DIST_SIZE],
    out: &mut [u8],
    start: usize,
    mut op: usize,
) -> Step {
    const LITLEN_MASK: u64 = (1 << LITLEN_ROOT) - 1;
    const DIST_MASK: u64 = (1 << DIST_ROOT) - 1;
    let data = bits.data;
    let mut pos = bits.pos;
    let mut buf = bits.buf;
    let mut count = bits.count;
    macro_rules! done {
        ($step:expr) => {{
            bits.pos = pos;
            bits.buf = buf;
            bits.count = count & 63;
            return $step;
        }};
    }
    // Refill to at least 56 bits.
    macro_rules! refill {
        () => {
            if let Some(bytes) = data.get(pos..pos + 8) {
                let bytes: [u8; 8] = bytes.try_into().unwrap_or([0; 8]);
                buf |= u64::from_le_bytes(bytes).wrapping_shl(count);
            } else if pos > end_pos {
                // Far past the end: the input was truncated.
                done!(Step::Invalid);
            } else {
                buf |= bits.slow_word(pos).wrapping_shl(count);
            }
            pos += 7 - ((count >> 3) & 7) as usize;
            count |= 56;
        };
    }
    refill!();
    let mut e = litlen[(buf & LITLEN_MASK) as usize];
    loop {
        if e & KIND_MASK == KIND_SUBTABLE {
            buf >>= LITLEN_ROOT;
            count = count.wrapping_sub(LITLEN_ROOT);
            let index = (e >> 16) as usize + (buf & ((1 << ((e >> 8) & 0xF)) - 1)) as usize;
            e = litlen[index & (LITLEN_SIZE - 1)];
        }
        let saved = buf;
        buf = buf.wrapping_shr(e);
        count = count.wrapping_sub(e);
        if e & KIND_MASK == KIND_LITERAL {
            if op >= out.len() {
                done!(Step::Literal(op, (e >> 16) as u8));
            }
            out[op] = (e >> 16) as u8;
            op += 1;
            // At least 56 - 15 bits are left: enough for the next root
            // lookup, loaded before the refill so that both overlap.
            e = litlen[(buf & LITLEN_MASK) as usize];
            refill!();
            continue;
        }
        if e & KIND_MASK != KIND_LENGTH {
            if e & KIND_MASK == KIND_END {
                done!(Step::End(op));
            }
            done!(Step::Invalid);
        }
        // At most 15 + 5 bits for the length, 15 + 13 for the distance: 48
        // bits, all available after the refill.
        let len = with_extra(e, saved);
        let mut d = dist[(buf & DIST_MASK) as usize];
        if d & KIND_MASK == KIND_SUBTABLE {
            buf >>= DIST_ROOT;
            count = count.wrapping_sub(DIST_ROOT);
            let index = (d >> 16) as usize + (buf & ((1 << ((d >> 8) & 0xF)) - 1)) as usize;
            d = dist[index & (DIST_SIZE - 1)];
        }
        if d & KIND_MASK != KIND_LITERAL {
            done!(Step::Invalid);
        }
        let saved = buf;
        buf = buf.wrapping_shr(d);
        count = count.wrapping_sub(d);
        let distance = with_extra(d, saved);
        if distance > op - start {
            done!(Step::Invalid);
        }
        if op + len + SLACK > out.len() {
            done!(Step::Match(op, distance, len));
        }
        copy_match(out, op, distance, len);
        op += len;
        refill!();
        e = litlen[(buf & LITLEN_MASK) as usize];
    }
}

/// Copy `len` bytes from `distance` back to `op` (the regions may overlap:
/// the copy repeats the last `distance` bytes). `out` has room for `len`
/// bytes at `op`, and for [`SLACK`] more unless it is at the limit.
#[inline(always)]
fn copy_match(out: &mut [u8], op: usize, distance: usize, len: usize) {
    let from = op - distance;
    if op + len + SLACK <= out.len() {
        // Wide copies that may write past `op + len` (later overwritten or
        // truncated away): each chunk reads only bytes already final.
        if distance >= 16 {
            let mut i = 0;
            while i < len {
                out.copy_within(from + i..from + i + 16, op + i);
                i += 16;
            }
            return;
        }
        if distance >= 8 {
            let mut i = 0;
            while i < len {
                out.copy_within(from + i..from + i + 8, op + i);
                i += 8;
            }
            return;
        }
        if distance == 1 {
            let byte = out[from];
            out[op..op + len].fill(byte);
            return;
        }
    }
    for i in 0..len {
        out[op + i] = out[from + i];
    }
}
