// SPDX-License-Identifier: MIT
//! Sending events and getting outgoing data: frames are fragmented,
//! compressed and masked into one output buffer.

use sha1::{Digest, Sha1};

use super::{Protocol, SendError, State};
use crate::frame::{
    encode_frame, encode_header, Role, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OP_CONTINUATION,
    OP_PING, OP_PONG,
};

/// Masking keys from SHA-1 over a caller-supplied seed and a counter: unpredictable
/// to anyone without the seed (RFC 6455 section 10.3), five keys per digest.
#[derive(Clone, Debug)]
pub(super) struct MaskSource {
    seed: [u8; 32],
    counter: u64,
    pool: [u8; 20],
    used: usize,
    fixed: Option<[u8; 4]>,
}

impl MaskSource {
    /// Keys from `seed`, or always `fixed` when given (tests only).
    pub(super) fn new(seed: [u8; 32], fixed: Option<[u8; 4]>) -> Self {
        Self {
            seed,
            counter: 0,
            pool: [0; 20],
            used: 20,
            fixed,
        }
    }

    fn next(&mut self) -> [u8; 4] {
        if let Some(key) = self.fixed {
            return key;
        }
        if self.used + 4 > self.pool.len() {
            let mut h = Sha1::new();
            h.update(self.seed);
            h.update(self.counter.to_le_bytes());
            self.counter = self.counter.wrapping_add(1);
            self.pool.copy_from_slice(&h.finalize());
            self.used = 0;
        }
        let k = [
            self.pool[self.used],
            self.pool[self.used + 1],
            self.pool[self.used + 2],
            self.pool[self.used + 3],
        ];
        self.used += 4;
        k
    }
}

impl Protocol {
    // ---- sending events ----

    fn check_can_send(&self) -> Result<(), SendError> {
        if self.close_sent.is_some() || self.state == State::Closed {
            Err(SendError::Closing)
        } else {
            Ok(())
        }
    }

    /// Validate fragmentation order for a data frame and return (opcode on the wire, compress).
    fn begin_data_frame(
        &mut self,
        opcode: u8,
        len: usize,
        fin: bool,
    ) -> Result<(u8, bool), SendError> {
        self.check_can_send()?;
        let first = match (opcode, self.send_opcode) {
            (OP_CONTINUATION, 0) => return Err(SendError::UnexpectedContinuation),
            (OP_CONTINUATION, _) => false,
            (_, 0) => true,
            _ => return Err(SendError::ExpectedContinuation),
        };
        if first {
            self.send_compressed =
                self.deflater.is_some() && (len >= self.cfg.compress_min_size || !fin);
            self.send_opcode = opcode;
        }
        if fin {
            self.send_opcode = 0;
        }
        Ok((
            if first { opcode } else { OP_CONTINUATION },
            first && self.send_compressed,
        ))
    }

    /// Queue one data frame: `opcode` is text, binary, or continuation for later fragments.
    pub fn send_frame(&mut self, opcode: u8, payload: &[u8], fin: bool) -> Result<(), SendError> {
        let (wire_op, rsv1) = self.begin_data_frame(opcode, payload.len(), fin)?;
        if self.send_compressed {
            let mut compressed = std::mem::take(&mut self.scratch);
            compressed.clear();
            let deflater = self
                .deflater
                .as_mut()
                .expect("compression needs a deflater");
            let result = deflater.compress(payload, fin, &mut compressed);
            if fin {
                // Without context takeover nothing carries over to the next
                // message: an idle connection holds no compressor.
                deflater.release_idle();
            }
            if result.is_ok() {
                self.write_frame(fin, rsv1, wire_op, &compressed);
            }
            self.scratch = compressed;
            result?;
        } else {
            self.write_frame(fin, false, wire_op, payload);
        }
        Ok(())
    }

    /// Queue a complete text (`OP_TEXT`) or binary (`OP_BINARY`) message.
    pub fn send_message(&mut self, opcode: u8, payload: &[u8]) -> Result<(), SendError> {
        self.send_frame(opcode, payload, true)
    }

    /// Zero-copy send: when the payload can go out untouched (server side, not
    /// compressed), queue only the header and return `Ok(true)`; the caller must then
    /// write `payload_len` payload bytes right after [`Protocol::data_to_send`].
    /// Returns `Ok(false)` without doing anything when masking or compression applies.
    pub fn send_frame_header(
        &mut self,
        opcode: u8,
        payload_len: usize,
        fin: bool,
    ) -> Result<bool, SendError> {
        let would_compress = if opcode == OP_CONTINUATION {
            self.send_compressed
        } else {
            self.deflater.is_some() && (payload_len >= self.cfg.compress_min_size || !fin)
        };
        if self.cfg.role == Role::Client || would_compress {
            self.check_can_send()?;
            return Ok(false);
        }
        let (wire_op, _) = self.begin_data_frame(opcode, payload_len, fin)?;
        let mut header = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut header, fin, false, wire_op, None, payload_len);
        self.out.extend_from_slice(&header[..n]);
        Ok(true)
    }

    /// Queue a ping.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(OP_PING, payload)
    }

    /// Queue a pong.
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(OP_PONG, payload)
    }

    fn send_control(&mut self, opcode: u8, payload: &[u8]) -> Result<(), SendError> {
        self.check_can_send()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong(payload.len()));
        }
        self.write_frame(true, false, opcode, payload);
        Ok(())
    }

    /// Queue one frame, masked with a fresh key on the client side.
    pub(super) fn write_frame(&mut self, fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) {
        let mask = match self.cfg.role {
            Role::Client => Some(self.masks.next()),
            Role::Server => None,
        };
        encode_frame(&mut self.out, fin, rsv1, opcode, payload, mask);
    }

    // ---- getting outgoing data ----

    /// Bytes to write to the transport, in order. Call [`Protocol::consume_output`] after writing.
    pub fn data_to_send(&self) -> &[u8] {
        &self.out
    }

    /// Drop the first `n` bytes of the output (they were written).
    pub fn consume_output(&mut self, n: usize) {
        let n = n.min(self.out.len());
        if n == self.out.len() {
            self.out.clear();
        } else {
            self.out.drain(..n);
        }
    }

    /// Take the whole output buffer.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}
