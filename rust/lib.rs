//! system0's Rust core. Each concept lives in its own folder and is free of pyo3; the
//! `py` submodule of each folder binds it. This file only declares modules and exports classes.

pub mod error;
pub mod gil;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
