//! `BreakerStats`: one circuit breaker's counters and its current window, a frozen snapshot
//! that crosses into Python as one object (its docs live in `_core.pyi`).

use pyo3::prelude::*;

use super::Stats;

#[pyclass(module = "system0._core", name = "BreakerStats", frozen, get_all)]
pub struct PyBreakerStats {
    name: String,
    state: &'static str,
    calls: u64,
    successes: u64,
    failures: u64,
    slow_calls: u64,
    ignored: u64,
    rejected: u64,
    opened: u64,
    window_calls: u64,
    window_failures: u64,
    window_slow_calls: u64,
    open_remaining_s: f64,
}

impl PyBreakerStats {
    pub fn new(name: &str, s: &Stats) -> Self {
        PyBreakerStats {
            name: name.to_owned(),
            state: s.state.as_str(),
            calls: s.calls,
            successes: s.successes,
            failures: s.failures,
            slow_calls: s.slow,
            ignored: s.ignored,
            rejected: s.rejected,
            opened: s.opened,
            window_calls: s.window.calls,
            window_failures: s.window.failures,
            window_slow_calls: s.window.slow,
            open_remaining_s: s.open_remaining_ns as f64 / 1e9,
        }
    }
}

#[pymethods]
impl PyBreakerStats {
    fn __repr__(&self) -> String {
        format!(
            "BreakerStats(name={:?}, state={:?}, calls={}, failures={}, rejected={}, opened={})",
            self.name, self.state, self.calls, self.failures, self.rejected, self.opened
        )
    }
}
