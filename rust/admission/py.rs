//! Python bindings of the token bucket and the concurrency limiter. Blocking waits release
//! the GIL; asyncio waiters of the limiter are woken by `release()` through the same waker
//! list as the queue's.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

use super::py_stats::{PyBucketStats, PyLimiterStats};
use super::{Limiter, TokenBucket};
use crate::error::CoreError;
use crate::gil::{parse_timeout, wait_in_slices, Slice};
use crate::queue::py_waiters::AsyncWaiters;

fn max_wait_ns(owner: impl FnOnce() -> String, timeout: Option<f64>) -> PyResult<u64> {
    Ok(match parse_timeout(owner, timeout)? {
        None => u64::MAX,
        Some(_) => (timeout.unwrap_or(0.0) * 1e9) as u64,
    })
}

/// A GCRA token bucket: `rate` tokens per second, at most `burst` at once.
#[pyclass(module = "system0._core", name = "TokenBucket", subclass, frozen)]
pub struct PyTokenBucket {
    b: TokenBucket,
}

impl PyTokenBucket {
    fn overloaded(&self, n: u64, wait_ns: u64) -> PyErr {
        let retry = wait_ns as f64 / 1e9;
        CoreError::Overloaded {
            message: format!(
                "token bucket '{}' ({}/s, burst {}): {n} token(s) not available in time; retry \
                 after {retry:.6} s",
                self.b.name, self.b.rate, self.b.burst
            ),
            depth: 0,
            retry_after_s: retry,
        }
        .into()
    }
}

#[pymethods]
impl PyTokenBucket {
    #[new]
    #[pyo3(signature = (rate, burst = None, *, name = None))]
    fn new(rate: f64, burst: Option<i64>, name: Option<String>) -> PyResult<Self> {
        let name = name.unwrap_or_else(|| "unnamed".to_owned());
        let burst = burst.unwrap_or_else(|| {
            if rate.is_finite() {
                rate.ceil().max(1.0) as i64
            } else {
                1
            }
        });
        Ok(PyTokenBucket {
            b: TokenBucket::new(&name, rate, burst)?,
        })
    }

    #[getter]
    fn name(&self) -> &str {
        &self.b.name
    }
    #[getter]
    fn rate(&self) -> f64 {
        self.b.rate
    }
    #[getter]
    fn burst(&self) -> u64 {
        self.b.burst
    }

    /// Tokens available now.
    fn available(&self) -> f64 {
        self.b.available(crate::clock::now_ns())
    }

    /// Take `n` tokens if they are there now; never waits.
    #[pyo3(signature = (n = 1))]
    fn try_acquire(&self, n: u64) -> PyResult<bool> {
        Ok(self.b.reserve(n, crate::clock::now_ns(), 0)?.is_ok())
    }

    /// Take `n` tokens, waiting (GIL released) up to `timeout` seconds for them; raises
    /// Overloaded with a retry-after hint when they would come later than that.
    #[pyo3(signature = (n = 1, timeout = None))]
    fn acquire(&self, py: Python<'_>, n: u64, timeout: Option<f64>) -> PyResult<()> {
        let max = max_wait_ns(|| format!("token bucket '{}'", self.b.name), timeout)?;
        match self.b.reserve(n, crate::clock::now_ns(), max)? {
            Ok(0) => Ok(()),
            Ok(w) => {
                // The tokens are reserved; sleep until they are due, in slices so that Ctrl-C
                // is honoured (an interrupted caller has still spent them).
                let due = Instant::now() + Duration::from_nanos(w);
                let sleep = |(), end: Instant| {
                    std::thread::sleep(end.saturating_duration_since(Instant::now()));
                    Slice::<(), ()>::Again(())
                };
                // Only `due` ends this wait (as `Err(())`, "until passed"): that is the plan.
                let _slept_until_due = wait_in_slices(py, Some(due), (), sleep, |_| true)?;
                Ok(())
            }
            Err(w) => Err(self.overloaded(n, w)),
        }
    }

    /// For `aacquire`: reserve `n` tokens within `timeout`, returning the seconds to sleep.
    #[pyo3(signature = (n = 1, timeout = None))]
    fn _reserve(&self, n: u64, timeout: Option<f64>) -> PyResult<f64> {
        let max = max_wait_ns(|| format!("token bucket '{}'", self.b.name), timeout)?;
        match self.b.reserve(n, crate::clock::now_ns(), max)? {
            Ok(w) => Ok(w as f64 / 1e9),
            Err(w) => Err(self.overloaded(n, w)),
        }
    }

    fn _stats(&self) -> PyBucketStats {
        PyBucketStats {
            name: self.b.name.clone(),
            acquired: self.b.acquired.load(Relaxed),
            rejected: self.b.rejected.load(Relaxed),
            available: self.available(),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "TokenBucket(name={:?}, rate={}, burst={})",
            self.b.name, self.b.rate, self.b.burst
        )
    }
}

/// At most `limit` holders at once.
#[pyclass(
    module = "system0._core",
    name = "ConcurrencyLimiter",
    subclass,
    frozen
)]
pub struct PyConcurrencyLimiter {
    l: Arc<Limiter>,
    waiters: AsyncWaiters,
}

impl PyConcurrencyLimiter {
    fn overloaded(&self, timeout: Option<f64>) -> PyErr {
        CoreError::Overloaded {
            message: format!(
                "concurrency limiter '{}': all {} permits in use{}; retry later or raise the limit",
                self.l.name,
                self.l.limit,
                match timeout {
                    Some(t) if t > 0.0 => format!(" for {t} s"),
                    _ => String::new(),
                }
            ),
            depth: self.l.in_use(),
            retry_after_s: 1e-3,
        }
        .into()
    }
}

#[pymethods]
impl PyConcurrencyLimiter {
    #[new]
    #[pyo3(signature = (limit, *, name = None))]
    fn new(limit: i64, name: Option<String>) -> PyResult<Self> {
        let name = name.unwrap_or_else(|| "unnamed".to_owned());
        Ok(PyConcurrencyLimiter {
            l: Arc::new(Limiter::new(&name, limit)?),
            waiters: AsyncWaiters::default(),
        })
    }

    #[getter]
    fn name(&self) -> &str {
        &self.l.name
    }
    #[getter]
    fn limit(&self) -> usize {
        self.l.limit
    }
    #[getter]
    fn in_use(&self) -> usize {
        self.l.in_use()
    }

    /// Take a permit if one is free now; never waits.
    fn try_acquire(&self) -> bool {
        let ok = self.l.try_acquire();
        if !ok {
            self.l.count_rejected();
        }
        ok
    }

    /// Take a permit, waiting (GIL released) up to `timeout` seconds; raises Overloaded.
    #[pyo3(signature = (timeout = None))]
    fn acquire(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let until = parse_timeout(|| format!("concurrency limiter '{}'", self.l.name), timeout)?;
        if self.l.try_acquire() {
            return Ok(());
        }
        let l = &self.l;
        let step = |(), end| match l.acquire(Some(end)) {
            true => Slice::Done(()),
            false => Slice::Again(()),
        };
        match wait_in_slices(py, until, (), step, |_| true)? {
            Ok(()) => Ok(()),
            Err(()) => {
                self.l.count_rejected();
                Err(self.overloaded(timeout))
            }
        }
    }

    /// Give a permit back; wakes one waiter (thread or task).
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        self.l.release()?;
        self.waiters.wake(py, 1);
        Ok(())
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<()> {
        self.acquire(py, None)
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.release(py)?;
        Ok(false)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.waiters.traverse(&visit)
    }

    /// For `aacquire`: take a permit without waiting (no refusal counted).
    fn _try_take(&self) -> bool {
        self.l.try_acquire()
    }
    fn _count_rejected(&self) {
        self.l.count_rejected();
    }
    /// Register an asyncio waker; False when a permit is free (retry instead).
    fn _add_waiter(&self, cb: Py<PyAny>) -> bool {
        if self.l.in_use() < self.l.limit {
            return false;
        }
        self.waiters.add(cb);
        true
    }
    fn _remove_waiter(&self, cb: &Bound<'_, PyAny>) -> bool {
        self.waiters.remove(cb)
    }
    fn _wake(&self, py: Python<'_>, n: usize) {
        self.waiters.wake(py, n);
    }

    fn _stats(&self) -> PyLimiterStats {
        PyLimiterStats {
            name: self.l.name.clone(),
            limit: self.l.limit,
            in_use: self.l.in_use(),
            peak_in_use: self.l.peak.load(Relaxed),
            acquired: self.l.acquired.load(Relaxed),
            rejected: self.l.rejected.load(Relaxed),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "ConcurrencyLimiter(name={:?}, limit={}, in_use={})",
            self.l.name,
            self.l.limit,
            self.l.in_use()
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTokenBucket>()?;
    m.add_class::<PyConcurrencyLimiter>()?;
    m.add_class::<PyLimiterStats>()?;
    m.add_class::<PyBucketStats>()?;
    Ok(())
}
