// SPDX-License-Identifier: MIT
//! Python access to the kernels: masking, UTF-8 validation, single frames.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::buffers::{with_bytes, with_bytes_mut};
use super::errors;
use crate::frame::{Frame, FrameHeader, Role};
use crate::mask::copy_masked;
use crate::utf8::{self, Utf8Validator};

fn mask_key(mask: &Bound<'_, PyAny>) -> PyResult<[u8; 4]> {
    with_bytes(mask, |m| <[u8; 4]>::try_from(m))?
        .map_err(|_| PyValueError::new_err("mask must be exactly 4 bytes"))
}

/// apply_mask(data, mask, offset=0) -> bytes: a masked copy of `data`.
#[pyfunction]
#[pyo3(signature = (data, mask, offset = 0))]
fn apply_mask<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    mask: &Bound<'py, PyAny>,
    offset: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = mask_key(mask)?;
    with_bytes(data, |src| {
        // Write straight into an uninitialised bytes object: one pass over the data.
        // SAFETY: PyBytes_FromStringAndSize(NULL, n) returns a new bytes object with
        // n writable bytes (or NULL with an exception set); we fill all of them
        // before anyone else can see the object.
        unsafe {
            let len =
                isize::try_from(src.len()).map_err(|_| PyValueError::new_err("data too large"))?;
            let obj = pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), len);
            let bytes = Bound::from_owned_ptr_or_err(py, obj)?.cast_into_unchecked::<PyBytes>();
            let dst = std::slice::from_raw_parts_mut(
                pyo3::ffi::PyBytes_AsString(obj).cast::<u8>(),
                src.len(),
            );
            copy_masked(dst, src, key, offset);
            Ok(bytes)
        }
    })?
}

/// apply_mask_inplace(buffer, mask, offset=0): XOR a writable buffer in place.
#[pyfunction]
#[pyo3(signature = (buffer, mask, offset = 0))]
fn apply_mask_inplace(
    buffer: &Bound<'_, PyAny>,
    mask: &Bound<'_, PyAny>,
    offset: usize,
) -> PyResult<()> {
    let key = mask_key(mask)?;
    with_bytes_mut(buffer, |buf| crate::mask::apply_mask(buf, key, offset))
}

/// validate_utf8(data) -> int | None: None if valid, else the offset of the first bad sequence.
#[pyfunction]
fn validate_utf8(data: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
    with_bytes(data, |d| utf8::validate(d).err().map(|e| e.offset))
}

/// Incremental UTF-8 validator: feed() pieces, then finish().
#[pyclass(name = "Utf8Validator", module = "wsfast._rust")]
struct PyUtf8Validator(Utf8Validator);

#[pymethods]
impl PyUtf8Validator {
    #[new]
    fn new() -> Self {
        Self(Utf8Validator::new())
    }

    /// Validate the next piece; raises InvalidUTF8 naming the offset in the stream.
    fn feed(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        with_bytes(data, |d| self.0.feed(d))?.map_err(|e| utf8_error(py, e))
    }

    /// End of stream; raises InvalidUTF8 if a sequence is unfinished. Resets the validator.
    fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        self.0.finish().map_err(|e| utf8_error(py, e))
    }

    /// Start a new stream.
    fn reset(&mut self) {
        self.0.reset();
    }

    /// Bytes fed since the stream started.
    #[getter]
    fn consumed(&self) -> usize {
        self.0.consumed()
    }
}

fn utf8_error(py: Python<'_>, e: utf8::Utf8Error) -> PyErr {
    let err = errors::invalid_utf8(py, e.to_string());
    // Expose the offset as an attribute for callers that need it.
    let _ = err.value(py).setattr("offset", e.offset);
    err
}

/// A single frame (payload unmasked), as parsed or to be serialized.
#[pyclass(name = "Frame", module = "wsfast._rust", frozen, get_all)]
struct PyFrame {
    opcode: u8,
    payload: Py<PyBytes>,
    fin: bool,
    rsv1: bool,
    rsv2: bool,
    rsv3: bool,
}

#[pymethods]
impl PyFrame {
    #[new]
    #[pyo3(signature = (opcode, payload, *, fin = true, rsv1 = false, rsv2 = false, rsv3 = false))]
    fn new(
        py: Python<'_>,
        opcode: u8,
        payload: &Bound<'_, PyAny>,
        fin: bool,
        rsv1: bool,
        rsv2: bool,
        rsv3: bool,
    ) -> PyResult<Self> {
        if opcode > 0x0f {
            return Err(PyValueError::new_err(format!(
                "opcode {opcode} does not fit in 4 bits"
            )));
        }
        let payload = with_bytes(payload, |p| PyBytes::new(py, p).unbind())?;
        Ok(Self {
            opcode,
            payload,
            fin,
            rsv1,
            rsv2,
            rsv3,
        })
    }

    /// parse(data, *, mask_required=None) -> (Frame, consumed) | None
    ///
    /// `mask_required=True` checks as a server would, `False` as a client would, and
    /// `None` skips the masking rule. Raises ProtocolError for frames that break RFC 6455.
    #[staticmethod]
    #[pyo3(signature = (data, *, mask_required = None, rsv1_allowed = false, max_size = usize::MAX))]
    fn parse(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        mask_required: Option<bool>,
        rsv1_allowed: bool,
        max_size: usize,
    ) -> PyResult<Option<(Self, usize)>> {
        let parsed = with_bytes(data, |d| -> Result<_, crate::error::FrameError> {
            if let Some(h) = FrameHeader::parse(d)? {
                match mask_required {
                    Some(required) => {
                        let role = if required { Role::Server } else { Role::Client };
                        h.check(role, rsv1_allowed, max_size)?;
                    }
                    None => {
                        // Check everything but masking by pretending the mask bit matches.
                        let role = if h.mask.is_some() {
                            Role::Server
                        } else {
                            Role::Client
                        };
                        h.check(role, rsv1_allowed, max_size)?;
                    }
                }
            }
            Frame::parse(d)
        })?;
        let parsed = parsed.map_err(|e| errors::protocol_error(py, e.to_string()))?;
        Ok(parsed.map(|(f, n)| {
            let frame = Self {
                opcode: f.opcode,
                payload: PyBytes::new(py, &f.payload).unbind(),
                fin: f.fin,
                rsv1: f.rsv1,
                rsv2: f.rsv2,
                rsv3: f.rsv3,
            };
            (frame, n)
        }))
    }

    /// serialize(mask=None) -> bytes: the frame on the wire, masked with `mask` if given.
    #[pyo3(signature = (mask = None))]
    fn serialize<'py>(
        &self,
        py: Python<'py>,
        mask: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let key = mask.map(mask_key).transpose()?;
        let frame = Frame {
            fin: self.fin,
            rsv1: self.rsv1,
            rsv2: self.rsv2,
            rsv3: self.rsv3,
            opcode: self.opcode,
            payload: self.payload.as_bytes(py).to_vec(),
        };
        Ok(PyBytes::new(py, &frame.serialize(key)))
    }

    fn __eq__(&self, py: Python<'_>, other: &Self) -> bool {
        (self.opcode, self.fin, self.rsv1, self.rsv2, self.rsv3)
            == (other.opcode, other.fin, other.rsv1, other.rsv2, other.rsv3)
            && self.payload.as_bytes(py) == other.payload.as_bytes(py)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let payload = self.payload.bind(py);
        let shown = payload
            .repr()
            .map_or_else(|_| "?".into(), |r| r.to_string());
        format!(
            "Frame(opcode={}, payload={shown}, fin={}, rsv1={})",
            self.opcode,
            py_bool(self.fin),
            py_bool(self.rsv1)
        )
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(apply_mask, m)?)?;
    m.add_function(wrap_pyfunction!(apply_mask_inplace, m)?)?;
    m.add_function(wrap_pyfunction!(validate_utf8, m)?)?;
    m.add_class::<PyUtf8Validator>()?;
    m.add_class::<PyFrame>()?;
    Ok(())
}
