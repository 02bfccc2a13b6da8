//! Python bindings of the bounded queue: items are `Py<PyAny>`. Blocking waits run with the
//! GIL released (`crate::gil::without_gil`) and touch no Python object, only move pointers;
//! items the queue discards are handed back and dropped here, with the GIL held. Every
//! blocking wait goes through `crate::gil::wait_in_slices`, so Ctrl-C interrupts it.

use std::sync::Arc;

use pyo3::exceptions::PyStopIteration;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::PyList;
use pyo3::PyTraverseError;

use super::py_stats::PyQueueStats;
use super::py_waiters::AsyncWaiters;
use super::{Config, Get, Put, Queue};
use crate::error::{CoreError, CoreResult};
use crate::gil::{parse_timeout, wait_in_slices, without_gil, Slice};

type Item = Py<PyAny>;

/// A bounded MPMC queue of Python objects with an overflow policy (see
/// `system0.core.error_handling.BoundedQueue`).
#[pyclass(module = "system0._core", name = "BoundedQueue", subclass, frozen)]
pub struct PyBoundedQueue {
    q: Arc<Queue<Item>>,
    getters: AsyncWaiters,
    putters: AsyncWaiters,
}

impl PyBoundedQueue {
    fn owner(&self) -> String {
        format!("queue '{}'", self.q.config().name)
    }

    fn deadline(&self, ttl: Option<f64>, deadline_ns: Option<u64>) -> CoreResult<u64> {
        match (ttl, deadline_ns) {
            (Some(_), Some(_)) => Err(CoreError::InvalidArgument(format!(
                "{}: give either ttl (seconds from now) or deadline_ns (system0 clock), not both",
                self.owner()
            ))),
            (Some(t), None) if t.is_nan() || t <= 0.0 => Err(CoreError::InvalidArgument(format!(
                "{}: ttl must be a positive number of seconds, got {t}",
                self.owner()
            ))),
            (Some(t), None) => Ok(crate::clock::now_ns()
                .saturating_add((t * 1e9) as u64)
                .max(1)),
            (None, Some(d)) => Ok(d.max(1)),
            (None, None) => Ok(0),
        }
    }

    fn expired_error(&self) -> CoreError {
        CoreError::DeadlineExceeded(format!(
            "{}: the item's deadline had already passed when it was put; it was not enqueued \
             (counted in rejected)",
            self.owner()
        ))
    }

    /// Map a get outcome to the Python result, `empty()` standing for an empty queue. Shed
    /// and expired items (`discard`) freed slots too: that many async producers are woken as
    /// well, after the items are dropped here, with the GIL held.
    fn deliver(
        &self,
        py: Python<'_>,
        r: Get<Item>,
        discard: Vec<Item>,
        empty: impl FnOnce() -> PyResult<Item>,
    ) -> PyResult<Item> {
        let freed = discard.len();
        drop(discard);
        match r {
            Get::Item(x) => {
                self.putters.wake(py, 1 + freed);
                Ok(x)
            }
            Get::Empty => {
                self.putters.wake(py, freed);
                empty()
            }
            Get::Closed => Err(self.q.closed_error().into()),
        }
    }

    /// Map a put outcome to the Python result; `true` = accepted.
    #[inline]
    fn finish_put(
        &self,
        py: Python<'_>,
        r: Put<Item>,
        what: impl FnOnce() -> String,
    ) -> PyResult<bool> {
        match r {
            Put::Accepted => {
                self.getters.wake(py, 1);
                Ok(true)
            }
            Put::Displaced(old) => {
                drop(old);
                self.getters.wake(py, 1);
                Ok(true)
            }
            Put::DroppedNewest(_) => Ok(false),
            Put::Full(_) => Err(self.q.overloaded(&what()).into()),
            Put::Closed(_) => Err(self.q.closed_error().into()),
            Put::Expired(_) => Err(self.expired_error().into()),
        }
    }

    fn timeout_error(&self, timeout: Option<f64>) -> CoreError {
        CoreError::DeadlineExceeded(format!(
            "{}: no item arrived within {:.6} s; the producers are slower than this timeout",
            self.owner(),
            timeout.unwrap_or(0.0)
        ))
    }
}

#[pymethods]
impl PyBoundedQueue {
    #[new]
    #[pyo3(signature = (capacity, policy = "block", *, name = None, sojourn_target = None, sojourn_interval = 0.0))]
    fn new(
        capacity: i64,
        policy: &str,
        name: Option<String>,
        sojourn_target: Option<f64>,
        sojourn_interval: f64,
    ) -> PyResult<Self> {
        let name = name.unwrap_or_else(|| "unnamed".to_owned());
        let mut cfg = Config::new(&name, capacity, policy)?;
        if let Some(t) = sojourn_target {
            if t.is_nan() || t <= 0.0 || t.is_infinite() {
                return Err(CoreError::InvalidArgument(format!(
                    "queue '{name}': sojourn_target must be a positive finite number of seconds \
                     (or None to disable shedding), got {t}"
                ))
                .into());
            }
            cfg.sojourn_target_ns = ((t * 1e9) as u64).max(1);
        }
        if sojourn_interval.is_nan() || sojourn_interval < 0.0 || sojourn_interval.is_infinite() {
            return Err(CoreError::InvalidArgument(format!(
                "queue '{name}': sojourn_interval must be a finite number of seconds >= 0, got \
                 {sojourn_interval}"
            ))
            .into());
        }
        cfg.sojourn_interval_ns = (sojourn_interval * 1e9) as u64;
        Ok(PyBoundedQueue {
            q: Arc::new(Queue::new(cfg)?),
            getters: AsyncWaiters::default(),
            putters: AsyncWaiters::default(),
        })
    }

    #[getter]
    fn name(&self) -> &str {
        &self.q.config().name
    }
    #[getter]
    fn capacity(&self) -> usize {
        self.q.config().capacity
    }
    #[getter]
    fn policy(&self) -> &'static str {
        self.q.config().policy.as_str()
    }
    #[getter]
    fn closed(&self) -> bool {
        self.q.is_closed()
    }
    fn __len__(&self) -> usize {
        self.q.len()
    }
    fn __repr__(&self) -> String {
        let c = self.q.config();
        format!(
            "BoundedQueue(name={:?}, capacity={}, policy={:?}, depth={}, closed={})",
            c.name,
            c.capacity,
            c.policy.as_str(),
            self.q.len(),
            self.q.is_closed()
        )
    }

    /// Put one item. Returns True when it was enqueued, False when DROP_NEWEST dropped it.
    #[pyo3(signature = (item, timeout = None, *, ttl = None, deadline_ns = None))]
    fn put(
        &self,
        py: Python<'_>,
        item: Item,
        timeout: Option<f64>,
        ttl: Option<f64>,
        deadline_ns: Option<u64>,
    ) -> PyResult<bool> {
        let until = parse_timeout(|| self.owner(), timeout)?;
        let dl = self.deadline(ttl, deadline_ns)?;
        let r = match self.q.put_nowait(item, dl, crate::clock::now_ns()) {
            Put::Full(item) if self.q.config().policy == super::Policy::Block => {
                let q = &self.q;
                let step = |item, end| match q.put(item, dl, Some(end)) {
                    Put::Full(back) => Slice::Again(back),
                    other => Slice::Done(other),
                };
                match wait_in_slices(py, until, item, step, |_| true)? {
                    Ok(done) => done,
                    Err(item) => {
                        self.q.count_rejected();
                        Put::Full(item)
                    }
                }
            }
            other => other,
        };
        // The message is built only when the put is refused.
        self.finish_put(py, r, || match (self.q.config().policy, timeout) {
            (super::Policy::Block, Some(t)) => format!("put timed out after {t} s"),
            (super::Policy::Block, None) => "put refused".to_owned(),
            _ => "put refused".to_owned(),
        })
    }

    /// Non-blocking put; same as `put(item, timeout=0)`.
    #[pyo3(signature = (item, *, ttl = None, deadline_ns = None))]
    fn put_nowait(
        &self,
        py: Python<'_>,
        item: Item,
        ttl: Option<f64>,
        deadline_ns: Option<u64>,
    ) -> PyResult<bool> {
        self.put(py, item, Some(0.0), ttl, deadline_ns)
    }

    /// For `aput`: True accepted, False dropped (DROP_NEWEST), None full (BLOCK: wait).
    #[pyo3(signature = (item, ttl = None, deadline_ns = None))]
    fn _try_put(
        &self,
        py: Python<'_>,
        item: Item,
        ttl: Option<f64>,
        deadline_ns: Option<u64>,
    ) -> PyResult<Option<bool>> {
        let dl = self.deadline(ttl, deadline_ns)?;
        match self.q.put_nowait(item, dl, crate::clock::now_ns()) {
            Put::Full(_) if self.q.config().policy == super::Policy::Block => Ok(None),
            r => self
                .finish_put(py, r, || "non-blocking put refused".to_owned())
                .map(Some),
        }
    }

    /// Put every item of `items` in order; returns how many were enqueued. Raises only when
    /// none was: Overloaded (REJECT full, or BLOCK timeout), Closed, or DeadlineExceeded.
    #[pyo3(signature = (items, timeout = None, *, ttl = None, deadline_ns = None))]
    fn put_many(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyAny>,
        timeout: Option<f64>,
        ttl: Option<f64>,
        deadline_ns: Option<u64>,
    ) -> PyResult<usize> {
        let until = parse_timeout(|| self.owner(), timeout)?;
        let dl = self.deadline(ttl, deadline_ns)?;
        if dl != 0 && crate::clock::now_ns() >= dl {
            self.q.count_rejected();
            return Err(self.expired_error().into());
        }
        let v: Vec<Item> = items
            .try_iter()?
            .map(|x| x.map(Bound::unbind))
            .collect::<PyResult<_>>()?;
        if v.is_empty() {
            return Ok(0);
        }
        let total = v.len();
        // First pass with the GIL held and no waiting: releasing the GIL costs more than a
        // batch that fits. Only a BLOCK queue that is full goes on to wait, GIL released.
        let mut discard = Vec::new();
        let (mut done, mut stop, rest) = self.q.put_many(v, dl, until, false, &mut discard);
        let blocked =
            matches!(stop, Some(Put::Full(()))) && self.q.config().policy == super::Policy::Block;
        if blocked {
            // The state carried between slices: (items left, accepted so far, discarded).
            let q = &self.q;
            let step = |(rest, n, mut disc): (Vec<Item>, usize, Vec<Item>), end| {
                let (d, s, r) = q.put_many(rest, dl, Some(end), true, &mut disc);
                match s {
                    Some(Put::Full(())) => Slice::Again((r, n + d, disc)),
                    other => Slice::Done((other, n + d, disc)),
                }
            };
            // Items accepted before an interrupt stay enqueued; the interrupt reports none.
            match wait_in_slices(py, until, (rest, 0, discard), step, |_| true)? {
                Ok((s, n, disc)) => {
                    (stop, discard) = (s, disc);
                    done += n;
                }
                Err((_, n, disc)) => {
                    self.q.count_rejected();
                    discard = disc;
                    done += n;
                }
            }
        }
        drop(discard);
        if done > 0 {
            self.getters.wake(py, done);
        }
        match stop {
            Some(Put::Full(())) if done == 0 => Err(self
                .q
                .overloaded(&format!("put_many accepted none of {total} items"))
                .into()),
            Some(Put::Closed(())) if done == 0 => Err(self.q.closed_error().into()),
            _ => Ok(done),
        }
    }

    /// Get one item, waiting up to `timeout` seconds (None = forever, 0 = do not wait).
    /// Raises DeadlineExceeded on timeout and Closed once the queue is closed and drained.
    #[pyo3(signature = (timeout = None))]
    fn get(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Item> {
        let until = parse_timeout(|| self.owner(), timeout)?;
        let mut discard = Vec::new();
        let mut r = self.q.try_get(None, &mut discard);
        if matches!(r, Get::Empty) {
            let q = &self.q;
            let step = |mut disc: Vec<Item>, end| match q.get(Some(end), &mut disc) {
                Get::Empty => Slice::Again(disc),
                got => Slice::Done((got, disc)),
            };
            (r, discard) = match wait_in_slices(py, until, discard, step, |_| true)? {
                Ok(done) => done,
                Err(disc) => (Get::Empty, disc),
            };
        }
        self.deliver(py, r, discard, || Err(self.timeout_error(timeout).into()))
    }

    /// Non-blocking get; same as `get(timeout=0)`.
    fn get_nowait(&self, py: Python<'_>) -> PyResult<Item> {
        self.get(py, Some(0.0))
    }

    /// Non-blocking get that returns `default` when the queue is empty (raises Closed at
    /// end-of-stream).
    #[pyo3(signature = (default = None))]
    fn try_get(&self, py: Python<'_>, default: Option<Item>) -> PyResult<Item> {
        let mut discard = Vec::new();
        let r = self.q.try_get(None, &mut discard);
        self.deliver(py, r, discard, || Ok(default.unwrap_or_else(|| py.None())))
    }

    /// Up to `max_items` items, returned as soon as that many are there or `timeout` passes
    /// (then with what there is, possibly none). Raises Closed when closed and drained.
    #[pyo3(signature = (max_items, timeout = None))]
    fn get_many<'py>(
        &self,
        py: Python<'py>,
        max_items: i64,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyList>> {
        if max_items <= 0 {
            return Err(CoreError::InvalidArgument(format!(
                "{}: max_items must be a positive number, got {max_items}",
                self.owner()
            ))
            .into());
        }
        let max_items = max_items as usize;
        let until = parse_timeout(|| self.owner(), timeout)?;
        let mut discard = Vec::new();
        // First take what is there without releasing the GIL.
        let first = self.q.get_many(max_items, None, false, &mut discard);
        let r = match first {
            Some(v) if v.len() < max_items && !crate::gil::passed(until) => {
                let q = &self.q;
                let step = |(mut v, mut disc): (Vec<Item>, Vec<Item>), end| match q.get_many(
                    max_items - v.len(),
                    Some(end),
                    true,
                    &mut disc,
                ) {
                    Some(more) => {
                        v.extend(more);
                        if v.len() >= max_items {
                            Slice::Done((Some(v), disc))
                        } else {
                            Slice::Again((v, disc))
                        }
                    }
                    None if v.is_empty() => Slice::Done((None, disc)),
                    None => Slice::Done((Some(v), disc)),
                };
                // Signals end the wait only while empty-handed: items already taken are
                // never dropped on the floor by an interrupt.
                let empty = |(v, _): &(Vec<Item>, Vec<Item>)| v.is_empty();
                let (got, disc) = match wait_in_slices(py, until, (v, discard), step, empty)? {
                    Ok(done) => done,
                    Err((v, disc)) => (Some(v), disc),
                };
                discard = disc;
                got
            }
            other => other,
        };
        let freed = discard.len();
        drop(discard);
        match r {
            Some(v) => {
                self.putters.wake(py, v.len() + freed);
                PyList::new(py, v)
            }
            None => Err(self.q.closed_error().into()),
        }
    }

    /// For `aget`: the item, `sentinel` when empty; raises Closed at end-of-stream.
    fn _try_get(&self, py: Python<'_>, sentinel: Item) -> PyResult<Item> {
        self.try_get(py, Some(sentinel))
    }

    /// Register an asyncio waker for an item; False (not registered) when one is already
    /// there or the queue is closed, so the caller retries instead of sleeping.
    fn _add_get_waiter(&self, cb: Item) -> bool {
        if !self.q.is_empty() || self.q.is_closed() {
            return false;
        }
        self.getters.add(cb);
        true
    }

    /// Register an asyncio waker for room; False when there is room or the queue is closed.
    fn _add_put_waiter(&self, cb: Item) -> bool {
        if self.q.len() < self.q.config().capacity || self.q.is_closed() {
            return false;
        }
        self.putters.add(cb);
        true
    }

    fn _remove_waiter(&self, cb: &Bound<'_, PyAny>) -> bool {
        self.getters.remove(cb) || self.putters.remove(cb)
    }

    /// Pass a wakeup on (a woken waiter was cancelled before it could use it).
    fn _wake_getters(&self, py: Python<'_>, n: usize) {
        self.getters.wake(py, n);
    }
    fn _wake_putters(&self, py: Python<'_>, n: usize) {
        self.putters.wake(py, n);
    }

    /// Close: producers get Closed from now on; consumers drain what is left and then see
    /// end-of-stream. Wakes every waiter, sync or async. Idempotent.
    fn close(&self, py: Python<'_>) {
        let q = self.q.clone();
        without_gil(py, move || q.close());
        self.getters.wake(py, usize::MAX);
        self.putters.wake(py, usize::MAX);
    }

    /// Lets the cycle collector see the async wakers. Items in the ring are not visited (the
    /// lock-free ring cannot be walked): a queue holding an item that refers back to the queue
    /// is a cycle only `close()` + draining breaks.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.getters.traverse(&visit)?;
        self.putters.traverse(&visit)
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Iteration blocks for each item and stops at end-of-stream.
    fn __next__(&self, py: Python<'_>) -> PyResult<Item> {
        match self.get(py, None) {
            Err(e) if e.is_instance_of::<crate::error::Closed>(py) => {
                Err(PyStopIteration::new_err(()))
            }
            r => r,
        }
    }

    /// Counters, depth and sojourn quantiles of this queue, one frozen snapshot.
    fn _stats(&self) -> PyResult<PyQueueStats> {
        let (s, c) = (self.q.stats(), self.q.config());
        PyQueueStats::new(c, &s, self.getters.len(), self.putters.len())
    }
}

impl Drop for PyBoundedQueue {
    fn drop(&mut self) {
        // pyclass dealloc runs with the GIL held, so remaining items are dropped properly.
        drop(self.q.drain_all());
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBoundedQueue>()?;
    m.add_class::<PyQueueStats>()
}
