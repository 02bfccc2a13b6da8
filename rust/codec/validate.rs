//! Contract rules applied to a parsed JSON (or msgpack) tape, one row at a time. Every rule
//! here mirrors one in `system0.data.models`; reason codes follow pydantic's error types
//! where pydantic has a specific one, and name the rule where pydantic says `value_error`.

use simd_json::{Node, StaticNode};

use super::contract::{
    champion_ok, item_index, parse_timestamp, TimestampError, ACTION_KINDS, MAX_INVENTORY,
    MAX_META, MAX_STEP, SCHEMA_VERSION,
};

/// One broken rule inside a row: where (dotted path), which rule (code), and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub path: String,
    pub code: &'static str,
    pub message: String,
}

/// Where a value sits: a dotted prefix ("state.") plus the field name.
fn at(prefix: &str, field: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + field.len());
    s.push_str(prefix);
    s.push_str(field);
    s
}

fn push(issues: &mut Vec<Issue>, prefix: &str, field: &str, code: &'static str, msg: &str) {
    issues.push(Issue {
        path: at(prefix, field),
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

const ABSENT: usize = usize::MAX;

/// Map each known field name to the tape index of its value (the last one when a key repeats,
/// as JSON parsers conventionally keep); report every unknown key as `extra_forbidden`.
fn fields<const N: usize>(
    nodes: &[Node<'_>],
    at_: usize,
    names: &[&str; N],
    prefix: &str,
    field: &str,
    issues: &mut Vec<Issue>,
) -> Option<[usize; N]> {
    let Some(&Node::Object { len, .. }) = nodes.get(at_) else {
        push(issues, prefix, field, "model_type", "expected a JSON object");
        return None;
    };
    let inner = if field.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}{field}.")
    };
    let mut out = [ABSENT; N];
    let mut i = at_ + 1;
    for _ in 0..len {
        let key = match nodes.get(i) {
            Some(Node::String(k)) => *k,
            _ => {
                push(issues, &inner, "", "json_invalid", "object key is not a string");
                return None;
            }
        };
        let v = i + 1;
        match names.iter().position(|n| *n == key) {
            Some(k) => out[k] = v,
            None => issues.push(Issue {
                path: at(&inner, key),
                code: "extra_forbidden",
                message: "extra fields are not permitted by the contract".to_owned(),
            }),
        }
        i = v + nodes.get(v).map_or(1, span);
    }
    Some(out)
}

fn required(idx: usize, prefix: &str, field: &str, issues: &mut Vec<Issue>) -> Option<usize> {
    if idx == ABSENT {
        push(issues, prefix, field, "missing", "field required");
        None
    } else {
        Some(idx)
    }
}

/// A finite JSON number (integers included, booleans and strings not: strict mode).
fn float(nodes: &[Node<'_>], i: usize, prefix: &str, field: &str, issues: &mut Vec<Issue>) -> Option<f64> {
    let v = match nodes.get(i) {
        Some(Node::Static(StaticNode::F64(v))) => *v,
        Some(Node::Static(StaticNode::I64(v))) => *v as f64,
        Some(Node::Static(StaticNode::U64(v))) => *v as f64,
        _ => {
            push(issues, prefix, field, "float_type", "expected a number");
            return None;
        }
    };
    if !v.is_finite() {
        push(issues, prefix, field, "finite_number", "number must be finite");
        return None;
    }
    Some(v)
}

fn non_negative(nodes: &[Node<'_>], i: usize, prefix: &str, field: &str, issues: &mut Vec<Issue>) -> Option<f64> {
    let v = float(nodes, i, prefix, field, issues)?;
    if v < 0.0 {
        push(issues, prefix, field, "greater_than_equal", "must be >= 0");
        return None;
    }
    Some(v)
}

fn unit(nodes: &[Node<'_>], i: usize, prefix: &str, field: &str, issues: &mut Vec<Issue>) -> Option<f64> {
    let v = non_negative(nodes, i, prefix, field, issues)?;
    if v > 1.0 {
        push(issues, prefix, field, "less_than_equal", "normalized coordinate must be <= 1");
        return None;
    }
    Some(v)
}

fn string<'a>(nodes: &[Node<'a>], i: usize, prefix: &str, field: &str, issues: &mut Vec<Issue>) -> Option<&'a str> {
    match nodes.get(i) {
        Some(Node::String(s)) => Some(*s),
        _ => {
            push(issues, prefix, field, "string_type", "expected a string");
            None
        }
    }
}

fn schema_version(nodes: &[Node<'_>], i: usize, prefix: &str, issues: &mut Vec<Issue>) {
    if i == ABSENT {
        return;
    }
    let ok = matches!(nodes.get(i), Some(Node::Static(StaticNode::I64(v))) if *v == SCHEMA_VERSION)
        || matches!(nodes.get(i), Some(Node::Static(StaticNode::U64(v))) if *v == SCHEMA_VERSION as u64);
    if !ok {
        push(issues, prefix, "schema_version", "literal_error", "schema_version must be 1");
    }
}

/// A normalized map position `{x, y}`.
fn position(nodes: &[Node<'_>], i: usize, prefix: &str, field: &str, issues: &mut Vec<Issue>) -> Option<(f64, f64)> {
    let f = fields(nodes, i, &["x", "y"], prefix, field, issues)?;
    let inner = format!("{prefix}{field}.");
    let x = required(f[0], &inner, "x", issues).and_then(|i| unit(nodes, i, &inner, "x", issues));
    let y = required(f[1], &inner, "y", issues).and_then(|i| unit(nodes, i, &inner, "y", issues));
    Some((x?, y?))
}

/// One valid GameState, borrowed from the tape until it is appended to the columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GameStateRow<'a> {
    pub ts_us: i64,
    pub champion: &'a str,
    pub x: f64,
    pub y: f64,
    pub health: f64,
    pub mana: f64,
    pub cooldowns: [f64; 6],
    pub items: [u16; MAX_INVENTORY],
    pub n_items: u8,
    pub vision: f64,
    pub gold: f64,
}

const GS_FIELDS: [&str; 10] = [
    "schema_version",
    "timestamp",
    "champion",
    "position",
    "health",
    "mana",
    "cooldowns",
    "inventory",
    "vision_score",
    "gold_advantage",
];

/// Validate the GameState at tape index `i`; `None` when any rule broke (all are reported).
pub fn game_state<'a>(
    nodes: &[Node<'a>],
    i: usize,
    prefix: &str,
    field: &str,
    issues: &mut Vec<Issue>,
) -> Option<GameStateRow<'a>> {
    let before = issues.len();
    let f = fields(nodes, i, &GS_FIELDS, prefix, field, issues)?;
    let owned;
    let p: &str = if field.is_empty() {
        prefix
    } else {
        owned = format!("{prefix}{field}.");
        &owned
    };
    let mut row = GameStateRow::default();
    schema_version(nodes, f[0], p, issues);
    if let Some(j) = required(f[1], p, "timestamp", issues) {
        match nodes.get(j) {
            Some(Node::String(s)) => match parse_timestamp(s) {
                Ok(us) => row.ts_us = us,
                Err(TimestampError::Format) => push(
                    issues,
                    p,
                    "timestamp",
                    "timestamp_invalid",
                    "timestamp must be RFC 3339 with an offset, e.g. 2024-05-01T12:00:00.250Z",
                ),
                Err(TimestampError::Range) => push(
                    issues,
                    p,
                    "timestamp",
                    "timestamp_range",
                    "timestamp must fall in [2000-01-01, 2100-01-01) UTC",
                ),
            },
            _ => push(issues, p, "timestamp", "datetime_type", "expected an RFC 3339 string"),
        }
    }
    if let Some(s) = required(f[2], p, "champion", issues).and_then(|j| string(nodes, j, p, "champion", issues)) {
        if champion_ok(s) {
            row.champion = s;
        } else {
            push(issues, p, "champion", "champion_invalid", "champion must be 1-32 of A-Z a-z 0-9 space ' . _ -");
        }
    }
    if let Some((x, y)) = required(f[3], p, "position", issues).and_then(|j| position(nodes, j, p, "position", issues)) {
        row.x = x;
        row.y = y;
    }
    if let Some(v) = required(f[4], p, "health", issues).and_then(|j| non_negative(nodes, j, p, "health", issues)) {
        row.health = v;
    }
    if let Some(v) = required(f[5], p, "mana", issues).and_then(|j| non_negative(nodes, j, p, "mana", issues)) {
        row.mana = v;
    }
    if let Some(j) = required(f[6], p, "cooldowns", issues) {
        if let Some(c) = fields(nodes, j, &["q", "w", "e", "r", "d", "f"], p, "cooldowns", issues) {
            let inner = format!("{p}cooldowns.");
            for (k, slot) in ["q", "w", "e", "r", "d", "f"].iter().enumerate() {
                if let Some(v) = required(c[k], &inner, slot, issues).and_then(|j| non_negative(nodes, j, &inner, slot, issues)) {
                    row.cooldowns[k] = v;
                }
            }
        }
    }
    if let Some(j) = required(f[7], p, "inventory", issues) {
        inventory(nodes, j, p, &mut row, issues);
    }
    if let Some(v) = required(f[8], p, "vision_score", issues).and_then(|j| non_negative(nodes, j, p, "vision_score", issues)) {
        row.vision = v;
    }
    if let Some(v) = required(f[9], p, "gold_advantage", issues).and_then(|j| float(nodes, j, p, "gold_advantage", issues)) {
        row.gold = v;
    }
    (issues.len() == before).then_some(row)
}

fn inventory(nodes: &[Node<'_>], j: usize, p: &str, row: &mut GameStateRow<'_>, issues: &mut Vec<Issue>) {
    let Some(&Node::Array { len, .. }) = nodes.get(j) else {
        push(issues, p, "inventory", "list_type", "expected a list of item names");
        return;
    };
    if len > MAX_INVENTORY {
        push(issues, p, "inventory", "too_long", "an inventory holds at most 6 items");
        return;
    }
    let mut k = j + 1;
    for n in 0..len {
        let node = nodes.get(k);
        match node {
            Some(Node::String(s)) => match item_index(s) {
                Some(idx) => row.items[n] = idx,
                None => issues.push(Issue {
                    path: format!("{p}inventory.{n}"),
                    code: "unknown_item",
                    message: format!("unknown item {s:?}; see ITEM_VOCABULARY"),
                }),
            },
            _ => issues.push(Issue {
                path: format!("{p}inventory.{n}"),
                code: "string_type",
                message: "expected an item name".to_owned(),
            }),
        }
        k += node.map_or(1, span);
    }
    row.n_items = len as u8;
}

/// One valid action: kind index into `ACTION_KINDS`, and the fields its kind carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionRow {
    pub kind: u8,
    pub slot: Option<u8>,
    pub target: Option<(f64, f64)>,
    pub item: Option<u16>,
}

/// The action union, tagged by `kind` (pydantic's discriminated union).
pub fn action(nodes: &[Node<'_>], i: usize, prefix: &str, field: &str, issues: &mut Vec<Issue>) -> Option<ActionRow> {
    let Some(&Node::Object { len, .. }) = nodes.get(i) else {
        push(issues, prefix, field, "model_attributes_type", "expected a JSON object");
        return None;
    };
    let mut tag = None;
    let mut k = i + 1;
    for _ in 0..len {
        if let Some(Node::String("kind")) = nodes.get(k) {
            tag = Some(k + 1);
        }
        k += 1 + nodes.get(k + 1).map_or(1, span);
    }
    let p = format!("{prefix}{field}.");
    let Some(tag) = tag else {
        push(issues, prefix, field, "union_tag_not_found", "action needs a 'kind'");
        return None;
    };
    let kind = match nodes.get(tag) {
        Some(Node::String(s)) => ACTION_KINDS.iter().position(|k| k == s),
        _ => None,
    };
    let Some(kind) = kind else {
        push(issues, prefix, field, "union_tag_invalid", "kind must be one of move, attack, cast, buy, recall, idle");
        return None;
    };
    let before = issues.len();
    let mut row = ActionRow {
        kind: kind as u8,
        ..ActionRow::default()
    };
    match ACTION_KINDS[kind] {
        "move" | "attack" => {
            let f = fields(nodes, i, &["kind", "target"], prefix, field, issues)?;
            row.target = required(f[1], &p, "target", issues).and_then(|j| position(nodes, j, &p, "target", issues));
        }
        "cast" => {
            let f = fields(nodes, i, &["kind", "slot", "target"], prefix, field, issues)?;
            if let Some(s) = required(f[1], &p, "slot", issues).and_then(|j| string(nodes, j, &p, "slot", issues)) {
                match ["q", "w", "e", "r", "d", "f"].iter().position(|k| *k == s) {
                    Some(v) => row.slot = Some(v as u8),
                    None => push(issues, &p, "slot", "literal_error", "slot must be one of q w e r d f"),
                }
            }
            if f[2] != ABSENT && !matches!(nodes.get(f[2]), Some(Node::Static(StaticNode::Null))) {
                row.target = position(nodes, f[2], &p, "target", issues);
            }
        }
        "buy" => {
            let f = fields(nodes, i, &["kind", "item"], prefix, field, issues)?;
            if let Some(s) = required(f[1], &p, "item", issues).and_then(|j| string(nodes, j, &p, "item", issues)) {
                match item_index(s) {
                    Some(v) => row.item = Some(v),
                    None => push(issues, &p, "item", "unknown_item", "unknown item; see ITEM_VOCABULARY"),
                }
            }
        }
        _ => {
            fields(nodes, i, &["kind"], prefix, field, issues)?;
        }
    }
    (issues.len() == before).then_some(row)
}

/// One valid TrainingSample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleRow<'a> {
    pub state: GameStateRow<'a>,
    pub action: ActionRow,
    pub reward: f64,
    pub next_state: Option<GameStateRow<'a>>,
    pub match_id: &'a str,
    pub step: i32,
    pub source: &'a str,
}

const TS_FIELDS: [&str; 6] = ["schema_version", "state", "action", "reward", "next_state", "metadata"];

fn bounded_str<'a>(nodes: &[Node<'a>], i: usize, p: &str, field: &str, issues: &mut Vec<Issue>) -> Option<&'a str> {
    let s = string(nodes, i, p, field, issues)?;
    let n = s.chars().count();
    if n == 0 {
        push(issues, p, field, "string_too_short", "must not be empty");
        None
    } else if n > MAX_META {
        push(issues, p, field, "string_too_long", "at most 64 characters");
        None
    } else {
        Some(s)
    }
}

/// Validate the TrainingSample at tape index `i`.
pub fn training_sample<'a>(nodes: &[Node<'a>], i: usize, issues: &mut Vec<Issue>) -> Option<SampleRow<'a>> {
    let before = issues.len();
    let f = fields(nodes, i, &TS_FIELDS, "", "", issues)?;
    schema_version(nodes, f[0], "", issues);
    let state = required(f[1], "", "state", issues).and_then(|j| game_state(nodes, j, "", "state", issues));
    let act = required(f[2], "", "action", issues).and_then(|j| action(nodes, j, "", "action", issues));
    let reward = required(f[3], "", "reward", issues).and_then(|j| float(nodes, j, "", "reward", issues));
    let mut next_state = None;
    if let Some(j) = required(f[4], "", "next_state", issues) {
        if !matches!(nodes.get(j), Some(Node::Static(StaticNode::Null))) {
            next_state = game_state(nodes, j, "", "next_state", issues);
        }
    }
    let mut meta = None;
    if let Some(j) = required(f[5], "", "metadata", issues) {
        if let Some(m) = fields(nodes, j, &["match_id", "step", "source"], "", "metadata", issues) {
            let p = "metadata.";
            let match_id = required(m[0], p, "match_id", issues).and_then(|j| bounded_str(nodes, j, p, "match_id", issues));
            let step = required(m[1], p, "step", issues).and_then(|j| match nodes.get(j) {
                Some(Node::Static(StaticNode::I64(v))) => Some(*v),
                Some(Node::Static(StaticNode::U64(v))) => Some(i64::try_from(*v).unwrap_or(i64::MAX)),
                _ => {
                    push(issues, p, "step", "int_type", "expected an integer");
                    None
                }
            });
            let step = step.and_then(|v| {
                if (0..=MAX_STEP).contains(&v) {
                    Some(v as i32)
                } else {
                    push(issues, p, "step", "out_of_range", "step must be in [0, 2**31 - 1]");
                    None
                }
            });
            let source = required(m[2], p, "source", issues).and_then(|j| bounded_str(nodes, j, p, "source", issues));
            if let (Some(a), Some(b), Some(c)) = (match_id, step, source) {
                meta = Some((a, b, c));
            }
        }
    }
    if issues.len() != before {
        return None;
    }
    let (match_id, step, source) = meta?;
    Some(SampleRow {
        state: state?,
        action: act?,
        reward: reward?,
        next_state,
        match_id,
        step,
        source,
    })
}
