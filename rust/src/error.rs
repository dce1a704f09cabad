// SPDX-License-Identifier: MIT
//! Every error type of the core, in one place for callers to import from.
//!
//! Each error is defined beside its domain (`frame`, `utf8`, `deflate`,
//! `handshake`, `protocol`), nested the way tungstenite nests its errors:
//! [`ProtocolError`] wraps [`FrameError`], [`Utf8Error`] and [`DeflateError`],
//! and [`ProtocolError::close_code`] is the one table from errors to close
//! codes. This module only re-exports them, and no module of the core imports
//! it, so dependencies between modules run one way.

pub use crate::deflate::DeflateError;
pub use crate::frame::FrameError;
pub use crate::handshake::{HandshakeError, HandshakeErrorKind};
pub use crate::protocol::{ProtocolError, SendError};
pub use crate::utf8::Utf8Error;
