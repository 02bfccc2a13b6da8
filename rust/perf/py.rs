//! Python bindings of the numeric helpers. Arrays cross as buffers (numpy arrays, bytes,
//! memoryviews) without a copy; the Python facade (`system0.utils.performance_utils`) allocates
//! outputs and checks dtypes, and these functions check contiguity, writability and overlap.

use pyo3::buffer::{Element, PyBuffer};
use pyo3::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::gil::without_gil;

/// Below this many bytes the work takes less time than releasing and taking back the GIL.
const RELEASE_GIL_BYTES: usize = 256 * 1024;

/// A contiguous buffer's address and length, plain integers so a closure that runs without
/// the GIL may carry it. The `PyBuffer` it came from stays alive (and the export held) for as
/// long as the `Raw` is used: both live in the calling function's frame.
#[derive(Clone, Copy)]
struct Raw {
    addr: usize,
    len: usize,
}

fn raw<T: Element>(buf: &PyBuffer<T>, what: &str, write: bool) -> CoreResult<Raw> {
    if write && buf.readonly() {
        return Err(CoreError::InvalidArgument(format!(
            "{what} is read-only; pass a writable array (numpy.empty_like(...))"
        )));
    }
    let ptr = buf.as_slice_ptr().ok_or_else(|| {
        CoreError::InvalidArgument(format!(
            "{what} is not C-contiguous; pass numpy.ascontiguousarray(...)"
        ))
    })?;
    Ok(Raw {
        addr: ptr.as_ptr() as *mut T as usize,
        len: buf.item_count(),
    })
}

fn disjoint(a: Raw, a_size: usize, b: Raw, b_size: usize) -> CoreResult<()> {
    let (a0, a1) = (a.addr, a.addr + a.len * a_size);
    let (b0, b1) = (b.addr, b.addr + b.len * b_size);
    if a0 < b1 && b0 < a1 && a.len > 0 && b.len > 0 {
        return Err(CoreError::InvalidArgument(
            "dst overlaps src; pass a separate output array".into(),
        ));
    }
    Ok(())
}

/// # Safety
/// `r` must describe a live, contiguous buffer of `T` that no `&mut` aliases.
unsafe fn view<'a, T>(r: Raw) -> &'a [T] {
    if r.len == 0 {
        return &[];
    }
    std::slice::from_raw_parts(r.addr as *const T, r.len)
}

/// # Safety
/// `r` must describe a live, contiguous, writable buffer of `T` that nothing else aliases.
unsafe fn view_mut<'a, T>(r: Raw) -> &'a mut [T] {
    if r.len == 0 {
        return &mut [];
    }
    std::slice::from_raw_parts_mut(r.addr as *mut T, r.len)
}

fn run<R: Send>(py: Python<'_>, bytes: usize, f: impl FnOnce() -> R + Send) -> R {
    if bytes >= RELEASE_GIL_BYTES {
        without_gil(py, f)
    } else {
        f()
    }
}

fn in_out<A: Element, B: Element>(
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
) -> CoreResult<(PyBuffer<A>, PyBuffer<B>)> {
    let a = PyBuffer::<A>::get(src).map_err(|e| CoreError::InvalidArgument(format!("src: {e}")))?;
    let b = PyBuffer::<B>::get(dst).map_err(|e| CoreError::InvalidArgument(format!("dst: {e}")))?;
    Ok((a, b))
}

/// Normalize a row-major float32 matrix column by column into `dst`, clamped to +-clip.
#[pyfunction]
#[pyo3(signature = (src, dst, mean, inv_std, clip = f32::INFINITY))]
fn perf_normalize(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    clip: f32,
) -> PyResult<()> {
    let (a, b) = in_out::<f32, f32>(src, dst)?;
    let (ra, rb) = (raw(&a, "src", false)?, raw(&b, "dst", true)?);
    disjoint(ra, 4, rb, 4)?;
    // SAFETY: both buffers are held by `a` and `b` until return, and do not overlap.
    run(py, ra.len * 4, move || unsafe {
        super::normalize(view(ra), view_mut(rb), &mean, &inv_std, clip)
    })?;
    Ok(())
}

/// Largest absolute value of a float32 buffer (NaN if any value is NaN).
#[pyfunction]
fn perf_absmax(py: Python<'_>, src: &Bound<'_, PyAny>) -> PyResult<f32> {
    let a = PyBuffer::<f32>::get(src)?;
    let ra = raw(&a, "src", false)?;
    // SAFETY: `a` holds the buffer until return.
    Ok(run(py, ra.len * 4, move || unsafe {
        super::absmax(view(ra))
    }))
}

/// Symmetric int8 quantization of float32 `src` into int8 `dst` with the given scale.
#[pyfunction]
fn perf_quantize_int8(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    scale: f32,
) -> PyResult<()> {
    let (a, b) = in_out::<f32, i8>(src, dst)?;
    let (ra, rb) = (raw(&a, "src", false)?, raw(&b, "dst", true)?);
    disjoint(ra, 4, rb, 1)?;
    // SAFETY: held by `a` and `b`, disjoint.
    run(py, ra.len * 4, move || unsafe {
        super::quantize_int8(view(ra), view_mut(rb), scale)
    })?;
    Ok(())
}

/// `dst = src * scale` from int8 to float32.
#[pyfunction]
fn perf_dequantize_int8(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    scale: f32,
) -> PyResult<()> {
    let (a, b) = in_out::<i8, f32>(src, dst)?;
    let (ra, rb) = (raw(&a, "src", false)?, raw(&b, "dst", true)?);
    disjoint(ra, 1, rb, 4)?;
    // SAFETY: held by `a` and `b`, disjoint.
    run(py, rb.len * 4, move || unsafe {
        super::dequantize_int8(view(ra), view_mut(rb), scale)
    })?;
    Ok(())
}

/// float32 `src` to IEEE binary16 bit patterns in uint16 `dst`.
#[pyfunction]
fn perf_to_fp16(py: Python<'_>, src: &Bound<'_, PyAny>, dst: &Bound<'_, PyAny>) -> PyResult<()> {
    let (a, b) = in_out::<f32, u16>(src, dst)?;
    let (ra, rb) = (raw(&a, "src", false)?, raw(&b, "dst", true)?);
    disjoint(ra, 4, rb, 2)?;
    // SAFETY: held by `a` and `b`, disjoint.
    run(py, ra.len * 4, move || unsafe {
        super::f32_to_f16(view(ra), view_mut(rb))
    })?;
    Ok(())
}

/// IEEE binary16 bit patterns in uint16 `src` to float32 `dst`.
#[pyfunction]
fn perf_from_fp16(py: Python<'_>, src: &Bound<'_, PyAny>, dst: &Bound<'_, PyAny>) -> PyResult<()> {
    let (a, b) = in_out::<u16, f32>(src, dst)?;
    let (ra, rb) = (raw(&a, "src", false)?, raw(&b, "dst", true)?);
    disjoint(ra, 2, rb, 4)?;
    // SAFETY: held by `a` and `b`, disjoint.
    run(py, rb.len * 4, move || unsafe {
        super::f16_to_f32(view(ra), view_mut(rb))
    })?;
    Ok(())
}

/// CRC-32C of any contiguous bytes-like object, continuing from `seed`.
#[pyfunction]
#[pyo3(signature = (data, seed = 0))]
fn perf_crc32c(py: Python<'_>, data: &Bound<'_, PyAny>, seed: u32) -> PyResult<u32> {
    let a = PyBuffer::<u8>::get(data).map_err(|e| {
        CoreError::InvalidArgument(format!(
            "data: {e}; pass bytes or a byte view (memoryview(arr).cast('B'))"
        ))
    })?;
    let ra = raw(&a, "data", false)?;
    // SAFETY: `a` holds the buffer until return.
    Ok(run(py, ra.len, move || unsafe {
        super::crc32c(view(ra), seed)
    }))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(perf_normalize, m)?)?;
    m.add_function(wrap_pyfunction!(perf_absmax, m)?)?;
    m.add_function(wrap_pyfunction!(perf_quantize_int8, m)?)?;
    m.add_function(wrap_pyfunction!(perf_dequantize_int8, m)?)?;
    m.add_function(wrap_pyfunction!(perf_to_fp16, m)?)?;
    m.add_function(wrap_pyfunction!(perf_from_fp16, m)?)?;
    m.add_function(wrap_pyfunction!(perf_crc32c, m)?)?;
    Ok(())
}
