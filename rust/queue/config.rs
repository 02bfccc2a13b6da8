//! What a queue is built with: its name, capacity, overflow policy and sojourn target.
//! Invariant: a `Config` that exists is valid (capacity in 1..=2**32, a known policy).

use crate::error::{CoreError, CoreResult};

/// What a full queue does with a new item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Block,
    Reject,
    DropOldest,
    DropNewest,
}

impl Policy {
    pub fn parse(s: &str) -> CoreResult<Policy> {
        match s.to_ascii_lowercase().as_str() {
            "block" => Ok(Policy::Block),
            "reject" => Ok(Policy::Reject),
            "drop_oldest" => Ok(Policy::DropOldest),
            "drop_newest" => Ok(Policy::DropNewest),
            _ => Err(CoreError::InvalidArgument(format!(
                "unknown queue policy {s:?}; use one of 'block', 'reject', 'drop_oldest', \
                 'drop_newest' (system0.core.error_handling.Policy)"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Block => "block",
            Policy::Reject => "reject",
            Policy::DropOldest => "drop_oldest",
            Policy::DropNewest => "drop_newest",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub capacity: usize,
    pub policy: Policy,
    /// Shed an item at dequeue when its sojourn exceeded this (and stayed above it for
    /// `sojourn_interval_ns`, as CoDel does); 0 disables shedding.
    pub sojourn_target_ns: u64,
    pub sojourn_interval_ns: u64,
}

impl Config {
    pub fn new(name: &str, capacity: i64, policy: &str) -> CoreResult<Config> {
        if capacity <= 0 {
            return Err(CoreError::InvalidArgument(format!(
                "queue '{name}': capacity must be a positive number of items, got {capacity}"
            )));
        }
        if capacity > (1 << 32) {
            return Err(CoreError::InvalidArgument(format!(
                "queue '{name}': capacity {capacity} is larger than 2**32; a bounded queue that \
                 large is not bounded in practice, pick a smaller one"
            )));
        }
        Ok(Config {
            name: name.to_owned(),
            capacity: capacity as usize,
            policy: Policy::parse(policy)?,
            sojourn_target_ns: 0,
            sojourn_interval_ns: 0,
        })
    }
}
