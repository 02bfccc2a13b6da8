//! Wakers of asyncio tasks waiting on a queue or limiter. A waiting coroutine registers a
//! Python callable (it resolves the task's future through `loop.call_soon_threadsafe`, so a
//! plain thread can wake it); whoever frees an item or a slot pops and calls a few. The count
//! is atomic so that the hot path, with no async waiter, pays one load.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use parking_lot::Mutex;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

#[derive(Default)]
pub struct AsyncWaiters {
    n: AtomicUsize,
    list: Mutex<VecDeque<Py<PyAny>>>,
}

impl AsyncWaiters {
    pub fn len(&self) -> usize {
        self.n.load(SeqCst)
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.n.load(SeqCst) == 0
    }

    pub fn add(&self, cb: Py<PyAny>) {
        let mut l = self.list.lock();
        l.push_back(cb);
        self.n.store(l.len(), SeqCst);
    }

    /// Forget `cb` (a cancelled or timed-out waiter); true if it was still registered.
    pub fn remove(&self, cb: &Bound<'_, PyAny>) -> bool {
        let removed = {
            let mut l = self.list.lock();
            let pos = l.iter().position(|w| w.as_ptr() == cb.as_ptr());
            let r = pos.and_then(|i| l.remove(i));
            self.n.store(l.len(), SeqCst);
            r
        };
        // Dropped here, outside the lock: a decref may run arbitrary Python code.
        removed.is_some()
    }

    /// Wake up to `k` waiters (all with `usize::MAX`), oldest first. A waker that raises is
    /// reported as unraisable: the producer that woke it did nothing wrong.
    #[inline]
    pub fn wake(&self, py: Python<'_>, k: usize) {
        if k == 0 || self.is_empty() {
            return;
        }
        let woken: Vec<Py<PyAny>> = {
            let mut l = self.list.lock();
            let take = k.min(l.len());
            let v = l.drain(..take).collect();
            self.n.store(l.len(), SeqCst);
            v
        };
        for cb in woken {
            if let Err(e) = cb.call0(py) {
                e.write_unraisable(py, Some(cb.bind(py)));
            }
        }
    }

    /// For the owner's `__traverse__`: the wakers hold futures and loops.
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        for cb in self.list.lock().iter() {
            visit.call(cb)?;
        }
        Ok(())
    }
}
