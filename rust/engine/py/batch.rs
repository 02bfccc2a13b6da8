//! `EngineBatch`: one batch on the thread that runs its model. Python enters here once per
//! batch: to read the matrix, hand back the outputs, and settle the answers.

use std::ffi::{c_int, c_void};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::future::PyEngineFuture;
use super::{as_f32, run_callbacks, BatchOut, Callback, PyAnswer, PySlot, Shared};
use crate::engine::batch::Gathered;
use crate::engine::outputs::{scan, Refused};
use crate::engine::spans::BatchFacts;
use crate::error::CoreError;

/// One batch on its way through the model, held by the thread that runs it. Its matrix is
/// exported through the buffer protocol (`numpy.asarray(batch)`: float32, `(padded, width)`,
/// no copy); the matrix is never written or freed while the batch object lives.
#[pyclass(module = "system0._core", name = "EngineBatch", frozen)]
pub struct PyEngineBatch {
    shared: Arc<Shared>,
    gathered: Mutex<Gathered<PyAnswer, Callback>>,
    /// The matrix and its `(height, width)` shape, set once by `open`.
    matrix: OnceLock<(Box<[f32]>, [ffi::Py_ssize_t; 2])>,
    strides: [ffi::Py_ssize_t; 2],
    inline: bool,
    inline_slot: Option<Arc<PySlot>>,
    outputs: Mutex<Option<(Py<PyAny>, Vec<i64>)>>,
}

impl PyEngineBatch {
    pub(super) fn wrap(
        py: Python<'_>,
        shared: &Arc<Shared>,
        mut g: Gathered<PyAnswer, Callback>,
        inline_slot: Option<Arc<PySlot>>,
    ) -> PyResult<Py<Self>> {
        let width = shared.engine.cfg.width;
        let matrix = OnceLock::new();
        if inline_slot.is_some() {
            let _ = matrix.set(shaped(std::mem::take(&mut g.matrix), width));
        }
        Py::new(
            py,
            PyEngineBatch {
                shared: shared.clone(),
                inline: g.inline,
                gathered: Mutex::new(g),
                matrix,
                strides: [(width * 4) as ffi::Py_ssize_t, 4],
                inline_slot,
                outputs: Mutex::new(None),
            },
        )
    }
}

#[pymethods]
impl PyEngineBatch {
    /// Answer the requests that cannot make their deadline (or were cancelled) and lay out
    /// the rest; the number of rows to run (0: nothing to do). Call with the run lock held.
    fn open(slf: &Bound<'_, Self>) -> PyResult<(usize, u64, usize)> {
        let py = slf.py();
        let me = slf.get();
        if me.matrix.get().is_some() {
            let g = me.gathered.lock();
            return Ok((g.rows(), g.batch_id, g.padded));
        }
        let now = me.shared.now(py)?;
        let width = me.shared.engine.cfg.width;
        let (cbs, n, id, padded, m) = {
            let mut g = me.gathered.lock();
            let cbs = g.open(&me.shared.engine, now);
            let m = shaped(std::mem::take(&mut g.matrix), width);
            (cbs, g.rows(), g.batch_id, g.padded, m)
        };
        let _ = me.matrix.set(m);
        run_callbacks(py, cbs);
        Ok((n, id, padded))
    }

    /// Take the model's outputs (rows >= requests; any dtype, read as float32): False when a
    /// real row holds NaN or infinity (the caller raises `NonFiniteOutput`), else True with
    /// the action of each row computed. `check=False` (a fallback's answer) skips the
    /// finite check.
    #[pyo3(signature = (outputs, check=true))]
    fn set_outputs(
        &self,
        py: Python<'_>,
        outputs: &Bound<'_, PyAny>,
        check: bool,
    ) -> PyResult<bool> {
        let n = self.gathered.lock().rows();
        let arr = as_f32(py, outputs)?;
        let buf = PyBuffer::<f32>::get(&arr)?;
        let shape = buf.shape().to_vec();
        if shape.len() != 2 {
            return Err(PyValueError::new_err(format!(
                "the model returned outputs of shape {shape:?}; return one row per input row, (batch, outputs)"
            )));
        }
        let values = buf.to_vec(py)?;
        let actions = match scan(&values, shape[1], n) {
            Ok(a) => a,
            Err(Refused::NonFinite { .. }) if check => return Ok(false),
            Err(Refused::NonFinite { .. }) => {
                // a fallback's NaN: its actions are still the first max, NaN rows action 0
                values.chunks_exact(shape[1]).take(n).map(|r| {
                    let mut best = 0;
                    for (j, v) in r.iter().enumerate() {
                        if *v > r[best] { best = j; }
                    }
                    best as i64
                }).collect()
            }
            Err(Refused::Shape { rows, cols, need }) => {
                return Err(PyValueError::new_err(format!(
                    "the model returned {rows} rows of {cols} outputs for {need} requests; return one row per input row"
                )))
            }
        };
        *self.outputs.lock() = Some((arr.unbind(), actions));
        Ok(true)
    }

    /// The outputs taken by `set_outputs` (as the results read them), None before.
    #[getter]
    fn outputs(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.outputs.lock().as_ref().map(|(o, _)| o.clone_ref(py))
    }

    /// The actions of the rows, int64 (for the flight recorder).
    fn actions(&self) -> Vec<i64> {
        self.outputs
            .lock()
            .as_ref()
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    }

    /// Answer every request from the outputs taken by `set_outputs` (`reason`: the fallback
    /// answered). Times are on the engine clock.
    #[pyo3(signature = (reason, start_ns, model_ns, end_ns, joules=None))]
    fn finish(
        &self,
        py: Python<'_>,
        reason: Option<String>,
        start_ns: u64,
        model_ns: u64,
        end_ns: u64,
        joules: Option<f64>,
    ) -> PyResult<()> {
        let Some((outputs, actions)) = self.outputs.lock().take() else {
            return Err(CoreError::Internal("finish() before set_outputs()".into()).into());
        };
        let (rows, batch_id) = {
            let g = self.gathered.lock();
            (g.rows(), g.batch_id)
        };
        let out = Arc::new(BatchOut {
            outputs,
            actions,
            fallback: reason.is_some(),
            reason: reason.as_deref().map(|r| PyString::new(py, r).unbind()),
            batch_size: rows,
            batch_id,
            model_ns,
        });
        let facts = BatchFacts {
            reason,
            joules,
            ..Default::default()
        };
        let cbs = self.gathered.lock().finish(
            &self.shared.engine,
            start_ns,
            end_ns,
            model_ns,
            facts,
            |row, wait, total| PyAnswer::Ok {
                out: out.clone(),
                row,
                wait,
                total,
                built: None,
            },
        );
        run_callbacks(py, cbs);
        Ok(())
    }

    /// The model failed and there is no fallback: every request raises `exc`.
    fn fail(&self, py: Python<'_>, exc: &Bound<'_, PyAny>) -> PyResult<()> {
        let message = format!(
            "{}: {}",
            exc.get_type().name().map_or("?".into(), |n| n.to_string()),
            exc.str().map_or("?".into(), |s| s.to_string())
        );
        let cbs = self
            .gathered
            .lock()
            .fail(&self.shared.engine, &message, || {
                PyAnswer::Raised(exc.clone().unbind())
            });
        run_callbacks(py, cbs);
        Ok(())
    }

    /// The inline call's answer (its result, or its error raised).
    fn inline_result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let Some(slot) = &self.inline_slot else {
            return Err(PyValueError::new_err("not an inline batch"));
        };
        let f = PyEngineFuture {
            slot: slot.clone(),
            shared: self.shared.clone(),
        };
        f.outcome(py)?
    }

    #[getter]
    fn rows(&self) -> usize {
        self.gathered.lock().rows()
    }

    #[getter]
    fn padded(&self) -> usize {
        self.gathered.lock().padded
    }

    #[getter]
    fn batch_id(&self) -> u64 {
        self.gathered.lock().batch_id
    }

    #[getter]
    fn inline(&self) -> bool {
        self.inline
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("a null view was passed"));
        }
        let me = slf.get();
        let Some((m, shape)) = me.matrix.get() else {
            return Err(PyBufferError::new_err(
                "the batch is not open yet; call open() first",
            ));
        };
        // SAFETY: `view` is a valid Py_buffer to fill (the caller's); the matrix lives in a
        // OnceLock of the exporter, never mutated or moved after it is set, and `obj` keeps
        // the exporter alive while the view exists; CPython never writes through shape.
        unsafe {
            (*view).obj = slf.clone().into_any().into_ptr();
            (*view).buf = m.as_ptr() as *mut c_void;
            (*view).len = (m.len() * 4) as ffi::Py_ssize_t;
            (*view).readonly = 0;
            (*view).itemsize = 4;
            (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
                c"f".as_ptr() as *mut _
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = 2;
            let shape = shape.as_ptr() as *mut ffi::Py_ssize_t;
            (*view).shape = if flags & ffi::PyBUF_ND == ffi::PyBUF_ND {
                shape
            } else {
                std::ptr::null_mut()
            };
            (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
                me.strides.as_ptr() as *mut _
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

impl Drop for PyEngineBatch {
    /// A batch dropped unanswered (its runner died mid-way) answers its requests with an
    /// internal error rather than leaving them hanging.
    fn drop(&mut self) {
        let g = self.gathered.get_mut();
        if g.rows() == 0 {
            return;
        }
        let msg = format!(
            "{}: the batch was dropped before it was answered",
            self.shared.engine.cfg.name
        );
        let cbs = g.fail(&self.shared.engine, &msg, || {
            PyAnswer::Error(CoreError::Internal(msg.clone()))
        });
        Python::attach(|py| run_callbacks(py, cbs));
    }
}

/// The matrix with its shape, as the buffer export describes it.
fn shaped(m: Vec<f32>, width: usize) -> (Box<[f32]>, [ffi::Py_ssize_t; 2]) {
    let h = m.len() / width;
    (
        m.into_boxed_slice(),
        [h as ffi::Py_ssize_t, width as ffi::Py_ssize_t],
    )
}
