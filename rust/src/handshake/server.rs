// SPDX-License-Identifier: MIT
//! The server's side of the handshake: check an upgrade request (RFC 6455
//! section 4.2.1), then accept it with a 101 or refuse it with a rejection.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::extensions::{parse_extensions, Extension};
use super::http::{
    check_headers, check_value, first_header, header_list, header_values, is_protocol, is_token,
    push_header, push_headers, reason_phrase, single_header, Request,
};
use super::{accept_key, HandshakeError, VERSION};

/// What a valid upgrade request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// The `Sec-WebSocket-Key` value.
    pub key: String,
    /// The request target.
    pub path: String,
    /// The `Host` value.
    pub host: String,
    /// The `Origin` value, if any.
    pub origin: Option<String>,
    /// Offered subprotocols, in order of preference.
    pub subprotocols: Vec<String>,
    /// Offered extensions, in order of preference.
    pub extensions: Vec<Extension>,
    /// The raw `Sec-WebSocket-Extensions` header values, in order.
    pub extension_values: Vec<String>,
}

/// Check an upgrade request (RFC 6455 section 4.2.1).
///
/// Statuses: 426 when the request does not ask for a WebSocket upgrade
/// (`Upgrade` without `websocket`, `Connection` without `upgrade`) or asks for a
/// version other than 13; 400 for everything else: a method other than GET,
/// HTTP/1.0, a missing or repeated `Host`, `Sec-WebSocket-Key`,
/// `Sec-WebSocket-Version` or `Origin`, a key that is not 16 bytes in
/// base64, malformed header lists.
pub fn validate_request(req: &Request) -> Result<ClientHello, HandshakeError> {
    if req.method != "GET" {
        return Err(HandshakeError::bad_request(format!(
            "unsupported method {}",
            req.method
        )));
    }
    if req.version != 1 {
        return Err(HandshakeError::bad_request(format!(
            "unsupported protocol HTTP/1.{}",
            req.version
        )));
    }
    let headers = &req.headers;

    // Is this an upgrade to WebSocket at all?
    let upgrade =
        header_list(headers, "Upgrade", is_protocol).map_err(HandshakeError::bad_request)?;
    if upgrade.is_empty() {
        return Err(HandshakeError::upgrade_required("missing Upgrade header"));
    }
    if !upgrade
        .iter()
        .any(|protocol| protocol.eq_ignore_ascii_case("websocket"))
    {
        return Err(HandshakeError::upgrade_required(format!(
            "unsupported upgrade to {}",
            upgrade.join(", ")
        )));
    }
    let connection =
        header_list(headers, "Connection", is_token).map_err(HandshakeError::bad_request)?;
    if !connection
        .iter()
        .any(|option| option.eq_ignore_ascii_case("upgrade"))
    {
        return Err(HandshakeError::upgrade_required(
            "missing upgrade in Connection header",
        ));
    }

    let host = single_header(headers, "Host")
        .map_err(HandshakeError::bad_request)?
        .filter(|host| !host.is_empty())
        .ok_or_else(|| HandshakeError::bad_request("missing Host header"))?;

    match single_header(headers, "Sec-WebSocket-Version").map_err(HandshakeError::bad_request)? {
        None => {
            return Err(HandshakeError::upgrade_required(
                "missing Sec-WebSocket-Version header",
            ))
        }
        Some(VERSION) => {}
        Some(version) => {
            return Err(HandshakeError::upgrade_required(format!(
                "unsupported websocket version {version}"
            )))
        }
    }

    let key = single_header(headers, "Sec-WebSocket-Key")
        .map_err(HandshakeError::bad_request)?
        .ok_or_else(|| HandshakeError::bad_request("missing Sec-WebSocket-Key header"))?;
    if !BASE64.decode(key).is_ok_and(|nonce| nonce.len() == 16) {
        return Err(HandshakeError::bad_request(format!(
            "invalid Sec-WebSocket-Key header: {key}"
        )));
    }

    let origin = single_header(headers, "Origin").map_err(HandshakeError::bad_request)?;
    let subprotocols = header_list(headers, "Sec-WebSocket-Protocol", is_token)
        .map_err(HandshakeError::bad_request)?;
    let extension_values: Vec<&str> = header_values(headers, "Sec-WebSocket-Extensions").collect();
    let extensions = parse_extensions(&extension_values)?;

    Ok(ClientHello {
        key: key.to_owned(),
        path: req.path.clone(),
        host: host.to_owned(),
        origin: origin.map(str::to_owned),
        subprotocols: subprotocols.into_iter().map(str::to_owned).collect(),
        extensions,
        extension_values: extension_values.into_iter().map(str::to_owned).collect(),
    })
}

/// The `101 Switching Protocols` response accepting a handshake, with the
/// chosen subprotocol and extensions (a full `Sec-WebSocket-Extensions`
/// value), then `extra_headers` in order.
///
/// Fails (status 500, kind `Build`) if a value holds control characters, a
/// header name or the subprotocol is not a token.
pub fn build_response(
    key: &str,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
    extra_headers: &[(String, String)],
) -> Result<Vec<u8>, HandshakeError> {
    if let Some(subprotocol) = subprotocol.filter(|subprotocol| !is_token(subprotocol)) {
        return Err(HandshakeError::build(format!(
            "invalid subprotocol {subprotocol:?}"
        )));
    }
    if let Some(extensions) = extensions {
        check_value("Sec-WebSocket-Extensions", extensions)?;
    }
    check_headers(extra_headers)?;

    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    push_header(&mut out, "Upgrade", "websocket");
    push_header(&mut out, "Connection", "Upgrade");
    push_header(&mut out, "Sec-WebSocket-Accept", &accept_key(key));
    if let Some(subprotocol) = subprotocol {
        push_header(&mut out, "Sec-WebSocket-Protocol", subprotocol);
    }
    if let Some(extensions) = extensions {
        push_header(&mut out, "Sec-WebSocket-Extensions", extensions);
    }
    push_headers(&mut out, extra_headers);
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// A response refusing a handshake, closing the connection after `body`.
///
/// Sends `Content-Type: text/plain; charset=utf-8` unless `extra_headers`
/// has a Content-Type, `Content-Length` and `Connection: close`. A 426 also
/// carries `Upgrade: websocket` and `Sec-WebSocket-Version: 13`, with
/// `Connection: Upgrade, close` as RFC 7230 section 6.7 requires. `status`
/// must be 200 to 599.
pub fn build_rejection(
    status: u16,
    body: &[u8],
    extra_headers: &[(String, String)],
) -> Result<Vec<u8>, HandshakeError> {
    if !(200..=599).contains(&status) {
        return Err(HandshakeError::build(format!(
            "invalid rejection status {status}"
        )));
    }
    check_headers(extra_headers)?;

    let mut out = Vec::with_capacity(192 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes());
    if status == 426 {
        push_header(&mut out, "Upgrade", "websocket");
        push_header(&mut out, "Sec-WebSocket-Version", VERSION);
        push_header(&mut out, "Connection", "Upgrade, close");
    } else {
        push_header(&mut out, "Connection", "close");
    }
    if first_header(extra_headers, "Content-Type").is_none() {
        push_header(&mut out, "Content-Type", "text/plain; charset=utf-8");
    }
    push_header(&mut out, "Content-Length", &body.len().to_string());
    push_headers(&mut out, extra_headers);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(out)
}
