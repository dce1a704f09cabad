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
use pyo3::types::PyCapsule;

use crate::capi::{ABI_VERSION, WSFAST_CAPI};

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
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
