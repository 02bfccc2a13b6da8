//! Python binding of the wire contract (`contract.rs`) and of the Arrow schemas the codec
//! emits (`columns.rs`): `system0.data.contract` re-exports these, and every Python copy of
//! the contract derives from them or is tested against them.

use arrow_schema::Schema;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

use super::arrow_export::export_schema;
use super::columns::{game_state_schema, sample_schema};
use super::contract::{
    ranges, ABILITY_SLOTS, ACTION_FIELDS, ACTION_KINDS, ACTION_OPTIONAL, GAME_STATE_FIELDS,
    GAME_STATE_OPTIONAL, ITEM_VOCABULARY, MAX_CHAMPION, MAX_INVENTORY, MAX_META, MAX_STEP,
    METADATA_FIELDS, POSITION_FIELDS, SAMPLE_FIELDS, SAMPLE_OPTIONAL, SCHEMA_VERSION, TS_MAX_US,
    TS_MIN_US,
};
use crate::error::CoreError;

/// An Arrow schema behind the Arrow PyCapsule interface: `pyarrow.schema(obj)` takes it.
#[pyclass(module = "system0._core", name = "ArrowSchema", frozen)]
pub struct PyArrowSchema {
    schema: Schema,
}

#[pymethods]
impl PyArrowSchema {
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let ffi = export_schema(&self.schema).map_err(|e| {
            PyErr::from(CoreError::Internal(format!(
                "arrow schema export failed: {e}"
            )))
        })?;
        PyCapsule::new_with_value(py, ffi, c"arrow_schema")
    }

    /// Top-level column names, in order.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    fn __repr__(&self) -> String {
        let contract = self.schema.metadata().get("system0.contract");
        format!(
            "ArrowSchema({}: {})",
            contract.map_or("?", String::as_str),
            self.names().join(", ")
        )
    }
}

/// The wire contract, read-only: every getter returns a fresh copy.
#[pyclass(module = "system0._core", name = "WireContract", frozen)]
pub struct PyWireContract;

#[pymethods]
impl PyWireContract {
    #[getter]
    fn schema_version(&self) -> i64 {
        SCHEMA_VERSION
    }
    #[getter]
    fn ability_slots(&self) -> Vec<&'static str> {
        ABILITY_SLOTS.to_vec()
    }
    #[getter]
    fn item_vocabulary(&self) -> Vec<&'static str> {
        ITEM_VOCABULARY.to_vec()
    }
    #[getter]
    fn action_kinds(&self) -> Vec<&'static str> {
        ACTION_KINDS.to_vec()
    }
    /// `{kind: [field, ...]}`, in `action_kinds` order, `kind` first.
    #[getter]
    fn action_fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (kind, fields) in ACTION_KINDS.iter().zip(ACTION_FIELDS) {
            d.set_item(kind, fields.to_vec())?;
        }
        Ok(d)
    }
    /// `(kind, field)` pairs that may be omitted or null.
    #[getter]
    fn action_optional(&self) -> Vec<(&'static str, &'static str)> {
        ACTION_OPTIONAL.to_vec()
    }
    #[getter]
    fn game_state_fields(&self) -> Vec<&'static str> {
        GAME_STATE_FIELDS.to_vec()
    }
    #[getter]
    fn game_state_optional(&self) -> Vec<&'static str> {
        GAME_STATE_OPTIONAL.to_vec()
    }
    #[getter]
    fn training_sample_fields(&self) -> Vec<&'static str> {
        SAMPLE_FIELDS.to_vec()
    }
    #[getter]
    fn training_sample_optional(&self) -> Vec<&'static str> {
        SAMPLE_OPTIONAL.to_vec()
    }
    #[getter]
    fn position_fields(&self) -> Vec<&'static str> {
        POSITION_FIELDS.to_vec()
    }
    #[getter]
    fn metadata_fields(&self) -> Vec<&'static str> {
        METADATA_FIELDS.to_vec()
    }
    #[getter]
    fn max_inventory(&self) -> usize {
        MAX_INVENTORY
    }
    #[getter]
    fn max_champion(&self) -> usize {
        MAX_CHAMPION
    }
    #[getter]
    fn max_metadata_string(&self) -> usize {
        MAX_META
    }
    #[getter]
    fn max_step(&self) -> i64 {
        MAX_STEP
    }
    /// `[lo, hi)` in microseconds since the epoch, UTC.
    #[getter]
    fn timestamp_range_us(&self) -> (i64, i64) {
        (TS_MIN_US, TS_MAX_US)
    }
    /// `{dotted path: (lo, hi)}`, closed intervals, in field order.
    #[getter]
    fn ranges<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (path, b) in ranges() {
            d.set_item(path, (b.lo, b.hi))?;
        }
        Ok(d)
    }
    /// The Arrow schema of a decoded GameState batch.
    fn game_state_schema(&self) -> PyArrowSchema {
        PyArrowSchema {
            schema: game_state_schema(),
        }
    }
    /// The Arrow schema of a decoded TrainingSample batch.
    fn training_sample_schema(&self) -> PyArrowSchema {
        PyArrowSchema {
            schema: sample_schema(),
        }
    }
}

/// The codec's wire contract.
#[pyfunction]
fn wire_contract() -> PyWireContract {
    PyWireContract
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyArrowSchema>()?;
    m.add_class::<PyWireContract>()?;
    m.add_function(wrap_pyfunction!(wire_contract, m)?)?;
    Ok(())
}
