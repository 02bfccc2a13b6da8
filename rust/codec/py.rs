//! Python bindings of the codec: `decode_game_states`, `decode_training_samples` and the
//! `DecodedBatch` they return, which exports its Arrow batch through the Arrow PyCapsule
//! interface (`__arrow_c_array__`, `__arrow_c_schema__`, `__arrow_c_stream__`) so that
//! pyarrow, polars and duckdb take it without a copy.

use arrow_array::ffi::{from_ffi, to_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, RecordBatch, RecordBatchIterator, StructArray};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule, PyList, PyTuple};

use super::arrow_export::{export_schema, sorted_stream};
use super::batch::{decode_json, decode_rows, Contract, Decoded};
use super::contract::ITEM_VOCABULARY;
use crate::error::CoreError;
use crate::gil::without_gil;

/// Run codec work with the GIL released; a panic becomes an `InternalError`, never a crash.
fn guarded<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    crate::gil::released(py, "the codec", || Ok(f()))
}

fn arrow_err(e: arrow_schema::ArrowError) -> PyErr {
    CoreError::Internal(format!("arrow export failed: {e}")).into()
}

/// A decoded batch: the valid rows as Arrow, and every refused row with its reasons.
#[pyclass(module = "system0._core", name = "DecodedBatch", frozen)]
pub struct PyDecodedBatch {
    pub(crate) inner: Decoded,
}

#[pymethods]
impl PyDecodedBatch {
    /// Number of valid rows in the Arrow batch.
    #[getter]
    fn num_rows(&self) -> usize {
        self.inner.batch.num_rows()
    }

    /// Rows seen in the input (valid + refused).
    #[getter]
    fn total(&self) -> u32 {
        self.inner.total
    }

    /// CRC-32C (hardware instructions) of the input bytes; for a list of rows, of the rows
    /// in order, as if concatenated.
    #[getter]
    fn input_crc32c(&self) -> u32 {
        self.inner.input_crc32c
    }

    /// Input row index of each batch row.
    #[getter]
    fn rows(&self) -> Vec<u32> {
        self.inner.rows.clone()
    }

    /// Every broken rule: `(row, path, code, message)`.
    #[getter]
    fn errors(&self) -> Vec<(u32, String, &'static str, String)> {
        let mut out = Vec::new();
        for e in &self.inner.errors {
            for i in &e.issues {
                out.push((e.row, i.path.clone(), i.code, i.message.clone()));
            }
        }
        out
    }

    /// Each refused row once: `(row, raw bytes, reason codes)`.
    #[getter]
    fn rejected<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self.inner.errors.iter().map(|e| {
            let codes: Vec<&'static str> = e.issues.iter().map(|i| i.code).collect();
            (e.row, PyBytes::new(py, &e.raw), codes)
        });
        PyList::new(py, items)
    }

    /// `"GameState"` or `"TrainingSample"`.
    #[getter]
    fn contract(&self) -> String {
        self.inner
            .batch
            .schema()
            .metadata()
            .get("system0.contract")
            .cloned()
            .unwrap_or_default()
    }

    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let _ = requested_schema; // we export our own schema; callers cast if they must
        let array = StructArray::from(self.inner.batch.clone());
        let (ffi_array, _) = to_ffi(&array.to_data()).map_err(arrow_err)?;
        let ffi_schema = export_schema(self.inner.batch.schema().as_ref()).map_err(arrow_err)?;
        let s = PyCapsule::new_with_value(py, ffi_schema, c"arrow_schema")?;
        let a = PyCapsule::new_with_value(py, ffi_array, c"arrow_array")?;
        PyTuple::new(py, [s.into_any(), a.into_any()])
    }

    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let ffi_schema = export_schema(self.inner.batch.schema().as_ref()).map_err(arrow_err)?;
        PyCapsule::new_with_value(py, ffi_schema, c"arrow_schema")
    }

    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let b = self.inner.batch.clone();
        let reader = RecordBatchIterator::new([Ok(b.clone())], b.schema());
        let stream = sorted_stream(FFI_ArrowArrayStream::new(Box::new(reader)));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }

    /// The batch as JSON (`ndjson=False`: one array) in canonical form (GameState only).
    #[pyo3(signature = (ndjson=false))]
    fn to_json<'py>(&self, py: Python<'py>, ndjson: bool) -> PyResult<Bound<'py, PyBytes>> {
        let out = super::encode::game_states_to_json(&self.inner.batch, ndjson)?;
        Ok(PyBytes::new(py, &out))
    }

    /// The batch as a protobuf `GameStateBatch` message (GameState only).
    fn to_protobuf<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let out = super::proto::game_states_to_protobuf(&self.inner.batch)?;
        Ok(PyBytes::new(py, &out))
    }

    fn __len__(&self) -> usize {
        self.inner.batch.num_rows()
    }

    fn __repr__(&self) -> String {
        format!(
            "DecodedBatch({}: {} valid of {} rows, {} refused)",
            self.contract(),
            self.inner.batch.num_rows(),
            self.inner.total,
            self.inner.errors.len()
        )
    }
}

/// Import any object exporting `__arrow_c_array__` (a record batch) without copying.
pub fn import_batch(obj: &Bound<'_, PyAny>) -> PyResult<RecordBatch> {
    if let Ok(d) = obj.cast::<PyDecodedBatch>() {
        return Ok(d.get().inner.batch.clone());
    }
    if !obj.hasattr("__arrow_c_array__")? {
        return Err(CoreError::InvalidArgument(
            "expected an Arrow record batch (an object with __arrow_c_array__), e.g. a DecodedBatch or pyarrow.RecordBatch".into(),
        )
        .into());
    }
    let pair = obj.call_method0("__arrow_c_array__")?;
    let (schema, array): (Bound<'_, PyCapsule>, Bound<'_, PyCapsule>) = pair.extract()?;
    let schema_ptr = schema
        .pointer_checked(Some(c"arrow_schema"))?
        .cast::<FFI_ArrowSchema>();
    let array_ptr = array
        .pointer_checked(Some(c"arrow_array"))?
        .cast::<FFI_ArrowArray>();
    let import_err =
        |e| CoreError::InvalidArgument(format!("could not import the Arrow array: {e}"));
    // SAFETY: the capsule names promise these structs (Arrow PyCapsule protocol); we move the
    // array out and leave a released one behind, as the protocol asks of a consumer.
    let (data, field) = unsafe {
        let ffi_schema = schema_ptr.as_ref();
        let field = arrow_schema::Field::try_from(ffi_schema).map_err(import_err)?;
        let ffi_array = std::ptr::replace(array_ptr.as_ptr(), FFI_ArrowArray::empty());
        (from_ffi(ffi_array, ffi_schema).map_err(import_err)?, field)
    };
    let sa = StructArray::from(data);
    if sa.null_count() > 0 {
        return Err(
            CoreError::InvalidArgument("a record batch cannot have null rows".into()).into(),
        );
    }
    // the batch's schema metadata travels on the struct's field: keep it (contract, version)
    let rb = RecordBatch::from(sa);
    let schema = rb
        .schema()
        .as_ref()
        .clone()
        .with_metadata(field.metadata().clone());
    rb.with_schema(std::sync::Arc::new(schema))
        .map_err(|e| CoreError::Internal(format!("arrow import lost its schema: {e}")).into())
}

fn decode(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    format: &str,
    contract: Contract,
) -> PyResult<PyDecodedBatch> {
    if let Ok(list) = data.cast::<PyList>() {
        let rows: Vec<Vec<u8>> = list.extract().map_err(|_| {
            CoreError::InvalidArgument(
                "a list of rows must hold bytes objects, one document each".into(),
            )
        })?;
        if format != "json" {
            return Err(CoreError::InvalidArgument(
                "a list of rows is decoded as JSON only".into(),
            )
            .into());
        }
        let inner = guarded(py, || {
            let refs: Vec<&[u8]> = rows.iter().map(Vec::as_slice).collect();
            let mut d = decode_rows(&refs, contract);
            d.input_crc32c = refs.iter().fold(0, |c, r| ::crc32c::crc32c_append(c, r));
            d
        })?;
        return Ok(PyDecodedBatch { inner });
    }
    let with_crc = |bytes: &[u8], mut d: Decoded| {
        d.input_crc32c = super::checksum(bytes);
        d
    };
    let run = |bytes: &[u8]| -> PyResult<Decoded> {
        match format {
            "json" => guarded(py, || with_crc(bytes, decode_json(bytes, contract))),
            "msgpack" => guarded(py, || {
                with_crc(bytes, super::decode_msgpack(bytes, contract))
            }),
            "protobuf" if contract == Contract::GameState => {
                guarded(py, || with_crc(bytes, super::proto::decode_protobuf(bytes)))
            }
            other => Err(CoreError::InvalidArgument(format!(
                "format must be 'json', 'msgpack' or (GameState only) 'protobuf', not {other:?}"
            ))
            .into()),
        }
    };
    // bytes are immutable: read them in place, without a copy
    let inner = if let Ok(b) = data.cast::<PyBytes>() {
        run(b.as_bytes())?
    } else {
        let buf: pyo3::buffer::PyBuffer<u8> = pyo3::buffer::PyBuffer::get(data).map_err(|_| {
            CoreError::InvalidArgument(
                "data must be bytes, a bytes-like buffer, or a list of bytes rows".into(),
            )
        })?;
        let owned = buf.to_vec(py)?;
        run(&owned)?
    };
    Ok(PyDecodedBatch { inner })
}

/// Decode a batch of GameState rows (JSON array, NDJSON, list of rows, or msgpack).
#[pyfunction]
#[pyo3(signature = (data, format="json"))]
fn decode_game_states(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    format: &str,
) -> PyResult<PyDecodedBatch> {
    decode(py, data, format, Contract::GameState)
}

/// Decode a batch of TrainingSample rows (JSON array, NDJSON, list of rows, or msgpack).
#[pyfunction]
#[pyo3(signature = (data, format="json"))]
fn decode_training_samples(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    format: &str,
) -> PyResult<PyDecodedBatch> {
    decode(py, data, format, Contract::TrainingSample)
}

fn contract_named(name: &str) -> PyResult<Contract> {
    match name {
        "GameState" => Ok(Contract::GameState),
        "TrainingSample" => Ok(Contract::TrainingSample),
        other => Err(CoreError::InvalidArgument(format!(
            "contract must be 'GameState' or 'TrainingSample', not {other:?}"
        ))
        .into()),
    }
}

/// Check an Arrow record batch (any `__arrow_c_array__` exporter, imported without a copy)
/// against `contract`, column by column: every broken rule as `(row, path, code, message)`,
/// ordered by row. A schema that is not the contract's is a `ValidationError`.
#[pyfunction]
#[pyo3(signature = (batch, contract="TrainingSample"))]
fn check_batch(
    py: Python<'_>,
    batch: &Bound<'_, PyAny>,
    contract: &str,
) -> PyResult<Vec<(u32, String, &'static str, String)>> {
    let contract = contract_named(contract)?;
    let rb = import_batch(batch)?;
    let checked = guarded(py, || super::arrow_check::check_batch(&rb, contract))?;
    let violations = checked.map_err(|e| CoreError::Validation(e.to_string()))?;
    Ok(violations
        .into_iter()
        .map(|v| (v.row, v.path, v.code, v.message))
        .collect())
}

/// The item vocabulary of the contract, in feature order.
#[pyfunction]
fn item_vocabulary() -> Vec<&'static str> {
    ITEM_VOCABULARY.to_vec()
}

/// CRC-32C of `data` (hardware instructions where present).
#[pyfunction]
#[pyo3(name = "crc32c")]
fn crc32c_checksum(py: Python<'_>, data: &[u8]) -> u32 {
    if data.len() > 1 << 16 {
        let owned = data.to_vec();
        without_gil(py, move || super::checksum(&owned))
    } else {
        super::checksum(data)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDecodedBatch>()?;
    m.add_function(wrap_pyfunction!(decode_game_states, m)?)?;
    m.add_function(wrap_pyfunction!(decode_training_samples, m)?)?;
    m.add_function(wrap_pyfunction!(item_vocabulary, m)?)?;
    m.add_function(wrap_pyfunction!(check_batch, m)?)?;
    m.add_function(wrap_pyfunction!(crc32c_checksum, m)?)?;
    super::contract_py::register(m)
}
