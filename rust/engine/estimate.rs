//! The moving estimate of one batch's model time, and the wait it predicts for a request.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// An exponentially weighted mean of the model time per batch, in ns, readable without a
/// lock (f64 bits in an atomic: admission reads it on every request).
#[derive(Default)]
pub struct Estimate(AtomicU64);

impl Estimate {
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }

    pub fn set(&self, ns: f64) {
        self.0.store(ns.max(0.0).to_bits(), Relaxed);
    }

    /// Fold one batch's model time in. One stalled batch (a GC pause, a noisy neighbour)
    /// moves the estimate by at most 4x the current value's share, so it does not shed a
    /// burst of healthy requests; a lasting slowdown still raises it within a few batches.
    /// Only the thread that ran the batch calls this (under the engine's run lock), so a
    /// plain load and store lose nothing.
    pub fn learn(&self, model_ns: u64) {
        let est = self.get();
        let v = model_ns as f64;
        self.set(if est == 0.0 {
            v
        } else {
            0.8 * est + 0.2 * v.min(4.0 * est)
        });
    }

    /// How long a request submitted now would take to be answered: the batches ahead of it
    /// (`ahead` requests queued or running, plus the ones submitted with it before it) and
    /// its own, each costing the estimate, plus the batching wait when it would not fill a
    /// batch.
    pub fn expected_wait_ns(&self, ahead: usize, max_batch: usize, max_wait_ns: u64) -> f64 {
        let batches = (ahead / max_batch + 1) as f64;
        let gather = if ahead + 1 < max_batch {
            max_wait_ns as f64
        } else {
            0.0
        };
        batches * self.get() + gather
    }
}
