// SPDX-License-Identifier: MIT
//! permessage-deflate: RFC 7692 examples, limits, negotiation on both sides, round trips.

use super::codec::TAIL;
use super::*;
use crate::frame::Role;
use crate::handshake::Extension;
use proptest::prelude::*;

const HELLO: &[u8] = b"Hello";
const LIMIT: usize = 1 << 20;

fn ext(params: &[(&str, Option<&str>)]) -> Extension {
    Extension {
        name: EXTENSION_NAME.to_owned(),
        params: params
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.map(str::to_owned)))
            .collect(),
    }
}

fn compress(compressor: &mut Compressor, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    compressor.compress(data, true, &mut out).unwrap();
    out
}

fn decompress(decompressor: &mut Decompressor, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    decompressor.decompress(payload, &mut out, LIMIT).unwrap();
    decompressor.finish(&mut out, LIMIT).unwrap();
    out
}

fn pair(params: DeflateParams, level: u32) -> (Compressor, Decompressor) {
    (
        Compressor::new(&params, Role::Client, level),
        Decompressor::new(&params, Role::Server),
    )
}

// Compression: RFC 7692 section 7.2.3.

#[test]
fn compresses_hello_as_in_rfc_7692_7_2_3_1() {
    let mut compressor = Compressor::new(&DeflateParams::default(), Role::Server, 6);
    assert_eq!(
        compress(&mut compressor, HELLO),
        [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
}

#[test]
fn compresses_second_hello_with_context_takeover_as_in_rfc_7692_7_2_3_2() {
    let mut compressor = Compressor::new(&DeflateParams::default(), Role::Server, 6);
    compress(&mut compressor, HELLO);
    assert_eq!(
        compress(&mut compressor, HELLO),
        [0xf2, 0x00, 0x11, 0x00, 0x00]
    );
}

#[test]
fn compresses_second_hello_afresh_without_context_takeover() {
    let params = DeflateParams {
        server_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let mut compressor = Compressor::new(&params, Role::Server, 6);
    compress(&mut compressor, HELLO);
    assert_eq!(
        compress(&mut compressor, HELLO),
        [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
}

#[test]
fn compressor_honours_only_its_own_sides_no_context_takeover() {
    let params = DeflateParams {
        client_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let mut compressor = Compressor::new(&params, Role::Server, 6);
    compress(&mut compressor, HELLO);
    assert_eq!(
        compress(&mut compressor, HELLO),
        [0xf2, 0x00, 0x11, 0x00, 0x00]
    );
}

#[test]
fn compresses_with_stored_blocks_at_level_0() {
    let mut compressor = Compressor::new(&DeflateParams::default(), Role::Server, 0);
    assert_eq!(
        compress(&mut compressor, HELLO),
        [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]
    );
}

#[test]
fn compresses_empty_message_to_one_zero_byte_as_in_rfc_7692_7_2_3_6() {
    let mut compressor = Compressor::new(&DeflateParams::default(), Role::Server, 6);
    assert_eq!(compress(&mut compressor, b""), [0x00]);
    // Right after another sync flush, zlib emits nothing: still one byte.
    assert_eq!(compress(&mut compressor, b""), [0x00]);
    compress(&mut compressor, HELLO);
    assert_eq!(compress(&mut compressor, b""), [0x00]);
}

#[test]
fn compressed_empty_messages_inflate_to_nothing() {
    let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 6);
    for data in [&b""[..], b"", HELLO, b"", HELLO] {
        let payload = compress(&mut compressor, data);
        assert_eq!(decompress(&mut decompressor, &payload), data);
    }
}

#[test]
fn compresses_fragments_that_decompress_separately() {
    let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 6);
    let mut first = Vec::new();
    compressor.compress(b"Hel", false, &mut first).unwrap();
    assert!(
        first.ends_with(&TAIL),
        "a non-final fragment keeps its sync flush"
    );
    let mut last = Vec::new();
    compressor.compress(b"lo", true, &mut last).unwrap();
    assert!(!last.ends_with(&TAIL));
    let mut out = Vec::new();
    decompressor.decompress(&first, &mut out, LIMIT).unwrap();
    assert_eq!(out, b"Hel", "a flushed fragment inflates without the rest");
    decompressor.decompress(&last, &mut out, LIMIT).unwrap();
    decompressor.finish(&mut out, LIMIT).unwrap();
    assert_eq!(out, HELLO);
}

#[test]
fn compresses_empty_last_fragment_to_one_zero_byte() {
    let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 6);
    let mut payload = Vec::new();
    compressor.compress(HELLO, false, &mut payload).unwrap();
    let mut last = Vec::new();
    compressor.compress(b"", true, &mut last).unwrap();
    assert_eq!(last, [0x00]);
    payload.extend_from_slice(&last);
    assert_eq!(decompress(&mut decompressor, &payload), HELLO);
}

#[test]
fn compresses_large_messages_in_several_steps() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 1);
    let payload = compress(&mut compressor, &data);
    let mut out = Vec::new();
    decompressor
        .decompress(&payload, &mut out, data.len())
        .unwrap();
    decompressor.finish(&mut out, data.len()).unwrap();
    assert_eq!(out, data);
}

#[test]
fn window_8_compresses_with_stored_blocks_only() {
    let params = DeflateParams {
        server_max_window_bits: Some(8),
        ..DeflateParams::default()
    };
    let mut compressor = Compressor::new(&params, Role::Server, 9);
    let data = b"abcabcabcabcabcabcabcabcabcabcabc".repeat(40);
    let payload = compress(&mut compressor, &data);
    // Stored blocks: a header byte, LEN, NLEN, then the data verbatim.
    assert_eq!(payload[0], 0x00);
    assert_eq!(&payload[5..5 + data.len()], &data[..]);
    let mut decompressor = Decompressor::new(&params, Role::Client);
    assert_eq!(decompress(&mut decompressor, &payload), data);
}

#[test]
fn compressor_clamps_out_of_range_settings_instead_of_panicking() {
    let params = DeflateParams {
        server_max_window_bits: Some(200),
        client_max_window_bits: Some(0),
        ..DeflateParams::default()
    };
    for role in [Role::Server, Role::Client] {
        let mut compressor = Compressor::new(&params, role, 99);
        let mut decompressor = Decompressor::new(
            &params,
            match role {
                Role::Server => Role::Client,
                Role::Client => Role::Server,
            },
        );
        let payload = compress(&mut compressor, HELLO);
        assert_eq!(decompress(&mut decompressor, &payload), HELLO);
    }
}

// Allocation and settings.

#[test]
fn compressor_allocates_on_first_message_and_release_frees_it() {
    let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 6);
    assert!(!compressor.is_allocated());
    let first = compress(&mut compressor, HELLO);
    assert!(compressor.is_allocated());
    // Dropping the sender's context is always safe for the receiver.
    compressor.release();
    assert!(!compressor.is_allocated());
    let second = compress(&mut compressor, HELLO);
    assert_eq!(second, first, "after release, a message starts afresh");
    assert_eq!(decompress(&mut decompressor, &first), HELLO);
    assert_eq!(decompress(&mut decompressor, &second), HELLO);
}

#[test]
fn decompressor_allocates_on_first_message_and_frees_only_without_context_takeover() {
    let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
    assert!(!decompressor.is_allocated());
    assert!(decompressor.release(), "nothing allocated yet");
    decompress(
        &mut decompressor,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    );
    assert!(decompressor.is_allocated());
    assert!(!decompressor.release(), "the window must be kept");
    assert_eq!(
        decompress(&mut decompressor, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
        HELLO
    );
    let params = DeflateParams {
        server_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let mut decompressor = Decompressor::new(&params, Role::Client);
    decompress(
        &mut decompressor,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    );
    assert!(decompressor.release());
    assert!(!decompressor.is_allocated());
    assert_eq!(
        decompress(
            &mut decompressor,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        ),
        HELLO
    );
}

#[test]
fn release_unused_frees_only_a_compressor_unused_since_the_last_call() {
    let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 1);
    assert!(!compressor.release_unused(), "nothing allocated yet");
    let message = b"repeat after me: the same words again and again".repeat(3);
    let first = compress(&mut compressor, &message);
    assert!(!compressor.release_unused(), "used since the last call");
    assert!(compressor.is_allocated());
    let second = compress(&mut compressor, &message);
    assert!(second.len() < first.len(), "context takeover refers back");
    assert!(!compressor.release_unused());
    assert!(compressor.release_unused(), "unused for a whole period");
    assert!(!compressor.is_allocated());
    // The decompressor keeps its window (the peer's takeover); the next
    // message starts afresh, so a stale window cannot corrupt it.
    let third = compress(&mut compressor, &message);
    assert_eq!(third, first, "after release, a message starts afresh");
    assert!(compressor.is_allocated());
    for payload in [&first, &second, &third] {
        assert_eq!(decompress(&mut decompressor, payload), message);
    }
    let fourth = compress(&mut compressor, &message);
    assert_eq!(fourth, second, "context takeover resumes after the release");
    assert_eq!(decompress(&mut decompressor, &fourth), message);
}

#[test]
fn release_unused_keeps_the_context_of_a_message_in_progress() {
    let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 1);
    let mut payload = Vec::new();
    compressor
        .compress(b"first fragment, ", false, &mut payload)
        .unwrap();
    assert!(!compressor.release_unused());
    assert!(!compressor.release_unused(), "mid-message: never released");
    assert!(compressor.is_allocated());
    compressor
        .compress(b"first fragment again", true, &mut payload)
        .unwrap();
    assert_eq!(
        decompress(&mut decompressor, &payload),
        b"first fragment, first fragment again"
    );
}

#[test]
fn compressor_without_keep_context_compresses_every_message_alone() {
    let params = DeflateParams::default();
    let settings = CompressorSettings {
        keep_context: false,
        ..CompressorSettings::default()
    };
    let mut compressor = Compressor::with_settings(&params, Role::Server, settings);
    let mut decompressor = Decompressor::new(&params, Role::Client);
    let message = b"the same message, twice over".repeat(2);
    let first = compress(&mut compressor, &message);
    assert!(compressor.release_idle(), "no context to keep");
    let second = compress(&mut compressor, &message);
    assert_eq!(second, first, "no reference to the previous message");
    // The peer still decodes with its window kept (takeover negotiated).
    assert_eq!(decompress(&mut decompressor, &first), message);
    assert_eq!(decompress(&mut decompressor, &second), message);
}

#[test]
fn every_compressor_setting_round_trips_with_and_without_context_takeover() {
    let data: Vec<u8> = (0..200)
        .flat_map(|i| format!("{{\"id\":{i},\"p\":{}.{}}},", i * 7919 % 1000, i % 7).into_bytes())
        .collect();
    for no_context_takeover in [false, true] {
        for agreed in [None, Some(8), Some(10), Some(15)] {
            let params = DeflateParams {
                client_no_context_takeover: no_context_takeover,
                client_max_window_bits: agreed,
                ..DeflateParams::default()
            };
            for window_bits in 8..=15 {
                for mem_level in [1, 5, 8, 9] {
                    for level in [0, 1, 6, 9] {
                        let settings = CompressorSettings {
                            level,
                            mem_level,
                            window_bits,
                            ..CompressorSettings::default()
                        };
                        let mut compressor =
                            Compressor::with_settings(&params, Role::Client, settings);
                        let mut decompressor = Decompressor::new(&params, Role::Server);
                        for _ in 0..3 {
                            let payload = compress(&mut compressor, &data);
                            assert_eq!(
                                decompress(&mut decompressor, &payload),
                                data,
                                "{settings:?} {params:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn compressor_window_is_the_smaller_of_setting_and_agreement() {
    // With a 9-bit window, a repeat 1000 bytes back cannot be referenced.
    let block: Vec<u8> = (0..1000u32).map(|i| (i * 131 % 251) as u8).collect();
    let data = [&block[..], &block[..]].concat();
    let size = |agreed: Option<u8>, window_bits: u8| {
        let params = DeflateParams {
            server_max_window_bits: agreed,
            ..DeflateParams::default()
        };
        let settings = CompressorSettings {
            level: 6,
            mem_level: 8,
            window_bits,
            ..CompressorSettings::default()
        };
        let mut compressor = Compressor::with_settings(&params, Role::Server, settings);
        compress(&mut compressor, &data).len()
    };
    assert!(size(None, 15) < 1500);
    assert!(size(None, 9) > 1500);
    assert!(size(Some(9), 15) > 1500);
}

#[test]
fn deflate_config_checks_compressor_settings() {
    assert_eq!(DeflateConfig::default().check(), Ok(()));
    for cfg in [
        DeflateConfig {
            mem_level: 0,
            ..DeflateConfig::default()
        },
        DeflateConfig {
            mem_level: 10,
            ..DeflateConfig::default()
        },
        DeflateConfig {
            compress_window_bits: 16,
            ..DeflateConfig::default()
        },
    ] {
        assert!(cfg.check().is_err(), "{cfg:?}");
    }
    assert_eq!(
        DeflateConfig::default().compressor_settings(),
        CompressorSettings {
            level: DEFAULT_COMPRESSION_LEVEL,
            mem_level: DEFAULT_MEM_LEVEL,
            window_bits: DEFAULT_COMPRESS_WINDOW_BITS,
            keep_context: true,
        }
    );
    assert_eq!(
        DeflateConfig::default().compressor_idle,
        Some(DEFAULT_COMPRESSOR_IDLE)
    );
    for (idle, keep_context) in [
        (None, true),
        (Some(std::time::Duration::from_millis(1)), true),
        (Some(std::time::Duration::ZERO), false),
    ] {
        let cfg = DeflateConfig {
            compressor_idle: idle,
            ..DeflateConfig::default()
        };
        assert_eq!(cfg.check(), Ok(()));
        assert_eq!(cfg.compressor_settings().keep_context, keep_context);
    }
}

// Decompression: RFC 7692 section 7.2.3.

#[test]
fn decompresses_hello_as_in_rfc_7692_7_2_3_1() {
    let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
    assert_eq!(
        decompress(
            &mut decompressor,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        ),
        HELLO
    );
}

#[test]
fn decompresses_fragmented_hello_as_in_rfc_7692_7_2_3_1() {
    let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
    let mut out = Vec::new();
    decompressor
        .decompress(&[0xf2, 0x48, 0xcd], &mut out, LIMIT)
        .unwrap();
    decompressor
        .decompress(&[0xc9, 0xc9, 0x07, 0x00], &mut out, LIMIT)
        .unwrap();
    decompressor.finish(&mut out, LIMIT).unwrap();
    assert_eq!(out, HELLO);
}

#[test]
fn decompresses_shared_window_as_in_rfc_7692_7_2_3_2() {
    let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
    assert_eq!(
        decompress(
            &mut decompressor,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        ),
        HELLO
    );
    assert_eq!(
        decompress(&mut decompressor, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
        HELLO
    );
}

#[test]
fn decompressor_without_context_takeover_rejects_back_references_to_older_messages() {
    let params = DeflateParams {
        server_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let mut decompressor = Decompressor::new(&params, Role::Client);
    decompress(
        &mut decompressor,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    );
    let mut out = Vec::new();
    let result = decompressor
        .decompress(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, LIMIT)
        .and_then(|()| decompressor.finish(&mut out, LIMIT));
    assert!(
        matches!(result, Err(DeflateError::Corrupt(_))),
        "{result:?}"
    );
}

#[test]
fn decompresses_stored_block_as_in_rfc_7692_7_2_3_3() {
    let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
    let payload = [
        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    assert_eq!(decompress(&mut decompressor, &payload), HELLO);
}

#[test]
fn decompresses_bfinal_block_as_in_rfc_7692_7_2_3_4() {
    let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
    let payload = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    assert_eq!(decompress(&mut decompressor, &payload), HELLO);
    // The ended stream is reset: the next message starts a new one.
    assert_eq!(decompress(&mut decompressor, &payload), HELLO);
    assert_eq!(
        decompress(
            &mut decompressor,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        ),
        HELLO
    );
}

#[test]
fn decompresses_two_blocks_as_in_rfc_7692_7_2_3_5() {
    let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
    let payload = [
        0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    assert_eq!(decompress(&mut decompressor, &payload), HELLO);
}

#[test]
fn decompresses_empty_fragment_as_in_rfc_7692_7_2_3_6() {
    let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
    assert_eq!(decompress(&mut decompressor, &[0x00]), b"");
    assert_eq!(decompress(&mut decompressor, &[0x00]), b"");
    assert_eq!(
        decompress(
            &mut decompressor,
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        ),
        HELLO
    );
}

#[test]
fn rejects_corrupt_data() {
    let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
    let mut out = Vec::new();
    // BTYPE 11 is reserved.
    let result = decompressor.decompress(&[0xff, 0xff, 0xff], &mut out, LIMIT);
    assert!(
        matches!(result, Err(DeflateError::Corrupt(_))),
        "{result:?}"
    );
}

#[test]
fn decompressor_appends_after_existing_output() {
    let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
    let mut out = b"prefix".to_vec();
    decompressor
        .decompress(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 6 + 5)
        .unwrap();
    decompressor.finish(&mut out, 6 + 5).unwrap();
    assert_eq!(out, b"prefixHello");
}

// Limits.

#[test]
fn accepts_message_exactly_at_the_limit() {
    let data = vec![b'a'; 100_000];
    let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 6);
    let payload = compress(&mut compressor, &data);
    let mut out = Vec::new();
    decompressor
        .decompress(&payload, &mut out, data.len())
        .unwrap();
    decompressor.finish(&mut out, data.len()).unwrap();
    assert_eq!(out, data);
    assert!(out.capacity() <= data.len());
}

#[test]
fn rejects_message_one_byte_over_the_limit() {
    let data = vec![b'a'; 100_001];
    let (mut compressor, mut decompressor) = pair(DeflateParams::default(), 6);
    let payload = compress(&mut compressor, &data);
    let mut out = Vec::new();
    let result = decompressor
        .decompress(&payload, &mut out, 100_000)
        .and_then(|()| decompressor.finish(&mut out, 100_000));
    assert_eq!(result, Err(DeflateError::TooBig { limit: 100_000 }));
    assert_eq!(out.len(), 100_000);
}

#[test]
fn decompression_bomb_fails_without_allocating_past_the_limit() {
    // 100 MB of zeros compress to about 100 KB.
    let mut compressor = Compressor::new(&DeflateParams::default(), Role::Client, 9);
    let mut payload = Vec::new();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..99 {
        compressor.compress(&zeros, false, &mut payload).unwrap();
    }
    compressor.compress(&zeros, true, &mut payload).unwrap();
    assert!(payload.len() < 200_000, "{}", payload.len());

    let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Server);
    let mut out = Vec::new();
    let result = decompressor.decompress(&payload, &mut out, LIMIT);
    assert_eq!(result, Err(DeflateError::TooBig { limit: LIMIT }));
    assert!(out.len() <= LIMIT);
    assert!(out.capacity() <= LIMIT, "capacity {}", out.capacity());
}

#[test]
fn limit_counts_existing_output() {
    let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Client);
    let mut out = vec![0u8; 10];
    let result = decompressor.decompress(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 12);
    assert_eq!(result, Err(DeflateError::TooBig { limit: 12 }));
    assert_eq!(out.len(), 12);
}

// Parameters and negotiation: RFC 7692 section 7.1.

#[test]
fn formats_parameters_as_header_value() {
    assert_eq!(
        DeflateParams::default().to_header_value(),
        "permessage-deflate"
    );
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: Some(12),
        client_max_window_bits: Some(10),
    };
    assert_eq!(
        params.to_header_value(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=12; client_max_window_bits=10"
    );
}

#[test]
fn checks_config_ranges() {
    assert_eq!(DeflateConfig::default().check(), Ok(()));
    for bits in [Some(7), Some(16)] {
        let cfg = DeflateConfig {
            server_max_window_bits: bits,
            ..DeflateConfig::default()
        };
        assert!(cfg.check().is_err());
        let cfg = DeflateConfig {
            client_max_window_bits: bits,
            ..DeflateConfig::default()
        };
        assert!(cfg.check().is_err());
    }
    let cfg = DeflateConfig {
        level: 10,
        ..DeflateConfig::default()
    };
    assert!(cfg.check().is_err());
}

fn negotiate(
    params: &[(&str, Option<&str>)],
    cfg: &DeflateConfig,
) -> Option<(DeflateParams, String)> {
    negotiate_server(&[ext(params)], cfg)
}

fn agreed(params: &[(&str, Option<&str>)], cfg: &DeflateConfig) -> Option<DeflateParams> {
    negotiate(params, cfg).map(|(params, _)| params)
}

#[test]
fn server_accepts_plain_offer() {
    assert_eq!(
        negotiate(&[], &DeflateConfig::default()),
        Some((DeflateParams::default(), "permessage-deflate".to_owned()))
    );
}

#[test]
fn server_ignores_other_extensions_and_takes_first_acceptable_offer() {
    let offers = [
        Extension {
            name: "x-webkit-deflate-frame".to_owned(),
            params: vec![],
        },
        ext(&[("bogus", None)]),
        ext(&[("server_max_window_bits", Some("10"))]),
        ext(&[]),
    ];
    let (params, header) = negotiate_server(&offers, &DeflateConfig::default()).unwrap();
    assert_eq!(params.server_max_window_bits, Some(10));
    assert_eq!(header, "permessage-deflate; server_max_window_bits=10");
}

#[test]
fn server_matches_extension_name_case_insensitively() {
    let offer = Extension {
        name: "PerMessage-Deflate".to_owned(),
        params: vec![],
    };
    assert!(negotiate_server(&[offer], &DeflateConfig::default()).is_some());
}

#[test]
fn server_declines_when_nothing_is_offered() {
    assert_eq!(negotiate_server(&[], &DeflateConfig::default()), None);
}

#[test]
fn server_echoes_server_no_context_takeover() {
    let params = agreed(
        &[("server_no_context_takeover", None)],
        &DeflateConfig::default(),
    )
    .unwrap();
    assert!(params.server_no_context_takeover);
}

#[test]
fn server_adds_its_own_no_context_takeover() {
    let cfg = DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    let (params, header) = negotiate(&[], &cfg).unwrap();
    assert!(params.server_no_context_takeover && params.client_no_context_takeover);
    assert_eq!(
        header,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
}

#[test]
fn server_echoes_client_no_context_takeover() {
    let params = agreed(
        &[("client_no_context_takeover", None)],
        &DeflateConfig::default(),
    )
    .unwrap();
    assert!(params.client_no_context_takeover);
}

#[test]
fn server_repeats_offered_server_max_window_bits() {
    let params = agreed(
        &[("server_max_window_bits", Some("10"))],
        &DeflateConfig::default(),
    )
    .unwrap();
    assert_eq!(params.server_max_window_bits, Some(10));
}

#[test]
fn server_lowers_server_max_window_bits_to_its_config() {
    let cfg = DeflateConfig {
        server_max_window_bits: Some(9),
        ..DeflateConfig::default()
    };
    assert_eq!(
        agreed(&[("server_max_window_bits", Some("12"))], &cfg)
            .unwrap()
            .server_max_window_bits,
        Some(9)
    );
    assert_eq!(
        agreed(&[("server_max_window_bits", Some("8"))], &cfg)
            .unwrap()
            .server_max_window_bits,
        Some(8)
    );
    assert_eq!(agreed(&[], &cfg).unwrap().server_max_window_bits, Some(9));
}

#[test]
fn server_accepts_server_max_window_bits_8() {
    let params = agreed(
        &[("server_max_window_bits", Some("8"))],
        &DeflateConfig::default(),
    )
    .unwrap();
    assert_eq!(params.server_max_window_bits, Some(8));
}

#[test]
fn server_leaves_client_window_alone_by_default() {
    let params = agreed(
        &[("client_max_window_bits", None)],
        &DeflateConfig::default(),
    )
    .unwrap();
    assert_eq!(params.client_max_window_bits, None);
}

#[test]
fn server_sets_client_max_window_bits_when_allowed() {
    let cfg = DeflateConfig {
        client_max_window_bits: Some(10),
        ..DeflateConfig::default()
    };
    let (params, header) = negotiate(&[("client_max_window_bits", None)], &cfg).unwrap();
    assert_eq!(params.client_max_window_bits, Some(10));
    assert_eq!(header, "permessage-deflate; client_max_window_bits=10");
    assert_eq!(
        agreed(&[("client_max_window_bits", Some("12"))], &cfg)
            .unwrap()
            .client_max_window_bits,
        Some(10)
    );
    assert_eq!(
        agreed(&[("client_max_window_bits", Some("9"))], &cfg)
            .unwrap()
            .client_max_window_bits,
        Some(9)
    );
}

#[test]
fn server_takes_the_clients_window_hint() {
    let params = agreed(
        &[("client_max_window_bits", Some("11"))],
        &DeflateConfig::default(),
    )
    .unwrap();
    assert_eq!(params.client_max_window_bits, Some(11));
}

#[test]
fn server_declines_offer_that_cannot_cap_the_client_window() {
    let cfg = DeflateConfig {
        client_max_window_bits: Some(10),
        ..DeflateConfig::default()
    };
    assert_eq!(negotiate(&[], &cfg), None);
    let cfg = DeflateConfig {
        client_max_window_bits: Some(15),
        ..DeflateConfig::default()
    };
    assert_eq!(agreed(&[], &cfg), Some(DeflateParams::default()));
}

#[test]
fn server_declines_duplicate_parameters() {
    let cfg = DeflateConfig::default();
    for name in [
        "server_no_context_takeover",
        "client_no_context_takeover",
        "client_max_window_bits",
    ] {
        assert_eq!(
            negotiate(&[(name, None), (name, None)], &cfg),
            None,
            "{name}"
        );
    }
    assert_eq!(
        negotiate(
            &[
                ("server_max_window_bits", Some("10")),
                ("server_max_window_bits", Some("10"))
            ],
            &cfg
        ),
        None
    );
    assert_eq!(
        negotiate(
            &[
                ("client_max_window_bits", None),
                ("client_max_window_bits", Some("10"))
            ],
            &cfg
        ),
        None
    );
}

#[test]
fn server_declines_unknown_parameters() {
    assert_eq!(negotiate(&[("mux", None)], &DeflateConfig::default()), None);
}

#[test]
fn server_declines_bad_values() {
    let cfg = DeflateConfig::default();
    for value in ["7", "16", "08", "+9", "9.0", "", "ten", " 9", "150"] {
        assert_eq!(
            negotiate(&[("server_max_window_bits", Some(value))], &cfg),
            None,
            "{value}"
        );
        assert_eq!(
            negotiate(&[("client_max_window_bits", Some(value))], &cfg),
            None,
            "{value}"
        );
    }
    assert_eq!(negotiate(&[("server_max_window_bits", None)], &cfg), None);
    assert_eq!(
        negotiate(&[("server_no_context_takeover", Some("1"))], &cfg),
        None
    );
    assert_eq!(
        negotiate(&[("client_no_context_takeover", Some(""))], &cfg),
        None
    );
}

#[test]
fn server_accepts_every_valid_window_size() {
    for bits in 8..=15u8 {
        let value = bits.to_string();
        let params = agreed(
            &[
                ("server_max_window_bits", Some(&value)),
                ("client_max_window_bits", Some(&value)),
            ],
            &DeflateConfig::default(),
        )
        .unwrap();
        assert_eq!(params.server_max_window_bits, Some(bits));
        assert_eq!(params.client_max_window_bits, Some(bits));
    }
}

#[test]
fn client_offers_client_max_window_bits_without_value_by_default() {
    assert_eq!(
        client_offer(&DeflateConfig::default()),
        "permessage-deflate; client_max_window_bits"
    );
}

#[test]
fn client_offers_every_configured_parameter() {
    let cfg = DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: Some(10),
        client_max_window_bits: Some(11),
        ..DeflateConfig::default()
    };
    assert_eq!(
        client_offer(&cfg),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=10; client_max_window_bits=11"
    );
}

#[test]
fn server_accepts_what_the_client_offers() {
    let cfg = DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: Some(10),
        client_max_window_bits: Some(11),
        ..DeflateConfig::default()
    };
    let offers = crate::handshake::parse_extensions(&[&client_offer(&cfg)]).unwrap();
    let (server_params, header) = negotiate_server(&offers, &DeflateConfig::default()).unwrap();
    let response = crate::handshake::parse_extensions(&[&header]).unwrap();
    let client_params = accept_response(&response[0], &cfg).unwrap();
    assert_eq!(client_params, server_params);
    assert_eq!(
        server_params,
        DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(11),
        }
    );
}

fn accept(
    params: &[(&str, Option<&str>)],
    cfg: &DeflateConfig,
) -> Result<DeflateParams, DeflateError> {
    accept_response(&ext(params), cfg)
}

#[test]
fn client_accepts_plain_response() {
    assert_eq!(
        accept(&[], &DeflateConfig::default()),
        Ok(DeflateParams::default())
    );
}

#[test]
fn client_rejects_other_extension() {
    let response = Extension {
        name: "x-foo".to_owned(),
        params: vec![],
    };
    assert!(matches!(
        accept_response(&response, &DeflateConfig::default()),
        Err(DeflateError::Unsupported(_))
    ));
}

#[test]
fn client_accepts_unrequested_no_context_takeover() {
    let params = accept(
        &[
            ("server_no_context_takeover", None),
            ("client_no_context_takeover", None),
        ],
        &DeflateConfig::default(),
    )
    .unwrap();
    assert!(params.server_no_context_takeover && params.client_no_context_takeover);
}

#[test]
fn client_keeps_its_own_no_context_takeover_when_not_echoed() {
    let cfg = DeflateConfig {
        client_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    assert!(accept(&[], &cfg).unwrap().client_no_context_takeover);
}

#[test]
fn client_requires_requested_server_no_context_takeover() {
    let cfg = DeflateConfig {
        server_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    assert!(matches!(
        accept(&[], &cfg),
        Err(DeflateError::Unsupported(_))
    ));
    assert!(accept(&[("server_no_context_takeover", None)], &cfg).is_ok());
}

#[test]
fn client_accepts_unrequested_server_max_window_bits() {
    let params = accept(
        &[("server_max_window_bits", Some("9"))],
        &DeflateConfig::default(),
    )
    .unwrap();
    assert_eq!(params.server_max_window_bits, Some(9));
}

#[test]
fn client_requires_requested_server_max_window_bits() {
    let cfg = DeflateConfig {
        server_max_window_bits: Some(10),
        ..DeflateConfig::default()
    };
    assert!(matches!(
        accept(&[], &cfg),
        Err(DeflateError::Unsupported(_))
    ));
    assert!(matches!(
        accept(&[("server_max_window_bits", Some("11"))], &cfg),
        Err(DeflateError::Unsupported(_))
    ));
    assert_eq!(
        accept(&[("server_max_window_bits", Some("10"))], &cfg)
            .unwrap()
            .server_max_window_bits,
        Some(10)
    );
    assert_eq!(
        accept(&[("server_max_window_bits", Some("8"))], &cfg)
            .unwrap()
            .server_max_window_bits,
        Some(8)
    );
}

#[test]
fn client_accepts_client_max_window_bits_with_value() {
    let params = accept(
        &[("client_max_window_bits", Some("8"))],
        &DeflateConfig::default(),
    )
    .unwrap();
    assert_eq!(params.client_max_window_bits, Some(8));
}

#[test]
fn client_rejects_client_max_window_bits_without_value() {
    assert_eq!(
        accept(
            &[("client_max_window_bits", None)],
            &DeflateConfig::default()
        ),
        Err(DeflateError::MissingParameterValue(
            "client_max_window_bits".to_owned()
        ))
    );
}

#[test]
fn client_rejects_client_max_window_bits_above_its_offer() {
    let cfg = DeflateConfig {
        client_max_window_bits: Some(10),
        ..DeflateConfig::default()
    };
    assert!(matches!(
        accept(&[("client_max_window_bits", Some("12"))], &cfg),
        Err(DeflateError::Unsupported(_))
    ));
    assert_eq!(
        accept(&[("client_max_window_bits", Some("9"))], &cfg)
            .unwrap()
            .client_max_window_bits,
        Some(9)
    );
    // Without an answer, the client keeps to its own cap.
    assert_eq!(accept(&[], &cfg).unwrap().client_max_window_bits, Some(10));
}

#[test]
fn client_rejects_malformed_responses() {
    let cfg = DeflateConfig::default();
    assert_eq!(
        accept(&[("mux", None)], &cfg),
        Err(DeflateError::UnknownParameter("mux".to_owned()))
    );
    assert_eq!(
        accept(
            &[
                ("server_no_context_takeover", None),
                ("server_no_context_takeover", None)
            ],
            &cfg
        ),
        Err(DeflateError::DuplicateParameter(
            "server_no_context_takeover".to_owned()
        ))
    );
    assert_eq!(
        accept(&[("server_max_window_bits", Some("16"))], &cfg),
        Err(DeflateError::InvalidParameterValue {
            name: "server_max_window_bits".to_owned(),
            value: "16".to_owned()
        })
    );
    assert_eq!(
        accept(&[("client_no_context_takeover", Some("yes"))], &cfg),
        Err(DeflateError::InvalidParameterValue {
            name: "client_no_context_takeover".to_owned(),
            value: "yes".to_owned()
        })
    );
    assert!(accept(&[("server_max_window_bits", None)], &cfg).is_err());
}

#[test]
fn error_messages_are_lowercase_without_period() {
    let errors = [
        DeflateError::TooBig { limit: 1 },
        DeflateError::Corrupt("invalid block type".to_owned()),
        DeflateError::DuplicateParameter("x".to_owned()),
        DeflateError::UnknownParameter("x".to_owned()),
        DeflateError::MissingParameterValue("x".to_owned()),
    ];
    for error in errors {
        let message = error.to_string();
        assert!(
            message.starts_with(|c: char| c.is_ascii_lowercase()),
            "{message}"
        );
        assert!(!message.ends_with('.'), "{message}");
    }
}

// Properties.

fn arb_params() -> impl Strategy<Value = DeflateParams> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::option::of(8u8..=15),
        prop::option::of(8u8..=15),
    )
        .prop_map(
            |(
                server_no_context_takeover,
                client_no_context_takeover,
                server_max_window_bits,
                client_max_window_bits,
            )| {
                DeflateParams {
                    server_no_context_takeover,
                    client_no_context_takeover,
                    server_max_window_bits,
                    client_max_window_bits,
                }
            },
        )
}

/// Split `data` at the given fractions (in thousandths).
fn split<'a>(data: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|cut| data.len() * usize::from(*cut) / 1000)
        .collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for point in points {
        pieces.push(&data[start..point]);
        start = point;
    }
    pieces.push(&data[start..]);
    pieces
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn compressed_messages_round_trip_over_any_fragmentation(
        params in arb_params(),
        level in 0u32..=9,
        messages in prop::collection::vec(
            (
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..2000),
                    prop::collection::vec(prop::sample::select(b"ab ".to_vec()), 0..5000),
                ],
                prop::collection::vec(0u16..=1000, 0..4),
                prop::collection::vec(0u16..=1000, 0..4),
            ),
            1..5,
        ),
    ) {
        for (sender, receiver) in [(Role::Server, Role::Client), (Role::Client, Role::Server)] {
            let mut compressor = Compressor::new(&params, sender, level);
            let mut decompressor = Decompressor::new(&params, receiver);
            for (data, send_cuts, receive_cuts) in &messages {
                // Compress fragment by fragment, then feed the concatenated
                // payload in arbitrary chunks.
                let fragments = split(data, send_cuts);
                let mut payload = Vec::new();
                for (i, fragment) in fragments.iter().enumerate() {
                    compressor.compress(fragment, i + 1 == fragments.len(), &mut payload).unwrap();
                }
                let mut out = Vec::new();
                for chunk in split(&payload, receive_cuts) {
                    decompressor.decompress(chunk, &mut out, data.len()).unwrap();
                }
                decompressor.finish(&mut out, data.len()).unwrap();
                prop_assert_eq!(&out, data);
            }
        }
    }

    #[test]
    fn decompressor_never_panics_or_exceeds_its_limit(
        payload in prop::collection::vec(any::<u8>(), 0..512),
        limit in 0usize..4096,
    ) {
        let mut decompressor = Decompressor::new(&DeflateParams::default(), Role::Server);
        let mut out = Vec::new();
        let _ = decompressor
            .decompress(&payload, &mut out, limit)
            .and_then(|()| decompressor.finish(&mut out, limit));
        prop_assert!(out.len() <= limit);
        prop_assert!(out.capacity() <= limit);
    }
}

#[test]
fn states_released_without_context_takeover_are_reused_clean_by_other_connections() {
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let text: Vec<u8> = (0..200)
        .flat_map(|i| format!("item {i}, ").into_bytes())
        .collect();
    let (mut fresh, _) = pair(params, 6);
    let expected = compress(&mut fresh, &text);
    // Connection A sends a message and leaves its states as the thread's spares...
    let (mut a, mut a_in) = pair(params, 6);
    let other = compress(&mut a, b"something else entirely, to dirty the window");
    assert!(a.release_idle());
    assert_eq!(
        decompress(&mut a_in, &other),
        b"something else entirely, to dirty the window"
    );
    assert!(a_in.release());
    // ...which connection B picks up: same bytes as a fresh compressor, same text.
    let (mut b, mut b_in) = pair(params, 6);
    assert_eq!(compress(&mut b, &text), expected);
    assert_eq!(decompress(&mut b_in, &expected), text);
    // A compressor in the middle of a message keeps its context.
    let mut out = Vec::new();
    b.compress(b"part", false, &mut out).unwrap();
    assert!(!b.release_idle());
    assert!(b.is_allocated());
    b.compress(b" two", true, &mut out).unwrap();
    assert!(b.release_idle());
}
