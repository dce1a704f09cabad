// SPDX-License-Identifier: MIT
//! The HTTP/1.1 opening handshake (RFC 6455 section 4): parsing and checking
//! upgrade requests and responses, and building them.
//!
//! Request and response heads are parsed by `httparse`; the accept key is
//! SHA-1 then base64. Nothing here does I/O or draws random numbers: the
//! client generates its `Sec-WebSocket-Key` (16 random bytes, base64) itself.
//!
//! Header values are decoded as ISO-8859-1, so any byte httparse accepts maps
//! to one `char` and nothing is lost or rejected for its encoding. The `build_*`
//! functions refuse header names that are not tokens and values holding
//! control characters (CR, LF, NUL...), so no caller input can inject headers.
//!
//! One job per file: `http` holds the HTTP/1.1 grammar, head parsing and the
//! primitives to build heads; `extensions` parses `Sec-WebSocket-Extensions`;
//! `server` checks an upgrade request and builds the answers to it; `client`
//! builds the request and checks the server's response.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

mod client;
mod extensions;
mod http;
mod server;

pub use client::{build_request, parse_response, validate_response};
pub use extensions::{parse_extensions, Extension};
pub use http::{parse_request, reason_phrase, Request, Response};
pub use server::{build_rejection, build_response, validate_request, ClientHello};

/// Most headers accepted in one request or response head; more is a 431.
pub const MAX_HEADERS: usize = 64;

/// A sensible bound on the size of a request or response head, in bytes.
pub const DEFAULT_MAX_SIZE: usize = 16 * 1024;

/// The only WebSocket version this implementation speaks.
pub const VERSION: &str = "13";

/// Appended to the client key before hashing (RFC 6455 section 1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What went wrong in a handshake, for mapping to an exception class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeErrorKind {
    /// The HTTP head is not valid HTTP/1.1, or is too large.
    Malformed,
    /// A required header is missing, repeated or invalid.
    Header,
    /// Subprotocol or extension negotiation failed.
    Negotiation,
    /// The server answered with a status other than 101.
    Status,
    /// A value passed to a `build_*` function cannot be sent.
    Build,
}

/// A failed handshake.
///
/// On the server, `status` is the HTTP status to answer with (400, 426 or
/// 431). On the client, it is the status the server sent (0 if its response
/// could not be parsed). `build_*` errors carry 500.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{reason}")]
pub struct HandshakeError {
    /// The HTTP status that applies (see the type's documentation).
    pub status: u16,
    /// A short, lowercase explanation without a trailing period.
    pub reason: String,
    /// The category, for mapping to an exception class.
    pub kind: HandshakeErrorKind,
}

impl HandshakeError {
    fn new(kind: HandshakeErrorKind, status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            kind,
        }
    }

    fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(HandshakeErrorKind::Header, 400, reason)
    }

    fn upgrade_required(reason: impl Into<String>) -> Self {
        Self::new(HandshakeErrorKind::Header, 426, reason)
    }

    fn build(reason: impl Into<String>) -> Self {
        Self::new(HandshakeErrorKind::Build, 500, reason)
    }
}

/// The base64 `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID);
    BASE64.encode(sha1.finalize())
}

#[cfg(test)]
mod tests;
