//! Python bindings of spans: the `Span` class and the functions that read or set the current
//! span. The current span lives in one `contextvars.ContextVar` (py_contextvar.rs); span
//! identity and the traceparent header are in py_context.rs, attribute conversion in
//! py_attrs.rs, finished spans in py_finished.rs.
//!
//! A span takes its parent and ids when it is created, not when it is entered: `with span(..)`
//! does both at once, and a span created ahead of time keeps the parent current at creation.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::py_attrs::{attrs_to_dict, dict_to_attrs, to_attr};
use super::py_context::{parse_counted, PySpanContext};
use super::py_contextvar::{ctx_get, ctx_reset, ctx_set};
use super::record::{set_attr, AttrValue, Attrs, Event, SpanRecord, Status};
use super::{collector, ids, sampler, traceparent};
use crate::energy;
use crate::error::CoreError;
use crate::pyconv::text;

#[derive(Clone, Copy)]
struct Parent {
    trace_id: u128,
    span_id: u64,
    sampled: bool,
    remote: bool,
}

fn parent_of(obj: &Bound<'_, PyAny>) -> Option<Parent> {
    if let Ok(s) = obj.cast::<PySpan>() {
        let s = s.get();
        return Some(Parent {
            trace_id: s.trace_id,
            span_id: s.span_id,
            sampled: s.sampled,
            remote: false,
        });
    }
    if let Ok(c) = obj.cast::<PySpanContext>() {
        let c = c.get();
        return Some(Parent {
            trace_id: c.trace_id,
            span_id: c.span_id,
            sampled: c.sampled,
            remote: c.remote,
        });
    }
    None
}

fn resolve_parent(py: Python<'_>, parent: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Parent>> {
    let Some(p) = parent else {
        return Ok(ctx_get(py)?.as_ref().and_then(parent_of));
    };
    if let Some(found) = parent_of(p) {
        return Ok(Some(found));
    }
    if let Ok(s) = p.cast::<PyString>() {
        return Ok(parse_counted(&s.to_cow()?).map(|tp| Parent {
            trace_id: tp.trace_id,
            span_id: tp.span_id,
            sampled: tp.sampled(),
            remote: true,
        }));
    }
    Err(PyTypeError::new_err(format!(
        "span parent must be a Span, a SpanContext or a traceparent string, not {}; \
         pass parent=None to use the current span",
        p.get_type().name()?
    )))
}

const CREATED: u8 = 0;
const ENTERED: u8 = 1;
const FINISHED: u8 = 2;

/// What a span accumulates while it runs; behind a lock only because attributes may be set
/// from any thread that holds the span. Entering and leaving touch only atomics.
struct State {
    attrs: Attrs,
    events: Vec<Event>,
    status: Status,
}

thread_local! {
    // Span names are usually a handful of literals: each thread keeps the last name seen per
    // slot (keyed by the str object's address, checked by content) so that most spans share
    // their name instead of allocating it.
    static NAMES: RefCell<[(usize, Option<Arc<str>>); 64]> =
        const { RefCell::new([const { (0, None) }; 64]) };
}

fn intern_name(name: &Bound<'_, PyString>) -> PyResult<Arc<str>> {
    let text = text(name);
    let addr = name.as_ptr() as usize;
    let slot = (addr >> 4) % 64;
    let cached = NAMES.try_with(|cell| {
        let mut names = cell.try_borrow_mut().ok()?;
        let entry = &mut names[slot];
        match &entry.1 {
            Some(arc) if entry.0 == addr && **arc == *text => Some(arc.clone()),
            _ => {
                let arc: Arc<str> = Arc::from(&*text);
                *entry = (addr, Some(arc.clone()));
                Some(arc)
            }
        }
    });
    Ok(cached.ok().flatten().unwrap_or_else(|| Arc::from(&*text)))
}

/// A unit of work with a name, a place in its trace and a duration. Use `with span(...)`
/// or `@span(...)`; see `system0.core.tracing`.
#[pyclass(module = "system0._core", name = "Span", frozen)]
pub struct PySpan {
    name: Arc<str>,
    trace_id: u128,
    span_id: u64,
    parent_id: u64,
    parent_remote: bool,
    sampled: bool,
    phase: AtomicU8,
    start_ns: AtomicU64,
    end_ns: AtomicU64,
    /// The ContextVar token from `__enter__`, used once by `__exit__`.
    token: OnceLock<Py<PyAny>>,
    /// Which counters the span asked for: (joules, cycles+instructions).
    counters: (bool, bool),
    /// Energy/CPU counter readings at `__enter__`, when the span asked for them.
    counters_at_start: OnceLock<energy::Snapshot>,
    state: Mutex<State>,
}

impl PySpan {
    /// Move the span from phase `from` to `to` (each happens once); otherwise an argument
    /// error saying the span `misuse`.
    fn advance(&self, from: u8, to: u8, misuse: &str) -> PyResult<()> {
        self.phase
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            .map_err(|_| {
                CoreError::InvalidArgument(format!("span '{}' {misuse}", self.name)).into()
            })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn exception_event(
        py: Python<'_>,
        exc: &Bound<'_, PyAny>,
        time_ns: u64,
    ) -> PyResult<(Event, String)> {
        let ty = exc.get_type();
        let qual = ty.qualname()?.to_cow()?.into_owned();
        let module = ty.module()?.to_cow()?.into_owned();
        let type_name = if module == "builtins" {
            qual.clone()
        } else {
            format!("{module}.{qual}")
        };
        let message = text(&exc.str()?).into_owned();
        let stack: String = py
            .import("traceback")?
            .call_method1("format_exception", (exc,))?
            .cast::<PyList>()?
            .iter()
            .map(|line| line.str().map(|s| s.to_string()))
            .collect::<PyResult<String>>()?;
        let attrs = vec![
            ("exception.type".to_owned(), AttrValue::Str(type_name)),
            (
                "exception.message".to_owned(),
                AttrValue::Str(message.clone()),
            ),
            ("exception.stacktrace".to_owned(), AttrValue::Str(stack)),
        ];
        let event = Event {
            name: "exception".to_owned(),
            time_ns,
            attrs,
        };
        Ok((event, format!("{qual}: {message}")))
    }
}

/// Joules and CPU counters as span attributes; a reading that cannot be taken (for example
/// a span that ended on another thread than it started) says why instead of inventing a figure.
fn counter_attributes(delta: Result<energy::Delta, CoreError>) -> Vec<(String, AttrValue)> {
    match delta {
        Ok(d) => d.attributes(),
        Err(e) => vec![(
            "energy".to_owned(),
            AttrValue::Str(format!("not available: {e}")),
        )],
    }
}

#[pymethods]
impl PySpan {
    #[new]
    #[pyo3(signature = (name, /, *, parent=None, energy=false, cpu_counters=false, **attrs))]
    fn new(
        py: Python<'_>,
        name: &Bound<'_, PyString>,
        parent: Option<&Bound<'_, PyAny>>,
        energy: bool,
        cpu_counters: bool,
        attrs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let p = resolve_parent(py, parent)?;
        let trace_id = p.map_or_else(ids::new_trace_id, |p| p.trace_id);
        let mut a = Attrs::new();
        dict_to_attrs(attrs, &mut a)?;
        Ok(PySpan {
            name: intern_name(name)?,
            trace_id,
            span_id: ids::new_span_id(),
            parent_id: p.map_or(0, |p| p.span_id),
            parent_remote: p.is_some_and(|p| p.remote),
            sampled: sampler::sample(trace_id, p.map(|p| p.sampled)),
            phase: AtomicU8::new(CREATED),
            start_ns: AtomicU64::new(0),
            end_ns: AtomicU64::new(0),
            token: OnceLock::new(),
            counters: (energy, cpu_counters),
            counters_at_start: OnceLock::new(),
            state: Mutex::new(State {
                attrs: a,
                events: Vec::new(),
                status: Status::Unset,
            }),
        })
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let this = slf.get();
        this.advance(
            CREATED,
            ENTERED,
            "was already entered; create a new span for each `with` block",
        )?;
        let token = ctx_set(slf.py(), slf.as_any())?;
        // The phase check above makes this the only `set`.
        let _ = this.token.set(token.unbind());
        let (energy, cpu) = this.counters;
        if this.sampled && (energy || cpu) {
            let _ = this
                .counters_at_start
                .set(energy::default_meter().snapshot(energy, cpu));
        }
        this.start_ns
            .store(crate::clock::now_ns(), Ordering::Release);
        Ok(slf.clone())
    }

    fn __exit__(
        slf: &Bound<'_, Self>,
        _exc_type: &Bound<'_, PyAny>,
        exc_value: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let end = crate::clock::now_ns();
        let py = slf.py();
        let this = slf.get();
        this.advance(ENTERED, FINISHED, "was exited without being entered")?;
        this.end_ns.store(end, Ordering::Release);
        if !exc_value.is_none() {
            // Describing the exception must not stop the span from closing: an exception
            // whose str() fails is still recorded, by type.
            let (event, message) = Self::exception_event(py, exc_value, end).unwrap_or_else(|_| {
                let event = Event {
                    name: "exception".to_owned(),
                    time_ns: end,
                    attrs: Vec::new(),
                };
                (event, "<exception not printable>".to_owned())
            });
            let mut st = this.state();
            if this.sampled {
                st.events.push(event);
            }
            st.status = Status::Error(message);
        }
        if this.sampled {
            let mut st = this.state();
            if let Some(start) = this.counters_at_start.get() {
                let (energy, cpu) = this.counters;
                let delta = energy::default_meter().snapshot(energy, cpu).since(start);
                for (key, value) in counter_attributes(delta) {
                    set_attr(&mut st.attrs, &key, value);
                }
            }
            let record = SpanRecord {
                name: this.name.clone(),
                trace_id: this.trace_id,
                span_id: this.span_id,
                parent_id: this.parent_id,
                parent_remote: this.parent_remote,
                start_ns: this.start_ns.load(Ordering::Acquire),
                end_ns: end,
                status: st.status.clone(),
                attrs: std::mem::take(&mut st.attrs),
                events: std::mem::take(&mut st.events),
            };
            drop(st);
            collector::submit(record);
        }
        if let Some(t) = this.token.get() {
            ctx_reset(py, t.bind(py))?;
        }
        Ok(false)
    }

    /// Used as a decorator: every call of `func` runs in a new span with this name and
    /// attributes (sync and async functions alike).
    fn __call__<'py>(&self, func: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = func.py();
        let attrs = attrs_to_dict(py, &self.state().attrs)?;
        // Each call's span asks for the same counters as the decorating span.
        let (energy, cpu) = self.counters;
        if energy {
            attrs.set_item("energy", true)?;
        }
        if cpu {
            attrs.set_item("cpu_counters", true)?;
        }
        py.import("system0.core.tracing")?
            .getattr("_decorate")?
            .call1((func, &*self.name, attrs))
    }

    /// Sets an attribute (str, int, float or bool; other values are stored as `str(value)`).
    /// Attributes set after the span finished are ignored: the record is already sent.
    fn set_attribute(&self, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.sampled {
            let v = to_attr(value)?;
            set_attr(&mut self.state().attrs, key, v);
        }
        Ok(())
    }

    fn set_attributes(&self, attributes: &Bound<'_, PyDict>) -> PyResult<()> {
        if self.sampled {
            let mut a = Attrs::new();
            dict_to_attrs(Some(attributes), &mut a)?;
            let mut st = self.state();
            for (k, v) in a {
                set_attr(&mut st.attrs, &k, v);
            }
        }
        Ok(())
    }

    /// Records a point-in-time event with optional attributes.
    #[pyo3(signature = (name, /, **attrs))]
    fn add_event(&self, name: &str, attrs: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        if self.sampled {
            let mut a = Attrs::new();
            dict_to_attrs(attrs, &mut a)?;
            self.state().events.push(Event {
                name: name.to_owned(),
                time_ns: crate::clock::now_ns(),
                attrs: a,
            });
        }
        Ok(())
    }

    /// Adds an `exception` event (type, message, stack trace) without changing the status.
    fn record_exception(&self, exc: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.sampled {
            let (event, _) = Self::exception_event(exc.py(), exc, crate::clock::now_ns())?;
            self.state().events.push(event);
        }
        Ok(())
    }

    /// Sets the status: "ok", "error" (with a description) or "unset".
    #[pyo3(signature = (code, description=None))]
    fn set_status(&self, code: &str, description: Option<String>) -> PyResult<()> {
        let status = match code {
            "ok" => Status::Ok,
            "unset" => Status::Unset,
            "error" => Status::Error(description.unwrap_or_default()),
            other => {
                return Err(CoreError::InvalidArgument(format!(
                    "span status {other:?} is not one of 'ok', 'error', 'unset'"
                ))
                .into())
            }
        };
        self.state().status = status;
        Ok(())
    }

    #[getter]
    fn name(&self) -> &str {
        &self.name
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
    fn parent_id(&self) -> Option<u64> {
        (self.parent_id != 0).then_some(self.parent_id)
    }
    #[getter]
    fn sampled(&self) -> bool {
        self.sampled
    }
    #[getter]
    fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
    #[getter]
    fn span_id_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }
    #[getter]
    fn status(&self) -> &'static str {
        self.state().status.code()
    }
    #[getter]
    fn attributes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        attrs_to_dict(py, &self.state().attrs)
    }
    /// Monotonic ns when entered (None before).
    #[getter]
    fn start_ns(&self) -> Option<u64> {
        (self.phase.load(Ordering::Acquire) != CREATED)
            .then(|| self.start_ns.load(Ordering::Acquire))
    }
    /// Monotonic ns when exited (None before).
    #[getter]
    fn end_ns(&self) -> Option<u64> {
        (self.phase.load(Ordering::Acquire) == FINISHED)
            .then(|| self.end_ns.load(Ordering::Acquire))
    }
    #[getter]
    fn context(&self) -> PySpanContext {
        PySpanContext {
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: self.sampled,
            remote: false,
        }
    }
    fn traceparent(&self) -> String {
        traceparent::format_traceparent(self.trace_id, self.span_id, self.sampled)
    }
    fn __repr__(&self) -> String {
        format!(
            "Span({:?}, trace_id={:032x}, span_id={:016x}, parent_id={:016x}, sampled={})",
            &*self.name, self.trace_id, self.span_id, self.parent_id, self.sampled
        )
    }
}

/// The trace and span id of the current context (span or remote parent), for log records.
pub(crate) fn current_ids(py: Python<'_>) -> PyResult<Option<(u128, u64)>> {
    Ok(ctx_get(py)?
        .as_ref()
        .and_then(parent_of)
        .map(|p| (p.trace_id, p.span_id)))
}

#[pyfunction]
fn current_span<'py>(py: Python<'py>) -> PyResult<Option<Bound<'py, PySpan>>> {
    Ok(ctx_get(py)?.and_then(|o| o.cast_into::<PySpan>().ok()))
}

#[pyfunction]
fn current_context(py: Python<'_>) -> PyResult<Option<PySpanContext>> {
    Ok(ctx_get(py)?
        .as_ref()
        .and_then(parent_of)
        .map(|p| PySpanContext {
            trace_id: p.trace_id,
            span_id: p.span_id,
            sampled: p.sampled,
            remote: p.remote,
        }))
}

#[pyfunction]
fn inject(py: Python<'_>) -> PyResult<Option<String>> {
    Ok(current_context(py)?.map(|c| c.traceparent()))
}

/// Makes `value` (a Span or SpanContext) current; returns the token for `_reset_current`.
#[pyfunction]
fn _set_current<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if parent_of(value).is_none() {
        return Err(PyTypeError::new_err(
            "only a Span or a SpanContext can be made current",
        ));
    }
    ctx_set(value.py(), value)
}

#[pyfunction]
fn _reset_current(token: &Bound<'_, PyAny>) -> PyResult<()> {
    ctx_reset(token.py(), token)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySpan>()?;
    m.add_function(wrap_pyfunction!(current_span, m)?)?;
    m.add_function(wrap_pyfunction!(current_context, m)?)?;
    m.add_function(wrap_pyfunction!(inject, m)?)?;
    m.add_function(wrap_pyfunction!(_set_current, m)?)?;
    m.add_function(wrap_pyfunction!(_reset_current, m)?)?;
    super::py_context::register(m)?;
    super::py_finished::register(m)?;
    Ok(())
}
