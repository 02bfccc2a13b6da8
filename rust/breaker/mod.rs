//! A circuit breaker whose state lives in atomics shared by all threads. The hot path (a call
//! through a closed breaker) is one load of the state word, the window update and a threshold
//! check: no lock. Transitions are rare and serialised by a mutex; the winner re-checks the
//! state word, applies the side effects (open deadline, half-open permits, window reset) and
//! only then publishes the new state with a fresh epoch.
//!
//! Every permit carries the epoch it was issued in: an outcome that arrives after the state
//! moved on (a slow call issued while closed, finishing after the breaker opened) is counted
//! in the totals but cannot sway the new state's decision.
//!
//! Telemetry: calls, failures, rejections and the state go to the registry series of the
//! breaker's name (see `metrics`), resolved once at construction and updated beside the
//! per-instance counters of `stats()`; the state gauge on every transition.

pub mod metrics;
pub mod py;
pub mod py_stats;
pub mod window;

use std::sync::atomic::{AtomicU64, Ordering::*};

use parking_lot::Mutex;

use crate::error::{CoreError, CoreResult};
use metrics::BreakerMetrics;
use window::{CountWindow, TimeWindow, Totals, Window};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
    fn from_bits(b: u64) -> State {
        match b & 3 {
            0 => State::Closed,
            1 => State::Open,
            _ => State::HalfOpen,
        }
    }
}

#[inline]
fn pack(s: State, epoch: u64) -> u64 {
    (epoch << 2) | s as u64
}
#[inline]
fn unpack(w: u64) -> (State, u64) {
    (State::from_bits(w), w >> 2)
}

#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    /// Some(n): the last n calls; None: time-based, see `window_ns`.
    pub window_calls: Option<usize>,
    pub window_ns: u64,
    pub window_buckets: usize,
    pub minimum_calls: u64,
    pub failure_rate: f64,
    /// 0 disables slow-call detection.
    pub slow_call_ns: u64,
    pub slow_call_rate: f64,
    pub wait_ns: u64,
    pub max_wait_ns: u64,
    pub backoff: f64,
    pub jitter: f64,
    pub half_open_permits: u32,
    pub max_half_open_ns: u64,
    pub seed: u64,
}

impl Config {
    pub fn validate(&self) -> CoreResult<()> {
        let bad = |what: String| {
            Err(CoreError::InvalidArgument(format!(
                "circuit breaker '{}': {what}",
                self.name
            )))
        };
        if matches!(self.window_calls, Some(0)) {
            return bad("window_calls must be >= 1".into());
        }
        if self.window_calls.is_none() && (self.window_ns == 0 || self.window_buckets == 0) {
            return bad("a time window needs window > 0 seconds".into());
        }
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return bad(format!(
                "failure_rate_threshold must be in (0, 1], got {}",
                self.failure_rate
            ));
        }
        if !(self.slow_call_rate > 0.0 && self.slow_call_rate <= 1.0) {
            return bad(format!(
                "slow_call_rate_threshold must be in (0, 1], got {}",
                self.slow_call_rate
            ));
        }
        if !(self.backoff >= 1.0 && self.backoff.is_finite()) {
            return bad(format!(
                "backoff multiplier must be >= 1, got {}",
                self.backoff
            ));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return bad(format!("jitter must be in [0, 1), got {}", self.jitter));
        }
        if self.half_open_permits == 0 || self.half_open_permits >= (1 << 20) {
            return bad(format!(
                "half_open_permits must be in 1..2**20, got {}",
                self.half_open_permits
            ));
        }
        if self.max_wait_ns < self.wait_ns {
            return bad("max_wait must be >= wait".into());
        }
        if self.max_half_open_ns == 0 {
            return bad("max_half_open must be > 0 seconds".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Neither (an exception classified as ignored): the permit is handed back.
    Ignored,
}

#[derive(Debug, Clone, Copy)]
pub struct Permit {
    pub epoch: u64,
    pub start_ns: u64,
}

#[derive(Debug, Clone)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub reason: String,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
    ignored: AtomicU64,
    rejected: AtomicU64,
    opened: AtomicU64,
}

#[derive(Debug, Clone)]
pub struct Stats {
    pub state: State,
    pub calls: u64,
    pub successes: u64,
    pub failures: u64,
    pub slow: u64,
    pub ignored: u64,
    pub rejected: u64,
    pub opened: u64,
    pub window: Totals,
    pub open_remaining_ns: u64,
}

/// What only transitions touch, under the transition lock.
struct TransitionState {
    /// Consecutive openings since the last close: the backoff exponent.
    opens_in_row: u32,
    rng: u64,
}

pub struct Breaker {
    cfg: Config,
    state: AtomicU64,
    open_until: AtomicU64,
    half_open_since: AtomicU64,
    /// epoch << 20 | permits issued in that half-open epoch.
    half_issued: AtomicU64,
    /// epoch << 40 | failures << 20 | successes, outcomes of half-open probes.
    half_done: AtomicU64,
    half_slow: AtomicU64,
    window: Window,
    counters: Counters,
    metrics: BreakerMetrics,
    transitions: Mutex<TransitionState>,
}

const MASK20: u64 = (1 << 20) - 1;

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Breaker {
    pub fn new(cfg: Config) -> CoreResult<Breaker> {
        cfg.validate()?;
        let window = match cfg.window_calls {
            Some(n) => Window::Count(CountWindow::new(n)),
            None => Window::Time(TimeWindow::new(cfg.window_ns, cfg.window_buckets)),
        };
        let seed = cfg.seed;
        let metrics = BreakerMetrics::new(&cfg.name)?;
        metrics.state.set(State::Closed as u64 as f64);
        Ok(Breaker {
            cfg,
            state: AtomicU64::new(pack(State::Closed, 0)),
            open_until: AtomicU64::new(0),
            half_open_since: AtomicU64::new(0),
            half_issued: AtomicU64::new(0),
            half_done: AtomicU64::new(0),
            half_slow: AtomicU64::new(0),
            window,
            counters: Counters::default(),
            metrics,
            transitions: Mutex::new(TransitionState {
                opens_in_row: 0,
                rng: seed,
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    #[inline]
    pub fn state(&self) -> State {
        unpack(self.state.load(Acquire)).0
    }

    /// Move from the state word `expected` to `to`; None if another thread moved first.
    fn transition(
        &self,
        expected: u64,
        to: State,
        now_ns: u64,
        reason: String,
    ) -> Option<Transition> {
        let mut ts = self.transitions.lock();
        if self.state.load(Acquire) != expected {
            return None;
        }
        let (from, epoch) = unpack(expected);
        let next = epoch + 1;
        match to {
            State::Open => {
                ts.opens_in_row = ts.opens_in_row.saturating_add(1);
                let exp = (ts.opens_in_row - 1).min(64) as i32;
                let base = (self.cfg.wait_ns as f64 * self.cfg.backoff.powi(exp))
                    .min(self.cfg.max_wait_ns as f64);
                let u = (splitmix64(&mut ts.rng) >> 11) as f64 / (1u64 << 53) as f64;
                let wait = base * (1.0 + self.cfg.jitter * (2.0 * u - 1.0));
                self.open_until
                    .store(now_ns.saturating_add(wait.max(0.0) as u64), Release);
                self.counters.opened.fetch_add(1, Relaxed);
            }
            State::HalfOpen => {
                self.half_issued
                    .store((next & ((1 << 44) - 1)) << 20, Release);
                self.half_done
                    .store((next & ((1 << 24) - 1)) << 40, Release);
                self.half_slow.store(0, Release);
                self.half_open_since.store(now_ns, Release);
            }
            State::Closed => {
                ts.opens_in_row = 0;
                self.window.reset();
            }
        }
        self.state.store(pack(to, next), Release);
        // Under the transition lock, so the gauge follows this breaker's transitions in order.
        self.metrics.state.set(to as u64 as f64);
        Some(Transition { from, to, reason })
    }

    /// Apply the time-driven transitions (open wait elapsed, half-open overstayed).
    pub fn poll(&self, now_ns: u64) -> Option<Transition> {
        let w = self.state.load(Acquire);
        match unpack(w).0 {
            State::Open if now_ns >= self.open_until.load(Acquire) => self.transition(
                w,
                State::HalfOpen,
                now_ns,
                format!(
                    "open wait elapsed; letting {} probe call(s) through",
                    self.cfg.half_open_permits
                ),
            ),
            State::HalfOpen
                if now_ns.saturating_sub(self.half_open_since.load(Acquire))
                    >= self.cfg.max_half_open_ns =>
            {
                self.transition(
                    w,
                    State::Open,
                    now_ns,
                    format!(
                        "half-open for longer than max_half_open ({:.3} s) without a verdict \
                         from its probes",
                        self.cfg.max_half_open_ns as f64 / 1e9
                    ),
                )
            }
            _ => None,
        }
    }

    /// Ask to make a call. `Err` = rejected, with the seconds until a probe may pass.
    /// A transition this caused is written to `tr`.
    #[inline]
    pub fn acquire(&self, now_ns: u64, tr: &mut Option<Transition>) -> Result<Permit, f64> {
        loop {
            let w = self.state.load(Acquire);
            let (st, epoch) = unpack(w);
            match st {
                State::Closed => {
                    return Ok(Permit {
                        epoch,
                        start_ns: now_ns,
                    })
                }
                State::Open => {
                    let until = self.open_until.load(Acquire);
                    if now_ns < until {
                        self.counters.rejected.fetch_add(1, Relaxed);
                        self.metrics.rejections.inc(1);
                        return Err((until - now_ns) as f64 / 1e9);
                    }
                    if let Some(t) = self.poll(now_ns) {
                        *tr = Some(t);
                    }
                }
                State::HalfOpen => {
                    if let Some(t) = self.poll(now_ns) {
                        *tr = Some(t);
                        continue;
                    }
                    let want = epoch & ((1 << 44) - 1);
                    let mut h = self.half_issued.load(Acquire);
                    loop {
                        if h >> 20 != want {
                            break; // the state moved on: look again
                        }
                        if h & MASK20 >= self.cfg.half_open_permits as u64 {
                            self.counters.rejected.fetch_add(1, Relaxed);
                            self.metrics.rejections.inc(1);
                            let left = self.cfg.max_half_open_ns.saturating_sub(
                                now_ns.saturating_sub(self.half_open_since.load(Acquire)),
                            );
                            return Err((left.min(self.cfg.wait_ns) as f64 / 1e9).max(1e-6));
                        }
                        match self
                            .half_issued
                            .compare_exchange_weak(h, h + 1, AcqRel, Acquire)
                        {
                            Ok(_) => {
                                return Ok(Permit {
                                    epoch,
                                    start_ns: now_ns,
                                })
                            }
                            Err(x) => h = x,
                        }
                    }
                }
            }
        }
    }

    fn trips(&self, t: Totals) -> Option<String> {
        if t.calls == 0 {
            return None;
        }
        let fr = t.failures as f64 / t.calls as f64;
        if fr >= self.cfg.failure_rate {
            return Some(format!(
                "failure rate {:.1}% over {} calls reached the threshold {:.1}%",
                fr * 100.0,
                t.calls,
                self.cfg.failure_rate * 100.0
            ));
        }
        if self.cfg.slow_call_ns > 0 {
            let sr = t.slow as f64 / t.calls as f64;
            if sr >= self.cfg.slow_call_rate {
                return Some(format!(
                    "slow-call rate {:.1}% over {} calls (slower than {:.6} s) reached the \
                     threshold {:.1}%",
                    sr * 100.0,
                    t.calls,
                    self.cfg.slow_call_ns as f64 / 1e9,
                    self.cfg.slow_call_rate * 100.0
                ));
            }
        }
        None
    }

    /// Record how a permitted call ended; returns the transition it caused, if any.
    #[inline]
    pub fn record(&self, p: Permit, outcome: Outcome, now_ns: u64) -> Option<Transition> {
        let slow = self.cfg.slow_call_ns > 0
            && outcome != Outcome::Ignored
            && now_ns.saturating_sub(p.start_ns) >= self.cfg.slow_call_ns;
        let c = &self.counters;
        c.calls.fetch_add(1, Relaxed);
        self.metrics.calls.inc(1);
        let failed = match outcome {
            Outcome::Success => {
                c.successes.fetch_add(1, Relaxed);
                false
            }
            Outcome::Failure => {
                c.failures.fetch_add(1, Relaxed);
                self.metrics.failures.inc(1);
                true
            }
            Outcome::Ignored => {
                c.ignored.fetch_add(1, Relaxed);
                false
            }
        };
        if slow {
            c.slow.fetch_add(1, Relaxed);
        }
        let w = self.state.load(Acquire);
        let (st, epoch) = unpack(w);
        if epoch != p.epoch {
            return None;
        }
        match st {
            State::Closed => {
                if outcome == Outcome::Ignored {
                    return None;
                }
                self.window.record(failed, slow, now_ns);
                let t = self.window.totals(now_ns);
                if t.calls < self.cfg.minimum_calls || (t.failures == 0 && t.slow == 0) {
                    return None;
                }
                let why = self.trips(t)?;
                self.transition(w, State::Open, now_ns, why)
            }
            State::HalfOpen => {
                let tag = (epoch & ((1 << 24) - 1)) << 40;
                if outcome == Outcome::Ignored {
                    // Hand the permit back so another probe can decide.
                    let _ = self.half_issued.fetch_update(AcqRel, Acquire, |h| {
                        (h >> 20 == epoch & ((1 << 44) - 1) && h & MASK20 > 0).then(|| h - 1)
                    });
                    return None;
                }
                if slow {
                    self.half_slow.fetch_add(1, AcqRel);
                }
                let add = if failed { 1 << 20 } else { 1 };
                // Tagged CAS: a stale probe can never count towards a later half-open.
                let Ok(prev) = self.half_done.fetch_update(AcqRel, Acquire, |d| {
                    (d & !((1u64 << 40) - 1) == tag).then_some(d + add)
                }) else {
                    return None;
                };
                let d = prev + add;
                let (ok, bad) = (d & MASK20, (d >> 20) & MASK20);
                let n = ok + bad;
                if n < self.cfg.half_open_permits as u64 {
                    return None;
                }
                let t = Totals {
                    calls: n,
                    failures: bad,
                    slow: self.half_slow.load(Acquire),
                };
                match self.trips(t) {
                    Some(why) => {
                        self.transition(w, State::Open, now_ns, format!("half-open probes: {why}"))
                    }
                    None => self.transition(
                        w,
                        State::Closed,
                        now_ns,
                        format!("{n} half-open probe(s) succeeded ({bad} failed)"),
                    ),
                }
            }
            State::Open => None,
        }
    }

    /// Force a state (operator override): open now, or closed with a fresh window.
    pub fn force(&self, to: State, now_ns: u64) -> Option<Transition> {
        loop {
            let w = self.state.load(Acquire);
            if unpack(w).0 == to && to != State::Open {
                return None;
            }
            if let Some(t) = self.transition(w, to, now_ns, "forced by the operator".into()) {
                return Some(t);
            }
        }
    }

    pub fn stats(&self, now_ns: u64) -> Stats {
        let c = &self.counters;
        let st = self.state();
        Stats {
            state: st,
            calls: c.calls.load(Relaxed),
            successes: c.successes.load(Relaxed),
            failures: c.failures.load(Relaxed),
            slow: c.slow.load(Relaxed),
            ignored: c.ignored.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            opened: c.opened.load(Relaxed),
            window: self.window.totals(now_ns),
            open_remaining_ns: if st == State::Open {
                self.open_until.load(Acquire).saturating_sub(now_ns)
            } else {
                0
            },
        }
    }
}

#[cfg(test)]
mod tests;
