//! The JSON writing shared by span export and log records: RFC 8259 string escaping, numbers,
//! and RFC 3339 timestamps with nanoseconds. Written by hand because the records are small
//! and flat and every nanosecond of the log hot path counts.

use std::fmt::Write;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string: `"` and `\` escaped, control characters as `\n`, `\t`, ...
/// or `\u00XX`; everything else (all of Unicode) as raw UTF-8, which RFC 8259 allows.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Bytes below 0x80 are always whole characters, so slicing here is on a boundary.
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

pub fn write_i64(out: &mut String, v: i64) {
    let _ = write!(out, "{v}");
}

/// Finite floats in the shortest form that reads back to the same value (always with a `.` or
/// an exponent, so a JSON reader sees a float); NaN and the infinities, which JSON cannot hold,
/// as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn write_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v:?}");
    } else if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v > 0.0 {
        out.push_str("\"Infinity\"");
    } else {
        out.push_str("\"-Infinity\"");
    }
}

/// Appends `unix_ns` as RFC 3339 UTC with nanoseconds: `2026-11-25T14:44:04.123456789Z`.
pub fn write_rfc3339(out: &mut String, unix_ns: u64) {
    let _ = write!(out, "{}", crate::clock::rfc3339::Rfc3339::nanos(unix_ns));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_json_requires() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\c\nd\u{1}é😀");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001é😀\"");
    }

    #[test]
    fn floats_read_back_as_floats() {
        for (v, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e300, "1e300"),
            (-2.5e-8, "-2.5e-8"),
        ] {
            let mut s = String::new();
            write_f64(&mut s, v);
            assert_eq!(s, want);
        }
        let mut s = String::new();
        write_f64(&mut s, f64::NAN);
        assert_eq!(s, "\"NaN\"");
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        let mut s = String::new();
        write_rfc3339(&mut s, 0);
        assert_eq!(s, "1970-01-01T00:00:00.000000000Z");
        s.clear();
        // 2024-02-29T23:59:59.000000001Z, a leap day
        write_rfc3339(&mut s, 1_709_251_199_000_000_001);
        assert_eq!(s, "2024-02-29T23:59:59.000000001Z");
        s.clear();
        write_rfc3339(&mut s, 4_102_444_800_123_000_000);
        assert_eq!(s, "2100-01-01T00:00:00.123000000Z");
    }
}
