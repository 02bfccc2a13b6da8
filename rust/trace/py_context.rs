//! Python bindings of trace identity: `SpanContext` (a span's ids, local or received from
//! another process), the W3C `traceparent` header in and out, the count of malformed headers,
//! and the sampling settings. Invariant: a `SpanContext` never holds an all-zero id.

use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;

use super::{sampler, traceparent};
use crate::error::CoreError;

/// Headers that were present but did not parse (an empty one is absent, not malformed).
pub(super) static MALFORMED: AtomicU64 = AtomicU64::new(0);

/// Parses a header, counting it when malformed; an empty header (or only spaces and tabs,
/// HTTP's optional whitespace) is absent, not malformed.
pub(super) fn parse_counted(header: &str) -> Option<traceparent::TraceParent> {
    if header.trim_matches([' ', '\t']).is_empty() {
        return None;
    }
    let tp = traceparent::parse_traceparent(header);
    if tp.is_none() {
        MALFORMED.fetch_add(1, Ordering::Relaxed);
    }
    tp
}

/// The identity of a span, local or received from another process: what a child needs.
#[pyclass(module = "system0._core", name = "SpanContext", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PySpanContext {
    pub(super) trace_id: u128,
    pub(super) span_id: u64,
    pub(super) sampled: bool,
    pub(super) remote: bool,
}

#[pymethods]
impl PySpanContext {
    #[new]
    #[pyo3(signature = (trace_id, span_id, sampled=true, remote=false))]
    fn new(trace_id: u128, span_id: u64, sampled: bool, remote: bool) -> PyResult<Self> {
        if trace_id == 0 || span_id == 0 {
            return Err(CoreError::InvalidArgument(
                "SpanContext ids must be non-zero (W3C trace-context forbids all-zero ids)".into(),
            )
            .into());
        }
        Ok(Self {
            trace_id,
            span_id,
            sampled,
            remote,
        })
    }
    #[getter]
    fn trace_id(&self) -> u128 {
        self.trace_id
    }
    #[getter]
    fn span_id(&self) -> u64 {
        self.span_id
    }
    #[getter]
    fn sampled(&self) -> bool {
        self.sampled
    }
    #[getter]
    fn remote(&self) -> bool {
        self.remote
    }
    #[getter]
    fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
    #[getter]
    fn span_id_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }
    pub(super) fn traceparent(&self) -> String {
        traceparent::format_traceparent(self.trace_id, self.span_id, self.sampled)
    }
    fn __repr__(&self) -> String {
        format!(
            "SpanContext(trace_id={:032x}, span_id={:016x}, sampled={}, remote={})",
            self.trace_id, self.span_id, self.sampled, self.remote
        )
    }
}

#[pyfunction]
#[pyo3(signature = (traceparent, /))]
fn extract(traceparent: Option<&str>) -> Option<PySpanContext> {
    parse_counted(traceparent?).map(|tp| PySpanContext {
        trace_id: tp.trace_id,
        span_id: tp.span_id,
        sampled: tp.sampled(),
        remote: true,
    })
}

#[pyfunction]
fn format_traceparent(trace_id: u128, span_id: u64, sampled: bool) -> PyResult<String> {
    if trace_id == 0 || span_id == 0 {
        return Err(CoreError::InvalidArgument(
            "traceparent ids must be non-zero (W3C trace-context forbids all-zero ids)".into(),
        )
        .into());
    }
    Ok(traceparent::format_traceparent(trace_id, span_id, sampled))
}

#[pyfunction]
fn malformed_traceparent_count() -> u64 {
    MALFORMED.load(Ordering::Relaxed)
}

#[pyfunction]
#[pyo3(signature = (ratio, parent_based=true))]
fn set_sampling(ratio: f64, parent_based: bool) -> PyResult<()> {
    Ok(sampler::set_sampling(ratio, parent_based)?)
}

#[pyfunction]
fn sampling() -> (f64, bool) {
    sampler::sampling()
}

#[pyfunction]
fn sample_trace(trace_id: u128) -> bool {
    sampler::sample_root(trace_id)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySpanContext>()?;
    m.add_function(wrap_pyfunction!(extract, m)?)?;
    m.add_function(wrap_pyfunction!(format_traceparent, m)?)?;
    m.add_function(wrap_pyfunction!(malformed_traceparent_count, m)?)?;
    m.add_function(wrap_pyfunction!(set_sampling, m)?)?;
    m.add_function(wrap_pyfunction!(sampling, m)?)?;
    m.add_function(wrap_pyfunction!(sample_trace, m)?)?;
    Ok(())
}
