// SPDX-License-Identifier: MIT
//! The C API: its layout table against `wsfast_rs.h`, and what `protocol_new`
//! and `close_ok` do with it.

use super::*;
use crate::deflate::DEFAULT_COMPRESSION_LEVEL;

/// `cython_ext/includes/wsfast_rs.h`, the C side of the API.
fn header() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../cython_ext/includes/wsfast_rs.h"
    );
    std::fs::read_to_string(path).expect("wsfast_rs.h is readable")
}

/// The header without its `/* ... */` comments.
fn without_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("comment is closed");
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// The field names of `typedef struct { ... } name;`, in order.
fn header_fields(header: &str, name: &str) -> Vec<String> {
    let text = without_comments(header);
    let end = text
        .find(&format!("}} {name};"))
        .unwrap_or_else(|| panic!("{name} is declared"));
    let start = text[..end].rfind("typedef struct {").expect("struct opens") + 16;
    text[start..end]
        .split(';')
        .map(str::trim)
        .filter(|member| !member.is_empty())
        .map(|member| {
            // A function pointer `ret (*name)(args)`, else `type name` or `type name[n]`.
            let name = match member.find("(*") {
                Some(at) => &member[at + 2..at + 2 + member[at + 2..].find(')').unwrap()],
                None => member
                    .split('[')
                    .next()
                    .unwrap()
                    .rsplit([' ', '*'])
                    .next()
                    .unwrap(),
            };
            name.to_owned()
        })
        .collect()
}

/// The value of `#define name value` in the header.
fn header_define(header: &str, name: &str) -> u32 {
    let prefix = format!("#define {name} ");
    let line = header
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{name} is defined"));
    line[prefix.len()..].trim().parse().expect("a number")
}

#[test]
fn layout_lists_every_field_of_the_header_in_order() {
    let header = header();
    let layout = layout();
    let names: Vec<&str> = layout.iter().map(|s| s.name).collect();
    assert_eq!(names, ["wsf_config", "wsf_event", "wsf_capi"]);
    for table in &layout {
        let fields: Vec<&str> = table.fields.iter().map(|(name, _)| *name).collect();
        assert_eq!(fields, header_fields(&header, table.name), "{}", table.name);
    }
}

#[test]
fn layout_offsets_increase_within_the_struct() {
    for table in layout() {
        let offsets: Vec<usize> = table.fields.iter().map(|(_, at)| *at).collect();
        assert_eq!(offsets[0], 0, "{}", table.name);
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{}", table.name);
        assert!(*offsets.last().unwrap() < table.size, "{}", table.name);
    }
}

#[test]
fn layout_of_the_function_table_is_one_pointer_per_entry() {
    let capi = layout().pop().unwrap();
    let word = std::mem::size_of::<usize>();
    // abi_version, padded to a pointer, then the function pointers.
    assert_eq!(capi.size, word * capi.fields.len());
    assert_eq!(
        capi.fields.last().unwrap(),
        &("utf8_decode", capi.size - word)
    );
}

#[test]
fn header_constants_match_the_rust_ones() {
    let header = header();
    assert_eq!(header_define(&header, "WSF_ABI_VERSION"), ABI_VERSION);
    assert_eq!(
        header_define(&header, "WSF_DEFAULT_COMPRESSION_LEVEL"),
        DEFAULT_COMPRESSION_LEVEL
    );
}

fn config(deflate: bool) -> WsfConfig {
    WsfConfig {
        role: 0,
        auto_pong: 1,
        deflate: u8::from(deflate),
        server_no_context_takeover: 0,
        client_no_context_takeover: 0,
        server_max_window_bits: 0,
        client_max_window_bits: 0,
        mem_level: 0,
        compress_window_bits: 0,
        compress_no_context: 0,
        compression_level: DEFAULT_COMPRESSION_LEVEL,
        max_frame_size: 1 << 20,
        max_message_size: 1 << 20,
        compress_min_size: 0,
        mask_seed: [0; 32],
    }
}

/// Run `check` on a protocol made by the C API's `protocol_new` from `cfg`.
fn with_protocol(cfg: &WsfConfig, check: impl FnOnce(*mut CProtocol)) {
    // SAFETY: a valid config; the protocol is freed once, after its last use.
    unsafe {
        let p = (WSFAST_CAPI.protocol_new)(cfg);
        check(p);
        (WSFAST_CAPI.protocol_free)(p);
    }
}

#[test]
fn protocol_new_takes_the_compressor_settings_from_the_config() {
    let mut cfg = config(true);
    cfg.compression_level = 9;
    cfg.mem_level = 8;
    cfg.compress_window_bits = 15;
    with_protocol(&cfg, |p| {
        // SAFETY: a live protocol.
        let settings = unsafe { (*p).proto.config().compressor };
        assert_eq!(
            settings,
            CompressorSettings {
                level: 9,
                mem_level: 8,
                window_bits: 15,
                keep_context: true,
            }
        );
    });
    cfg.compress_no_context = 1;
    with_protocol(&cfg, |p| {
        // SAFETY: a live protocol.
        let settings = unsafe { (*p).proto.config().compressor };
        assert!(!settings.keep_context);
    });
}

#[test]
fn release_idle_compressor_frees_a_compressor_unused_since_the_last_call() {
    let message = [b'a'; 200];
    with_protocol(&config(true), |p| {
        // SAFETY: a live protocol, and a valid buffer.
        unsafe {
            assert_eq!((WSFAST_CAPI.release_idle_compressor)(p), 0);
            let sent = (WSFAST_CAPI.send_frame)(p, 2, message.as_ptr(), message.len(), 1);
            assert_eq!(sent, 0);
            assert!((*p).proto.compression_allocated().0);
            assert_eq!((WSFAST_CAPI.release_idle_compressor)(p), 0, "just used");
            assert_eq!((WSFAST_CAPI.release_idle_compressor)(p), 1, "idle");
            assert!(!(*p).proto.compression_allocated().0);
        }
    });
}

#[test]
fn protocol_new_reads_zero_settings_as_the_defaults() {
    with_protocol(&config(true), |p| {
        // SAFETY: a live protocol.
        let settings = unsafe { (*p).proto.config().compressor };
        assert_eq!(settings, CompressorSettings::default());
    });
}

#[test]
fn close_ok_reports_a_clean_closing_handshake() {
    with_protocol(&config(false), |p| {
        // SAFETY: a live protocol; the reason pointer is valid for 0 bytes.
        unsafe {
            assert_eq!((WSFAST_CAPI.close_ok)(p), 0);
            assert_eq!((WSFAST_CAPI.send_close)(p, 1000, ptr::null(), 0), 0);
            assert_eq!((WSFAST_CAPI.close_ok)(p), 0);
            // The client's answer: a masked close frame with code 1000.
            let reply = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
            (WSFAST_CAPI.receive_data)(p, reply.as_ptr(), reply.len());
            assert_eq!((WSFAST_CAPI.close_ok)(p), 1);
        }
    });
}

#[test]
fn close_ok_is_false_after_an_error_code() {
    with_protocol(&config(false), |p| {
        // SAFETY: as above.
        unsafe {
            // The client closes with 1011 (internal error); we echo it.
            let close = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xf3];
            (WSFAST_CAPI.receive_data)(p, close.as_ptr(), close.len());
            assert_eq!((WSFAST_CAPI.close_ok)(p), 0);
        }
    });
}
