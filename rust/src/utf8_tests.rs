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

fn decoded<T: CodeUnit>(text: &str) -> Vec<T> {
    let mut out = vec![T::from_code_point(0); text.chars().count()];
    assert_eq!(decode_into(text, &mut out), out.len());
    out
}

#[test]
fn shape_gives_the_narrowest_kind_and_the_code_point_count() {
    let cases: [(&str, u32); 9] = [
        ("", 0x7f),
        ("plain ascii", 0x7f),
        ("caf\u{e9}", 0xff),
        ("\u{80}", 0xff),
        ("\u{ff}\u{ff}", 0xff),
        ("\u{100}", 0xffff),
        ("\u{7ff} \u{800} \u{ffff}", 0xffff),
        ("a\u{10000}", 0x10_ffff),
        ("\u{10ffff}\u{e9}", 0x10_ffff),
    ];
    for (text, max_char) in cases {
        let s = shape(text.as_bytes());
        assert_eq!(s.max_char, max_char, "{text:?}");
        assert_eq!(s.chars, text.chars().count(), "{text:?}");
    }
}

#[test]
fn decode_into_writes_each_code_point_in_every_kind() {
    let latin = "na\u{ef}ve caf\u{e9} \u{ff}\u{80}";
    let bmp = "\u{3b3}\u{3b5}\u{3b9}\u{3ac} \u{4f60}\u{597d} \u{20ac} \u{7ff}\u{800}\u{ffff}";
    let astral = "\u{1f642} ok \u{1f680} \u{10ffff}\u{10000} \u{e9}\u{4f60}";
    let expect = |t: &str| t.chars().map(u32::from).collect::<Vec<u32>>();
    let widen8 = |v: Vec<u8>| v.into_iter().map(u32::from).collect::<Vec<u32>>();
    let widen16 = |v: Vec<u16>| v.into_iter().map(u32::from).collect::<Vec<u32>>();
    assert_eq!(widen8(decoded::<u8>(latin)), expect(latin));
    assert_eq!(widen16(decoded::<u16>(bmp)), expect(bmp));
    assert_eq!(decoded::<u32>(astral), expect(astral));
}

#[test]
fn decode_into_stops_at_the_end_of_a_short_buffer() {
    let mut out = [0u32; 2];
    assert_eq!(decode_into("\u{e9}\u{4f60}\u{1f642}", &mut out), 2);
    assert_eq!(out, [0xe9, 0x4f60]);
    let mut out = [0u32; 8];
    assert_eq!(decode_into("a\u{1f642}", &mut out), 2);
}

proptest! {
    #[test]
    fn shape_and_decode_agree_with_std(text in "\\PC*|[\\u{0}-\\u{10ffff}]{0,64}") {
        let s = shape(text.as_bytes());
        prop_assert_eq!(s.chars, text.chars().count());
        let max = text.chars().map(u32::from).max().unwrap_or(0);
        let class = match max { 0..=0x7f => 0x7f, 0x80..=0xff => 0xff, 0x100..=0xffff => 0xffff, _ => 0x10_ffff };
        prop_assert_eq!(s.max_char, class);
        let want: Vec<u32> = text.chars().map(u32::from).collect();
        prop_assert_eq!(decoded::<u32>(&text), want);
    }
}

#[test]
fn skip_ascii_refuses_while_a_sequence_is_open() {
    let mut v = Utf8Validator::new();
    assert!(v.skip_ascii(3));
    assert_eq!(v.consumed(), 3);
    v.feed(&"\u{3ba}".as_bytes()[..1]).unwrap();
    // "x" after an open lead is an error that only `feed` can report.
    assert!(!v.skip_ascii(1));
    assert_eq!(v.feed(b"x"), Err(Utf8Error { offset: 3 }));
}

#[test]
fn feed_report_ascii_is_true_only_for_ascii_with_nothing_open() {
    let mut v = Utf8Validator::new();
    assert_eq!(v.feed_report_ascii(b"abc"), Ok(true));
    assert_eq!(v.feed_report_ascii("\u{e9}".as_bytes()), Ok(false));
    assert_eq!(v.feed_report_ascii(&"\u{3ba}".as_bytes()[..1]), Ok(false));
    assert_eq!(
        v.feed_report_ascii(&["\u{3ba}".as_bytes()[1], b'a']),
        Ok(false)
    );
    assert_eq!(v.feed_report_ascii(b"z"), Ok(true));
    assert!(v.finish().is_ok());
}
