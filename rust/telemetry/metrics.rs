//! Counters and gauges: one cache-line padded atomic each, so that two hot metrics never
//! share a line and recording is a single atomic instruction.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::error::{CoreError, CoreResult};

/// A monotonically increasing count of whole events. Wraps modulo 2^64 (never in practice).
#[repr(align(128))]
#[derive(Default)]
pub struct Counter {
    value: AtomicU64,
}

impl Counter {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn inc(&self, n: u64) {
        self.value.fetch_add(n, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.value.load(Relaxed)
    }
}

/// A value that goes up and down (queue depth, temperature, bytes in use): an f64 stored
/// as its bits. `set` is one store; `add` is a compare-and-swap loop.
#[repr(align(128))]
#[derive(Default)]
pub struct Gauge {
    bits: AtomicU64,
}

/// Refuses NaN and infinities: one NaN would poison every later `add` without a trace.
pub fn check_gauge_value(v: f64, metric: &str) -> CoreResult<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(CoreError::InvalidArgument(format!(
            "gauge '{metric}' was given {v}; gauges hold finite values only"
        )))
    }
}

impl Gauge {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Relaxed);
    }

    #[inline]
    pub fn add(&self, d: f64) {
        // fetch_update retries until no other thread changed the value in between.
        let _ = self.bits.fetch_update(Relaxed, Relaxed, |b| {
            Some((f64::from_bits(b) + d).to_bits())
        });
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counter_exact_under_threads() {
        let c = Arc::new(Counter::new());
        let g = Arc::new(Gauge::new());
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let (c, g) = (Arc::clone(&c), Arc::clone(&g));
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        c.inc(1);
                        g.add(1.0);
                        g.add(-0.5);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(c.get(), 800_000);
        assert_eq!(g.get(), 400_000.0);
    }

    #[test]
    fn gauge_refuses_non_finite() {
        assert!(check_gauge_value(f64::NAN, "g").is_err());
        assert!(check_gauge_value(f64::NEG_INFINITY, "g").is_err());
        assert_eq!(check_gauge_value(-2.5, "g").unwrap(), -2.5);
    }
}
