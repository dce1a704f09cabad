// SPDX-License-Identifier: MIT
//! `wsfast.Protocol`: the sans-I/O core for Python users and tests, plus its events.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFrozenSet, PyList, PyString};

use super::buffers::with_bytes;
use super::deflate::{check_mem_level, check_window_bits, PyDeflateParams};
use super::errors;
use crate::deflate::{
    CompressorSettings, DEFAULT_COMPRESSION_LEVEL, DEFAULT_COMPRESS_WINDOW_BITS, DEFAULT_MEM_LEVEL,
};
use crate::error::{FrameError, ProtocolError, SendError};
use crate::frame::{Role, OP_BINARY, OP_CONTINUATION, OP_TEXT};
use crate::protocol::{self, Config, EventKind, Protocol, OK_CLOSE_CODES};

macro_rules! data_event {
    ($rust:ident, $name:literal, $ty:ty, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(name = $name, module = "wsfast.events", frozen)]
        pub struct $rust {
            /// The payload.
            #[pyo3(get)]
            pub data: Py<$ty>,
        }

        #[pymethods]
        impl $rust {
            #[new]
            fn new(data: Py<$ty>) -> Self {
                Self { data }
            }

            fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
                match other.cast::<Self>() {
                    Ok(o) => PyAnyMethods::eq(self.data.bind(py).as_any(), o.get().data.bind(py)),
                    Err(_) => Ok(false),
                }
            }

            fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
                self.data.bind(py).hash()
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let data = self.data.bind(py);
                let shown = if data.len()? > 60 {
                    format!("<{} bytes>", data.len()?)
                } else {
                    data.repr()?.to_string()
                };
                Ok(format!(concat!($name, "(data={})"), shown))
            }
        }
    };
}

data_event!(
    PyTextMessage,
    "TextMessage",
    PyString,
    "A complete text message."
);
data_event!(
    PyBinaryMessage,
    "BinaryMessage",
    PyBytes,
    "A complete binary message."
);
data_event!(
    PyPing,
    "Ping",
    PyBytes,
    "A ping frame (a pong was already queued if auto_pong)."
);
data_event!(PyPong, "Pong", PyBytes, "A pong frame.");

/// A close frame from the peer, or the transport's end (code 1006).
#[pyclass(name = "Close", module = "wsfast.events", frozen, get_all)]
pub struct PyClose {
    /// Close code (1005 if the frame had none, 1006 if there was no frame).
    pub code: u16,
    /// Close reason.
    pub reason: Py<PyString>,
}

#[pymethods]
impl PyClose {
    #[new]
    #[pyo3(signature = (code, reason = None))]
    fn new(py: Python<'_>, code: u16, reason: Option<Py<PyString>>) -> Self {
        Self {
            code,
            reason: reason.unwrap_or_else(|| PyString::new(py, "").unbind()),
        }
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        match other.cast::<Self>() {
            Ok(o) => Ok(self.code == o.get().code
                && PyAnyMethods::eq(self.reason.bind(py).as_any(), o.get().reason.bind(py))?),
            Err(_) => Ok(false),
        }
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        Ok(self.reason.bind(py).hash()? ^ isize::from(self.code.cast_signed()))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Close(code={}, reason={})",
            self.code,
            self.reason.bind(py).repr()?
        ))
    }
}

/// Sans-I/O WebSocket protocol for one connection, after the opening handshake.
///
/// Args:
///     side: "server" or "client".
///     max_size: largest message accepted, in bytes (after decompression).
///     max_frame_size: largest frame accepted; defaults to max_size.
///     deflate: negotiated DeflateParams, or None for no compression.
///     compression_level: zlib level of our compressor, 0 to 9 (default
///         DEFAULT_COMPRESSION_LEVEL).
///     mem_level: zlib memLevel of our compressor, 1 to 9 (default 5).
///     compress_window_bits: largest window (log2) our compressor uses, 8 to
///         15 (default 12), further capped by the negotiated window.
///     compress_min_size: smaller messages are sent uncompressed.
///     auto_pong: answer pings automatically.
///     mask_seed: 32 bytes of entropy for client masking keys (default: from
///         os.urandom).
///     mask_key: a fixed masking key, for deterministic tests only.
///
/// Raises:
///     ValueError: if side or a size, level or key is invalid.
#[pyclass(name = "Protocol", module = "wsfast._rust", unsendable)]
pub struct PyProtocol {
    inner: Protocol,
}

fn protocol_err(py: Python<'_>, e: &ProtocolError) -> PyErr {
    match e {
        ProtocolError::Frame(FrameError::TooBig { .. }) | ProtocolError::MessageTooBig { .. } => {
            errors::payload_too_big(py, e.to_string())
        }
        ProtocolError::Deflate(d) if e.close_code() == 1009 => {
            errors::payload_too_big(py, d.to_string())
        }
        ProtocolError::InvalidUtf8(_) | ProtocolError::InvalidCloseReason => {
            errors::invalid_utf8(py, e.to_string())
        }
        _ => errors::protocol_error(py, e.to_string()),
    }
}

fn send_err(py: Python<'_>, e: SendError) -> PyErr {
    match e {
        SendError::ControlTooLong(_) | SendError::InvalidCloseCode(_) => {
            PyValueError::new_err(e.to_string())
        }
        SendError::Deflate(d) => errors::protocol_error(py, d.to_string()),
        _ => errors::invalid_state(py, e.to_string()),
    }
}

#[pymethods]
impl PyProtocol {
    #[new]
    #[pyo3(signature = (side = "server", *, max_size = 1 << 20, max_frame_size = None, deflate = None,
                        compression_level = DEFAULT_COMPRESSION_LEVEL,
                        mem_level = DEFAULT_MEM_LEVEL,
                        compress_window_bits = DEFAULT_COMPRESS_WINDOW_BITS,
                        compress_min_size = 0, auto_pong = true, mask_seed = None,
                        mask_key = None))]
    fn new(
        py: Python<'_>,
        side: &str,
        max_size: usize,
        max_frame_size: Option<usize>,
        deflate: Option<PyRef<'_, PyDeflateParams>>,
        compression_level: u32,
        mem_level: u8,
        compress_window_bits: u8,
        compress_min_size: usize,
        auto_pong: bool,
        mask_seed: Option<&Bound<'_, PyAny>>,
        mask_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let role = match side {
            "server" => Role::Server,
            "client" => Role::Client,
            other => {
                return Err(PyValueError::new_err(format!(
                    "side must be 'server' or 'client', not {other:?}"
                )))
            }
        };
        if compression_level > 9 {
            return Err(PyValueError::new_err(format!(
                "compression_level must be 0..9, not {compression_level}"
            )));
        }
        check_mem_level(mem_level)?;
        check_window_bits("compress_window_bits", Some(compress_window_bits))?;
        let mut cfg = Config::new(role);
        cfg.max_message_size = max_size;
        cfg.max_frame_size = max_frame_size.unwrap_or(max_size);
        cfg.deflate = deflate.map(|d| d.params());
        cfg.compressor = CompressorSettings {
            level: compression_level,
            mem_level,
            window_bits: compress_window_bits,
            ..CompressorSettings::default()
        };
        cfg.compress_min_size = compress_min_size;
        cfg.auto_pong = auto_pong;
        let seed = match mask_seed {
            Some(s) => s.clone(),
            // The core has no RNG of its own: take entropy from the OS through Python.
            None => py.import("os")?.call_method1("urandom", (32,))?,
        };
        cfg.mask_seed = with_bytes(&seed, |s| <[u8; 32]>::try_from(s))?
            .map_err(|_| PyValueError::new_err("mask_seed must be exactly 32 bytes"))?;
        if let Some(k) = mask_key {
            cfg.fixed_mask = Some(
                with_bytes(k, |s| <[u8; 4]>::try_from(s))?
                    .map_err(|_| PyValueError::new_err("mask_key must be exactly 4 bytes"))?,
            );
        }
        Ok(Self {
            inner: Protocol::new(cfg),
        })
    }

    // ---- receiving data ----

    /// Feed bytes received from the transport.
    fn receive_data(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        // Sans-I/O callers read the events afterwards with the close frame already
        // queued, as before fail-fast delivery: end the batch at once.
        with_bytes(data, |d| {
            self.inner.receive_data(d);
            self.inner.end_batch();
        })
    }

    /// Signal the end of the transport's input.
    fn receive_eof(&mut self) {
        self.inner.receive_eof();
    }

    // ---- getting events ----

    /// Events from the last receive_data/receive_eof call.
    fn events_received<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for ev in self.inner.events() {
            let payload = self.inner.payload(ev);
            let obj: Bound<'py, PyAny> = match ev.kind {
                EventKind::Text => {
                    let s = PyString::from_bytes(py, payload)?.unbind();
                    Bound::new(py, PyTextMessage { data: s })?.into_any()
                }
                EventKind::Binary => Bound::new(
                    py,
                    PyBinaryMessage {
                        data: PyBytes::new(py, payload).unbind(),
                    },
                )?
                .into_any(),
                EventKind::Ping => Bound::new(
                    py,
                    PyPing {
                        data: PyBytes::new(py, payload).unbind(),
                    },
                )?
                .into_any(),
                EventKind::Pong => Bound::new(
                    py,
                    PyPong {
                        data: PyBytes::new(py, payload).unbind(),
                    },
                )?
                .into_any(),
                EventKind::Close => {
                    let reason = PyString::from_bytes(py, payload)?.unbind();
                    Bound::new(
                        py,
                        PyClose {
                            code: ev.code,
                            reason,
                        },
                    )?
                    .into_any()
                }
            };
            list.append(obj)?;
        }
        Ok(list)
    }

    // ---- sending events ----

    /// Queue a text frame (`str`, or UTF-8 `bytes`).
    #[pyo3(signature = (data, fin = true))]
    fn send_text(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>, fin: bool) -> PyResult<()> {
        self.send_data(py, OP_TEXT, data, fin)
    }

    /// Queue a binary frame.
    #[pyo3(signature = (data, fin = true))]
    fn send_binary(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>, fin: bool) -> PyResult<()> {
        self.send_data(py, OP_BINARY, data, fin)
    }

    /// Queue a continuation frame of a fragmented message.
    #[pyo3(signature = (data, fin))]
    fn send_continuation(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        fin: bool,
    ) -> PyResult<()> {
        self.send_data(py, OP_CONTINUATION, data, fin)
    }

    /// Queue a ping.
    #[pyo3(signature = (data = None))]
    fn send_ping(&mut self, py: Python<'_>, data: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let r = match data {
            Some(d) => with_bytes(d, |b| self.inner.send_ping(b))?,
            None => self.inner.send_ping(b""),
        };
        r.map_err(|e| send_err(py, e))
    }

    /// Queue a pong.
    #[pyo3(signature = (data = None))]
    fn send_pong(&mut self, py: Python<'_>, data: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let r = match data {
            Some(d) => with_bytes(d, |b| self.inner.send_pong(b))?,
            None => self.inner.send_pong(b""),
        };
        r.map_err(|e| send_err(py, e))
    }

    /// Queue a close frame. `code=None` sends one without a status code.
    #[pyo3(signature = (code = Some(1000), reason = ""))]
    fn send_close(&mut self, py: Python<'_>, code: Option<u16>, reason: &str) -> PyResult<()> {
        self.inner
            .send_close(code, reason)
            .map_err(|e| send_err(py, e))
    }

    /// Fail the connection with `code`: a close frame is queued and input is ignored.
    #[pyo3(signature = (code, reason = ""))]
    fn fail(&mut self, code: u16, reason: &str) {
        self.inner.fail(code, reason);
    }

    // ---- getting outgoing data ----

    /// Bytes to write to the transport (a list of zero or one buffers).
    fn data_to_send<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        if !self.inner.data_to_send().is_empty() {
            list.append(PyBytes::new(py, self.inner.data_to_send()))?;
            self.inner.consume_output(usize::MAX);
        }
        Ok(list)
    }

    /// Whether the transport should be closed once the output is written.
    fn close_expected(&self) -> bool {
        self.inner.close_expected()
    }

    // ---- state ----

    /// 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED (see wsfast.State).
    #[getter]
    fn state(&self) -> u8 {
        self.inner.state() as u8
    }

    /// "server" or "client".
    #[getter]
    fn side(&self) -> &'static str {
        match self.inner.role() {
            Role::Server => "server",
            Role::Client => "client",
        }
    }

    /// The exception describing why the connection failed, or None.
    #[getter]
    fn error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.inner
            .error()
            .map(|e| protocol_err(py, e).into_value(py).into_any())
    }

    /// (code, reason) of the close frame received, or None.
    #[getter]
    fn close_received(&self) -> Option<(u16, String)> {
        self.inner.close_received().cloned()
    }

    /// (code, reason) of the close frame sent, or None.
    #[getter]
    fn close_sent(&self) -> Option<(u16, String)> {
        self.inner.close_sent().cloned()
    }

    /// bool: the connection closed cleanly (see close_is_ok): close frames
    /// went both ways, both with a code in OK_CLOSE_CODES.
    #[getter]
    fn close_ok(&self) -> bool {
        self.inner.close_ok()
    }
}

impl PyProtocol {
    fn send_data(
        &mut self,
        py: Python<'_>,
        opcode: u8,
        data: &Bound<'_, PyAny>,
        fin: bool,
    ) -> PyResult<()> {
        let r = if let Ok(s) = data.cast::<PyString>() {
            self.inner.send_frame(opcode, s.to_str()?.as_bytes(), fin)
        } else {
            with_bytes(data, |b| self.inner.send_frame(opcode, b, fin))?
        };
        r.map_err(|e| send_err(py, e))
    }
}

/// Whether a connection closed cleanly: the one rule every front end asks.
///
/// As websockets decides it: a close frame was both sent and received, and
/// both codes are in OK_CLOSE_CODES (1000, 1001, and 1005 for a close frame
/// without a status code).
///
/// Args:
///     sent: the code of the close frame sent, or None if none was.
///     received: the code of the close frame received, or None if none was
///         (1006, for a transport that ended first, is not clean either).
///
/// Returns:
///     bool: True for a clean closure.
#[pyfunction]
#[pyo3(signature = (sent, received))]
fn close_is_ok(sent: Option<u16>, received: Option<u16>) -> bool {
    protocol::close_is_ok(sent, received)
}

/// Register the protocol class, its events and the close rule on `wsfast._rust`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyProtocol>()?;
    m.add_function(wrap_pyfunction!(close_is_ok, m)?)?;
    m.add("OK_CLOSE_CODES", PyFrozenSet::new(m.py(), OK_CLOSE_CODES)?)?;
    m.add_class::<PyTextMessage>()?;
    m.add_class::<PyBinaryMessage>()?;
    m.add_class::<PyPing>()?;
    m.add_class::<PyPong>()?;
    m.add_class::<PyClose>()?;
    Ok(())
}
