//! Python bindings of the metrics. Handles are frozen classes holding an `Arc` to the
//! metric's atomics: `record`/`inc` are one argument conversion and one or two atomic adds.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyTuple};

use super::histogram::{self, value_from_f64};
use super::metrics::check_gauge_value;
use super::registry::{self, Family, Kind, Metric, Registry, DEFAULT_MAX_LABEL_SETS};
use super::snapshot::Snapshot;
use super::{prometheus, Counter, Gauge, Histogram};
use crate::error::CoreError;

/// An argument error (`system0.errors.InvalidArgument`) with `message`.
fn invalid(message: String) -> PyErr {
    CoreError::InvalidArgument(message).into()
}

/// The label values for `family` from `.labels(*args)` or `.labels(**kwargs)`.
fn label_values(
    family: &Family,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<String>> {
    let kwargs = kwargs.filter(|k| !k.is_empty());
    match kwargs {
        Some(_) if !args.is_empty() => Err(invalid(format!(
            "metric '{}': pass label values either by position or by name, not both",
            family.name
        ))),
        Some(kw) => {
            let mut values = Vec::with_capacity(family.label_names.len());
            for name in &family.label_names {
                match kw.get_item(name)? {
                    Some(v) => values.push(v.str()?.to_string()),
                    None => {
                        return Err(invalid(format!(
                            "metric '{}' needs a value for label '{name}'; its labels are ({})",
                            family.name,
                            family.label_names.join(", ")
                        )))
                    }
                }
            }
            if kw.len() != values.len() {
                return Err(invalid(format!(
                    "metric '{}' was given unknown label names; its labels are ({})",
                    family.name,
                    family.label_names.join(", ")
                )));
            }
            Ok(values)
        }
        None => args.iter().map(|v| Ok(v.str()?.to_string())).collect(),
    }
}

fn no_labels_error(f: &Family, what: &str) -> PyErr {
    invalid(format!(
        "metric '{}' has labels ({}); {what} through a child: .labels(...).{what}(...)",
        f.name,
        f.label_names.join(", ")
    ))
}

macro_rules! handle_common {
    ($ty:ident, $variant:ident, $core:ty) => {
        impl $ty {
            fn from_family(family: Arc<Family>) -> PyResult<Self> {
                let core = if family.label_names.is_empty() {
                    match family.child(Vec::new())? {
                        Metric::$variant(c) => Some(c),
                        _ => return Err(CoreError::Internal("metric kind mismatch".into()).into()),
                    }
                } else {
                    None
                };
                Ok($ty {
                    family,
                    label_values: Vec::new(),
                    core,
                })
            }

            fn child(&self, values: Vec<String>) -> PyResult<Self> {
                if !self.label_values.is_empty() || self.family.label_names.is_empty() {
                    return Err(invalid(format!(
                        "metric '{}' has no label names left to fill; call .labels() on the \
                         family returned at registration",
                        self.family.name
                    )));
                }
                match self.family.child(values.clone())? {
                    Metric::$variant(c) => Ok($ty {
                        family: Arc::clone(&self.family),
                        label_values: values,
                        core: Some(c),
                    }),
                    _ => Err(CoreError::Internal("metric kind mismatch".into()).into()),
                }
            }

            fn all_children(&self) -> Vec<Self> {
                self.family
                    .children()
                    .into_iter()
                    .filter_map(|(values, m)| match m {
                        Metric::$variant(c) => Some($ty {
                            family: Arc::clone(&self.family),
                            label_values: values,
                            core: Some(c),
                        }),
                        _ => None,
                    })
                    .collect()
            }

            #[inline]
            fn core(&self, what: &str) -> PyResult<&Arc<$core>> {
                self.core
                    .as_ref()
                    .ok_or_else(|| no_labels_error(&self.family, what))
            }

            fn describe(&self) -> String {
                let labels: Vec<String> = self
                    .family
                    .label_names
                    .iter()
                    .zip(&self.label_values)
                    .map(|(n, v)| format!("{n}={v:?}"))
                    .collect();
                format!(
                    "<{} {:?} labels=({}) {{{}}}>",
                    stringify!($variant),
                    self.family.name,
                    self.family.label_names.join(", "),
                    labels.join(", ")
                )
            }
        }
    };
}

/// A counter (or, with label names, a family of counters).
#[pyclass(module = "system0._core", name = "Counter", frozen)]
pub struct PyCounter {
    family: Arc<Family>,
    label_values: Vec<String>,
    core: Option<Arc<Counter>>,
}
handle_common!(PyCounter, Counter, Counter);

/// A gauge (or, with label names, a family of gauges).
#[pyclass(module = "system0._core", name = "Gauge", frozen)]
pub struct PyGauge {
    family: Arc<Family>,
    label_values: Vec<String>,
    core: Option<Arc<Gauge>>,
}
handle_common!(PyGauge, Gauge, Gauge);

/// A log-linear histogram (or, with label names, a family of histograms).
#[pyclass(module = "system0._core", name = "Histogram", frozen)]
pub struct PyHistogram {
    family: Arc<Family>,
    label_values: Vec<String>,
    core: Option<Arc<Histogram>>,
}
handle_common!(PyHistogram, Histogram, Histogram);

/// Generates a handle's `#[pymethods]` block: the methods every handle shares plus `$extra`.
macro_rules! handle_methods {
    ($ty:ident { $($extra:tt)* }) => {
        #[pymethods]
        impl $ty {
        #[getter]
        fn name(&self) -> &str {
            &self.family.name
        }

        #[getter]
        fn help(&self) -> &str {
            &self.family.help
        }

        #[getter]
        fn label_names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
            PyTuple::new(py, &self.family.label_names)
        }

        #[getter]
        fn label_values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
            PyTuple::new(py, &self.label_values)
        }

        #[getter]
        fn max_label_sets(&self) -> usize {
            self.family.max_label_sets
        }

        #[pyo3(signature = (*args, **kwargs))]
        fn labels(
            &self,
            args: &Bound<'_, PyTuple>,
            kwargs: Option<&Bound<'_, PyDict>>,
        ) -> PyResult<Self> {
            let values = label_values(&self.family, args, kwargs)?;
            self.child(values)
        }

        fn children(&self) -> Vec<Self> {
            self.all_children()
        }

        fn __repr__(&self) -> String {
            self.describe()
        }

        $($extra)*
        }
    };
}

/// A histogram value from any Python number: ints fast, floats checked (NaN, infinities and
/// negatives raise `ValueError`; fractions round), anything else through `__index__` or
/// `__float__`.
#[inline]
fn hist_value(v: &Bound<'_, PyAny>, metric: &str) -> PyResult<u64> {
    if let Ok(i) = v.cast_exact::<PyInt>() {
        if let Ok(n) = i.extract::<u64>() {
            return Ok(n);
        }
        return Ok(value_from_f64(i.extract::<f64>()?, metric)?);
    }
    if let Ok(f) = v.cast_exact::<PyFloat>() {
        return Ok(value_from_f64(f.value(), metric)?);
    }
    if let Ok(n) = v.extract::<u64>() {
        return Ok(n);
    }
    Ok(value_from_f64(v.extract::<f64>()?, metric)?)
}

handle_methods!(PyCounter {

    /// Adds `n` (a non-negative whole number, default 1).
    #[pyo3(signature = (n = None))]
    fn inc(&self, n: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let core = self.core("inc")?;
        let n = match n {
            None => 1,
            Some(v) => match v.extract::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    return Err(invalid(format!(
                        "counter '{}' was given {}; counters only go up, by whole numbers >= 0 \
                         (use a gauge for values that go down or are fractional)",
                        self.family.name,
                        v.repr()?
                    )))
                }
            },
        };
        core.inc(n);
        Ok(())
    }

    #[getter]
    fn value(&self) -> PyResult<u64> {
        Ok(self.core("value")?.get())
    }
});

handle_methods!(PyGauge {

    fn set(&self, v: f64) -> PyResult<()> {
        let core = self.core("set")?;
        core.set(check_gauge_value(v, &self.family.name)?);
        Ok(())
    }

    #[pyo3(signature = (d = 1.0))]
    fn inc(&self, d: f64) -> PyResult<()> {
        let core = self.core("inc")?;
        core.add(check_gauge_value(d, &self.family.name)?);
        Ok(())
    }

    #[pyo3(signature = (d = 1.0))]
    fn dec(&self, d: f64) -> PyResult<()> {
        let core = self.core("dec")?;
        core.add(-check_gauge_value(d, &self.family.name)?);
        Ok(())
    }

    #[getter]
    fn value(&self) -> PyResult<f64> {
        Ok(self.core("value")?.get())
    }
});

handle_methods!(PyHistogram {

    #[getter]
    fn unit(&self) -> &str {
        &self.family.unit
    }

    /// Records one value (int fast path; floats are checked and rounded).
    #[pyo3(signature = (v, /))]
    fn record(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let core = self.core("record")?;
        core.record(hist_value(v, &self.family.name)?);
        Ok(())
    }

    /// Records `now_ns() - start_ns` (0 if `start_ns` is in the future).
    fn record_since(&self, start_ns: u64) -> PyResult<()> {
        self.core("record_since")?.record_since(start_ns);
        Ok(())
    }

    fn snapshot(&self) -> PyResult<PySnapshot> {
        Ok(PySnapshot(self.core("snapshot")?.snapshot()))
    }
});

/// An immutable view of a histogram at one moment.
#[pyclass(module = "system0._core", name = "HistogramSnapshot", frozen, eq)]
#[derive(PartialEq)]
pub struct PySnapshot(Snapshot);

#[pymethods]
impl PySnapshot {
    /// An empty snapshot (the identity of `merge`).
    #[new]
    fn new() -> Self {
        PySnapshot(Snapshot::default())
    }

    #[getter]
    fn count(&self) -> u64 {
        self.0.count
    }
    #[getter]
    fn sum(&self) -> u64 {
        self.0.sum
    }
    #[getter]
    fn min(&self) -> Option<u64> {
        self.0.min
    }
    #[getter]
    fn max(&self) -> Option<u64> {
        self.0.max
    }
    #[getter]
    fn overflow(&self) -> u64 {
        self.0.overflow
    }
    #[getter]
    fn mean(&self) -> Option<f64> {
        self.0.mean()
    }
    #[getter]
    fn p50(&self) -> PyResult<Option<u64>> {
        Ok(self.0.quantile(0.5)?)
    }
    #[getter]
    fn p90(&self) -> PyResult<Option<u64>> {
        Ok(self.0.quantile(0.9)?)
    }
    #[getter]
    fn p99(&self) -> PyResult<Option<u64>> {
        Ok(self.0.quantile(0.99)?)
    }
    #[getter]
    fn p999(&self) -> PyResult<Option<u64>> {
        Ok(self.0.quantile(0.999)?)
    }

    fn quantile(&self, q: f64) -> PyResult<Option<u64>> {
        Ok(self.0.quantile(q)?)
    }

    fn count_le(&self, le: u64) -> u64 {
        self.0.count_le(le)
    }

    fn merge(&self, other: &PySnapshot) -> PySnapshot {
        PySnapshot(self.0.merge(&other.0))
    }

    fn delta(&self, earlier: &PySnapshot) -> PyResult<PySnapshot> {
        Ok(PySnapshot(self.0.delta(&earlier.0)?))
    }

    /// `[(low, high, count), ...]` for every non-empty bucket, ascending.
    fn buckets(&self) -> Vec<(u64, u64, u64)> {
        self.0
            .buckets
            .iter()
            .map(|&(i, n)| {
                let (lo, hi) = histogram::bucket_range(i as usize);
                (lo, hi, n)
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        let s = &self.0;
        let show = |v: Option<u64>| v.map_or_else(|| "None".to_owned(), |v| v.to_string());
        let q = |q| show(s.quantile(q).ok().flatten());
        format!(
            "HistogramSnapshot(count={}, sum={}, min={}, p50={}, p99={}, max={}, overflow={})",
            s.count,
            s.sum,
            show(s.min),
            q(0.5),
            q(0.99),
            show(s.max),
            s.overflow
        )
    }
}

/// A set of metric families.
#[pyclass(module = "system0._core", name = "Registry", frozen)]
pub struct PyRegistry(Arc<Registry>);

impl PyRegistry {
    fn family(
        &self,
        name: &str,
        kind: Kind,
        labels: Vec<String>,
        help: &str,
        unit: &str,
        max_label_sets: usize,
    ) -> PyResult<Arc<Family>> {
        Ok(self
            .0
            .register(name, kind, labels, help, unit, max_label_sets)?)
    }
}

#[pymethods]
impl PyRegistry {
    #[new]
    fn new() -> Self {
        PyRegistry(Arc::new(Registry::new()))
    }

    #[pyo3(signature = (name, labels = Vec::new(), help = "", max_label_sets = DEFAULT_MAX_LABEL_SETS))]
    fn counter(
        &self,
        name: &str,
        labels: Vec<String>,
        help: &str,
        max_label_sets: usize,
    ) -> PyResult<PyCounter> {
        PyCounter::from_family(self.family(
            name,
            Kind::Counter,
            labels,
            help,
            "",
            max_label_sets,
        )?)
    }

    #[pyo3(signature = (name, labels = Vec::new(), help = "", max_label_sets = DEFAULT_MAX_LABEL_SETS))]
    fn gauge(
        &self,
        name: &str,
        labels: Vec<String>,
        help: &str,
        max_label_sets: usize,
    ) -> PyResult<PyGauge> {
        PyGauge::from_family(self.family(name, Kind::Gauge, labels, help, "", max_label_sets)?)
    }

    #[pyo3(signature = (name, labels = Vec::new(), help = "", unit = "ns", max_label_sets = DEFAULT_MAX_LABEL_SETS))]
    fn histogram(
        &self,
        name: &str,
        labels: Vec<String>,
        help: &str,
        unit: &str,
        max_label_sets: usize,
    ) -> PyResult<PyHistogram> {
        PyHistogram::from_family(self.family(
            name,
            Kind::Histogram,
            labels,
            help,
            unit,
            max_label_sets,
        )?)
    }

    /// Every family (the handle returned at registration), sorted by name.
    fn families(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        self.0
            .families()
            .into_iter()
            .map(|f| {
                Ok(match f.kind {
                    Kind::Counter => Py::new(py, PyCounter::from_family(f)?)?.into_any(),
                    Kind::Gauge => Py::new(py, PyGauge::from_family(f)?)?.into_any(),
                    Kind::Histogram => Py::new(py, PyHistogram::from_family(f)?)?.into_any(),
                })
            })
            .collect()
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    fn render_prometheus(&self, py: Python<'_>) -> String {
        let reg = Arc::clone(&self.0);
        crate::gil::without_gil(py, move || prometheus::render(&reg))
    }
}

/// The process-wide registry.
#[pyfunction]
fn default_registry() -> PyRegistry {
    PyRegistry(Arc::clone(registry::default_registry()))
}

/// The `le` boundaries every histogram exports to Prometheus.
#[pyfunction]
fn prometheus_le_bounds() -> Vec<u64> {
    prometheus::le_bounds()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRegistry>()?;
    m.add_class::<PyCounter>()?;
    m.add_class::<PyGauge>()?;
    m.add_class::<PyHistogram>()?;
    m.add_class::<PySnapshot>()?;
    m.add_function(wrap_pyfunction!(default_registry, m)?)?;
    m.add_function(wrap_pyfunction!(prometheus_le_bounds, m)?)?;
    m.add("HISTOGRAM_BYTES", histogram::HISTOGRAM_BYTES)?;
    m.add("HISTOGRAM_BUCKETS", histogram::BUCKETS)?;
    m.add("HISTOGRAM_MAX_VALUE", histogram::MAX_VALUE)?;
    m.add("HISTOGRAM_RELATIVE_ERROR", histogram::RELATIVE_ERROR)?;
    m.add("DEFAULT_MAX_LABEL_SETS", DEFAULT_MAX_LABEL_SETS)?;
    Ok(())
}
