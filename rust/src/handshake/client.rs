// SPDX-License-Identifier: MIT
//! The client's side of the handshake: build the upgrade request, then parse
//! and check the server's response (RFC 6455 section 4.1).

use super::extensions::{parse_extensions, Extension};
use super::http::{
    check_headers, check_value, collect_headers, header_list, header_values, is_protocol, is_token,
    push_header, push_headers, single_header, Response,
};
use super::{accept_key, HandshakeError, HandshakeErrorKind, MAX_HEADERS, VERSION};

/// The client's upgrade request.
///
/// `path` is the request target (`/chat?x=1`: visible ASCII only, so encode
/// anything else first); `key` is the base64 of 16 random bytes; `extensions`
/// a full `Sec-WebSocket-Extensions` value. Fails (kind `Build`) on values
/// that cannot be sent.
pub fn build_request(
    host: &str,
    path: &str,
    key: &str,
    subprotocols: &[String],
    extensions: Option<&str>,
    extra_headers: &[(String, String)],
) -> Result<Vec<u8>, HandshakeError> {
    if path.is_empty() || !path.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(HandshakeError::build(format!(
            "invalid request target {path:?}"
        )));
    }
    if host.is_empty() {
        return Err(HandshakeError::build("empty Host header"));
    }
    check_value("Host", host)?;
    check_value("Sec-WebSocket-Key", key)?;
    if let Some(subprotocol) = subprotocols
        .iter()
        .find(|subprotocol| !is_token(subprotocol))
    {
        return Err(HandshakeError::build(format!(
            "invalid subprotocol {subprotocol:?}"
        )));
    }
    if let Some(extensions) = extensions {
        check_value("Sec-WebSocket-Extensions", extensions)?;
    }
    check_headers(extra_headers)?;

    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(format!("GET {path} HTTP/1.1\r\n").as_bytes());
    push_header(&mut out, "Host", host);
    push_header(&mut out, "Upgrade", "websocket");
    push_header(&mut out, "Connection", "Upgrade");
    push_header(&mut out, "Sec-WebSocket-Key", key);
    push_header(&mut out, "Sec-WebSocket-Version", VERSION);
    if !subprotocols.is_empty() {
        push_header(&mut out, "Sec-WebSocket-Protocol", &subprotocols.join(", "));
    }
    if let Some(extensions) = extensions {
        push_header(&mut out, "Sec-WebSocket-Extensions", extensions);
    }
    push_headers(&mut out, extra_headers);
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// Parse a response head from the start of `buf`.
///
/// Same contract as [`parse_request`](super::parse_request); errors are of kind `Malformed` with
/// status 0.
pub fn parse_response(
    buf: &[u8],
    max_size: usize,
) -> Result<Option<(Response, usize)>, HandshakeError> {
    let window = &buf[..buf.len().min(max_size)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let malformed = |reason: String| HandshakeError::new(HandshakeErrorKind::Malformed, 0, reason);
    match response.parse(window) {
        Ok(httparse::Status::Complete(consumed)) => {
            let parsed = Response {
                status: response.code.unwrap_or_default(),
                reason: response.reason.unwrap_or_default().to_owned(),
                version: response.version.unwrap_or_default(),
                headers: collect_headers(response.headers),
            };
            Ok(Some((parsed, consumed)))
        }
        Ok(httparse::Status::Partial) if buf.len() >= max_size => {
            Err(malformed(format!("response head exceeds {max_size} bytes")))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            Err(malformed(format!("more than {MAX_HEADERS} headers")))
        }
        Err(err) => Err(malformed(format!("malformed response head: {err}"))),
    }
}

/// Client side: check the server's answer to our upgrade request (RFC 6455
/// section 4.1): status 101, `Upgrade: websocket`, `Connection: upgrade`,
/// `Sec-WebSocket-Accept` matching `key`, at most one subprotocol and only
/// one of `offered_subprotocols`, and extensions only among the names in
/// `offered_extensions` (the `Sec-WebSocket-Extensions` value we sent), each
/// at most once.
///
/// Returns the chosen subprotocol and the accepted extensions, in order.
pub fn validate_response(
    resp: &Response,
    key: &str,
    offered_subprotocols: &[String],
    offered_extensions: Option<&str>,
) -> Result<(Option<String>, Vec<Extension>), HandshakeError> {
    let status = resp.status;
    let header_error =
        |reason: String| HandshakeError::new(HandshakeErrorKind::Header, status, reason);
    let negotiation_error =
        |reason: String| HandshakeError::new(HandshakeErrorKind::Negotiation, status, reason);

    if status != 101 {
        return Err(HandshakeError::new(
            HandshakeErrorKind::Status,
            status,
            format!("server rejected the websocket upgrade with HTTP {status}"),
        ));
    }
    if resp.version != 1 {
        return Err(HandshakeError::new(
            HandshakeErrorKind::Malformed,
            status,
            format!("unsupported protocol HTTP/1.{}", resp.version),
        ));
    }
    let headers = &resp.headers;

    let upgrade = header_list(headers, "Upgrade", is_protocol).map_err(header_error)?;
    if !upgrade
        .iter()
        .any(|protocol| protocol.eq_ignore_ascii_case("websocket"))
    {
        return Err(header_error(
            "missing websocket in Upgrade header".to_owned(),
        ));
    }
    let connection = header_list(headers, "Connection", is_token).map_err(header_error)?;
    if !connection
        .iter()
        .any(|option| option.eq_ignore_ascii_case("upgrade"))
    {
        return Err(header_error(
            "missing upgrade in Connection header".to_owned(),
        ));
    }
    match single_header(headers, "Sec-WebSocket-Accept").map_err(header_error)? {
        None => {
            return Err(header_error(
                "missing Sec-WebSocket-Accept header".to_owned(),
            ))
        }
        Some(accept) if accept != accept_key(key) => {
            return Err(header_error(format!(
                "incorrect Sec-WebSocket-Accept header: {accept}"
            )))
        }
        Some(_) => {}
    }

    let subprotocols =
        header_list(headers, "Sec-WebSocket-Protocol", is_token).map_err(header_error)?;
    let subprotocol = match subprotocols.as_slice() {
        [] => None,
        [subprotocol]
            if offered_subprotocols
                .iter()
                .any(|offered| offered == subprotocol) =>
        {
            Some((*subprotocol).to_owned())
        }
        [subprotocol] => {
            return Err(negotiation_error(format!(
                "unexpected subprotocol {subprotocol}"
            )))
        }
        _ => {
            return Err(negotiation_error(format!(
                "multiple subprotocols: {}",
                subprotocols.join(", ")
            )))
        }
    };

    let values: Vec<&str> = header_values(headers, "Sec-WebSocket-Extensions").collect();
    let extensions = parse_extensions(&values).map_err(|err| header_error(err.reason))?;
    let offered = match offered_extensions {
        Some(offered) => parse_extensions(&[offered]).map_err(|_| {
            HandshakeError::build(format!("invalid offered extensions {offered:?}"))
        })?,
        None => Vec::new(),
    };
    for (i, extension) in extensions.iter().enumerate() {
        let name = &extension.name;
        if !offered
            .iter()
            .any(|offer| offer.name.eq_ignore_ascii_case(name))
        {
            return Err(negotiation_error(format!("unexpected extension {name}")));
        }
        if extensions[..i]
            .iter()
            .any(|other| other.name.eq_ignore_ascii_case(name))
        {
            return Err(negotiation_error(format!(
                "extension {name} accepted twice"
            )));
        }
    }
    Ok((subprotocol, extensions))
}
