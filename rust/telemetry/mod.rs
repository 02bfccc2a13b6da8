//! Metrics: counters, gauges and log-linear histograms recorded lock-free, kept in a registry
//! of labelled families with a cardinality cap, and exported as Prometheus text.
//!
//! Recording goes through a handle that holds an `Arc` to the metric's atomics, so the hot
//! path never looks a name up and never takes a lock. Spans and energy live beside this
//! module (their own folders); this one is metrics only.

pub mod histogram;
pub mod internal;
pub mod metrics;
pub mod prometheus;
pub mod py;
pub mod registry;
pub mod snapshot;

pub use histogram::Histogram;
pub use metrics::{Counter, Gauge};
pub use registry::{default_registry, Family, Kind, Metric, Registry};
pub use snapshot::Snapshot;
