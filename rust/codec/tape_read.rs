//! Reading a parsed tape (JSON, msgpack or protobuf, all as simd-json `Node`s) against the
//! contract, one value at a time: the generic readers (an object's fields, a required field,
//! a float in bounds, a string) that every row rule is written with, and the `Issue` each
//! broken rule leaves. Invariant: a reader either returns the value or pushes exactly one
//! issue at the value's path; nothing is allocated unless a rule breaks.

use simd_json::{Node, StaticNode};

use super::contract::Bounds;

/// One broken rule inside a row: where (dotted path), which rule (code), and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub path: String,
    pub code: &'static str,
    pub message: String,
}

/// Where a value sits, as a chain of field names up to the row.
#[derive(Clone, Copy)]
pub struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    name: &'a str,
}

impl<'a> Path<'a> {
    pub const ROOT: Path<'static> = Path {
        parent: None,
        name: "",
    };

    pub fn child(&'a self, name: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            name,
        }
    }

    fn render_into(&self, out: &mut String) {
        if let Some(p) = self.parent {
            p.render_into(out);
            if !out.is_empty() {
                out.push('.');
            }
        }
        out.push_str(self.name);
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        self.render_into(&mut s);
        s
    }
}

pub(super) fn push(issues: &mut Vec<Issue>, path: &Path<'_>, code: &'static str, msg: &str) {
    issues.push(Issue {
        path: path.render(),
        code,
        message: msg.to_owned(),
    });
}

/// Number of tape nodes a value occupies (its header plus everything nested in it).
#[inline]
pub fn span(node: &Node<'_>) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

pub(super) const ABSENT: usize = usize::MAX;

/// Map each known field (by `lookup`) to the tape index of its value (the last one when a
/// key repeats, as JSON parsers conventionally keep); report unknown keys as `extra_forbidden`.
#[inline]
pub(super) fn fields<const N: usize>(
    nodes: &[Node<'_>],
    at: usize,
    path: &Path<'_>,
    lookup: impl Fn(&str) -> Option<usize>,
    issues: &mut Vec<Issue>,
) -> Option<[usize; N]> {
    let Some(&Node::Object { len, .. }) = nodes.get(at) else {
        push(issues, path, "model_type", "expected a JSON object");
        return None;
    };
    let mut out = [ABSENT; N];
    let mut i = at + 1;
    for _ in 0..len {
        let key = match nodes.get(i) {
            Some(Node::String(k)) => *k,
            _ => {
                push(issues, path, "json_invalid", "object key is not a string");
                return None;
            }
        };
        let v = i + 1;
        match lookup(key) {
            Some(k) => out[k] = v,
            None => push(
                issues,
                &path.child(key),
                "extra_forbidden",
                "extra fields are not permitted by the contract",
            ),
        }
        i = v + nodes.get(v).map_or(1, span);
    }
    Some(out)
}

pub(super) fn required(idx: usize, path: &Path<'_>, issues: &mut Vec<Issue>) -> Option<usize> {
    if idx == ABSENT {
        push(issues, path, "missing", "field required");
        None
    } else {
        Some(idx)
    }
}

/// A finite JSON number (integers included, booleans and strings not: strict mode).
#[inline]
pub(super) fn float(
    nodes: &[Node<'_>],
    i: usize,
    path: &Path<'_>,
    issues: &mut Vec<Issue>,
) -> Option<f64> {
    let v = match nodes.get(i) {
        Some(Node::Static(StaticNode::F64(v))) => *v,
        Some(Node::Static(StaticNode::I64(v))) => *v as f64,
        Some(Node::Static(StaticNode::U64(v))) => *v as f64,
        _ => {
            push(issues, path, "float_type", "expected a number");
            return None;
        }
    };
    if !v.is_finite() {
        push(issues, path, "finite_number", "number must be finite");
        return None;
    }
    Some(v)
}

/// A finite number inside `b` (pydantic's `ge` / `le`, with its error types).
#[inline]
pub(super) fn bounded(
    nodes: &[Node<'_>],
    i: usize,
    path: &Path<'_>,
    issues: &mut Vec<Issue>,
    b: Bounds,
) -> Option<f64> {
    let v = float(nodes, i, path, issues)?;
    let (code, side) = if v < b.lo {
        ("greater_than_equal", format!(">= {}", b.lo))
    } else if v > b.hi {
        ("less_than_equal", format!("<= {}", b.hi))
    } else {
        return Some(v);
    };
    let msg = format!(
        "must be {side} (the contract range is [{}, {}])",
        b.lo, b.hi
    );
    push(issues, path, code, &msg);
    None
}

pub(super) fn string<'a>(
    nodes: &[Node<'a>],
    i: usize,
    path: &Path<'_>,
    issues: &mut Vec<Issue>,
) -> Option<&'a str> {
    match nodes.get(i) {
        Some(Node::String(s)) => Some(*s),
        _ => {
            push(issues, path, "string_type", "expected a string");
            None
        }
    }
}

/// Read a required field: `f(nodes, index, path, issues)` when present, `missing` when not.
#[inline]
pub(super) fn req<'p, T>(
    nodes: &[Node<'_>],
    idx: usize,
    parent: &'p Path<'p>,
    name: &'p str,
    issues: &mut Vec<Issue>,
    f: impl FnOnce(usize, &Path<'_>, &mut Vec<Issue>) -> Option<T>,
) -> Option<T> {
    let path = parent.child(name);
    let _ = nodes;
    let i = required(idx, &path, issues)?;
    f(i, &path, issues)
}

/// Field lookup over one of the contract's name lists (a handful of length-first compares).
pub(super) fn lookup(names: &'static [&'static str]) -> impl Fn(&str) -> Option<usize> {
    move |k| names.iter().position(|n| *n == k)
}
