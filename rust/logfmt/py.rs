//! Python bindings of JSON log records: the fast `Logger` (the whole record built and written
//! in Rust) and `format_log_record`, which the `logging.Formatter` of `system0.core.logging`
//! calls.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::{begin_record, end_record, field, json, level_name, parse_level};
use crate::error::CoreError;
use crate::pyconv::text;

/// Nesting deeper than this is written as `str(value)`, so a cyclic structure cannot recurse
/// forever.
const MAX_DEPTH: usize = 8;

thread_local! {
    // One reusable buffer per thread: formatting a record allocates nothing once warm.
    static BUF: RefCell<String> = RefCell::new(String::with_capacity(512));
}

/// Appends a Python value as JSON: str, bool, None, int (any size), float, dict (keys as
/// strings), list and tuple keep their JSON shape; anything else is written as `str(value)`.
fn write_value(out: &mut String, v: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
    if let Ok(s) = v.cast::<PyString>() {
        json::write_str(out, &text(s));
    } else if v.is_none() {
        out.push_str("null");
    } else if let Ok(b) = v.cast::<PyBool>() {
        out.push_str(if b.is_true() { "true" } else { "false" });
    } else if let Ok(i) = v.cast::<PyInt>() {
        match i.extract::<i64>() {
            Ok(n) => json::write_i64(out, n),
            // Python's decimal form of an int is a valid JSON number of any size.
            Err(_) => out.push_str(&text(&i.str()?)),
        }
    } else if let Ok(f) = v.cast::<PyFloat>() {
        json::write_f64(out, f.value());
    } else if depth >= MAX_DEPTH {
        json::write_str(out, &text(&v.str()?));
    } else if let Ok(d) = v.cast::<PyDict>() {
        out.push('{');
        for (i, (k, val)) in d.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match k.cast::<PyString>() {
                Ok(ks) => json::write_str(out, &text(ks)),
                Err(_) => json::write_str(out, &text(&k.str()?)),
            }
            out.push(':');
            write_value(out, &val, depth + 1)?;
        }
        out.push('}');
    } else if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        out.push('[');
        for (i, item) in v.try_iter()?.enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_value(out, &item?, depth + 1)?;
        }
        out.push(']');
    } else {
        json::write_str(out, &text(&v.str()?));
    }
    Ok(())
}

fn write_fields(out: &mut String, fields: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
    if let Some(d) = fields {
        for (k, v) in d.iter() {
            field(out, &text(k.cast::<PyString>()?));
            write_value(out, &v, 0)?;
        }
    }
    Ok(())
}

/// Builds one record in the thread's buffer and hands the finished line to `sink`.
fn with_record<R>(
    py: Python<'_>,
    level: &str,
    logger: &str,
    event: &Bound<'_, PyString>,
    fields: Option<&Bound<'_, PyDict>>,
    sink: impl FnOnce(&str) -> PyResult<R>,
) -> PyResult<R> {
    let unix_ns = crate::clock::unix_now_ns();
    let ids = crate::trace::py::current_ids(py)?;
    BUF.with(|cell| {
        // A re-entrant call (a field's __str__ that logs) finds the buffer borrowed and
        // formats into a fresh one instead.
        let mut fresh = String::new();
        let mut guard = cell.try_borrow_mut().ok();
        let buf = guard.as_deref_mut().unwrap_or(&mut fresh);
        buf.clear();
        begin_record(buf, unix_ns, level, logger, &text(event), ids);
        write_fields(buf, fields)?;
        end_record(buf);
        sink(buf)
    })
}

enum Sink {
    /// A raw file descriptor, written with one write(2) per record (lines from several
    /// processes never interleave mid-record), the GIL released.
    Fd(i32),
    /// The bound `write` method of a Python stream, given bytes or str.
    Stream { write: Py<PyAny>, text: bool },
}

/// A structured logger whose records (JSON lines with the current trace context) are
/// formatted in Rust. Create it through `system0.core.logging.get_logger`.
#[pyclass(module = "system0._core", name = "Logger", frozen)]
pub struct PyLogger {
    name: String,
    level: AtomicU8,
    sink: Sink,
}

impl PyLogger {
    fn emit(
        &self,
        py: Python<'_>,
        level: u8,
        event: &Bound<'_, PyString>,
        kw: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        if level < self.level.load(Ordering::Relaxed) {
            return Ok(());
        }
        with_record(py, level_name(level), &self.name, event, kw, |line| {
            match &self.sink {
                Sink::Fd(fd) => {
                    let fd = *fd;
                    let bytes = line.as_bytes();
                    crate::gil::without_gil(py, || write_fd(fd, bytes))?;
                }
                Sink::Stream { write, text: true } => {
                    write.bind(py).call1((PyString::new(py, line),))?;
                }
                Sink::Stream { write, text: false } => {
                    write.bind(py).call1((PyBytes::new(py, line.as_bytes()),))?;
                }
            }
            Ok(())
        })
    }
}

fn write_fd(fd: i32, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::fd::FromRawFd;
    // SAFETY: the File is never dropped (ManuallyDrop), so the caller's fd stays open and
    // owned by the caller; a closed or invalid fd makes write(2) fail with EBADF.
    let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    f.write_all(bytes)
}

#[pymethods]
impl PyLogger {
    #[new]
    #[pyo3(signature = (name, /, *, fd=None, stream=None, text=false, level="info"))]
    fn new(
        name: String,
        fd: Option<i32>,
        stream: Option<&Bound<'_, PyAny>>,
        text: bool,
        level: &str,
    ) -> PyResult<Self> {
        let sink = match (fd, stream) {
            (Some(fd), None) if fd >= 0 => Sink::Fd(fd),
            (None, Some(s)) => Sink::Stream {
                write: s.getattr("write")?.unbind(),
                text,
            },
            _ => {
                return Err(CoreError::InvalidArgument(format!(
                    "Logger {name:?} needs exactly one sink: fd=<open file descriptor >= 0> or \
                     stream=<object with write()>"
                ))
                .into())
            }
        };
        Ok(Self {
            name,
            level: AtomicU8::new(parse_level(level)?),
            sink,
        })
    }

    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The minimum level written, as a number (10 debug ... 50 critical).
    #[getter]
    fn level(&self) -> u8 {
        self.level.load(Ordering::Relaxed)
    }

    fn set_level(&self, level: &str) -> PyResult<()> {
        self.level.store(parse_level(level)?, Ordering::Relaxed);
        Ok(())
    }

    fn is_enabled_for(&self, level: &str) -> PyResult<bool> {
        Ok(parse_level(level)? >= self.level.load(Ordering::Relaxed))
    }

    #[pyo3(signature = (event, /, **fields))]
    fn debug(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyString>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.emit(py, super::DEBUG, event, fields)
    }

    #[pyo3(signature = (event, /, **fields))]
    fn info(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyString>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.emit(py, super::INFO, event, fields)
    }

    #[pyo3(signature = (event, /, **fields))]
    fn warning(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyString>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.emit(py, super::WARNING, event, fields)
    }

    #[pyo3(signature = (event, /, **fields))]
    fn error(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyString>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.emit(py, super::ERROR, event, fields)
    }

    #[pyo3(signature = (event, /, **fields))]
    fn critical(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyString>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.emit(py, super::CRITICAL, event, fields)
    }

    /// Logs at error level with the exception being handled as the field `exception`.
    #[pyo3(signature = (event, /, **fields))]
    fn exception(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyString>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let d = match fields {
            Some(f) => f.copy()?,
            None => PyDict::new(py),
        };
        let tb = py.import("traceback")?.call_method0("format_exc")?;
        d.set_item("exception", tb)?;
        self.emit(py, super::ERROR, event, Some(&d))
    }

    /// Logs at a level given by name or number.
    #[pyo3(signature = (level, event, /, **fields))]
    fn log(
        &self,
        py: Python<'_>,
        level: &str,
        event: &Bound<'_, PyString>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.emit(py, parse_level(level)?, event, fields)
    }

    fn __repr__(&self) -> String {
        format!(
            "Logger({:?}, level={})",
            self.name,
            level_name(self.level())
        )
    }
}

/// One JSON record (with its trailing newline) for `event` with `fields`, carrying the trace
/// context current in the calling context. `level` is a name written as given.
#[pyfunction]
#[pyo3(signature = (level, logger, event, fields=None))]
fn format_log_record(
    py: Python<'_>,
    level: &str,
    logger: &str,
    event: &Bound<'_, PyString>,
    fields: Option<&Bound<'_, PyDict>>,
) -> PyResult<String> {
    with_record(py, level, logger, event, fields, |line| Ok(line.to_owned()))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLogger>()?;
    m.add_function(wrap_pyfunction!(format_log_record, m)?)?;
    Ok(())
}
