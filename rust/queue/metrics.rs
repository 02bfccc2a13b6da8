//! A queue's series in the telemetry registry, resolved once at construction (label
//! `queue` = the queue's name), and the tallies that batch updates to them.
//!
//! | family | kind | labels |
//! | --- | --- | --- |
//! | `system0_queue_enqueued` | counter | queue |
//! | `system0_queue_dequeued` | counter | queue |
//! | `system0_queue_rejected` | counter | queue |
//! | `system0_queue_dropped` | counter | queue, reason = oldest / newest |
//! | `system0_queue_shed` | counter | queue, reason = sojourn / deadline |
//! | `system0_queue_depth` | gauge | queue |
//! | `system0_queue_sojourn_ns` | histogram (ns) | queue |
//!
//! Queues that share a name share these series: the counters and the depth gauge add up
//! over them, and the sojourn histogram holds the sojourns of all of them. Each queue's own
//! per-instance atomics (`Queue::stats`) stay exact for that queue alone.
//!
//! Updates are gathered in a tally and applied once per operation or per batch (`put_many`,
//! `get_many`), so a batch of 64 costs one registry update per series, not 64. The depth
//! gauge moves by `+accepted - evicted` on the producer side and `-popped` on the consumer
//! side: it is exact once the queue is quiet and may lag (even dip below zero) by the
//! operations in flight.

use std::sync::Arc;

use crate::error::CoreResult;
use crate::telemetry::internal::{self, Def};
use crate::telemetry::{Counter, Gauge, Histogram};

const ENQUEUED: Def = Def {
    name: "system0_queue_enqueued",
    help: "Items accepted by a system0 bounded queue.",
    unit: "",
    labels: &["queue"],
    sets_per_name: 1,
};
const DEQUEUED: Def = Def {
    name: "system0_queue_dequeued",
    help: "Items handed to a consumer by a system0 bounded queue.",
    unit: "",
    labels: &["queue"],
    sets_per_name: 1,
};
const REJECTED: Def = Def {
    name: "system0_queue_rejected",
    help: "Puts refused by a system0 bounded queue (full under REJECT, BLOCK timeout, or \
           deadline already passed).",
    unit: "",
    labels: &["queue"],
    sets_per_name: 1,
};
const DROPPED: Def = Def {
    name: "system0_queue_dropped",
    help: "Items dropped by a full system0 bounded queue: reason=oldest (evicted, DROP_OLDEST) \
           or newest (refused, DROP_NEWEST).",
    unit: "",
    labels: &["queue", "reason"],
    sets_per_name: 2,
};
const SHED: Def = Def {
    name: "system0_queue_shed",
    help: "Accepted items a system0 bounded queue discarded at dequeue: reason=sojourn (waited \
           longer than the sojourn target) or deadline (expired).",
    unit: "",
    labels: &["queue", "reason"],
    sets_per_name: 2,
};
const DEPTH: Def = Def {
    name: "system0_queue_depth",
    help: "Items waiting in system0 bounded queues.",
    unit: "",
    labels: &["queue"],
    sets_per_name: 1,
};
/// The family of queue sojourn times (put to get of delivered items), in ns.
pub const SOJOURN: Def = Def {
    name: "system0_queue_sojourn_ns",
    help: "Time an item delivered by a system0 bounded queue waited in it, put to get.",
    unit: "ns",
    labels: &["queue"],
    sets_per_name: 1,
};

/// Registry handles of one queue.
pub struct QueueMetrics {
    pub enqueued: Arc<Counter>,
    pub dequeued: Arc<Counter>,
    pub rejected: Arc<Counter>,
    pub dropped_oldest: Arc<Counter>,
    pub dropped_newest: Arc<Counter>,
    pub shed_sojourn: Arc<Counter>,
    pub shed_deadline: Arc<Counter>,
    pub depth: Arc<Gauge>,
    pub sojourn: Arc<Histogram>,
}

impl QueueMetrics {
    /// Resolves (creating on first use) every series of queue `name`. Fails with
    /// `Cardinality` past `INTERNAL_MAX_LABEL_SETS` distinct queue names, or with `Config`
    /// when a family name was already registered by someone else with another shape.
    pub fn new(name: &str) -> CoreResult<QueueMetrics> {
        Ok(QueueMetrics {
            enqueued: internal::counter(&ENQUEUED, &[name])?,
            dequeued: internal::counter(&DEQUEUED, &[name])?,
            rejected: internal::counter(&REJECTED, &[name])?,
            dropped_oldest: internal::counter(&DROPPED, &[name, "oldest"])?,
            dropped_newest: internal::counter(&DROPPED, &[name, "newest"])?,
            shed_sojourn: internal::counter(&SHED, &[name, "sojourn"])?,
            shed_deadline: internal::counter(&SHED, &[name, "deadline"])?,
            depth: internal::gauge(&DEPTH, &[name])?,
            sojourn: internal::histogram(&SOJOURN, &[name])?,
        })
    }
}

/// Producer-side outcomes not yet applied to the counters.
#[derive(Default)]
pub struct PutTally {
    pub enqueued: u64,
    pub rejected: u64,
    pub dropped_oldest: u64,
    pub dropped_newest: u64,
}

/// Consumer-side outcomes not yet applied: items popped (all of them leave the depth),
/// delivered, expired and shed, and the current run of equal sojourns (items put in one
/// batch and taken in one batch share one), recorded with a single `record_n`.
#[derive(Default)]
pub struct GetTally {
    pub popped: u64,
    pub dequeued: u64,
    pub expired: u64,
    pub shed: u64,
    pub run_value: u64,
    pub run_len: u64,
}

impl GetTally {
    #[inline]
    pub fn sojourn(&mut self, s: u64, h: &Histogram) {
        if self.run_len > 0 && s != self.run_value {
            self.flush_run(h);
        }
        self.run_value = s;
        self.run_len += 1;
    }

    #[inline]
    pub fn flush_run(&mut self, h: &Histogram) {
        match self.run_len {
            0 => {}
            1 => h.record(self.run_value),
            n => h.record_n(self.run_value, n),
        }
        self.run_len = 0;
    }
}
