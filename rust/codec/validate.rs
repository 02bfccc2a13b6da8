//! Contract rules applied to a parsed JSON (or msgpack, or protobuf) tape, one row at a time.
//! Field names, slots, kinds and numeric ranges are the constants of `contract.rs`, which
//! `system0.data.models` derives its pydantic rules from; reason codes follow pydantic's error
//! types where pydantic has a specific one, and name the rule where pydantic says `value_error`.
//!
//! The happy path allocates nothing: field paths are a chain of borrowed names, rendered to
//! a dotted string only when a rule breaks.

use simd_json::{Node, StaticNode};

use super::contract::{
    champion_ok, index_of, item_index, parse_timestamp, Bounds, TimestampError, ABILITY_SLOTS,
    ACTION_FIELDS, ACTION_KINDS, COOLDOWN, GAME_STATE_FIELDS, GOLD_ADVANTAGE, HEALTH, MANA,
    MAX_INVENTORY, MAX_META, MAX_STEP, METADATA_FIELDS, POSITION, POSITION_FIELDS, SAMPLE_FIELDS,
    SCHEMA_VERSION, VISION_SCORE,
};

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

fn push(issues: &mut Vec<Issue>, path: &Path<'_>, code: &'static str, msg: &str) {
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

const ABSENT: usize = usize::MAX;

/// Map each known field (by `lookup`) to the tape index of its value (the last one when a
/// key repeats, as JSON parsers conventionally keep); report unknown keys as `extra_forbidden`.
#[inline]
fn fields<const N: usize>(
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

fn required(idx: usize, path: &Path<'_>, issues: &mut Vec<Issue>) -> Option<usize> {
    if idx == ABSENT {
        push(issues, path, "missing", "field required");
        None
    } else {
        Some(idx)
    }
}

/// A finite JSON number (integers included, booleans and strings not: strict mode).
#[inline]
fn float(nodes: &[Node<'_>], i: usize, path: &Path<'_>, issues: &mut Vec<Issue>) -> Option<f64> {
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
fn bounded(
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

fn string<'a>(
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
fn req<'p, T>(
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

fn schema_version(nodes: &[Node<'_>], i: usize, parent: &Path<'_>, issues: &mut Vec<Issue>) {
    if i == ABSENT {
        return;
    }
    let ok = matches!(nodes.get(i), Some(Node::Static(StaticNode::I64(v))) if *v == SCHEMA_VERSION)
        || matches!(nodes.get(i), Some(Node::Static(StaticNode::U64(v))) if *v == SCHEMA_VERSION as u64);
    if !ok {
        push(
            issues,
            &parent.child("schema_version"),
            "literal_error",
            "schema_version must be 1",
        );
    }
}

/// A normalized map position `{x, y}`.
fn position(
    nodes: &[Node<'_>],
    i: usize,
    path: &Path<'_>,
    issues: &mut Vec<Issue>,
) -> Option<(f64, f64)> {
    let f: [usize; 2] = fields(nodes, i, path, lookup(&POSITION_FIELDS), issues)?;
    let [x, y] = [0, 1].map(|k| {
        req(nodes, f[k], path, POSITION_FIELDS[k], issues, |j, p, is| {
            bounded(nodes, j, p, is, POSITION)
        })
    });
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

/// Field lookup over one of the contract's name lists (a handful of length-first compares).
fn lookup(names: &'static [&'static str]) -> impl Fn(&str) -> Option<usize> {
    move |k| names.iter().position(|n| *n == k)
}

/// Slot of a GameState field in the `fields` result (a name missing from the contract fails
/// the build: these are evaluated at compile time).
const fn gs(name: &str) -> usize {
    index_of(&GAME_STATE_FIELDS, name)
}
const GS_VERSION: usize = gs("schema_version");
const GS_TIMESTAMP: usize = gs("timestamp");
const GS_CHAMPION: usize = gs("champion");
const GS_POSITION: usize = gs("position");
const GS_HEALTH: usize = gs("health");
const GS_MANA: usize = gs("mana");
const GS_COOLDOWNS: usize = gs("cooldowns");
const GS_INVENTORY: usize = gs("inventory");
const GS_VISION: usize = gs("vision_score");
const GS_GOLD: usize = gs("gold_advantage");

fn slot_index(k: &str) -> Option<usize> {
    ABILITY_SLOTS.iter().position(|s| *s == k)
}

fn timestamp(nodes: &[Node<'_>], j: usize, p: &Path<'_>, issues: &mut Vec<Issue>) -> Option<i64> {
    match nodes.get(j) {
        Some(Node::String(s)) => match parse_timestamp(s) {
            Ok(us) => Some(us),
            Err(TimestampError::Format) => {
                push(
                    issues,
                    p,
                    "timestamp_invalid",
                    "timestamp must be RFC 3339 with an offset, e.g. 2024-05-01T12:00:00.250Z",
                );
                None
            }
            Err(TimestampError::Range) => {
                push(
                    issues,
                    p,
                    "timestamp_range",
                    "timestamp must fall in [2000-01-01, 2100-01-01) UTC",
                );
                None
            }
        },
        _ => {
            push(issues, p, "datetime_type", "expected an RFC 3339 string");
            None
        }
    }
}

/// Validate the GameState at tape index `i`; `None` when any rule broke (all are reported).
pub fn game_state<'a>(
    nodes: &[Node<'a>],
    i: usize,
    path: &Path<'_>,
    issues: &mut Vec<Issue>,
) -> Option<GameStateRow<'a>> {
    let before = issues.len();
    let f: [usize; 10] = fields(nodes, i, path, lookup(&GAME_STATE_FIELDS), issues)?;
    let mut row = GameStateRow::default();
    schema_version(nodes, f[GS_VERSION], path, issues);
    if let Some(us) = req(
        nodes,
        f[GS_TIMESTAMP],
        path,
        "timestamp",
        issues,
        |j, p, is| timestamp(nodes, j, p, is),
    ) {
        row.ts_us = us;
    }
    let champion = req(
        nodes,
        f[GS_CHAMPION],
        path,
        "champion",
        issues,
        |j, p, is| {
            let s = string(nodes, j, p, is)?;
            if champion_ok(s) {
                return Some(s);
            }
            push(
                is,
                p,
                "champion_invalid",
                "champion must be 1-32 of A-Z a-z 0-9 space ' . _ -",
            );
            None
        },
    );
    if let Some(s) = champion {
        row.champion = s;
    }
    if let Some((x, y)) = req(
        nodes,
        f[GS_POSITION],
        path,
        "position",
        issues,
        |j, p, is| position(nodes, j, p, is),
    ) {
        row.x = x;
        row.y = y;
    }
    let num = |at: usize, b: Bounds, issues: &mut Vec<Issue>| {
        req(
            nodes,
            f[at],
            path,
            GAME_STATE_FIELDS[at],
            issues,
            |j, p, is| bounded(nodes, j, p, is, b),
        )
    };
    if let Some(v) = num(GS_HEALTH, HEALTH, issues) {
        row.health = v;
    }
    if let Some(v) = num(GS_MANA, MANA, issues) {
        row.mana = v;
    }
    let cds = path.child("cooldowns");
    if let Some(j) = required(f[GS_COOLDOWNS], &cds, issues) {
        if let Some(c) = fields::<6>(nodes, j, &cds, slot_index, issues) {
            for (k, slot) in ABILITY_SLOTS.iter().enumerate() {
                if let Some(v) = req(nodes, c[k], &cds, slot, issues, |j, p, is| {
                    bounded(nodes, j, p, is, COOLDOWN)
                }) {
                    row.cooldowns[k] = v;
                }
            }
        }
    }
    let inv = path.child("inventory");
    if let Some(j) = required(f[GS_INVENTORY], &inv, issues) {
        inventory(nodes, j, &inv, &mut row, issues);
    }
    if let Some(v) = num(GS_VISION, VISION_SCORE, issues) {
        row.vision = v;
    }
    if let Some(v) = num(GS_GOLD, GOLD_ADVANTAGE, issues) {
        row.gold = v;
    }
    (issues.len() == before).then_some(row)
}

fn inventory(
    nodes: &[Node<'_>],
    j: usize,
    p: &Path<'_>,
    row: &mut GameStateRow<'_>,
    issues: &mut Vec<Issue>,
) {
    let Some(&Node::Array { len, .. }) = nodes.get(j) else {
        push(issues, p, "list_type", "expected a list of item names");
        return;
    };
    if len > MAX_INVENTORY {
        push(issues, p, "too_long", "an inventory holds at most 6 items");
        return;
    }
    let mut k = j + 1;
    for n in 0..len {
        let node = nodes.get(k);
        match node {
            Some(Node::String(s)) => match item_index(s) {
                Some(idx) => row.items[n] = idx,
                None => issues.push(Issue {
                    path: format!("{}.{n}", p.render()),
                    code: "unknown_item",
                    message: format!("unknown item {s:?}; see ITEM_VOCABULARY"),
                }),
            },
            _ => issues.push(Issue {
                path: format!("{}.{n}", p.render()),
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
pub fn action(
    nodes: &[Node<'_>],
    i: usize,
    path: &Path<'_>,
    issues: &mut Vec<Issue>,
) -> Option<ActionRow> {
    let Some(&Node::Object { len, .. }) = nodes.get(i) else {
        push(
            issues,
            path,
            "model_attributes_type",
            "expected a JSON object",
        );
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
    let Some(tag) = tag else {
        push(issues, path, "union_tag_not_found", "action needs a 'kind'");
        return None;
    };
    let kind = match nodes.get(tag) {
        Some(Node::String(s)) => ACTION_KINDS.iter().position(|k| k == s),
        _ => None,
    };
    let Some(kind) = kind else {
        let msg = format!("kind must be one of {}", ACTION_KINDS.join(", "));
        push(issues, path, "union_tag_invalid", &msg);
        return None;
    };
    let before = issues.len();
    let mut row = ActionRow {
        kind: kind as u8,
        ..ActionRow::default()
    };
    let names = ACTION_FIELDS[kind];
    // one slot per field of the widest kind; a kind's own fields sit in its `ACTION_FIELDS` order
    let f: [usize; 3] = fields(nodes, i, path, lookup(names), issues)?;
    let at = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .map_or(ABSENT, |k| f[k])
    };
    const MOVE: usize = index_of(&ACTION_KINDS, "move");
    const ATTACK: usize = index_of(&ACTION_KINDS, "attack");
    const CAST: usize = index_of(&ACTION_KINDS, "cast");
    const BUY: usize = index_of(&ACTION_KINDS, "buy");
    match kind {
        MOVE | ATTACK => {
            row.target = req(nodes, at("target"), path, "target", issues, |j, p, is| {
                position(nodes, j, p, is)
            });
        }
        CAST => {
            row.slot = req(nodes, at("slot"), path, "slot", issues, |j, p, is| {
                let v = slot_index(string(nodes, j, p, is)?);
                if v.is_none() {
                    let msg = format!("slot must be one of {}", ABILITY_SLOTS.join(" "));
                    push(is, p, "literal_error", &msg);
                }
                v.map(|v| v as u8)
            });
            let t = at("target");
            if t != ABSENT && !matches!(nodes.get(t), Some(Node::Static(StaticNode::Null))) {
                row.target = position(nodes, t, &path.child("target"), issues);
            }
        }
        BUY => {
            row.item = req(nodes, at("item"), path, "item", issues, |j, p, is| {
                let v = item_index(string(nodes, j, p, is)?);
                if v.is_none() {
                    push(is, p, "unknown_item", "unknown item; see ITEM_VOCABULARY");
                }
                v
            });
        }
        _ => {} // recall, idle: `kind` alone, which `fields` has checked
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

fn bounded_str<'a>(
    nodes: &[Node<'a>],
    i: usize,
    p: &Path<'_>,
    issues: &mut Vec<Issue>,
) -> Option<&'a str> {
    let s = string(nodes, i, p, issues)?;
    let n = s.chars().count();
    if n == 0 {
        push(issues, p, "string_too_short", "must not be empty");
        None
    } else if n > MAX_META {
        push(issues, p, "string_too_long", "at most 64 characters");
        None
    } else {
        Some(s)
    }
}

fn step(nodes: &[Node<'_>], j: usize, p: &Path<'_>, issues: &mut Vec<Issue>) -> Option<i32> {
    let v = match nodes.get(j) {
        Some(Node::Static(StaticNode::I64(v))) => *v,
        Some(Node::Static(StaticNode::U64(v))) => i64::try_from(*v).unwrap_or(i64::MAX),
        _ => {
            push(issues, p, "int_type", "expected an integer");
            return None;
        }
    };
    if (0..=MAX_STEP).contains(&v) {
        Some(v as i32)
    } else {
        push(issues, p, "out_of_range", "step must be in [0, 2**31 - 1]");
        None
    }
}

/// Validate the TrainingSample at tape index `i`.
pub fn training_sample<'a>(
    nodes: &[Node<'a>],
    i: usize,
    issues: &mut Vec<Issue>,
) -> Option<SampleRow<'a>> {
    let root = Path::ROOT;
    let before = issues.len();
    let f: [usize; 6] = fields(nodes, i, &root, lookup(&SAMPLE_FIELDS), issues)?;
    const fn at(name: &str) -> usize {
        index_of(&SAMPLE_FIELDS, name)
    }
    const VERSION: usize = at("schema_version");
    const STATE: usize = at("state");
    const ACTION: usize = at("action");
    const REWARD: usize = at("reward");
    const NEXT: usize = at("next_state");
    const META: usize = at("metadata");
    schema_version(nodes, f[VERSION], &root, issues);
    let state = req(nodes, f[STATE], &root, "state", issues, |j, p, is| {
        game_state(nodes, j, p, is)
    });
    let act = req(nodes, f[ACTION], &root, "action", issues, |j, p, is| {
        action(nodes, j, p, is)
    });
    let reward = req(nodes, f[REWARD], &root, "reward", issues, |j, p, is| {
        float(nodes, j, p, is)
    });
    let next = req(nodes, f[NEXT], &root, "next_state", issues, |j, p, is| {
        if matches!(nodes.get(j), Some(Node::Static(StaticNode::Null))) {
            Some(None)
        } else {
            game_state(nodes, j, p, is).map(Some)
        }
    });
    let meta_path = root.child("metadata");
    let mut meta = None;
    if let Some(j) = required(f[META], &meta_path, issues) {
        if let Some(m) = fields::<3>(nodes, j, &meta_path, lookup(&METADATA_FIELDS), issues) {
            let match_id = req(nodes, m[0], &meta_path, "match_id", issues, |j, p, is| {
                bounded_str(nodes, j, p, is)
            });
            let step = req(nodes, m[1], &meta_path, "step", issues, |j, p, is| {
                step(nodes, j, p, is)
            });
            let source = req(nodes, m[2], &meta_path, "source", issues, |j, p, is| {
                bounded_str(nodes, j, p, is)
            });
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
        next_state: next?,
        match_id,
        step,
        source,
    })
}
