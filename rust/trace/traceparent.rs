//! The W3C Trace Context `traceparent` header: `version-traceid-parentid-flags`, for example
//! `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
//!
//! Parsing follows the spec's rules for receivers: lowercase hex only; all-zero trace or parent
//! ids are invalid; version `ff` is invalid; version `00` must be exactly 55 characters; a
//! higher (future) version is parsed by its first 55 characters and may carry more fields after
//! a `-`. Surrounding blanks (HTTP optional whitespace) are trimmed. We always send version 00.

/// The parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub version: u8,
    pub trace_id: u128,
    pub span_id: u64,
    pub flags: u8,
}

impl TraceParent {
    /// The `sampled` bit of trace-flags.
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 != 0
    }
}

const LEN: usize = 55;

#[inline]
fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn parse_hex(s: &[u8]) -> Option<u128> {
    let mut v: u128 = 0;
    for &c in s {
        v = (v << 4) | u128::from(hex_val(c)?);
    }
    Some(v)
}

/// Parses a `traceparent` value; `None` when it is malformed (the caller counts it).
pub fn parse_traceparent(header: &str) -> Option<TraceParent> {
    let s = header.trim_matches(|c| c == ' ' || c == '\t').as_bytes();
    if s.len() < LEN || s[2] != b'-' || s[35] != b'-' || s[52] != b'-' {
        return None;
    }
    let version = parse_hex(&s[0..2])? as u8;
    if version == 0xff {
        return None;
    }
    if version == 0 && s.len() != LEN {
        return None;
    }
    if version > 0 && s.len() > LEN && s[LEN] != b'-' {
        return None;
    }
    let trace_id = parse_hex(&s[3..35])?;
    let span_id = parse_hex(&s[36..52])? as u64;
    let flags = parse_hex(&s[53..55])? as u8;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(TraceParent {
        version,
        trace_id,
        span_id,
        flags,
    })
}

/// Formats a version-00 `traceparent` (lowercase hex, 55 characters).
pub fn format_traceparent(trace_id: u128, span_id: u64, sampled: bool) -> String {
    format!(
        "00-{trace_id:032x}-{span_id:016x}-{:02x}",
        u8::from(sampled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example_and_formats_it_back() {
        let tp = parse_traceparent(GOOD).unwrap();
        assert_eq!(tp.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(tp.span_id, 0x00f067aa0ba902b7);
        assert!(tp.sampled());
        assert_eq!(format_traceparent(tp.trace_id, tp.span_id, true), GOOD);
    }

    #[test]
    fn rejects_malformed_headers() {
        for bad in [
            "",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // uppercase
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // v00 too long
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", // dash misplaced
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", // future, no dash
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn tolerates_future_versions() {
        let tp =
            parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever")
                .unwrap();
        assert_eq!(tp.version, 0xcc);
        assert_eq!(tp.span_id, 0x00f067aa0ba902b7);
        assert!(parse_traceparent(&GOOD.replacen("00", "01", 1)).is_some());
    }

    #[test]
    fn trims_optional_whitespace() {
        assert!(parse_traceparent(&format!(" {GOOD}\t")).is_some());
    }
}
