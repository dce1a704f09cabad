// SPDX-License-Identifier: MIT
//! Masking: the fast kernel against the scalar fallback, and RFC 6455 examples.

use super::*;
use proptest::prelude::*;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

#[test]
fn rfc6455_masked_hello() {
    // RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d.
    let mut data = *b"Hello";
    apply_mask(&mut data, KEY, 0);
    assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
}

#[test]
fn fast_matches_fallback_for_every_length_alignment_and_offset() {
    let source: Vec<u8> = (0..200u8).collect();
    for align in 0..8 {
        for len in 0..=64 {
            for offset in 0..4 {
                let mut fast = source[align..align + len].to_vec();
                let mut slow = fast.clone();
                // Work on a sub-slice so the start address changes with `align`.
                let mut backing = source.clone();
                let window = &mut backing[align..align + len];
                apply_mask(window, KEY, offset);
                apply_mask(&mut fast, KEY, offset);
                apply_mask_fallback(&mut slow, KEY, offset);
                assert_eq!(fast, slow, "len={len} offset={offset}");
                assert_eq!(window, &slow[..], "len={len} align={align}");
                let mut copied = vec![0; len];
                copy_masked(&mut copied, &source[align..align + len], KEY, offset);
                assert_eq!(copied, slow);
            }
        }
    }
}

proptest! {
    #[test]
    fn masking_twice_is_identity_for_any_split(data in proptest::collection::vec(any::<u8>(), 0..2048), key in any::<[u8; 4]>(), split in any::<usize>()) {
        let split = if data.is_empty() { 0 } else { split % (data.len() + 1) };
        let mut buf = data.clone();
        let (a, b) = buf.split_at_mut(split);
        apply_mask(a, key, 0);
        apply_mask(b, key, split);
        let mut whole = data.clone();
        apply_mask_fallback(&mut whole, key, 0);
        prop_assert_eq!(&buf, &whole);
        apply_mask(&mut buf, key, 0);
        prop_assert_eq!(buf, data);
    }
}
