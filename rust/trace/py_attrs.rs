//! Span attributes between Python and Rust: a Python value becomes an `AttrValue` (str, bool,
//! int within i64 and float keep their type; anything else is stored as its `str()`, so
//! setting an attribute never fails on its value), and back.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use super::record::{set_attr, AttrValue, Attrs};
use crate::pyconv::text;

/// Converts a Python value to an attribute: str, bool, int (within i64) and float keep their
/// type; anything else (and an int beyond i64) is stored as its `str()`.
pub fn to_attr(v: &Bound<'_, PyAny>) -> PyResult<AttrValue> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(AttrValue::Str(text(s).into_owned()));
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(AttrValue::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        if let Ok(n) = v.extract::<i64>() {
            return Ok(AttrValue::Int(n));
        }
    } else if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(AttrValue::Float(f.value()));
    }
    Ok(AttrValue::Str(text(&v.str()?).into_owned()))
}

pub fn attr_to_py<'py>(py: Python<'py>, v: &AttrValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        AttrValue::Str(s) => PyString::new(py, s).into_any(),
        AttrValue::Int(n) => n.into_pyobject(py)?.into_any(),
        AttrValue::Float(f) => PyFloat::new(py, *f).into_any(),
        AttrValue::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
    })
}

pub fn attrs_to_dict<'py>(py: Python<'py>, attrs: &Attrs) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in attrs {
        d.set_item(k, attr_to_py(py, v)?)?;
    }
    Ok(d)
}

pub fn dict_to_attrs(attrs: Option<&Bound<'_, PyDict>>, out: &mut Attrs) -> PyResult<()> {
    if let Some(d) = attrs {
        for (k, v) in d.iter() {
            let key = text(k.cast::<PyString>()?);
            set_attr(out, &key, to_attr(&v)?);
        }
    }
    Ok(())
}
