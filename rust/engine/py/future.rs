//! `EngineFuture`: one request's answer slot as Python sees it, with the reading side of
//! `concurrent.futures.Future`. The result object is built by the first reader (the caller,
//! who holds the GIL anyway), never by the thread that settled the batch.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use super::{run_callbacks, BatchOut, PyAnswer, PySlot, Shared};
use crate::error::CoreError;
use crate::gil::{parse_timeout, wait_in_slices, Slice};

static CANCELLED: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();
static AWAITABLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The answer to one request: `concurrent.futures.Future`'s reading side (`result`,
/// `exception`, `done`, `running`, `cancelled`, `cancel`, `add_done_callback`).
#[pyclass(module = "system0._core", name = "EngineFuture", frozen)]
pub struct PyEngineFuture {
    pub(super) slot: Arc<PySlot>,
    pub(super) shared: Arc<Shared>,
}

enum Read {
    Built(Py<PyAny>),
    Build(Arc<BatchOut>, usize, u64, u64),
    Error(CoreError),
    Raised(Py<PyAny>),
    Cancelled,
}

fn cancelled_error(py: Python<'_>) -> PyErr {
    let t = CANCELLED.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("concurrent.futures")?
                .getattr("CancelledError")?
                .cast_into::<pyo3::types::PyType>()?
                .unbind(),
        )
    });
    match t {
        Ok(t) => PyErr::from_type(t.bind(py).clone(), ()),
        Err(e) => e,
    }
}

impl PyEngineFuture {
    /// Wait for the answer: the GIL released, in the one slice loop of `gil.rs` (Ctrl-C is
    /// seen between slices).
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        if self.slot.is_done() {
            return Ok(());
        }
        let name = &self.shared.engine.cfg.name;
        let until = parse_timeout(|| format!("{name}: result"), timeout)?;
        let slot = &self.slot;
        let waited = wait_in_slices(
            py,
            until,
            (),
            |(), end| {
                if slot.wait(Some(end)) {
                    Slice::Done(())
                } else {
                    Slice::Again(())
                }
            },
            |_| true,
        )?;
        waited.map_err(|()| {
            CoreError::DeadlineExceeded(format!(
                "{name}: no answer within {:.3} s; the request is still pending",
                timeout.unwrap_or(0.0)
            ))
            .into()
        })
    }

    fn read(&self, py: Python<'_>) -> Option<Read> {
        self.slot.with_answer(|a| match a {
            PyAnswer::Ok { built: Some(r), .. } => Read::Built(r.clone_ref(py)),
            PyAnswer::Ok {
                out,
                row,
                wait,
                total,
                ..
            } => Read::Build(out.clone(), *row, *wait, *total),
            PyAnswer::Error(e) => Read::Error(e.clone()),
            PyAnswer::Raised(e) => Read::Raised(e.clone_ref(py)),
            PyAnswer::Cancelled => Read::Cancelled,
        })
    }

    fn build(
        &self,
        py: Python<'_>,
        out: &BatchOut,
        row: usize,
        wait: u64,
        total: u64,
    ) -> PyResult<Py<PyAny>> {
        let outputs = out.outputs.bind(py).get_item(row)?;
        let reason: Bound<'_, PyAny> = match &out.reason {
            Some(r) => r.bind(py).clone().into_any(),
            None => py.None().into_bound(py),
        };
        let args = (
            outputs,
            out.actions[row],
            out.fallback,
            reason,
            out.batch_size,
            out.batch_id,
            wait,
            out.model_ns,
            total,
            row,
        );
        let r = self.shared.result_type.bind(py).call1(args)?.unbind();
        // keep the first one built: every result() returns the same object
        let kept = self.slot.update(|a| match a {
            PyAnswer::Ok { built: Some(b), .. } => b.clone_ref(py),
            PyAnswer::Ok { built, .. } => {
                *built = Some(r.clone_ref(py));
                r.clone_ref(py)
            }
            _ => r.clone_ref(py),
        });
        Ok(kept.unwrap_or(r))
    }

    pub(super) fn outcome(&self, py: Python<'_>) -> PyResult<Result<Py<PyAny>, PyErr>> {
        match self.read(py) {
            None => {
                Err(CoreError::Internal("the answer was read before it was settled".into()).into())
            }
            Some(Read::Built(r)) => Ok(Ok(r)),
            Some(Read::Build(out, row, wait, total)) => {
                Ok(Ok(self.build(py, &out, row, wait, total)?))
            }
            Some(Read::Error(e)) => Ok(Err(e.into())),
            Some(Read::Raised(e)) => Ok(Err(PyErr::from_value(e.into_bound(py)))),
            Some(Read::Cancelled) => Err(cancelled_error(py)),
        }
    }
}

#[pymethods]
impl PyEngineFuture {
    /// The `InferenceResult`, or the request's error raised; waits at most `timeout` s.
    #[pyo3(signature = (timeout=None))]
    fn result(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        self.wait(py, timeout)?;
        self.outcome(py)?
    }

    /// The request's error (None when it was answered); waits at most `timeout` s.
    #[pyo3(signature = (timeout=None))]
    fn exception(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        self.wait(py, timeout)?;
        match self.read(py) {
            Some(Read::Error(e)) => Ok(Some(PyErr::from(e).into_value(py).into_any())),
            Some(Read::Raised(e)) => Ok(Some(e)),
            Some(Read::Cancelled) => Err(cancelled_error(py)),
            _ => Ok(None),
        }
    }

    fn done(&self) -> bool {
        self.slot.is_done()
    }

    fn running(&self) -> bool {
        self.slot.is_running()
    }

    fn cancelled(&self) -> bool {
        self.slot.is_cancelled()
    }

    /// Cancel while still queued (True); a request in a running batch or answered is not.
    fn cancel(&self, py: Python<'_>) -> bool {
        match self.slot.cancel() {
            Some(cbs) => {
                run_callbacks(py, cbs);
                true
            }
            None => false,
        }
    }

    /// `fn(future)` once answered (at once when it already is), on the answering thread.
    fn add_done_callback(slf: &Bound<'_, Self>, f: Py<PyAny>) {
        let py = slf.py();
        let me = slf.get();
        if let Some(cb) = me.slot.add_callback((f, slf.clone().unbind())) {
            run_callbacks(py, vec![cb]);
        }
    }

    /// `await future`: the answer through an asyncio future of the running loop (the facade's
    /// `awaitable`, which the answering thread completes with `call_soon_threadsafe`).
    fn __await__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let f = AWAITABLE.get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import("system0.interfaces.inference_engine")?
                    .getattr("awaitable")?
                    .unbind(),
            )
        })?;
        f.bind(py).call1((slf,))?.call_method0("__await__")
    }

    fn __repr__(&self) -> String {
        let state = if self.slot.is_cancelled() {
            "cancelled"
        } else if self.slot.is_done() {
            "finished"
        } else if self.slot.is_running() {
            "running"
        } else {
            "pending"
        };
        format!(
            "<EngineFuture {} state={state}>",
            self.shared.engine.cfg.name
        )
    }
}
