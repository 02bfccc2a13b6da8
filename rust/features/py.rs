//! Python binding of the feature matrix: fills a `bytearray` in place (no copy), which the
//! Python side views as a float32 numpy array.

use pyo3::prelude::*;
use pyo3::types::PyByteArray;

use super::{columns, feature_names as names, fill, DENSE_SCALES, N_FEATURES};
use crate::codec::py::import_batch;
use crate::error::CoreError;

/// `(buffer, rows, cols)`: the row-major float32 feature matrix of a GameState batch.
#[pyfunction]
#[pyo3(signature = (batch, pad_rows_to=None))]
fn features_into<'py>(
    py: Python<'py>,
    batch: &Bound<'py, PyAny>,
    pad_rows_to: Option<usize>,
) -> PyResult<(Bound<'py, PyByteArray>, usize, usize)> {
    let rb = import_batch(batch)?;
    let cols = columns(&rb)?;
    let rows = pad_rows_to.unwrap_or(cols.rows());
    if rows < cols.rows() {
        return Err(CoreError::InvalidArgument(format!(
            "pad_rows_to={rows} is smaller than the batch ({} rows); pass at least that many",
            cols.rows()
        ))
        .into());
    }
    let nbytes = rows * N_FEATURES * 4;
    let buf = PyByteArray::new_with(py, nbytes, |bytes| {
        // bytearray storage is malloc'd, so 8-byte aligned: a valid f32 slice
        let (pre, floats, post) = unsafe { bytes.align_to_mut::<f32>() };
        if !pre.is_empty() || !post.is_empty() {
            return Err(CoreError::Internal("feature buffer is not 4-byte aligned".into()).into());
        }
        fill(&cols, floats);
        Ok(())
    })?;
    Ok((buf, rows, N_FEATURES))
}

/// Names of the feature columns, in order.
#[pyfunction]
fn feature_names() -> Vec<String> {
    names()
}

/// The divisor of each dense feature column, in column order (1.0: already in [0, 1]).
#[pyfunction]
fn dense_scales() -> Vec<f64> {
    DENSE_SCALES.to_vec()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(features_into, m)?)?;
    m.add_function(wrap_pyfunction!(feature_names, m)?)?;
    m.add_function(wrap_pyfunction!(dense_scales, m)?)?;
    Ok(())
}
