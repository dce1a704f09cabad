// SPDX-License-Identifier: MIT
//! Inflate arbitrary data in arbitrary pieces under a size limit: no panic, and the
//! output never grows past the limit (decompression bombs end in an error).
//!
//! Differential check of the whole-message path: without context takeover,
//! `Decompressor::decompress_message` (the one-shot `FastInflater`, zlib-rs when it
//! declines) gives exactly the output and result of the streaming zlib-rs path, and
//! `FastInflater` alone, when it accepts a message, zlib-rs' output.
#![no_main]

use _rust::deflate::{Decompressor, DeflateParams};
use _rust::frame::Role;
use _rust::inflate::FastInflater;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 16;
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let mut d = Decompressor::new(&DeflateParams::default(), Role::Server);
    let mut out = Vec::new();
    for chunk in input.chunks(usize::from(step).max(1)) {
        if d.decompress(chunk, &mut out, LIMIT).is_err() {
            break;
        }
        assert!(out.len() <= LIMIT);
    }
    let _ = d.finish(&mut out, LIMIT);
    assert!(out.len() <= LIMIT);

    // The limit varies with the first byte, down to 0.
    let limit = (usize::from(step) << 8).min(LIMIT);
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let mut streaming = Decompressor::new(&params, Role::Client);
    let mut expected = Vec::new();
    let expected_result = streaming
        .decompress(input, &mut expected, limit)
        .and_then(|()| streaming.finish(&mut expected, limit));
    let mut whole = Decompressor::new(&params, Role::Client);
    let mut got = Vec::new();
    let result = whole
        .decompress_message(input, &mut got, limit)
        .and_then(|()| whole.finish(&mut got, limit));
    assert_eq!(result, expected_result);
    if result.is_ok() {
        assert_eq!(got, expected);
    }
    assert!(got.len() <= limit && got.capacity() <= limit);
    let mut fast = FastInflater::new();
    let mut one_shot = Vec::new();
    if fast.inflate(input, &TAIL, &mut one_shot, limit).is_ok() {
        assert_eq!(expected_result, Ok(()));
        assert_eq!(one_shot, expected);
    } else {
        assert!(one_shot.is_empty());
    }
});
