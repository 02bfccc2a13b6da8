//! Python bindings of the energy and CPU counters.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::{Delta, Meter, MeterConfig, Snapshot};
use crate::pyconv::Tuple;

/// One counter source on this machine (`rapl`, `nvml` or `perf`): whether it is readable,
/// why not, and the domains it reports.
#[pyclass(module = "system0._core", name = "EnergySource", frozen, get_all)]
pub struct PyEnergySource {
    name: &'static str,
    available: bool,
    reason: Option<String>,
    domains: Tuple<String>,
}

#[pymethods]
impl PyEnergySource {
    fn __repr__(&self) -> String {
        format!(
            "EnergySource(name={:?}, available={}, reason={:?}, domains={:?})",
            self.name,
            if self.available { "True" } else { "False" },
            self.reason,
            self.domains.0
        )
    }
}

/// Discovered energy sources (RAPL, NVML) and perf counters, with their files held open.
#[pyclass(module = "system0._core", name = "EnergyMeter", frozen)]
pub struct PyEnergyMeter {
    meter: Arc<Meter>,
}

#[pymethods]
impl PyEnergyMeter {
    #[new]
    #[pyo3(signature = (powercap_root = Some(PathBuf::from(super::rapl::DEFAULT_ROOT)),
                        nvml_library = Some(super::nvml::DEFAULT_LIBRARY.to_owned()),
                        perf = true),
           text_signature = "(powercap_root='/sys/class/powercap', \
                              nvml_library='libnvidia-ml.so.1', perf=True)")]
    fn new(
        py: Python<'_>,
        powercap_root: Option<PathBuf>,
        nvml_library: Option<String>,
        perf: bool,
    ) -> Self {
        // Discovery walks sysfs and may dlopen NVML (which talks to the driver): no GIL needed.
        let meter = crate::gil::without_gil(py, || {
            Meter::open(&MeterConfig {
                powercap_root: powercap_root.as_deref(),
                nvml_library: nvml_library.as_deref(),
                perf,
            })
        });
        PyEnergyMeter {
            meter: Arc::new(meter),
        }
    }

    /// The process-wide meter over the real machine (shared with Rust-side spans).
    #[staticmethod]
    fn default(py: Python<'_>) -> Self {
        let meter = crate::gil::without_gil(py, || Arc::clone(super::default_meter()));
        PyEnergyMeter { meter }
    }

    /// Reads the counters now; subtract two readings with `later.since(earlier)`.
    #[pyo3(signature = (energy = true, cpu = true))]
    fn read(&self, energy: bool, cpu: bool) -> PyEnergySnapshot {
        PyEnergySnapshot {
            snapshot: self.meter.snapshot(energy, cpu),
        }
    }

    /// Energy domains in report order (`cpu_package_0`, ..., `gpu_0`, ...).
    #[getter]
    fn domains(&self) -> Vec<String> {
        self.meter.domain_names().map(str::to_owned).collect()
    }

    /// One `EnergySource` each for `rapl`, `nvml` and `perf`.
    fn sources(&self) -> Vec<PyEnergySource> {
        self.meter
            .sources()
            .into_iter()
            .map(|s| PyEnergySource {
                name: s.source,
                available: s.available,
                reason: s.reason,
                domains: Tuple(s.domains),
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        let d: Vec<&str> = self.meter.domain_names().collect();
        format!("EnergyMeter(domains={d:?})")
    }
}

/// Counter readings at one instant (energy of every domain, cycles and instructions of the
/// thread that read them).
#[pyclass(module = "system0._core", name = "EnergySnapshot", frozen)]
pub struct PyEnergySnapshot {
    snapshot: Snapshot,
}

#[pymethods]
impl PyEnergySnapshot {
    /// Monotonic ns (`now_ns()`) when the snapshot was taken.
    #[getter]
    fn t_ns(&self) -> u64 {
        self.snapshot.t_ns
    }

    /// What grew from `start` to this snapshot.
    fn since(&self, start: &PyEnergySnapshot) -> PyResult<PyEnergyDelta> {
        Ok(PyEnergyDelta {
            delta: self.snapshot.since(&start.snapshot)?,
        })
    }
}

/// Energy, cycles and instructions between two snapshots. Figures that could not be
/// measured are `None`, and `reasons` says why.
#[pyclass(module = "system0._core", name = "EnergyDelta", frozen)]
pub struct PyEnergyDelta {
    delta: Delta,
}

#[pymethods]
impl PyEnergyDelta {
    #[getter]
    fn duration_ns(&self) -> u64 {
        self.delta.duration_ns
    }

    /// Joules per readable domain; `None` when no domain was readable or energy was not read.
    #[getter]
    fn joules<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        if self.delta.joules.is_empty() {
            return Ok(None);
        }
        let out = PyDict::new(py);
        for (k, v) in &self.delta.joules {
            out.set_item(k, v)?;
        }
        Ok(Some(out))
    }

    /// Sum over disjoint domains (packages, DRAM, GPUs); `None` when none was readable.
    #[getter]
    fn total_joules(&self) -> Option<f64> {
        self.delta.total_joules
    }

    #[getter]
    fn cycles(&self) -> Option<u64> {
        self.delta.cycles
    }

    #[getter]
    fn instructions(&self) -> Option<u64> {
        self.delta.instructions
    }

    /// Per source read (`rapl`, `nvml`, `perf`): whether it gave a figure.
    #[getter]
    fn available<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (k, v) in &self.delta.available {
            out.set_item(k, v)?;
        }
        Ok(out)
    }

    /// "not available: ..." per unreadable source or domain.
    #[getter]
    fn reasons<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (k, v) in &self.delta.reasons {
            out.set_item(k, v)?;
        }
        Ok(out)
    }

    /// Flat span/timer attributes: `energy.<domain>.joules`, `energy.total.joules`,
    /// `cpu.cycles`, `cpu.instructions`, or the reasons they are missing.
    fn as_attributes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (k, v) in self.delta.attributes() {
            out.set_item(k, crate::trace::py_attrs::attr_to_py(py, &v)?)?;
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        let d = &self.delta;
        format!(
            "EnergyDelta(duration_ns={}, total_joules={:?}, cycles={:?}, instructions={:?})",
            d.duration_ns, d.total_joules, d.cycles, d.instructions
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEnergyMeter>()?;
    m.add_class::<PyEnergySnapshot>()?;
    m.add_class::<PyEnergyDelta>()?;
    m.add_class::<PyEnergySource>()?;
    Ok(())
}
