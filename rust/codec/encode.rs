//! Encode a GameState batch back to JSON (an array, or NDJSON), canonically: fields in the
//! contract's order, timestamps in UTC with 6 fractional digits, floats in shortest
//! round-trip form. Decoding the output yields the same batch.

use std::io::Write;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMicrosecondType, UInt16Type};
use arrow_array::{Array, RecordBatch};

use super::contract::{format_timestamp, ABILITY_SLOTS};
use crate::error::{CoreError, CoreResult};

fn col<'a>(b: &'a RecordBatch, name: &str) -> CoreResult<&'a dyn Array> {
    b.column_by_name(name).map(|c| c.as_ref()).ok_or_else(|| {
        CoreError::InvalidArgument(format!(
            "batch has no column '{name}'; pass a batch decoded as GameState"
        ))
    })
}

fn f64s<'a>(b: &'a RecordBatch, name: &str) -> CoreResult<&'a [f64]> {
    col(b, name)?
        .as_primitive_opt::<Float64Type>()
        .map(|a| a.values().as_ref())
        .ok_or_else(|| CoreError::InvalidArgument(format!("column '{name}' must be float64")))
}

fn num(out: &mut Vec<u8>, v: f64) {
    let _ = write!(out, "{v:?}");
}

/// JSON bytes of every row of a GameState batch; `ndjson` picks one object per line.
pub fn game_states_to_json(b: &RecordBatch, ndjson: bool) -> CoreResult<Vec<u8>> {
    let bad = |n: &str| {
        CoreError::InvalidArgument(format!(
            "column '{n}' has the wrong type; pass a GameState batch"
        ))
    };
    let ts = col(b, "timestamp")?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| bad("timestamp"))?;
    let champ = col(b, "champion")?
        .as_string_opt::<i32>()
        .ok_or_else(|| bad("champion"))?;
    let inv = col(b, "inventory")?
        .as_list_opt::<i32>()
        .ok_or_else(|| bad("inventory"))?;
    let dict = inv
        .values()
        .as_dictionary_opt::<UInt16Type>()
        .ok_or_else(|| bad("inventory"))?;
    let names = dict
        .values()
        .as_string_opt::<i32>()
        .ok_or_else(|| bad("inventory"))?;
    let keys = dict.keys().values();
    let offsets = inv.value_offsets();
    let (x, y) = (f64s(b, "position_x")?, f64s(b, "position_y")?);
    let (health, mana) = (f64s(b, "health")?, f64s(b, "mana")?);
    let cds: Vec<&[f64]> = ABILITY_SLOTS
        .iter()
        .map(|s| f64s(b, &format!("cooldown_{s}")))
        .collect::<CoreResult<_>>()?;
    let (vision, gold) = (f64s(b, "vision_score")?, f64s(b, "gold_advantage")?);
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
        let (s, e) = (offsets[r] as usize, offsets[r + 1] as usize);
        for (k, key) in keys[s..e].iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            let _ = write!(out, "\"{}\"", names.value(usize::from(*key)));
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
