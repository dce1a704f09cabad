// SPDX-License-Identifier: MIT
//! HTTP/1.1 for the handshake: the header grammar (RFC 7230), request and
//! response heads parsed by `httparse`, header lookups, and the primitives
//! that build heads without letting caller input inject headers.

use super::{HandshakeError, HandshakeErrorKind, MAX_HEADERS};

// Header grammar (RFC 7230 section 3.2.6 and 7).

pub(super) fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

pub(super) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_tchar)
}

pub(super) fn is_ows(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

fn trim_ows(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// The non-empty elements of a comma-separated list (`#rule`, which allows
/// empty elements and whitespace around commas).
fn list_elements(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(trim_ows)
        .filter(|element| !element.is_empty())
}

/// All elements of every `name` header, each checked with `valid`.
pub(super) fn header_list<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
    valid: fn(&str) -> bool,
) -> Result<Vec<&'a str>, String> {
    let mut elements = Vec::new();
    for value in header_values(headers, name) {
        for element in list_elements(value) {
            if !valid(element) {
                return Err(format!("invalid {name} header: {value}"));
            }
            elements.push(element);
        }
    }
    Ok(elements)
}

/// An Upgrade element: `protocol-name ["/" protocol-version]`.
pub(super) fn is_protocol(element: &str) -> bool {
    match element.split_once('/') {
        Some((name, version)) => is_token(name) && is_token(version),
        None => is_token(element),
    }
}

pub(super) fn header_values<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

pub(super) fn first_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// The value of a header that may appear at most once.
pub(super) fn single_header<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> Result<Option<&'a str>, String> {
    let mut values = header_values(headers, name);
    let first = values.next();
    if values.next().is_some() {
        return Err(format!("multiple {name} headers"));
    }
    Ok(first.map(trim_ows))
}

/// A header value can be sent: visible characters, spaces and tabs only.
fn is_field_value(value: &str) -> bool {
    value
        .chars()
        .all(|c| c == '\t' || c == ' ' || !c.is_control())
}

/// Decode a header value as ISO-8859-1 (each byte is the code point).
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().copied().map(char::from).collect()
}

/// A parsed HTTP request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The request method, e.g. `GET`.
    pub method: String,
    /// The request target, e.g. `/chat?room=1`.
    pub path: String,
    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Header names as sent and values decoded as ISO-8859-1, in order.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of a header, matched case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    /// Every value of a header, matched case-insensitively, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        header_values(&self.headers, name)
    }

    /// Whether the request asks for a WebSocket upgrade: an `Upgrade` header
    /// lists the protocol `websocket` (any case, with or without a version).
    ///
    /// It says which way a server answers a request, not whether the upgrade
    /// is valid: a request asking for one goes to
    /// [`validate_request`](super::validate_request), any other one is plain
    /// HTTP (a health check, a page, a 404 or a 426).
    pub fn is_upgrade(&self) -> bool {
        self.get_all("Upgrade")
            .flat_map(list_elements)
            .any(|element| {
                let name = element.split_once('/').map_or(element, |(name, _)| name);
                name.eq_ignore_ascii_case("websocket")
            })
    }
}

/// A parsed HTTP response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: String,
    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Header names as sent and values decoded as ISO-8859-1, in order.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// The first value of a header, matched case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    /// Every value of a header, matched case-insensitively, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        header_values(&self.headers, name)
    }
}

pub(super) fn collect_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|header| (header.name.to_owned(), latin1(header.value)))
        .collect()
}

/// Parse a request head from the start of `buf`: any HTTP/1.x request, with
/// none of the WebSocket checks of [`validate_request`](super::validate_request).
///
/// Returns `Ok(None)` while the head is incomplete (nothing is consumed), or
/// the request and the number of bytes its head takes. Only the first
/// `max_size` bytes are looked at, so the answer never depends on how the
/// bytes were split. Errors: a malformed head (a bad request line, a header
/// line without a colon, whitespace around a header name, a control character
/// in a value) is a 400; a head longer than `max_size`, or more than
/// [`MAX_HEADERS`] headers, is a 431.
pub fn parse_request(
    buf: &[u8],
    max_size: usize,
) -> Result<Option<(Request, usize)>, HandshakeError> {
    let window = &buf[..buf.len().min(max_size)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(window) {
        Ok(httparse::Status::Complete(consumed)) => {
            let parsed = Request {
                method: request.method.unwrap_or_default().to_owned(),
                path: request.path.unwrap_or_default().to_owned(),
                version: request.version.unwrap_or_default(),
                headers: collect_headers(request.headers),
            };
            Ok(Some((parsed, consumed)))
        }
        Ok(httparse::Status::Partial) if buf.len() >= max_size => {
            Err(too_large("request", max_size))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(too_many_headers()),
        Err(err) => Err(HandshakeError::new(
            HandshakeErrorKind::Malformed,
            400,
            format!("malformed request head: {err}"),
        )),
    }
}

fn too_large(what: &str, max_size: usize) -> HandshakeError {
    HandshakeError::new(
        HandshakeErrorKind::Malformed,
        431,
        format!("{what} head exceeds {max_size} bytes"),
    )
}

fn too_many_headers() -> HandshakeError {
    HandshakeError::new(
        HandshakeErrorKind::Malformed,
        431,
        format!("more than {MAX_HEADERS} headers"),
    )
}
// Building heads.

pub(super) fn check_value(name: &str, value: &str) -> Result<(), HandshakeError> {
    if is_field_value(value) {
        Ok(())
    } else {
        Err(HandshakeError::build(format!(
            "invalid value for {name} header: {value:?}"
        )))
    }
}

pub(super) fn check_headers(headers: &[(String, String)]) -> Result<(), HandshakeError> {
    for (name, value) in headers {
        if !is_token(name) {
            return Err(HandshakeError::build(format!(
                "invalid header name {name:?}"
            )));
        }
        check_value(name, value)?;
    }
    Ok(())
}

pub(super) fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub(super) fn push_headers(out: &mut Vec<u8>, headers: &[(String, String)]) {
    for (name, value) in headers {
        push_header(out, name, value);
    }
}

/// The reason phrase for a status code, or `""` if this module knows none.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        414 => "URI Too Long",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
