//! JSON log records, formatted in Rust: a record is one line
//! `{"ts":"<RFC 3339, ns>","level":"info","logger":"app","event":"...","trace_id":"...",
//! "span_id":"...", <fields>}` with the trace context of the span current where it was logged.
//! `json` holds the escaping and number rules (shared with span export); `py.rs` holds the
//! fast logger and the formatter used by the `logging` integration.

pub mod json;
pub mod py;

/// Log levels, numbered as in Python's `logging`.
pub const DEBUG: u8 = 10;
pub const INFO: u8 = 20;
pub const WARNING: u8 = 30;
pub const ERROR: u8 = 40;
pub const CRITICAL: u8 = 50;

/// The name written in records for a level number (the nearest standard level at or below).
pub fn level_name(level: u8) -> &'static str {
    match level {
        0..=19 => "debug",
        20..=29 => "info",
        30..=39 => "warning",
        40..=49 => "error",
        _ => "critical",
    }
}

/// Parses a level name (any case, `warn` and `fatal` accepted) or a number.
pub fn parse_level(s: &str) -> crate::error::CoreResult<u8> {
    match s.to_ascii_lowercase().as_str() {
        "debug" => Ok(DEBUG),
        "info" => Ok(INFO),
        "warning" | "warn" => Ok(WARNING),
        "error" => Ok(ERROR),
        "critical" | "fatal" => Ok(CRITICAL),
        other => other.parse::<u8>().map_err(|_| {
            crate::error::CoreError::InvalidArgument(format!(
                "log level {s:?} is not one of debug, info, warning, error, critical or 0..=255"
            ))
        }),
    }
}

/// Writes the fixed head of a record: `{"ts":..,"level":..,"logger":..,"event":..` and the
/// trace context when there is one. The caller appends `,"key":value` fields and closes it
/// with `end_record`.
pub fn begin_record(
    out: &mut String,
    unix_ns: u64,
    level: &str,
    logger: &str,
    event: &str,
    ids: Option<(u128, u64)>,
) {
    use std::fmt::Write;
    out.push_str("{\"ts\":\"");
    json::write_rfc3339(out, unix_ns);
    out.push_str("\",\"level\":\"");
    out.push_str(level);
    out.push_str("\",\"logger\":");
    json::write_str(out, logger);
    out.push_str(",\"event\":");
    json::write_str(out, event);
    if let Some((t, s)) = ids {
        let _ = write!(out, ",\"trace_id\":\"{t:032x}\",\"span_id\":\"{s:016x}\"");
    }
}

/// Starts a field: `,"key":`.
pub fn field(out: &mut String, key: &str) {
    out.push(',');
    json::write_str(out, key);
    out.push(':');
}

pub fn end_record(out: &mut String) {
    out.push_str("}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_line_of_json() {
        let mut s = String::new();
        begin_record(&mut s, 0, "info", "app", "hello \"x\"", Some((1, 2)));
        field(&mut s, "n");
        json::write_i64(&mut s, 3);
        end_record(&mut s);
        assert_eq!(
            s,
            "{\"ts\":\"1970-01-01T00:00:00.000000000Z\",\"level\":\"info\",\"logger\":\"app\",\
             \"event\":\"hello \\\"x\\\"\",\"trace_id\":\"00000000000000000000000000000001\",\
             \"span_id\":\"0000000000000002\",\"n\":3}\n"
        );
    }

    #[test]
    fn levels_parse_and_name() {
        assert_eq!(parse_level("WARN").unwrap(), WARNING);
        assert_eq!(parse_level("15").unwrap(), 15);
        assert!(parse_level("loud").is_err());
        assert_eq!(level_name(15), "debug");
        assert_eq!(level_name(CRITICAL), "critical");
    }
}
