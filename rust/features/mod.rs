//! GameState batch -> float32 feature matrix, row-major, one row per game state.
//!
//! Layout (`N_FEATURES` = 12 + vocabulary size columns):
//!
//! | column | value |
//! | --- | --- |
//! | 0, 1 | position x, y (already in [0, 1]) |
//! | 2 | health / 5000 |
//! | 3 | mana / 5000 |
//! | 4..10 | cooldowns q, w, e, r, d, f (fixed order) / 300 s |
//! | 10 | vision score / 100 |
//! | 11 | gold advantage / 10000 (signed) |
//! | 12.. | inventory multi-hot over `ITEM_VOCABULARY` (1.0 held, 0.0 not) |
//!
//! Each value is computed in f64 as `value / scale` and then rounded to f32. Rows added to
//! reach `pad_rows_to` are all `PAD_VALUE` (0.0).
//!
//! Every value the codec admits lies in its `codec::contract` bound (`HEALTH`, `COOLDOWN`,
//! `GOLD_ADVANTAGE` ...), so every column of a decoded batch is finite, at most 100 in
//! magnitude; the unit test below holds the scales to that. A batch built elsewhere is not
//! re-validated here.

pub mod py;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch, StructArray};

use crate::codec::contract::{ABILITY_SLOTS, ITEM_VOCABULARY};
use crate::codec::read_columns::{self, Getter};
use crate::codec::validate::GameStateRow;
use crate::error::{CoreError, CoreResult};

pub const N_DENSE: usize = 12;
pub const N_FEATURES: usize = N_DENSE + ITEM_VOCABULARY.len();
pub const PAD_VALUE: f32 = 0.0;
pub const HEALTH_SCALE: f64 = 5000.0;
pub const MANA_SCALE: f64 = 5000.0;
pub const COOLDOWN_SCALE: f64 = 300.0;
pub const VISION_SCALE: f64 = 100.0;
pub const GOLD_SCALE: f64 = 10000.0;

/// The divisor of each dense column, in column order: the one table both the batch path
/// (`fill`) and the row path (`fill_row`) read, so the two cannot drift apart.
pub const DENSE_SCALES: [f64; N_DENSE] = [
    1.0,
    1.0,
    HEALTH_SCALE,
    MANA_SCALE,
    COOLDOWN_SCALE,
    COOLDOWN_SCALE,
    COOLDOWN_SCALE,
    COOLDOWN_SCALE,
    COOLDOWN_SCALE,
    COOLDOWN_SCALE,
    VISION_SCALE,
    GOLD_SCALE,
];

/// Names of the feature columns, in order.
pub fn feature_names() -> Vec<String> {
    let mut v: Vec<String> = ["position_x", "position_y", "health", "mana"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(ABILITY_SLOTS.iter().map(|s| format!("cooldown_{s}")));
    v.push("vision_score".into());
    v.push("gold_advantage".into());
    v.extend(ITEM_VOCABULARY.iter().map(|s| format!("item_{s}")));
    v
}

/// The GameState columns the features read, borrowed from a batch.
pub struct Columns<'a> {
    dense: [(&'a [f64], f64); N_DENSE],
    offsets: &'a [i32],
    keys: &'a [u16],
    /// vocabulary index of each dictionary value (identity for batches system0 decoded)
    remap: Vec<u16>,
    rows: usize,
}

fn arg(msg: String) -> CoreError {
    CoreError::InvalidArgument(msg)
}

/// Find the GameState columns in a GameState batch, or in the `state` column of a
/// TrainingSample batch.
pub fn columns(batch: &RecordBatch) -> CoreResult<Columns<'_>> {
    if let Some(state) = batch.column_by_name("state") {
        let s = state
            .as_struct_opt()
            .ok_or_else(|| arg("column 'state' must be a struct".into()))?;
        return struct_columns(s);
    }
    let get = |n: &str| batch.column_by_name(n).map(|c| c.as_ref());
    from_getter(&get, batch.num_rows())
}

fn struct_columns(s: &StructArray) -> CoreResult<Columns<'_>> {
    let get = |n: &str| s.column_by_name(n).map(|c| c.as_ref());
    from_getter(&get, s.len())
}

fn from_getter<'a>(get: Getter<'_, 'a>, rows: usize) -> CoreResult<Columns<'a>> {
    let cols = read_columns::dense(get)?;
    let dense = std::array::from_fn(|k| (cols[k], DENSE_SCALES[k]));
    let inv = read_columns::inventory(get)?;
    // A batch that went through another library may carry a different dictionary: map each
    // of its values to the contract's vocabulary once, so the row loop stays a table lookup.
    let mut remap = Vec::with_capacity(inv.names.len());
    for i in 0..inv.names.len() {
        let name = inv.names.value(i);
        let idx = crate::codec::contract::item_index(name)
            .ok_or_else(|| arg(format!("inventory item {name:?} is not in ITEM_VOCABULARY")))?;
        remap.push(idx);
    }
    let base = inv.offsets.first().copied().unwrap_or(0);
    if base != 0 || inv.offsets.len() != rows + 1 {
        return Err(arg(
            "inventory column must not be a sliced list; call features on the full batch".into(),
        ));
    }
    Ok(Columns {
        dense,
        offsets: inv.offsets,
        keys: inv.keys,
        remap,
        rows,
    })
}

/// Fill `out` (row-major, `out.len() == rows_out * N_FEATURES`, `rows_out >= rows`).
pub fn fill(c: &Columns<'_>, out: &mut [f32]) {
    out.fill(PAD_VALUE);
    for (r, row) in out.chunks_exact_mut(N_FEATURES).take(c.rows).enumerate() {
        for (k, (col, scale)) in c.dense.iter().enumerate() {
            row[k] = (col[r] / scale) as f32;
        }
        let (s, e) = (c.offsets[r] as usize, c.offsets[r + 1] as usize);
        for &key in &c.keys[s..e] {
            row[N_DENSE + usize::from(c.remap[usize::from(key)])] = 1.0;
        }
    }
}

/// Write the features of one validated row into `out` (`N_FEATURES` values): the same
/// values `fill` writes for that row once it sits in a decoded batch.
pub fn fill_row(r: &GameStateRow<'_>, out: &mut [f32]) {
    let c = &r.cooldowns;
    let dense = [
        r.x, r.y, r.health, r.mana, c[0], c[1], c[2], c[3], c[4], c[5], r.vision, r.gold,
    ];
    for (k, (v, scale)) in dense.iter().zip(DENSE_SCALES).enumerate() {
        out[k] = (v / scale) as f32;
    }
    out[N_DENSE..N_FEATURES].fill(PAD_VALUE);
    for &item in &r.items[..usize::from(r.n_items)] {
        out[N_DENSE + usize::from(item)] = 1.0;
    }
}

impl Columns<'_> {
    pub fn rows(&self) -> usize {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::contract::{COOLDOWN, GOLD_ADVANTAGE, HEALTH, MANA, POSITION, VISION_SCORE};

    #[test]
    fn every_admitted_value_scales_to_a_small_finite_f32() {
        let pairs = [
            (POSITION, 1.0),
            (HEALTH, HEALTH_SCALE),
            (MANA, MANA_SCALE),
            (COOLDOWN, COOLDOWN_SCALE),
            (VISION_SCORE, VISION_SCALE),
            (GOLD_ADVANTAGE, GOLD_SCALE),
        ];
        for (b, scale) in pairs {
            for v in [b.lo, b.hi] {
                let f = (v / scale) as f32;
                assert!(f.is_finite() && f.abs() <= 100.0, "{v} / {scale}");
            }
        }
    }
}
