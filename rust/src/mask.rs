// SPDX-License-Identifier: MIT
//! Masking and unmasking payloads (RFC 6455 section 5.3).
//!
//! Masking is an XOR with a 4-byte key repeated over the payload. `offset` is the
//! number of payload bytes already processed, so a payload that streams in over
//! several reads can be unmasked piece by piece.

/// Rotate `mask` so that index 0 of the result applies to payload byte `offset`.
#[inline]
fn rotate(mask: [u8; 4], offset: usize) -> [u8; 4] {
    let s = offset & 3;
    [
        mask[s],
        mask[(s + 1) & 3],
        mask[(s + 2) & 3],
        mask[(s + 3) & 3],
    ]
}

/// XOR `buf` in place with `mask`, starting at payload position `offset`.
///
/// Word-at-a-time over 32-byte blocks so the compiler vectorises it; on CPUs with
/// AVX2 the same loop is compiled a second time for 256-bit registers and picked at
/// run time.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let key = rotate(mask, offset);
    #[cfg(target_arch = "x86_64")]
    if buf.len() >= 64 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 support was just checked.
        unsafe { xor_in_place_avx2(buf, key) };
        return;
    }
    xor_in_place(buf, key);
}

/// Copy `src` into `dst` (same length), XORing with `mask` from payload position `offset`.
///
/// Fusing the copy and the XOR means unmasking into a message buffer costs one pass.
pub fn copy_masked(dst: &mut [u8], src: &[u8], mask: [u8; 4], offset: usize) {
    assert_eq!(dst.len(), src.len(), "copy_masked needs equal lengths");
    let key = rotate(mask, offset);
    #[cfg(target_arch = "x86_64")]
    if src.len() >= 64 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 support was just checked.
        unsafe { xor_copy_avx2(dst, src, key) };
        return;
    }
    xor_copy(dst, src, key);
}

const BLOCK: usize = 32;

#[inline(always)]
fn wide_key(key: [u8; 4]) -> u64 {
    u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ])
}

#[inline(always)]
fn xor_block(dst: &mut [u8], src: &[u8], wide: u64) {
    for (d, s) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(s);
        d.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
}

#[inline(always)]
fn xor_copy(dst: &mut [u8], src: &[u8], key: [u8; 4]) {
    let wide = wide_key(key);
    let mut d = dst.chunks_exact_mut(BLOCK);
    let mut s = src.chunks_exact(BLOCK);
    for (dc, sc) in (&mut d).zip(&mut s) {
        xor_block(dc, sc, wide);
    }
    // Whole blocks keep the key phase, so the remainder starts at phase 0 of `key`.
    for (i, (db, sb)) in d.into_remainder().iter_mut().zip(s.remainder()).enumerate() {
        *db = sb ^ key[i & 3];
    }
}

#[inline(always)]
fn xor_in_place(buf: &mut [u8], key: [u8; 4]) {
    let wide = wide_key(key);
    let mut blocks = buf.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        let mut tmp = [0u8; BLOCK];
        tmp.copy_from_slice(block);
        xor_block(block, &tmp, wide);
    }
    for (i, b) in blocks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn xor_copy_avx2(dst: &mut [u8], src: &[u8], key: [u8; 4]) {
    xor_copy(dst, src, key);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn xor_in_place_avx2(buf: &mut [u8], key: [u8; 4]) {
    xor_in_place(buf, key);
}

/// Scalar twin of [`apply_mask`], kept as the reference for differential tests.
pub fn apply_mask_fallback(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= mask[(offset + i) & 3];
    }
}

#[cfg(test)]
#[path = "mask_tests.rs"]
mod tests;
