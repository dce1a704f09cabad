// SPDX-License-Identifier: MIT
//! Huffman decoding tables: the entry format, the symbol templates of RFC 1951,
//! canonical codes and the table builder (zlib's `inftrees`, with its checks).

use super::{Result, Unhandled};

/// Root bits of the literal/length table.
pub(super) const LITLEN_ROOT: u32 = 10;
/// Root bits of the distance table.
pub(super) const DIST_ROOT: u32 = 8;
/// Room for the root table and every sub-table. A complete code over 288
/// symbols needs at most 1332 entries with a 10-bit root (zlib's `enough`);
/// the builder refuses a code that would not fit, so these are only sizes.
pub(super) const LITLEN_SIZE: usize = 2048;
/// 30 symbols, 8-bit root: far below this (the builder checks).
pub(super) const DIST_SIZE: usize = 512;

// Table entries: bits 0..8 the bits to consume (the codeword and, for lengths
// and distances, its extra bits), 8..12 the codeword's own length for lengths
// and distances (the sub-table bits of a pointer), 12..16 the kind, 16..32 the
// value (literal, length or distance base, or sub-table start).
const KIND_SHIFT: u32 = 12;
pub(super) const KIND_MASK: u32 = 0xF << KIND_SHIFT;
/// A literal byte, or a distance (in the distance table).
pub(super) const KIND_LITERAL: u32 = 0;
pub(super) const KIND_LENGTH: u32 = 1 << KIND_SHIFT;
pub(super) const KIND_END: u32 = 2 << KIND_SHIFT;
pub(super) const KIND_SUBTABLE: u32 = 3 << KIND_SHIFT;
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
pub(super) const CODE_LENGTH_ORDER: [usize; 19] = [
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
pub(super) enum CodeKind {
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
pub(super) struct Code<const N: usize> {
    count: [u16; 16],
    symbols: [[u16; N]; 16],
}

impl<const N: usize> Code<N> {
    pub(super) fn new() -> Self {
        Self {
            count: [0; 16],
            symbols: [[0; N]; 16],
        }
    }

    pub(super) fn clear(&mut self) {
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
    pub(super) fn push_run(&mut self, len: u8, first: usize, n: usize) {
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
    pub(super) fn set_lens(&mut self, lens: &[u8]) {
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
pub(super) fn build_table<const N: usize>(
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

pub(super) type FixedTables = (Box<[u32; LITLEN_SIZE]>, Box<[u32; DIST_SIZE]>);

/// The fixed literal/length and distance tables (RFC 1951 3.2.6).
pub(super) fn fixed_tables() -> Result<FixedTables> {
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

/// The codes of a dynamic block, by code length.
pub(super) struct Codes {
    pub(super) lengths: Code<19>,
    pub(super) litlen: Code<288>,
    pub(super) dist: Code<32>,
}
