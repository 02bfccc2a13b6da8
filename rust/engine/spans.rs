//! The engine's spans, recorded in Rust: one `engine.batch` span per batch that ran (always,
//! a root span sampled by its trace id), one `engine.request` span per request whose caller
//! was in a trace (its child, pointing at the batch it rode in), and for an inline call one
//! `engine.request` span that is both (`inline=true`, no link: it is its own batch).

use std::sync::Arc;

use crate::trace::record::{AttrValue, Attrs, SpanRecord, Status};
use crate::trace::{new_span_id, new_trace_id, sample_root, submit};

/// The span that was current when a request was submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: u128,
    pub span_id: u64,
    pub sampled: bool,
    pub remote: bool,
}

/// What a batch's span says beyond its timing.
#[derive(Debug, Clone, Default)]
pub struct BatchFacts {
    pub size: usize,
    pub padded: usize,
    pub reason: Option<String>,
    pub joules: Option<f64>,
    /// The model failed and no fallback answered: the span's status.
    pub error: Option<String>,
}

/// The ids of one batch's span, made before the model runs so that request spans can link
/// to it.
#[derive(Debug, Clone, Copy)]
pub struct BatchIds {
    pub trace_id: u128,
    pub span_id: u64,
    pub sampled: bool,
}

impl BatchIds {
    pub fn new() -> Self {
        let trace_id = new_trace_id();
        BatchIds {
            trace_id,
            span_id: new_span_id(),
            sampled: sample_root(trace_id),
        }
    }
}

impl Default for BatchIds {
    fn default() -> Self {
        Self::new()
    }
}

fn name(s: &'static str) -> Arc<str> {
    // a handful of names, one allocation each per span; the collector shares the Arc
    Arc::from(s)
}

fn facts_attrs(attrs: &mut Attrs, f: &BatchFacts) {
    if let Some(r) = &f.reason {
        attrs.push(("fallback.reason".into(), AttrValue::Str(r.clone())));
    }
    if let Some(j) = f.joules {
        attrs.push(("energy.joules".into(), AttrValue::Float(j)));
    }
}

fn status(f: &BatchFacts) -> Status {
    match &f.error {
        Some(e) => Status::Error(e.clone()),
        None => Status::Unset,
    }
}

/// Record the batch span (when its trace is sampled).
pub fn batch(engine: &str, ids: BatchIds, start_ns: u64, end_ns: u64, f: &BatchFacts) {
    if !ids.sampled {
        return;
    }
    let mut attrs: Attrs = vec![
        ("engine".into(), AttrValue::Str(engine.to_owned())),
        ("size".into(), AttrValue::Int(f.size as i64)),
        ("padded".into(), AttrValue::Int(f.padded as i64)),
    ];
    facts_attrs(&mut attrs, f);
    submit(SpanRecord {
        name: name("engine.batch"),
        trace_id: ids.trace_id,
        span_id: ids.span_id,
        parent_id: 0,
        parent_remote: false,
        start_ns,
        end_ns,
        status: status(f),
        attrs,
        events: Vec::new(),
    });
}

/// Record the span of one batched request in its caller's trace, linked to its batch.
pub fn request(parent: &Parent, batch: BatchIds, start_ns: u64, end_ns: u64, error: Option<&str>) {
    if !parent.sampled {
        return;
    }
    let attrs: Attrs = vec![
        (
            "batch.trace_id".into(),
            AttrValue::Str(format!("{:032x}", batch.trace_id)),
        ),
        (
            "batch.span_id".into(),
            AttrValue::Str(format!("{:016x}", batch.span_id)),
        ),
    ];
    submit(SpanRecord {
        name: name("engine.request"),
        trace_id: parent.trace_id,
        span_id: new_span_id(),
        parent_id: parent.span_id,
        parent_remote: parent.remote,
        start_ns,
        end_ns,
        status: error.map_or(Status::Unset, |e| Status::Error(e.to_owned())),
        attrs,
        events: Vec::new(),
    });
}

/// Record an inline call's one span: the request's (in its caller's trace, or a new root)
/// and the batch's.
pub fn inline(parent: Option<&Parent>, start_ns: u64, end_ns: u64, f: &BatchFacts) {
    let (trace_id, parent_id, remote, sampled) = match parent {
        Some(p) => (p.trace_id, p.span_id, p.remote, p.sampled),
        None => {
            let t = new_trace_id();
            (t, 0, false, sample_root(t))
        }
    };
    if !sampled {
        return;
    }
    let mut attrs: Attrs = vec![("inline".into(), AttrValue::Bool(true))];
    facts_attrs(&mut attrs, f);
    submit(SpanRecord {
        name: name("engine.request"),
        trace_id,
        span_id: new_span_id(),
        parent_id,
        parent_remote: remote,
        start_ns,
        end_ns,
        status: status(f),
        attrs,
        events: Vec::new(),
    });
}
