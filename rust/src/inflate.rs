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

/// The stream is not one this decoder accepts; decode it with zlib-rs instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unhandled;

type Result<T> = std::result::Result<T, Unhandled>;

/// Root bits of the literal/length table.
const LITLEN_ROOT: u32 = 10;
/// Root bits of the distance table.
const DIST_ROOT: u32 = 8;
/// Room for the root table and every sub-table. A complete code over 288
/// symbols needs at most 1332 entries with a 10-bit root (zlib's `enough`);
/// the builder refuses a code that would not fit, so these are only sizes.
const LITLEN_SIZE: usize = 2048;
/// 30 symbols, 8-bit root: far below this (the builder checks).
const DIST_SIZE: usize = 512;

/// How far past the end of the input (in bytes) the bit reader may load
/// zeros before the decoder gives up on a truncated stream.
const PADDING: usize = 8;

/// Bytes of slack kept after the output position for wide match copies.
const SLACK: usize = 16;

// Table entries: bits 0..8 the bits to consume (the codeword and, for lengths
// and distances, its extra bits), 8..12 the codeword's own length for lengths
// and distances (the sub-table bits of a pointer), 12..16 the kind, 16..32 the
// value (literal, length or distance base, or sub-table start).
const KIND_SHIFT: u32 = 12;
const KIND_MASK: u32 = 0xF << KIND_SHIFT;
/// A literal byte, or a distance (in the distance table).
const KIND_LITERAL: u32 = 0;
const KIND_LENGTH: u32 = 1 << KIND_SHIFT;
const KIND_END: u32 = 2 << KIND_SHIFT;
const KIND_SUBTABLE: u32 = 3 << KIND_SHIFT;
const KIND_INVALID: u32 = 4 << KIND_SHIFT;

/// An invalid entry: consuming no bits, it is only ever returned as an error.
const INVALID: u32 = KIND_INVALID;

const fn entry(kind: u32, value: u32, codeword: u32, bits: u32) -> u32 {
    (value << 16) | kind | (codeword << 8) | bits
}

/// Length base and extra bits for symbols 257..=285.
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Distance base and extra bits for symbols 0..=29.
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// Order of the code length code lengths in a dynamic block header.
const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Table entries of the literal/length symbols, less their code length
/// (added to bits 0..8 and 8..12 as the table is built): literal bytes, end
/// of block, lengths 257..=285 (with their extra bits in bits 0..8), and the
/// invalid 286 and 287 (fixed code only), as zlib has them.
static LITLEN_TEMPLATE: [u32; 288] = {
    let mut t = [INVALID; 288];
    let mut symbol = 0;
    while symbol < 256 {
        t[symbol] = entry(KIND_LITERAL, symbol as u32, 0, 0);
        symbol += 1;
    }
    t[256] = entry(KIND_END, 0, 0, 0);
    let mut i = 0;
    while i < 29 {
        t[257 + i] = entry(
            KIND_LENGTH,
            LENGTH_BASE[i] as u32,
            0,
            LENGTH_EXTRA[i] as u32,
        );
        i += 1;
    }
    t
};

/// Table entries of the distance symbols, as [`LITLEN_TEMPLATE`]: 30 and 31
/// (fixed code only) are invalid.
static DIST_TEMPLATE: [u32; 32] = {
    let mut t = [INVALID; 32];
    let mut i = 0;
    while i < 30 {
        t[i] = entry(KIND_LITERAL, DIST_BASE[i] as u32, 0, DIST_EXTRA[i] as u32);
        i += 1;
    }
    t
};

/// Table entries of the code length code's symbols.
static CODE_LENGTH_TEMPLATE: [u32; 19] = {
    let mut t = [0; 19];
    let mut i = 0;
    while i < 19 {
        t[i] = entry(KIND_LITERAL, i as u32, 0, 0);
        i += 1;
    }
    t
};

/// Which code a table is built for: they differ in what zlib accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CodeKind {
    /// The code length code: must be complete.
    CodeLengths,
    /// Literal/length codes.
    Litlen,
    /// Distance codes.
    Dist,
}

/// The symbols of a code, grouped by code length in increasing symbol order
/// (canonical order): filled while the code lengths are read, so that no
/// separate counting and sorting pass is needed.
struct Code<const N: usize> {
    count: [u16; 16],
    symbols: [[u16; N]; 16],
}

impl<const N: usize> Code<N> {
    fn new() -> Self {
        Self {
            count: [0; 16],
            symbols: [[0; N]; 16],
        }
    }

    fn clear(&mut self) {
        self.count = [0; 16];
    }

    /// Add `symbol` with a code of `len` bits (1..=15); symbols come in
    /// increasing order.
    #[inline(always)]
    fn push(&mut self, len: u8, symbol: usize) {
        self.push_run(len, symbol, 1);
    }

    /// Add the `n` symbols from `first` on, all with codes of `len` bits.
    #[inline(always)]
    fn push_run(&mut self, len: u8, first: usize, n: usize) {
        let len = usize::from(len & 15);
        let at = usize::from(self.count[len]);
        // Symbols are distinct and below N: the slots always exist.
        if let Some(slots) = self.symbols[len].get_mut(at..at + n) {
            for (i, slot) in slots.iter_mut().enumerate() {
                *slot = (first + i) as u16;
            }
        }
        self.count[len] += n as u16;
    }

    /// The code of `lens` (one length per symbol, 0 for unused).
    fn set_lens(&mut self, lens: &[u8]) {
        self.clear();
        for (symbol, &len) in lens.iter().enumerate() {
            if len != 0 {
                self.push(len, symbol);
            }
        }
    }
}

/// Build a decoding table for `code` with a `root`-bit root table, into
/// `table`.
///
/// Accepts complete codes, and (like zlib) a literal/length or distance code
/// made of a single 1-bit code, whose other code is then invalid. Refuses
/// everything else.
fn build_table<const N: usize>(
    table: &mut [u32],
    code: &Code<N>,
    root: u32,
    kind: CodeKind,
) -> Result<()> {
    let count = code.count;
    // Check the code: over-subscribed is always an error; incomplete only
    // passes for a single 1-bit code of a literal/length or distance code.
    let mut left: i32 = 1;
    for &n in &count[1..] {
        left = (left << 1) - i32::from(n);
        if left < 0 {
            return Err(Unhandled);
        }
    }
    let total: u16 = count[1..].iter().sum();
    if total == 0 {
        return Err(Unhandled);
    }
    if left > 0 {
        if kind == CodeKind::CodeLengths || !(total == 1 && count[1] == 1) {
            return Err(Unhandled);
        }
        // The other 1-bit code is invalid.
        table[..2].fill(INVALID);
    }
    let template: &[u32] = match kind {
        CodeKind::CodeLengths => &CODE_LENGTH_TEMPLATE,
        CodeKind::Litlen => &LITLEN_TEMPLATE,
        CodeKind::Dist => &DIST_TEMPLATE,
    };

    let root_size = 1usize << root;
    let root_mask = root_size as u32 - 1;
    let mut remaining = count;
    let mut canonical: u32 = 0;
    // The root table is filled by doubling: once every code up to `filled`
    // bits is in place, table[..1 << filled] is right for those codes, and
    // copying it onto the next half replicates them for one more bit.
    let mut filled: u32 = count[1..].iter().position(|&n| n != 0).unwrap_or(0) as u32 + 1;
    let mut next_free = root_size;
    let mut current_prefix = u32::MAX;
    let mut sub_start = 0usize;
    let mut sub_size = 0usize;
    for len in 1..16u32 {
        let n = usize::from(count[len as usize]);
        if len <= root {
            while filled < len {
                let half = 1usize << filled;
                table.copy_within(..half, half);
                filled += 1;
            }
            for &symbol in &code.symbols[len as usize][..n] {
                let reversed = canonical.reverse_bits() >> (32 - len);
                let value = template[usize::from(symbol) % template.len()] + len * 0x101;
                table[reversed as usize] = value;
                canonical += 1;
            }
            canonical <<= 1;
            continue;
        }
        if n != 0 {
            while filled < root {
                let half = 1usize << filled;
                table.copy_within(..half, half);
                filled += 1;
            }
        }
        let bits = len - root;
        for &symbol in &code.symbols[len as usize][..n] {
            let reversed = canonical.reverse_bits() >> (32 - len);
            let prefix = reversed & root_mask;
            if prefix != current_prefix {
                // A new sub-table: as wide as the codes under this prefix need.
                let mut sub_bits = len - root;
                let mut free_slots: i32 = 1 << sub_bits;
                loop {
                    free_slots -= i32::from(remaining[(root + sub_bits) as usize]);
                    if free_slots <= 0 || root + sub_bits >= 15 {
                        break;
                    }
                    sub_bits += 1;
                    free_slots <<= 1;
                }
                sub_start = next_free;
                sub_size = 1 << sub_bits;
                next_free += sub_size;
                if next_free > table.len() {
                    return Err(Unhandled);
                }
                table[prefix as usize] = entry(KIND_SUBTABLE, sub_start as u32, sub_bits, root);
                current_prefix = prefix;
            }
            let value = template[usize::from(symbol) % template.len()] + bits * 0x101;
            let mut index = (reversed >> root) as usize;
            while index < sub_size {
                table[sub_start + index] = value;
                index += 1 << bits;
            }
            remaining[len as usize] -= 1;
            canonical += 1;
        }
        canonical <<= 1;
    }
    while filled < root {
        let half = 1usize << filled;
        table.copy_within(..half, half);
        filled += 1;
    }
    Ok(())
}

/// A little-endian bit reader over `data` followed by `tail`, then zeros.
struct Bits<'a> {
    data: &'a [u8],
    tail: &'a [u8],
    /// The next byte to load into `buf`.
    pos: usize,
    buf: u64,
    /// Valid bits in `buf`.
    count: u32,
}

impl Bits<'_> {
    /// Make at least 56 bits available. Past the end of the input, zeros come
    /// in (the caller checks for over-reading with [`Bits::consumed`]).
    #[inline(always)]
    fn refill(&mut self) {
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
    fn take(&mut self, n: u32) -> u32 {
        let value = self.peek(n);
        self.consume(n);
        value
    }

    /// Bits consumed since the start of the input.
    fn consumed(&self) -> usize {
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

/// A reusable one-shot decoder: its tables.
pub struct FastInflater {
    litlen: Box<[u32; LITLEN_SIZE]>,
    dist: Box<[u32; DIST_SIZE]>,
    codes: Box<Codes>,
}

type FixedTables = (Box<[u32; LITLEN_SIZE]>, Box<[u32; DIST_SIZE]>);

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

/// Extend `out` with zeros to `len` bytes, capped at `limit`, without its
/// capacity growing past `limit` (unless it already was).
fn grow(out: &mut Vec<u8>, len: usize, limit: usize) {
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
fn make_room(out: &mut Vec<u8>, start: usize, op: usize, need: usize, limit: usize) -> bool {
    if op + need > limit {
        return false;
    }
    let produced = out.len().saturating_sub(start);
    let want = (op + need + SLACK).max(start + produced * 2);
    grow(out, want, limit);
    true
}

fn stored_block(
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

/// The fixed literal/length and distance tables (RFC 1951 3.2.6).
fn fixed_tables() -> Result<FixedTables> {
    let mut lens = [0u8; 288];
    lens[..144].fill(8);
    lens[144..256].fill(9);
    lens[256..280].fill(7);
    lens[280..].fill(8);
    let mut code = Code::<288>::new();
    code.set_lens(&lens);
    let mut litlen = Box::new([0; LITLEN_SIZE]);
    build_table(&mut litlen[..], &code, LITLEN_ROOT, CodeKind::Litlen)?;
    let mut code = Code::<32>::new();
    code.set_lens(&[5; 32]);
    let mut dist = Box::new([0; DIST_SIZE]);
    build_table(&mut dist[..], &code, DIST_ROOT, CodeKind::Dist)?;
    Ok((litlen, dist))
}

/// Read a dynamic block's code lengths and build its tables.
#[inline(never)]
fn read_dynamic_header(
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

/// The codes of a dynamic block, by code length.
struct Codes {
    lengths: Code<19>,
    litlen: Code<288>,
    dist: Code<32>,
}

/// Decode one Huffman block into `out` from `op`; returns the new position.
/// The hot loop runs over a slice; it comes back here when it needs room.
#[allow(clippy::too_many_arguments)]
fn decode_block(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::{Decompressor, DeflateError, DeflateParams};
    use crate::frame::Role;
    use proptest::prelude::*;
    use zlib_rs::{Deflate, DeflateFlush, Strategy as ZStrategy};

    const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

    /// Raw DEFLATE of `pieces`, each sync-flushed (so several blocks when
    /// there are several pieces), without the final `00 00 ff ff`.
    fn deflate(
        pieces: &[&[u8]],
        level: i32,
        bits: u8,
        mem_level: i32,
        strategy: ZStrategy,
    ) -> Vec<u8> {
        let mut deflate = Deflate::new_with_config(zlib_rs::DeflateConfig {
            level,
            window_bits: -i32::from(bits),
            mem_level,
            strategy,
            ..zlib_rs::DeflateConfig::default()
        });
        let mut out = Vec::new();
        for piece in pieces {
            let mut input = *piece;
            loop {
                let mut buffer = vec![0u8; input.len() * 2 + 1024];
                let before_in = deflate.total_in();
                let before_out = deflate.total_out();
                deflate
                    .compress(input, &mut buffer, DeflateFlush::SyncFlush)
                    .unwrap();
                let consumed = (deflate.total_in() - before_in) as usize;
                let produced = (deflate.total_out() - before_out) as usize;
                out.extend_from_slice(&buffer[..produced]);
                input = &input[consumed..];
                if input.is_empty() && produced < buffer.len() {
                    break;
                }
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - 4);
        }
        out
    }

    #[test]
    fn room_for_a_message_grows_with_the_message_not_with_the_batch_before_it() {
        // `out` already holds a batch of earlier messages; the next one is small.
        let start = 600 * 1024;
        let mut out = vec![7u8; start];
        assert!(make_room(&mut out, start, start, 100, usize::MAX));
        assert!(out.len() <= start + 100 + SLACK, "zero-filled {} bytes", out.len() - start);
        // Its own output still grows geometrically.
        let op = start + 10_000;
        out.resize(op, 0);
        assert!(make_room(&mut out, start, op, 1, usize::MAX));
        assert!(out.len() >= start + 20_000);
        assert!(out[..start].iter().all(|&b| b == 7));
    }

    fn decompressor() -> Decompressor {
        let params = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateParams::default()
        };
        Decompressor::new(&params, Role::Client)
    }

    /// The streaming zlib-rs path: output (after `prefix`) and result.
    fn reference(
        payload: &[u8],
        prefix: usize,
        limit: usize,
    ) -> (Vec<u8>, std::result::Result<(), DeflateError>) {
        let mut d = decompressor();
        let mut out = vec![7u8; prefix];
        let result = d
            .decompress(payload, &mut out, limit)
            .and_then(|()| d.finish(&mut out, limit));
        (out, result)
    }

    /// Check the fast path against zlib-rs on one payload: the whole-message
    /// path gives exactly zlib-rs' result (output, error), and the one-shot
    /// decoder, when it accepts the stream, zlib-rs' output.
    fn check(payload: &[u8], prefix: usize, limit: usize) -> bool {
        let (expected, expected_result) = reference(payload, prefix, limit);
        let mut d = decompressor();
        let mut out = vec![7u8; prefix];
        let result = d
            .decompress_message(payload, &mut out, limit)
            .and_then(|()| d.finish(&mut out, limit));
        assert_eq!(result, expected_result, "payload {payload:02x?}");
        if result.is_ok() {
            assert_eq!(out, expected, "payload {payload:02x?}");
        }
        assert!(out.len() <= limit.max(prefix));
        let mut fast = FastInflater::new();
        let mut out = vec![7u8; prefix];
        let accepted = fast.inflate(payload, &TAIL, &mut out, limit).is_ok();
        if accepted {
            assert_eq!(expected_result, Ok(()), "payload {payload:02x?}");
            assert_eq!(out, expected, "payload {payload:02x?}");
        } else {
            assert_eq!(out.len(), prefix);
            assert_eq!(out.capacity(), prefix);
        }
        assert!(out.len() <= limit.max(prefix));
        // A second message through the same decompressor is unaffected.
        if result.is_ok() {
            let mut again = Vec::new();
            d.decompress_message(payload, &mut again, limit).unwrap();
            d.finish(&mut again, limit).unwrap();
            assert_eq!(again, expected[prefix..]);
        }
        accepted
    }

    /// Deterministic pseudo-random bytes (xorshift).
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// JSON-like text: repeated keys, varying numbers and words.
    fn json_like(seed: u64, len: usize) -> Vec<u8> {
        let words = [
            "price",
            "qty",
            "symbol",
            "ts",
            "side",
            "buy",
            "sell",
            "id",
            "ok",
            "ÄÖÜ€",
        ];
        let r = noise(seed, len);
        let mut out = Vec::new();
        let mut i = 0;
        while out.len() < len {
            let w = words[usize::from(r[i % r.len().max(1)]) % words.len()];
            out.extend_from_slice(
                format!("{{\"{w}\":{},", u32::from(r[(i + 1) % r.len().max(1)]) * 37).as_bytes(),
            );
            i += 2;
        }
        out.truncate(len);
        out
    }

    const STRATEGIES: [ZStrategy; 5] = [
        ZStrategy::Default,
        ZStrategy::Filtered,
        ZStrategy::HuffmanOnly,
        ZStrategy::Rle,
        ZStrategy::Fixed,
    ];

    fn inputs() -> Vec<Vec<u8>> {
        let mut inputs = vec![
            Vec::new(),
            b"Hello".to_vec(),
            vec![b'a'; 1],
            vec![b'a'; 300],
            vec![0; 70_000],
        ];
        for (seed, len) in [(1, 100), (2, 1000), (3, 1024), (4, 4000), (5, 40_000)] {
            inputs.push(noise(seed, len));
            inputs.push(json_like(seed, len));
            let mut mixed = json_like(seed + 10, len);
            mixed.extend(noise(seed + 20, len / 4));
            inputs.push(mixed);
        }
        inputs.push((0..=255u8).cycle().take(5000).collect());
        inputs
    }

    #[test]
    fn builds_fixed_tables() {
        assert!(fixed_tables().is_ok());
    }

    #[test]
    fn matches_zlib_at_every_level_window_and_strategy() {
        let mut accepted = 0;
        let mut total = 0;
        for data in inputs() {
            for level in 0..=9 {
                for bits in 9..=15 {
                    for strategy in STRATEGIES {
                        if level != 6 && strategy != ZStrategy::Default && bits != 15 {
                            continue;
                        }
                        let payload = deflate(&[&data], level, bits, 8, strategy);
                        total += 1;
                        if check(&payload, 0, 1 << 20) {
                            accepted += 1;
                        }
                    }
                }
            }
        }
        // Everything a zlib encoder produces is decoded by the fast path.
        assert_eq!(accepted, total);
    }

    #[test]
    fn matches_zlib_on_several_blocks_and_bfinal_streams() {
        let data = json_like(9, 3000);
        let pieces: Vec<&[u8]> = data.chunks(700).collect();
        for level in [0, 1, 6, 9] {
            let payload = deflate(&pieces, level, 15, 8, ZStrategy::Default);
            assert!(check(&payload, 0, 1 << 20));
            // With empty pieces: empty stored blocks in the middle.
            let payload = deflate(
                &[b"", &data[..100], b"", &data[100..]],
                level,
                15,
                8,
                ZStrategy::Default,
            );
            assert!(check(&payload, 0, 1 << 20));
        }
        // RFC 7692 7.2.3.4: a BFINAL block; 7.2.3.5: two blocks; 7.2.3.6: empty.
        assert!(check(&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 0, 100));
        assert!(check(
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x12, 0x34],
            0,
            100
        ));
        assert!(check(
            &[0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00],
            0,
            100
        ));
        assert!(check(&[0x00], 0, 100));
        assert!(check(&[], 0, 100) || reference(&[], 0, 100).1.is_ok());
        // 7.2.3.3: a stored block.
        assert!(check(
            &[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00],
            0,
            100
        ));
    }

    #[test]
    fn limits_match_zlib() {
        for data in [json_like(3, 2000), noise(4, 2000), vec![b'x'; 10_000]] {
            let payload = deflate(&[&data], 6, 15, 8, ZStrategy::Default);
            for limit in [0, 1, 100, data.len() - 1, data.len(), data.len() + 1] {
                check(&payload, 0, limit);
                check(&payload, 10, 10 + limit);
            }
        }
        // A bomb: 10 MiB of zeros, limit 64 KiB.
        let payload = deflate(&[&vec![0u8; 10 << 20]], 9, 15, 8, ZStrategy::Default);
        assert!(!check(&payload, 0, 1 << 16));
        let mut d = decompressor();
        let mut out = Vec::new();
        assert_eq!(
            d.decompress_message(&payload, &mut out, 1 << 16),
            Err(DeflateError::TooBig { limit: 1 << 16 })
        );
        assert!(out.capacity() <= 1 << 16);
    }

    #[test]
    fn corrupted_streams_match_zlib() {
        for (seed, data) in inputs().into_iter().enumerate().take(12) {
            for (level, strategy) in [
                (6, ZStrategy::Default),
                (1, ZStrategy::Default),
                (6, ZStrategy::Fixed),
                (0, ZStrategy::Default),
            ] {
                let payload = deflate(&[&data], level, 15, 8, strategy);
                let r = noise(seed as u64 + 100, 64);
                for k in 0..32 {
                    if payload.is_empty() {
                        break;
                    }
                    let mut bad = payload.clone();
                    let at = (usize::from(r[k]) * 7919 + k * 131) % bad.len();
                    bad[at] ^= 1 << (r[k + 32] % 8);
                    check(&bad, 0, 1 << 20);
                    check(&payload[..at], 0, 1 << 20);
                    let mut longer = payload.clone();
                    longer.extend_from_slice(&r[..k]);
                    check(&longer, 0, 1 << 20);
                }
            }
        }
    }

    /// Bits written LSB first, as DEFLATE packs them.
    #[derive(Default)]
    struct BitWriter {
        out: Vec<u8>,
        used: u32,
    }

    impl BitWriter {
        fn put(&mut self, value: u32, bits: u32) {
            for i in 0..bits {
                if self.used.is_multiple_of(8) {
                    self.out.push(0);
                }
                let last = self.out.len() - 1;
                self.out[last] |= (((value >> i) & 1) as u8) << (self.used % 8);
                self.used += 1;
            }
        }

        /// A Huffman code, most significant bit first.
        fn code(&mut self, code: u32, len: u32) {
            for i in (0..len).rev() {
                self.put((code >> i) & 1, 1);
            }
        }
    }

    /// Canonical codes of `lens` as zlib assigns them (wrapping within the
    /// length when the code is over-subscribed).
    fn canonical(lens: &[u8]) -> Vec<u32> {
        let mut codes = vec![0; lens.len()];
        let mut code = 0u32;
        for len in 1..16u8 {
            for (symbol, _) in lens.iter().enumerate().filter(|(_, &l)| l == len) {
                codes[symbol] = code & ((1 << len) - 1);
                code += 1;
            }
            code <<= 1;
        }
        codes
    }

    /// A final dynamic block with the given code lengths, coding `symbols`
    /// (literal/length symbols; lengths take a distance symbol from `dists`,
    /// no extra bits are written).
    fn dynamic(litlen: &[u8], dist: &[u8], symbols: &[(usize, usize)]) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(1, 1);
        w.put(2, 2);
        w.put(litlen.len() as u32 - 257, 5);
        w.put(dist.len() as u32 - 1, 5);
        w.put(15, 4);
        // Code length code: 0..=15 with 4 bits each (complete), 16..=18 unused.
        for symbol in CODE_LENGTH_ORDER {
            w.put(if symbol < 16 { 4 } else { 0 }, 3);
        }
        for &len in litlen.iter().chain(dist) {
            w.code(u32::from(len), 4);
        }
        let lcodes = canonical(litlen);
        let dcodes = canonical(dist);
        for &(symbol, d) in symbols {
            w.code(lcodes[symbol], u32::from(litlen[symbol]));
            if symbol > 256 {
                w.code(dcodes[d], u32::from(dist[d]));
            }
        }
        w.out
    }

    #[test]
    fn refuses_codes_zlib_refuses() {
        let mut litlen = vec![0u8; 257];
        let text = [(97, 0), (98, 0), (97, 0), (256, 0)];
        // Complete: a, b, end of block with 1, 2, 2 bits. A single distance
        // code of 1 bit (incomplete, accepted by zlib).
        litlen[97] = 1;
        litlen[98] = 2;
        litlen[256] = 2;
        assert!(check(&dynamic(&litlen, &[1], &text), 0, 100));
        assert!(check(&dynamic(&litlen, &[2, 2, 2, 2], &text), 0, 100));
        // Over-subscribed literal/length code.
        litlen[256] = 1;
        assert!(!check(&dynamic(&litlen, &[1], &text), 0, 100));
        // Incomplete literal/length code.
        litlen[256] = 3;
        assert!(!check(&dynamic(&litlen, &[1], &text), 0, 100));
        // Over-subscribed and incomplete distance codes.
        litlen[256] = 2;
        assert!(!check(&dynamic(&litlen, &[1, 1, 1], &text), 0, 100));
        assert!(!check(&dynamic(&litlen, &[1, 2], &text), 0, 100));
        // No distance code at all (zlib accepts it while no match uses it).
        check(&dynamic(&litlen, &[0], &text), 0, 100);
        // A single literal/length code: end of block only.
        let mut only_end = vec![0u8; 257];
        only_end[256] = 1;
        assert!(check(&dynamic(&only_end, &[1], &[(256, 0)]), 0, 100));
        // A length with the unused code of a single-code distance tree.
        let mut litlen = vec![0u8; 258];
        litlen[97] = 1;
        litlen[256] = 2;
        litlen[257] = 2;
        let symbols = [(97, 0), (257, 0), (256, 0)];
        assert!(check(&dynamic(&litlen, &[1], &symbols), 0, 100));
        let mut bad = dynamic(&litlen, &[1], &symbols);
        // The distance code's bit is the 2 + 1st after the header: flip every
        // candidate bit and compare (some flip the distance code).
        for i in 0..bad.len() * 8 {
            bad[i / 8] ^= 1 << (i % 8);
            check(&bad, 0, 100);
            check(&bad, 5, 105);
            bad[i / 8] ^= 1 << (i % 8);
        }
    }

    #[test]
    fn declining_leaves_the_output_capacity_as_it_was() {
        // zlib-rs reports this stream's error differently with a larger
        // output buffer ("repeated call with bad state" instead of "invalid
        // distance too far back"): the fast path must not enlarge it.
        let data = include_bytes!("../fuzz/seeds/deflate/too_far_back");
        let (step, input) = data.split_first().unwrap_or((&0, &[]));
        let limit = usize::from(*step) << 8;
        assert!(!check(input, 0, limit));
        assert!(matches!(
            reference(input, 0, limit).1,
            Err(DeflateError::Corrupt(_))
        ));
    }

    #[test]
    fn refuses_distances_before_the_message() {
        // Fixed block: literal 'a', then length 3 at distance 2 (one byte
        // too far), end of block.
        for (distance_code, ok) in [(0u32, true), (1, false)] {
            let mut w = BitWriter::default();
            w.put(1, 1);
            w.put(1, 2);
            w.code(0x30 + u32::from(b'a'), 8);
            w.code(1, 7);
            w.code(distance_code, 5);
            w.code(0, 7);
            for prefix in [0, 1, 10] {
                assert_eq!(check(&w.out, prefix, prefix + 100), ok);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_match_zlib(
            payload in prop::collection::vec(any::<u8>(), 0..600),
            prefix in 0usize..4,
            limit in 0usize..5000,
        ) {
            check(&payload, prefix, prefix + limit);
        }

        #[test]
        fn mutated_streams_match_zlib(
            data in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..3000),
                prop::collection::vec(prop::sample::select(b"{\"ab\":1, ".to_vec()), 0..3000),
            ],
            level in 0i32..=9,
            bits in 9u8..=15,
            strategy in 0usize..5,
            flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..3),
            cut in prop::option::of(any::<prop::sample::Index>()),
        ) {
            let mut payload = deflate(&[&data], level, bits, 8, STRATEGIES[strategy]);
            if payload.is_empty() {
                return Ok(());
            }
            for (at, bit) in &flips {
                let at = at.index(payload.len());
                payload[at] ^= 1 << bit;
            }
            if let Some(cut) = cut {
                payload.truncate(cut.index(payload.len()));
            }
            let accepted = check(&payload, 0, 1 << 20);
            if flips.is_empty() && cut.is_none() {
                prop_assert!(accepted);
            }
        }
    }
}
