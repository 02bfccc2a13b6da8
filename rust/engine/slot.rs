//! The answer slot of one request: settled exactly once (a result, an error, or cancelled),
//! waited on without the GIL, with done-callbacks handed back to the settler to run.
//!
//! The semantics are those of `concurrent.futures.Future`: `cancel` succeeds only while the
//! request is still queued (not yet taken into a batch that runs); callbacks added after the
//! answer run at once; a second `settle` is refused, so no answer is ever overwritten.

use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::error::CoreError;

/// What a slot holds once settled. `error` builds the engine's own refusals (deadline,
/// closed, overloaded) and `cancelled` the answer of a cancelled request.
pub trait Answer: Send + 'static {
    fn error(e: CoreError) -> Self;
    fn cancelled() -> Self;
}

struct State<A, C> {
    answer: Option<A>,
    running: bool,
    cancelled: bool,
    callbacks: Vec<C>,
}

pub struct Slot<A, C> {
    state: Mutex<State<A, C>>,
    done: Condvar,
}

impl<A: Answer, C: Send> Default for Slot<A, C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Answer, C: Send> Slot<A, C> {
    pub fn new() -> Self {
        Slot {
            state: Mutex::new(State {
                answer: None,
                running: false,
                cancelled: false,
                callbacks: Vec::new(),
            }),
            done: Condvar::new(),
        }
    }

    /// Store the answer and wake the waiters. `Ok(callbacks)`: the caller runs them (once);
    /// `Err(answer)`: the slot was already settled (or cancelled), the answer is handed back
    /// unstored.
    pub fn settle(&self, answer: A) -> Result<Vec<C>, A> {
        let mut s = self.state.lock();
        if s.answer.is_some() {
            return Err(answer);
        }
        s.answer = Some(answer);
        self.done.notify_all();
        Ok(std::mem::take(&mut s.callbacks))
    }

    /// Mark the request taken into a batch: from now on `cancel` fails. False when it was
    /// already answered (cancelled): the batch leaves it out.
    pub fn start(&self) -> bool {
        let mut s = self.state.lock();
        if s.answer.is_some() {
            return false;
        }
        s.running = true;
        true
    }

    /// Cancel a request still queued: `Some(callbacks)` to run, None when it is running or
    /// done (a cancelled slot answers `cancel` with `Some` again, as `Future.cancel` does).
    pub fn cancel(&self) -> Option<Vec<C>> {
        let mut s = self.state.lock();
        if s.cancelled {
            return Some(Vec::new());
        }
        if s.running || s.answer.is_some() {
            return None;
        }
        s.cancelled = true;
        s.answer = Some(A::cancelled());
        self.done.notify_all();
        Some(std::mem::take(&mut s.callbacks))
    }

    /// Queue `cb` for when the slot settles; `Some(cb)` back when it already has (run it now).
    pub fn add_callback(&self, cb: C) -> Option<C> {
        let mut s = self.state.lock();
        if s.answer.is_some() {
            return Some(cb);
        }
        s.callbacks.push(cb);
        None
    }

    /// Wait until settled or `until` passes; true when settled.
    pub fn wait(&self, until: Option<Instant>) -> bool {
        let mut s = self.state.lock();
        while s.answer.is_none() {
            match until {
                None => self.done.wait(&mut s),
                Some(t) => {
                    if self.done.wait_until(&mut s, t).timed_out() {
                        return s.answer.is_some();
                    }
                }
            }
        }
        true
    }

    pub fn is_done(&self) -> bool {
        self.state.lock().answer.is_some()
    }

    pub fn is_running(&self) -> bool {
        let s = self.state.lock();
        s.running && s.answer.is_none()
    }

    pub fn is_cancelled(&self) -> bool {
        self.state.lock().cancelled
    }

    /// Read the answer (None while pending).
    pub fn with_answer<R>(&self, f: impl FnOnce(&A) -> R) -> Option<R> {
        self.state.lock().answer.as_ref().map(f)
    }

    /// Replace the settled answer by what `f` makes of it (the Python binding caches the
    /// result object it built, so that `result()` returns the same object every time).
    pub fn update<R>(&self, f: impl FnOnce(&mut A) -> R) -> Option<R> {
        self.state.lock().answer.as_mut().map(f)
    }
}
