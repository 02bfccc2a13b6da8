//! The one `contextvars.ContextVar` that holds the current span, read and written through
//! the C API (`PyContextVar_Get/Set/Reset`) so that entering and leaving a span costs no
//! Python-level call. It follows asyncio tasks (each runs in a copy of its creator's context)
//! and reaches a thread whose work runs in a copied context.

use std::ptr;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

static CURRENT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The ContextVar holding the current `Span` (or a remote `SpanContext`).
fn current_var(py: Python<'_>) -> PyResult<&Py<PyAny>> {
    CURRENT.get_or_try_init(py, || {
        let var = py
            .import("contextvars")?
            .getattr("ContextVar")?
            .call1(("system0_current_span",))?;
        Ok(var.unbind())
    })
}

pub(super) fn ctx_get<'py>(py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let var = current_var(py)?;
    let mut out: *mut ffi::PyObject = ptr::null_mut();
    // SAFETY: `var` is a live ContextVar; on success `out` is a new reference or NULL.
    let rc = unsafe { ffi::PyContextVar_Get(var.as_ptr(), ptr::null_mut(), &mut out) };
    if rc < 0 {
        return Err(PyErr::fetch(py));
    }
    if out.is_null() {
        return Ok(None);
    }
    // SAFETY: `out` is a new, non-null reference.
    let obj = unsafe { Bound::from_owned_ptr(py, out) };
    Ok(if obj.is_none() { None } else { Some(obj) })
}

pub(super) fn ctx_set<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let var = current_var(py)?;
    // SAFETY: both pointers are live; the result is a new reference (the Token) or NULL.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContextVar_Set(var.as_ptr(), value.as_ptr())) }
}

pub(super) fn ctx_reset(py: Python<'_>, token: &Bound<'_, PyAny>) -> PyResult<()> {
    let var = current_var(py)?;
    // SAFETY: both pointers are live; Reset validates the token and sets an error if wrong.
    if unsafe { ffi::PyContextVar_Reset(var.as_ptr(), token.as_ptr()) } < 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(())
}
