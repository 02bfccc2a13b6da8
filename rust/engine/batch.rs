//! One batch: the requests gathered for it, the padded matrix the model reads, and the
//! settling of every answer slot in it exactly once.

use std::sync::Arc;

use super::core::Engine;
use super::metrics::Outcome;
use super::slot::{Answer, Slot};
use super::spans::{self, BatchFacts, BatchIds, Parent};
use crate::error::CoreError;
use crate::features::PAD_VALUE;

/// A request waiting in the queue (or held by the batch it rides in).
pub struct Pending<A, C> {
    /// Its feature row, `width` values, already checked finite.
    pub x: Box<[f32]>,
    pub slot: Arc<Slot<A, C>>,
    /// Engine clock (a test may inject a fake one): when it was submitted, when it is late.
    pub submit_ns: u64,
    pub deadline_ns: u64,
    /// Real clock at submit: the batching window and the request span start from it.
    pub enqueued_ns: u64,
    pub parent: Option<Parent>,
}

/// The requests of one batch. `open` turns them into the model's matrix; `finish` or
/// `fail` answers them. Whatever path it takes, each slot is settled once (a `Slot` refuses
/// a second answer), and the callbacks of the settled slots are handed back to run.
pub struct Gathered<A, C> {
    pub reqs: Vec<Pending<A, C>>,
    /// Row-major `(padded, width)` float32; empty until `open`.
    pub matrix: Vec<f32>,
    pub padded: usize,
    pub batch_id: u64,
    pub ids: BatchIds,
    pub inline: bool,
    opened: bool,
    start_real_ns: u64,
}

impl<A: Answer, C: Send> Gathered<A, C> {
    pub fn new(reqs: Vec<Pending<A, C>>, inline: bool) -> Self {
        Gathered {
            reqs,
            matrix: Vec::new(),
            padded: 0,
            batch_id: 0,
            ids: BatchIds {
                trace_id: 0,
                span_id: 0,
                sampled: false,
            },
            inline,
            opened: false,
            start_real_ns: 0,
        }
    }

    /// Rows that will be answered by the model.
    pub fn rows(&self) -> usize {
        self.reqs.len()
    }

    /// Drop the requests that cannot be answered in time, or were cancelled, and lay out the
    /// others. A request that would finish after its deadline by the estimate is not run: its
    /// answer would be useless, and the model time is better spent on the others. Returns the
    /// callbacks of the slots answered here; `rows()` is then the live count (0: nothing to
    /// run, the batch is done).
    pub fn open(&mut self, engine: &Engine<A, C>, now_ns: u64) -> Vec<C> {
        let mut callbacks = Vec::new();
        let finish = now_ns.saturating_add(engine.est.get() as u64);
        let name = &engine.cfg.name;
        let mut late = 0u64;
        self.reqs.retain(|r| {
            if !r.slot.start() {
                return false; // cancelled while queued: already answered
            }
            if r.deadline_ns > finish {
                return true;
            }
            late += 1;
            let msg = if self.inline {
                format!(
                    "{name}: the expected model time leaves no room in the budget; the request \
                     was not run"
                )
            } else {
                let how = if r.deadline_ns <= now_ns {
                    "passed"
                } else {
                    "too close"
                };
                format!(
                    "{name}: deadline {how} after {:.2} ms in the queue; the request was not run",
                    now_ns.saturating_sub(r.submit_ns) as f64 / 1e6
                )
            };
            if let Ok(cbs) = r.slot.settle(A::error(CoreError::DeadlineExceeded(msg))) {
                callbacks.extend(cbs);
            }
            false
        });
        engine.metrics.count(Outcome::DeadlineExceeded, late);
        self.opened = true;
        let n = self.reqs.len();
        if n == 0 {
            return callbacks;
        }
        let width = engine.cfg.width;
        self.padded = engine.cfg.padded(n, self.inline);
        self.matrix = Vec::with_capacity(self.padded * width);
        for r in &self.reqs {
            self.matrix.extend_from_slice(&r.x);
        }
        self.matrix.resize(self.padded * width, PAD_VALUE);
        self.batch_id = engine.next_batch_id();
        self.ids = BatchIds::new();
        self.start_real_ns = crate::clock::now_ns();
        engine.running(
            self.batch_id,
            self.reqs.iter().map(|r| r.slot.clone()).collect(),
        );
        callbacks
    }

    /// Answer every live request: `answer(row, queue_wait_ns, total_ns)` makes row `row`'s
    /// answer. `start_ns`/`end_ns` are on the engine clock (model start, answers ready).
    pub fn finish(
        &mut self,
        engine: &Engine<A, C>,
        start_ns: u64,
        end_ns: u64,
        model_ns: u64,
        mut facts: BatchFacts,
        mut answer: impl FnMut(usize, u64, u64) -> A,
    ) -> Vec<C> {
        let n = self.reqs.len();
        facts.size = n;
        facts.padded = self.padded;
        let fallback = facts.reason.is_some();
        engine.est.learn(model_ns);
        engine.metrics.batch(n, model_ns, fallback, self.inline);
        if self.inline {
            engine.metrics.submitted(n as u64); // a queued request was counted when queued
        }
        let end_real = crate::clock::now_ns();
        let m = &engine.metrics;
        let mut callbacks = Vec::new();
        for (j, r) in self.reqs.iter().enumerate() {
            let wait = start_ns.saturating_sub(r.submit_ns);
            let total = end_ns.saturating_sub(r.submit_ns);
            m.wait.record(wait);
            m.total.record(total);
            if let Ok(cbs) = r.slot.settle(answer(j, wait, total)) {
                callbacks.extend(cbs);
            }
            if !self.inline {
                if let Some(p) = &r.parent {
                    spans::request(p, self.ids, r.enqueued_ns, end_real, None);
                }
            }
        }
        self.spans(engine, end_real, &facts);
        engine.done(self.batch_id);
        self.reqs.clear();
        callbacks
    }

    /// The model failed and there is no fallback: every live request gets `error()`.
    pub fn fail(
        &mut self,
        engine: &Engine<A, C>,
        message: &str,
        mut error: impl FnMut() -> A,
    ) -> Vec<C> {
        let n = self.reqs.len() as u64;
        engine.metrics.count(Outcome::Failed, n);
        let end_real = crate::clock::now_ns();
        let mut callbacks = Vec::new();
        for r in &self.reqs {
            if let Ok(cbs) = r.slot.settle(error()) {
                callbacks.extend(cbs);
            }
            if !self.inline {
                if let Some(p) = &r.parent {
                    spans::request(p, self.ids, r.enqueued_ns, end_real, Some(message));
                }
            }
        }
        let facts = BatchFacts {
            size: self.reqs.len(),
            padded: self.padded,
            reason: Some(message.to_owned()),
            joules: None,
            error: Some(message.to_owned()),
        };
        if self.opened && !self.reqs.is_empty() {
            self.spans(engine, end_real, &facts);
            engine.done(self.batch_id);
        }
        self.reqs.clear();
        callbacks
    }

    fn spans(&self, engine: &Engine<A, C>, end_real: u64, facts: &BatchFacts) {
        if self.inline {
            let parent = self.reqs.first().and_then(|r| r.parent.as_ref());
            spans::inline(parent, self.start_real_ns, end_real, facts);
        } else {
            spans::batch(
                &engine.cfg.name,
                self.ids,
                self.start_real_ns,
                end_real,
                facts,
            );
        }
    }

    /// True when every request of the batch has its answer.
    pub fn is_settled(&self) -> bool {
        self.reqs.iter().all(|r| r.slot.is_done())
    }
}
