// SPDX-License-Identifier: MIT
//! Borrowing bytes from Python objects without copying.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

/// Run `f` over the bytes of `obj` (bytes, bytearray, memoryview or any C-contiguous
/// buffer). `bytes` and `bytearray` skip the buffer protocol's setup cost.
pub fn with_bytes<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        // SAFETY: `f` is Rust code that cannot run Python, so the bytearray cannot
        // be resized while it is borrowed.
        return Ok(f(unsafe { b.as_bytes() }));
    }
    let buf = PyBuffer::<u8>::get(obj).map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a bytes-like object, got {}",
            type_name(obj)
        ))
    })?;
    let ptr = buf
        .as_slice_ptr()
        .ok_or_else(|| PyTypeError::new_err("buffer must be C-contiguous"))?;
    // SAFETY: the buffer stays acquired (and so valid) until `buf` drops after `f`;
    // `f` cannot run Python code that would mutate it.
    Ok(f(unsafe { ptr.as_ref() }))
}

/// Run `f` over the writable bytes of `obj` (bytearray, writable memoryview, ...).
pub fn with_bytes_mut<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&mut [u8]) -> R) -> PyResult<R> {
    if let Ok(b) = obj.cast::<PyByteArray>() {
        // SAFETY: as in `with_bytes`; the bytearray is uniquely borrowed by `f`.
        return Ok(f(unsafe { b.as_bytes_mut() }));
    }
    let buf = PyBuffer::<u8>::get(obj).map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a writable buffer, got {}",
            type_name(obj)
        ))
    })?;
    if buf.readonly() {
        return Err(PyTypeError::new_err(format!(
            "{} is read-only: pass a bytearray or writable memoryview",
            type_name(obj)
        )));
    }
    let mut ptr = buf
        .as_slice_ptr()
        .ok_or_else(|| PyTypeError::new_err("buffer must be C-contiguous"))?;
    // SAFETY: the writable buffer stays acquired until `buf` drops after `f`.
    Ok(f(unsafe { ptr.as_mut() }))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "object".into(), |n| n.to_string())
}
