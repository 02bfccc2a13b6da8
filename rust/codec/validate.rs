//! Contract rules applied to a parsed JSON (or msgpack, or protobuf) tape, one row at a time.
//! Field names, slots, kinds and numeric ranges are the constants of `contract.rs`, which
//! `system0.data.models` derives its pydantic rules from; reason codes follow pydantic's error
//! types where pydantic has a specific one, and name the rule where pydantic says `value_error`.
//!
//! This file holds the GameState rules; tape_read.rs the generic readers they are written
//! with, validate_sample.rs the action and TrainingSample rules.
//!
//! The happy path allocates nothing: field paths are a chain of borrowed names, rendered to
//! a dotted string only when a rule breaks.

use simd_json::{Node, StaticNode};

pub use super::tape_read::{span, Issue, Path};
pub use super::validate_sample::{action, training_sample, ActionRow, SampleRow};

use super::tape_read::{bounded, fields, lookup, push, req, required, string, ABSENT};

use super::contract::{
    champion_ok, index_of, item_index, parse_timestamp, Bounds, TimestampError, ABILITY_SLOTS,
    COOLDOWN, GAME_STATE_FIELDS, GOLD_ADVANTAGE, HEALTH, MANA, MAX_INVENTORY, POSITION,
    POSITION_FIELDS, SCHEMA_VERSION, VISION_SCORE,
};

pub(super) fn schema_version(
    nodes: &[Node<'_>],
    i: usize,
    parent: &Path<'_>,
    issues: &mut Vec<Issue>,
) {
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
pub(super) fn position(
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

pub(super) fn slot_index(k: &str) -> Option<usize> {
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
