// SPDX-License-Identifier: MIT
//! Frame headers: parsing, checking and encoding (RFC 6455 section 5.2).

/// Which end of the connection this protocol instance plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Sends masked frames, receives unmasked ones.
    Client,
}
