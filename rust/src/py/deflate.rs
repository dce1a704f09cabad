// SPDX-License-Identifier: MIT
//! Python wrappers for permessage-deflate: negotiation helpers, the agreed
//! parameters, and standalone `Deflater` / `Inflater` for tests and benchmarks.

// The `///` comments on Python-facing items are Python docstrings (Google style),
// where parameter names are plain words, not rustdoc code spans.
#![allow(clippy::doc_markdown)]

use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::buffers::with_bytes;
use super::errors;
use super::handshake::invalid_request;
use crate::deflate::{
    accept_response, client_offer, negotiate_server, Compressor, CompressorSettings, Decompressor,
    DeflateConfig, DeflateError, DeflateParams, DEFAULT_COMPRESSION_LEVEL, DEFAULT_COMPRESSOR_IDLE,
    DEFAULT_COMPRESS_WINDOW_BITS, DEFAULT_MEM_LEVEL,
};
use crate::frame::Role;
use crate::handshake::parse_extensions;

/// Default level of the standalone `Deflater`: zlib's own default, so that
/// tests and benchmarks compare with `zlib.compressobj()` like for like.
const ZLIB_LEVEL: u32 = 6;

/// Default `memLevel` of the standalone `Deflater`: zlib's own default.
const ZLIB_MEM_LEVEL: u8 = 8;

/// Default `max_size` of `Inflater`, as for `Protocol`: 1 MiB.
const DEFAULT_MAX_SIZE: usize = 1 << 20;

fn parse_side(side: &str) -> PyResult<Role> {
    match side {
        "server" => Ok(Role::Server),
        "client" => Ok(Role::Client),
        other => Err(PyValueError::new_err(format!(
            "side must be 'server' or 'client', not {other:?}"
        ))),
    }
}

pub(super) fn check_window_bits(name: &str, bits: Option<u8>) -> PyResult<()> {
    match bits {
        Some(bits) if !(8..=15).contains(&bits) => Err(PyValueError::new_err(format!(
            "{name} must be between 8 and 15, not {bits}"
        ))),
        _ => Ok(()),
    }
}

fn check_level(level: u32) -> PyResult<()> {
    if level > 9 {
        return Err(PyValueError::new_err(format!(
            "level must be between 0 and 9, not {level}"
        )));
    }
    Ok(())
}

pub(super) fn check_mem_level(mem_level: u8) -> PyResult<()> {
    if !(1..=9).contains(&mem_level) {
        return Err(PyValueError::new_err(format!(
            "mem_level must be between 1 and 9, not {mem_level}"
        )));
    }
    Ok(())
}

/// `compressor_idle` in seconds as a duration: None stays None, anything else
/// must be a finite number of seconds, zero or more.
fn check_compressor_idle(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    seconds
        .map(|s| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                PyValueError::new_err(format!(
                    "compressor_idle must be a finite number of seconds >= 0 or None, not {s}"
                ))
            })
        })
        .transpose()
}

fn py_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

fn py_bits(bits: Option<u8>) -> String {
    bits.map_or_else(|| "None".to_owned(), |bits| bits.to_string())
}

/// Negotiated permessage-deflate parameters (RFC 7692 section 7.1).
///
/// Window bits of None mean 15, the RFC default.
///
/// Args:
///     server_no_context_takeover: the server resets its compression context
///         after every message.
///     client_no_context_takeover: the client does the same.
///     server_max_window_bits: the server's LZ77 window (log2), 8 to 15.
///     client_max_window_bits: the client's LZ77 window (log2), 8 to 15.
///
/// Raises:
///     ValueError: if window bits are outside 8..15.
#[pyclass(name = "DeflateParams", module = "wsfast._rust", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyDeflateParams {
    /// The parameters themselves.
    pub inner: DeflateParams,
}

impl PyDeflateParams {
    /// The parameters, for the `Protocol` wrapper.
    pub fn params(&self) -> DeflateParams {
        self.inner
    }
}

#[pymethods]
impl PyDeflateParams {
    #[new]
    #[pyo3(signature = (*, server_no_context_takeover = false, client_no_context_takeover = false,
                        server_max_window_bits = None, client_max_window_bits = None))]
    fn new(
        server_no_context_takeover: bool,
        client_no_context_takeover: bool,
        server_max_window_bits: Option<u8>,
        client_max_window_bits: Option<u8>,
    ) -> PyResult<Self> {
        check_window_bits("server_max_window_bits", server_max_window_bits)?;
        check_window_bits("client_max_window_bits", client_max_window_bits)?;
        Ok(Self {
            inner: DeflateParams {
                server_no_context_takeover,
                client_no_context_takeover,
                server_max_window_bits,
                client_max_window_bits,
            },
        })
    }

    /// bool: the server resets its compression context after every message.
    #[getter]
    fn server_no_context_takeover(&self) -> bool {
        self.inner.server_no_context_takeover
    }

    /// bool: the client resets its compression context after every message.
    #[getter]
    fn client_no_context_takeover(&self) -> bool {
        self.inner.client_no_context_takeover
    }

    /// int | None: the server's window bits (None means 15).
    #[getter]
    fn server_max_window_bits(&self) -> Option<u8> {
        self.inner.server_max_window_bits
    }

    /// int | None: the client's window bits (None means 15).
    #[getter]
    fn client_max_window_bits(&self) -> Option<u8> {
        self.inner.client_max_window_bits
    }

    /// The extension element for a Sec-WebSocket-Extensions header.
    ///
    /// Returns:
    ///     str: e.g. "permessage-deflate; server_no_context_takeover".
    fn to_header_value(&self) -> String {
        self.inner.to_header_value()
    }

    fn __repr__(&self) -> String {
        let p = &self.inner;
        format!(
            "DeflateParams(server_no_context_takeover={}, client_no_context_takeover={}, \
             server_max_window_bits={}, client_max_window_bits={})",
            py_bool(p.server_no_context_takeover),
            py_bool(p.client_no_context_takeover),
            py_bits(p.server_max_window_bits),
            py_bits(p.client_max_window_bits),
        )
    }
}

/// Local permessage-deflate preferences: what a client offers, or what a
/// server accepts.
///
/// A server asks for the no_context_takeover flags set here even if the client
/// did not offer them, caps windows at the bits set here, and declines offers
/// that cannot honour client_max_window_bits. A client offers exactly these.
///
/// level, mem_level and compress_window_bits are never negotiated: they set
/// our own compressor. The defaults favour CPU per message over bytes on the
/// wire, as a realtime server wants (measured on 1 KiB JSON-like messages
/// with zlib-rs): level 1, zlib-rs' quick strategy, about 4 times faster than
/// level 6 for about 40% more output (gorilla/websocket's default level too);
/// mem_level 5, as websockets, which shrinks the compressor's buffers from
/// 112 KiB to 14 KiB; compress_window_bits 12, the window websockets' server
/// compresses with, 16 KiB of window and hash chain instead of 128 KiB at 15
/// (it only lowers our side's negotiated window, so the handshake is
/// unchanged). Memory per connection once a compressed message went each
/// way: about 165 KiB for the compressor at these defaults (zlib-rs has a
/// fixed 128 KiB hash table) plus 42 KiB for the decompressor.
///
/// compressor_idle is never negotiated either. With context takeover on our
/// side the compressor would stay allocated for the whole connection; a
/// server (the epoll server's sweep) frees it once the connection compressed
/// nothing for between compressor_idle and twice that, and the next message
/// starts from an empty window: valid for any peer (RFC 7692 lets a sender
/// drop its context), it only compresses that one message like the first of
/// a connection. The default, 5 s, keeps the ratio of busy connections and
/// frees the memory of quiet ones. None keeps the compressor for the whole
/// connection; 0 keeps no context at all, compressing every message alone as
/// without context takeover (no compressor held between messages, at the
/// ratio of no context takeover: often 1.5 to 3 times the bytes for small
/// repetitive messages).
///
/// Args:
///     server_no_context_takeover: ask that the server reset its context
///         after every message.
///     client_no_context_takeover: ask that the client do the same.
///     server_max_window_bits: cap on the server's window, 8 to 15.
///     client_max_window_bits: cap on the client's window, 8 to 15.
///     level: zlib compression level, 0 to 9 (default 1).
///     mem_level: zlib memLevel of our compressor, 1 to 9 (default 5).
///     compress_window_bits: largest window (log2) our compressor uses, 8 to
///         15 (default 12), further capped by the negotiated window.
///     compressor_idle: seconds without a compressed message after which a
///         connection with context takeover on our side frees its compressor
///         (default 5.0); None never, 0 keeps no context between messages.
///
/// Raises:
///     TypeError: if compressor_idle is not a number or None.
///     ValueError: if a value is out of range.
#[pyclass(name = "DeflateConfig", module = "wsfast._rust", frozen, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct PyDeflateConfig {
    /// The preferences themselves.
    pub inner: DeflateConfig,
}

impl PyDeflateConfig {
    /// The preferences, for other wrappers.
    pub fn config(&self) -> &DeflateConfig {
        &self.inner
    }
}

#[pymethods]
impl PyDeflateConfig {
    #[new]
    #[pyo3(signature = (*, server_no_context_takeover = false, client_no_context_takeover = false,
                        server_max_window_bits = None, client_max_window_bits = None,
                        level = DEFAULT_COMPRESSION_LEVEL, mem_level = DEFAULT_MEM_LEVEL,
                        compress_window_bits = DEFAULT_COMPRESS_WINDOW_BITS,
                        compressor_idle = Some(DEFAULT_COMPRESSOR_IDLE.as_secs_f64())))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        server_no_context_takeover: bool,
        client_no_context_takeover: bool,
        server_max_window_bits: Option<u8>,
        client_max_window_bits: Option<u8>,
        level: u32,
        mem_level: u8,
        compress_window_bits: u8,
        compressor_idle: Option<f64>,
    ) -> PyResult<Self> {
        let compressor_idle = check_compressor_idle(compressor_idle)?;
        check_window_bits("server_max_window_bits", server_max_window_bits)?;
        check_window_bits("client_max_window_bits", client_max_window_bits)?;
        check_window_bits("compress_window_bits", Some(compress_window_bits))?;
        check_level(level)?;
        check_mem_level(mem_level)?;
        Ok(Self {
            inner: DeflateConfig {
                server_no_context_takeover,
                client_no_context_takeover,
                server_max_window_bits,
                client_max_window_bits,
                level,
                mem_level,
                compress_window_bits,
                compressor_idle,
            },
        })
    }

    /// bool: ask that the server reset its context after every message.
    #[getter]
    fn server_no_context_takeover(&self) -> bool {
        self.inner.server_no_context_takeover
    }

    /// bool: ask that the client reset its context after every message.
    #[getter]
    fn client_no_context_takeover(&self) -> bool {
        self.inner.client_no_context_takeover
    }

    /// int | None: cap on the server's window bits.
    #[getter]
    fn server_max_window_bits(&self) -> Option<u8> {
        self.inner.server_max_window_bits
    }

    /// int | None: cap on the client's window bits.
    #[getter]
    fn client_max_window_bits(&self) -> Option<u8> {
        self.inner.client_max_window_bits
    }

    /// int: zlib compression level.
    #[getter]
    fn level(&self) -> u32 {
        self.inner.level
    }

    /// int: zlib memLevel of our compressor.
    #[getter]
    fn mem_level(&self) -> u8 {
        self.inner.mem_level
    }

    /// int: largest window bits our compressor uses.
    #[getter]
    fn compress_window_bits(&self) -> u8 {
        self.inner.compress_window_bits
    }

    /// float | None: seconds without a compressed message before our
    /// compressor is freed (None: never; 0: no context kept between messages).
    #[getter]
    fn compressor_idle(&self) -> Option<f64> {
        self.inner.compressor_idle.map(|d| d.as_secs_f64())
    }

    fn __repr__(&self) -> String {
        let c = &self.inner;
        format!(
            "DeflateConfig(server_no_context_takeover={}, client_no_context_takeover={}, \
             server_max_window_bits={}, client_max_window_bits={}, level={}, mem_level={}, \
             compress_window_bits={}, compressor_idle={})",
            py_bool(c.server_no_context_takeover),
            py_bool(c.client_no_context_takeover),
            py_bits(c.server_max_window_bits),
            py_bits(c.client_max_window_bits),
            c.level,
            c.mem_level,
            c.compress_window_bits,
            c.compressor_idle
                .map_or_else(|| "None".to_owned(), |d| format!("{:?}", d.as_secs_f64())),
        )
    }
}

/// Compresses messages as one side of a permessage-deflate connection.
///
/// Its defaults are zlib's (level 6, memLevel 8, window 15), for tests and
/// benchmarks against zlib; connections use DeflateConfig's defaults instead.
///
/// Args:
///     params: the negotiated parameters (None: all defaults).
///     side: "server" or "client", the side that sends.
///     level: zlib compression level, 0 to 9 (default 6).
///     mem_level: zlib memLevel, 1 to 9 (default 8).
///     window_bits: largest window (log2) used, 8 to 15 (default 15),
///         further capped by the negotiated window of this side.
///
/// Raises:
///     ValueError: if side, level, mem_level or window_bits is invalid.
#[pyclass(name = "Deflater", module = "wsfast._rust")]
pub struct PyDeflater {
    inner: Compressor,
}

#[pymethods]
impl PyDeflater {
    #[new]
    #[pyo3(signature = (params = None, *, side = "server", level = ZLIB_LEVEL,
                        mem_level = ZLIB_MEM_LEVEL, window_bits = 15))]
    fn new(
        params: Option<PyRef<'_, PyDeflateParams>>,
        side: &str,
        level: u32,
        mem_level: u8,
        window_bits: u8,
    ) -> PyResult<Self> {
        let role = parse_side(side)?;
        check_level(level)?;
        check_mem_level(mem_level)?;
        check_window_bits("window_bits", Some(window_bits))?;
        let params = params.map(|p| p.params()).unwrap_or_default();
        let settings = CompressorSettings {
            level,
            mem_level,
            window_bits,
            ..CompressorSettings::default()
        };
        Ok(Self {
            inner: Compressor::with_settings(&params, role, settings),
        })
    }

    /// Compress one fragment of a message.
    ///
    /// Args:
    ///     data: the uncompressed fragment (any bytes-like object).
    ///     fin: whether this fragment ends the message; if so the trailing
    ///         00 00 ff ff is removed (RFC 7692 section 7.2.1).
    ///
    /// Returns:
    ///     bytes: the frame payload.
    ///
    /// Raises:
    ///     TypeError: if data is not bytes-like.
    ///     RuntimeError: if zlib fails (an internal error).
    #[pyo3(signature = (data, fin = true))]
    fn compress<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        fin: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::new();
        with_bytes(data, |data| self.inner.compress(data, fin, &mut out))?
            // Compression fails only on an internal error, never on input.
            .map_err(|err| PyRuntimeError::new_err(err.to_string()))?;
        Ok(PyBytes::new(py, &out))
    }

    /// Drop the compression context, as at the start of a connection.
    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// Decompresses messages as one side of a permessage-deflate connection.
///
/// Args:
///     params: the negotiated parameters (None: all defaults).
///     side: "server" or "client", the side that receives.
///     max_size: largest decompressed message in bytes (None: no limit).
///
/// Raises:
///     ValueError: if side is invalid.
#[pyclass(name = "Inflater", module = "wsfast._rust")]
pub struct PyInflater {
    inner: Decompressor,
    max_size: usize,
    /// Bytes already returned for the current message.
    message_size: usize,
}

#[pymethods]
impl PyInflater {
    #[new]
    #[pyo3(signature = (params = None, *, side = "server", max_size = Some(DEFAULT_MAX_SIZE)))]
    fn new(
        params: Option<PyRef<'_, PyDeflateParams>>,
        side: &str,
        max_size: Option<usize>,
    ) -> PyResult<Self> {
        let role = parse_side(side)?;
        let params = params.map(|p| p.params()).unwrap_or_default();
        Ok(Self {
            inner: Decompressor::new(&params, role),
            max_size: max_size.unwrap_or(usize::MAX),
            message_size: 0,
        })
    }

    /// Decompress one fragment's payload.
    ///
    /// Args:
    ///     data: the compressed payload (any bytes-like object).
    ///     fin: whether this fragment ends the message.
    ///
    /// Returns:
    ///     bytes: the decompressed data of this fragment.
    ///
    /// Raises:
    ///     PayloadTooBig: if the message would exceed max_size.
    ///     ProtocolError: if the data is not valid DEFLATE.
    ///     TypeError: if data is not bytes-like.
    #[pyo3(signature = (data, fin = true))]
    fn decompress<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        fin: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let limit = self.max_size - self.message_size;
        let mut out = Vec::new();
        let result = with_bytes(data, |data| {
            self.inner.decompress(data, &mut out, limit)?;
            if fin {
                self.inner.finish(&mut out, limit)?;
            }
            Ok(())
        })?;
        if let Err(err) = result {
            // The stream is unusable after an error: start afresh.
            self.reset();
            return Err(match err {
                DeflateError::TooBig { .. } => errors::payload_too_big(
                    py,
                    format!(
                        "decompressed message exceeds limit of {} bytes",
                        self.max_size
                    ),
                ),
                err => errors::protocol_error(py, err.to_string()),
            });
        }
        self.message_size = if fin {
            0
        } else {
            self.message_size + out.len()
        };
        Ok(PyBytes::new(py, &out))
    }

    /// Drop the decompression context, as at the start of a connection.
    fn reset(&mut self) {
        self.inner.reset();
        self.message_size = 0;
    }
}

/// Server side: accept the first acceptable permessage-deflate offer.
///
/// Args:
///     extension_header_values: the request's Sec-WebSocket-Extensions
///         header values, in order.
///     config: what the server accepts.
///
/// Returns:
///     tuple[DeflateParams, str] | None: the agreed parameters and the
///     response's extension element, or None to continue uncompressed
///     (malformed and unacceptable offers are declined).
///
/// Raises:
///     InvalidRequest: if a header value is not valid extension syntax (400).
#[pyfunction]
fn negotiate_deflate(
    py: Python<'_>,
    extension_header_values: Vec<String>,
    config: PyRef<'_, PyDeflateConfig>,
) -> PyResult<Option<(PyDeflateParams, String)>> {
    let values: Vec<&str> = extension_header_values.iter().map(String::as_str).collect();
    let offers =
        parse_extensions(&values).map_err(|err| invalid_request(py, err.status, &err.reason))?;
    Ok(negotiate_server(&offers, config.config())
        .map(|(inner, header)| (PyDeflateParams { inner }, header)))
}

/// Client side: the permessage-deflate offer for Sec-WebSocket-Extensions.
///
/// Args:
///     config: what to offer.
///
/// Returns:
///     str: e.g. "permessage-deflate; client_max_window_bits".
#[pyfunction]
fn deflate_offer(config: PyRef<'_, PyDeflateConfig>) -> String {
    client_offer(config.config())
}

/// Client side: check the server's permessage-deflate response.
///
/// Args:
///     extension_header_values: the response's Sec-WebSocket-Extensions
///         header values, in order (other extensions are ignored).
///     config: what the client offered.
///
/// Returns:
///     DeflateParams | None: the agreed parameters, or None if the server did
///     not accept permessage-deflate.
///
/// Raises:
///     NegotiationError: if the response is malformed, accepts
///         permessage-deflate twice, or does not match the offer.
#[pyfunction]
fn accept_deflate_response(
    py: Python<'_>,
    extension_header_values: Vec<String>,
    config: PyRef<'_, PyDeflateConfig>,
) -> PyResult<Option<PyDeflateParams>> {
    let values: Vec<&str> = extension_header_values.iter().map(String::as_str).collect();
    let extensions =
        parse_extensions(&values).map_err(|err| errors::negotiation_error(py, err.reason))?;
    let mut accepted = extensions.iter().filter(|ext| {
        ext.name
            .eq_ignore_ascii_case(crate::deflate::EXTENSION_NAME)
    });
    let Some(ext) = accepted.next() else {
        return Ok(None);
    };
    if accepted.next().is_some() {
        return Err(errors::negotiation_error(
            py,
            "permessage-deflate accepted twice",
        ));
    }
    let inner = accept_response(ext, config.config()).map_err(|err| {
        errors::negotiation_error(py, format!("invalid permessage-deflate response: {err}"))
    })?;
    Ok(Some(PyDeflateParams { inner }))
}

/// Register the deflate classes and functions on `wsfast._rust`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("DEFAULT_COMPRESSION_LEVEL", DEFAULT_COMPRESSION_LEVEL)?;
    m.add_class::<PyDeflateParams>()?;
    m.add_class::<PyDeflateConfig>()?;
    m.add_class::<PyDeflater>()?;
    m.add_class::<PyInflater>()?;
    m.add_function(wrap_pyfunction!(negotiate_deflate, m)?)?;
    m.add_function(wrap_pyfunction!(deflate_offer, m)?)?;
    m.add_function(wrap_pyfunction!(accept_deflate_response, m)?)?;
    Ok(())
}
