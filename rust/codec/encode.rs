//! Encode a GameState batch back to JSON (an array, or NDJSON), canonically: fields in the
//! contract's order, timestamps in UTC with 6 fractional digits, floats in shortest
//! round-trip form. Decoding the output yields the same batch.

use std::io::Write;

use arrow_array::RecordBatch;

use super::contract::{format_timestamp, ABILITY_SLOTS};
use super::read_columns::GameStateColumns;
use crate::error::CoreResult;

fn num(out: &mut Vec<u8>, v: f64) {
    let _ = write!(out, "{v:?}");
}

/// JSON bytes of every row of a GameState batch; `ndjson` picks one object per line.
pub fn game_states_to_json(b: &RecordBatch, ndjson: bool) -> CoreResult<Vec<u8>> {
    let c = GameStateColumns::of_batch(b)?;
    let (ts, champ) = (c.timestamp, c.champion);
    let [x, y, health, mana, cds @ .., vision, gold] = c.dense;
    let mut out = Vec::with_capacity(b.num_rows() * 256);
    if !ndjson {
        out.push(b'[');
    }
    for r in 0..b.num_rows() {
        if r > 0 {
            out.push(if ndjson { b'\n' } else { b',' });
        }
        out.extend_from_slice(b"{\"schema_version\":1,\"timestamp\":\"");
        format_timestamp(ts.value(r), &mut out);
        out.extend_from_slice(b"\",\"champion\":");
        // champion names are [A-Za-z0-9 '._-]: nothing to escape
        let _ = write!(out, "\"{}\"", champ.value(r));
        out.extend_from_slice(b",\"position\":{\"x\":");
        num(&mut out, x[r]);
        out.extend_from_slice(b",\"y\":");
        num(&mut out, y[r]);
        out.extend_from_slice(b"},\"health\":");
        num(&mut out, health[r]);
        out.extend_from_slice(b",\"mana\":");
        num(&mut out, mana[r]);
        out.extend_from_slice(b",\"cooldowns\":{");
        for (k, slot) in ABILITY_SLOTS.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            let _ = write!(out, "\"{slot}\":");
            num(&mut out, cds[k][r]);
        }
        out.extend_from_slice(b"},\"inventory\":[");
        for (k, name) in c.inventory.row(r).enumerate() {
            if k > 0 {
                out.push(b',');
            }
            let _ = write!(out, "\"{name}\"");
        }
        out.extend_from_slice(b"],\"vision_score\":");
        num(&mut out, vision[r]);
        out.extend_from_slice(b",\"gold_advantage\":");
        num(&mut out, gold[r]);
        out.push(b'}');
    }
    if !ndjson {
        out.push(b']');
    } else if b.num_rows() > 0 {
        out.push(b'\n');
    }
    Ok(out)
}
