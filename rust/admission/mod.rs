//! Admission control: a token bucket (rate limit) and a concurrency limiter (permits).
//!
//! The token bucket is GCRA (the generic cell rate algorithm): one atomic word, the
//! theoretical arrival time, advanced by CAS. Admitting n tokens pushes it n emission intervals
//! ahead; a request is refused when that would put it more than the burst ahead of now. Time
//! is kept in 1/256 ns so fractional emission intervals (rates that do not divide 1e9) do not
//! drift. The limiter is an atomic counter; blocking acquirers wait on a condvar with the same
//! register-then-recheck protocol as the queue, so no release is missed and nobody polls.
//!
//! Telemetry: refusals of both, and the limiter's permits in use, go to registry series of
//! the object's name (see `metrics`), resolved once at construction.

pub mod metrics;
pub mod py;
pub mod py_stats;

use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::error::{CoreError, CoreResult};
use crate::telemetry::Counter;
use metrics::LimiterMetrics;

const SUB: u64 = 256;

pub struct TokenBucket {
    pub name: String,
    pub rate: f64,
    pub burst: u64,
    interval: u64,
    tau: u64,
    tat: AtomicU64,
    pub acquired: AtomicU64,
    pub rejected: AtomicU64,
    rejections: Arc<Counter>,
}

impl TokenBucket {
    pub fn new(name: &str, rate: f64, burst: i64) -> CoreResult<TokenBucket> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(CoreError::InvalidArgument(format!(
                "token bucket '{name}': rate must be a positive finite number of tokens per \
                 second, got {rate}"
            )));
        }
        if burst < 1 {
            return Err(CoreError::InvalidArgument(format!(
                "token bucket '{name}': burst must be >= 1 token, got {burst}"
            )));
        }
        let interval = ((1e9 * SUB as f64) / rate).round().max(1.0) as u64;
        let tau = interval.checked_mul(burst as u64).ok_or_else(|| {
            CoreError::InvalidArgument(format!(
                "token bucket '{name}': burst {burst} at rate {rate}/s spans more time than \
                 can be represented; lower the burst"
            ))
        })?;
        Ok(TokenBucket {
            name: name.to_owned(),
            rate,
            burst: burst as u64,
            interval,
            tau,
            tat: AtomicU64::new(0),
            acquired: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            rejections: metrics::bucket_rejections(name)?,
        })
    }

    fn check_n(&self, n: u64) -> CoreResult<()> {
        if n == 0 || n > self.burst {
            return Err(CoreError::InvalidArgument(format!(
                "token bucket '{}': asked for {n} tokens; ask for 1..={} (the burst)",
                self.name, self.burst
            )));
        }
        Ok(())
    }

    /// Take `n` tokens if they are there within `max_wait_ns` (0 = now). Ok(wait_ns): taken,
    /// usable after waiting that long (the caller sleeps). Err(wait_ns): refused, they would
    /// have been there after that long.
    pub fn reserve(&self, n: u64, now_ns: u64, max_wait_ns: u64) -> CoreResult<Result<u64, u64>> {
        self.check_n(n)?;
        let now = now_ns.saturating_mul(SUB);
        let inc = n * self.interval;
        let mut tat = self.tat.load(Acquire);
        loop {
            let new = tat.max(now) + inc;
            let ahead = new - now;
            let wait = ahead.saturating_sub(self.tau) / SUB;
            if wait > max_wait_ns {
                self.rejected.fetch_add(1, Relaxed);
                self.rejections.inc(1);
                return Ok(Err(wait));
            }
            match self.tat.compare_exchange_weak(tat, new, AcqRel, Acquire) {
                Ok(_) => {
                    self.acquired.fetch_add(n, Relaxed);
                    return Ok(Ok(wait));
                }
                Err(x) => tat = x,
            }
        }
    }

    /// Tokens available now (fractional).
    pub fn available(&self, now_ns: u64) -> f64 {
        let now = now_ns.saturating_mul(SUB);
        let ahead = self.tat.load(Acquire).saturating_sub(now);
        (self.tau.saturating_sub(ahead)) as f64 / self.interval as f64
    }
}

pub struct Limiter {
    pub name: String,
    pub limit: usize,
    in_use: AtomicUsize,
    waiting: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
    pub acquired: AtomicU64,
    pub rejected: AtomicU64,
    pub peak: AtomicUsize,
    metrics: LimiterMetrics,
}

impl Limiter {
    pub fn new(name: &str, limit: i64) -> CoreResult<Limiter> {
        if limit < 1 {
            return Err(CoreError::InvalidArgument(format!(
                "concurrency limiter '{name}': limit must be >= 1 permit, got {limit}"
            )));
        }
        Ok(Limiter {
            name: name.to_owned(),
            limit: limit as usize,
            in_use: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
            acquired: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            peak: AtomicUsize::new(0),
            metrics: LimiterMetrics::new(name)?,
        })
    }

    pub fn in_use(&self) -> usize {
        self.in_use.load(Acquire)
    }

    fn take(&self) -> bool {
        let r = self
            .in_use
            .fetch_update(AcqRel, Acquire, |u| (u < self.limit).then_some(u + 1));
        if let Ok(prev) = r {
            self.acquired.fetch_add(1, Relaxed);
            self.peak.fetch_max(prev + 1, Relaxed);
            self.metrics.in_use.add(1.0);
        }
        r.is_ok()
    }

    /// Non-blocking; does not count a refusal (the caller decides whether it was one).
    pub fn try_acquire(&self) -> bool {
        self.take()
    }

    pub fn count_rejected(&self) {
        self.rejected.fetch_add(1, Relaxed);
        self.metrics.rejections.inc(1);
    }

    /// Wait for a permit until `until` (None = forever); false on timeout (not counted: the
    /// caller may wait on, and counts the refusal once it gives up).
    pub fn acquire(&self, until: Option<Instant>) -> bool {
        loop {
            if self.take() {
                return true;
            }
            if until.is_some_and(|t| Instant::now() >= t) {
                return false;
            }
            let mut g = self.lock.lock();
            self.waiting.fetch_add(1, SeqCst);
            fence(SeqCst);
            if self.in_use.load(SeqCst) >= self.limit {
                match until {
                    None => self.freed.wait(&mut g),
                    Some(t) => {
                        let _ = self.freed.wait_until(&mut g, t);
                    }
                }
            }
            self.waiting.fetch_sub(1, SeqCst);
        }
    }

    pub fn release(&self) -> CoreResult<()> {
        self.in_use
            .fetch_update(AcqRel, Acquire, |u| u.checked_sub(1))
            .map_err(|_| {
                CoreError::InvalidArgument(format!(
                    "concurrency limiter '{}': release() without a matching acquire",
                    self.name
                ))
            })?;
        self.metrics.in_use.add(-1.0);
        fence(SeqCst);
        if self.waiting.load(SeqCst) > 0 {
            let _g = self.lock.lock();
            self.freed.notify_one();
        }
        Ok(())
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        // Permits never released leave the shared in-use gauge with this limiter.
        let held = *self.in_use.get_mut();
        if held != 0 {
            self.metrics.in_use.add(-(held as f64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let b = TokenBucket::new("t", 10.0, 3).unwrap();
        for _ in 0..3 {
            assert_eq!(b.reserve(1, 0, 0).unwrap(), Ok(0));
        }
        let wait = b.reserve(1, 0, 0).unwrap().unwrap_err();
        assert!((99_999_000..=100_000_000).contains(&wait), "{wait}");
        assert_eq!(b.reserve(1, 100_000_000, 0).unwrap(), Ok(0));
        assert!(b.reserve(4, 0, 0).is_err(), "more than the burst");
    }

    #[test]
    fn limiter_blocks_until_release() {
        let l = Arc::new(Limiter::new("t", 1).unwrap());
        assert!(l.try_acquire());
        assert!(!l.acquire(Some(Instant::now() + Duration::from_millis(5))));
        assert_eq!(l.rejected.load(Relaxed), 0, "the caller counts refusals");
        let l2 = l.clone();
        let h = std::thread::spawn(move || l2.acquire(None));
        std::thread::sleep(Duration::from_millis(10));
        l.release().unwrap();
        assert!(h.join().unwrap());
        l.release().unwrap();
        assert!(l.release().is_err());
    }
}
