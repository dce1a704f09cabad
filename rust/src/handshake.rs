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

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

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

/// One element of a `Sec-WebSocket-Extensions` header: a name and its
/// parameters in order, with quoted values already unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// Parameters and their values (`None` for a bare parameter).
    pub params: Vec<(String, Option<String>)>,
}

/// The base64 `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID);
    BASE64.encode(sha1.finalize())
}

// Header grammar (RFC 7230 section 3.2.6 and 7).

fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_tchar)
}

fn is_ows(byte: u8) -> bool {
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
fn header_list<'a>(
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
fn is_protocol(element: &str) -> bool {
    match element.split_once('/') {
        Some((name, version)) => is_token(name) && is_token(version),
        None => is_token(element),
    }
}

fn header_values<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn first_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// The value of a header that may appear at most once.
fn single_header<'a>(
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

/// Parse `Sec-WebSocket-Extensions` header values (RFC 6455 section 9.1),
/// possibly several header lines, each a comma-separated list:
///
/// ```text
/// extension       = extension-token *( ";" extension-param )
/// extension-param = token [ "=" ( token | quoted-string ) ]
/// ```
///
/// A quoted value must be a token once unescaped. Whitespace is allowed
/// around separators. Errors are 400s.
pub fn parse_extensions(values: &[&str]) -> Result<Vec<Extension>, HandshakeError> {
    let mut extensions = Vec::new();
    for value in values {
        let mut parser = ExtensionParser {
            text: value.as_bytes(),
            pos: 0,
        };
        let count = extensions.len();
        parser.parse(&mut extensions).ok_or_else(|| {
            HandshakeError::bad_request(format!("invalid Sec-WebSocket-Extensions header: {value}"))
        })?;
        if extensions.len() == count {
            return Err(HandshakeError::bad_request(
                "empty Sec-WebSocket-Extensions header",
            ));
        }
    }
    Ok(extensions)
}

/// A cursor over one extension header value; `None` on any syntax error.
struct ExtensionParser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl ExtensionParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.pos += 1;
        }
    }

    /// Consume `byte` if it comes next (after optional whitespace).
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_ows();
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn token(&mut self) -> Option<String> {
        self.skip_ows();
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        // tchar bytes are ASCII, so this slice is valid UTF-8.
        (self.pos > start)
            .then(|| String::from_utf8_lossy(&self.text[start..self.pos]).into_owned())
    }

    /// A quoted-string whose unescaped content is a token.
    fn quoted_token(&mut self) -> Option<String> {
        self.pos += 1; // the opening quote
        let mut value = String::new();
        loop {
            let byte = self.peek()?;
            self.pos += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    let escaped = self.peek()?;
                    self.pos += 1;
                    value.push(char::from(escaped));
                }
                _ => value.push(char::from(byte)),
            }
        }
        is_token(&value).then_some(value)
    }

    fn parse(&mut self, extensions: &mut Vec<Extension>) -> Option<()> {
        loop {
            // Empty list elements (",,") are allowed.
            while self.eat(b',') {}
            self.skip_ows();
            if self.peek().is_none() {
                return Some(());
            }
            let name = self.token()?;
            let mut params = Vec::new();
            while self.eat(b';') {
                let param = self.token()?;
                let value = if self.eat(b'=') {
                    self.skip_ows();
                    Some(if self.peek() == Some(b'"') {
                        self.quoted_token()?
                    } else {
                        self.token()?
                    })
                } else {
                    None
                };
                params.push((param, value));
            }
            extensions.push(Extension { name, params });
            self.skip_ows();
            match self.peek() {
                None => return Some(()),
                Some(b',') => {}
                Some(_) => return None,
            }
        }
    }
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

fn collect_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|header| (header.name.to_owned(), latin1(header.value)))
        .collect()
}

/// Parse a request head from the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete (nothing is consumed), or
/// the request and the number of bytes its head takes. Only the first
/// `max_size` bytes are looked at, so the answer never depends on how the
/// bytes were split. Errors: a malformed head is a 400; a head longer than
/// `max_size`, or more than [`MAX_HEADERS`] headers, is a 431.
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

// Building heads.

fn check_value(name: &str, value: &str) -> Result<(), HandshakeError> {
    if is_field_value(value) {
        Ok(())
    } else {
        Err(HandshakeError::build(format!(
            "invalid value for {name} header: {value:?}"
        )))
    }
}

fn check_headers(headers: &[(String, String)]) -> Result<(), HandshakeError> {
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

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn push_headers(out: &mut Vec<u8>, headers: &[(String, String)]) {
    for (name, value) in headers {
        push_header(out, name, value);
    }
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
/// Same contract as [`parse_request`]; errors are of kind `Malformed` with
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fmt::Write as _;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn request_bytes(extra: &str) -> Vec<u8> {
        format!(
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    fn request(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".to_owned(),
            path: "/chat".to_owned(),
            version: 1,
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }

    const BASE: [(&str, &str); 5] = [
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ];

    /// The base request with `name` replaced by `values` (none: removed).
    fn with(name: &str, values: &[&str]) -> Request {
        let mut headers: Vec<(&str, &str)> = BASE
            .iter()
            .copied()
            .filter(|(key, _)| *key != name)
            .collect();
        headers.extend(values.iter().map(|value| (name, *value)));
        request(&headers)
    }

    fn status_of(req: &Request) -> u16 {
        validate_request(req).unwrap_err().status
    }

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> Extension {
        Extension {
            name: name.to_owned(),
            params: params
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.map(str::to_owned)))
                .collect(),
        }
    }

    #[test]
    fn computes_accept_key_from_rfc_6455_1_3() {
        assert_eq!(accept_key(KEY), ACCEPT);
    }

    // Request parsing.

    #[test]
    fn parses_complete_request() {
        let data = request_bytes("Origin: http://example.com\r\n");
        let mut buf = data.clone();
        buf.extend_from_slice(b"trailing frame bytes");
        let (req, consumed) = parse_request(&buf, DEFAULT_MAX_SIZE).unwrap().unwrap();
        assert_eq!(consumed, data.len());
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/chat");
        assert_eq!(req.version, 1);
        assert_eq!(req.get("host"), Some("server.example.com"));
        assert_eq!(req.get("ORIGIN"), Some("http://example.com"));
        assert_eq!(req.headers.len(), 6);
    }

    #[test]
    fn waits_for_the_rest_of_an_incomplete_request() {
        let data = request_bytes("");
        for end in 0..data.len() {
            assert_eq!(
                parse_request(&data[..end], DEFAULT_MAX_SIZE),
                Ok(None),
                "{end}"
            );
        }
    }

    #[test]
    fn rejects_malformed_request_with_400() {
        for data in [
            &b"GET /chat HTTP/1.1\r\nHost server\r\n\r\n"[..],
            b"GET /chat HTTP/2.0\r\n\r\n",
            b"G\x00T / HTTP/1.1\r\n\r\n",
            b"GET /chat HTTP/1.1\r\nHo st: x\r\n\r\n",
            b"GET /chat HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
        ] {
            let err = parse_request(data, DEFAULT_MAX_SIZE).unwrap_err();
            assert_eq!(err.status, 400, "{data:?}");
            assert_eq!(err.kind, HandshakeErrorKind::Malformed);
        }
    }

    #[test]
    fn rejects_oversized_request_with_431() {
        let data = request_bytes(&format!("Cookie: {}\r\n", "a".repeat(200)));
        let err = parse_request(&data, 100).unwrap_err();
        assert_eq!(err.status, 431);
        assert_eq!(err.reason, "request head exceeds 100 bytes");
        // Whatever the split: too long as soon as max_size bytes lack CRLFCRLF.
        assert_eq!(parse_request(&data[..99], 100), Ok(None));
        assert_eq!(parse_request(&data[..100], 100).unwrap_err().status, 431);
        assert!(parse_request(&data, data.len()).unwrap().is_some());
    }

    #[test]
    fn rejects_too_many_headers_with_431() {
        let mut extra = String::new();
        for i in 0..MAX_HEADERS {
            write!(extra, "X-{i}: {i}\r\n").unwrap();
        }
        let err = parse_request(&request_bytes(&extra), DEFAULT_MAX_SIZE).unwrap_err();
        assert_eq!(err.status, 431);
        let mut extra = String::new();
        for i in 0..MAX_HEADERS - BASE.len() {
            write!(extra, "X-{i}: {i}\r\n").unwrap();
        }
        assert!(parse_request(&request_bytes(&extra), DEFAULT_MAX_SIZE)
            .unwrap()
            .is_some());
    }

    #[test]
    fn decodes_header_values_as_latin1() {
        let mut data = request_bytes("");
        data.truncate(data.len() - 2);
        data.extend_from_slice(b"X-Name: caf\xe9\r\n\r\n");
        let (req, _) = parse_request(&data, DEFAULT_MAX_SIZE).unwrap().unwrap();
        assert_eq!(req.get("x-name"), Some("caf\u{e9}"));
    }

    // Request validation.

    #[test]
    fn accepts_rfc_6455_example_request() {
        let data = request_bytes(
            "Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
        );
        let (req, _) = parse_request(&data, DEFAULT_MAX_SIZE).unwrap().unwrap();
        let hello = validate_request(&req).unwrap();
        assert_eq!(hello.key, KEY);
        assert_eq!(hello.path, "/chat");
        assert_eq!(hello.host, "server.example.com");
        assert_eq!(hello.origin.as_deref(), Some("http://example.com"));
        assert_eq!(hello.subprotocols, ["chat", "superchat"]);
        assert_eq!(
            hello.extensions,
            [ext(
                "permessage-deflate",
                &[("client_max_window_bits", None)]
            )]
        );
        assert_eq!(
            hello.extension_values,
            ["permessage-deflate; client_max_window_bits"]
        );
    }

    #[test]
    fn accepts_token_lists_in_upgrade_and_connection() {
        let req = request(&[
            ("Host", "h"),
            ("Upgrade", "h2c, WebSocket"),
            ("Connection", "keep-alive,  Upgrade "),
            ("Connection", ","),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ]);
        assert!(validate_request(&req).is_ok());
        let req = with("Connection", &["keep-alive", "upgrade"]);
        assert!(validate_request(&req).is_ok());
    }

    #[test]
    fn collects_subprotocols_from_several_headers() {
        let hello = validate_request(&with("Sec-WebSocket-Protocol", &["a, b", "c"])).unwrap();
        assert_eq!(hello.subprotocols, ["a", "b", "c"]);
    }

    #[test]
    fn rejects_request_not_asking_for_websocket_with_426() {
        assert_eq!(status_of(&with("Upgrade", &[])), 426);
        assert_eq!(status_of(&with("Upgrade", &["h2c"])), 426);
        assert_eq!(status_of(&with("Upgrade", &["websocket/13"])), 426);
        assert_eq!(status_of(&with("Connection", &[])), 426);
        assert_eq!(status_of(&with("Connection", &["keep-alive"])), 426);
        // Not a token match: "upgrades" is not "upgrade".
        assert_eq!(status_of(&with("Connection", &["upgrades"])), 426);
    }

    #[test]
    fn rejects_unsupported_version_with_426() {
        assert_eq!(status_of(&with("Sec-WebSocket-Version", &[])), 426);
        assert_eq!(status_of(&with("Sec-WebSocket-Version", &["8"])), 426);
        assert_eq!(status_of(&with("Sec-WebSocket-Version", &["13, 8"])), 426);
        let err = validate_request(&with("Sec-WebSocket-Version", &["8"])).unwrap_err();
        assert_eq!(err.reason, "unsupported websocket version 8");
    }

    #[test]
    fn rejects_bad_requests_with_400() {
        let mut post = with("Host", &["h"]);
        post.method = "POST".to_owned();
        assert_eq!(status_of(&post), 400);
        let mut http10 = with("Host", &["h"]);
        http10.version = 0;
        assert_eq!(status_of(&http10), 400);
        assert_eq!(status_of(&with("Host", &[])), 400);
        assert_eq!(status_of(&with("Host", &[""])), 400);
        assert_eq!(status_of(&with("Sec-WebSocket-Key", &[])), 400);
        assert_eq!(status_of(&with("Upgrade", &["web socket"])), 400);
        assert_eq!(status_of(&with("Connection", &["up\"grade"])), 400);
        assert_eq!(status_of(&with("Sec-WebSocket-Protocol", &["a b"])), 400);
        assert_eq!(
            status_of(&with("Sec-WebSocket-Extensions", &["permessage-deflate;"])),
            400
        );
    }

    #[test]
    fn rejects_duplicate_single_valued_headers_with_400() {
        for (name, value) in [
            ("Host", "server.example.com"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
            ("Origin", "http://example.com"),
        ] {
            let err = validate_request(&with(name, &[value, value])).unwrap_err();
            assert_eq!(err.status, 400, "{name}");
            assert_eq!(err.reason, format!("multiple {name} headers"));
        }
    }

    #[test]
    fn rejects_keys_that_are_not_16_bytes_of_base64_with_400() {
        for key in [
            "",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZQ=",
            "dGhlIHNhbXBsZSBub25jZXg=",
            "dGhlIHNhbXBsZSBub25j",
            "!!!!!!!!!!!!!!!!!!!!!!==",
        ] {
            assert_eq!(status_of(&with("Sec-WebSocket-Key", &[key])), 400, "{key}");
        }
    }

    #[test]
    fn error_reasons_are_lowercase_without_period() {
        let requests = [
            with("Upgrade", &[]),
            with("Connection", &[]),
            with("Host", &[]),
            with("Sec-WebSocket-Version", &["8"]),
            with("Sec-WebSocket-Key", &["x"]),
        ];
        for req in requests {
            let reason = validate_request(&req).unwrap_err().reason;
            assert!(
                reason.starts_with(|c: char| c.is_ascii_lowercase()),
                "{reason}"
            );
            assert!(!reason.ends_with('.'), "{reason}");
        }
    }

    // Extension header grammar.

    #[test]
    fn parses_extension_lists_across_header_lines() {
        let extensions = parse_extensions(&[
            "permessage-deflate; client_max_window_bits, permessage-deflate",
            "x-foo;a=1 ;b ; c = \"2\"",
        ])
        .unwrap();
        assert_eq!(
            extensions,
            [
                ext("permessage-deflate", &[("client_max_window_bits", None)]),
                ext("permessage-deflate", &[]),
                ext("x-foo", &[("a", Some("1")), ("b", None), ("c", Some("2"))]),
            ]
        );
    }

    #[test]
    fn unquotes_quoted_extension_values() {
        let extensions =
            parse_extensions(&["permessage-deflate; client_max_window_bits=\"1\\0\""]).unwrap();
        assert_eq!(
            extensions,
            [ext(
                "permessage-deflate",
                &[("client_max_window_bits", Some("10"))]
            )]
        );
    }

    #[test]
    fn skips_empty_extension_list_elements() {
        assert_eq!(
            parse_extensions(&[", a ,, b,"]).unwrap(),
            [ext("a", &[]), ext("b", &[])]
        );
    }

    #[test]
    fn rejects_malformed_extension_headers() {
        for value in [
            "",
            " , ",
            "a;",
            "a; =1",
            "a; b=",
            "a; b=\"\"",
            "a; b=\"x y\"",
            "a; b=\"unterminated",
            "a; b=\"x\\",
            "a b",
            "a; b c",
            "a; b=1=2",
            "\"a\"",
            "a; b=\"1\"x",
            "a; b=(1)",
        ] {
            let err = parse_extensions(&[value]).unwrap_err();
            assert_eq!(err.status, 400, "{value:?}");
        }
    }

    // Building.

    #[test]
    fn builds_response_with_accept_key() {
        let response = build_response(
            KEY,
            Some("chat"),
            Some("permessage-deflate"),
            &[("Server".to_owned(), "wsfast".to_owned())],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(response).unwrap(),
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n\
                 Sec-WebSocket-Extensions: permessage-deflate\r\nServer: wsfast\r\n\r\n"
            )
        );
    }

    #[test]
    fn builds_rejection_with_body() {
        let response = build_rejection(400, b"missing Host header", &[]).unwrap();
        assert_eq!(
            String::from_utf8(response).unwrap(),
            "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 19\r\n\r\nmissing Host header"
        );
    }

    #[test]
    fn builds_426_rejection_with_version_and_upgrade() {
        let response = String::from_utf8(build_rejection(426, b"", &[]).unwrap()).unwrap();
        assert!(response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(response.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(response.contains("\r\nUpgrade: websocket\r\n"));
        assert!(response.contains("\r\nConnection: Upgrade, close\r\n"));
    }

    #[test]
    fn rejection_keeps_callers_content_type() {
        let headers = [("content-type".to_owned(), "application/json".to_owned())];
        let response = String::from_utf8(build_rejection(403, b"{}", &headers).unwrap()).unwrap();
        assert!(!response.contains("text/plain"));
        assert!(response.contains("\r\ncontent-type: application/json\r\n"));
        let (parsed, _) = parse_response(response.as_bytes(), DEFAULT_MAX_SIZE)
            .unwrap()
            .unwrap();
        assert_eq!(parsed.status, 403);
        assert_eq!(parsed.reason, "Forbidden");
    }

    #[test]
    fn rejects_invalid_rejection_status() {
        for status in [0, 101, 199, 600] {
            assert_eq!(
                build_rejection(status, b"", &[]).unwrap_err().kind,
                HandshakeErrorKind::Build
            );
        }
    }

    #[test]
    fn builds_request_that_validates() {
        let data = build_request(
            "example.com:8080",
            "/chat?room=1",
            KEY,
            &["chat".to_owned(), "superchat".to_owned()],
            Some("permessage-deflate; client_max_window_bits"),
            &[("Origin".to_owned(), "http://example.com".to_owned())],
        )
        .unwrap();
        let (req, consumed) = parse_request(&data, DEFAULT_MAX_SIZE).unwrap().unwrap();
        assert_eq!(consumed, data.len());
        let hello = validate_request(&req).unwrap();
        assert_eq!(hello.path, "/chat?room=1");
        assert_eq!(hello.host, "example.com:8080");
        assert_eq!(hello.subprotocols, ["chat", "superchat"]);
        assert_eq!(hello.origin.as_deref(), Some("http://example.com"));
        assert_eq!(
            hello.extension_values,
            ["permessage-deflate; client_max_window_bits"]
        );
    }

    #[test]
    fn refuses_header_injection_when_building() {
        let injected = [("X-A".to_owned(), "1\r\nX-B: 2".to_owned())];
        assert_eq!(
            build_response(KEY, None, None, &injected).unwrap_err().kind,
            HandshakeErrorKind::Build
        );
        assert!(build_rejection(400, b"", &injected).is_err());
        assert!(build_request("h", "/", KEY, &[], None, &injected).is_err());
        let bad_name = [("X-A: 1\r\nX-B".to_owned(), "2".to_owned())];
        assert!(build_response(KEY, None, None, &bad_name).is_err());
        assert!(build_response(KEY, Some("a\r\nb"), None, &[]).is_err());
        assert!(build_response(KEY, None, Some("x\ny"), &[]).is_err());
        assert!(build_request("h\r\nX: 1", "/", KEY, &[], None, &[]).is_err());
        assert!(build_request("h", "/ HTTP/1.0\r\n", KEY, &[], None, &[]).is_err());
        assert!(build_request("h", "/a b", KEY, &[], None, &[]).is_err());
        assert!(build_request("h", "", KEY, &[], None, &[]).is_err());
        assert!(build_request("", "/", KEY, &[], None, &[]).is_err());
        assert!(build_request("h", "/", "k\n", &[], None, &[]).is_err());
        assert!(build_request("h", "/", KEY, &["a,b".to_owned()], None, &[]).is_err());
        assert!(build_request("h", "/", KEY, &[], Some("\0"), &[]).is_err());
    }

    // Response parsing and validation.

    fn response_bytes(extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    fn response(extra: &str) -> Response {
        parse_response(&response_bytes(extra), DEFAULT_MAX_SIZE)
            .unwrap()
            .unwrap()
            .0
    }

    fn validate(
        resp: &Response,
        subprotocols: &[&str],
        extensions: Option<&str>,
    ) -> Result<(Option<String>, Vec<Extension>), HandshakeError> {
        let subprotocols: Vec<String> = subprotocols.iter().map(|s| (*s).to_owned()).collect();
        validate_response(resp, KEY, &subprotocols, extensions)
    }

    #[test]
    fn parses_response_incrementally() {
        let data = response_bytes("");
        for end in 0..data.len() {
            assert_eq!(parse_response(&data[..end], DEFAULT_MAX_SIZE), Ok(None));
        }
        let mut buf = data.clone();
        buf.extend_from_slice(b"\x81\x00");
        let (resp, consumed) = parse_response(&buf, DEFAULT_MAX_SIZE).unwrap().unwrap();
        assert_eq!(consumed, data.len());
        assert_eq!(resp.status, 101);
        assert_eq!(resp.reason, "Switching Protocols");
        assert_eq!(resp.get("sec-websocket-accept"), Some(ACCEPT));
    }

    #[test]
    fn rejects_malformed_or_oversized_response() {
        let err = parse_response(b"HTTP/1.1 abc OK\r\n\r\n", DEFAULT_MAX_SIZE).unwrap_err();
        assert_eq!(err.kind, HandshakeErrorKind::Malformed);
        let err = parse_response(&response_bytes(""), 20).unwrap_err();
        assert_eq!(err.kind, HandshakeErrorKind::Malformed);
        assert_eq!(err.reason, "response head exceeds 20 bytes");
    }

    #[test]
    fn builds_response_that_the_client_validates() {
        let data = build_response(KEY, Some("chat"), Some("permessage-deflate"), &[]).unwrap();
        let (resp, _) = parse_response(&data, DEFAULT_MAX_SIZE).unwrap().unwrap();
        let (subprotocol, extensions) = validate(
            &resp,
            &["chat"],
            Some("permessage-deflate; client_max_window_bits"),
        )
        .unwrap();
        assert_eq!(subprotocol.as_deref(), Some("chat"));
        assert_eq!(extensions, [ext("permessage-deflate", &[])]);
    }

    #[test]
    fn client_rejects_non_101_status() {
        let (resp, _) =
            parse_response(&build_rejection(403, b"no", &[]).unwrap(), DEFAULT_MAX_SIZE)
                .unwrap()
                .unwrap();
        let err = validate(&resp, &[], None).unwrap_err();
        assert_eq!(err.kind, HandshakeErrorKind::Status);
        assert_eq!(err.status, 403);
    }

    #[test]
    fn client_rejects_missing_or_wrong_upgrade_headers() {
        let data = format!(
            "HTTP/1.1 101 OK\r\nConnection: upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
        );
        let (resp, _) = parse_response(data.as_bytes(), DEFAULT_MAX_SIZE)
            .unwrap()
            .unwrap();
        assert_eq!(
            validate(&resp, &[], None).unwrap_err().kind,
            HandshakeErrorKind::Header
        );
        let data = format!(
            "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
        );
        let (resp, _) = parse_response(data.as_bytes(), DEFAULT_MAX_SIZE)
            .unwrap()
            .unwrap();
        assert_eq!(
            validate(&resp, &[], None).unwrap_err().kind,
            HandshakeErrorKind::Header
        );
    }

    #[test]
    fn client_rejects_missing_duplicate_or_wrong_accept() {
        let data = "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
        let (resp, _) = parse_response(data.as_bytes(), DEFAULT_MAX_SIZE)
            .unwrap()
            .unwrap();
        assert_eq!(
            validate(&resp, &[], None).unwrap_err().reason,
            "missing Sec-WebSocket-Accept header"
        );
        let resp = response(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"));
        assert_eq!(
            validate(&resp, &[], None).unwrap_err().kind,
            HandshakeErrorKind::Header
        );
        let resp = response("");
        let err = validate_response(&resp, "AQIDBAUGBwgJCgsMDQ4PEC==", &[], None).unwrap_err();
        assert_eq!(err.kind, HandshakeErrorKind::Header);
    }

    #[test]
    fn client_rejects_http_1_0_response() {
        let data = format!("HTTP/1.0 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n");
        let (resp, _) = parse_response(data.as_bytes(), DEFAULT_MAX_SIZE)
            .unwrap()
            .unwrap();
        assert!(validate(&resp, &[], None).is_err());
    }

    #[test]
    fn client_accepts_only_an_offered_subprotocol() {
        let resp = response("Sec-WebSocket-Protocol: chat\r\n");
        assert_eq!(
            validate(&resp, &["superchat", "chat"], None)
                .unwrap()
                .0
                .as_deref(),
            Some("chat")
        );
        assert_eq!(
            validate(&resp, &["superchat"], None).unwrap_err().kind,
            HandshakeErrorKind::Negotiation
        );
        assert_eq!(
            validate(&resp, &[], None).unwrap_err().kind,
            HandshakeErrorKind::Negotiation
        );
        let resp = response("Sec-WebSocket-Protocol: chat, superchat\r\n");
        assert_eq!(
            validate(&resp, &["superchat", "chat"], None)
                .unwrap_err()
                .kind,
            HandshakeErrorKind::Negotiation
        );
        assert_eq!(validate(&response(""), &["chat"], None).unwrap().0, None);
    }

    #[test]
    fn client_accepts_only_offered_extensions() {
        let resp =
            response("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n");
        let (_, extensions) = validate(
            &resp,
            &[],
            Some("permessage-deflate; client_max_window_bits"),
        )
        .unwrap();
        assert_eq!(
            extensions,
            [ext(
                "permessage-deflate",
                &[("server_max_window_bits", Some("10"))]
            )]
        );
        assert_eq!(
            validate(&resp, &[], None).unwrap_err().kind,
            HandshakeErrorKind::Negotiation
        );
        assert_eq!(
            validate(&resp, &[], Some("x-foo")).unwrap_err().kind,
            HandshakeErrorKind::Negotiation
        );
        let resp = response("Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Extensions: permessage-deflate\r\n");
        assert_eq!(
            validate(&resp, &[], Some("permessage-deflate"))
                .unwrap_err()
                .kind,
            HandshakeErrorKind::Negotiation
        );
        let resp = response("Sec-WebSocket-Extensions: permessage-deflate;\r\n");
        assert_eq!(
            validate(&resp, &[], Some("permessage-deflate"))
                .unwrap_err()
                .kind,
            HandshakeErrorKind::Header
        );
    }

    // Properties.

    proptest! {
        #[test]
        fn parse_request_never_panics(data in prop::collection::vec(any::<u8>(), 0..2048), max_size in 0usize..4096) {
            if let Ok(Some((req, consumed))) = parse_request(&data, max_size) {
                prop_assert!(consumed <= data.len().min(max_size));
                let _ = validate_request(&req);
            }
        }

        #[test]
        fn parse_request_never_panics_on_near_valid_requests(
            extra in "([A-Za-z-]{1,12}: [ -~\t]{0,40}\r\n){0,6}",
            cut in 0usize..600,
        ) {
            let data = request_bytes(&extra);
            let end = cut.min(data.len());
            if let Ok(Some((req, _))) = parse_request(&data[..end], DEFAULT_MAX_SIZE) {
                let _ = validate_request(&req);
            }
        }

        #[test]
        fn parse_response_never_panics(data in prop::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(Some((resp, _))) = parse_response(&data, DEFAULT_MAX_SIZE) {
                let _ = validate_response(&resp, KEY, &[], Some("permessage-deflate"));
            }
        }

        #[test]
        fn parse_extensions_never_panics(value in "[ -~\t\u{80}-\u{ff}]{0,80}") {
            let _ = parse_extensions(&[&value]);
        }

        #[test]
        fn any_split_of_a_request_gives_the_same_answer(cut in 0usize..400) {
            let data = request_bytes("Sec-WebSocket-Protocol: chat\r\n");
            let end = cut.min(data.len());
            let partial = parse_request(&data[..end], DEFAULT_MAX_SIZE).unwrap();
            prop_assert_eq!(partial.is_some(), end == data.len());
        }
    }
}
