//! Protobuf wire format for GameState batches (prost), the messages of
//! `python/system0/data/game_state.proto`. Decoding turns each message into the same tape
//! the JSON parser produces, so the one set of contract rules applies.

use std::ops::Range;

use arrow_array::RecordBatch;
use prost::Message;
use simd_json::{Node, StaticNode};

use super::batch::{decode_tape, with_trailing_error, Contract, Decoded};
use super::contract::format_timestamp;
use super::read_columns::GameStateColumns;
use crate::error::CoreResult;

#[derive(Clone, PartialEq, Message)]
pub struct Position {
    #[prost(double, optional, tag = "1")]
    pub x: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub y: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Cooldowns {
    #[prost(double, optional, tag = "1")]
    pub q: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub w: Option<f64>,
    #[prost(double, optional, tag = "3")]
    pub e: Option<f64>,
    #[prost(double, optional, tag = "4")]
    pub r: Option<f64>,
    #[prost(double, optional, tag = "5")]
    pub d: Option<f64>,
    #[prost(double, optional, tag = "6")]
    pub f: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GameState {
    #[prost(uint32, optional, tag = "1")]
    pub schema_version: Option<u32>,
    #[prost(string, optional, tag = "2")]
    pub timestamp: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub champion: Option<String>,
    #[prost(message, optional, tag = "4")]
    pub position: Option<Position>,
    #[prost(double, optional, tag = "5")]
    pub health: Option<f64>,
    #[prost(double, optional, tag = "6")]
    pub mana: Option<f64>,
    #[prost(message, optional, tag = "7")]
    pub cooldowns: Option<Cooldowns>,
    #[prost(string, repeated, tag = "8")]
    pub inventory: Vec<String>,
    #[prost(double, optional, tag = "9")]
    pub vision_score: Option<f64>,
    #[prost(double, optional, tag = "10")]
    pub gold_advantage: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GameStateBatch {
    #[prost(message, repeated, tag = "1")]
    pub states: Vec<GameState>,
}

/// Append an object node holding the present (name, value) pairs.
fn object<'a>(tape: &mut Vec<Node<'a>>, f: impl FnOnce(&mut Vec<Node<'a>>) -> usize) {
    let at = tape.len();
    tape.push(Node::Object { len: 0, count: 0 });
    let len = f(tape);
    tape[at] = Node::Object {
        len,
        count: tape.len() - at - 1,
    };
}

fn num<'a>(tape: &mut Vec<Node<'a>>, key: &'static str, v: Option<f64>) -> usize {
    match v {
        Some(v) => {
            tape.push(Node::String(key));
            tape.push(Node::Static(StaticNode::F64(v)));
            1
        }
        None => 0,
    }
}

fn state_to_tape<'a>(s: &'a GameState, tape: &mut Vec<Node<'a>>) {
    object(tape, |t| {
        let mut n = 0;
        if let Some(v) = s.schema_version {
            t.push(Node::String("schema_version"));
            t.push(Node::Static(StaticNode::U64(u64::from(v))));
            n += 1;
        }
        for (key, v) in [("timestamp", &s.timestamp), ("champion", &s.champion)] {
            if let Some(v) = v {
                t.push(Node::String(key));
                t.push(Node::String(v));
                n += 1;
            }
        }
        if let Some(p) = &s.position {
            t.push(Node::String("position"));
            object(t, |t| num(t, "x", p.x) + num(t, "y", p.y));
            n += 1;
        }
        n += num(t, "health", s.health) + num(t, "mana", s.mana);
        if let Some(c) = &s.cooldowns {
            t.push(Node::String("cooldowns"));
            object(t, |t| {
                num(t, "q", c.q)
                    + num(t, "w", c.w)
                    + num(t, "e", c.e)
                    + num(t, "r", c.r)
                    + num(t, "d", c.d)
                    + num(t, "f", c.f)
            });
            n += 1;
        }
        t.push(Node::String("inventory"));
        t.push(Node::Array {
            len: s.inventory.len(),
            count: s.inventory.len(),
        });
        t.extend(s.inventory.iter().map(|i| Node::String(i)));
        n += 1;
        n + num(t, "vision_score", s.vision_score) + num(t, "gold_advantage", s.gold_advantage)
    });
}

/// Decode a `GameStateBatch` message and validate each state against the contract.
pub fn decode_protobuf(data: &[u8]) -> Decoded {
    let batch = match GameStateBatch::decode(data) {
        Ok(b) => b,
        Err(e) => {
            let empty = decode_tape(&[], &[], &[], Contract::GameState);
            return with_trailing_error(
                empty,
                data,
                "protobuf_invalid",
                format!("malformed protobuf: {e}"),
            );
        }
    };
    // raw bytes of each row: its own re-encoding (protobuf has no stable byte span per row)
    let raws: Vec<Vec<u8>> = batch.states.iter().map(Message::encode_to_vec).collect();
    let mut joined = Vec::new();
    let mut tape = Vec::new();
    let mut elements: Vec<(usize, Range<usize>)> = Vec::with_capacity(batch.states.len());
    for (s, raw) in batch.states.iter().zip(&raws) {
        let at = tape.len();
        state_to_tape(s, &mut tape);
        let start = joined.len();
        joined.extend_from_slice(raw);
        elements.push((at, start..joined.len()));
    }
    decode_tape(&tape, &elements, &joined, Contract::GameState)
}

/// Encode a GameState batch as a `GameStateBatch` message.
pub fn game_states_to_protobuf(b: &RecordBatch) -> CoreResult<Vec<u8>> {
    let c = GameStateColumns::of_batch(b)?;
    let (ts, champ) = (c.timestamp, c.champion);
    let [x, y, health, mana, cd @ .., vision, gold] = c.dense;
    let mut states = Vec::with_capacity(b.num_rows());
    for r in 0..b.num_rows() {
        let mut stamp = Vec::with_capacity(27);
        format_timestamp(ts.value(r), &mut stamp);
        states.push(GameState {
            schema_version: Some(1),
            timestamp: Some(String::from_utf8_lossy(&stamp).into_owned()),
            champion: Some(champ.value(r).to_owned()),
            position: Some(Position {
                x: Some(x[r]),
                y: Some(y[r]),
            }),
            health: Some(health[r]),
            mana: Some(mana[r]),
            cooldowns: Some(Cooldowns {
                q: Some(cd[0][r]),
                w: Some(cd[1][r]),
                e: Some(cd[2][r]),
                r: Some(cd[3][r]),
                d: Some(cd[4][r]),
                f: Some(cd[5][r]),
            }),
            inventory: c.inventory.row(r).map(str::to_owned).collect(),
            vision_score: Some(vision[r]),
            gold_advantage: Some(gold[r]),
        });
    }
    Ok(GameStateBatch { states }.encode_to_vec())
}
