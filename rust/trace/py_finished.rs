//! Python bindings of the span collector: finished spans drained in batches, their JSON lines
//! form, the buffer's statistics and capacity, and the reset a forked child needs.

use std::sync::atomic::Ordering;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use super::collector;
use super::py_attrs::attrs_to_dict;
use super::py_context::MALFORMED;
use super::record::{SpanRecord, Status};
use crate::error::CoreError;

/// A finished span, drained from the collector. Times are monotonic ns (`start_ns`) and Unix
/// ns (`start_unix_ns`).
#[pyclass(module = "system0._core", name = "FinishedSpan", frozen)]
pub struct PyFinishedSpan {
    rec: SpanRecord,
}

#[pymethods]
impl PyFinishedSpan {
    #[getter]
    fn name(&self) -> &str {
        &self.rec.name
    }
    #[getter]
    fn trace_id(&self) -> u128 {
        self.rec.trace_id
    }
    #[getter]
    fn span_id(&self) -> u64 {
        self.rec.span_id
    }
    #[getter]
    fn parent_id(&self) -> Option<u64> {
        (self.rec.parent_id != 0).then_some(self.rec.parent_id)
    }
    #[getter]
    fn parent_remote(&self) -> bool {
        self.rec.parent_remote
    }
    #[getter]
    fn start_ns(&self) -> u64 {
        self.rec.start_ns
    }
    #[getter]
    fn end_ns(&self) -> u64 {
        self.rec.end_ns
    }
    #[getter]
    fn start_unix_ns(&self) -> u64 {
        crate::clock::to_unix_ns(self.rec.start_ns)
    }
    #[getter]
    fn end_unix_ns(&self) -> u64 {
        crate::clock::to_unix_ns(self.rec.end_ns)
    }
    #[getter]
    fn duration_ns(&self) -> u64 {
        self.rec.end_ns.saturating_sub(self.rec.start_ns)
    }
    #[getter]
    fn status(&self) -> &'static str {
        self.rec.status.code()
    }
    #[getter]
    fn status_message(&self) -> Option<&str> {
        match &self.rec.status {
            Status::Error(m) => Some(m),
            _ => None,
        }
    }
    #[getter]
    fn attributes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        attrs_to_dict(py, &self.rec.attrs)
    }
    /// `[(name, unix_ns, attributes), ...]`
    #[getter]
    fn events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for e in &self.rec.events {
            let t = PyTuple::new(
                py,
                [
                    PyString::new(py, &e.name).into_any(),
                    crate::clock::to_unix_ns(e.time_ns)
                        .into_pyobject(py)?
                        .into_any(),
                    attrs_to_dict(py, &e.attrs)?.into_any(),
                ],
            )?;
            out.append(t)?;
        }
        Ok(out)
    }
    #[getter]
    fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.rec.trace_id)
    }
    #[getter]
    fn span_id_hex(&self) -> String {
        format!("{:016x}", self.rec.span_id)
    }
    fn to_json(&self) -> String {
        self.rec.to_json()
    }
    fn __repr__(&self) -> String {
        format!(
            "FinishedSpan({:?}, trace_id={:032x}, span_id={:016x}, duration_ns={})",
            &*self.rec.name,
            self.rec.trace_id,
            self.rec.span_id,
            self.rec.end_ns.saturating_sub(self.rec.start_ns)
        )
    }
}

/// Takes up to `max_spans` finished spans (all when None), oldest first.
#[pyfunction]
#[pyo3(signature = (max_spans=None))]
fn drain_spans(py: Python<'_>, max_spans: Option<usize>) -> Vec<PyFinishedSpan> {
    let recs = crate::gil::without_gil(py, || collector::drain(max_spans.unwrap_or(usize::MAX)));
    recs.into_iter().map(|rec| PyFinishedSpan { rec }).collect()
}

/// The spans as JSON lines (one object and a newline each).
#[pyfunction]
fn spans_to_jsonl(spans: Vec<PyRef<'_, PyFinishedSpan>>) -> String {
    let mut out = String::with_capacity(spans.len() * 320);
    for s in spans {
        s.rec.write_json(&mut out);
        out.push('\n');
    }
    out
}

/// Hands the calling thread's buffered spans to the global buffer.
#[pyfunction]
fn flush_spans() {
    collector::flush_thread();
}

#[pyfunction]
fn span_stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let s = collector::stats();
    let d = PyDict::new(py);
    d.set_item("buffered", s.buffered)?;
    d.set_item("recorded", s.recorded)?;
    d.set_item("dropped", s.dropped)?;
    d.set_item("capacity", s.capacity)?;
    d.set_item("malformed_traceparent", MALFORMED.load(Ordering::Relaxed))?;
    Ok(d)
}

/// Called in a forked child (registered with `os.register_at_fork` by
/// `system0.core.tracing`): the child starts with an empty span buffer.
#[pyfunction]
fn _reset_after_fork() {
    collector::reset_after_fork();
}

#[pyfunction]
fn set_span_buffer_capacity(capacity: usize) -> PyResult<()> {
    if capacity == 0 {
        return Err(CoreError::InvalidArgument(
            "span buffer capacity must be at least 1; lower the sampling ratio to record less"
                .into(),
        )
        .into());
    }
    collector::set_capacity(capacity);
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyFinishedSpan>()?;
    m.add_function(wrap_pyfunction!(drain_spans, m)?)?;
    m.add_function(wrap_pyfunction!(spans_to_jsonl, m)?)?;
    m.add_function(wrap_pyfunction!(flush_spans, m)?)?;
    m.add_function(wrap_pyfunction!(span_stats, m)?)?;
    m.add_function(wrap_pyfunction!(set_span_buffer_capacity, m)?)?;
    m.add_function(wrap_pyfunction!(_reset_after_fork, m)?)?;
    Ok(())
}
