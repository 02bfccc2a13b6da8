//! Whole-trace sampling. A root span decides from its own trace id: the low 56 bits (the
//! random part, per W3C trace-context level 2) are compared with `ratio * 2^56`, so every
//! process that sees the same trace id with the same ratio reaches the same decision, and
//! lowering the ratio only ever removes traces (the kept set is nested). A child follows its
//! parent's `sampled` flag (parent-based) unless parent-based sampling is switched off, in
//! which case it too decides from the trace id.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const SCALE: u64 = 1 << 56;
const MASK: u64 = SCALE - 1;

static THRESHOLD: AtomicU64 = AtomicU64::new(SCALE);
static PARENT_BASED: AtomicBool = AtomicBool::new(true);

/// Sets the ratio of traces recorded (`0.0..=1.0`) and whether children follow their parent.
pub fn set_sampling(ratio: f64, parent_based: bool) -> crate::error::CoreResult<()> {
    if !(0.0..=1.0).contains(&ratio) {
        return Err(crate::error::CoreError::InvalidArgument(format!(
            "sampling ratio {ratio} is outside 0.0..=1.0; pass the fraction of traces to keep"
        )));
    }
    THRESHOLD.store((ratio * SCALE as f64) as u64, Ordering::Relaxed);
    PARENT_BASED.store(parent_based, Ordering::Relaxed);
    Ok(())
}

/// The current `(ratio, parent_based)`.
pub fn sampling() -> (f64, bool) {
    (
        THRESHOLD.load(Ordering::Relaxed) as f64 / SCALE as f64,
        PARENT_BASED.load(Ordering::Relaxed),
    )
}

/// The ratio decision for a trace id.
#[inline]
pub fn sample_root(trace_id: u128) -> bool {
    (trace_id as u64 & MASK) < THRESHOLD.load(Ordering::Relaxed)
}

/// The decision for a span whose parent (if any) carried `parent_sampled`.
#[inline]
pub fn sample(trace_id: u128, parent_sampled: Option<bool>) -> bool {
    match parent_sampled {
        Some(s) if PARENT_BASED.load(Ordering::Relaxed) => s,
        _ => sample_root(trace_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_depends_only_on_trace_id_and_nests() {
        let id: u128 = 0x1234_5678_9abc_def0_0080_0000_0000_0000;
        // low 56 bits = 0x80_0000_0000_0000 = exactly half of the scale
        let _guard = crate::trace::collector::test_lock();
        set_sampling(0.75, true).unwrap();
        assert!(sample_root(id));
        set_sampling(0.25, true).unwrap();
        assert!(!sample_root(id));
        assert!(sample(id, Some(true)));
        set_sampling(0.25, false).unwrap();
        assert!(!sample(id, Some(true)));
        set_sampling(1.0, true).unwrap();
        assert!(sample_root(u128::MAX));
        assert!(set_sampling(1.5, true).is_err());
        assert!(set_sampling(f64::NAN, true).is_err());
    }
}
