// SPDX-License-Identifier: MIT
//! PyO3 wrappers around the pure-Rust core. Nothing here holds protocol logic.

mod deflate;
pub mod errors;
mod handshake;

use pyo3::prelude::*;

/// Register every Python-facing class and function on `wsfast._rust`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    deflate::register(m)?;
    handshake::register(m)?;
    Ok(())
}
