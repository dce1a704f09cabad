// SPDX-License-Identifier: MIT
//! Incremental UTF-8 validation across fragments and reads.
//!
//! `simdutf8::compat` reports where validation stopped and whether the input ended
//! inside a sequence (`error_len() == None`); only that unfinished tail, at most
//! three bytes, is carried to the next call. Invalid bytes are reported as soon as
//! they arrive, even when the message has more fragments to come.

use simdutf8::compat::from_utf8;

/// Invalid UTF-8 at byte `offset` of the stream (the start of the bad sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid utf-8 at byte {offset}")]
pub struct Utf8Error {
    /// Offset from the start of the stream of the first byte of the invalid sequence.
    pub offset: usize,
}

/// Validates one stream (a text message or a close reason) fed in arbitrary pieces.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: usize,
    consumed: usize,
}

/// Length of the sequence that `lead` starts (1 for invalid leads, which fail anyway).
#[inline]
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    }
}

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget everything: the next byte starts a new stream.
    pub fn reset(&mut self) {
        self.pending_len = 0;
        self.consumed = 0;
    }

    /// Bytes of the stream seen so far.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// Validate the next piece of the stream.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Utf8Error> {
        let start = self.consumed;
        self.consumed += data.len();
        let mut base = start;
        if self.pending_len > 0 {
            // Finish the sequence left open by the previous piece.
            let need = sequence_len(self.pending[0]) - self.pending_len;
            let take = need.min(data.len());
            let mut tmp = [0u8; 4];
            tmp[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            tmp[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            let len = self.pending_len + take;
            let seq_start = start - self.pending_len;
            match from_utf8(&tmp[..len]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_none() => {
                    self.pending = tmp;
                    self.pending_len = len;
                    return Ok(());
                }
                Err(_) => return Err(Utf8Error { offset: seq_start }),
            }
            data = &data[take..];
            base += take;
        }
        // ASCII is the common case; checking it first skips simdutf8's setup.
        if data.is_ascii() {
            return Ok(());
        }
        match from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) => {
                let valid = e.valid_up_to();
                if e.error_len().is_none() {
                    let tail = &data[valid..];
                    self.pending[..tail.len()].copy_from_slice(tail);
                    self.pending_len = tail.len();
                    Ok(())
                } else {
                    Err(Utf8Error {
                        offset: base + valid,
                    })
                }
            }
        }
    }

    /// End of the stream: an unfinished sequence is an error.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let result = if self.pending_len > 0 {
            Err(Utf8Error {
                offset: self.consumed - self.pending_len,
            })
        } else {
            Ok(())
        };
        self.reset();
        result
    }
}

/// Validate a complete buffer; `Err` carries the offset of the first bad sequence.
pub fn validate(data: &[u8]) -> Result<(), Utf8Error> {
    let mut v = Utf8Validator::new();
    v.feed(data)?;
    v.finish()
}

#[cfg(test)]
mod tests {
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
}
