// SPDX-License-Identifier: MIT
//! Why a connection fails, and why a send call is refused.

use crate::deflate::DeflateError;
use crate::frame::FrameError;
use crate::utf8::Utf8Error;

/// Why the connection is being failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A bad frame header.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A continuation frame arrived with no message in progress.
    #[error("unexpected continuation frame")]
    UnexpectedContinuation,
    /// A new data frame arrived while a fragmented message was in progress.
    #[error("expected a continuation frame")]
    ExpectedContinuation,
    /// RSV1 set on a continuation frame (RFC 7692 section 6.1).
    #[error("compressed bit set on a continuation frame")]
    CompressedContinuation,
    /// The message grew past `max_message_size`.
    #[error("message of {size} bytes exceeds limit of {limit}")]
    MessageTooBig {
        /// Size reached (or declared) so far.
        size: u64,
        /// Configured limit.
        limit: usize,
    },
    /// A text message is not valid UTF-8.
    #[error("{0} in text message")]
    InvalidUtf8(#[from] Utf8Error),
    /// permessage-deflate data could not be inflated, or inflated past the limit.
    #[error(transparent)]
    Deflate(#[from] DeflateError),
    /// A close frame payload of exactly one byte.
    #[error("close frame with a 1-byte payload")]
    ClosePayloadTooShort,
    /// A close code that may not appear on the wire.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A close reason that is not valid UTF-8.
    #[error("invalid utf-8 in close reason")]
    InvalidCloseReason,
}

impl ProtocolError {
    /// The close code to fail the connection with (RFC 6455 section 7.4.1).
    pub fn close_code(&self) -> u16 {
        match self {
            Self::Frame(FrameError::TooBig { .. })
            | Self::MessageTooBig { .. }
            | Self::Deflate(DeflateError::TooBig { .. }) => 1009,
            Self::InvalidUtf8(_) | Self::InvalidCloseReason => 1007,
            _ => 1002,
        }
    }
}

/// A send call that the current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Data after our close frame, or a second close frame.
    #[error("cannot send: the closing handshake has started")]
    Closing,
    /// A text/binary frame while a fragmented message is being sent.
    #[error("a fragmented message is in progress: send a continuation frame")]
    ExpectedContinuation,
    /// A continuation frame with no fragmented message in progress.
    #[error("no fragmented message in progress")]
    UnexpectedContinuation,
    /// A control payload over 125 bytes (close: reason over 123 bytes).
    #[error("control frame payload of {0} bytes exceeds limit of 125")]
    ControlTooLong(usize),
    /// A close code that may not be sent.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// Compression failed (never expected with valid state).
    #[error(transparent)]
    Deflate(#[from] DeflateError),
}
