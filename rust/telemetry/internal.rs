//! Handles on system0's own metrics (queues, breakers, limiters), resolved once when such an
//! object is built: the family and the child are looked up here, and the object then records
//! straight into the returned atomics, never by name.
//!
//! These families live in the default registry with a high label-set cap
//! (`INTERNAL_MAX_LABEL_SETS` distinct object names): a program that builds objects under
//! more distinct names than that gets `CardinalityError` from the constructor of the object
//! that would exceed it, rather than an unbounded registry. Objects that share a name share
//! the series, so their counts add up there.

use std::sync::Arc;

use super::histogram::Histogram;
use super::metrics::{Counter, Gauge};
use super::registry::{default_registry, Kind, Metric};
use crate::error::{CoreError, CoreResult};

/// Distinct object names (queues, breakers, limiters, buckets) each internal family holds.
pub const INTERNAL_MAX_LABEL_SETS: usize = 10_000;

/// Definition of one internal family: name, help, unit, label names, and how many label
/// sets one object name can use (the number of values of any extra label, e.g. a reason).
pub struct Def {
    pub name: &'static str,
    pub help: &'static str,
    pub unit: &'static str,
    pub labels: &'static [&'static str],
    pub sets_per_name: usize,
}

fn child(kind: Kind, def: &Def, values: &[&str]) -> CoreResult<Metric> {
    let fam = default_registry().register(
        def.name,
        kind,
        def.labels.iter().map(|s| (*s).to_owned()).collect(),
        def.help,
        def.unit,
        INTERNAL_MAX_LABEL_SETS * def.sets_per_name.max(1),
    )?;
    fam.child(values.iter().map(|s| (*s).to_owned()).collect())
}

fn wrong_kind(def: &Def) -> CoreError {
    // Unreachable: register() refuses a name already held by another kind.
    CoreError::Config(format!(
        "metric '{}' is registered with another kind than system0 expects",
        def.name
    ))
}

pub fn counter(def: &Def, values: &[&str]) -> CoreResult<Arc<Counter>> {
    match child(Kind::Counter, def, values)? {
        Metric::Counter(c) => Ok(c),
        _ => Err(wrong_kind(def)),
    }
}

pub fn gauge(def: &Def, values: &[&str]) -> CoreResult<Arc<Gauge>> {
    match child(Kind::Gauge, def, values)? {
        Metric::Gauge(g) => Ok(g),
        _ => Err(wrong_kind(def)),
    }
}

pub fn histogram(def: &Def, values: &[&str]) -> CoreResult<Arc<Histogram>> {
    match child(Kind::Histogram, def, values)? {
        Metric::Histogram(h) => Ok(h),
        _ => Err(wrong_kind(def)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Def = Def {
        name: "system0_test_internal_events",
        help: "test",
        unit: "",
        labels: &["thing"],
        sets_per_name: 1,
    };

    #[test]
    fn same_name_same_series() {
        let a = counter(&D, &["x"]).unwrap();
        let b = counter(&D, &["x"]).unwrap();
        a.inc(2);
        b.inc(3);
        assert_eq!(a.get(), 5);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(counter(&D, &["x", "y"]).is_err(), "one value per label");
    }
}
