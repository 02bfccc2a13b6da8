//! What the queue's operations hand back: the outcome of a put or a get (items not kept are
//! returned, so that the caller decides where they are dropped) and the stats snapshot.

use crate::telemetry::Snapshot;

/// Result of one non-blocking put. Items that were not kept are handed back, so that the
/// caller (holding the GIL, for Python objects) decides where they are dropped.
pub enum Put<T> {
    Accepted,
    /// Accepted after evicting the oldest item (DROP_OLDEST), which is returned.
    Displaced(T),
    /// Refused and counted as dropped (DROP_NEWEST).
    DroppedNewest(T),
    /// Full under BLOCK (wait and retry) or REJECT (counted as rejected).
    Full(T),
    Closed(T),
    /// The item's deadline had already passed: not accepted (counted as rejected).
    Expired(T),
}

pub enum Get<T> {
    Item(T),
    Empty,
    /// Closed and drained: end-of-stream.
    Closed,
}

/// Point-in-time counters of one queue (each read atomically, not all at one instant).
#[derive(Debug, Clone)]
pub struct Stats {
    pub depth: usize,
    pub closed: bool,
    pub enqueued: u64,
    pub dequeued: u64,
    pub rejected: u64,
    pub dropped_oldest: u64,
    pub dropped_newest: u64,
    pub shed_sojourn: u64,
    pub expired_deadline: u64,
    /// The registry histogram `system0_queue_sojourn_ns{queue=<name>}`: shared by every
    /// queue of this name.
    pub sojourn: Snapshot,
}
