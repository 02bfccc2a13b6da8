//! Sliding windows of call outcomes, updated with atomics only. A count window keeps the last
//! N outcomes in a ring of bytes plus running totals; a time window keeps per-bucket counts
//! tagged with the bucket's epoch, so stale buckets are skipped and lazily recycled. Totals are
//! signed so a record racing a reset can never wrap them; reads clamp at zero. Under races
//! a count may be off by one for one window; the thresholds only need rates.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::*};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub calls: u64,
    pub failures: u64,
    pub slow: u64,
}

const USED: u8 = 1;
const FAIL: u8 = 2;
const SLOW: u8 = 4;

pub struct CountWindow {
    slots: Box<[AtomicU8]>,
    next: AtomicU64,
    calls: AtomicI64,
    failures: AtomicI64,
    slow: AtomicI64,
}

impl CountWindow {
    pub fn new(size: usize) -> Self {
        CountWindow {
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicU64::new(0),
            calls: AtomicI64::new(0),
            failures: AtomicI64::new(0),
            slow: AtomicI64::new(0),
        }
    }

    #[inline]
    pub fn record(&self, failed: bool, slow: bool) {
        let i = self.next.fetch_add(1, Relaxed) as usize % self.slots.len();
        let code = USED | if failed { FAIL } else { 0 } | if slow { SLOW } else { 0 };
        let old = self.slots[i].swap(code, Relaxed);
        if old & USED == 0 {
            self.calls.fetch_add(1, Relaxed);
        }
        let d = |flag: u8, ctr: &AtomicI64| match (old & flag != 0, code & flag != 0) {
            (false, true) => {
                ctr.fetch_add(1, Relaxed);
            }
            (true, false) => {
                ctr.fetch_sub(1, Relaxed);
            }
            _ => {}
        };
        d(FAIL, &self.failures);
        d(SLOW, &self.slow);
    }

    #[inline]
    pub fn totals(&self) -> Totals {
        Totals {
            calls: self.calls.load(Relaxed).max(0) as u64,
            failures: self.failures.load(Relaxed).max(0) as u64,
            slow: self.slow.load(Relaxed).max(0) as u64,
        }
    }

    pub fn reset(&self) {
        for s in self.slots.iter() {
            s.store(0, Relaxed);
        }
        self.calls.store(0, Relaxed);
        self.failures.store(0, Relaxed);
        self.slow.store(0, Relaxed);
    }
}

struct Bucket {
    epoch: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

pub struct TimeWindow {
    buckets: Box<[Bucket]>,
    bucket_ns: u64,
}

impl TimeWindow {
    pub fn new(window_ns: u64, n: usize) -> Self {
        TimeWindow {
            buckets: (0..n)
                .map(|_| Bucket {
                    epoch: AtomicU64::new(u64::MAX),
                    calls: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    slow: AtomicU64::new(0),
                })
                .collect(),
            bucket_ns: (window_ns / n as u64).max(1),
        }
    }

    #[inline]
    pub fn record(&self, failed: bool, slow: bool, now_ns: u64) {
        let e = now_ns / self.bucket_ns;
        let b = &self.buckets[(e % self.buckets.len() as u64) as usize];
        let seen = b.epoch.load(Acquire);
        if seen != e && b.epoch.compare_exchange(seen, e, AcqRel, Relaxed).is_ok() {
            b.calls.store(0, Relaxed);
            b.failures.store(0, Relaxed);
            b.slow.store(0, Relaxed);
        }
        b.calls.fetch_add(1, Relaxed);
        if failed {
            b.failures.fetch_add(1, Relaxed);
        }
        if slow {
            b.slow.fetch_add(1, Relaxed);
        }
    }

    pub fn totals(&self, now_ns: u64) -> Totals {
        let e = now_ns / self.bucket_ns;
        let n = self.buckets.len() as u64;
        let mut t = Totals::default();
        for b in self.buckets.iter() {
            let be = b.epoch.load(Acquire);
            if be != u64::MAX && be <= e && e - be < n {
                t.calls += b.calls.load(Relaxed);
                t.failures += b.failures.load(Relaxed);
                t.slow += b.slow.load(Relaxed);
            }
        }
        t
    }

    pub fn reset(&self) {
        for b in self.buckets.iter() {
            b.epoch.store(u64::MAX, Release);
            b.calls.store(0, Relaxed);
            b.failures.store(0, Relaxed);
            b.slow.store(0, Relaxed);
        }
    }
}

pub enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    #[inline]
    pub fn record(&self, failed: bool, slow: bool, now_ns: u64) {
        match self {
            Window::Count(w) => w.record(failed, slow),
            Window::Time(w) => w.record(failed, slow, now_ns),
        }
    }
    #[inline]
    pub fn totals(&self, now_ns: u64) -> Totals {
        match self {
            Window::Count(w) => w.totals(),
            Window::Time(w) => w.totals(now_ns),
        }
    }
    pub fn reset(&self) {
        match self {
            Window::Count(w) => w.reset(),
            Window::Time(w) => w.reset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_window_keeps_the_last_n() {
        let w = CountWindow::new(4);
        for f in [true, true, false, false, false, false] {
            w.record(f, false);
        }
        assert_eq!(
            w.totals(),
            Totals {
                calls: 4,
                failures: 0,
                slow: 0
            }
        );
        w.record(true, true);
        assert_eq!(
            w.totals(),
            Totals {
                calls: 4,
                failures: 1,
                slow: 1
            }
        );
    }

    #[test]
    fn time_window_forgets_old_buckets() {
        let w = TimeWindow::new(1_000, 10);
        w.record(true, false, 0);
        w.record(false, false, 500);
        assert_eq!(w.totals(900).calls, 2);
        assert_eq!(
            w.totals(1_050),
            Totals {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
        assert_eq!(w.totals(5_000).calls, 0);
    }
}
