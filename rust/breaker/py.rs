//! Python bindings of the circuit breaker. `call` and the decorator object `GuardedCall` run
//! the guarded function from Rust, so a call through a closed breaker costs one state load, a
//! window update and the Python call itself. Transitions are logged to the standard logger
//! "system0.breaker" and passed to the optional `on_state_change(name, old, new)` callback.

use pyo3::exceptions::PyException;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::PyTraverseError;

use super::py_stats::PyBreakerStats;
use super::{Breaker, Config, Outcome, Permit, State, Transition};
use crate::error::CoreError;

fn secs_to_ns(owner: &str, what: &str, v: f64, allow_zero: bool) -> PyResult<u64> {
    if v.is_nan() || v < 0.0 || (!allow_zero && v == 0.0) || v.is_infinite() {
        return Err(CoreError::InvalidArgument(format!(
            "circuit breaker '{owner}': {what} must be a finite number of seconds {}, got {v}",
            if allow_zero { ">= 0" } else { "> 0" }
        ))
        .into());
    }
    Ok((v * 1e9) as u64)
}

static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A permit for one guarded call, used by the async wrapper and context managers.
#[pyclass(module = "system0._core", name = "BreakerPermit", frozen)]
pub struct PyPermit {
    p: Permit,
}

#[pyclass(module = "system0._core", name = "CircuitBreaker", subclass, frozen)]
pub struct PyCircuitBreaker {
    b: Breaker,
    failure_types: Py<PyAny>,
    ignore_types: Option<Py<PyAny>>,
    is_failure: Option<Py<PyAny>>,
    fallback: Option<Py<PyAny>>,
    on_state_change: Option<Py<PyAny>>,
    clock: Option<Py<PyAny>>,
}

impl PyCircuitBreaker {
    #[inline]
    fn now(&self, py: Python<'_>) -> PyResult<u64> {
        match &self.clock {
            None => Ok(crate::clock::now_ns()),
            Some(c) => c.call0(py)?.extract::<u64>(py),
        }
    }

    fn emit(&self, py: Python<'_>, t: Option<Transition>) {
        let Some(t) = t else { return };
        let name = &self.b.config().name;
        let level = if t.to == State::Open { 30 } else { 20 }; // WARNING / INFO
        let log = LOGGER.get_or_try_init(py, || {
            py.import("logging")?
                .call_method1("getLogger", ("system0.breaker",))
                .map(Bound::unbind)
        });
        match log {
            Ok(l) => {
                let msg = format!(
                    "circuit breaker '{name}': {} -> {}: {}",
                    t.from.as_str(),
                    t.to.as_str(),
                    t.reason
                );
                if let Err(e) = l.call_method1(py, "log", (level, msg)) {
                    e.write_unraisable(py, None);
                }
            }
            Err(e) => e.write_unraisable(py, None),
        }
        if let Some(cb) = &self.on_state_change {
            if let Err(e) = cb.call1(py, (name, t.from.as_str(), t.to.as_str())) {
                e.write_unraisable(py, Some(cb.bind(py)));
            }
        }
    }

    fn open_error(&self, retry_after_s: f64) -> PyErr {
        CoreError::CircuitOpen {
            message: format!(
                "circuit breaker '{}' is {}: the call was not attempted; retry after {:.3} s \
                 (the guarded dependency has been failing)",
                self.b.config().name,
                self.b.state().as_str(),
                retry_after_s
            ),
            retry_after_s,
        }
        .into()
    }

    fn classify(&self, py: Python<'_>, e: &PyErr) -> Outcome {
        let v = e.value(py);
        if !v.is_instance_of::<PyException>() {
            return Outcome::Ignored; // CancelledError, KeyboardInterrupt, SystemExit
        }
        if let Some(ig) = &self.ignore_types {
            if v.is_instance(ig.bind(py)).unwrap_or(false) {
                return Outcome::Ignored;
            }
        }
        if !v.is_instance(self.failure_types.bind(py)).unwrap_or(true) {
            return Outcome::Success;
        }
        match &self.is_failure {
            None => Outcome::Failure,
            Some(pred) => match pred.call1(py, (v,)).and_then(|r| r.is_truthy(py)) {
                Ok(true) => Outcome::Failure,
                Ok(false) => Outcome::Success,
                Err(pe) => {
                    pe.write_unraisable(py, Some(pred.bind(py)));
                    Outcome::Failure
                }
            },
        }
    }

    /// The whole guarded call: acquire, run, record, fallback.
    #[inline]
    pub fn guarded(
        &self,
        py: Python<'_>,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let now = self.now(py)?;
        let mut tr = None;
        let permit = self.b.acquire(now, &mut tr);
        self.emit(py, tr);
        let p = match permit {
            Ok(p) => p,
            Err(retry) => {
                let err = self.open_error(retry);
                return match &self.fallback {
                    Some(fb) => self.call_fallback(py, fb, err, args, kwargs),
                    None => Err(err),
                };
            }
        };
        let r = func.call(args, kwargs);
        let end = self.now(py)?;
        match r {
            Ok(v) => {
                let t = self.b.record(p, Outcome::Success, end);
                self.emit(py, t);
                Ok(v.unbind())
            }
            Err(e) => {
                let oc = self.classify(py, &e);
                let t = self.b.record(p, oc, end);
                self.emit(py, t);
                match (&self.fallback, oc) {
                    (Some(fb), Outcome::Failure) => self.call_fallback(py, fb, e, args, kwargs),
                    _ => Err(e),
                }
            }
        }
    }

    fn call_fallback(
        &self,
        py: Python<'_>,
        fb: &Py<PyAny>,
        err: PyErr,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let mut all = vec![err.into_value(py).into_any()];
        all.extend(args.iter().map(Bound::unbind));
        let t = PyTuple::new(py, all)?;
        Ok(fb.bind(py).call(t, kwargs)?.unbind())
    }
}

#[pymethods]
impl PyCircuitBreaker {
    #[new]
    #[pyo3(signature = (
        name = None, *, failure_rate_threshold = 0.5, minimum_calls = 10, window_calls = None,
        window = None, window_buckets = 10, slow_call_duration = None,
        slow_call_rate_threshold = 1.0, wait = 30.0, max_wait = 300.0, backoff = 2.0,
        jitter = 0.1, half_open_permits = 1, max_half_open = 60.0, seed = None,
        failure_exceptions = None, ignore_exceptions = None, is_failure = None, fallback = None,
        on_state_change = None, clock = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: Option<String>,
        failure_rate_threshold: f64,
        minimum_calls: i64,
        window_calls: Option<i64>,
        window: Option<f64>,
        window_buckets: i64,
        slow_call_duration: Option<f64>,
        slow_call_rate_threshold: f64,
        wait: f64,
        max_wait: f64,
        backoff: f64,
        jitter: f64,
        half_open_permits: i64,
        max_half_open: f64,
        seed: Option<u64>,
        failure_exceptions: Option<Py<PyAny>>,
        ignore_exceptions: Option<Py<PyAny>>,
        is_failure: Option<Py<PyAny>>,
        fallback: Option<Py<PyAny>>,
        on_state_change: Option<Py<PyAny>>,
        clock: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let name = name.unwrap_or_else(|| "unnamed".to_owned());
        let bad = |m: String| -> PyErr {
            CoreError::InvalidArgument(format!("circuit breaker '{name}': {m}")).into()
        };
        if minimum_calls < 1 {
            return Err(bad(format!(
                "minimum_calls must be >= 1, got {minimum_calls}"
            )));
        }
        let window_calls = match (window, window_calls) {
            (Some(_), _) => None,
            (None, Some(n)) if n >= 1 => Some(n as usize),
            (None, Some(n)) => return Err(bad(format!("window_calls must be >= 1, got {n}"))),
            (None, None) => Some(100),
        };
        if !(1..=1000).contains(&window_buckets) {
            return Err(bad(format!(
                "window_buckets must be in 1..=1000, got {window_buckets}"
            )));
        }
        if !(1..(1 << 20)).contains(&half_open_permits) {
            return Err(bad(format!(
                "half_open_permits must be >= 1, got {half_open_permits}"
            )));
        }
        let check_types = |v: &Option<Py<PyAny>>, what: &str| -> PyResult<()> {
            if let Some(t) = v {
                let t = t.bind(py);
                let ok = t.is_instance_of::<PyType>()
                    || t.cast::<PyTuple>()
                        .is_ok_and(|tu| tu.iter().all(|x| x.is_instance_of::<PyType>()));
                if !ok {
                    return Err(bad(format!(
                        "{what} must be an exception class or a tuple of them"
                    )));
                }
            }
            Ok(())
        };
        check_types(&failure_exceptions, "failure_exceptions")?;
        check_types(&ignore_exceptions, "ignore_exceptions")?;
        for (cb, what) in [
            (&is_failure, "is_failure"),
            (&fallback, "fallback"),
            (&on_state_change, "on_state_change"),
            (&clock, "clock"),
        ] {
            if cb.as_ref().is_some_and(|c| !c.bind(py).is_callable()) {
                return Err(bad(format!("{what} must be callable")));
            }
        }
        let seed = match seed {
            Some(s) => s,
            None => crate::clock::unix_now_ns() ^ (std::process::id() as u64) << 32,
        };
        let cfg = Config {
            window_calls,
            window_ns: match window {
                Some(w) => secs_to_ns(&name, "window", w, false)?,
                None => 0,
            },
            window_buckets: window_buckets as usize,
            minimum_calls: minimum_calls as u64,
            failure_rate: failure_rate_threshold,
            slow_call_ns: match slow_call_duration {
                Some(s) => secs_to_ns(&name, "slow_call_duration", s, false)?,
                None => 0,
            },
            slow_call_rate: slow_call_rate_threshold,
            wait_ns: secs_to_ns(&name, "wait", wait, true)?,
            max_wait_ns: secs_to_ns(&name, "max_wait", max_wait, true)?,
            backoff,
            jitter,
            half_open_permits: half_open_permits as u32,
            max_half_open_ns: secs_to_ns(&name, "max_half_open", max_half_open, false)?,
            seed,
            name,
        };
        let failure_types = match failure_exceptions {
            Some(t) => t,
            None => py.get_type::<PyException>().into_any().unbind(),
        };
        Ok(PyCircuitBreaker {
            b: Breaker::new(cfg)?,
            failure_types,
            ignore_types: ignore_exceptions,
            is_failure,
            fallback,
            on_state_change,
            clock,
        })
    }

    #[getter]
    fn name(&self) -> &str {
        &self.b.config().name
    }

    /// Callbacks often refer back to the breaker's owner: let the cycle collector see them.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.failure_types)?;
        visit.call(&self.ignore_types)?;
        visit.call(&self.is_failure)?;
        visit.call(&self.fallback)?;
        visit.call(&self.on_state_change)?;
        visit.call(&self.clock)
    }

    /// "closed", "open" or "half_open" (time-driven transitions are applied first).
    #[getter]
    fn state(&self, py: Python<'_>) -> PyResult<&'static str> {
        let now = self.now(py)?;
        let t = self.b.poll(now);
        self.emit(py, t);
        Ok(self.b.state().as_str())
    }

    /// Call `func(*args, **kwargs)` through the breaker.
    #[pyo3(signature = (func, *args, **kwargs))]
    fn call(
        &self,
        py: Python<'_>,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        self.guarded(py, func, args, kwargs)
    }

    /// Ask for a permit (raises CircuitOpen); pair with `_record`.
    fn _acquire(&self, py: Python<'_>) -> PyResult<PyPermit> {
        let now = self.now(py)?;
        let mut tr = None;
        let r = self.b.acquire(now, &mut tr);
        self.emit(py, tr);
        match r {
            Ok(p) => Ok(PyPermit { p }),
            Err(retry) => Err(self.open_error(retry)),
        }
    }

    /// Record how a permitted call ended (`exc` None = success); returns "success",
    /// "failure" or "ignored" as classified.
    #[pyo3(signature = (permit, exc = None))]
    fn _record(
        &self,
        py: Python<'_>,
        permit: &PyPermit,
        exc: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<&'static str> {
        let oc = match exc {
            None => Outcome::Success,
            Some(e) => self.classify(py, &PyErr::from_value(e.clone())),
        };
        let now = self.now(py)?;
        let t = self.b.record(permit.p, oc, now);
        self.emit(py, t);
        Ok(match oc {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Ignored => "ignored",
        })
    }

    #[getter]
    fn _fallback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.fallback.as_ref().map(|f| f.clone_ref(py))
    }

    /// Operator override: open now (the open wait and backoff apply).
    fn force_open(&self, py: Python<'_>) -> PyResult<()> {
        let now = self.now(py)?;
        let t = self.b.force(State::Open, now);
        self.emit(py, t);
        Ok(())
    }

    /// Operator override: close with a fresh window and the backoff reset.
    fn reset(&self, py: Python<'_>) -> PyResult<()> {
        let now = self.now(py)?;
        let t = self.b.force(State::Closed, now);
        self.emit(py, t);
        Ok(())
    }

    fn _stats(&self, py: Python<'_>) -> PyResult<PyBreakerStats> {
        let now = self.now(py)?;
        let t = self.b.poll(now);
        self.emit(py, t);
        Ok(PyBreakerStats::new(
            &self.b.config().name,
            &self.b.stats(now),
        ))
    }

    fn __repr__(&self) -> String {
        format!(
            "CircuitBreaker(name={:?}, state={:?})",
            self.b.config().name,
            self.b.state().as_str()
        )
    }
}

/// A function guarded by a breaker (what `@breaker` returns for a plain function).
#[pyclass(module = "system0._core", name = "GuardedCall", dict, frozen)]
pub struct PyGuardedCall {
    breaker: Py<PyCircuitBreaker>,
    func: Py<PyAny>,
}

#[pymethods]
impl PyGuardedCall {
    #[new]
    fn new(breaker: Py<PyCircuitBreaker>, func: Py<PyAny>) -> Self {
        PyGuardedCall { breaker, func }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.breaker)?;
        visit.call(&self.func)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        self.breaker
            .get()
            .guarded(py, self.func.bind(py), args, kwargs)
    }

    /// Bind like a function, so `@breaker` works on methods.
    fn __get__(
        slf: Bound<'_, Self>,
        obj: Option<Bound<'_, PyAny>>,
        _owner: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        match obj {
            None => Ok(slf.into_any().unbind()),
            Some(o) => Ok(py
                .import("types")?
                .getattr("MethodType")?
                .call1((slf, o))?
                .unbind()),
        }
    }

    #[getter]
    fn breaker(&self, py: Python<'_>) -> Py<PyCircuitBreaker> {
        self.breaker.clone_ref(py)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCircuitBreaker>()?;
    m.add_class::<PyGuardedCall>()?;
    m.add_class::<PyPermit>()?;
    m.add_class::<PyBreakerStats>()?;
    Ok(())
}
