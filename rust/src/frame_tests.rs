// SPDX-License-Identifier: MIT
//! Frame header parsing, checking and encoding: RFC 6455 examples and properties.

use super::*;
use proptest::prelude::*;

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

// RFC 6455 section 5.7 examples, byte for byte.
#[test]
fn rfc6455_single_frame_unmasked_text() {
    let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(frame(OP_TEXT, true, b"Hello").serialize(None), wire);
    assert_eq!(
        Frame::parse(&wire).unwrap(),
        Some((frame(OP_TEXT, true, b"Hello"), 7))
    );
}

#[test]
fn rfc6455_single_frame_masked_text() {
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(
        frame(OP_TEXT, true, b"Hello").serialize(Some([0x37, 0xfa, 0x21, 0x3d])),
        wire
    );
    let (parsed, n) = Frame::parse(&wire).unwrap().unwrap();
    assert_eq!((parsed.payload.as_slice(), n), (&b"Hello"[..], 11));
}

#[test]
fn rfc6455_fragmented_unmasked_text() {
    assert_eq!(
        frame(OP_TEXT, false, b"Hel").serialize(None),
        [0x01, 0x03, 0x48, 0x65, 0x6c]
    );
    assert_eq!(
        frame(OP_CONTINUATION, true, b"lo").serialize(None),
        [0x80, 0x02, 0x6c, 0x6f]
    );
}

#[test]
fn rfc6455_ping_and_masked_pong() {
    assert_eq!(
        frame(OP_PING, true, b"Hello").serialize(None),
        [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    assert_eq!(
        frame(OP_PONG, true, b"Hello").serialize(Some([0x37, 0xfa, 0x21, 0x3d])),
        [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );
}

#[test]
fn rfc6455_256_byte_and_64_kib_binary_headers() {
    let f = frame(OP_BINARY, true, &[0u8; 256]).serialize(None);
    assert_eq!(&f[..4], &[0x82, 0x7e, 0x01, 0x00]);
    let f = frame(OP_BINARY, true, &vec![0u8; 65536]).serialize(None);
    assert_eq!(&f[..10], &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
}

#[test]
fn header_needs_more_bytes_without_consuming() {
    let wire = frame(OP_BINARY, true, &vec![1u8; 70000]).serialize(Some([1, 2, 3, 4]));
    for n in 0..14 {
        assert_eq!(FrameHeader::parse(&wire[..n]).unwrap(), None, "prefix {n}");
    }
    assert_eq!(
        FrameHeader::parse(&wire[..14]).unwrap().unwrap().header_len,
        14
    );
}

#[test]
fn length_with_msb_set_is_rejected() {
    let wire = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(FrameHeader::parse(&wire), Err(FrameError::LengthMsbSet));
}

#[test]
fn check_enforces_rfc_rules() {
    let parse = |b: &[u8]| FrameHeader::parse(b).unwrap().unwrap();
    let masked = |b0: u8, len: u8| parse(&[b0, 0x80 | len, 0, 0, 0, 0]);
    assert_eq!(masked(0x81, 0).check(Role::Server, false, 1 << 20), Ok(()));
    assert_eq!(
        masked(0xc1, 0).check(Role::Server, false, 1 << 20),
        Err(FrameError::ReservedBits)
    );
    assert_eq!(masked(0xc1, 0).check(Role::Server, true, 1 << 20), Ok(()));
    assert_eq!(
        masked(0xa1, 0).check(Role::Server, true, 1 << 20),
        Err(FrameError::ReservedBits)
    );
    assert_eq!(
        masked(0x83, 0).check(Role::Server, false, 1 << 20),
        Err(FrameError::InvalidOpcode(3))
    );
    assert_eq!(
        masked(0x8b, 0).check(Role::Server, false, 1 << 20),
        Err(FrameError::InvalidOpcode(11))
    );
    assert_eq!(
        masked(0x09, 0).check(Role::Server, false, 1 << 20),
        Err(FrameError::FragmentedControl)
    );
    assert_eq!(
        masked(0xc9, 0).check(Role::Server, true, 1 << 20),
        Err(FrameError::ReservedBits)
    );
    assert_eq!(
        parse(&[0x89, 0xfe, 0, 126, 0, 0, 0, 0]).check(Role::Server, false, 1 << 20),
        Err(FrameError::ControlTooLong(126))
    );
    assert_eq!(
        parse(&[0x81, 0]).check(Role::Server, false, 10),
        Err(FrameError::Unmasked)
    );
    assert_eq!(
        masked(0x81, 0).check(Role::Client, false, 10),
        Err(FrameError::Masked)
    );
    assert_eq!(
        parse(&[0x82, 11]).check(Role::Client, false, 10),
        Err(FrameError::TooBig {
            size: 11,
            limit: 10
        })
    );
}

proptest! {
    #[test]
    fn parse_inverts_serialize(fin in any::<bool>(), rsv1 in any::<bool>(), opcode in 0u8..16, payload in proptest::collection::vec(any::<u8>(), 0..70_000), mask in proptest::option::of(any::<[u8; 4]>())) {
        let f = Frame { fin, rsv1, rsv2: false, rsv3: false, opcode, payload };
        let wire = f.serialize(mask);
        let (parsed, n) = Frame::parse(&wire).unwrap().unwrap();
        prop_assert_eq!(n, wire.len());
        prop_assert_eq!(parsed, f);
    }

    #[test]
    fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..32)) {
        let _ = Frame::parse(&data);
    }
}
