// SPDX-License-Identifier: MIT
//! Opening-handshake parsers on arbitrary bytes: requests, responses, extension
//! headers and deflate negotiation. Errors are fine; panics are not.
#![no_main]

use _rust::deflate::{accept_response, negotiate_server, DeflateConfig};
use _rust::handshake::{
    parse_extensions, parse_request, parse_response, validate_request, validate_response,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((req, n))) = parse_request(data, 4096) {
        assert!(n <= data.len());
        // A server picks plain HTTP or the upgrade checks from this.
        let _ = req.is_upgrade();
        if let Ok(hello) = validate_request(&req) {
            let _ = negotiate_server(&hello.extensions, &DeflateConfig::default());
        }
    }
    if let Ok(Some((resp, n))) = parse_response(data, 4096) {
        assert!(n <= data.len());
        let _ = validate_response(
            &resp,
            "dGhlIHNhbXBsZSBub25jZQ==",
            &["chat".to_owned()],
            Some("permessage-deflate"),
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(exts) = parse_extensions(&[text]) {
            let cfg = DeflateConfig::default();
            let _ = negotiate_server(&exts, &cfg);
            for ext in &exts {
                let _ = accept_response(ext, &cfg);
            }
        }
    }
});
