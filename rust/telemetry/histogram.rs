//! Log-linear (HDR-style) histogram of non-negative integer values, recorded lock-free.
//!
//! # Buckets and relative error
//!
//! Values `0..2048` each get their own bucket (exact). Above that, every power-of-two range
//! `[2^k, 2^(k+1))` is split into 1024 equal sub-buckets, so a bucket is never wider than
//! 1/1024 of its lowest value. A quantile reports the middle of its bucket (clamped to the
//! exact min and max; the lowest and highest rank report min and max exactly), hence **its
//! relative error is at most 2^-11 ≈ 0.049 %**: three significant digits, as HdrHistogram's
//! `significant_figures = 3`.
//!
//! # Range and overflow
//!
//! The tracked range is `0 ..= 3.6e12` units: 1 ns to 1 h when the unit is nanoseconds.
//! A larger value is clamped to `MAX_VALUE` (it lands in the top bucket, and `sum`/`max` see
//! the clamped value) and counted in `overflow`, so it is never lost and never silent.
//!
//! # Memory
//!
//! Fixed: `BUCKETS` (33 421) `u64` counters = 267 368 bytes, plus 2 688 bytes of
//! cache-line padded stripes and header: `HISTOGRAM_BYTES` = 270 056 bytes in all,
//! allocated once when the histogram is created and never grown. The counters come from a
//! zeroed allocation, which the OS backs lazily: only the pages of the ranges actually
//! recorded become resident.
//!
//! # Concurrency
//!
//! `record` is one locked instruction (the bucket's `fetch_add`). `sum`/`min`/`max` live in
//! cache-line padded stripes: each of the first 16 recording threads owns one (plain
//! relaxed load + store, exact because no other thread writes it; an exiting thread hands
//! it back), later threads share 4 stripes with atomic read-modify-writes. No lock, no
//! allocation, and two threads recording into one histogram do not fight over a line unless
//! they hit the same bucket. A snapshot taken while other threads record sees each record
//! either wholly or partly (its bucket but not yet its sum); totals are exact once the
//! recording threads are done.

use std::alloc::{alloc_zeroed, Layout};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use super::snapshot::Snapshot;
use crate::error::{CoreError, CoreResult};

/// log2 of the sub-buckets per power of two.
pub const SUB_BUCKET_BITS: u32 = 10;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
/// Largest value tracked: 1 hour in nanoseconds. Larger values are clamped and counted.
pub const MAX_VALUE: u64 = 3_600_000_000_000;
/// Number of buckets (counters) in every histogram.
pub const BUCKETS: usize = bucket_index(MAX_VALUE) + 1;
/// Upper bound of the relative error of any reported quantile.
pub const RELATIVE_ERROR: f64 = 1.0 / (2 * SUB_BUCKETS) as f64;
/// Stripes of sum/min/max owned by one thread each (plain load + store, no locked
/// instruction); a thread that finds none free shares one of `SHARED_STRIPES` (atomic RMW).
pub const OWNED_STRIPES: usize = 16;
pub const SHARED_STRIPES: usize = 4;
pub const STRIPES: usize = OWNED_STRIPES + SHARED_STRIPES;
/// Bytes held by one histogram, fixed for its lifetime.
pub const HISTOGRAM_BYTES: usize =
    BUCKETS * std::mem::size_of::<AtomicU64>() + std::mem::size_of::<Histogram>();

/// Index of the bucket holding `v` (`v <= MAX_VALUE` gives an index below `BUCKETS`).
#[inline(always)]
pub const fn bucket_index(v: u64) -> usize {
    if v < 2 * SUB_BUCKETS {
        v as usize
    } else {
        // shift >= 1; (v >> shift) is in [1024, 2048): the top 11 bits of v.
        let shift = 63 - v.leading_zeros() - SUB_BUCKET_BITS;
        shift as usize * SUB_BUCKETS as usize + (v >> shift) as usize
    }
}

/// Lowest and highest value that land in bucket `i`.
#[inline]
pub const fn bucket_range(i: usize) -> (u64, u64) {
    if i < 2 * SUB_BUCKETS as usize {
        (i as u64, i as u64)
    } else {
        let shift = (i / SUB_BUCKETS as usize) as u32 - 1;
        let sub = (i % SUB_BUCKETS as usize) as u64 + SUB_BUCKETS;
        let low = sub << shift;
        (low, low + (1u64 << shift) - 1)
    }
}

/// The value a bucket stands for: its middle (exact for the single-value buckets).
#[inline]
pub const fn bucket_value(i: usize) -> u64 {
    let (low, high) = bucket_range(i);
    low + (high - low).div_ceil(2)
}

/// Converts a caller's float to a histogram value: NaN, infinities and negatives are refused
/// (`ValueError` in Python); fractions are rounded to the nearest integer unit.
pub fn value_from_f64(v: f64, metric: &str) -> CoreResult<u64> {
    if v.is_nan() || v.is_infinite() {
        return Err(CoreError::InvalidArgument(format!(
            "histogram '{metric}' was given {v}; record finite values only (a NaN or an \
             infinity usually means a broken measurement upstream)"
        )));
    }
    if v < 0.0 {
        return Err(CoreError::InvalidArgument(format!(
            "histogram '{metric}' was given the negative value {v}; histograms record \
             non-negative quantities (durations, sizes); use a gauge for signed values"
        )));
    }
    // `as` saturates at u64::MAX, and record() then clamps and counts it as overflow.
    Ok(v.round() as u64)
}

#[repr(align(128))]
pub struct Stripe {
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

impl Stripe {
    const fn new() -> Self {
        Stripe {
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }
}

/// This thread's stripe: an owned one (returned to the pool when the thread exits, so a
/// pool of long-lived workers keeps them) or, when all are taken, a shared one.
struct Slot {
    index: usize,
    owned: bool,
}

static FREE_SLOTS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static SLOTS_HANDED_OUT: AtomicUsize = AtomicUsize::new(0);
static NEXT_SHARED: AtomicUsize = AtomicUsize::new(0);

impl Slot {
    fn acquire() -> Slot {
        let reused = FREE_SLOTS.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(index) = reused {
            return Slot { index, owned: true };
        }
        let fresh = SLOTS_HANDED_OUT.fetch_add(1, Relaxed);
        if fresh < OWNED_STRIPES {
            return Slot {
                index: fresh,
                owned: true,
            };
        }
        let shared = OWNED_STRIPES + NEXT_SHARED.fetch_add(1, Relaxed) % SHARED_STRIPES;
        Slot {
            index: shared,
            owned: false,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The mutex orders this thread's last plain stores before the next owner's loads.
        if self.owned {
            FREE_SLOTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.index);
        }
    }
}

thread_local! {
    static SLOT: Slot = Slot::acquire();
}

/// (stripe index, owned by this thread). During thread teardown, a shared stripe.
#[inline(always)]
fn slot() -> (usize, bool) {
    SLOT.try_with(|s| (s.index, s.owned))
        .unwrap_or((OWNED_STRIPES, false))
}

/// A live histogram; share it (`Arc`) and record from any thread.
pub struct Histogram {
    counts: Box<[AtomicU64]>,
    stripes: [Stripe; STRIPES],
    overflow: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn zeroed_counters() -> Box<[AtomicU64]> {
    let layout = Layout::array::<AtomicU64>(BUCKETS).expect("constant layout");
    // SAFETY: the layout is non-zero-sized; an all-zero bit pattern is a valid AtomicU64
    // (it has the same in-memory representation as u64); the pointer is checked for null
    // and handed to a Box with exactly the layout it was allocated with.
    unsafe {
        let p = alloc_zeroed(layout) as *mut AtomicU64;
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, BUCKETS))
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: zeroed_counters(),
            stripes: [const { Stripe::new() }; STRIPES],
            overflow: AtomicU64::new(0),
        }
    }

    /// Records one value. Values above `MAX_VALUE` are clamped and counted as overflow.
    #[inline]
    pub fn record(&self, v: u64) {
        let v = if v > MAX_VALUE {
            self.overflow.fetch_add(1, Relaxed);
            MAX_VALUE
        } else {
            v
        };
        let (i, owned) = slot();
        let s = &self.stripes[i];
        if owned {
            // Only this thread writes this stripe: a plain load and store is exact.
            s.sum.store(s.sum.load(Relaxed).wrapping_add(v), Relaxed);
            if v < s.min.load(Relaxed) {
                s.min.store(v, Relaxed);
            }
            if v > s.max.load(Relaxed) {
                s.max.store(v, Relaxed);
            }
        } else {
            s.sum.fetch_add(v, Relaxed);
            // The loads keep the locked read-modify-write off the common path.
            if v < s.min.load(Relaxed) {
                s.min.fetch_min(v, Relaxed);
            }
            if v > s.max.load(Relaxed) {
                s.max.fetch_max(v, Relaxed);
            }
        }
        self.counts[bucket_index(v)].fetch_add(1, Relaxed);
    }

    /// Records `n` occurrences of the same value (sum grows by `n * v`, wrapping).
    pub fn record_n(&self, v: u64, n: u64) {
        if n == 0 {
            return;
        }
        let v = if v > MAX_VALUE {
            self.overflow.fetch_add(n, Relaxed);
            MAX_VALUE
        } else {
            v
        };
        let (i, owned) = slot();
        let s = &self.stripes[i];
        if owned {
            s.sum
                .store(s.sum.load(Relaxed).wrapping_add(v.wrapping_mul(n)), Relaxed);
            s.min.store(s.min.load(Relaxed).min(v), Relaxed);
            s.max.store(s.max.load(Relaxed).max(v), Relaxed);
        } else {
            s.sum.fetch_add(v.wrapping_mul(n), Relaxed);
            s.min.fetch_min(v, Relaxed);
            s.max.fetch_max(v, Relaxed);
        }
        self.counts[bucket_index(v)].fetch_add(n, Relaxed);
    }

    /// Records the time elapsed since `start_ns` (a `clock::now_ns()` reading).
    #[inline]
    pub fn record_since(&self, start_ns: u64) {
        self.record(crate::clock::now_ns().saturating_sub(start_ns));
    }

    /// An immutable copy of the current state.
    pub fn snapshot(&self) -> Snapshot {
        let mut buckets = Vec::new();
        let mut count = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.load(Relaxed);
            if n != 0 {
                buckets.push((i as u32, n));
                count += n;
            }
        }
        let (mut sum, mut min, mut max) = (0u64, u64::MAX, 0u64);
        for s in &self.stripes {
            sum = sum.wrapping_add(s.sum.load(Relaxed));
            min = min.min(s.min.load(Relaxed));
            max = max.max(s.max.load(Relaxed));
        }
        Snapshot {
            count,
            sum,
            min: if count == 0 { None } else { Some(min) },
            max: if count == 0 { None } else { Some(max) },
            overflow: self.overflow.load(Relaxed),
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn index_and_range_are_inverse_and_contiguous() {
        let mut expect_low = 0u64;
        for i in 0..BUCKETS {
            let (low, high) = bucket_range(i);
            assert_eq!(low, expect_low, "bucket {i}");
            assert_eq!(bucket_index(low), i);
            assert_eq!(bucket_index(high), i);
            assert!((high - low) as f64 <= low as f64 / SUB_BUCKETS as f64);
            expect_low = high + 1;
        }
        assert!(bucket_range(BUCKETS - 1).1 >= MAX_VALUE);
        assert_eq!(BUCKETS, 33_421);
        assert_eq!(HISTOGRAM_BYTES, 270_056);
    }

    #[test]
    fn quantiles_within_relative_error() {
        let h = Histogram::new();
        let mut values: Vec<u64> = (0..10_000u64).map(|i| i * i * 37 + 5).collect();
        for &v in &values {
            h.record(v);
        }
        values.sort_unstable();
        let s = h.snapshot();
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            let exact = values[rank - 1] as f64;
            let got = s.quantile(q).unwrap().unwrap() as f64;
            assert!(
                (got - exact).abs() <= exact * RELATIVE_ERROR,
                "q={q} {got} {exact}"
            );
        }
        assert_eq!(s.quantile(1.0).unwrap(), Some(*values.last().unwrap()));
    }

    #[test]
    fn overflow_is_clamped_and_counted() {
        let h = Histogram::new();
        h.record(u64::MAX);
        h.record(MAX_VALUE + 1);
        h.record(7);
        let s = h.snapshot();
        assert_eq!((s.count, s.overflow, s.max), (3, 2, Some(MAX_VALUE)));
        assert_eq!(s.sum, 2 * MAX_VALUE + 7);
    }

    #[test]
    fn bad_floats_are_refused() {
        assert!(value_from_f64(f64::NAN, "h").is_err());
        assert!(value_from_f64(f64::INFINITY, "h").is_err());
        assert!(value_from_f64(-1.0, "h").is_err());
        assert_eq!(value_from_f64(2.5, "h").unwrap(), 3);
    }

    #[test]
    fn many_threads_get_exact_totals() {
        // 24 threads at once: 16 own a stripe, 8 share; a second wave reuses the
        // stripes the first one handed back.
        let h = Arc::new(Histogram::new());
        let mut expect_sum = 0u64;
        for wave in 0..2u64 {
            let threads: Vec<_> = (0..24u64)
                .map(|t| {
                    let h = Arc::clone(&h);
                    std::thread::spawn(move || {
                        for i in 0..20_000u64 {
                            h.record((wave * 24 + t) * 1_000_003 + i);
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            expect_sum += (0..24u64)
                .flat_map(|t| (0..20_000u64).map(move |i| (wave * 24 + t) * 1_000_003 + i))
                .sum::<u64>();
        }
        let s = h.snapshot();
        assert_eq!(s.count, 2 * 24 * 20_000);
        assert_eq!(s.sum, expect_sum);
        assert_eq!(s.min, Some(0));
        assert_eq!(s.max, Some(47 * 1_000_003 + 19_999));
    }
}
