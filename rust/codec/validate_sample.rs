//! The rules of an action (a union tagged by `kind`) and of a TrainingSample (state, action,
//! reward, optional next state, metadata), applied to a parsed tape; the GameState inside
//! goes through `validate::game_state`, so one set of rules serves both contracts.

use simd_json::{Node, StaticNode};

use super::contract::{
    index_of, item_index, ABILITY_SLOTS, ACTION_FIELDS, ACTION_KINDS, MAX_META, MAX_STEP,
    METADATA_FIELDS, SAMPLE_FIELDS,
};
use super::tape_read::{
    fields, float, lookup, push, req, required, span, string, Issue, Path, ABSENT,
};
use super::validate::{game_state, position, schema_version, slot_index, GameStateRow};

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
