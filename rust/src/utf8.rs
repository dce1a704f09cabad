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
#[path = "utf8_tests.rs"]
mod tests;
