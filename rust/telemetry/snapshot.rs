//! Immutable snapshots of a histogram: quantiles, merge (associative, commutative) and
//! delta between two snapshots of one histogram. Sparse: only non-empty buckets are kept.

use super::histogram::{bucket_range, bucket_value};
use crate::error::{CoreError, CoreResult};

/// An immutable view of a histogram: sparse `(bucket index, count)` pairs in index order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub count: u64,
    /// Sum of the (clamped) values, wrapping modulo 2^64 (584 years of nanoseconds).
    pub sum: u64,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub overflow: u64,
    pub buckets: Vec<(u32, u64)>,
}

impl Snapshot {
    /// The value at quantile `q` in `[0, 1]`: the smallest recorded value (to within the
    /// relative error) such that at least `ceil(q * count)` values are <= it.
    /// `None` when the snapshot holds no value.
    pub fn quantile(&self, q: f64) -> CoreResult<Option<u64>> {
        if !(0.0..=1.0).contains(&q) {
            return Err(CoreError::InvalidArgument(format!(
                "quantile {q} is outside [0, 1]; ask for e.g. 0.99 for the 99th percentile"
            )));
        }
        if self.count == 0 {
            return Ok(None);
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        // The extremes are known exactly.
        if rank == self.count && self.max.is_some() {
            return Ok(self.max);
        }
        if rank == 1 && self.min.is_some() {
            return Ok(self.min);
        }
        let mut seen = 0u64;
        for &(i, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Ok(Some(self.clamped_value(i as usize)));
            }
        }
        // Unreachable when count matches the buckets; report the top rather than panic.
        Ok(self.max)
    }

    /// A bucket's representative value, pulled inside the exact [min, max] when they fall
    /// in that bucket (which only ever moves it closer to the recorded values).
    fn clamped_value(&self, i: usize) -> u64 {
        let (low, high) = bucket_range(i);
        let lo = self.min.map_or(low, |m| m.max(low));
        let hi = self.max.map_or(high, |m| m.min(high));
        let v = bucket_value(i);
        if lo <= hi {
            v.clamp(lo, hi)
        } else {
            v
        }
    }

    /// The mean of the recorded values, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// Number of recorded values in buckets that start at or below `le`: every value <= `le`
    /// is counted (exact for `le < 2048`), plus any value sharing the bucket of `le`, which
    /// is at most `le * (1 + 2^-10)`.
    pub fn count_le(&self, le: u64) -> u64 {
        self.buckets
            .iter()
            .take_while(|&&(i, _)| bucket_range(i as usize).0 <= le)
            .map(|&(_, n)| n)
            .sum()
    }

    /// The union of two snapshots (as if one histogram had recorded both streams).
    /// Associative and commutative.
    pub fn merge(&self, other: &Snapshot) -> Snapshot {
        let mut buckets = Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&(i, n)), Some(&&(j, m))) => {
                    if i == j {
                        a.next();
                        b.next();
                        (i, n + m)
                    } else if i < j {
                        a.next();
                        (i, n)
                    } else {
                        b.next();
                        (j, m)
                    }
                }
                (Some(&&x), None) => {
                    a.next();
                    x
                }
                (None, Some(&&y)) => {
                    b.next();
                    y
                }
                (None, None) => break,
            };
            buckets.push(next);
        }
        let opt = |x: Option<u64>, y: Option<u64>, f: fn(u64, u64) -> u64| match (x, y) {
            (Some(x), Some(y)) => Some(f(x, y)),
            (x, None) => x,
            (None, y) => y,
        };
        Snapshot {
            count: self.count + other.count,
            sum: self.sum.wrapping_add(other.sum),
            min: opt(self.min, other.min, u64::min),
            max: opt(self.max, other.max, u64::max),
            overflow: self.overflow + other.overflow,
            buckets,
        }
    }

    /// What was recorded between `earlier` and `self` (two snapshots of one histogram).
    /// Counts, sum and overflow are exact; min and max are the representative values of the
    /// delta's lowest and highest non-empty buckets (the exact values are not recoverable),
    /// so they too are within the relative error.
    pub fn delta(&self, earlier: &Snapshot) -> CoreResult<Snapshot> {
        let mut buckets = Vec::with_capacity(self.buckets.len());
        let mut old = earlier.buckets.iter().peekable();
        for &(i, n) in &self.buckets {
            let mut prev = 0;
            while let Some(&&(j, m)) = old.peek() {
                if j > i {
                    break;
                }
                old.next();
                if j == i {
                    prev = m;
                } else {
                    return Err(not_earlier());
                }
            }
            match n.checked_sub(prev) {
                Some(0) => {}
                Some(d) => buckets.push((i, d)),
                None => return Err(not_earlier()),
            }
        }
        if old.next().is_some() || self.overflow < earlier.overflow {
            return Err(not_earlier());
        }
        let count: u64 = buckets.iter().map(|&(_, n)| n).sum();
        let (min, max) = match (buckets.first(), buckets.last()) {
            (Some(&(lo, _)), Some(&(hi, _))) => (
                Some(self.clamped_value(lo as usize)),
                Some(self.clamped_value(hi as usize)),
            ),
            _ => (None, None),
        };
        Ok(Snapshot {
            count,
            sum: self.sum.wrapping_sub(earlier.sum),
            min,
            max,
            overflow: self.overflow - earlier.overflow,
            buckets,
        })
    }
}

fn not_earlier() -> CoreError {
    CoreError::InvalidArgument(
        "delta(earlier): 'earlier' holds counts that this snapshot lacks, so it is not an \
         earlier snapshot of the same histogram; take both snapshots from one histogram, \
         the earlier one first"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::histogram::Histogram;

    #[test]
    fn delta_and_merge_round_trip() {
        let h = Histogram::new();
        for v in [1, 5000, 70_000, 9_000_000] {
            h.record(v);
        }
        let a = h.snapshot();
        for v in [3, 5000, 123_456_789] {
            h.record(v);
        }
        let b = h.snapshot();
        let d = b.delta(&a).unwrap();
        assert_eq!(d.count, 3);
        let back = a.merge(&d);
        assert_eq!(
            (back.count, back.sum, &back.buckets),
            (b.count, b.sum, &b.buckets)
        );
        assert!(a.delta(&b).is_err());
        assert_eq!(b.delta(&b).unwrap().count, 0);
    }
}
