// SPDX-License-Identifier: MIT
//! Feed arbitrary bytes, cut at arbitrary points, to both roles of the protocol
//! (with and without permessage-deflate, with and without embedder memory for
//! large binary messages, half of the pieces written "directly" into it when the
//! protocol offers a target), with the default compressor or an extreme one. It
//! must never panic, every event must respect the configured limits, no
//! allocation may be released twice, a clean close implies a closed state, and
//! releasing the connection frees all its compression state.
#![no_main]

use _rust::deflate::{CompressorSettings, DeflateParams};
use _rust::external::VecAllocator;
use _rust::frame::Role;
use _rust::protocol::{Config, EventKind, Protocol, State};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((&step, input)) = rest.split_first() else {
        return;
    };
    let mut cfg = Config::new(if flags & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    });
    cfg.max_message_size = 4096;
    cfg.max_frame_size = 2048;
    if flags & 2 != 0 {
        cfg.deflate = Some(DeflateParams {
            server_no_context_takeover: flags & 4 != 0,
            client_no_context_takeover: flags & 8 != 0,
            server_max_window_bits: if flags & 16 != 0 { Some(9) } else { None },
            client_max_window_bits: if flags & 32 != 0 { Some(10) } else { None },
        });
    }
    if flags & 128 != 0 {
        cfg.compressor = CompressorSettings {
            level: 9,
            mem_level: 1,
            window_bits: 8,
            ..CompressorSettings::default()
        };
    }
    let mut p = Protocol::new(cfg);
    let external = flags & 64 != 0;
    if external {
        p.set_allocator(Box::new(VecAllocator::default()), 16);
    }
    let step = usize::from(step).max(1);
    for (i, chunk) in input.chunks(step).enumerate() {
        match p.direct_target() {
            Some((ptr, room)) if external && i % 2 == 1 => {
                let n = room.min(chunk.len());
                // SAFETY: the protocol hands out `room` writable bytes.
                unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), ptr, n) };
                p.receive_direct(n);
            }
            _ => p.receive_data(chunk),
        }
        for ev in p.events() {
            let payload = p.payload(ev);
            match ev.kind {
                EventKind::Text => {
                    assert!(payload.len() <= 4096);
                    assert!(std::str::from_utf8(payload).is_ok());
                }
                EventKind::Binary => assert!(payload.len() <= 4096),
                _ => assert!(payload.len() <= 125),
            }
        }
        // Replies must be well-formed enough to send: echo a message back, before
        // the batch ends (a failure found after its messages is applied then).
        let _ = p.send_message(1, b"echo");
        if i % 4 == 3 {
            // Two idle checks of the server's sweep with no message between them:
            // the compressor goes, and the next echo starts from an empty window.
            p.release_idle_compressor();
            p.release_idle_compressor();
        }
        if i % 3 != 2 {
            // Otherwise the next batch ends this one.
            p.end_batch();
        }
        p.take_output();
    }
    p.receive_eof();
    if p.close_ok() {
        assert_eq!(p.state(), State::Closed);
    }
    // The transport goes: everything is freed, and nothing works any more.
    p.release_all();
    assert_eq!(p.compression_allocated(), (false, false));
    assert_eq!(p.state(), State::Closed);
    assert!(p.data_to_send().is_empty());
    assert!(p.send_message(1, b"late").is_err());
    p.receive_data(input);
    assert!(p.events().is_empty());
});
