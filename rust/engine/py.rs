//! Python binding of the engine core: `EngineCore` (admission, queue, gathering), `EngineFuture`
//! (a `concurrent.futures.Future`-compatible answer slot) and `EngineBatch` (one batch: its
//! matrix as a zero-copy float32 buffer, the model's outputs read back, the answers settled).
//!
//! The Python facade (`system0.interfaces.inference_engine`) keeps the model call, the
//! breaker, the fallback, energy readings and the flight recorder: everything that is Python
//! anyway, once per batch. Per request, Python is entered only by the caller itself (its
//! `submit` call and its `result()`), where it holds the GIL regardless.
//!
//! Locking rule: no Python code runs while a slot's lock is held (results are built outside
//! it), so a thread holding the GIL never waits on a thread that waits for the GIL.

use std::ffi::{c_int, c_void};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyBufferError, PyTimeoutError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::batch::Gathered;
use super::core::{Config, Engine, Next};
use super::metrics::Outcome;
use super::outputs::{scan, Refused};
use super::slot::{Answer, Slot};
use super::spans::{BatchFacts, Parent};
use crate::error::CoreError;
use crate::features::N_FEATURES;
use crate::gil::without_gil;
use crate::request::{featurize, Source};

/// What a batch answered, shared by its requests' answers.
struct BatchOut {
    outputs: Py<PyAny>,
    actions: Vec<i64>,
    fallback: bool,
    reason: Option<Py<PyString>>,
    batch_size: usize,
    batch_id: u64,
    model_ns: u64,
}

enum PyAnswer {
    Ok {
        out: Arc<BatchOut>,
        row: usize,
        wait: u64,
        total: u64,
        /// The result object, built by the first `result()` and returned by every later one.
        built: Option<Py<PyAny>>,
    },
    Error(CoreError),
    /// The model's own exception (no fallback).
    Raised(Py<PyAny>),
    Cancelled,
}

impl Answer for PyAnswer {
    fn error(e: CoreError) -> Self {
        PyAnswer::Error(e)
    }
    fn cancelled() -> Self {
        PyAnswer::Cancelled
    }
}

/// A done-callback and the future it is called with.
type Callback = (Py<PyAny>, Py<PyEngineFuture>);
type PySlot = Slot<PyAnswer, Callback>;
type PyEngine = Engine<PyAnswer, Callback>;

/// Run done-callbacks (the GIL held); an exception in one is reported, never raised: the
/// settling thread must go on answering the others (as `concurrent.futures` logs them).
fn run_callbacks(py: Python<'_>, cbs: Vec<Callback>) {
    for (f, fut) in cbs {
        if let Err(e) = f.call1(py, (fut,)) {
            e.write_unraisable(py, Some(f.bind(py)));
        }
    }
}

struct Shared {
    engine: PyEngine,
    result_type: Py<PyAny>,
    invalid_type: Py<PyAny>,
    /// The Python validator for anything that is not already a float32 row (None: none).
    validator: Option<Py<PyAny>>,
    /// A float32 row of the right width skips the validator (it is the default contract).
    fast_rows: bool,
    /// The engine clock when a test injects one; None: the Rust monotonic clock.
    clock: Option<Py<PyAny>>,
}

impl Shared {
    fn now(&self, py: Python<'_>) -> PyResult<u64> {
        match &self.clock {
            None => Ok(crate::clock::now_ns()),
            Some(c) => c.call0(py)?.extract(py),
        }
    }

    fn invalid(
        &self,
        py: Python<'_>,
        message: String,
        reasons: Vec<String>,
        index: Option<usize>,
    ) -> PyErr {
        let kw = [(
            "index",
            index.into_pyobject(py).map(|o| o.into_any().unbind()),
        )];
        let made = (|| -> PyResult<Bound<'_, PyAny>> {
            let d = pyo3::types::PyDict::new(py);
            for (k, v) in kw {
                d.set_item(k, v?)?;
            }
            self.invalid_type
                .bind(py)
                .call((message, PyTuple::new(py, reasons)?), Some(&d))
        })();
        match made {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        }
    }
}

/// A budget in seconds as ns: a finite number > 0.
fn budget_ns(budget: &Bound<'_, PyAny>) -> PyResult<u64> {
    let v: Option<f64> = budget.extract().ok();
    match v {
        Some(s) if s.is_finite() && s > 0.0 => Ok((s * 1e9) as u64),
        _ => Err(PyValueError::new_err(format!(
            "budget must be a finite number of seconds > 0, got {}",
            budget.repr().map_or_else(|_| "?".into(), |r| r.to_string())
        ))),
    }
}

static CURRENT_CONTEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ASCONTIGUOUS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static FLOAT32: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static CANCELLED: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();

/// The span current at submit, when the caller is in a trace (one ContextVar read when not).
fn parent(py: Python<'_>) -> PyResult<Option<Parent>> {
    let Some((trace_id, span_id)) = crate::trace::py::current_ids(py)? else {
        return Ok(None);
    };
    let f = CURRENT_CONTEXT.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("system0._core")?
                .getattr("current_context")?
                .unbind(),
        )
    })?;
    let ctx = f.call0(py)?;
    let ctx = ctx.bind(py);
    if ctx.is_none() {
        return Ok(None);
    }
    Ok(Some(Parent {
        trace_id,
        span_id,
        sampled: ctx.getattr("sampled")?.extract()?,
        remote: ctx.getattr("remote")?.extract()?,
    }))
}

/// `obj` as a C-contiguous float32 array (no copy when it already is one).
fn as_f32<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let f = ASCONTIGUOUS.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("numpy")?.getattr("ascontiguousarray")?.unbind())
    })?;
    let dt = FLOAT32.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("numpy")?.getattr("float32")?.unbind())
    })?;
    f.bind(py).call1((obj, dt.bind(py)))
}

/// The float32 values and shape of a C-contiguous float32 buffer, or None when `obj` is not one.
fn f32_values(py: Python<'_>, obj: &Bound<'_, PyAny>) -> Option<(Vec<f32>, Vec<usize>)> {
    let buf = PyBuffer::<f32>::get(obj).ok()?;
    if !buf.is_c_contiguous() {
        return None;
    }
    let v = buf.to_vec(py).ok()?;
    Some((v, buf.shape().to_vec()))
}

fn finite(x: &[f32]) -> bool {
    x.iter().all(|v| v.is_finite())
}

#[pyclass(module = "system0._core", name = "EngineCore", frozen)]
pub struct PyEngineCore {
    shared: Arc<Shared>,
}

fn future(py: Python<'_>, shared: &Arc<Shared>, slot: Arc<PySlot>) -> PyResult<Py<PyEngineFuture>> {
    Py::new(
        py,
        PyEngineFuture {
            slot,
            shared: shared.clone(),
        },
    )
}

impl PyEngineCore {
    /// One request as its checked feature row: a float32 row of the right width goes
    /// straight through; anything else goes to the Python validator (which raises the
    /// contract's `InvalidRequest`), and what it returns is checked again.
    fn row(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<Box<[f32]>> {
        let s = &self.shared;
        let width = s.engine.cfg.width;
        if s.fast_rows || s.validator.is_none() {
            if let Some((v, shape)) = f32_values(py, request) {
                if shape == [width] && finite(&v) {
                    return Ok(v.into_boxed_slice());
                }
            }
        }
        let Some(validate) = &s.validator else {
            return Err(s.invalid(
                py,
                "request is not a float32 row".into(),
                vec!["shape".into()],
                None,
            ));
        };
        let x = match validate.bind(py).call1((request,)) {
            Ok(x) => x,
            Err(e) => {
                if e.is_instance(py, s.invalid_type.bind(py)) {
                    s.engine.metrics.count(Outcome::Invalid, 1);
                }
                return Err(e);
            }
        };
        let x = as_f32(py, &x)?;
        let (v, shape) = f32_values(py, &x).unwrap_or_default();
        if shape != [width] {
            s.engine.metrics.count(Outcome::Invalid, 1);
            return Err(s.invalid(
                py,
                format!("request must be {width} feature values, got shape {shape:?}"),
                vec!["shape".into()],
                None,
            ));
        }
        if !finite(&v) {
            s.engine.metrics.count(Outcome::Invalid, 1);
            return Err(s.invalid(
                py,
                "request holds NaN or infinity".into(),
                vec!["non_finite".into()],
                None,
            ));
        }
        Ok(v.into_boxed_slice())
    }

    fn queue_many(
        &self,
        py: Python<'_>,
        rows: Vec<Box<[f32]>>,
        budget: u64,
    ) -> PyResult<Vec<Py<PyEngineFuture>>> {
        let s = &self.shared;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        s.engine.admit(rows.len(), budget)?;
        let now = s.now(py)?;
        let p = parent(py)?;
        let ps: Vec<_> = rows
            .into_iter()
            .map(|x| s.engine.pending(x, now, budget, p))
            .collect();
        let (slots, cbs) = s.engine.enqueue_many(ps);
        run_callbacks(py, cbs);
        slots.into_iter().map(|sl| future(py, s, sl)).collect()
    }

    /// The feature rows of GameState byte strings, or `InvalidRequest` naming the first bad
    /// one (with every broken rule of it as `"{code}:{path}"`).
    fn decode(
        &self,
        py: Python<'_>,
        items: &[Bound<'_, PyAny>],
        single: bool,
    ) -> PyResult<Vec<Box<[f32]>>> {
        let s = &self.shared;
        if s.engine.cfg.width != N_FEATURES {
            return Err(PyValueError::new_err(format!(
                "{}: the model takes {} features per row, but GameState bytes featurize into \
                 {N_FEATURES}; use submit() with feature rows for this model",
                s.engine.cfg.name, s.engine.cfg.width
            )));
        }
        let mut owned: Vec<Vec<u8>> = Vec::new();
        let mut which: Vec<(bool, usize)> = Vec::with_capacity(items.len());
        for (i, obj) in items.iter().enumerate() {
            if obj.cast::<PyBytes>().is_ok() {
                which.push((true, i));
            } else if let Ok(buf) = PyBuffer::<u8>::get(obj) {
                owned.push(buf.to_vec(py)?);
                which.push((false, owned.len() - 1));
            } else {
                return Err(PyValueError::new_err(format!(
                    "request {i} is a {}, not bytes; pass GameState JSON or msgpack bytes",
                    obj.get_type().name().map_or("?".into(), |n| n.to_string())
                )));
            }
        }
        let sources: Vec<Source<'_>> = which
            .iter()
            .map(|&(b, i)| match b {
                true => Source::Bytes(items[i].cast::<PyBytes>().map_or(&[][..], |b| b.as_bytes())),
                false => Source::Bytes(&owned[i]),
            })
            .collect();
        let run = || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                featurize(&[], &sources, None)
            }))
        };
        let outcome = if sources.len() >= 16 {
            without_gil(py, run)
        } else {
            run()
        };
        let f = outcome.map_err(|_| {
            PyErr::from(CoreError::Internal(
                "GameState decoding panicked; please report this input".into(),
            ))
        })??;
        if let Some(&(first, _)) = f.errors.first() {
            s.engine.metrics.count(Outcome::Invalid, 1);
            let reasons: Vec<String> = f
                .errors
                .iter()
                .filter(|(i, _)| *i == first)
                .map(|(_, e)| {
                    if e.path.is_empty() {
                        e.code.to_owned()
                    } else {
                        format!("{}:{}", e.code, e.path)
                    }
                })
                .collect();
            let mut refused: Vec<u32> = f.errors.iter().map(|(i, _)| *i).collect();
            refused.dedup();
            let prefix = if single {
                String::new()
            } else if refused.len() > 1 {
                format!(
                    "request {first} ({} of {} refused): ",
                    refused.len(),
                    items.len()
                )
            } else {
                format!("request {first}: ")
            };
            let msg = format!(
                "{prefix}GameState breaks its contract: {}",
                reasons.join(", ")
            );
            return Err(s.invalid(py, msg, reasons, (!single).then_some(first as usize)));
        }
        Ok(f.features
            .chunks_exact(N_FEATURES)
            .map(|r| r.to_vec().into_boxed_slice())
            .collect())
    }
}

#[pymethods]
impl PyEngineCore {
    #[new]
    #[pyo3(signature = (name, width, max_batch, max_wait_ns, buckets, queue_capacity, headroom, result_type, invalid_type, validator=None, fast_rows=true, clock=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: String,
        width: usize,
        max_batch: usize,
        max_wait_ns: u64,
        buckets: Vec<usize>,
        queue_capacity: usize,
        headroom: f64,
        result_type: Py<PyAny>,
        invalid_type: Py<PyAny>,
        validator: Option<Py<PyAny>>,
        fast_rows: bool,
        clock: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let cfg = Config {
            name,
            width,
            max_batch,
            max_wait_ns,
            buckets,
            capacity: queue_capacity,
            headroom,
        };
        Ok(PyEngineCore {
            shared: Arc::new(Shared {
                engine: Engine::new(cfg)?,
                result_type,
                invalid_type,
                validator,
                fast_rows,
                clock,
            }),
        })
    }

    /// Validate, admit and queue one request; its future, or the refusal raised at once.
    fn submit(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        budget: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyEngineFuture>> {
        let s = &self.shared;
        s.engine.check_open()?;
        let b = budget_ns(budget)?;
        let x = self.row(py, request)?;
        s.engine.admit(1, b)?;
        let now = s.now(py)?;
        let p = s.engine.pending(x, now, b, parent(py)?);
        let slot = s.engine.enqueue(p)?;
        future(py, s, slot)
    }

    /// Admit and queue the rows of a `(k, width)` float32 matrix (already validated by the
    /// caller; checked again for shape and finiteness here).
    fn submit_rows(
        &self,
        py: Python<'_>,
        matrix: &Bound<'_, PyAny>,
        budget: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Py<PyEngineFuture>>> {
        let s = &self.shared;
        s.engine.check_open()?;
        let b = budget_ns(budget)?;
        let width = s.engine.cfg.width;
        let m = as_f32(py, matrix)?;
        let (v, shape) = f32_values(py, &m).unwrap_or_default();
        if v.is_empty() && shape.first() == Some(&0) {
            return Ok(Vec::new());
        }
        if shape.len() != 2 || shape[1] != width {
            s.engine.metrics.count(Outcome::Invalid, 1);
            return Err(s.invalid(
                py,
                format!("requests must be rows of {width} feature values, got shape {shape:?}"),
                vec!["shape".into()],
                Some(0),
            ));
        }
        let rows: Vec<Box<[f32]>> = v
            .chunks_exact(width)
            .map(|r| r.to_vec().into_boxed_slice())
            .collect();
        if let Some(i) = rows.iter().position(|r| !finite(r)) {
            s.engine.metrics.count(Outcome::Invalid, 1);
            return Err(s.invalid(
                py,
                format!("request {i}: request holds NaN or infinity"),
                vec!["non_finite".into()],
                Some(i),
            ));
        }
        self.queue_many(py, rows, b)
    }

    /// One GameState (JSON or msgpack bytes), decoded and featurized in Rust, then queued.
    fn submit_bytes(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        budget: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyEngineFuture>> {
        let s = &self.shared;
        s.engine.check_open()?;
        let b = budget_ns(budget)?;
        let mut rows = self.decode(py, std::slice::from_ref(data), true)?;
        s.engine.admit(1, b)?;
        let now = s.now(py)?;
        let p = s.engine.pending(rows.remove(0), now, b, parent(py)?);
        let slot = s.engine.enqueue(p)?;
        future(py, s, slot)
    }

    /// A tick of GameStates as bytes: all decoded in one Rust call and queued in one step;
    /// one bad item refuses the whole call (nothing queued).
    fn submit_many_bytes(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyAny>,
        budget: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Py<PyEngineFuture>>> {
        let s = &self.shared;
        s.engine.check_open()?;
        let b = budget_ns(budget)?;
        if items.cast::<PyBytes>().is_ok() {
            return Err(PyValueError::new_err(
                "items must be a sequence of bytes; wrap a single one in a list",
            ));
        }
        let list: Vec<Bound<'_, PyAny>> = if let Ok(l) = items.cast::<PyList>() {
            l.iter().collect()
        } else {
            items.try_iter()?.collect::<PyResult<_>>()?
        };
        let rows = self.decode(py, &list, false)?;
        self.queue_many(py, rows, b)
    }

    /// Validate and admit one request for an inline run on the caller's thread (the caller
    /// holds the run lock and found the engine idle): the opened batch of one, or the refusal.
    fn inline(
        slf: &Bound<'_, Self>,
        request: &Bound<'_, PyAny>,
        budget: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyEngineBatch>> {
        let py = slf.py();
        let me = slf.get();
        let s = &me.shared;
        s.engine.check_open()?;
        let b = budget_ns(budget)?;
        let x = me.row(py, request)?;
        s.engine.admit(1, b)?;
        let now = s.now(py)?;
        let p = s.engine.pending(x, now, b, parent(py)?);
        let slot = p.slot.clone();
        let mut g = Gathered::new(vec![p], true);
        let cbs = g.open(&s.engine, s.now(py)?);
        run_callbacks(py, cbs);
        if g.rows() == 0 {
            return Err(
                match slot.with_answer(|a| match a {
                    PyAnswer::Error(e) => e.clone(),
                    _ => CoreError::Internal("inline request answered before it ran".into()),
                }) {
                    Some(e) => e.into(),
                    None => CoreError::Internal("inline request lost".into()).into(),
                },
            );
        }
        PyEngineBatch::wrap(py, s, g, Some(slot))
    }

    /// Wait (GIL released) for the next batch, at most `timeout` seconds; None when nothing
    /// came; raises `Closed` once closed and drained.
    fn next_batch(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Py<PyEngineBatch>>> {
        let s = &self.shared;
        let until = Instant::now() + Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
        let engine = &s.engine;
        match without_gil(py, || engine.next_batch(Some(until))) {
            Next::Batch(g) => PyEngineBatch::wrap(py, s, g, None).map(Some),
            Next::Idle => Ok(None),
            Next::Closed => Err(s.engine.closed_error().into()),
        }
    }

    /// True when nothing is queued and no batch runs (an inline call may run).
    fn idle(&self) -> bool {
        self.shared.engine.is_idle()
    }

    fn expected_wait_ns(&self, behind: usize) -> f64 {
        self.shared.engine.expected_wait_ns(behind)
    }

    fn seed_estimate(&self, ns: f64) {
        self.shared.engine.est.set(ns);
    }

    fn count(&self, outcome: &str, n: u64) -> PyResult<()> {
        let o = match outcome {
            "invalid" => Outcome::Invalid,
            "overloaded" => Outcome::Overloaded,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "unknown outcome {outcome:?}; use 'invalid' or 'overloaded'"
                )))
            }
        };
        self.shared.engine.metrics.count(o, n);
        Ok(())
    }

    #[getter]
    fn depth(&self) -> usize {
        self.shared.engine.depth()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.shared.engine.is_closed()
    }

    /// `(submitted, completed, fallbacks, rejected_overloaded, rejected_invalid,
    /// deadline_exceeded, failed, batches, inline, {size: batches})`.
    #[allow(clippy::type_complexity)]
    fn tally(
        &self,
    ) -> (
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
        std::collections::BTreeMap<usize, u64>,
    ) {
        let t = self.shared.engine.metrics.tally();
        (
            t.submitted,
            t.completed,
            t.fallbacks,
            t.rejected_overloaded,
            t.rejected_invalid,
            t.deadline_exceeded,
            t.failed,
            t.batches,
            t.inline,
            t.batch_sizes.into_iter().collect(),
        )
    }

    /// Refuse new requests; queued ones are still run by the workers.
    fn close(&self) {
        self.shared.engine.close();
    }

    /// Answer with `Closed` whatever is still queued or running (after the workers stopped
    /// or timed out): no request is left hanging.
    fn abandon(&self, py: Python<'_>) {
        let cbs = self.shared.engine.abandon();
        run_callbacks(py, cbs);
    }
}

/// The answer to one request: `concurrent.futures.Future`'s reading side (`result`,
/// `exception`, `done`, `running`, `cancelled`, `cancel`, `add_done_callback`).
#[pyclass(module = "system0._core", name = "EngineFuture", frozen)]
pub struct PyEngineFuture {
    slot: Arc<PySlot>,
    shared: Arc<Shared>,
}

enum Read {
    Built(Py<PyAny>),
    Build(Arc<BatchOut>, usize, u64, u64),
    Error(CoreError),
    Raised(Py<PyAny>),
    Cancelled,
}

fn cancelled_error(py: Python<'_>) -> PyErr {
    let t = CANCELLED.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("concurrent.futures")?
                .getattr("CancelledError")?
                .cast_into::<pyo3::types::PyType>()?
                .unbind(),
        )
    });
    match t {
        Ok(t) => PyErr::from_type(t.bind(py).clone(), ()),
        Err(e) => e,
    }
}

impl PyEngineFuture {
    /// Wait for the answer (GIL released, in slices so that Ctrl-C is seen).
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        if self.slot.is_done() {
            return Ok(());
        }
        let end = match timeout {
            Some(t) if t.is_nan() || t < 0.0 => {
                return Err(PyValueError::new_err(format!(
                    "timeout must be >= 0 seconds, got {t}"
                )))
            }
            Some(t) => Some(Instant::now() + Duration::from_secs_f64(t.min(1e9))),
            None => None,
        };
        loop {
            let slice = Instant::now() + Duration::from_millis(100);
            let until = end.map_or(slice, |e| e.min(slice));
            let slot = &self.slot;
            if without_gil(py, || slot.wait(Some(until))) {
                return Ok(());
            }
            if end.is_some_and(|e| Instant::now() >= e) {
                return Err(PyTimeoutError::new_err(format!(
                    "{}: no answer within {:.3} s; the request is still pending",
                    self.shared.engine.cfg.name,
                    timeout.unwrap_or(0.0)
                )));
            }
            py.check_signals()?;
        }
    }

    fn read(&self, py: Python<'_>) -> Option<Read> {
        self.slot.with_answer(|a| match a {
            PyAnswer::Ok { built: Some(r), .. } => Read::Built(r.clone_ref(py)),
            PyAnswer::Ok {
                out,
                row,
                wait,
                total,
                ..
            } => Read::Build(out.clone(), *row, *wait, *total),
            PyAnswer::Error(e) => Read::Error(e.clone()),
            PyAnswer::Raised(e) => Read::Raised(e.clone_ref(py)),
            PyAnswer::Cancelled => Read::Cancelled,
        })
    }

    fn build(
        &self,
        py: Python<'_>,
        out: &BatchOut,
        row: usize,
        wait: u64,
        total: u64,
    ) -> PyResult<Py<PyAny>> {
        let outputs = out.outputs.bind(py).get_item(row)?;
        let reason: Bound<'_, PyAny> = match &out.reason {
            Some(r) => r.bind(py).clone().into_any(),
            None => py.None().into_bound(py),
        };
        let args = (
            outputs,
            out.actions[row],
            out.fallback,
            reason,
            out.batch_size,
            out.batch_id,
            wait,
            out.model_ns,
            total,
            row,
        );
        let r = self.shared.result_type.bind(py).call1(args)?.unbind();
        // keep the first one built: every result() returns the same object
        let kept = self.slot.update(|a| match a {
            PyAnswer::Ok { built: Some(b), .. } => b.clone_ref(py),
            PyAnswer::Ok { built, .. } => {
                *built = Some(r.clone_ref(py));
                r.clone_ref(py)
            }
            _ => r.clone_ref(py),
        });
        Ok(kept.unwrap_or(r))
    }

    fn outcome(&self, py: Python<'_>) -> PyResult<Result<Py<PyAny>, PyErr>> {
        match self.read(py) {
            None => {
                Err(CoreError::Internal("the answer was read before it was settled".into()).into())
            }
            Some(Read::Built(r)) => Ok(Ok(r)),
            Some(Read::Build(out, row, wait, total)) => {
                Ok(Ok(self.build(py, &out, row, wait, total)?))
            }
            Some(Read::Error(e)) => Ok(Err(e.into())),
            Some(Read::Raised(e)) => Ok(Err(PyErr::from_value(e.into_bound(py)))),
            Some(Read::Cancelled) => Err(cancelled_error(py)),
        }
    }
}

#[pymethods]
impl PyEngineFuture {
    /// The `InferenceResult`, or the request's error raised; waits at most `timeout` s.
    #[pyo3(signature = (timeout=None))]
    fn result(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        self.wait(py, timeout)?;
        self.outcome(py)?
    }

    /// The request's error (None when it was answered); waits at most `timeout` s.
    #[pyo3(signature = (timeout=None))]
    fn exception(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        self.wait(py, timeout)?;
        match self.read(py) {
            Some(Read::Error(e)) => Ok(Some(PyErr::from(e).into_value(py).into_any())),
            Some(Read::Raised(e)) => Ok(Some(e)),
            Some(Read::Cancelled) => Err(cancelled_error(py)),
            _ => Ok(None),
        }
    }

    fn done(&self) -> bool {
        self.slot.is_done()
    }

    fn running(&self) -> bool {
        self.slot.is_running()
    }

    fn cancelled(&self) -> bool {
        self.slot.is_cancelled()
    }

    /// Cancel while still queued (True); a request in a running batch or answered is not.
    fn cancel(&self, py: Python<'_>) -> bool {
        match self.slot.cancel() {
            Some(cbs) => {
                run_callbacks(py, cbs);
                true
            }
            None => false,
        }
    }

    /// `fn(future)` once answered (at once when it already is), on the answering thread.
    fn add_done_callback(slf: &Bound<'_, Self>, f: Py<PyAny>) {
        let py = slf.py();
        let me = slf.get();
        if let Some(cb) = me.slot.add_callback((f, slf.clone().unbind())) {
            run_callbacks(py, vec![cb]);
        }
    }

    fn __repr__(&self) -> String {
        let state = if self.slot.is_cancelled() {
            "cancelled"
        } else if self.slot.is_done() {
            "finished"
        } else if self.slot.is_running() {
            "running"
        } else {
            "pending"
        };
        format!(
            "<EngineFuture {} state={state}>",
            self.shared.engine.cfg.name
        )
    }
}

/// One batch on its way through the model, held by the thread that runs it. Its matrix is
/// exported through the buffer protocol (`numpy.asarray(batch)`: float32, `(padded, width)`,
/// no copy); the matrix is never written or freed while the batch object lives.
#[pyclass(module = "system0._core", name = "EngineBatch", frozen)]
pub struct PyEngineBatch {
    shared: Arc<Shared>,
    gathered: Mutex<Gathered<PyAnswer, Callback>>,
    /// The matrix and its `(height, width)` shape, set once by `open`.
    matrix: OnceLock<(Box<[f32]>, [ffi::Py_ssize_t; 2])>,
    strides: [ffi::Py_ssize_t; 2],
    inline: bool,
    inline_slot: Option<Arc<PySlot>>,
    outputs: Mutex<Option<(Py<PyAny>, Vec<i64>)>>,
}

impl PyEngineBatch {
    fn wrap(
        py: Python<'_>,
        shared: &Arc<Shared>,
        mut g: Gathered<PyAnswer, Callback>,
        inline_slot: Option<Arc<PySlot>>,
    ) -> PyResult<Py<Self>> {
        let width = shared.engine.cfg.width;
        let matrix = OnceLock::new();
        if inline_slot.is_some() {
            let _ = matrix.set(shaped(std::mem::take(&mut g.matrix), width));
        }
        Py::new(
            py,
            PyEngineBatch {
                shared: shared.clone(),
                inline: g.inline,
                gathered: Mutex::new(g),
                matrix,
                strides: [(width * 4) as ffi::Py_ssize_t, 4],
                inline_slot,
                outputs: Mutex::new(None),
            },
        )
    }
}

#[pymethods]
impl PyEngineBatch {
    /// Answer the requests that cannot make their deadline (or were cancelled) and lay out
    /// the rest; the number of rows to run (0: nothing to do). Call with the run lock held.
    fn open(slf: &Bound<'_, Self>) -> PyResult<(usize, u64, usize)> {
        let py = slf.py();
        let me = slf.get();
        if me.matrix.get().is_some() {
            let g = me.gathered.lock();
            return Ok((g.rows(), g.batch_id, g.padded));
        }
        let now = me.shared.now(py)?;
        let width = me.shared.engine.cfg.width;
        let (cbs, n, id, padded, m) = {
            let mut g = me.gathered.lock();
            let cbs = g.open(&me.shared.engine, now);
            let m = shaped(std::mem::take(&mut g.matrix), width);
            (cbs, g.rows(), g.batch_id, g.padded, m)
        };
        let _ = me.matrix.set(m);
        run_callbacks(py, cbs);
        Ok((n, id, padded))
    }

    /// Take the model's outputs (rows >= requests; any dtype, read as float32): False when a
    /// real row holds NaN or infinity (the caller raises `NonFiniteOutput`), else True with
    /// the action of each row computed. `check=False` (a fallback's answer) skips the
    /// finite check.
    #[pyo3(signature = (outputs, check=true))]
    fn set_outputs(
        &self,
        py: Python<'_>,
        outputs: &Bound<'_, PyAny>,
        check: bool,
    ) -> PyResult<bool> {
        let n = self.gathered.lock().rows();
        let arr = as_f32(py, outputs)?;
        let buf = PyBuffer::<f32>::get(&arr)?;
        let shape = buf.shape().to_vec();
        if shape.len() != 2 {
            return Err(PyValueError::new_err(format!(
                "the model returned outputs of shape {shape:?}; return one row per input row, (batch, outputs)"
            )));
        }
        let values = buf.to_vec(py)?;
        let actions = match scan(&values, shape[1], n) {
            Ok(a) => a,
            Err(Refused::NonFinite { .. }) if check => return Ok(false),
            Err(Refused::NonFinite { .. }) => {
                // a fallback's NaN: its actions are still the first max, NaN rows action 0
                values.chunks_exact(shape[1]).take(n).map(|r| {
                    let mut best = 0;
                    for (j, v) in r.iter().enumerate() {
                        if *v > r[best] { best = j; }
                    }
                    best as i64
                }).collect()
            }
            Err(Refused::Shape { rows, cols, need }) => {
                return Err(PyValueError::new_err(format!(
                    "the model returned {rows} rows of {cols} outputs for {need} requests; return one row per input row"
                )))
            }
        };
        *self.outputs.lock() = Some((arr.unbind(), actions));
        Ok(true)
    }

    /// The outputs taken by `set_outputs` (as the results read them), None before.
    #[getter]
    fn outputs(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.outputs.lock().as_ref().map(|(o, _)| o.clone_ref(py))
    }

    /// The actions of the rows, int64 (for the flight recorder).
    fn actions(&self) -> Vec<i64> {
        self.outputs
            .lock()
            .as_ref()
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    }

    /// Answer every request from the outputs taken by `set_outputs` (`reason`: the fallback
    /// answered). Times are on the engine clock.
    #[pyo3(signature = (reason, start_ns, model_ns, end_ns, joules=None))]
    fn finish(
        &self,
        py: Python<'_>,
        reason: Option<String>,
        start_ns: u64,
        model_ns: u64,
        end_ns: u64,
        joules: Option<f64>,
    ) -> PyResult<()> {
        let Some((outputs, actions)) = self.outputs.lock().take() else {
            return Err(CoreError::Internal("finish() before set_outputs()".into()).into());
        };
        let (rows, batch_id) = {
            let g = self.gathered.lock();
            (g.rows(), g.batch_id)
        };
        let out = Arc::new(BatchOut {
            outputs,
            actions,
            fallback: reason.is_some(),
            reason: reason.as_deref().map(|r| PyString::new(py, r).unbind()),
            batch_size: rows,
            batch_id,
            model_ns,
        });
        let facts = BatchFacts {
            reason,
            joules,
            ..Default::default()
        };
        let cbs = self.gathered.lock().finish(
            &self.shared.engine,
            start_ns,
            end_ns,
            model_ns,
            facts,
            |row, wait, total| PyAnswer::Ok {
                out: out.clone(),
                row,
                wait,
                total,
                built: None,
            },
        );
        run_callbacks(py, cbs);
        Ok(())
    }

    /// The model failed and there is no fallback: every request raises `exc`.
    fn fail(&self, py: Python<'_>, exc: &Bound<'_, PyAny>) -> PyResult<()> {
        let message = format!(
            "{}: {}",
            exc.get_type().name().map_or("?".into(), |n| n.to_string()),
            exc.str().map_or("?".into(), |s| s.to_string())
        );
        let cbs = self
            .gathered
            .lock()
            .fail(&self.shared.engine, &message, || {
                PyAnswer::Raised(exc.clone().unbind())
            });
        run_callbacks(py, cbs);
        Ok(())
    }

    /// The inline call's answer (its result, or its error raised).
    fn inline_result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let Some(slot) = &self.inline_slot else {
            return Err(PyValueError::new_err("not an inline batch"));
        };
        let f = PyEngineFuture {
            slot: slot.clone(),
            shared: self.shared.clone(),
        };
        f.outcome(py)?
    }

    #[getter]
    fn rows(&self) -> usize {
        self.gathered.lock().rows()
    }

    #[getter]
    fn padded(&self) -> usize {
        self.gathered.lock().padded
    }

    #[getter]
    fn batch_id(&self) -> u64 {
        self.gathered.lock().batch_id
    }

    #[getter]
    fn inline(&self) -> bool {
        self.inline
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("a null view was passed"));
        }
        let me = slf.get();
        let Some((m, shape)) = me.matrix.get() else {
            return Err(PyBufferError::new_err(
                "the batch is not open yet; call open() first",
            ));
        };
        // SAFETY: `view` is a valid Py_buffer to fill (the caller's); the matrix lives in a
        // OnceLock of the exporter, never mutated or moved after it is set, and `obj` keeps
        // the exporter alive while the view exists; CPython never writes through shape.
        unsafe {
            (*view).obj = slf.clone().into_any().into_ptr();
            (*view).buf = m.as_ptr() as *mut c_void;
            (*view).len = (m.len() * 4) as ffi::Py_ssize_t;
            (*view).readonly = 0;
            (*view).itemsize = 4;
            (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
                c"f".as_ptr() as *mut _
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = 2;
            let shape = shape.as_ptr() as *mut ffi::Py_ssize_t;
            (*view).shape = if flags & ffi::PyBUF_ND == ffi::PyBUF_ND {
                shape
            } else {
                std::ptr::null_mut()
            };
            (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
                me.strides.as_ptr() as *mut _
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

impl Drop for PyEngineBatch {
    /// A batch dropped unanswered (its runner died mid-way) answers its requests with an
    /// internal error rather than leaving them hanging.
    fn drop(&mut self) {
        let g = self.gathered.get_mut();
        if g.rows() == 0 {
            return;
        }
        let msg = format!(
            "{}: the batch was dropped before it was answered",
            self.shared.engine.cfg.name
        );
        let cbs = g.fail(&self.shared.engine, &msg, || {
            PyAnswer::Error(CoreError::Internal(msg.clone()))
        });
        Python::attach(|py| run_callbacks(py, cbs));
    }
}

/// The matrix with its shape, as the buffer export describes it.
fn shaped(m: Vec<f32>, width: usize) -> (Box<[f32]>, [ffi::Py_ssize_t; 2]) {
    let h = m.len() / width;
    (
        m.into_boxed_slice(),
        [h as ffi::Py_ssize_t, width as ffi::Py_ssize_t],
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEngineCore>()?;
    m.add_class::<PyEngineFuture>()?;
    m.add_class::<PyEngineBatch>()?;
    Ok(())
}
