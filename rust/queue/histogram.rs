//! A lock-free log-linear histogram of nanosecond durations: four sub-buckets per power of two
//! (at most 25% relative error), every bucket an atomic counter, so recording from many threads
//! costs one relaxed `fetch_add` and never takes a lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const SUB: u32 = 4;
/// 4 exact buckets for 0..4 ns, then 4 per octave for msb positions 2..=63.
pub const BUCKETS: usize = 4 + 62 * SUB as usize;

pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    max: AtomicU64,
}

/// A consistent-enough copy of a histogram, read bucket by bucket.
#[derive(Debug, Clone, Default)]
pub struct HistogramSnapshot {
    pub count: u64,
    pub sum: u64,
    pub max: u64,
    /// (exclusive upper bound in ns, count) for every non-empty bucket, ascending.
    pub buckets: Vec<(u64, u64)>,
}

#[inline]
fn index(v: u64) -> usize {
    if v < 4 {
        return v as usize;
    }
    let p = 63 - v.leading_zeros(); // msb position, >= 2
    let sub = (v >> (p - 2)) & 3;
    4 + ((p - 2) * SUB) as usize + sub as usize
}

/// Exclusive upper bound of bucket `i` (saturating at u64::MAX for the last one).
fn upper(i: usize) -> u64 {
    if i < 4 {
        return i as u64 + 1;
    }
    let j = i - 4;
    let p = (j / SUB as usize) as u32 + 2;
    let sub = (j % SUB as usize) as u64;
    (5 + sub)
        .checked_shl(p - 2)
        .filter(|&x| x >> (p - 2) == 5 + sub)
        .unwrap_or(u64::MAX)
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn record(&self, v: u64) {
        self.buckets[index(v)].fetch_add(1, Relaxed);
        self.sum.fetch_add(v, Relaxed);
        if v > self.max.load(Relaxed) {
            self.max.fetch_max(v, Relaxed);
        }
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(u64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let c = b.load(Relaxed);
                (c > 0).then(|| (upper(i), c))
            })
            .collect();
        HistogramSnapshot {
            count: buckets.iter().map(|b| b.1).sum(),
            sum: self.sum.load(Relaxed),
            max: self.max.load(Relaxed),
            buckets,
        }
    }
}

impl HistogramSnapshot {
    /// The upper bound of the bucket holding quantile `q` (0..=1), capped at the observed max;
    /// 0 when nothing was recorded.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for &(ub, c) in &self.buckets {
            seen += c;
            if seen >= rank {
                return ub.saturating_sub(1).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_and_bound_relative_error() {
        for v in [
            0u64,
            1,
            3,
            4,
            5,
            7,
            8,
            100,
            1_000,
            123_456_789,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let i = index(v);
            assert!(i < BUCKETS);
            assert!(
                v < upper(i) || upper(i) == u64::MAX,
                "v={v} i={i} ub={}",
                upper(i)
            );
            if v >= 8 {
                assert!((upper(i) - v) as f64 / v as f64 <= 0.25 + 1e-9);
            }
        }
    }

    #[test]
    fn quantiles_follow_recorded_values() {
        let h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let s = h.snapshot();
        assert_eq!(s.count, 1000);
        let p50 = s.quantile(0.5) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.25, "{p50}");
        assert_eq!(s.quantile(1.0), 1_000_000);
    }
}
