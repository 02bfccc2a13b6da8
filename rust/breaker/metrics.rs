//! A circuit breaker's series in the telemetry registry, resolved once at construction
//! (label `breaker` = the breaker's name).
//!
//! | family | kind | meaning |
//! | --- | --- | --- |
//! | `system0_breaker_calls` | counter | permitted calls that finished (any outcome) |
//! | `system0_breaker_failures` | counter | of those, the ones classified as failures |
//! | `system0_breaker_rejections` | counter | calls refused while open or half-open full |
//! | `system0_breaker_state` | gauge | 0 closed, 1 open, 2 half-open |
//!
//! Breakers sharing a name share the series: the counters add up, and the state gauge shows
//! the state of whichever of them was built or changed state last.

use std::sync::Arc;

use crate::error::CoreResult;
use crate::telemetry::internal::{self, Def};
use crate::telemetry::{Counter, Gauge};

const CALLS: Def = Def {
    name: "system0_breaker_calls",
    help: "Calls a system0 circuit breaker let through that finished (any outcome).",
    unit: "",
    labels: &["breaker"],
    sets_per_name: 1,
};
const FAILURES: Def = Def {
    name: "system0_breaker_failures",
    help: "Calls through a system0 circuit breaker that ended in a failure.",
    unit: "",
    labels: &["breaker"],
    sets_per_name: 1,
};
const REJECTIONS: Def = Def {
    name: "system0_breaker_rejections",
    help: "Calls a system0 circuit breaker refused (open, or half-open with no permit left).",
    unit: "",
    labels: &["breaker"],
    sets_per_name: 1,
};
const STATE: Def = Def {
    name: "system0_breaker_state",
    help: "State of a system0 circuit breaker: 0 closed, 1 open, 2 half-open.",
    unit: "",
    labels: &["breaker"],
    sets_per_name: 1,
};

/// Registry handles of one breaker.
pub struct BreakerMetrics {
    pub calls: Arc<Counter>,
    pub failures: Arc<Counter>,
    pub rejections: Arc<Counter>,
    pub state: Arc<Gauge>,
}

impl BreakerMetrics {
    /// Fails with `Cardinality` past `INTERNAL_MAX_LABEL_SETS` distinct breaker names.
    pub fn new(name: &str) -> CoreResult<BreakerMetrics> {
        Ok(BreakerMetrics {
            calls: internal::counter(&CALLS, &[name])?,
            failures: internal::counter(&FAILURES, &[name])?,
            rejections: internal::counter(&REJECTIONS, &[name])?,
            state: internal::gauge(&STATE, &[name])?,
        })
    }
}
