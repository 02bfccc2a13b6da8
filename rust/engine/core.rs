//! The engine: configuration, admission, the bounded queue, gathering and close.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::batch::{Gathered, Pending};
use super::estimate::Estimate;
use super::metrics::{Metrics, Outcome};
use super::slot::{Answer, Slot};
use super::spans::Parent;
use crate::error::{CoreError, CoreResult};
use crate::queue::{self, Get, Put, Queue};

/// What an engine is built with (checked by `Config::check`).
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    /// Feature values per request row.
    pub width: usize,
    pub max_batch: usize,
    pub max_wait_ns: u64,
    /// Sorted, distinct batch sizes to pad to; empty: no padding.
    pub buckets: Vec<usize>,
    pub capacity: usize,
    /// The share of a budget the expected wait may fill.
    pub headroom: f64,
}

impl Config {
    pub fn check(&self) -> CoreResult<()> {
        let bad = |m: String| Err(CoreError::InvalidArgument(m));
        if !(1..=4096).contains(&self.max_batch) {
            return bad(format!(
                "max_batch must be in [1, 4096], got {}",
                self.max_batch
            ));
        }
        if self.max_wait_ns > 1_000_000_000 {
            return bad(format!(
                "max_wait must be in [0, 1] seconds, got {} ns",
                self.max_wait_ns
            ));
        }
        if self.width == 0 {
            return bad("the model must take at least one feature".into());
        }
        let sorted = self.buckets.windows(2).all(|w| w[0] < w[1]);
        if !sorted
            || self.buckets.first().is_some_and(|&b| b < 1)
            || self.buckets.last().is_some_and(|&b| b < self.max_batch)
        {
            return bad(format!(
                "buckets must be sorted, >= 1 and reach max_batch {}, got {:?}",
                self.max_batch, self.buckets
            ));
        }
        if !(1..=1_000_000).contains(&self.capacity) {
            return bad(format!(
                "queue_capacity must be in [1, 1e6], got {}",
                self.capacity
            ));
        }
        if !(0.1..=1.0).contains(&self.headroom) {
            return bad(format!(
                "headroom must be in [0.1, 1], got {}",
                self.headroom
            ));
        }
        Ok(())
    }

    /// The matrix height for `n` requests: the next bucket (an inline call: the smallest,
    /// the model knows only the bucket sizes), or `n` itself without buckets.
    pub fn padded(&self, n: usize, inline: bool) -> usize {
        if inline {
            return self.buckets.first().copied().unwrap_or(1).max(n);
        }
        self.buckets.iter().copied().find(|&b| b >= n).unwrap_or(n)
    }
}

/// What `Engine::next_batch` found.
pub enum Next<A, C> {
    Batch(Gathered<A, C>),
    /// Nothing came before the timeout.
    Idle,
    /// Closed and drained: the worker may stop.
    Closed,
}

type Slots<A, C> = Vec<Arc<Slot<A, C>>>;

pub struct Engine<A, C> {
    pub cfg: Config,
    queue: Queue<Pending<A, C>>,
    pub est: Estimate,
    busy: AtomicUsize,
    batch_ids: AtomicU64,
    pub metrics: Metrics,
    /// The slots of the batches running now, so that `abandon` can answer them when a model
    /// hangs past `close`.
    running: Mutex<HashMap<u64, Slots<A, C>>>,
}

impl<A: Answer, C: Send> Engine<A, C> {
    pub fn new(cfg: Config) -> CoreResult<Self> {
        cfg.check()?;
        let qcfg = queue::Config::new(
            &format!("{}.queue", cfg.name),
            cfg.capacity as i64,
            "reject",
        )?;
        Ok(Engine {
            queue: Queue::new(qcfg)?,
            metrics: Metrics::new(&cfg.name, cfg.max_batch)?,
            cfg,
            est: Estimate::default(),
            busy: AtomicUsize::new(0),
            batch_ids: AtomicU64::new(1),
            running: Mutex::new(HashMap::new()),
        })
    }

    pub fn depth(&self) -> usize {
        self.queue.len()
    }

    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.busy.load(Relaxed) == 0
    }

    /// The expected wait of a request submitted now behind `behind` others submitted with it.
    pub fn expected_wait_ns(&self, behind: usize) -> f64 {
        let ahead = self.depth() + self.busy.load(Relaxed).min(1) * self.cfg.max_batch + behind;
        self.est
            .expected_wait_ns(ahead, self.cfg.max_batch, self.cfg.max_wait_ns)
    }

    pub fn closed_error(&self) -> CoreError {
        CoreError::Closed(format!("{} is closed; create a new engine", self.cfg.name))
    }

    pub fn check_open(&self) -> CoreResult<()> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        Ok(())
    }

    /// Admission of `k` requests submitted together with `budget_ns`: refused at once (and
    /// counted) when the last of them would wait longer than the budget allows.
    pub fn admit(&self, k: usize, budget_ns: u64) -> CoreResult<()> {
        self.check_open()?;
        let expected = self.expected_wait_ns(k.saturating_sub(1));
        if expected <= budget_ns as f64 * self.cfg.headroom {
            return Ok(());
        }
        self.metrics.count(Outcome::Overloaded, k as u64);
        let what = if k > 1 {
            format!("for the last of {k} requests ")
        } else {
            String::new()
        };
        Err(CoreError::Overloaded {
            message: format!(
                "{}: expected wait {:.2} ms {what}exceeds the budget {:.2} ms; retry later or \
                 with a larger budget",
                self.cfg.name,
                expected / 1e6,
                budget_ns as f64 / 1e6
            ),
            depth: self.depth(),
            retry_after_s: expected / 1e9,
        })
    }

    fn full_error(&self, refused: usize, of: usize) -> CoreError {
        CoreError::Overloaded {
            message: format!(
                "{}: the queue is full ({} waiting); {refused} of {of} request(s) were refused; \
                 retry later",
                self.cfg.name,
                self.depth()
            ),
            depth: self.depth(),
            retry_after_s: self.expected_wait_ns(0) / 1e9,
        }
    }

    /// A request ready to queue or run inline (its row already checked).
    pub fn pending(
        &self,
        x: Box<[f32]>,
        now_ns: u64,
        budget_ns: u64,
        parent: Option<Parent>,
    ) -> Pending<A, C> {
        Pending {
            x,
            slot: Arc::new(Slot::new()),
            submit_ns: now_ns,
            deadline_ns: now_ns.saturating_add(budget_ns),
            enqueued_ns: crate::clock::now_ns(),
            parent,
        }
    }

    /// Queue one admitted request; a full queue is `Overloaded` (counted).
    pub fn enqueue(&self, p: Pending<A, C>) -> CoreResult<Arc<Slot<A, C>>> {
        let slot = p.slot.clone();
        match self.queue.put_nowait(p, 0, crate::clock::now_ns()) {
            Put::Accepted => {
                self.metrics.submitted(1);
                Ok(slot)
            }
            Put::Closed(_) => Err(self.closed_error()),
            _ => {
                self.metrics.count(Outcome::Overloaded, 1);
                Err(self.full_error(1, 1))
            }
        }
    }

    /// Queue admitted requests in one step; those the full (or closing) queue cannot take are
    /// answered with `Overloaded` (or `Closed`) in their slots. Returns every slot, in order,
    /// and the callbacks of the slots answered here.
    pub fn enqueue_many(&self, ps: Vec<Pending<A, C>>) -> (Vec<Arc<Slot<A, C>>>, Vec<C>) {
        let k = ps.len();
        let slots: Vec<_> = ps.iter().map(|p| p.slot.clone()).collect();
        let mut discard = Vec::new();
        let (accepted, stop, rest) = self.queue.put_many(ps, 0, None, false, &mut discard);
        self.metrics.submitted(accepted as u64);
        let mut callbacks = Vec::new();
        let refused = k - accepted;
        if refused > 0 {
            let closed = matches!(stop, Some(Put::Closed(()))) || self.is_closed();
            if !closed {
                self.metrics.count(Outcome::Overloaded, refused as u64);
            }
            for p in rest.into_iter().chain(discard) {
                let e = if closed {
                    self.closed_error()
                } else {
                    self.full_error(refused, k)
                };
                if let Ok(cbs) = p.slot.settle(A::error(e)) {
                    callbacks.extend(cbs);
                }
            }
        }
        (slots, callbacks)
    }

    /// Wait (until `until`) for a first request, then gather company for at most `max_wait`
    /// after it was queued (less when its budget leaves less room), or until `max_batch`. The window is real time even under a fake
    /// engine clock: it is a real wait.
    pub fn next_batch(&self, until: Option<Instant>) -> Next<A, C> {
        let mut discard = Vec::new();
        let first = match self.queue.get(until, &mut discard) {
            Get::Item(p) => p,
            Get::Empty => return Next::Idle,
            Get::Closed => return Next::Closed,
        };
        let mut reqs = vec![first];
        if self.cfg.max_batch > 1 {
            // Never hold a request for company past the point where its batch could still
            // run in its budget (the admission share of it, less one batch's expected time):
            // a 1 ms budget must not sit out a 2 ms window and expire unrun.
            let first = &reqs[0];
            let budget = first.deadline_ns.saturating_sub(first.submit_ns) as f64;
            let room = (budget * self.cfg.headroom - self.est.get()).max(0.0) as u64;
            let end = first.enqueued_ns + self.cfg.max_wait_ns.min(room);
            let left = end.saturating_sub(crate::clock::now_ns());
            let until = Instant::now() + Duration::from_nanos(left);
            if let Some(more) =
                self.queue
                    .get_many(self.cfg.max_batch - 1, Some(until), true, &mut discard)
            {
                reqs.extend(more);
            }
        }
        Next::Batch(Gathered::new(reqs, false))
    }

    pub(super) fn next_batch_id(&self) -> u64 {
        self.batch_ids.fetch_add(1, Relaxed)
    }

    pub(super) fn running(&self, batch_id: u64, slots: Slots<A, C>) {
        self.busy.fetch_add(1, Relaxed);
        self.running.lock().insert(batch_id, slots);
    }

    pub(super) fn done(&self, batch_id: u64) {
        if self.running.lock().remove(&batch_id).is_some() {
            self.busy.fetch_sub(1, Relaxed);
        }
    }

    /// Refuse new requests; the workers answer what is queued, then see `Next::Closed`.
    pub fn close(&self) {
        self.queue.close();
    }

    /// After `close` and the workers' time to finish: answer with `Closed` whatever is still
    /// queued or running (a hung model), so that no request is left hanging. A late answer
    /// of the model is then refused by its slot. Returns the callbacks to run.
    pub fn abandon(&self) -> Vec<C> {
        self.queue.close();
        let mut slots: Vec<Arc<Slot<A, C>>> =
            self.queue.drain_all().into_iter().map(|p| p.slot).collect();
        for (_, s) in self.running.lock().drain() {
            slots.extend(s);
        }
        let mut callbacks = Vec::new();
        for s in slots {
            let e = CoreError::Closed(format!(
                "{} was closed before this request was answered; submit it to a new engine",
                self.cfg.name
            ));
            if let Ok(cbs) = s.settle(A::error(e)) {
                callbacks.extend(cbs);
            }
        }
        callbacks
    }
}
