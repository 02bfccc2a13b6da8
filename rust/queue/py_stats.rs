//! `QueueStats`: one queue's counters, depth and sojourn figures, a frozen snapshot that
//! crosses into Python as one object (its docs live in `_core.pyi`). Invariant, once the queue
//! is quiet: `enqueued == dequeued + depth + dropped_oldest + expired_deadline + shed_sojourn`.

use pyo3::prelude::*;

use super::{Config, Stats};
use crate::pyconv::Tuple;
use crate::telemetry::histogram::bucket_range;

#[pyclass(module = "system0._core", name = "QueueStats", frozen, get_all)]
pub struct PyQueueStats {
    name: String,
    capacity: usize,
    policy: &'static str,
    depth: usize,
    closed: bool,
    enqueued: u64,
    dequeued: u64,
    rejected: u64,
    dropped_oldest: u64,
    dropped_newest: u64,
    shed_sojourn: u64,
    expired_deadline: u64,
    sojourn_count: u64,
    sojourn_sum_ns: u64,
    sojourn_max_ns: u64,
    sojourn_p50_ns: u64,
    sojourn_p90_ns: u64,
    sojourn_p99_ns: u64,
    /// (exclusive upper bound in ns, count) of each non-empty bucket.
    sojourn_buckets: Tuple<(u64, u64)>,
    async_getters: usize,
    async_putters: usize,
}

impl PyQueueStats {
    /// The snapshot of `s`; the sojourn figures read the registry histogram of the queue's
    /// name (shared by every queue of that name), 0 standing for "nothing recorded yet".
    pub fn new(
        c: &Config,
        s: &Stats,
        async_getters: usize,
        async_putters: usize,
    ) -> PyResult<Self> {
        let sj = &s.sojourn;
        Ok(PyQueueStats {
            name: c.name.clone(),
            capacity: c.capacity,
            policy: c.policy.as_str(),
            depth: s.depth,
            closed: s.closed,
            enqueued: s.enqueued,
            dequeued: s.dequeued,
            rejected: s.rejected,
            dropped_oldest: s.dropped_oldest,
            dropped_newest: s.dropped_newest,
            shed_sojourn: s.shed_sojourn,
            expired_deadline: s.expired_deadline,
            sojourn_count: sj.count,
            sojourn_sum_ns: sj.sum,
            sojourn_max_ns: sj.max.unwrap_or(0),
            sojourn_p50_ns: sj.quantile(0.5)?.unwrap_or(0),
            sojourn_p90_ns: sj.quantile(0.9)?.unwrap_or(0),
            sojourn_p99_ns: sj.quantile(0.99)?.unwrap_or(0),
            sojourn_buckets: Tuple(
                sj.buckets
                    .iter()
                    .map(|&(i, n)| (bucket_range(i as usize).1.saturating_add(1), n))
                    .collect(),
            ),
            async_getters,
            async_putters,
        })
    }
}

#[pymethods]
impl PyQueueStats {
    fn __repr__(&self) -> String {
        format!(
            "QueueStats(name={:?}, capacity={}, policy={:?}, depth={}, closed={}, enqueued={}, \
             dequeued={}, rejected={})",
            self.name,
            self.capacity,
            self.policy,
            self.depth,
            self.closed,
            self.enqueued,
            self.dequeued,
            self.rejected
        )
    }
}
