// SPDX-License-Identifier: MIT
//! Incremental UTF-8 validation against the standard library, at every split point.

use super::*;
use proptest::prelude::*;

fn std_result(data: &[u8]) -> Result<(), usize> {
    std::str::from_utf8(data)
        .map(|_| ())
        .map_err(|e| e.valid_up_to())
}

#[test]
fn accepts_multibyte_split_at_every_point() {
    let text = "κόσμε ✓ 𝄞 end".as_bytes();
    for split in 0..=text.len() {
        let mut v = Utf8Validator::new();
        v.feed(&text[..split]).unwrap();
        v.feed(&text[split..]).unwrap();
        v.finish().unwrap();
    }
}

#[test]
fn fails_fast_on_first_bad_byte_before_more_data() {
    // 0xf4 0x90 is above U+10FFFF: wrong already at the second byte.
    let mut v = Utf8Validator::new();
    assert_eq!(v.feed(b"ab\xf4\x90"), Err(Utf8Error { offset: 2 }));
    // A surrogate lead is rejected at once too.
    let mut v = Utf8Validator::new();
    assert_eq!(v.feed(b"\xed\xa0"), Err(Utf8Error { offset: 0 }));
}

#[test]
fn reports_failure_offset_inside_carried_sequence() {
    let mut v = Utf8Validator::new();
    v.feed(b"abc\xe2").unwrap();
    assert_eq!(v.feed(b"\x82x"), Err(Utf8Error { offset: 3 }));
}

#[test]
fn unfinished_sequence_fails_at_finish() {
    let mut v = Utf8Validator::new();
    v.feed(b"ok\xe2\x82").unwrap();
    assert_eq!(v.finish(), Err(Utf8Error { offset: 2 }));
}

proptest! {
    #[test]
    fn agrees_with_std_at_every_split(data in proptest::collection::vec(any::<u8>(), 0..64), cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        points.sort_unstable();
        let mut v = Utf8Validator::new();
        let mut last = 0;
        let mut result = Ok(());
        for p in points.into_iter().chain(std::iter::once(data.len())) {
            if result.is_ok() {
                result = v.feed(&data[last..p]);
            }
            last = p;
        }
        if result.is_ok() {
            result = v.finish();
        }
        prop_assert_eq!(result.map_err(|e| e.offset), std_result(&data));
    }

    #[test]
    fn agrees_with_std_on_mostly_valid_text(s in "\\PC{0,40}", junk in any::<u8>(), at in any::<usize>()) {
        let mut data = s.into_bytes();
        let at = at % (data.len() + 1);
        data.insert(at, junk);
        prop_assert_eq!(validate(&data).map_err(|e| e.offset), std_result(&data));
    }
}
