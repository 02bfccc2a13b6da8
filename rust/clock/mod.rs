//! The process clock: monotonic nanoseconds from the TSC where it is invariant (quanta checks
//! CPUID for invariant TSC + RDTSCP and calibrates it against CLOCK_MONOTONIC), from the OS
//! monotonic clock otherwise; anchored once to wall-clock time so that any reading converts to
//! a Unix timestamp.
//!
//! `now_ns()` counts from an origin taken when the clock is first used, so readings fit
//! comfortably in an `i64`/`f64` and subtract without wrapping.

pub mod py;
pub mod rfc3339;

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

struct ProcessClock {
    clock: quanta::Clock,
    origin: quanta::Instant,
    /// Wall-clock time (ns since the Unix epoch) at `origin`.
    unix_origin_ns: u64,
    source: &'static str,
}

fn process_clock() -> &'static ProcessClock {
    static CLOCK: OnceLock<ProcessClock> = OnceLock::new();
    CLOCK.get_or_init(|| {
        let clock = quanta::Clock::new();
        let origin = clock.now();
        let unix_origin_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        ProcessClock {
            clock,
            origin,
            unix_origin_ns,
            source: if tsc_is_invariant() {
                "tsc"
            } else {
                "monotonic"
            },
        }
    })
}

#[cfg(target_arch = "x86_64")]
fn tsc_is_invariant() -> bool {
    // CPUID 0x8000_0007 EDX bit 8: invariant TSC (the same test quanta makes before using it).
    use std::arch::x86_64::__cpuid;
    __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn tsc_is_invariant() -> bool {
    false
}

/// Monotonic nanoseconds since the process clock's origin.
#[inline]
pub fn now_ns() -> u64 {
    let c = process_clock();
    c.clock.now().saturating_duration_since(c.origin).as_nanos() as u64
}

/// Converts a `now_ns()` reading to nanoseconds since the Unix epoch.
#[inline]
pub fn to_unix_ns(mono_ns: u64) -> u64 {
    process_clock().unix_origin_ns.saturating_add(mono_ns)
}

/// Wall-clock time in ns since the Unix epoch, on the monotonic time line (never steps back).
#[inline]
pub fn unix_now_ns() -> u64 {
    to_unix_ns(now_ns())
}

/// `"tsc"` when readings come from the invariant, calibrated TSC; `"monotonic"` otherwise.
pub fn source() -> &'static str {
    process_clock().source
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm, proleptic Gregorian).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_steps_back_and_tracks_real_time() {
        let a = now_ns();
        let mut prev = a;
        for _ in 0..10_000 {
            let t = now_ns();
            assert!(t >= prev);
            prev = t;
        }
        let t0 = now_ns();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let elapsed = now_ns() - t0;
        assert!((19_000_000..200_000_000).contains(&elapsed), "{elapsed}");
    }

    #[test]
    fn anchors_to_wall_clock() {
        let sys = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let ours = unix_now_ns();
        assert!(ours.abs_diff(sys) < 50_000_000, "{ours} vs {sys}");
    }
}
