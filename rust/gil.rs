//! The one place where system0 releases the GIL (as polars does): long or blocking Rust work
//! runs inside `without_gil` (or `released`, which also converts errors and panics), and
//! touches no Python object while it runs.
//!
//! Blocking waits go through `wait_in_slices`: a wait releases the GIL for at most `SLICE` at
//! a time, then takes it back and checks pending signals, so Ctrl-C interrupts a blocking
//! `get` or `acquire` with `KeyboardInterrupt`. A notify still ends a wait at once; the slice
//! only bounds how long a signal waits to be seen. Invariant: the state carried between
//! slices is owned by the caller's frame, so an interrupt drops it with the GIL held.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use pyo3::marker::Ungil;
use pyo3::{PyResult, Python};

use crate::error::{CoreError, CoreResult};

/// The longest a blocking wait keeps the GIL released before it looks for signals.
pub const SLICE: Duration = Duration::from_millis(50);

/// Run `f` with the GIL released. `f` must not touch Python objects; the `Send`
/// bound (pyo3's `Ungil`, written as `Send` in the helpers below) makes the compiler check
/// most of that.
#[inline]
pub fn without_gil<T, F>(py: Python<'_>, f: F) -> T
where
    F: Ungil + FnOnce() -> T,
    T: Ungil,
{
    py.detach(f)
}

/// `without_gil` for fallible work: its `CoreError` becomes the matching Python exception,
/// and a panic becomes an `InternalError` naming `what` instead of aborting the interpreter.
pub fn released<T, F>(py: Python<'_>, what: &str, f: F) -> PyResult<T>
where
    F: Send + FnOnce() -> CoreResult<T>,
    T: Send,
{
    match without_gil(py, || catch_unwind(AssertUnwindSafe(f))) {
        Ok(r) => Ok(r?),
        Err(_) => Err(CoreError::Internal(format!(
            "{what} panicked inside system0; please report it with the input that caused it"
        ))
        .into()),
    }
}

/// The end of the next wait slice, never past `until`.
#[inline]
pub fn slice_end(until: Option<Instant>) -> Instant {
    let s = Instant::now() + SLICE;
    match until {
        Some(t) if t < s => t,
        _ => s,
    }
}

/// True once `until` (None = never) has passed.
#[inline]
pub fn passed(until: Option<Instant>) -> bool {
    until.is_some_and(|t| Instant::now() >= t)
}

/// What one slice of a blocking wait ended with.
pub enum Slice<S, T> {
    /// The wait is over with this result.
    Done(T),
    /// Nothing yet; the state to carry into the next slice.
    Again(S),
}

/// Wait until `until` (None = forever) by calling `step(state, slice_end)` with the GIL
/// released, one slice at a time. Returns `Ok(Ok(result))` when a step finished,
/// `Ok(Err(state))` when `until` passed first, and the signal handler's exception (usually
/// `KeyboardInterrupt`) when one was raised between slices. `interruptible(&state)` says
/// whether a signal may end the wait now: a caller that already holds items it must hand
/// back says no, and the wait goes on until it can return them.
pub fn wait_in_slices<S, T, F>(
    py: Python<'_>,
    until: Option<Instant>,
    mut state: S,
    mut step: F,
    interruptible: impl Fn(&S) -> bool,
) -> PyResult<Result<T, S>>
where
    S: Send,
    T: Send,
    F: Send + FnMut(S, Instant) -> Slice<S, T>,
{
    loop {
        if passed(until) {
            return Ok(Err(state));
        }
        let end = slice_end(until);
        let step = &mut step;
        match without_gil(py, move || step(state, end)) {
            Slice::Done(t) => return Ok(Ok(t)),
            Slice::Again(s) => state = s,
        }
        if !passed(until) && interruptible(&state) {
            py.check_signals()?;
        }
    }
}

/// Validate a timeout in seconds: None = wait forever, 0 = do not wait; past 1e9 s (or
/// infinity) is forever too. `owner` names the object in the error message (built only on
/// error).
#[inline]
pub fn parse_timeout(
    owner: impl FnOnce() -> String,
    timeout: Option<f64>,
) -> CoreResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(CoreError::InvalidArgument(format!(
            "{}: timeout must be None (wait forever) or a number of seconds >= 0, got {t}",
            owner()
        ))),
        Some(t) if t.is_infinite() || t > 1e9 => Ok(None),
        Some(t) => Ok(Some(Instant::now() + Duration::from_secs_f64(t))),
    }
}
