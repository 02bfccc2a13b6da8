//! `LimiterStats` and `BucketStats`: frozen snapshots of a concurrency limiter and a token
//! bucket that cross into Python as one object each (their docs live in `_core.pyi`).

use pyo3::prelude::*;

#[pyclass(module = "system0._core", name = "LimiterStats", frozen, get_all)]
pub struct PyLimiterStats {
    pub name: String,
    pub limit: usize,
    pub in_use: usize,
    pub peak_in_use: usize,
    pub acquired: u64,
    pub rejected: u64,
}

#[pyclass(module = "system0._core", name = "BucketStats", frozen, get_all)]
pub struct PyBucketStats {
    pub name: String,
    pub acquired: u64,
    pub rejected: u64,
    pub available: f64,
}

#[pymethods]
impl PyLimiterStats {
    fn __repr__(&self) -> String {
        format!(
            "LimiterStats(name={:?}, limit={}, in_use={}, peak_in_use={}, acquired={}, \
             rejected={})",
            self.name, self.limit, self.in_use, self.peak_in_use, self.acquired, self.rejected
        )
    }
}

#[pymethods]
impl PyBucketStats {
    fn __repr__(&self) -> String {
        format!(
            "BucketStats(name={:?}, acquired={}, rejected={}, available={})",
            self.name, self.acquired, self.rejected, self.available
        )
    }
}
