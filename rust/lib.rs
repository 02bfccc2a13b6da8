//! system0's Rust core. Each concept lives in its own folder, free of pyo3 except for the
//! folder's `py.rs`, which binds it and offers `register(m)`. This file only declares modules
//! and calls each `register`.

pub mod admission;
pub mod breaker;
pub mod clock;
pub mod codec;
pub mod crypto;
pub mod energy;
pub mod engine;
pub mod error;
pub mod features;
pub mod gil;
pub mod ledger;
pub mod logfmt;
pub mod perf;
pub mod pyconv;
pub mod queue;
pub mod request;
pub mod telemetry;
pub mod trace;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    clock::py::register(m)?;
    energy::py::register(m)?;
    perf::py::register(m)?;
    trace::py::register(m)?;
    logfmt::py::register(m)?;
    telemetry::py::register(m)?;
    queue::py::register(m)?;
    admission::py::register(m)?;
    breaker::py::register(m)?;
    crypto::py::register(m)?;
    ledger::py::register(m)?;
    codec::py::register(m)?;
    features::py::register(m)?;
    request::py::register(m)?;
    engine::py::register(m)?;
    Ok(())
}
