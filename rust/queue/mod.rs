//! A bounded MPMC queue with an overflow policy, sojourn (CoDel-style) shedding, per-item
//! deadlines and close semantics. Pure Rust and generic over the item, so it is tested here
//! without Python; `py.rs` carries Python objects through it.
//!
//! The ring is crossbeam's lock-free `ArrayQueue`. Blocking is layered on top with a
//! parking_lot mutex and two `signal::Signal`s ("not empty", "not full") that are touched only
//! when a waiter is registered: the fast path is the ring plus a few atomics. signal.rs holds
//! the wait/notify pairing that loses no wakeup; config.rs the policy and the configuration;
//! outcome.rs what a put or get returns and the stats snapshot.
//!
//! Close: producers bump `inflight` around their closed-check-and-push, and a consumer reports
//! end-of-stream only after seeing `closed`, then `inflight == 0`, then an empty ring. A push
//! that raced with `close()` is therefore either refused or seen by the consumer: nothing is
//! lost and nothing is delivered twice.
//!
//! Telemetry: every queue resolves its registry series once, at construction (see
//! `metrics`: counters enqueued, dequeued, rejected, dropped{reason}, shed{reason}, the depth
//! gauge and the sojourn histogram `system0_queue_sojourn_ns`, all labelled `queue=<name>`),
//! and updates them beside its own per-instance atomics, once per operation or per batch.
//! `stats()` counters are exact for this queue alone; the registry series are per *name*, so
//! two queues that share a name add up there, and `stats().sojourn` (the registry histogram)
//! holds the sojourns of every queue of that name. More distinct queue names than
//! `telemetry::internal::INTERNAL_MAX_LABEL_SETS` (10 000) make the constructor fail with
//! `Cardinality` (Python `CardinalityError`).

pub mod config;
pub mod metrics;
pub mod outcome;
pub mod py;
pub mod py_stats;
pub mod py_waiters;
pub mod signal;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

pub use config::{Config, Policy};
pub use outcome::{Get, Put, Stats};

use crate::error::{CoreError, CoreResult};
use metrics::{GetTally, PutTally, QueueMetrics};
use signal::Signal;

struct Entry<T> {
    item: T,
    enq_ns: u64,
    /// 0 = no deadline.
    deadline_ns: u64,
}

#[derive(Default)]
struct Counters {
    enqueued: CachePadded<AtomicU64>,
    dequeued: CachePadded<AtomicU64>,
    rejected: AtomicU64,
    dropped_oldest: AtomicU64,
    dropped_newest: AtomicU64,
    shed_sojourn: AtomicU64,
    expired_deadline: AtomicU64,
}

pub struct Queue<T> {
    cfg: Config,
    ring: ArrayQueue<Entry<T>>,
    closed: AtomicBool,
    inflight: CachePadded<AtomicUsize>,
    lock: Mutex<()>,
    not_empty: Signal,
    not_full: Signal,
    counters: Counters,
    metrics: QueueMetrics,
    /// CoDel: when the sojourn first went above target (+ interval), 0 when below.
    codel_above_until: AtomicU64,
    /// EWMA of the gap between dequeues, the basis of the retry-after hint.
    gap_ewma_ns: AtomicU64,
    last_dequeue_ns: AtomicU64,
}

/// Add `n` to one of this queue's own counters and to its registry series (nothing at 0).
#[inline]
fn count(own: &AtomicU64, series: &crate::telemetry::Counter, n: u64) {
    if n != 0 {
        own.fetch_add(n, Relaxed);
        series.inc(n);
    }
}

#[inline]
fn now() -> u64 {
    crate::clock::now_ns()
}

impl<T: Send> Queue<T> {
    /// Fails only when the queue's registry series cannot be had (see the module doc).
    pub fn new(cfg: Config) -> CoreResult<Self> {
        let metrics = QueueMetrics::new(&cfg.name)?;
        Ok(Queue {
            ring: ArrayQueue::new(cfg.capacity),
            cfg,
            closed: AtomicBool::new(false),
            inflight: CachePadded::new(AtomicUsize::new(0)),
            lock: Mutex::new(()),
            not_empty: Signal::default(),
            not_full: Signal::default(),
            counters: Counters::default(),
            metrics,
            codel_above_until: AtomicU64::new(0),
            gap_ewma_ns: AtomicU64::new(0),
            last_dequeue_ns: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn len(&self) -> usize {
        self.ring.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
    pub fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// Seconds after which a refused producer is likely to find a free slot: the recent gap
    /// between dequeues (one slot frees per gap), 1 ms when nothing was dequeued yet.
    pub fn retry_after_s(&self) -> f64 {
        let gap = self.gap_ewma_ns.load(Relaxed);
        if gap == 0 {
            1e-3
        } else {
            (gap as f64 / 1e9).clamp(1e-6, 10.0)
        }
    }

    pub fn overloaded(&self, what: &str) -> CoreError {
        let depth = self.len();
        let retry_after_s = self.retry_after_s();
        CoreError::Overloaded {
            message: format!(
                "queue '{}' is full ({depth}/{} items, policy {}): {what}; retry after \
                 {retry_after_s:.6} s, add consumers, or raise the capacity",
                self.cfg.name,
                self.cfg.capacity,
                self.cfg.policy.as_str()
            ),
            depth,
            retry_after_s,
        }
    }

    pub fn closed_error(&self) -> CoreError {
        CoreError::Closed(format!(
            "queue '{}' is closed and accepts no more items; consumers drain what is left",
            self.cfg.name
        ))
    }

    // No fence needed before the waiter check: every successful ring change is a SeqCst RMW
    // inside crossbeam (push/pop CAS on tail/head), and a waiter's registration and re-check
    // are SeqCst too, so the single SeqCst order makes one side see the other.
    #[inline]
    fn notify_getters(&self, all: bool) {
        self.not_empty.notify(&self.lock, all);
    }

    #[inline]
    fn notify_putters(&self, all: bool) {
        self.not_full.notify(&self.lock, all);
    }

    /// Apply a producer tally to this queue's counters and to its registry series.
    #[inline]
    fn flush_put(&self, t: &mut PutTally) {
        let (c, m) = (&self.counters, &self.metrics);
        count(&c.enqueued, &m.enqueued, t.enqueued);
        count(&c.dropped_oldest, &m.dropped_oldest, t.dropped_oldest);
        // An eviction makes room for the item that displaced it: the depth does not move.
        let grew = t.enqueued - t.dropped_oldest;
        if grew != 0 {
            m.depth.add(grew as f64);
        }
        count(&c.rejected, &m.rejected, t.rejected);
        count(&c.dropped_newest, &m.dropped_newest, t.dropped_newest);
        *t = PutTally::default();
    }

    /// Apply a consumer tally (counts and the pending run of sojourns).
    #[inline]
    fn flush_get(&self, t: &mut GetTally) {
        let (c, m) = (&self.counters, &self.metrics);
        t.flush_run(&m.sojourn);
        count(&c.dequeued, &m.dequeued, t.dequeued);
        if t.popped != 0 {
            m.depth.add(-(t.popped as f64));
        }
        count(&c.expired_deadline, &m.shed_deadline, t.expired);
        count(&c.shed_sojourn, &m.shed_sojourn, t.shed);
        *t = GetTally::default();
    }

    /// One non-blocking attempt. `deadline_ns` = 0 means none. Does not notify getters
    /// (callers batch that) and counts into `t` (the caller flushes), see `put_nowait`.
    #[inline]
    fn push_once(&self, item: T, deadline_ns: u64, now_ns: u64, t: &mut PutTally) -> Put<T> {
        if deadline_ns != 0 && now_ns >= deadline_ns {
            // Never accepted, so a refusal (`rejected`), not an expiry: `expired_deadline`
            // counts accepted items only, keeping enqueued = dequeued + depth + drops exact.
            t.rejected += 1;
            return Put::Expired(item);
        }
        self.inflight.fetch_add(1, SeqCst);
        if self.closed.load(SeqCst) {
            self.inflight.fetch_sub(1, SeqCst);
            return Put::Closed(item);
        }
        let entry = Entry {
            item,
            enq_ns: now_ns,
            deadline_ns,
        };
        let out = if self.cfg.policy == Policy::DropOldest {
            match self.ring.force_push(entry) {
                None => Put::Accepted,
                Some(old) => {
                    t.dropped_oldest += 1;
                    Put::Displaced(old.item)
                }
            }
        } else {
            match self.ring.push(entry) {
                Ok(()) => Put::Accepted,
                Err(e) => match self.cfg.policy {
                    Policy::DropNewest => {
                        t.dropped_newest += 1;
                        Put::DroppedNewest(e.item)
                    }
                    Policy::Reject => {
                        t.rejected += 1;
                        Put::Full(e.item)
                    }
                    _ => Put::Full(e.item),
                },
            }
        };
        if matches!(out, Put::Accepted | Put::Displaced(_)) {
            t.enqueued += 1;
        }
        self.inflight.fetch_sub(1, SeqCst);
        if self.closed.load(Relaxed) {
            // A consumer may be waiting for `inflight` to reach zero to report end-of-stream.
            self.notify_getters(true);
        }
        out
    }

    /// Non-blocking put of one item; wakes a waiting consumer if it was accepted.
    pub fn put_nowait(&self, item: T, deadline_ns: u64, now_ns: u64) -> Put<T> {
        let mut t = PutTally::default();
        let r = self.push_once(item, deadline_ns, now_ns, &mut t);
        self.flush_put(&mut t);
        if matches!(r, Put::Accepted | Put::Displaced(_)) {
            self.notify_getters(false);
        }
        r
    }

    /// Wait until the ring has room or the queue is closed; false when `until` passed.
    fn wait_not_full(&self, until: Option<Instant>) -> bool {
        let ready = || !self.ring.is_full() || self.closed.load(SeqCst);
        self.not_full.wait(&self.lock, until, ready)
    }

    /// Wait until the ring has an item, or the queue is closed; false when `until` passed.
    fn wait_not_empty(&self, until: Option<Instant>) -> bool {
        let ready = || !self.ring.is_empty() || self.closed.load(SeqCst);
        self.not_empty.wait(&self.lock, until, ready)
    }

    /// Put, waiting for room under BLOCK until `until` (None = forever). Other policies never
    /// wait. A BLOCK put that times out returns `Full`, not counted: the caller may wait on
    /// (waits run in slices) and counts the refusal once it gives up.
    pub fn put(&self, mut item: T, deadline_ns: u64, until: Option<Instant>) -> Put<T> {
        loop {
            match self.put_nowait(item, deadline_ns, now()) {
                Put::Full(back) if self.cfg.policy == Policy::Block => {
                    item = back;
                    if until.is_some_and(|t| Instant::now() >= t) {
                        return Put::Full(item);
                    }
                    self.wait_not_full(until);
                }
                other => return other,
            }
        }
    }

    /// Put items in order until all are in, the queue refuses, or `until` passes. Returns how
    /// many were accepted (DROP_NEWEST drops go to `discard`, counted, and do not stop it),
    /// plus the outcome that stopped it (None when every item was handled) and the items not
    /// taken.
    pub fn put_many(
        &self,
        items: Vec<T>,
        deadline_ns: u64,
        until: Option<Instant>,
        block: bool,
        discard: &mut Vec<T>,
    ) -> (usize, Option<Put<()>>, Vec<T>) {
        let mut iter = items.into_iter();
        let mut done = 0usize;
        let mut pending: Option<T> = None;
        // One clock read per batch (and per wait): a batch is enqueued at one instant.
        let mut ts = now();
        let mut t = PutTally::default();
        let stop = loop {
            let Some(item) = pending.take().or_else(|| iter.next()) else {
                break None;
            };
            match self.push_once(item, deadline_ns, ts, &mut t) {
                Put::Accepted => done += 1,
                Put::Displaced(old) => {
                    discard.push(old);
                    done += 1
                }
                Put::DroppedNewest(x) | Put::Expired(x) => discard.push(x),
                Put::Full(x) if self.cfg.policy == Policy::Block && !block => {
                    pending = Some(x);
                    break Some(Put::Full(()));
                }
                Put::Full(x) if self.cfg.policy == Policy::Block => {
                    self.flush_put(&mut t);
                    self.notify_getters(true);
                    if until.is_some_and(|t| Instant::now() >= t) {
                        pending = Some(x); // not counted: see `put`
                        break Some(Put::Full(()));
                    }
                    pending = Some(x);
                    self.wait_not_full(until);
                    ts = now();
                }
                Put::Full(x) => {
                    pending = Some(x);
                    break Some(Put::Full(()));
                }
                Put::Closed(x) => {
                    pending = Some(x);
                    break Some(Put::Closed(()));
                }
            }
        };
        self.flush_put(&mut t);
        if done > 0 {
            self.notify_getters(true);
        }
        let rest: Vec<T> = pending.into_iter().chain(iter).collect();
        (done, stop, rest)
    }

    /// CoDel's decision for one dequeued item with sojourn `s`: shed once the sojourn has
    /// stayed above target for a full interval (immediately when the interval is 0).
    #[inline]
    fn codel_shed(&self, s: u64, now_ns: u64) -> bool {
        let target = self.cfg.sojourn_target_ns;
        if target == 0 {
            return false;
        }
        if s < target {
            if self.codel_above_until.load(Relaxed) != 0 {
                self.codel_above_until.store(0, Relaxed);
            }
            return false;
        }
        if self.cfg.sojourn_interval_ns == 0 {
            return true;
        }
        let until = self.codel_above_until.load(Relaxed);
        if until == 0 {
            self.codel_above_until
                .store(now_ns + self.cfg.sojourn_interval_ns, Relaxed);
            false
        } else {
            now_ns >= until
        }
    }

    /// One non-blocking get. Expired and shed items go to `discard` (counted), never to the
    /// caller. `Closed` only once the queue is closed, no producer is mid-push, and it is empty.
    /// `now_ns` None: read the clock only once an item is popped (an empty poll reads none).
    pub fn try_get(&self, now_ns: Option<u64>, discard: &mut Vec<T>) -> Get<T> {
        let mut t = GetTally::default();
        let r = self.pop_once(now_ns, discard, &mut t);
        self.flush_get(&mut t);
        r
    }

    /// `try_get` counting into `t` (the caller flushes).
    #[inline]
    fn pop_once(&self, now_ns: Option<u64>, discard: &mut Vec<T>, t: &mut GetTally) -> Get<T> {
        let mut now_ns = now_ns;
        loop {
            match self.ring.pop() {
                Some(e) => {
                    let now_ns = *now_ns.get_or_insert_with(now);
                    t.popped += 1;
                    self.notify_putters(false);
                    if e.deadline_ns != 0 && now_ns >= e.deadline_ns {
                        t.expired += 1;
                        discard.push(e.item);
                        continue;
                    }
                    let s = now_ns.saturating_sub(e.enq_ns);
                    if self.codel_shed(s, now_ns) {
                        t.shed += 1;
                        discard.push(e.item);
                        continue;
                    }
                    t.dequeued += 1;
                    t.sojourn(s, &self.metrics.sojourn);
                    // A hint only: plain load/store, no locked instruction on the hot path.
                    let last = self.last_dequeue_ns.load(Relaxed);
                    self.last_dequeue_ns.store(now_ns, Relaxed);
                    if last != 0 && now_ns > last {
                        let gap = now_ns - last;
                        let old = self.gap_ewma_ns.load(Relaxed);
                        let new = if old == 0 {
                            gap
                        } else {
                            old - old / 8 + gap / 8
                        };
                        self.gap_ewma_ns.store(new, Relaxed);
                    }
                    return Get::Item(e.item);
                }
                None => {
                    if self.closed.load(SeqCst)
                        && self.inflight.load(SeqCst) == 0
                        && self.ring.is_empty()
                    {
                        return Get::Closed;
                    }
                    return Get::Empty;
                }
            }
        }
    }

    /// Get one item, waiting until `until` (None = forever). `Empty` means timed out.
    pub fn get(&self, until: Option<Instant>, discard: &mut Vec<T>) -> Get<T> {
        loop {
            match self.try_get(None, discard) {
                Get::Empty => {
                    if until.is_some_and(|t| Instant::now() >= t) {
                        return Get::Empty;
                    }
                    self.wait_not_empty(until);
                }
                other => return other,
            }
        }
    }

    /// Up to `max_items`, returning as soon as that many are there or `until` passes (then
    /// with what there is, possibly nothing); `wait` false: one pass, no waiting. `None` = closed and drained with nothing taken.
    pub fn get_many(
        &self,
        max_items: usize,
        until: Option<Instant>,
        wait: bool,
        discard: &mut Vec<T>,
    ) -> Option<Vec<T>> {
        let mut out = Vec::with_capacity(max_items.min(self.cfg.capacity).min(4096));
        let mut t = GetTally::default();
        loop {
            let now_ns = now();
            while out.len() < max_items {
                match self.pop_once(Some(now_ns), discard, &mut t) {
                    Get::Item(x) => out.push(x),
                    Get::Empty => break,
                    Get::Closed => {
                        self.flush_get(&mut t);
                        return if out.is_empty() { None } else { Some(out) };
                    }
                }
            }
            self.flush_get(&mut t);
            if !wait || out.len() >= max_items || until.is_some_and(|t| Instant::now() >= t) {
                return Some(out);
            }
            self.wait_not_empty(until);
        }
    }

    /// Close: refuse producers from now on and wake every waiter. Idempotent.
    pub fn close(&self) {
        self.closed.store(true, SeqCst);
        let _g = self.lock.lock();
        self.not_empty.notify_locked(true);
        self.not_full.notify_locked(true);
    }

    /// Remove every item (for teardown), returning them so the caller chooses where to drop.
    pub fn drain_all(&self) -> Vec<T> {
        let mut v = Vec::with_capacity(self.ring.len());
        while let Some(e) = self.ring.pop() {
            v.push(e.item);
        }
        if !v.is_empty() {
            self.metrics.depth.add(-(v.len() as f64));
        }
        self.notify_putters(true);
        v
    }

    /// Count a refusal decided by the caller (a non-blocking BLOCK put that found no room).
    pub fn count_rejected(&self) {
        self.counters.rejected.fetch_add(1, Relaxed);
        self.metrics.rejected.inc(1);
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            depth: self.ring.len(),
            closed: self.is_closed(),
            enqueued: c.enqueued.load(Relaxed),
            dequeued: c.dequeued.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            dropped_oldest: c.dropped_oldest.load(Relaxed),
            dropped_newest: c.dropped_newest.load(Relaxed),
            shed_sojourn: c.shed_sojourn.load(Relaxed),
            expired_deadline: c.expired_deadline.load(Relaxed),
            sojourn: self.metrics.sojourn.snapshot(),
        }
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        // Items still in the ring leave the shared depth gauge with this queue.
        let left = self.ring.len();
        if left != 0 {
            self.metrics.depth.add(-(left as f64));
        }
    }
}

#[cfg(test)]
mod tests;
