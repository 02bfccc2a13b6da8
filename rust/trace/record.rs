//! A finished span as the collector stores it, and its JSON form.

use std::sync::Arc;

use crate::logfmt::json;

/// An attribute value: the four scalar kinds OpenTelemetry and JSON both carry faithfully.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// Attributes in insertion order; usually a handful, so a vector beats a map. Setting a key
/// twice replaces the value (see `set_attr`).
pub type Attrs = Vec<(String, AttrValue)>;

/// Sets `key` to `value`, replacing an earlier value for the same key.
pub fn set_attr(attrs: &mut Attrs, key: &str, value: AttrValue) {
    match attrs.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => attrs.push((key.to_owned(), value)),
    }
}

/// Something that happened at a point in time during a span (an exception, a retry, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    /// Monotonic ns from `crate::clock::now_ns()`.
    pub time_ns: u64,
    pub attrs: Attrs,
}

/// The outcome of a span, as in OpenTelemetry.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Status {
    #[default]
    Unset,
    Ok,
    Error(String),
}

impl Status {
    pub fn code(&self) -> &'static str {
        match self {
            Status::Unset => "unset",
            Status::Ok => "ok",
            Status::Error(_) => "error",
        }
    }
}

/// A finished, sampled span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// Shared with the live span object, so recording does not copy it.
    pub name: Arc<str>,
    pub trace_id: u128,
    pub span_id: u64,
    /// 0 for a root span.
    pub parent_id: u64,
    /// True when the parent came from another process (a `traceparent` header).
    pub parent_remote: bool,
    /// Monotonic ns from `crate::clock::now_ns()`; `crate::clock::to_unix_ns` converts.
    pub start_ns: u64,
    pub end_ns: u64,
    pub status: Status,
    pub attrs: Attrs,
    pub events: Vec<Event>,
}

fn write_attrs(out: &mut String, attrs: &Attrs) {
    out.push('{');
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_str(out, k);
        out.push(':');
        match v {
            AttrValue::Str(s) => json::write_str(out, s),
            AttrValue::Int(n) => json::write_i64(out, *n),
            AttrValue::Float(f) => json::write_f64(out, *f),
            AttrValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        }
    }
    out.push('}');
}

impl SpanRecord {
    /// One JSON object (no newline): ids in lowercase hex as in `traceparent`, times in Unix
    /// ns and RFC 3339, the duration in ns.
    pub fn write_json(&self, out: &mut String) {
        use std::fmt::Write;
        let start = crate::clock::to_unix_ns(self.start_ns);
        let end = crate::clock::to_unix_ns(self.end_ns);
        out.push_str("{\"name\":");
        json::write_str(out, &self.name);
        let _ = write!(
            out,
            ",\"trace_id\":\"{:032x}\",\"span_id\":\"{:016x}\"",
            self.trace_id, self.span_id
        );
        if self.parent_id != 0 {
            let _ = write!(out, ",\"parent_id\":\"{:016x}\"", self.parent_id);
        } else {
            out.push_str(",\"parent_id\":null");
        }
        let _ = write!(
            out,
            ",\"start_unix_ns\":{start},\"end_unix_ns\":{end},\"duration_ns\":{}",
            self.end_ns.saturating_sub(self.start_ns)
        );
        out.push_str(",\"start\":\"");
        json::write_rfc3339(out, start);
        out.push_str("\",\"status\":\"");
        out.push_str(self.status.code());
        out.push('"');
        if let Status::Error(msg) = &self.status {
            out.push_str(",\"status_message\":");
            json::write_str(out, msg);
        }
        out.push_str(",\"attributes\":");
        write_attrs(out, &self.attrs);
        if !self.events.is_empty() {
            out.push_str(",\"events\":[");
            for (i, e) in self.events.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"name\":");
                json::write_str(out, &e.name);
                let _ = write!(
                    out,
                    ",\"unix_ns\":{},\"attributes\":",
                    crate::clock::to_unix_ns(e.time_ns)
                );
                write_attrs(out, &e.attrs);
                out.push('}');
            }
            out.push(']');
        }
        out.push('}');
    }

    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(256);
        self.write_json(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_carries_ids_status_and_attributes() {
        let mut attrs = Attrs::new();
        set_attr(&mut attrs, "k", AttrValue::Int(1));
        set_attr(&mut attrs, "k", AttrValue::Str("a\"b".into()));
        set_attr(&mut attrs, "f", AttrValue::Float(0.5));
        let r = SpanRecord {
            name: "op".into(),
            trace_id: 0xab,
            span_id: 0xcd,
            parent_id: 0,
            parent_remote: false,
            start_ns: 10,
            end_ns: 25,
            status: Status::Error("boom".into()),
            attrs,
            events: vec![],
        };
        let j = r.to_json();
        assert!(
            j.contains("\"trace_id\":\"000000000000000000000000000000ab\""),
            "{j}"
        );
        assert!(j.contains("\"parent_id\":null"), "{j}");
        assert!(j.contains("\"duration_ns\":15"), "{j}");
        assert!(j.contains("\"status_message\":\"boom\""), "{j}");
        assert!(
            j.contains("\"attributes\":{\"k\":\"a\\\"b\",\"f\":0.5}"),
            "{j}"
        );
    }
}
