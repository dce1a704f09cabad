// SPDX-License-Identifier: MIT
//! Feed arbitrary bytes, cut at arbitrary points, to both roles of the protocol
//! (with and without permessage-deflate). It must never panic, and every event
//! must respect the configured limits.
#![no_main]

use _rust::deflate::DeflateParams;
use _rust::frame::Role;
use _rust::protocol::{Config, EventKind, Protocol};
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
    let mut p = Protocol::new(cfg);
    let step = usize::from(step).max(1);
    for chunk in input.chunks(step) {
        p.receive_data(chunk);
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
        // Replies must be well-formed enough to send: echo a message back.
        let _ = p.send_message(1, b"echo");
        p.take_output();
    }
    p.receive_eof();
});
