// SPDX-License-Identifier: MIT
//! Raising the exception classes that `wsfast.exceptions` defines.
//!
//! Exception classes live in Python only; Rust looks each one up once and caches it.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

fn class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<Bound<'py, PyType>> {
    let cls = cell.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let cls = py.import("wsfast.exceptions")?.getattr(name)?;
        Ok(cls.cast_into::<PyType>()?.unbind())
    })?;
    Ok(cls.bind(py).clone())
}

macro_rules! exception {
    ($fn_name:ident, $py_name:literal) => {
        #[doc = concat!("Build a `wsfast.exceptions.", $py_name, "` with one message argument.")]
        pub fn $fn_name(py: Python<'_>, msg: impl Into<String>) -> PyErr {
            static CELL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
            match class(py, &CELL, $py_name).and_then(|c| c.call1((msg.into(),))) {
                Ok(exc) => PyErr::from_value(exc),
                Err(err) => err,
            }
        }
    };
}

exception!(protocol_error, "ProtocolError");
exception!(payload_too_big, "PayloadTooBig");
exception!(invalid_state, "InvalidState");
exception!(invalid_handshake, "InvalidHandshake");
exception!(invalid_utf8, "InvalidUTF8");
exception!(negotiation_error, "NegotiationError");
