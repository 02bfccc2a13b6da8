//! Finished spans go first into a small per-thread buffer (no lock, no contention), which is
//! handed to the global buffer as one batch when it fills, when its oldest span is older than
//! `FLUSH_AGE_NS`, when its thread ends, or when that thread drains. The global buffer holds
//! at most `capacity()` spans; what does not fit is dropped and counted, never queued without
//! bound. A span still sitting in another thread's local buffer is not visible to `drain`
//! until one of those events hands it over (at most `LOCAL_BATCH` spans or `FLUSH_AGE_NS` of
//! age per thread that keeps recording).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::record::SpanRecord;

/// Spans a thread buffers before handing them over.
pub const LOCAL_BATCH: usize = 128;
/// A thread's buffer is handed over once its oldest span finished this long ago (50 ms), so
/// that a slow thread's spans do not wait for the batch to fill.
pub const FLUSH_AGE_NS: u64 = 50_000_000;
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

fn global() -> MutexGuard<'static, Global> {
    // A panic while holding the lock cannot leave `Global` half-updated in a way that matters
    // (at worst `len` is off until the next drain), so a poisoned lock is still used.
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

struct Local {
    spans: Vec<SpanRecord>,
    oldest_end_ns: u64,
}

impl Drop for Local {
    fn drop(&mut self) {
        hand_over(std::mem::take(&mut self.spans));
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local { spans: Vec::new(), oldest_end_ns: 0 }) };
}

fn hand_over(mut batch: Vec<SpanRecord>) {
    if batch.is_empty() {
        return;
    }
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
    RECORDED.fetch_add(1, Ordering::Relaxed);
    let end = span.end_ns;
    let mut span = Some(span);
    let rest = LOCAL.try_with(|l| {
        let mut l = l.borrow_mut();
        if l.spans.is_empty() {
            l.oldest_end_ns = end;
            l.spans.reserve(LOCAL_BATCH);
        }
        l.spans.extend(span.take());
        if l.spans.len() >= LOCAL_BATCH || end.saturating_sub(l.oldest_end_ns) >= FLUSH_AGE_NS {
            std::mem::take(&mut l.spans)
        } else {
            Vec::new()
        }
    });
    // `try_with` fails only while the thread is being torn down and its buffer is gone: the
    // span then goes straight to the global buffer.
    hand_over(rest.unwrap_or_else(|_| span.into_iter().collect()));
}

/// Hands the calling thread's buffered spans to the global buffer.
pub fn flush_thread() {
    let batch = LOCAL
        .try_with(|l| std::mem::take(&mut l.borrow_mut().spans))
        .unwrap_or_default();
    hand_over(batch);
}

/// Takes up to `max` spans (oldest first) from the global buffer, after flushing the calling
/// thread's own buffer.
pub fn drain(max: usize) -> Vec<SpanRecord> {
    flush_thread();
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
    /// Spans ever submitted (sampled spans that finished).
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
