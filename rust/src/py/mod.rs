// SPDX-License-Identifier: MIT
//! PyO3 wrappers around the pure-Rust core. Nothing here holds protocol logic.

mod buffers;
mod deflate;
pub mod errors;
mod handshake;
mod kernels;
mod protocol;

use std::ffi::c_void;
use std::ptr::NonNull;

use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

use crate::capi::{self, ABI_VERSION, WSFAST_CAPI};

/// Size and field offsets of the C-API structs as Rust lays them out.
///
/// For a test that compares them with what the Cython side computes from
/// wsfast_rs.h (sizeof and offsetof): the three copies of the C API must agree.
///
/// Returns:
///     dict[str, dict[str, int]]: for "wsf_config", "wsf_event" and
///     "wsf_capi", the struct's "__size__" and each field's offset, fields
///     named and ordered as in the C header.
#[pyfunction]
#[pyo3(name = "_capi_layout")]
fn capi_layout(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let structs = PyDict::new(py);
    for layout in capi::layout() {
        let fields = PyDict::new(py);
        fields.set_item("__size__", layout.size)?;
        for (name, offset) in layout.fields {
            fields.set_item(name, offset)?;
        }
        structs.set_item(layout.name, fields)?;
    }
    Ok(structs)
}

/// How many native connection states are alive now, process-wide (for tests).
///
/// Returns:
///     dict[str, int]: "protocols" (cores made through the C API and not freed),
///     "compressors" and "decompressors" (allocated compression states).
#[pyfunction]
#[pyo3(name = "_live_native_states")]
fn live_native_states(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let (compressors, decompressors) = crate::deflate::live_states();
    let counts = PyDict::new(py);
    counts.set_item("protocols", capi::live_protocols())?;
    counts.set_item("compressors", compressors)?;
    counts.set_item("decompressors", decompressors)?;
    Ok(counts)
}

/// Register every Python-facing class and function on `wsfast._rust`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    kernels::register(m)?;
    protocol::register(m)?;
    deflate::register(m)?;
    handshake::register(m)?;
    let ptr = NonNull::from(&WSFAST_CAPI).cast::<c_void>();
    // SAFETY: the table is a `static`, valid for the life of the process.
    let capsule = unsafe { PyCapsule::new_with_pointer(m.py(), ptr, c"wsfast._rust._C_API") }?;
    m.add("_C_API", capsule)?;
    m.add("CAPI_VERSION", ABI_VERSION)?;
    m.add_function(wrap_pyfunction!(capi_layout, m)?)?;
    m.add_function(wrap_pyfunction!(live_native_states, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
