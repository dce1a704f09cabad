// SPDX-License-Identifier: MIT
//! The opening handshake: RFC 6455 examples, the status of each bad request,
//! header injection, and both sides against each other.

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
fn parses_plain_requests_without_the_upgrade_checks() {
    let data = b"POST /health?full=1 HTTP/1.0\r\nX-Probe:  yes \r\nEmpty:\r\n\r\nbody";
    let (req, consumed) = parse_request(data, DEFAULT_MAX_SIZE).unwrap().unwrap();
    assert_eq!(consumed, data.len() - 4);
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/health?full=1");
    assert_eq!(req.version, 0);
    assert_eq!(
        req.headers,
        [
            ("X-Probe".to_owned(), "yes".to_owned()),
            ("Empty".to_owned(), String::new())
        ]
    );
    assert!(!req.is_upgrade());
}

#[test]
fn rejects_what_the_python_head_parser_rejected_with_400() {
    for data in [
        // Bad request lines: missing parts, extra parts, not HTTP/1.x.
        &b"GET\r\n\r\n"[..],
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET / FTP/1.1\r\n\r\n",
        b"GET / HTTP/3.0\r\n\r\n",
        // A header line without a colon.
        b"GET / HTTP/1.1\r\nHost\r\n\r\n",
        // Whitespace around a header name.
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
        // An empty header name.
        b"GET / HTTP/1.1\r\n: x\r\n\r\n",
    ] {
        let err = parse_request(data, DEFAULT_MAX_SIZE).unwrap_err();
        assert_eq!(err.status, 400, "{:?}", String::from_utf8_lossy(data));
        assert_eq!(err.kind, HandshakeErrorKind::Malformed);
    }
}

#[test]
fn is_upgrade_looks_for_websocket_in_upgrade_headers() {
    let upgrade = |values: &[&str]| with("Upgrade", values).is_upgrade();
    assert!(upgrade(&["websocket"]));
    assert!(upgrade(&["WebSocket"]));
    assert!(upgrade(&["h2c, websocket"]));
    assert!(upgrade(&["h2c", "websocket/13"]));
    assert!(!upgrade(&[]));
    assert!(!upgrade(&["h2c"]));
    assert!(!upgrade(&["websockets"]));
    // Any other header, even one naming websocket, is not an upgrade.
    assert!(!request(&[("Connection", "websocket")]).is_upgrade());
    // An upgrade request that fails validation still asks for an upgrade.
    let bad = with("Sec-WebSocket-Version", &["8"]);
    assert!(bad.is_upgrade());
    assert_eq!(status_of(&bad), 426);
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
    let (resp, _) = parse_response(&build_rejection(403, b"no", &[]).unwrap(), DEFAULT_MAX_SIZE)
        .unwrap()
        .unwrap();
    let err = validate(&resp, &[], None).unwrap_err();
    assert_eq!(err.kind, HandshakeErrorKind::Status);
    assert_eq!(err.status, 403);
}

#[test]
fn client_rejects_missing_or_wrong_upgrade_headers() {
    let data =
        format!("HTTP/1.1 101 OK\r\nConnection: upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n");
    let (resp, _) = parse_response(data.as_bytes(), DEFAULT_MAX_SIZE)
        .unwrap()
        .unwrap();
    assert_eq!(
        validate(&resp, &[], None).unwrap_err().kind,
        HandshakeErrorKind::Header
    );
    let data =
        format!("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n");
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
