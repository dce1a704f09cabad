// SPDX-License-Identifier: MIT
//! The one-shot decoder against zlib-rs: same output, same refusals, same limits.

use super::decode::{make_room, SLACK};
use super::tables::CODE_LENGTH_ORDER;
use super::*;
use crate::deflate::{Decompressor, DeflateError, DeflateParams};
use crate::frame::Role;
use proptest::prelude::*;
use zlib_rs::{Deflate, DeflateFlush, Strategy as ZStrategy};

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// Raw DEFLATE of `pieces`, each sync-flushed (so several blocks when
/// there are several pieces), without the final `00 00 ff ff`.
fn deflate(pieces: &[&[u8]], level: i32, bits: u8, mem_level: i32, strategy: ZStrategy) -> Vec<u8> {
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
    assert!(
        out.len() <= start + 100 + SLACK,
        "zero-filled {} bytes",
        out.len() - start
    );
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
    let data = include_bytes!("../../fuzz/seeds/deflate/too_far_back");
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
