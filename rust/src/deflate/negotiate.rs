// SPDX-License-Identifier: MIT
//! Negotiating permessage-deflate (RFC 7692 section 7.1): parsing offers and
//! responses, the server's choice among offers, the client's offer and its
//! check of the server's response.

use std::time::Duration;

use super::{
    CompressorSettings, DeflateError, DEFAULT_COMPRESSION_LEVEL, DEFAULT_COMPRESSOR_IDLE,
    DEFAULT_COMPRESS_WINDOW_BITS, DEFAULT_MEM_LEVEL, DEFAULT_WINDOW_BITS, EXTENSION_NAME,
};
use crate::frame::Role;
use crate::handshake::Extension;

const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// Negotiated parameters: what both sides agreed on. `None` window bits means 15.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DeflateParams {
    /// The server resets its compression context after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after every message.
    pub client_no_context_takeover: bool,
    /// Largest LZ77 window (log2) the server compresses with, 8 to 15.
    pub server_max_window_bits: Option<u8>,
    /// Largest LZ77 window (log2) the client compresses with, 8 to 15.
    pub client_max_window_bits: Option<u8>,
}

impl DeflateParams {
    /// The extension element for a `Sec-WebSocket-Extensions` header, e.g.
    /// `permessage-deflate; server_no_context_takeover; client_max_window_bits=10`.
    pub fn to_header_value(&self) -> String {
        let mut parts = vec![EXTENSION_NAME.to_owned()];
        if self.server_no_context_takeover {
            parts.push(SERVER_NO_CONTEXT_TAKEOVER.to_owned());
        }
        if self.client_no_context_takeover {
            parts.push(CLIENT_NO_CONTEXT_TAKEOVER.to_owned());
        }
        if let Some(bits) = self.server_max_window_bits {
            parts.push(format!("{SERVER_MAX_WINDOW_BITS}={bits}"));
        }
        if let Some(bits) = self.client_max_window_bits {
            parts.push(format!("{CLIENT_MAX_WINDOW_BITS}={bits}"));
        }
        parts.join("; ")
    }

    /// Window bits and context reset of the side playing `role`.
    pub(super) fn side(self, role: Role) -> (u8, bool) {
        match role {
            Role::Server => (
                self.server_max_window_bits.unwrap_or(DEFAULT_WINDOW_BITS),
                self.server_no_context_takeover,
            ),
            Role::Client => (
                self.client_max_window_bits.unwrap_or(DEFAULT_WINDOW_BITS),
                self.client_no_context_takeover,
            ),
        }
    }
}

/// Local preferences: what a client offers, or what a server accepts, and
/// how our compressor runs.
///
/// On a server, the `*_no_context_takeover` flags are requested from the
/// client even if it did not offer them, and the window bits cap what the
/// server agrees to. An offer that cannot satisfy `client_max_window_bits`
/// (the client did not offer that parameter) is declined. On a client, the
/// fields are exactly what [`client_offer`] sends.
///
/// `level`, `mem_level` and `compress_window_bits` are never negotiated: they
/// set our own compressor. The defaults aim at realtime servers, where CPU per
/// message matters more than bytes on the wire (measured on a stream of 1 KiB
/// JSON-like messages):
///
/// * `level` 1 ([`DEFAULT_COMPRESSION_LEVEL`]), also gorilla/websocket's default:
///   zlib-rs' quick strategy takes about 2.5 µs per message with context
///   takeover against about 11 µs at level 6, for output of 36 to 46% of the
///   input against 25 to 30%.
/// * `mem_level` 5 ([`DEFAULT_MEM_LEVEL`]), as websockets: zlib-rs' buffers
///   drop from 112 KiB to 14 KiB, at no measurable cost in ratio or speed here.
/// * `compress_window_bits` 12 ([`DEFAULT_COMPRESS_WINDOW_BITS`]), the window
///   websockets' server compresses with: 16 KiB of window and hash chain
///   instead of 128 KiB at 15. It only lowers the negotiated window of our
///   side, which a sender may always do, so the handshake is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Ask that the server reset its context after every message.
    pub server_no_context_takeover: bool,
    /// Ask that the client reset its context after every message.
    pub client_no_context_takeover: bool,
    /// Cap on the server's window, 8 to 15.
    pub server_max_window_bits: Option<u8>,
    /// Cap on the client's window, 8 to 15.
    pub client_max_window_bits: Option<u8>,
    /// zlib compression level, 0 (stored) to 9.
    pub level: u32,
    /// zlib `memLevel`, 1 to 9: the size of the compressor's buffers.
    pub mem_level: u8,
    /// Largest window (log2, 8 to 15) our compressor uses, whatever larger
    /// window the negotiation allows.
    pub compress_window_bits: u8,
    /// With context takeover on our side, free our compressor once it
    /// compressed nothing for this long (the I/O layer checks; the core has no
    /// clock). `None` keeps it as long as the connection; zero keeps no
    /// context at all (every message compressed alone). See
    /// [`DEFAULT_COMPRESSOR_IDLE`].
    pub compressor_idle: Option<Duration>,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
            level: DEFAULT_COMPRESSION_LEVEL,
            mem_level: DEFAULT_MEM_LEVEL,
            compress_window_bits: DEFAULT_COMPRESS_WINDOW_BITS,
            compressor_idle: Some(DEFAULT_COMPRESSOR_IDLE),
        }
    }
}

impl DeflateConfig {
    /// Check that window bits are within 8..=15, the level within 0..=9 and
    /// `mem_level` within 1..=9.
    pub fn check(&self) -> Result<(), DeflateError> {
        for (name, bits) in [
            (SERVER_MAX_WINDOW_BITS, self.server_max_window_bits),
            (CLIENT_MAX_WINDOW_BITS, self.client_max_window_bits),
            ("compress_window_bits", Some(self.compress_window_bits)),
        ] {
            if let Some(bits) = bits.filter(|bits| !(8..=15).contains(bits)) {
                return Err(DeflateError::InvalidParameterValue {
                    name: name.to_owned(),
                    value: bits.to_string(),
                });
            }
        }
        if self.level > 9 {
            return Err(DeflateError::InvalidParameterValue {
                name: "level".to_owned(),
                value: self.level.to_string(),
            });
        }
        if !(1..=9).contains(&self.mem_level) {
            return Err(DeflateError::InvalidParameterValue {
                name: "mem_level".to_owned(),
                value: self.mem_level.to_string(),
            });
        }
        Ok(())
    }

    /// The settings of our compressor.
    pub fn compressor_settings(&self) -> CompressorSettings {
        CompressorSettings {
            level: self.level,
            mem_level: self.mem_level,
            window_bits: self.compress_window_bits,
            keep_context: self.compressor_idle != Some(Duration::ZERO),
        }
    }
}

/// `client_max_window_bits` in an offer or response.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum ClientWindow {
    /// The parameter is absent.
    #[default]
    Absent,
    /// Present without a value: the server may choose (offers only).
    Any,
    /// Present with a value.
    Bits(u8),
}

/// Parameters of one permessage-deflate offer or response, checked for
/// duplicates and value syntax.
#[derive(Default)]
struct Parameters {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: ClientWindow,
}

/// Parse the parameters of a permessage-deflate element; `offer` selects the
/// client-offer grammar (where `client_max_window_bits` may have no value).
fn parse_parameters(ext: &Extension, offer: bool) -> Result<Parameters, DeflateError> {
    let mut parsed = Parameters::default();
    for (name, value) in &ext.params {
        let value = value.as_deref();
        let duplicate = || DeflateError::DuplicateParameter(name.clone());
        if name.eq_ignore_ascii_case(SERVER_NO_CONTEXT_TAKEOVER) {
            no_value(name, value)?;
            if parsed.server_no_context_takeover {
                return Err(duplicate());
            }
            parsed.server_no_context_takeover = true;
        } else if name.eq_ignore_ascii_case(CLIENT_NO_CONTEXT_TAKEOVER) {
            no_value(name, value)?;
            if parsed.client_no_context_takeover {
                return Err(duplicate());
            }
            parsed.client_no_context_takeover = true;
        } else if name.eq_ignore_ascii_case(SERVER_MAX_WINDOW_BITS) {
            if parsed.server_max_window_bits.is_some() {
                return Err(duplicate());
            }
            let value = value.ok_or_else(|| DeflateError::MissingParameterValue(name.clone()))?;
            parsed.server_max_window_bits = Some(window_bits(name, value)?);
        } else if name.eq_ignore_ascii_case(CLIENT_MAX_WINDOW_BITS) {
            if parsed.client_max_window_bits != ClientWindow::Absent {
                return Err(duplicate());
            }
            parsed.client_max_window_bits = match value {
                Some(value) => ClientWindow::Bits(window_bits(name, value)?),
                None if offer => ClientWindow::Any,
                None => return Err(DeflateError::MissingParameterValue(name.clone())),
            };
        } else {
            return Err(DeflateError::UnknownParameter(name.clone()));
        }
    }
    Ok(parsed)
}

fn no_value(name: &str, value: Option<&str>) -> Result<(), DeflateError> {
    match value {
        None => Ok(()),
        Some(value) => Err(DeflateError::InvalidParameterValue {
            name: name.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// A window size: a decimal 8 to 15 without leading zeros (RFC 7692 section 7.1.2).
fn window_bits(name: &str, value: &str) -> Result<u8, DeflateError> {
    let bits = match value {
        "8" => 8,
        "9" => 9,
        "10" => 10,
        "11" => 11,
        "12" => 12,
        "13" => 13,
        "14" => 14,
        "15" => 15,
        _ => {
            return Err(DeflateError::InvalidParameterValue {
                name: name.to_owned(),
                value: value.to_owned(),
            })
        }
    };
    Ok(bits)
}

fn is_deflate(ext: &Extension) -> bool {
    ext.name.eq_ignore_ascii_case(EXTENSION_NAME)
}

/// Server side: pick the first acceptable permessage-deflate offer among the
/// client's extension offers (in order) and return the agreed parameters and
/// the response element for `Sec-WebSocket-Extensions`.
///
/// Malformed offers (unknown or duplicate parameters, bad values) are declined
/// (RFC 7692 section 5), as are offers that cannot meet `cfg`; `None` means no
/// offer was acceptable and the connection proceeds uncompressed.
pub fn negotiate_server(
    offers: &[Extension],
    cfg: &DeflateConfig,
) -> Option<(DeflateParams, String)> {
    offers
        .iter()
        .filter(|ext| is_deflate(ext))
        .find_map(|ext| accept_offer(ext, cfg))
        .map(|params| (params, params.to_header_value()))
}

/// The response to one offer, or `None` to decline it.
fn accept_offer(ext: &Extension, cfg: &DeflateConfig) -> Option<DeflateParams> {
    let offer = parse_parameters(ext, true).ok()?;
    // The server's window: the client's cap (which the response must repeat,
    // section 7.1.2.1), lowered to our own cap if we have one.
    let server_max_window_bits = match (offer.server_max_window_bits, cfg.server_max_window_bits) {
        (Some(offered), Some(ours)) => Some(offered.min(ours)),
        (offered, ours) => offered.or(ours),
    };
    // The client's window: the response may carry it only if the offer had
    // the parameter (section 7.1.2.2); without it we cannot cap the client.
    let client_max_window_bits = match (offer.client_max_window_bits, cfg.client_max_window_bits) {
        (ClientWindow::Absent, Some(ours)) if ours < DEFAULT_WINDOW_BITS => return None,
        (ClientWindow::Absent, _) => None,
        (ClientWindow::Any, ours) => ours,
        (ClientWindow::Bits(offered), ours) => Some(ours.map_or(offered, |ours| offered.min(ours))),
    };
    Some(DeflateParams {
        // Must be echoed when offered (section 7.1.1.1); may be added.
        server_no_context_takeover: offer.server_no_context_takeover
            || cfg.server_no_context_takeover,
        // A hint when offered, echoed so our decompressor may reset too.
        client_no_context_takeover: offer.client_no_context_takeover
            || cfg.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    })
}

/// Client side: the `Sec-WebSocket-Extensions` element to offer.
///
/// `client_max_window_bits` is always sent, without a value if `cfg` sets no
/// cap, so the server may choose our window.
pub fn client_offer(cfg: &DeflateConfig) -> String {
    let mut parts = vec![EXTENSION_NAME.to_owned()];
    if cfg.server_no_context_takeover {
        parts.push(SERVER_NO_CONTEXT_TAKEOVER.to_owned());
    }
    if cfg.client_no_context_takeover {
        parts.push(CLIENT_NO_CONTEXT_TAKEOVER.to_owned());
    }
    if let Some(bits) = cfg.server_max_window_bits {
        parts.push(format!("{SERVER_MAX_WINDOW_BITS}={bits}"));
    }
    parts.push(match cfg.client_max_window_bits {
        Some(bits) => format!("{CLIENT_MAX_WINDOW_BITS}={bits}"),
        None => CLIENT_MAX_WINDOW_BITS.to_owned(),
    });
    parts.join("; ")
}

/// Client side: check the server's permessage-deflate response against what
/// [`client_offer`] offered for `cfg` (RFC 7692 section 7.1). Any violation
/// is an error, and the client must fail the connection.
pub fn accept_response(
    ext: &Extension,
    cfg: &DeflateConfig,
) -> Result<DeflateParams, DeflateError> {
    if !is_deflate(ext) {
        return Err(DeflateError::Unsupported(format!(
            "unexpected extension {}",
            ext.name
        )));
    }
    let response = parse_parameters(ext, false)?;
    if cfg.server_no_context_takeover && !response.server_no_context_takeover {
        return Err(DeflateError::Unsupported(format!(
            "server did not accept the offered {SERVER_NO_CONTEXT_TAKEOVER}"
        )));
    }
    let server_max_window_bits = match (cfg.server_max_window_bits, response.server_max_window_bits)
    {
        (Some(offered), None) => {
            return Err(DeflateError::Unsupported(format!(
                "server did not accept the offered {SERVER_MAX_WINDOW_BITS}={offered}"
            )))
        }
        (Some(offered), Some(agreed)) if agreed > offered => {
            return Err(DeflateError::Unsupported(format!(
                "server chose {SERVER_MAX_WINDOW_BITS}={agreed} above the offered {offered}"
            )))
        }
        (_, agreed) => agreed,
    };
    // client_max_window_bits is always offered; a value in the offer is a cap
    // the server may lower but not raise.
    let agreed_client_bits = match response.client_max_window_bits {
        ClientWindow::Bits(bits) => Some(bits),
        // A response without a value was already rejected by the parser.
        ClientWindow::Absent | ClientWindow::Any => None,
    };
    let client_max_window_bits = match (cfg.client_max_window_bits, agreed_client_bits) {
        (Some(offered), Some(agreed)) if agreed > offered => {
            return Err(DeflateError::Unsupported(format!(
                "server chose {CLIENT_MAX_WINDOW_BITS}={agreed} above the offered {offered}"
            )))
        }
        (offered, agreed) => agreed.or(offered),
    };
    Ok(DeflateParams {
        server_no_context_takeover: response.server_no_context_takeover,
        // Our own offer of no context takeover binds us even if not echoed.
        client_no_context_takeover: response.client_no_context_takeover
            || cfg.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    })
}
