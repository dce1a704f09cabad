// SPDX-License-Identifier: MIT
//! Per-message cost of the client's permessage-deflate receive path, in pure Rust.
//!
//! Reads the compressed corpus that `bench/e2e/deflate_probe.py --write-corpus PATH`
//! writes (u32 little-endian length, then a raw DEFLATE message without its
//! `00 00 ff ff` tail) and times, per message (median of the rounds):
//!
//! * `decompressor`: [`Decompressor::decompress`] + [`Decompressor::finish`] into a
//!   reused buffer, no context takeover (what the protocol does per message);
//! * `decompress_message`: [`Decompressor::decompress_message`] + `finish`, the
//!   whole-message path (the one-shot [`FastInflater`], zlib-rs if it declines);
//! * `fast one-shot`: [`FastInflater::inflate`] alone;
//! * `protocol`: [`Protocol::receive_data`] over unmasked RSV1 text frames of the
//!   whole cycle (framing, inflate, UTF-8 validation, events);
//! * `zlib-rs one call`: a bare zlib-rs inflater, reset per message, fed the message
//!   and its tail in one call with ample output room (a lower bound for zlib-rs).
//!
//! `taskset -c 1 cargo run --release -p wsfast-rs --example inflate_probe -- PATH [NAME]`
//! (with NAME, only the cases whose name contains it)

use std::hint::black_box;
use std::time::Instant;

use _rust::deflate::{Decompressor, DeflateParams};
use _rust::frame::Role;
use _rust::inflate::FastInflater;
use _rust::protocol::{Config, Protocol};
use zlib_rs::{Inflate, InflateFlush};

const MESSAGES: usize = 20_000;
const ROUNDS: usize = 31;

fn read_corpus(path: &str) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).expect("read corpus");
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        out.push(data[pos + 4..pos + 4 + len].to_vec());
        pos += 4 + len;
    }
    out
}

fn time(name: &str, mut f: impl FnMut()) {
    // An optional second argument times only the cases whose name contains it.
    if let Some(only) = std::env::args().nth(2) {
        if !name.contains(only.as_str()) {
            return;
        }
    }
    f();
    let mut samples: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e9 / f64::from(MESSAGES as u32)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    println!(
        "{name:18} median {:7.1} ns/msg   min {:7.1}",
        samples[ROUNDS / 2],
        samples[0]
    );
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: inflate_probe CORPUS");
    let corpus = read_corpus(&path);
    let cycle: Vec<&[u8]> = (0..MESSAGES)
        .map(|i| corpus[i % corpus.len()].as_slice())
        .collect();
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateParams::default()
    };

    let mut decompressor = Decompressor::new(&params, Role::Client);
    let mut out = Vec::new();
    time("decompressor", || {
        for message in &cycle {
            out.clear();
            decompressor.decompress(message, &mut out, 1 << 20).unwrap();
            decompressor.finish(&mut out, 1 << 20).unwrap();
            black_box(&out);
        }
    });

    let mut decompressor = Decompressor::new(&params, Role::Client);
    time("decompress_message", || {
        for message in &cycle {
            out.clear();
            decompressor
                .decompress_message(message, &mut out, 1 << 20)
                .unwrap();
            decompressor.finish(&mut out, 1 << 20).unwrap();
            black_box(&out);
        }
    });

    let mut fast = FastInflater::new();
    time("fast one-shot", || {
        for message in &cycle {
            out.clear();
            fast.inflate(message, &[0, 0, 0xff, 0xff], &mut out, 1 << 20)
                .unwrap();
            black_box(&out);
        }
    });

    let mut wire = Vec::new();
    for message in &cycle {
        wire.push(0xC1);
        if message.len() < 126 {
            wire.push(message.len() as u8);
        } else {
            wire.push(126);
            wire.extend_from_slice(&(message.len() as u16).to_be_bytes());
        }
        wire.extend_from_slice(message);
    }
    let mut config = Config::new(Role::Client);
    config.deflate = Some(params);
    let mut protocol = Protocol::new(config);
    time("protocol", || {
        protocol.receive_data(&wire);
        assert_eq!(protocol.events().len(), MESSAGES);
    });

    let mut inflate = Inflate::new(false, 15);
    let mut input = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    time("zlib-rs one call", || {
        for message in &cycle {
            input.clear();
            input.extend_from_slice(message);
            input.extend_from_slice(&[0, 0, 0xff, 0xff]);
            inflate.reset(false);
            inflate
                .decompress(&input, &mut buffer, InflateFlush::SyncFlush)
                .unwrap();
            black_box(&buffer);
        }
    });
}
