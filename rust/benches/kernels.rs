// SPDX-License-Identifier: MIT
//! Criterion micro-benchmarks of the protocol kernels, reported in bytes per second.

use std::hint::black_box;

use _rust::frame::{Frame, Role, OP_BINARY};
use _rust::mask::{apply_mask, apply_mask_fallback};
use _rust::protocol::{Config, Protocol};
use _rust::utf8::validate;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const SIZES: [usize; 4] = [64, 1024, 65536, 1 << 20];

fn mask(c: &mut Criterion) {
    let mut g = c.benchmark_group("mask");
    for size in SIZES {
        let mut buf = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("fast", size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut buf), KEY, 1));
        });
        g.bench_with_input(BenchmarkId::new("fallback", size), &size, |b, _| {
            b.iter(|| apply_mask_fallback(black_box(&mut buf), KEY, 1));
        });
    }
    g.finish();
}

fn utf8(c: &mut Criterion) {
    let mut g = c.benchmark_group("utf8");
    let mixed = "abc éüñ κόσμε 日本語 ✓ 𝄞 ".repeat(2048);
    let ascii = "abcdefghijklmnopqrstuvwxyz012345".repeat(2048);
    for (name, text) in [("mixed", mixed), ("ascii", ascii)] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| b.iter(|| validate(black_box(text.as_bytes()))));
    }
    g.finish();
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    let mut wire = Vec::new();
    for i in 0..1000u32 {
        let f = Frame {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode: OP_BINARY,
            payload: b"0123456789abcdef".to_vec(),
        };
        wire.extend(f.serialize(Some(i.to_be_bytes())));
    }
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("1000 x 16 B masked frames", |b| {
        b.iter(|| {
            let mut p = Protocol::new(Config::new(Role::Server));
            p.receive_data(black_box(&wire));
            assert_eq!(p.events().len(), 1000);
        });
    });
    g.finish();
}

criterion_group!(benches, mask, utf8, parse);
criterion_main!(benches);
