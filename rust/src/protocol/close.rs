// SPDX-License-Identifier: MIT
//! The closing handshake (RFC 6455 section 7): close frames sent and received,
//! failing the connection, when the transport should close, and whether the
//! connection closed cleanly.

use super::{EventKind, Protocol, ProtocolError, SendError, State};
use crate::frame::{Role, MAX_CONTROL_PAYLOAD, OP_CLOSE};

/// Close code reported when a close frame carried no status code.
pub const CLOSE_NO_STATUS: u16 = 1005;
/// Close code reported when the connection ended without a close frame.
pub const CLOSE_ABNORMAL: u16 = 1006;

/// Close codes of a clean closure: 1000 (normal closure), 1001 (going away)
/// and 1005 (a close frame without a status code), as websockets'
/// `OK_CLOSE_CODES`.
pub const OK_CLOSE_CODES: [u16; 3] = [1000, 1001, CLOSE_NO_STATUS];

/// Whether a connection closed cleanly, the one rule every front end asks
/// (websockets' rule): a close frame was both sent and received, and both
/// codes are in [`OK_CLOSE_CODES`].
///
/// `sent` and `received` are the codes of the close frames that went each way
/// (1005 for a frame without a status code), `None` where none did. A
/// transport that ended before a close frame arrived is not a clean closure,
/// whatever `received` says (the protocol reports that as 1006, not in the set).
pub fn close_is_ok(sent: Option<u16>, received: Option<u16>) -> bool {
    match (sent, received) {
        (Some(sent), Some(received)) => {
            OK_CLOSE_CODES.contains(&sent) && OK_CLOSE_CODES.contains(&received)
        }
        _ => false,
    }
}

/// Whether `code` may appear in a close frame (RFC 6455 section 7.4, IANA registry).
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl Protocol {
    /// A whole close frame's payload is in `ctrl[start..]`: check it, report it
    /// and answer it with our own close frame (RFC 6455 section 5.5.1).
    pub(super) fn receive_close(&mut self, start: usize) -> Result<(), ProtocolError> {
        let payload = &self.ctrl[start..];
        let (code, reason_start) = match payload.len() {
            0 => (CLOSE_NO_STATUS, start),
            1 => return Err(ProtocolError::ClosePayloadTooShort),
            _ => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                if !is_valid_close_code(code) {
                    return Err(ProtocolError::InvalidCloseCode(code));
                }
                (code, start + 2)
            }
        };
        let reason = std::str::from_utf8(&self.ctrl[reason_start..])
            .map_err(|_| ProtocolError::InvalidCloseReason)?
            .to_owned();
        self.push_event(
            EventKind::Close,
            code,
            reason_start,
            self.ctrl.len() - reason_start,
        );
        self.close_received = Some((code, reason));
        // Nothing after a close frame is data (RFC 6455 section 5.5.1).
        self.discard_input = true;
        if self.close_sent.is_none() {
            // Echo the status code, as section 5.5.1 suggests.
            let reply = if code == CLOSE_NO_STATUS {
                None
            } else {
                Some(code)
            };
            self.write_close(reply, "");
        }
        self.state = State::Closed;
        Ok(())
    }

    /// Start (or answer) the closing handshake. `code = None` sends an empty close frame.
    pub fn send_close(&mut self, code: Option<u16>, reason: &str) -> Result<(), SendError> {
        if self.close_sent.is_some() {
            return Err(SendError::Closing);
        }
        match code {
            Some(c) if !is_valid_close_code(c) => return Err(SendError::InvalidCloseCode(c)),
            None if !reason.is_empty() => return Err(SendError::InvalidCloseCode(CLOSE_NO_STATUS)),
            _ => {}
        }
        if reason.len() + 2 > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong(reason.len() + 2));
        }
        self.write_close(code, reason);
        Ok(())
    }

    /// Fail the connection: send a close frame with `code` (if none was sent) and
    /// ignore further input. The transport should be closed once the output is flushed.
    pub fn fail(&mut self, code: u16, reason: &str) {
        if self.close_sent.is_none() {
            self.write_close(Some(code), truncate_reason(reason));
        }
        self.discard_input = true;
        self.msg_opcode = 0;
        self.incoming = None;
        if let (Some(ext), Some(alloc)) = (self.ext_current.take(), self.allocator.as_mut()) {
            alloc.release(ext.token);
        }
    }

    /// Fail the connection for a protocol error, kept for [`Protocol::error`].
    pub(super) fn fail_with(&mut self, err: ProtocolError) {
        let reason = err.to_string();
        self.fail(err.close_code(), &reason);
        self.error = Some(err);
    }

    fn write_close(&mut self, code: Option<u16>, reason: &str) {
        let mut payload = Vec::with_capacity(2 + reason.len());
        if let Some(c) = code {
            payload.extend_from_slice(&c.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
        }
        self.write_frame(true, false, OP_CLOSE, &payload);
        self.close_sent = Some((code.unwrap_or(CLOSE_NO_STATUS), reason.to_owned()));
        self.state = if self.close_received.is_some() {
            State::Closed
        } else {
            State::Closing
        };
    }

    /// Whether the I/O layer should close the transport once the output is flushed:
    /// after a failure, or (server side) once the closing handshake is complete.
    pub fn close_expected(&self) -> bool {
        self.error.is_some()
            || self.eof
            || (self.discard_input && self.close_sent.is_some() && self.close_received.is_none())
            || (self.cfg.role == Role::Server && self.state == State::Closed)
    }

    /// The close code and reason we sent, if any.
    pub fn close_sent(&self) -> Option<&(u16, String)> {
        self.close_sent.as_ref()
    }

    /// The close code and reason we received (1006 if the transport ended first).
    pub fn close_received(&self) -> Option<&(u16, String)> {
        self.close_received.as_ref()
    }

    /// Whether the connection closed cleanly: [`close_is_ok`] on the codes of
    /// the close frames sent and received. False until both have gone by.
    pub fn close_ok(&self) -> bool {
        close_is_ok(
            self.close_sent.as_ref().map(|(code, _)| *code),
            self.close_received.as_ref().map(|(code, _)| *code),
        )
    }
}

/// Cut a close reason to the 123 bytes a close frame allows, on a character boundary.
fn truncate_reason(reason: &str) -> &str {
    let max = MAX_CONTROL_PAYLOAD - 2;
    if reason.len() <= max {
        return reason;
    }
    let mut end = max;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}
