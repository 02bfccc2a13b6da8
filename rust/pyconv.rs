//! Conversions of Python values that several bindings share, kept in one home (as `gil.rs`
//! is for releasing the GIL) so that no concept's `py.rs` imports another's: a binding
//! depends on its own concept and on these helpers, never sideways.

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

/// The text of a str; one holding lone surrogates (from `surrogateescape` decoding) is
/// written with U+FFFD in their place rather than failing the call (a log line or a span
/// attribute must never raise because of the bytes it describes).
pub fn text<'a>(s: &'a Bound<'_, PyString>) -> Cow<'a, str> {
    s.to_cow().unwrap_or_else(|_| s.to_string_lossy())
}

/// A sequence that crosses into Python as a `tuple` (immutable, like the frozen snapshot
/// holding it), where a `Vec` field of a `get_all` class would become a fresh `list`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuple<T>(pub Vec<T>);

impl<'a, 'py, T> IntoPyObject<'py> for &'a Tuple<T>
where
    &'a T: IntoPyObject<'py>,
{
    type Target = PyTuple;
    type Output = Bound<'py, PyTuple>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.0)
    }
}
