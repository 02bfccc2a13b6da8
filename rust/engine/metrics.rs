//! The engine's outcome counters and histograms: the registry series Prometheus exports
//! (`engine_requests{engine,outcome}`, `engine_queue_wait_ns`, `engine_model_ns`,
//! `engine_total_ns`, `engine_batch_size`), and the engine's own tallies behind `stats`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::error::{CoreError, CoreResult};
use crate::telemetry::histogram::Histogram;
use crate::telemetry::metrics::Counter;
use crate::telemetry::registry::{default_registry, Kind, Metric, DEFAULT_MAX_LABEL_SETS};

/// What happened to a request, one counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok = 0,
    Fallback,
    Overloaded,
    Invalid,
    DeadlineExceeded,
    Failed,
}

pub const OUTCOMES: [&str; 6] = [
    "ok",
    "fallback",
    "overloaded",
    "invalid",
    "deadline_exceeded",
    "failed",
];

/// A point-in-time copy of the tallies (each read atomically, not all at one instant).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub submitted: u64,
    pub completed: u64,
    pub fallbacks: u64,
    pub rejected_overloaded: u64,
    pub rejected_invalid: u64,
    pub deadline_exceeded: u64,
    pub failed: u64,
    pub batches: u64,
    pub inline: u64,
    /// `(size, batches of that size)`, sizes that occurred only.
    pub batch_sizes: Vec<(usize, u64)>,
}

pub struct Metrics {
    outcomes: [Arc<Counter>; 6],
    local: [AtomicU64; 6],
    submitted: AtomicU64,
    batches: AtomicU64,
    inline: AtomicU64,
    sizes: Box<[AtomicU64]>,
    pub wait: Arc<Histogram>,
    pub model: Arc<Histogram>,
    pub total: Arc<Histogram>,
    pub size: Arc<Histogram>,
}

fn family(
    name: &str,
    kind: Kind,
    labels: &[&str],
    unit: &str,
) -> CoreResult<Arc<crate::telemetry::registry::Family>> {
    default_registry().register(
        name,
        kind,
        labels.iter().map(|s| s.to_string()).collect(),
        "",
        unit,
        DEFAULT_MAX_LABEL_SETS,
    )
}

fn histogram(name: &str, engine: &str, unit: &str) -> CoreResult<Arc<Histogram>> {
    match family(name, Kind::Histogram, &["engine"], unit)?.child(vec![engine.to_owned()])? {
        Metric::Histogram(h) => Ok(h),
        _ => Err(CoreError::Internal(format!(
            "metric '{name}' is not a histogram"
        ))),
    }
}

impl Metrics {
    /// The series of the engine called `engine` (shared by engines of the same name).
    pub fn new(engine: &str, max_batch: usize) -> CoreResult<Self> {
        let requests = family("engine_requests", Kind::Counter, &["engine", "outcome"], "")?;
        let mut outcomes = Vec::with_capacity(OUTCOMES.len());
        for o in OUTCOMES {
            match requests.child(vec![engine.to_owned(), o.to_owned()])? {
                Metric::Counter(c) => outcomes.push(c),
                _ => {
                    return Err(CoreError::Internal(
                        "metric 'engine_requests' is not a counter".into(),
                    ))
                }
            }
        }
        let outcomes: [Arc<Counter>; 6] = outcomes
            .try_into()
            .map_err(|_| CoreError::Internal("outcome counters".into()))?;
        Ok(Metrics {
            outcomes,
            local: Default::default(),
            submitted: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            inline: AtomicU64::new(0),
            sizes: (0..=max_batch).map(|_| AtomicU64::new(0)).collect(),
            wait: histogram("engine_queue_wait_ns", engine, "ns")?,
            model: histogram("engine_model_ns", engine, "ns")?,
            total: histogram("engine_total_ns", engine, "ns")?,
            size: histogram("engine_batch_size", engine, "rows")?,
        })
    }

    pub fn count(&self, o: Outcome, n: u64) {
        if n > 0 {
            self.outcomes[o as usize].inc(n);
            self.local[o as usize].fetch_add(n, Relaxed);
        }
    }

    pub fn submitted(&self, n: u64) {
        self.submitted.fetch_add(n, Relaxed);
    }

    /// One batch answered by the model or the fallback: `n` real rows.
    pub fn batch(&self, n: usize, model_ns: u64, fallback: bool, inline: bool) {
        self.batches.fetch_add(1, Relaxed);
        if inline {
            self.inline.fetch_add(1, Relaxed);
        }
        if let Some(s) = self.sizes.get(n) {
            s.fetch_add(1, Relaxed);
        }
        self.model.record(model_ns);
        self.size.record(n as u64);
        let o = if fallback {
            Outcome::Fallback
        } else {
            Outcome::Ok
        };
        self.count(o, n as u64);
    }

    pub fn tally(&self) -> Tally {
        let l = |o: Outcome| self.local[o as usize].load(Relaxed);
        Tally {
            submitted: self.submitted.load(Relaxed),
            completed: l(Outcome::Ok) + l(Outcome::Fallback),
            fallbacks: l(Outcome::Fallback),
            rejected_overloaded: l(Outcome::Overloaded),
            rejected_invalid: l(Outcome::Invalid),
            deadline_exceeded: l(Outcome::DeadlineExceeded),
            failed: l(Outcome::Failed),
            batches: self.batches.load(Relaxed),
            inline: self.inline.load(Relaxed),
            batch_sizes: self
                .sizes
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let v = c.load(Relaxed);
                    (v > 0).then_some((i, v))
                })
                .collect(),
        }
    }
}
