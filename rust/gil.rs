//! The one place where system0 releases the GIL (as polars does): long or blocking Rust work
//! runs inside `without_gil`, and touches no Python object while it runs.

use pyo3::Python;

/// Run `f` with the GIL released. `f` must not touch Python objects; the `Send`
/// bound (pyo3's `Ungil`) makes the compiler check most of that.
#[inline]
pub fn without_gil<T, F>(py: Python<'_>, f: F) -> T
where
    F: pyo3::marker::Ungil + FnOnce() -> T,
    T: pyo3::marker::Ungil,
{
    py.detach(f)
}
