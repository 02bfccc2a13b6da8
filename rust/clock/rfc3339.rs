//! The one RFC 3339 formatter: a Unix instant written as UTC with a fixed number of
//! fractional digits (`2026-11-25T14:44:04.123456789Z`). The codec writes timestamps with 6
//! digits (the contract's microseconds), logs and spans with 9 (nanoseconds); both go
//! through `Rfc3339`, so the two forms cannot drift apart.

use std::fmt;

use super::civil_from_days;

/// An instant to be displayed in RFC 3339 UTC: `secs` since the Unix epoch (may be
/// negative), plus `frac` in units of 10^-`digits` s (`0 <= frac < 10^digits`).
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339 {
    secs: i64,
    frac: u32,
    digits: usize,
}

impl Rfc3339 {
    /// Microseconds since the epoch, shown with 6 fractional digits.
    pub fn micros(us: i64) -> Rfc3339 {
        Rfc3339 {
            secs: us.div_euclid(1_000_000),
            frac: us.rem_euclid(1_000_000) as u32,
            digits: 6,
        }
    }

    /// Nanoseconds since the epoch, shown with 9 fractional digits.
    pub fn nanos(ns: u64) -> Rfc3339 {
        Rfc3339 {
            secs: (ns / 1_000_000_000) as i64,
            frac: (ns % 1_000_000_000) as u32,
            digits: 9,
        }
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d) = civil_from_days(self.secs.div_euclid(86_400));
        let sod = self.secs.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:0w$}Z",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60,
            self.frac,
            w = self.digits
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_and_nanos_agree_on_the_same_instant() {
        assert_eq!(
            Rfc3339::nanos(0).to_string(),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            Rfc3339::micros(0).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        let ns = 1_709_251_199_000_001_000u64;
        assert_eq!(
            Rfc3339::nanos(ns).to_string(),
            "2024-02-29T23:59:59.000001000Z"
        );
        assert_eq!(
            Rfc3339::micros((ns / 1000) as i64).to_string(),
            "2024-02-29T23:59:59.000001Z"
        );
    }

    #[test]
    fn instants_before_the_epoch_count_down_correctly() {
        assert_eq!(
            Rfc3339::micros(-1).to_string(),
            "1969-12-31T23:59:59.999999Z"
        );
    }
}
