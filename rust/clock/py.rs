//! Python bindings of the process clock.

use pyo3::prelude::*;

/// Monotonic nanoseconds since the process clock's origin (TSC where invariant).
#[pyfunction]
fn now_ns() -> u64 {
    super::now_ns()
}

/// Convert a `now_ns()` reading to nanoseconds since the Unix epoch.
#[pyfunction]
fn to_unix_ns(mono_ns: u64) -> u64 {
    super::to_unix_ns(mono_ns)
}

/// `"tsc"` or `"monotonic"`: where `now_ns()` readings come from.
#[pyfunction]
fn clock_source() -> &'static str {
    super::source()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(now_ns, m)?)?;
    m.add_function(wrap_pyfunction!(to_unix_ns, m)?)?;
    m.add_function(wrap_pyfunction!(clock_source, m)?)?;
    Ok(())
}
