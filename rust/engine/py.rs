//! Python binding of the engine core: `EngineCore` (admission, queue, gathering; here),
//! `EngineFuture` (`py/future.rs`:
//! a `concurrent.futures.Future`-compatible answer slot), and `EngineBatch` (`py/batch.rs`: its
//! matrix as a zero-copy float32 buffer, the model's outputs read back, the answers settled).
//!
//! The Python facade (`system0.interfaces.inference_engine`) keeps the model call, the
//! breaker, the fallback, energy readings and the flight recorder: everything that is Python
//! anyway, once per batch. Per request, Python is entered only by the caller itself (its
//! `submit` call and its `result()`), where it holds the GIL regardless.
//!
//! Locking rule: no Python code runs while a slot's lock is held (results are built outside
//! it), so a thread holding the GIL never waits on a thread that waits for the GIL.

mod batch;
mod future;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use self::batch::PyEngineBatch;
use self::future::PyEngineFuture;
use super::batch::Gathered;
use super::core::{Config, Engine, Next};
use super::metrics::Outcome;
use super::slot::{Answer, Slot};
use super::spans::Parent;
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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEngineCore>()?;
    m.add_class::<PyEngineFuture>()?;
    m.add_class::<PyEngineBatch>()?;
    Ok(())
}
