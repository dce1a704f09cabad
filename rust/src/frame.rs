// SPDX-License-Identifier: MIT
//! Frame headers: parsing, checking and encoding (RFC 6455 section 5.2).

use crate::mask::copy_masked;

/// A frame header breaks RFC 6455 section 5.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// RSV2/RSV3 set, or RSV1 set without a negotiated extension or on a control frame.
    #[error("reserved bits must be 0")]
    ReservedBits,
    /// Opcodes 3-7 and 11-15 are reserved.
    #[error("invalid opcode {0}")]
    InvalidOpcode(u8),
    /// Control frames must have FIN set.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// Control frames carry at most 125 bytes.
    #[error("control frame of {0} bytes exceeds limit of 125")]
    ControlTooLong(u64),
    /// A client sent an unmasked frame.
    #[error("incorrect masking: client frames must be masked")]
    Unmasked,
    /// A server sent a masked frame.
    #[error("incorrect masking: server frames must not be masked")]
    Masked,
    /// A 64-bit payload length must have its most significant bit clear.
    #[error("frame length has its most significant bit set")]
    LengthMsbSet,
    /// The frame is larger than `max_frame_size`.
    #[error("frame of {size} bytes exceeds limit of {limit}")]
    TooBig {
        /// Declared payload length.
        size: u64,
        /// Configured limit.
        limit: usize,
    },
}

/// Which end of the connection this protocol instance plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Sends masked frames, receives unmasked ones.
    Client,
}

/// Continuation frame opcode.
pub const OP_CONTINUATION: u8 = 0x0;
/// Text frame opcode.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const OP_BINARY: u8 = 0x2;
/// Close frame opcode.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const OP_PING: u8 = 0x9;
/// Pong frame opcode.
pub const OP_PONG: u8 = 0xA;

/// Largest payload a control frame may carry (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// Largest possible frame header: 2 + 8 (64-bit length) + 4 (mask).
pub const MAX_HEADER_LEN: usize = 14;

/// True for close, ping and pong.
#[inline]
pub fn is_control(opcode: u8) -> bool {
    opcode & 0x8 != 0
}

/// A parsed frame header. The payload follows it on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment of a message.
    pub fin: bool,
    /// RSV1 (set on the first frame of a compressed message, RFC 7692).
    pub rsv1: bool,
    /// RSV2, never negotiated here.
    pub rsv2: bool,
    /// RSV3, never negotiated here.
    pub rsv3: bool,
    /// The 4-bit opcode, unchecked.
    pub opcode: u8,
    /// The masking key, if the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// Header length in bytes (2 to 14).
    pub header_len: usize,
}

impl FrameHeader {
    /// Parse a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not hold a whole header yet; nothing is
    /// consumed in that case. The only structural error is a 64-bit length with
    /// its most significant bit set.
    pub fn parse(buf: &[u8]) -> Result<Option<Self>, FrameError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut pos) = match b1 & 0x7f {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(raw);
                if len >> 63 != 0 {
                    return Err(FrameError::LengthMsbSet);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            if buf.len() < pos + 4 {
                return Ok(None);
            }
            let key = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
            pos += 4;
            Some(key)
        } else {
            None
        };
        Ok(Some(Self {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode: b0 & 0x0f,
            mask,
            payload_len,
            header_len: pos,
        }))
    }

    /// Check the header against the RFC 6455 rules that do not depend on message state.
    ///
    /// `role` is the receiver's role, `rsv1_allowed` whether permessage-deflate was
    /// negotiated, and `max_frame_size` the largest payload accepted.
    pub fn check(
        &self,
        role: Role,
        rsv1_allowed: bool,
        max_frame_size: usize,
    ) -> Result<(), FrameError> {
        if self.rsv2 || self.rsv3 || (self.rsv1 && !rsv1_allowed) {
            return Err(FrameError::ReservedBits);
        }
        match self.opcode {
            OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
            OP_CLOSE | OP_PING | OP_PONG => {
                if !self.fin {
                    return Err(FrameError::FragmentedControl);
                }
                if self.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                    return Err(FrameError::ControlTooLong(self.payload_len));
                }
                if self.rsv1 {
                    return Err(FrameError::ReservedBits);
                }
            }
            op => return Err(FrameError::InvalidOpcode(op)),
        }
        match (role, self.mask.is_some()) {
            (Role::Server, false) => return Err(FrameError::Unmasked),
            (Role::Client, true) => return Err(FrameError::Masked),
            _ => {}
        }
        if self.payload_len > max_frame_size as u64 {
            return Err(FrameError::TooBig {
                size: self.payload_len,
                limit: max_frame_size,
            });
        }
        Ok(())
    }
}

/// Write a header into `out` and return its length.
pub fn encode_header(
    out: &mut [u8; MAX_HEADER_LEN],
    fin: bool,
    rsv1: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload_len: usize,
) -> usize {
    out[0] = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | (opcode & 0x0f);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut pos = if payload_len < 126 {
        out[1] = mask_bit | payload_len as u8;
        2
    } else if payload_len <= 0xffff {
        out[1] = mask_bit | 126;
        out[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
        4
    } else {
        out[1] = mask_bit | 127;
        out[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
        10
    };
    if let Some(key) = mask {
        out[pos..pos + 4].copy_from_slice(&key);
        pos += 4;
    }
    pos
}

/// Append a whole frame (header and payload, masked when `mask` is set) to `out`.
///
/// The payload is copied exactly once, masked during the copy.
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = encode_header(&mut header, fin, rsv1, opcode, mask, payload.len());
    out.reserve(n + payload.len());
    out.extend_from_slice(&header[..n]);
    match mask {
        Some(key) => {
            let start = out.len();
            out.resize(start + payload.len(), 0);
            copy_masked(&mut out[start..], payload, key, 0);
        }
        None => out.extend_from_slice(payload),
    }
}

/// A whole frame with its payload unmasked: used by tests and the Python frame API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Final fragment.
    pub fin: bool,
    /// RSV1 bit.
    pub rsv1: bool,
    /// RSV2 bit.
    pub rsv2: bool,
    /// RSV3 bit.
    pub rsv3: bool,
    /// Opcode.
    pub opcode: u8,
    /// Unmasked payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// Parse one frame from the start of `buf`; `Ok(None)` means more bytes are needed.
    ///
    /// Only structural rules are applied here; use [`FrameHeader::check`] for the rest.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, FrameError> {
        let Some(h) = FrameHeader::parse(buf)? else {
            return Ok(None);
        };
        let Ok(len) = usize::try_from(h.payload_len) else {
            return Err(FrameError::TooBig {
                size: h.payload_len,
                limit: usize::MAX,
            });
        };
        let end = h.header_len.checked_add(len).ok_or(FrameError::TooBig {
            size: h.payload_len,
            limit: usize::MAX,
        })?;
        if buf.len() < end {
            return Ok(None);
        }
        let mut payload = vec![0; len];
        match h.mask {
            Some(key) => copy_masked(&mut payload, &buf[h.header_len..end], key, 0),
            None => payload.copy_from_slice(&buf[h.header_len..end]),
        }
        let frame = Self {
            fin: h.fin,
            rsv1: h.rsv1,
            rsv2: h.rsv2,
            rsv3: h.rsv3,
            opcode: h.opcode,
            payload,
        };
        Ok(Some((frame, end)))
    }

    /// Serialize the frame, masked with `mask` if given.
    pub fn serialize(&self, mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_HEADER_LEN + self.payload.len());
        encode_frame(
            &mut out,
            self.fin,
            self.rsv1,
            self.opcode,
            &self.payload,
            mask,
        );
        if self.rsv2 {
            out[0] |= 0x20;
        }
        if self.rsv3 {
            out[0] |= 0x10;
        }
        out
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
