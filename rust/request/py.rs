//! Python binding of the request path: `featurize_requests(requests, pad_rows_to=None)`.
//!
//! Dicts and pydantic models are walked here, in Rust, onto one tape that reads as their JSON
//! form would parse (`tape.rs`); bytes are read in place. The validation and the features
//! then run on that tape without touching a Python object, with the GIL released when the
//! batch is large enough for that to pay.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess, PyDict,
    PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTimeAccess, PyTuple, PyType, PyTzInfoAccess,
};
use simd_json::StaticNode;

use super::tape::TapeBuilder;
use super::{featurize, Featurized, Source};
use crate::codec::msgpack::MAX_DEPTH;
use crate::codec::validate::Issue;
use crate::error::CoreError;
use crate::features::N_FEATURES;
use crate::gil::without_gil;

/// Below this many requests the GIL stays held: validating a small tick takes less than
/// handing the GIL over and taking it back, and the walk before it needed the GIL anyway.
const RELEASE_MIN_REQUESTS: usize = 64;

static BASE_MODEL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Most values one request may put on the tape (a GameState takes about 40): what bounds
/// the walk of a dict that holds itself, or the same container many times over.
const MAX_NODES: usize = 1 << 16;

/// Records Python values on a tape as their JSON form would parse.
struct Walker<'py> {
    tape: TapeBuilder,
    base_model: Option<Bound<'py, PyType>>,
    /// Tape index where the request being walked starts.
    start: usize,
    /// Why the request being walked is refused before validation (too deep or too large).
    overflow: Option<String>,
}

impl<'py> Walker<'py> {
    /// A pydantic model's fields, as the dict they are stored in (no dump, no copy).
    fn model_fields(&self, obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyDict>> {
        let base = self.base_model.as_ref()?;
        if !obj.is_instance(base).unwrap_or(false) {
            return None;
        }
        let d = obj.getattr(intern!(obj.py(), "__dict__")).ok()?;
        d.cast_into::<PyDict>().ok()
    }

    fn object(&mut self, d: &Bound<'py, PyDict>, depth: usize) -> PyResult<()> {
        let mut open = self.tape.open_object();
        for (k, v) in d.iter() {
            if self.overflow.is_some() {
                break;
            }
            match k.cast::<PyString>() {
                Ok(s) => self.tape.string(&s.to_string_lossy()),
                // json.dumps writes a non-string key as its text; so does this
                Err(_) => self.tape.string(&k.str()?.to_string_lossy()),
            }
            self.value(&v, depth + 1)?;
            open.add();
        }
        self.tape.close(open);
        Ok(())
    }

    fn value(&mut self, obj: &Bound<'py, PyAny>, depth: usize) -> PyResult<()> {
        if depth > MAX_DEPTH {
            self.overflow = Some(format!(
                "request nests deeper than {MAX_DEPTH} levels (does it hold itself?); a \
                 GameState is 3 levels deep"
            ));
            return Ok(());
        }
        if self.tape.len() - self.start > MAX_NODES {
            self.overflow = Some(format!(
                "request holds more than {MAX_NODES} values; a GameState holds about 40"
            ));
            return Ok(());
        }
        if let Ok(s) = obj.cast::<PyString>() {
            self.tape.string(&s.to_string_lossy());
        } else if let Ok(f) = obj.cast::<PyFloat>() {
            self.tape.scalar(StaticNode::F64(f.value()));
        } else if let Ok(b) = obj.cast::<PyBool>() {
            self.tape.scalar(StaticNode::Bool(b.is_true()));
        } else if obj.cast::<PyInt>().is_ok() {
            self.tape.scalar(int_node(obj));
        } else if let Ok(d) = obj.cast::<PyDict>() {
            self.object(d, depth)?;
        } else if let Ok(l) = obj.cast::<PyList>() {
            self.array(l.iter(), l.len(), depth)?;
        } else if let Ok(t) = obj.cast::<PyTuple>() {
            self.array(t.iter(), t.len(), depth)?;
        } else if obj.is_none() {
            self.tape.scalar(StaticNode::Null);
        } else if let Ok(dt) = obj.cast::<PyDateTime>() {
            self.tape.string(&datetime_text(dt)?);
        } else if let Some(fields) = self.model_fields(obj) {
            self.object(&fields, depth)?;
        } else {
            // no JSON form (a set, a numpy scalar, an arbitrary object): null, which every
            // GameState field refuses with the type code of what it expected there
            self.tape.scalar(StaticNode::Null);
        }
        Ok(())
    }

    fn array(
        &mut self,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        len: usize,
        depth: usize,
    ) -> PyResult<()> {
        let mut open = self.tape.open_array();
        for v in items.take(len) {
            if self.overflow.is_some() {
                break;
            }
            self.value(&v, depth + 1)?;
            open.add();
        }
        self.tape.close(open);
        Ok(())
    }
}

/// A datetime as `isoformat()` writes it, which is what a JSON encoder sends: a naive one
/// has no offset, and the timestamp rule refuses it as it refuses that string. Formatted
/// here from the fields (isoformat costs some 1 us, most of a request's validation).
fn datetime_text(dt: &Bound<'_, PyDateTime>) -> PyResult<String> {
    let mut offset = String::new();
    if dt.get_tzinfo().is_some() {
        let o = dt.call_method0(intern!(dt.py(), "utcoffset"))?;
        if let Ok(td) = o.cast::<PyDelta>() {
            let secs = i64::from(td.get_days()) * 86_400 + i64::from(td.get_seconds());
            if secs % 60 != 0 || td.get_microseconds() != 0 {
                // sub-minute offsets exist in Python, not in RFC 3339: let isoformat say it
                let iso = dt.call_method0(intern!(dt.py(), "isoformat"))?;
                return Ok(iso.cast::<PyString>()?.to_string_lossy().into_owned());
            }
            let (sign, m) = if secs < 0 {
                ('-', -secs / 60)
            } else {
                ('+', secs / 60)
            };
            offset = format!("{sign}{:02}:{:02}", m / 60, m % 60);
        }
    }
    let micro = dt.get_microsecond();
    let frac = if micro == 0 {
        String::new()
    } else {
        format!(".{micro:06}")
    };
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}{offset}",
        dt.get_year(),
        dt.get_month(),
        dt.get_day(),
        dt.get_hour(),
        dt.get_minute(),
        dt.get_second(),
    ))
}

/// An int as JSON would carry it: i64 or u64 where it fits, else the float it rounds to
/// (infinite past f64, which the finite-number rule refuses).
fn int_node(obj: &Bound<'_, PyAny>) -> StaticNode {
    if let Ok(v) = obj.extract::<i64>() {
        StaticNode::I64(v)
    } else if let Ok(v) = obj.extract::<u64>() {
        StaticNode::U64(v)
    } else {
        let negative = obj.lt(0).unwrap_or(false);
        let v = obj.extract::<f64>().unwrap_or(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
        StaticNode::F64(v)
    }
}

/// Where each request was put before the tape is finished (sources borrow from these).
enum Placed {
    Tape(usize),
    Bytes(usize),
    Owned(usize),
    Refused(usize),
}

type Errors = Vec<(u32, String, &'static str, String)>;

static NDARRAY: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static FLOAT32: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A float32 `(height, N_FEATURES)` numpy array over `buf` (no copy; it keeps `buf` alive).
/// Made here rather than in Python: for a single request the array costs as much as the
/// validation, and one vectorcall with cached arguments is the cheapest way to it.
fn matrix<'py>(
    py: Python<'py>,
    buf: Bound<'py, PyByteArray>,
    height: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let ndarray = NDARRAY.import(py, "numpy", "ndarray")?;
    let f32 = FLOAT32.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("numpy")?
            .getattr("dtype")?
            .call1(("float32",))?
            .unbind())
    })?;
    ndarray.call1(((height, N_FEATURES), f32.bind(py), buf))
}

/// `(matrix, rows, errors)`: the float32 `(height, N_FEATURES)` numpy matrix of the accepted
/// requests (plus padding rows), the input index of each of its rows, and every broken rule
/// as `(index, path, code, message)`.
#[pyfunction]
#[pyo3(signature = (requests, pad_rows_to=None))]
fn featurize_requests<'py>(
    py: Python<'py>,
    requests: &Bound<'py, PyAny>,
    pad_rows_to: Option<usize>,
) -> PyResult<(Bound<'py, PyAny>, Vec<u32>, Errors)> {
    let items: Vec<Bound<'py, PyAny>> = if let Ok(l) = requests.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = requests.cast::<PyTuple>() {
        t.iter().collect()
    } else if requests.cast::<PyDict>().is_ok()
        || requests.cast::<PyBytes>().is_ok()
        || requests.cast::<PyString>().is_ok()
    {
        return Err(CoreError::InvalidArgument(
            "requests must be a sequence of requests; wrap a single one in a list".into(),
        )
        .into());
    } else {
        requests
            .try_iter()
            .map_err(|_| {
                CoreError::InvalidArgument(format!(
                    "requests must be a sequence of requests, not {}",
                    requests
                        .get_type()
                        .name()
                        .map_or("?".into(), |n| n.to_string())
                ))
            })?
            .collect::<PyResult<_>>()?
    };
    let mut walker = Walker {
        tape: TapeBuilder::with_capacity(items.len() * 40),
        base_model: BASE_MODEL.import(py, "pydantic", "BaseModel").ok().cloned(),
        start: 0,
        overflow: None,
    };
    let mut refused: Vec<Issue> = Vec::new();
    let mut owned: Vec<Vec<u8>> = Vec::new();
    let mut placed = Vec::with_capacity(items.len());
    for (i, obj) in items.iter().enumerate() {
        if obj.cast::<PyBytes>().is_ok() {
            placed.push(Placed::Bytes(i));
        } else if let Ok(b) = obj.cast::<PyByteArray>() {
            owned.push(b.to_vec());
            placed.push(Placed::Owned(owned.len() - 1));
        } else if obj.cast::<PyMemoryView>().is_ok() {
            let buf: pyo3::buffer::PyBuffer<u8> = pyo3::buffer::PyBuffer::get(obj)?;
            owned.push(buf.to_vec(py)?);
            placed.push(Placed::Owned(owned.len() - 1));
        } else {
            let at = walker.tape.len();
            walker.start = at;
            walker.value(obj, 0)?;
            match walker.overflow.take() {
                None => placed.push(Placed::Tape(at)),
                Some(message) => {
                    walker.tape.truncate(at);
                    refused.push(Issue {
                        path: String::new(),
                        code: "too_large",
                        message,
                    });
                    placed.push(Placed::Refused(refused.len() - 1));
                }
            }
        }
    }
    let nodes = walker.tape.nodes();
    let sources: Vec<Source<'_>> = placed
        .iter()
        .map(|p| match *p {
            Placed::Tape(at) => Source::Tape(at),
            // read in place: `items` holds a reference to each bytes object (immutable)
            Placed::Bytes(i) => Source::Bytes(
                items[i]
                    .cast::<PyBytes>()
                    .map(|b| b.as_bytes())
                    .unwrap_or(&[]),
            ),
            Placed::Owned(k) => Source::Bytes(&owned[k]),
            Placed::Refused(k) => Source::Refused(&refused[k]),
        })
        .collect();
    let run = || {
        catch_unwind(AssertUnwindSafe(|| {
            featurize(&nodes, &sources, pad_rows_to)
        }))
    };
    let outcome = if sources.len() >= RELEASE_MIN_REQUESTS {
        without_gil(py, run)
    } else {
        run()
    };
    let f: Featurized = outcome.map_err(|_| {
        PyErr::from(CoreError::Internal(
            "request featurization panicked; please report this input".into(),
        ))
    })??;
    let height = f.height();
    let buf = PyByteArray::new_with(py, f.features.len() * 4, |bytes| {
        for (dst, v) in bytes.chunks_exact_mut(4).zip(&f.features) {
            dst.copy_from_slice(&v.to_ne_bytes());
        }
        Ok(())
    })?;
    let errors = f
        .errors
        .into_iter()
        .map(|(i, e)| (i, e.path, e.code, e.message))
        .collect();
    Ok((matrix(py, buf, height)?, f.rows, errors))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(featurize_requests, m)?)?;
    Ok(())
}
