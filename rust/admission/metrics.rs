//! Registry series of the admission controls, resolved once at construction.
//!
//! | family | kind | labels |
//! | --- | --- | --- |
//! | `system0_limiter_rejections` | counter | limiter (refused permits of a ConcurrencyLimiter) |
//! | `system0_limiter_in_use` | gauge | limiter (permits held now) |
//! | `system0_token_bucket_rejections` | counter | bucket (refused requests of a TokenBucket) |
//!
//! Objects sharing a name share the series (counts and permits in use add up); each
//! object's `stats()` stays exact for that object alone.

use std::sync::Arc;

use crate::error::CoreResult;
use crate::telemetry::internal::{self, Def};
use crate::telemetry::{Counter, Gauge};

const LIMITER_REJECTIONS: Def = Def {
    name: "system0_limiter_rejections",
    help: "Permit requests a system0 concurrency limiter refused (none free in time).",
    unit: "",
    labels: &["limiter"],
    sets_per_name: 1,
};
const LIMITER_IN_USE: Def = Def {
    name: "system0_limiter_in_use",
    help: "Permits of system0 concurrency limiters held now.",
    unit: "",
    labels: &["limiter"],
    sets_per_name: 1,
};
const BUCKET_REJECTIONS: Def = Def {
    name: "system0_token_bucket_rejections",
    help: "Requests a system0 token bucket refused (tokens not there in time).",
    unit: "",
    labels: &["bucket"],
    sets_per_name: 1,
};

pub struct LimiterMetrics {
    pub rejections: Arc<Counter>,
    pub in_use: Arc<Gauge>,
}

impl LimiterMetrics {
    pub fn new(name: &str) -> CoreResult<LimiterMetrics> {
        Ok(LimiterMetrics {
            rejections: internal::counter(&LIMITER_REJECTIONS, &[name])?,
            in_use: internal::gauge(&LIMITER_IN_USE, &[name])?,
        })
    }
}

pub fn bucket_rejections(name: &str) -> CoreResult<Arc<Counter>> {
    internal::counter(&BUCKET_REJECTIONS, &[name])
}
