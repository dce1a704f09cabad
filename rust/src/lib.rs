// SPDX-License-Identifier: MIT
//! wsfast protocol core: a sans-I/O WebSocket engine (RFC 6455, RFC 7692).
//!
//! The pure-Rust modules below never touch sockets, clocks, threads or global
//! randomness. `py` wraps them for Python (PyO3) and publishes the C-API capsule
//! that the Cython glue calls on the hot path.

pub mod capi;
pub mod deflate;
pub mod error;
pub mod external;
pub mod frame;
pub mod handshake;
pub mod inflate;
pub mod mask;
pub mod protocol;
pub mod utf8;

mod py;

use pyo3::prelude::*;

/// The `wsfast._rust` extension module: registration only.
#[pymodule]
fn _rust(m: &Bound<'_, PyModule>) -> PyResult<()> {
    py::register(m)
}
