// SPDX-License-Identifier: MIT
//! Inflate arbitrary data in arbitrary pieces under a size limit: no panic, and the
//! output never grows past the limit (decompression bombs end in an error).
#![no_main]

use _rust::deflate::{Decompressor, DeflateParams};
use _rust::frame::Role;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let mut d = Decompressor::new(&DeflateParams::default(), Role::Server);
    let mut out = Vec::new();
    for chunk in input.chunks(usize::from(step).max(1)) {
        if d.decompress(chunk, &mut out, LIMIT).is_err() {
            return;
        }
        assert!(out.len() <= LIMIT);
    }
    let _ = d.finish(&mut out, LIMIT);
    assert!(out.len() <= LIMIT);
});
