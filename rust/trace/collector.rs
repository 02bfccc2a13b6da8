//! Finished spans go first into a small per-thread buffer (its own uncontended lock, so the
//! hot path never waits on another thread), which is handed to the global buffer as one batch
//! when it fills. `drain` also empties every thread's buffer first (each thread registers its
//! buffer once), so it sees every span finished before it was called, including those of
//! threads that have ended or that record rarely. The global buffer holds at most
//! `capacity()` spans; what does not fit is dropped and counted, never queued without bound.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::record::SpanRecord;

/// Spans a thread buffers before handing them over.
pub const LOCAL_BATCH: usize = 128;
/// Default bound of the global buffer.
pub const DEFAULT_CAPACITY: usize = 65_536;

struct Global {
    batches: VecDeque<Vec<SpanRecord>>,
    len: usize,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    batches: VecDeque::new(),
    len: 0,
});
static CAPACITY: AtomicUsize = AtomicUsize::new(DEFAULT_CAPACITY);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static RECORDED: AtomicU64 = AtomicU64::new(0);

type LocalBuf = Arc<Mutex<Vec<SpanRecord>>>;

/// Every thread's buffer; an entry whose thread has ended is removed by `drain` once empty.
static REGISTRY: Mutex<Vec<LocalBuf>> = Mutex::new(Vec::new());

// A panic while holding one of these locks cannot leave the data half-updated in a way that
// matters (at worst a count is off until the next drain), so a poisoned lock is still used.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn global() -> MutexGuard<'static, Global> {
    lock(&GLOBAL)
}

/// A thread's registration: on thread exit its spans are handed over and it unregisters.
struct Local(LocalBuf);

impl Drop for Local {
    fn drop(&mut self) {
        hand_over(std::mem::take(&mut *lock(&self.0)));
        lock(&REGISTRY).retain(|b| !Arc::ptr_eq(b, &self.0));
    }
}

thread_local! {
    static LOCAL: Local = {
        let buf: LocalBuf = Arc::new(Mutex::new(Vec::with_capacity(LOCAL_BATCH)));
        lock(&REGISTRY).push(buf.clone());
        Local(buf)
    };
}

fn hand_over(mut batch: Vec<SpanRecord>) {
    if batch.is_empty() {
        return;
    }
    RECORDED.fetch_add(batch.len() as u64, Ordering::Relaxed);
    let cap = CAPACITY.load(Ordering::Relaxed);
    let mut g = global();
    let room = cap.saturating_sub(g.len);
    if batch.len() > room {
        DROPPED.fetch_add((batch.len() - room) as u64, Ordering::Relaxed);
        batch.truncate(room);
    }
    if !batch.is_empty() {
        g.len += batch.len();
        g.batches.push_back(batch);
    }
}

/// Records a finished span.
pub fn submit(span: SpanRecord) {
    let mut span = Some(span);
    let full = LOCAL.try_with(|l| {
        let mut l = lock(&l.0);
        l.extend(span.take());
        if l.len() >= LOCAL_BATCH {
            std::mem::replace(&mut *l, Vec::with_capacity(LOCAL_BATCH))
        } else {
            Vec::new()
        }
    });
    // `try_with` fails only while the thread is being torn down and its buffer is gone: the
    // span then goes straight to the global buffer.
    hand_over(full.unwrap_or_else(|_| span.into_iter().collect()));
}

/// Hands the calling thread's buffered spans to the global buffer.
pub fn flush_thread() {
    let batch = LOCAL
        .try_with(|l| std::mem::take(&mut *lock(&l.0)))
        .unwrap_or_default();
    hand_over(batch);
}

/// Hands every thread's buffered spans to the global buffer.
pub fn flush_all() {
    let locals: Vec<LocalBuf> = lock(&REGISTRY).clone();
    for buf in locals {
        let batch = std::mem::take(&mut *lock(&buf));
        hand_over(batch);
    }
}

/// Takes up to `max` spans (oldest first within each thread) from the global buffer, after
/// handing over every thread's buffer.
pub fn drain(max: usize) -> Vec<SpanRecord> {
    flush_all();
    let mut g = global();
    let mut out: Vec<SpanRecord> = Vec::new();
    while out.len() < max {
        let Some(mut batch) = g.batches.pop_front() else {
            break;
        };
        let want = max - out.len();
        if batch.len() > want {
            let rest = batch.split_off(want);
            g.batches.push_front(rest);
        }
        g.len -= batch.len();
        if out.is_empty() {
            out = batch;
        } else {
            out.append(&mut batch);
        }
    }
    out
}

fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// In a child process after `fork()`: forgets the spans buffered before the fork (the parent
/// still holds and exports them) and the buffers of the parent's other threads, which do not
/// exist in the child. Uses `try_lock` because a lock held by another thread at the fork stays
/// held forever in the child; such a buffer is then left as it is.
pub fn reset_after_fork() {
    let own = LOCAL.try_with(|l| l.0.clone()).ok();
    if let Some(mut reg) = try_lock(&REGISTRY) {
        reg.clear();
        reg.extend(own.clone());
    }
    if let Some(mut v) = own.as_ref().and_then(|b| try_lock(b)) {
        v.clear();
    }
    if let Some(mut g) = try_lock(&GLOBAL) {
        g.batches.clear();
        g.len = 0;
    }
}

/// The bound of the global buffer, in spans.
pub fn capacity() -> usize {
    CAPACITY.load(Ordering::Relaxed)
}

/// Changes the bound; spans already buffered beyond a lowered bound stay until drained.
pub fn set_capacity(cap: usize) {
    CAPACITY.store(cap, Ordering::Relaxed);
}

/// Counters of the collector since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Spans in the global buffer now, waiting for `drain`.
    pub buffered: usize,
    /// Spans handed from the thread buffers to the global one (kept or dropped).
    pub recorded: u64,
    /// Spans dropped because the global buffer was full.
    pub dropped: u64,
    pub capacity: usize,
}

pub fn stats() -> Stats {
    Stats {
        buffered: global().len,
        recorded: RECORDED.load(Ordering::Relaxed),
        dropped: DROPPED.load(Ordering::Relaxed),
        capacity: capacity(),
    }
}

/// Serialises unit tests that touch the process-wide collector or sampler.
#[cfg(test)]
pub(crate) fn test_lock() -> MutexGuard<'static, ()> {
    static L: Mutex<()> = Mutex::new(());
    L.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::super::record::Status;
    use super::*;

    fn rec(i: u64) -> SpanRecord {
        SpanRecord {
            name: format!("s{i}").into(),
            trace_id: 1,
            span_id: i + 1,
            parent_id: 0,
            parent_remote: false,
            start_ns: i,
            end_ns: i,
            status: Status::Unset,
            attrs: Vec::new(),
            events: Vec::new(),
        }
    }

    #[test]
    fn batches_from_threads_arrive_and_overflow_is_counted() {
        let _g = test_lock();
        drain(usize::MAX);
        set_capacity(300);
        let dropped0 = stats().dropped;
        let handles: Vec<_> = (0..4)
            .map(|t| std::thread::spawn(move || (0..100).for_each(|i| submit(rec(t * 1000 + i)))))
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        let first = drain(250);
        let second = drain(usize::MAX);
        assert_eq!(first.len(), 250);
        assert_eq!(second.len(), 50);
        assert_eq!(stats().dropped - dropped0, 100);
        assert_eq!(stats().buffered, 0);
        set_capacity(DEFAULT_CAPACITY);
    }

    #[test]
    fn drain_sees_the_calling_threads_own_spans() {
        let _g = test_lock();
        drain(usize::MAX);
        submit(rec(7));
        let got = drain(usize::MAX);
        assert_eq!(got.len(), 1);
        assert_eq!(&*got[0].name, "s7");
    }
}
