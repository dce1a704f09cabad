// SPDX-License-Identifier: MIT
//! Sans-I/O tests: feed bytes, assert events and output bytes.

use super::receive::unmask_append;
use super::*;
use crate::frame::{Frame, OP_CONTINUATION};
use proptest::prelude::*;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn server() -> Protocol {
    Protocol::new(Config::new(Role::Server))
}

fn client() -> Protocol {
    let mut cfg = Config::new(Role::Client);
    cfg.fixed_mask = Some(KEY);
    Protocol::new(cfg)
}

fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Frame {
    Frame {
        fin,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode,
        payload: payload.to_vec(),
    }
}

/// A frame as a client sends it (masked).
fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    frame(opcode, fin, payload).serialize(Some(KEY))
}

fn events(p: &Protocol) -> Vec<(EventKind, u16, Vec<u8>)> {
    p.events()
        .iter()
        .map(|e| (e.kind, e.code, p.payload(e).to_vec()))
        .collect()
}

/// Feed `wire` split at `cuts` (any values, taken modulo its length), collecting
/// what `read` reports after each piece.
fn receive_in_pieces<T>(
    p: &mut Protocol,
    wire: &[u8],
    cuts: &[usize],
    read: impl Fn(&Protocol) -> Vec<T>,
) -> Vec<T> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.sort_unstable();
    let mut got = Vec::new();
    let mut last = 0;
    for point in points.into_iter().chain(std::iter::once(wire.len())) {
        p.receive_data(&wire[last..point]);
        got.extend(read(p));
        last = point;
    }
    got
}

fn sent_frames(p: &mut Protocol) -> Vec<Frame> {
    let out = p.take_output();
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < out.len() {
        let (f, n) = Frame::parse(&out[pos..]).unwrap().unwrap();
        frames.push(f);
        pos += n;
    }
    frames
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(reason.as_bytes());
    v
}

fn assert_failing(p: &mut Protocol, code: u16) {
    let frames = sent_frames(p);
    let last = frames.last().expect("a close frame was sent");
    assert_eq!(last.opcode, OP_CLOSE);
    assert_eq!(
        u16::from_be_bytes([last.payload[0], last.payload[1]]),
        code,
        "{:?}",
        p.error()
    );
    assert!(p.close_expected());
}

#[test]
fn server_receives_masked_text_message() {
    let mut p = server();
    p.receive_data(&masked(OP_TEXT, true, b"Hello"));
    assert_eq!(events(&p), vec![(EventKind::Text, 0, b"Hello".to_vec())]);
    assert!(p.data_to_send().is_empty());
}

#[test]
fn server_receives_many_frames_in_one_buffer() {
    let mut p = server();
    let mut buf = Vec::new();
    for i in 0..1000u32 {
        buf.extend(masked(OP_BINARY, true, &i.to_be_bytes()));
    }
    p.receive_data(&buf);
    assert_eq!(p.events().len(), 1000);
    assert_eq!(p.payload(&p.events()[999]), 999u32.to_be_bytes());
}

#[test]
fn server_rejects_unmasked_frame_with_1002() {
    let mut p = server();
    p.receive_data(&frame(OP_TEXT, true, b"x").serialize(None));
    assert_failing(&mut p, 1002);
    assert!(p.events().is_empty());
}

#[test]
fn client_rejects_masked_frame_with_1002() {
    let mut p = client();
    p.receive_data(&masked(OP_TEXT, true, b"x"));
    assert_failing(&mut p, 1002);
}

#[test]
fn fragmented_message_with_interleaved_ping_is_reassembled() {
    let mut p = server();
    let mut buf = masked(OP_TEXT, false, b"Hel");
    buf.extend(masked(OP_PING, true, b"p"));
    buf.extend(masked(OP_CONTINUATION, true, b"lo"));
    p.receive_data(&buf);
    assert_eq!(
        events(&p),
        vec![
            (EventKind::Ping, 0, b"p".to_vec()),
            (EventKind::Text, 0, b"Hello".to_vec())
        ]
    );
    assert_eq!(sent_frames(&mut p), vec![frame(OP_PONG, true, b"p")]);
}

#[test]
fn message_spanning_several_reads_is_delivered_once() {
    let mut p = server();
    let wire = masked(OP_BINARY, true, &vec![7u8; 100_000]);
    for (i, chunk) in wire.chunks(4096).enumerate() {
        p.receive_data(chunk);
        if i + 1 < wire.len().div_ceil(4096) {
            assert!(p.events().is_empty());
        }
    }
    assert_eq!(events(&p), vec![(EventKind::Binary, 0, vec![7u8; 100_000])]);
}

#[test]
fn continuation_without_message_fails_with_1002() {
    let mut p = server();
    p.receive_data(&masked(OP_CONTINUATION, true, b"x"));
    assert_failing(&mut p, 1002);
}

#[test]
fn new_message_inside_fragmented_one_fails_with_1002() {
    let mut p = server();
    let mut buf = masked(OP_TEXT, false, b"a");
    buf.extend(masked(OP_TEXT, true, b"b"));
    p.receive_data(&buf);
    assert_failing(&mut p, 1002);
}

#[test]
fn invalid_utf8_fails_fast_before_the_last_fragment() {
    let mut p = server();
    p.receive_data(&masked(OP_TEXT, false, b"ok\xf4\x90"));
    assert_failing(&mut p, 1007);
}

#[test]
fn truncated_utf8_at_end_of_message_fails_with_1007() {
    let mut p = server();
    p.receive_data(&masked(OP_TEXT, true, b"ok\xe2\x82"));
    assert_failing(&mut p, 1007);
}

#[test]
fn utf8_split_across_fragments_is_valid() {
    let mut p = server();
    let text = "κόσμε".as_bytes();
    let mut buf = masked(OP_TEXT, false, &text[..3]);
    buf.extend(masked(OP_CONTINUATION, true, &text[3..]));
    p.receive_data(&buf);
    assert_eq!(events(&p), vec![(EventKind::Text, 0, text.to_vec())]);
}

#[test]
fn oversized_frame_fails_with_1009_at_the_header() {
    let mut cfg = Config::new(Role::Server);
    cfg.max_frame_size = 10;
    cfg.max_message_size = 100;
    let mut p = Protocol::new(cfg);
    let wire = masked(OP_BINARY, true, &[0; 11]);
    p.receive_data(&wire[..6]);
    assert_failing(&mut p, 1009);
}

#[test]
fn oversized_fragmented_message_fails_with_1009() {
    let mut cfg = Config::new(Role::Server);
    cfg.max_message_size = 10;
    let mut p = Protocol::new(cfg);
    let mut buf = masked(OP_BINARY, false, &[0; 6]);
    buf.extend(masked(OP_CONTINUATION, true, &[0; 6]));
    p.receive_data(&buf);
    assert_failing(&mut p, 1009);
}

#[test]
fn reserved_bits_and_opcodes_fail_with_1002() {
    for first in [0xa1u8, 0x91, 0xc1, 0x83, 0x8b] {
        let mut p = server();
        p.receive_data(&[first, 0x80, 1, 2, 3, 4]);
        assert_failing(&mut p, 1002);
    }
}

#[test]
fn control_frame_too_long_or_fragmented_fails_with_1002() {
    let mut p = server();
    p.receive_data(&masked(OP_PING, true, &[0; 126]));
    assert_failing(&mut p, 1002);
    let mut p = server();
    p.receive_data(&masked(OP_PING, false, b""));
    assert_failing(&mut p, 1002);
}

#[test]
fn close_is_echoed_and_completes_the_handshake() {
    let mut p = server();
    p.receive_data(&masked(OP_CLOSE, true, &close_payload(1000, "bye")));
    assert_eq!(events(&p), vec![(EventKind::Close, 1000, b"bye".to_vec())]);
    assert_eq!(
        sent_frames(&mut p),
        vec![frame(OP_CLOSE, true, &close_payload(1000, ""))]
    );
    assert_eq!(p.state(), State::Closed);
    assert!(p.close_expected());
}

#[test]
fn empty_close_is_answered_with_empty_close() {
    let mut p = server();
    p.receive_data(&masked(OP_CLOSE, true, b""));
    assert_eq!(
        events(&p),
        vec![(EventKind::Close, CLOSE_NO_STATUS, vec![])]
    );
    assert_eq!(sent_frames(&mut p), vec![frame(OP_CLOSE, true, b"")]);
}

#[test]
fn bad_close_payloads_fail_with_the_right_code() {
    let mut p = server();
    p.receive_data(&masked(OP_CLOSE, true, &[0x03]));
    assert_failing(&mut p, 1002);
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        let mut p = server();
        p.receive_data(&masked(OP_CLOSE, true, &code.to_be_bytes()));
        assert_failing(&mut p, 1002);
    }
    let mut p = server();
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"\xff");
    p.receive_data(&masked(OP_CLOSE, true, &payload));
    assert_failing(&mut p, 1007);
}

#[test]
fn valid_close_codes_are_echoed() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let mut p = server();
        p.receive_data(&masked(OP_CLOSE, true, &code.to_be_bytes()));
        assert_eq!(
            sent_frames(&mut p),
            vec![frame(OP_CLOSE, true, &code.to_be_bytes())],
            "code {code}"
        );
    }
}

#[test]
fn data_after_close_is_ignored() {
    let mut p = server();
    let mut buf = masked(OP_CLOSE, true, &close_payload(1000, ""));
    buf.extend(masked(OP_TEXT, true, b"late"));
    p.receive_data(&buf);
    assert_eq!(events(&p).len(), 1);
    p.receive_data(&masked(OP_TEXT, true, b"later"));
    assert!(p.events().is_empty());
}

#[test]
fn we_initiate_close_and_peer_answers() {
    let mut p = client();
    p.send_close(Some(1000), "done").unwrap();
    assert_eq!(p.state(), State::Closing);
    assert_eq!(
        sent_frames(&mut p),
        vec![frame(OP_CLOSE, true, &close_payload(1000, "done"))]
    );
    assert_eq!(p.send_message(OP_TEXT, b"x"), Err(SendError::Closing));
    p.receive_data(&frame(OP_CLOSE, true, &close_payload(1000, "")).serialize(None));
    assert_eq!(p.state(), State::Closed);
    assert!(p.data_to_send().is_empty(), "no second close frame");
}

#[test]
fn eof_without_close_reports_1006() {
    let mut p = server();
    p.receive_data(&masked(OP_TEXT, false, b"par"));
    p.receive_eof();
    assert_eq!(events(&p), vec![(EventKind::Close, CLOSE_ABNORMAL, vec![])]);
    assert_eq!(p.state(), State::Closed);
}

#[test]
fn close_is_ok_needs_close_frames_both_ways_with_ok_codes() {
    assert_eq!(OK_CLOSE_CODES, [1000, 1001, CLOSE_NO_STATUS]);
    for sent in OK_CLOSE_CODES {
        for received in OK_CLOSE_CODES {
            assert!(close_is_ok(Some(sent), Some(received)), "{sent} {received}");
        }
    }
    for (sent, received) in [
        (None, None),
        (Some(1000), None),
        (None, Some(1000)),
        (Some(1000), Some(CLOSE_ABNORMAL)),
        (Some(1000), Some(1002)),
        (Some(1011), Some(1000)),
        (Some(1002), Some(1002)),
        (Some(4000), Some(4000)),
    ] {
        assert!(!close_is_ok(sent, received), "{sent:?} {received:?}");
    }
}

#[test]
fn close_ok_after_a_clean_closing_handshake_either_way() {
    for code in [1000u16, 1001] {
        let mut p = server();
        assert!(!p.close_ok());
        p.receive_data(&masked(OP_CLOSE, true, &close_payload(code, "bye")));
        assert!(p.close_ok(), "peer closed with {code}");
    }
    let mut p = server();
    p.receive_data(&masked(OP_CLOSE, true, b""));
    assert!(p.close_ok(), "empty close frames both ways (1005)");
    let mut p = client();
    p.send_close(Some(1000), "done").unwrap();
    assert!(!p.close_ok(), "no close frame received yet");
    p.receive_data(&frame(OP_CLOSE, true, &close_payload(1001, "")).serialize(None));
    assert!(p.close_ok());
}

#[test]
fn close_ok_is_false_after_an_error_or_a_lost_close_frame() {
    let mut p = server();
    p.receive_data(&masked(OP_CLOSE, true, &close_payload(1011, "oops")));
    assert!(!p.close_ok(), "error code echoed");
    let mut p = server();
    p.receive_data(&masked(OP_TEXT, true, b"\xff"));
    p.receive_data(&masked(OP_CLOSE, true, &close_payload(1007, "")));
    assert!(!p.close_ok(), "we failed the connection with 1007");
    let mut p = client();
    p.send_close(Some(1000), "").unwrap();
    p.receive_eof();
    assert!(
        !p.close_ok(),
        "transport ended before the peer's close frame"
    );
    let mut p = server();
    p.receive_eof();
    assert!(!p.close_ok(), "no close frame either way");
}

#[test]
fn compression_level_defaults_to_the_shared_constant() {
    use crate::deflate::{CompressorSettings, DeflateConfig, DEFAULT_COMPRESSION_LEVEL};
    assert_eq!(DEFAULT_COMPRESSION_LEVEL, 1);
    let settings = Config::new(Role::Client).compressor;
    assert_eq!(settings, CompressorSettings::default());
    assert_eq!(settings.level, DEFAULT_COMPRESSION_LEVEL);
    assert_eq!(DeflateConfig::default().level, DEFAULT_COMPRESSION_LEVEL);
}

#[test]
fn client_masks_what_it_sends() {
    let mut p = client();
    p.send_message(OP_TEXT, b"Hello").unwrap();
    assert_eq!(p.take_output(), masked(OP_TEXT, true, b"Hello"));
}

#[test]
fn client_masks_are_unpredictable_without_fixed_key() {
    let mut cfg = Config::new(Role::Client);
    cfg.mask_seed = [9; 32];
    let mut p = Protocol::new(cfg);
    let mut keys = std::collections::HashSet::new();
    for _ in 0..50 {
        p.send_message(OP_BINARY, b"").unwrap();
        let out = p.take_output();
        keys.insert([out[2], out[3], out[4], out[5]]);
    }
    assert!(keys.len() > 45);
}

#[test]
fn sending_fragments_checks_the_order() {
    let mut p = server();
    assert_eq!(
        p.send_frame(OP_CONTINUATION, b"x", true),
        Err(SendError::UnexpectedContinuation)
    );
    p.send_frame(OP_TEXT, b"a", false).unwrap();
    assert_eq!(
        p.send_frame(OP_BINARY, b"b", true),
        Err(SendError::ExpectedContinuation)
    );
    p.send_frame(OP_CONTINUATION, b"b", true).unwrap();
    assert_eq!(
        sent_frames(&mut p),
        vec![
            frame(OP_TEXT, false, b"a"),
            frame(OP_CONTINUATION, true, b"b")
        ]
    );
}

#[test]
fn zero_copy_header_only_on_the_server() {
    let mut p = server();
    assert_eq!(p.send_frame_header(OP_BINARY, 70_000, true), Ok(true));
    assert_eq!(
        p.take_output(),
        vec![0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
    );
    let mut c = client();
    assert_eq!(c.send_frame_header(OP_BINARY, 70_000, true), Ok(false));
    assert!(c.take_output().is_empty());
}

#[test]
fn control_payload_limits_on_send() {
    let mut p = server();
    assert_eq!(p.send_ping(&[0; 126]), Err(SendError::ControlTooLong(126)));
    assert_eq!(
        p.send_close(Some(1000), &"x".repeat(124)),
        Err(SendError::ControlTooLong(126))
    );
    assert_eq!(
        p.send_close(Some(1005), ""),
        Err(SendError::InvalidCloseCode(1005))
    );
}

#[test]
fn fail_truncates_long_reasons_on_a_char_boundary() {
    let mut p = server();
    p.fail(1011, &"é".repeat(100));
    let f = &sent_frames(&mut p)[0];
    assert!(f.payload.len() <= 125);
    assert!(std::str::from_utf8(&f.payload[2..]).is_ok());
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_events(
        msgs in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300), 1usize..4), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (is_text, payload, parts) in &msgs {
            let payload: Vec<u8> = if *is_text { String::from_utf8_lossy(payload).into_owned().into_bytes() } else { payload.clone() };
            let op = if *is_text { OP_TEXT } else { OP_BINARY };
            let step = payload.len().div_ceil(*parts).max(1);
            let pieces: Vec<&[u8]> = if payload.is_empty() { vec![&[][..]] } else { payload.chunks(step).collect() };
            for (i, piece) in pieces.iter().enumerate() {
                let opcode = if i == 0 { op } else { OP_CONTINUATION };
                wire.extend(masked(opcode, i + 1 == pieces.len(), piece));
                if i == 0 {
                    wire.extend(masked(OP_PING, true, b"hb"));
                }
            }
            let n_pieces = pieces.len();
            let message = (if *is_text { EventKind::Text } else { EventKind::Binary }, 0, payload.clone());
            let ping = (EventKind::Ping, 0, b"hb".to_vec());
            // The ping follows the first frame: inside the message unless it had one frame.
            if n_pieces > 1 { expected.extend([ping, message]) } else { expected.extend([message, ping]) }
        }
        let mut p = server();
        let got = receive_in_pieces(&mut p, &wire, &cuts, events);
        prop_assert!(p.error().is_none());
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512), role in any::<bool>()) {
        let mut p = if role { server() } else { client() };
        p.receive_data(&data);
        p.receive_eof();
    }
}

#[test]
fn unmask_append_matches_the_scalar_mask_at_every_length_and_offset() {
    let source: Vec<u8> = (0..200u8)
        .map(|b| b.wrapping_mul(31).wrapping_add(7))
        .collect();
    for len in 0..=100 {
        for offset in 0..8 {
            for prefix in [0usize, 3, 64] {
                let mut got = vec![0xAAu8; prefix];
                unmask_append(&mut got, &source[..len], Some(KEY), offset);
                let mut want = source[..len].to_vec();
                crate::mask::apply_mask_fallback(&mut want, KEY, offset);
                assert_eq!(got.len(), prefix + len);
                assert!(got[..prefix].iter().all(|&b| b == 0xAA));
                assert_eq!(&got[prefix..], &want[..], "len {len} offset {offset}");
            }
        }
        let mut plain = vec![1u8];
        unmask_append(&mut plain, &source[..len], None, 0);
        assert_eq!(&plain[1..], &source[..len]);
    }
}

#[test]
fn server_receives_a_large_masked_message_split_at_odd_points() {
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let wire = masked(OP_BINARY, true, &payload);
    for step in [1usize, 7, 4093, 65_536, 262_144] {
        let mut p = server();
        let mut got = Vec::new();
        for part in wire.chunks(step.max(1).min(wire.len())) {
            p.receive_data(part);
            got.extend(events(&p));
        }
        assert_eq!(got.len(), 1, "step {step}");
        assert_eq!(got[0].0, EventKind::Binary);
        assert!(got[0].2 == payload, "step {step}");
    }
}

#[test]
fn release_memory_ends_the_batch_and_keeps_a_message_in_progress() {
    let mut p = server();
    let first = masked(OP_BINARY, true, &vec![7u8; 100_000]);
    p.receive_data(&first);
    assert_eq!(p.events().len(), 1);
    p.release_memory(0);
    assert!(p.events().is_empty());
    assert_eq!(p.data.capacity(), 0);
    // Half a message, then a release: the half stays and the message completes.
    let second = masked(OP_TEXT, true, "é".repeat(40_000).as_bytes());
    let (a, b) = second.split_at(second.len() / 2 + 1);
    p.receive_data(a);
    p.release_memory(0);
    assert!(p.data.capacity() > 0);
    p.receive_data(b);
    assert_eq!(
        events(&p),
        vec![(EventKind::Text, 0, "é".repeat(40_000).into_bytes())]
    );
    // Releasing between messages of one stream changes nothing for the next one.
    p.release_memory(0);
    p.receive_data(&masked(OP_BINARY, true, b"after"));
    assert_eq!(events(&p), vec![(EventKind::Binary, 0, b"after".to_vec())]);
}

// ---- embedder memory for large binary messages ----

/// A `VecAllocator` the test can still inspect after the protocol took it.
#[derive(Clone, Default)]
struct SharedAlloc(std::sync::Arc<std::sync::Mutex<crate::external::VecAllocator>>);

impl MessageAllocator for SharedAlloc {
    fn allocate(&mut self, len: usize) -> Option<(std::ptr::NonNull<u8>, usize)> {
        self.0.lock().unwrap().allocate(len)
    }
    fn release(&mut self, token: usize) {
        self.0.lock().unwrap().release(token);
    }
}

impl SharedAlloc {
    fn outstanding(&self) -> usize {
        self.0.lock().unwrap().outstanding()
    }
    fn allocated(&self) -> usize {
        self.0.lock().unwrap().allocated
    }
}

fn server_with_allocator(min: usize) -> (Protocol, SharedAlloc) {
    let alloc = SharedAlloc::default();
    let mut p = server();
    assert!(p.set_allocator(Box::new(alloc.clone()), min));
    (p, alloc)
}

/// Feed `wire` in pieces ending at `cuts`; whenever a direct target exists, write the
/// next piece there as a socket would, instead of calling `receive_data`.
fn feed_with_direct(
    p: &mut Protocol,
    wire: &[u8],
    cuts: &[usize],
) -> Vec<(EventKind, u16, Vec<u8>)> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.sort_unstable();
    points.push(wire.len());
    let mut got = Vec::new();
    let mut pos = 0;
    for point in points {
        while pos < point {
            if let Some((ptr, room)) = p.direct_target() {
                let n = room.min(point - pos);
                // SAFETY: `direct_target` hands out `room` writable bytes.
                unsafe { std::ptr::copy_nonoverlapping(wire[pos..].as_ptr(), ptr, n) };
                p.receive_direct(n);
                pos += n;
            } else {
                p.receive_data(&wire[pos..point]);
                pos = point;
            }
            got.extend(events(p));
        }
    }
    got
}

#[test]
fn large_binary_messages_land_in_embedder_memory_and_are_released() {
    let (mut p, alloc) = server_with_allocator(1000);
    let big: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let mut wire = masked(OP_BINARY, true, &big);
    wire.extend(masked(OP_BINARY, true, b"small"));
    wire.extend(masked(OP_TEXT, true, &vec![b'a'; 5000]));
    p.receive_data(&wire);
    let evs = p.events().to_vec();
    assert_eq!(evs.len(), 3);
    assert!(
        p.event_token(&evs[0]).is_some(),
        "large binary goes external"
    );
    assert!(p.event_token(&evs[1]).is_none(), "below the minimum");
    assert!(p.event_token(&evs[2]).is_none(), "text stays internal");
    assert_eq!(p.payload(&evs[0]), &big[..]);
    assert_eq!(alloc.outstanding(), 1);
    // The next batch gives the memory back.
    p.receive_data(&masked(OP_PING, true, b""));
    assert_eq!(alloc.outstanding(), 0);
    assert_eq!(alloc.allocated(), 1);
}

#[test]
fn fragmented_and_compressed_messages_never_go_external() {
    let (mut p, alloc) = server_with_allocator(1);
    let mut wire = masked(OP_BINARY, false, &[1u8; 100]);
    wire.extend(masked(OP_CONTINUATION, true, &[2u8; 100]));
    p.receive_data(&wire);
    assert_eq!(events(&p).len(), 1);
    assert_eq!(alloc.allocated(), 0);
}

#[test]
fn direct_receive_unmasks_in_place_at_every_split() {
    let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    let mut wire = masked(OP_BINARY, true, &payload);
    wire.extend(masked(OP_PING, true, b"x"));
    for cuts in [
        vec![3],
        vec![10],
        vec![11, 12, 13, 5000],
        vec![65_537, 69_999],
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    ] {
        let (mut p, alloc) = server_with_allocator(65_536);
        let got = feed_with_direct(&mut p, &wire, &cuts);
        assert_eq!(got.len(), 2, "cuts {cuts:?}");
        assert!(got[0].2 == payload, "cuts {cuts:?}");
        assert_eq!(got[1], (EventKind::Ping, 0, b"x".to_vec()));
        assert!(p.error().is_none());
        drop(p);
        assert_eq!(
            alloc.outstanding(),
            0,
            "dropping the protocol releases everything"
        );
    }
}

#[test]
fn a_message_in_progress_is_released_when_the_connection_fails_or_drops() {
    let (mut p, alloc) = server_with_allocator(10);
    let wire = masked(OP_BINARY, true, &[9u8; 1000]);
    p.receive_data(&wire[..500]);
    assert_eq!(alloc.outstanding(), 1);
    assert!(
        !p.set_allocator(Box::new(SharedAlloc::default()), 10),
        "busy"
    );
    p.fail(1001, "going away");
    assert_eq!(alloc.outstanding(), 0);
    assert!(p.direct_target().is_none());
    let (mut p, alloc) = server_with_allocator(10);
    p.receive_data(&wire[..500]);
    p.receive_eof();
    drop(p);
    assert_eq!(alloc.outstanding(), 0);
}

#[test]
fn release_memory_gives_back_external_messages() {
    let (mut p, alloc) = server_with_allocator(10);
    p.receive_data(&masked(OP_BINARY, true, &[1u8; 100]));
    assert_eq!(alloc.outstanding(), 1);
    p.release_memory(0);
    assert_eq!(alloc.outstanding(), 0);
}

#[test]
fn oversized_messages_are_refused_before_allocating() {
    let (mut p, alloc) = server_with_allocator(10);
    let mut cfg_limit = masked(OP_BINARY, true, &[0u8; 10]);
    // Rewrite the length field: 127 -> 64-bit length of 2 MiB, over the 1 MiB default.
    cfg_limit.truncate(2);
    cfg_limit[1] = 0x80 | 127;
    cfg_limit.extend((2u64 << 20).to_be_bytes());
    cfg_limit.extend(KEY);
    p.receive_data(&cfg_limit);
    assert_eq!(p.error().map(ProtocolError::close_code), Some(1009));
    assert_eq!(alloc.allocated(), 0);
}

proptest! {
    #[test]
    fn embedder_memory_and_direct_reads_give_the_same_events(
        msgs in proptest::collection::vec((0u8..3, 0usize..3000), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        min in 1usize..2000,
    ) {
        let mut wire = Vec::new();
        for (i, (kind, len)) in msgs.iter().enumerate() {
            let payload: Vec<u8> = (0..*len).map(|j| (j * 31 + i) as u8).collect();
            match kind {
                0 => wire.extend(masked(OP_BINARY, true, &payload)),
                1 => wire.extend(masked(OP_PING, true, &payload[..payload.len().min(125)])),
                _ => {
                    let half = payload.len() / 2;
                    wire.extend(masked(OP_BINARY, false, &payload[..half]));
                    wire.extend(masked(OP_CONTINUATION, true, &payload[half..]));
                }
            }
        }
        let mut plain = server();
        plain.receive_data(&wire);
        let expected = events(&plain);
        let (mut p, alloc) = server_with_allocator(min);
        let got = feed_with_direct(&mut p, &wire, &cuts);
        prop_assert!(p.error().is_none());
        prop_assert_eq!(got, expected);
        drop(p);
        prop_assert_eq!(alloc.outstanding(), 0);
    }
}

/// A client without context takeover, and the server's compressed text frames.
fn deflate_client(max_message_size: usize) -> Protocol {
    let mut cfg = Config::new(Role::Client);
    cfg.max_message_size = max_message_size;
    cfg.deflate = Some(DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateParams::default()
    });
    Protocol::new(cfg)
}

fn compressed_frames(text: &[u8], fragments: usize) -> Vec<u8> {
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let mut compressor = Compressor::new(&params, Role::Server, 6);
    let mut wire = Vec::new();
    let pieces: Vec<&[u8]> = text.chunks(text.len().div_ceil(fragments).max(1)).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        let mut payload = Vec::new();
        compressor.compress(piece, last, &mut payload).unwrap();
        let mut f = frame(
            if i == 0 { OP_TEXT } else { OP_CONTINUATION },
            last,
            &payload,
        );
        f.rsv1 = i == 0;
        wire.extend(f.serialize(None));
    }
    wire
}

#[test]
fn compressed_messages_decode_alike_whole_fragmented_and_split() {
    let text: Vec<u8> = (0..300)
        .flat_map(|i| format!("{{\"id\":{i},\"name\":\"x{}\"}},", i % 7).into_bytes())
        .collect();
    let expected = vec![(EventKind::Text, 0, text.clone()); 2];
    // Whole frames in one buffer (the one-shot path), fragmented messages, and
    // frames split across reads (the streaming path).
    for fragments in [1, 3] {
        let mut wire = compressed_frames(&text, fragments);
        wire.extend(compressed_frames(&text, fragments));
        let mut p = deflate_client(1 << 20);
        p.receive_data(&wire);
        assert_eq!(events(&p), expected, "fragments {fragments}");
        for cut in [1, 7, wire.len() / 3] {
            let mut p = deflate_client(1 << 20);
            let mut got = Vec::new();
            for chunk in wire.chunks(cut) {
                p.receive_data(chunk);
                got.extend(events(&p));
            }
            assert_eq!(got, expected, "fragments {fragments}, cut {cut}");
        }
    }
}

#[test]
fn compressed_message_errors_match_the_streaming_path() {
    let text = "héllo wörld ".repeat(100).into_bytes();
    let wire = compressed_frames(&text, 1);
    // Over the limit: 1009, whole or split.
    for cut in [wire.len(), 5] {
        let mut p = deflate_client(text.len() - 1);
        for chunk in wire.chunks(cut) {
            p.receive_data(chunk);
        }
        assert_failing(&mut p, 1009);
    }
    let mut p = deflate_client(text.len());
    p.receive_data(&wire);
    assert_eq!(events(&p), vec![(EventKind::Text, 0, text.clone())]);
    // Invalid UTF-8 inside a valid stream: 1007, whole or split.
    let mut bad = text.clone();
    bad[50] = 0xff;
    let mut c = Compressor::new(&DeflateParams::default(), Role::Server, 6);
    let mut payload = Vec::new();
    c.compress(&bad, true, &mut payload).unwrap();
    let mut f = frame(OP_TEXT, true, &payload);
    f.rsv1 = true;
    let wire = f.serialize(None);
    for cut in [wire.len(), 5] {
        let mut p = deflate_client(1 << 20);
        for chunk in wire.chunks(cut) {
            p.receive_data(chunk);
        }
        assert_failing(&mut p, 1007);
    }
    // Corrupt streams: the same error as zlib-rs streaming, whole or split.
    let wire = compressed_frames(&text, 1);
    for at in 4..wire.len() {
        let mut corrupt = wire.clone();
        corrupt[at] ^= 0x5a;
        let mut whole = deflate_client(1 << 20);
        whole.receive_data(&corrupt);
        let mut split = deflate_client(1 << 20);
        split.receive_data(&corrupt[..at]);
        split.receive_data(&corrupt[at..]);
        assert_eq!(
            whole.error().map(ProtocolError::close_code),
            split.error().map(ProtocolError::close_code),
            "byte {at}"
        );
    }
}

// ---- fail-fast delivery: messages before a protocol error are delivered ----

/// Each violation a peer can send after a valid message, with its close code.
fn violations() -> Vec<(&'static str, Vec<u8>, u16)> {
    let mut fragmented_then_text = masked(OP_TEXT, false, b"a");
    fragmented_then_text.extend(masked(OP_TEXT, true, b"b"));
    vec![
        ("rsv2", vec![0xa1, 0x80, 1, 2, 3, 4], 1002),
        ("reserved opcode", vec![0x83, 0x80, 1, 2, 3, 4], 1002),
        (
            "reserved control opcode",
            vec![0x8b, 0x80, 1, 2, 3, 4],
            1002,
        ),
        ("fragmented ping", masked(OP_PING, false, b""), 1002),
        (
            "new message inside a fragmented one",
            fragmented_then_text,
            1002,
        ),
        (
            "continuation without message",
            masked(OP_CONTINUATION, true, b"x"),
            1002,
        ),
        (
            "unmasked frame",
            frame(OP_TEXT, true, b"x").serialize(None),
            1002,
        ),
        ("invalid utf-8", masked(OP_TEXT, true, b"\xff"), 1007),
        (
            "bad close code",
            masked(OP_CLOSE, true, &close_payload(999, "")),
            1002,
        ),
    ]
}

#[test]
fn message_before_a_violation_is_delivered_and_answered_before_the_close() {
    for (name, violation, code) in violations() {
        let mut wire = masked(OP_TEXT, true, b"hello");
        wire.extend(&violation);
        let mut p = server();
        p.receive_data(&wire);
        assert_eq!(
            events(&p),
            vec![(EventKind::Text, 0, b"hello".to_vec())],
            "{name}"
        );
        // The handler may still answer: the connection fails once the batch ends.
        assert_eq!(p.state(), State::Open, "{name}");
        assert!(!p.close_expected(), "{name}");
        p.send_message(OP_TEXT, b"hello").unwrap();
        p.end_batch();
        let frames = sent_frames(&mut p);
        assert_eq!(frames.len(), 2, "{name}");
        assert_eq!(frames[0].opcode, OP_TEXT, "{name}");
        assert_eq!(frames[0].payload, b"hello", "{name}");
        assert_eq!(frames[1].opcode, OP_CLOSE, "{name}");
        assert_eq!(
            u16::from_be_bytes([frames[1].payload[0], frames[1].payload[1]]),
            code,
            "{name}"
        );
        assert!(p.close_expected(), "{name}");
        assert_eq!(p.state(), State::Closing, "{name}");
    }
}

#[test]
fn a_pending_failure_ends_with_the_next_batch_and_ignores_input_after_the_error() {
    let mut wire = masked(OP_BINARY, true, b"one");
    wire.extend([0x83, 0x80, 1, 2, 3, 4]);
    wire.extend(masked(OP_BINARY, true, b"after"));
    let mut p = server();
    p.receive_data(&wire);
    assert_eq!(events(&p), vec![(EventKind::Binary, 0, b"one".to_vec())]);
    // No end_batch call: the next receive (or release) applies the failure.
    p.receive_data(&masked(OP_BINARY, true, b"ignored"));
    assert!(events(&p).is_empty());
    assert_failing(&mut p, 1002);
}

#[test]
fn a_violation_alone_still_fails_at_once() {
    let mut wire = masked(OP_PING, true, b"p");
    wire.extend([0x83, 0x80, 1, 2, 3, 4]);
    let mut p = server();
    p.receive_data(&wire);
    // A ping is no message to deliver: the failure is not deferred (the pong
    // was queued before the close frame anyway).
    assert!(p.close_expected());
    let frames = sent_frames(&mut p);
    assert_eq!(frames[0].opcode, OP_PONG);
    assert_eq!(frames[1].opcode, OP_CLOSE);
}

#[test]
fn a_message_split_across_reads_before_a_violation_is_delivered() {
    let mut wire = masked(OP_TEXT, true, b"hello world");
    let second = wire.split_off(5);
    let mut p = server();
    p.receive_data(&wire);
    assert!(events(&p).is_empty());
    let mut rest = second;
    rest.extend([0xa1, 0x80, 1, 2, 3, 4]);
    p.receive_data(&rest);
    assert_eq!(
        events(&p),
        vec![(EventKind::Text, 0, b"hello world".to_vec())]
    );
    p.end_batch();
    assert_failing(&mut p, 1002);
}

// ---- memory: compression state allocated lazily, freed when not needed ----

fn deflate_server(no_context_takeover: bool) -> Protocol {
    let mut cfg = Config::new(Role::Server);
    cfg.deflate = Some(DeflateParams {
        server_no_context_takeover: no_context_takeover,
        client_no_context_takeover: no_context_takeover,
        ..DeflateParams::default()
    });
    Protocol::new(cfg)
}

/// A compressed text message as a client sends it (its own compressor).
fn compressed_from_client(params: DeflateParams, text: &[u8]) -> Vec<u8> {
    let mut compressor = Compressor::new(&params, Role::Client, 6);
    let mut payload = Vec::new();
    compressor.compress(text, true, &mut payload).unwrap();
    let mut f = frame(OP_TEXT, true, &payload);
    f.rsv1 = true;
    f.serialize(Some(KEY))
}

#[test]
fn compression_state_is_allocated_on_first_use() {
    let mut p = deflate_server(false);
    assert_eq!(p.compression_allocated(), (false, false));
    p.send_message(OP_TEXT, b"hello hello hello").unwrap();
    assert_eq!(p.compression_allocated(), (true, false));
    let params = p.config().deflate.unwrap();
    p.receive_data(&compressed_from_client(params, b"hi hi hi hi"));
    assert_eq!(
        events(&p),
        vec![(EventKind::Text, 0, b"hi hi hi hi".to_vec())]
    );
    // With context takeover both must stay for the next message.
    assert_eq!(p.compression_allocated(), (true, true));
}

#[test]
fn without_context_takeover_compression_state_is_freed_after_each_message() {
    let mut p = deflate_server(true);
    let params = p.config().deflate.unwrap();
    for _ in 0..3 {
        p.send_message(OP_TEXT, b"hello hello hello").unwrap();
        assert_eq!(p.compression_allocated(), (false, false));
        p.receive_data(&compressed_from_client(params, b"hi hi hi hi"));
        assert_eq!(
            events(&p),
            vec![(EventKind::Text, 0, b"hi hi hi hi".to_vec())]
        );
        assert_eq!(p.compression_allocated(), (false, false));
    }
    // A fragmented message keeps its compressor until its last fragment.
    p.send_frame(OP_TEXT, b"part one ", false).unwrap();
    assert_eq!(p.compression_allocated(), (true, false));
    p.send_frame(OP_CONTINUATION, b"part two", true).unwrap();
    assert_eq!(p.compression_allocated(), (false, false));
}

#[test]
fn release_all_frees_everything_but_how_the_connection_ended() {
    let mut p = deflate_server(false);
    let params = p.config().deflate.unwrap();
    p.send_message(OP_TEXT, b"hello hello hello").unwrap();
    p.receive_data(&compressed_from_client(params, b"hi hi hi hi"));
    p.receive_data(&masked(OP_CLOSE, true, &close_payload(1000, "bye")));
    assert_eq!(p.compression_allocated(), (true, true));
    p.release_all();
    assert_eq!(p.compression_allocated(), (false, false));
    assert!(p.data_to_send().is_empty());
    assert_eq!(p.state(), State::Closed);
    assert_eq!(p.close_received(), Some(&(1000, "bye".to_owned())));
    assert_eq!(p.close_sent(), Some(&(1000, String::new())));
    assert!(p.close_ok());
    // Nothing works any more, and nothing panics.
    assert!(p.send_message(OP_TEXT, b"x").is_err());
    p.receive_data(&masked(OP_TEXT, true, b"x"));
    assert!(events(&p).is_empty());
    p.receive_eof();
    assert_eq!(p.compression_allocated(), (false, false));
}

#[test]
fn release_all_on_an_open_connection_reports_no_close_frame() {
    let mut p = deflate_server(false);
    p.send_message(OP_TEXT, b"hello").unwrap();
    p.release_all();
    assert_eq!(p.compression_allocated(), (false, false));
    assert_eq!(p.state(), State::Closed);
    assert_eq!(p.close_received(), None);
    assert!(!p.close_ok());
}

// ---- the ASCII flag of text events: a str built by plain copy must be exact ----

/// (payload, ascii flag) of each text event.
fn text_flags(p: &Protocol) -> Vec<(Vec<u8>, bool)> {
    p.events()
        .iter()
        .filter(|e| e.kind == EventKind::Text)
        .map(|e| (p.payload(e).to_vec(), e.ascii))
        .collect()
}

#[test]
fn ascii_flag_marks_exactly_the_all_ascii_text_messages() {
    let mut p = server();
    let mut wire = masked(
        OP_TEXT,
        true,
        b"plain ascii, longer than one 32-byte block of unmasking",
    );
    wire.extend(masked(OP_TEXT, true, "caf\u{e9}".as_bytes()));
    wire.extend(masked(OP_TEXT, true, b""));
    wire.extend(masked(OP_BINARY, true, b"bytes"));
    // ASCII first fragment, non-ASCII last: the message is not ASCII.
    wire.extend(masked(OP_TEXT, false, b"abc"));
    wire.extend(masked(OP_CONTINUATION, true, "\u{3ba}".as_bytes()));
    // A sequence split across fragments, then ASCII: still not ASCII.
    let k = "\u{3ba}".as_bytes();
    wire.extend(masked(OP_TEXT, false, &k[..1]));
    wire.extend(masked(OP_CONTINUATION, true, &[k[1], b'x']));
    p.receive_data(&wire);
    let flags: Vec<bool> = text_flags(&p).into_iter().map(|(_, a)| a).collect();
    assert_eq!(flags, [true, false, true, false, false]);
    assert!(p
        .events()
        .iter()
        .all(|e| e.kind == EventKind::Text || !e.ascii));
}

#[test]
fn ascii_flag_on_client_and_compressed_receive() {
    let mut c = client();
    let mut wire = frame(OP_TEXT, true, b"unmasked ascii").serialize(None);
    wire.extend(frame(OP_TEXT, true, "\u{1f600}".as_bytes()).serialize(None));
    c.receive_data(&wire);
    let flags: Vec<bool> = text_flags(&c).into_iter().map(|(_, a)| a).collect();
    assert_eq!(flags, [true, false]);

    let mut p = deflate_server(true);
    let params = p.config().deflate.unwrap();
    p.receive_data(&compressed_from_client(
        params,
        b"{\"price\": 101.5} {\"price\": 101.5}",
    ));
    assert!(text_flags(&p)[0].1);
    p.receive_data(&compressed_from_client(params, "\u{20ac} 101.5".as_bytes()));
    assert!(!text_flags(&p)[0].1);
}

proptest! {
    /// For any text, fragmentation and chunking, masked or not, the flag is
    /// exactly "every byte is ASCII" (the Cython side trusts `true` to copy).
    #[test]
    fn ascii_flag_equals_is_ascii_for_any_chunking(
        texts in proptest::collection::vec(
            prop_oneof!["[ -~]{0,200}", "\\PC{0,120}", "[a-z]{0,40}\u{e9}[a-z]{0,40}"], 1..6),
        parts in 1usize..4,
        to_client in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut wire = Vec::new();
        for text in &texts {
            let payload = text.as_bytes();
            let step = payload.len().div_ceil(parts).max(1);
            let pieces: Vec<&[u8]> = if payload.is_empty() { vec![&[][..]] } else { payload.chunks(step).collect() };
            for (i, piece) in pieces.iter().enumerate() {
                let opcode = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
                let f = frame(opcode, i + 1 == pieces.len(), piece);
                wire.extend(if to_client { f.serialize(None) } else { f.serialize(Some(KEY)) });
            }
        }
        let mut p = if to_client { client() } else { server() };
        let got = receive_in_pieces(&mut p, &wire, &cuts, text_flags);
        prop_assert_eq!(got.len(), texts.len());
        for ((payload, ascii), text) in got.iter().zip(&texts) {
            prop_assert_eq!(payload.as_slice(), text.as_bytes());
            prop_assert_eq!(*ascii, text.is_ascii());
        }
    }
}
