//! The one reader of a GameState batch's Arrow columns, shared by the JSON encoder
//! (encode.rs), the protobuf encoder (proto.rs) and the feature matrix (features/mod.rs):
//! each column is found by its contract name and typed once, here, with one set of messages.
//!
//! Invariants: the float columns hold no nulls (a value the codec decoded is never null; a
//! batch built elsewhere with a null is refused, not read as 0); the inventory is a list of
//! `dictionary<uint16, utf8>` whose keys all index its dictionary.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMicrosecondType, UInt16Type};
use arrow_array::{Array, PrimitiveArray, RecordBatch, StringArray, StructArray};

use super::contract::ABILITY_SLOTS;
use crate::error::{CoreError, CoreResult};

/// How to look a column up: in a GameState batch, or in the `state` struct of a
/// TrainingSample batch.
pub type Getter<'g, 'a> = &'g dyn Fn(&str) -> Option<&'a dyn Array>;

fn arg(msg: String) -> CoreError {
    CoreError::InvalidArgument(msg)
}

/// The column `name`, or an error naming it.
pub fn column<'a>(get: Getter<'_, 'a>, name: &str) -> CoreResult<&'a dyn Array> {
    get(name).ok_or_else(|| {
        arg(format!(
            "batch has no column '{name}'; pass a GameState batch"
        ))
    })
}

/// The values of the float64 column `name`, which must hold no nulls.
pub fn f64s<'a>(get: Getter<'_, 'a>, name: &str) -> CoreResult<&'a [f64]> {
    let c = column(get, name)?;
    if c.null_count() > 0 {
        return Err(arg(format!(
            "column '{name}' holds nulls; pass complete GameState rows"
        )));
    }
    c.as_primitive_opt::<Float64Type>()
        .map(|a| a.values().as_ref())
        .ok_or_else(|| arg(format!("column '{name}' must be float64")))
}

/// The float columns in contract order: position x, y, health, mana, each cooldown (in
/// `ABILITY_SLOTS` order), vision score, gold advantage.
pub fn dense<'a>(get: Getter<'_, 'a>) -> CoreResult<[&'a [f64]; 12]> {
    let mut out: [&[f64]; 12] = [&[]; 12];
    let names = ["position_x", "position_y", "health", "mana"]
        .into_iter()
        .map(String::from)
        .chain(ABILITY_SLOTS.iter().map(|s| format!("cooldown_{s}")))
        .chain(
            ["vision_score", "gold_advantage"]
                .into_iter()
                .map(String::from),
        );
    for (k, name) in names.enumerate() {
        out[k] = f64s(get, &name)?;
    }
    Ok(out)
}

/// The inventory column: a list of dictionary-encoded item names.
pub struct Inventory<'a> {
    /// Row `r` holds `keys[offsets[r]..offsets[r + 1]]`.
    pub offsets: &'a [i32],
    pub keys: &'a [u16],
    /// The dictionary the keys index.
    pub names: &'a StringArray,
}

impl Inventory<'_> {
    /// The item names of row `r`.
    pub fn row(&self, r: usize) -> impl Iterator<Item = &str> {
        let (s, e) = (self.offsets[r] as usize, self.offsets[r + 1] as usize);
        self.keys[s..e]
            .iter()
            .map(|k| self.names.value(usize::from(*k)))
    }
}

pub fn inventory<'a>(get: Getter<'_, 'a>) -> CoreResult<Inventory<'a>> {
    let inv = column(get, "inventory")?
        .as_list_opt::<i32>()
        .ok_or_else(|| {
            arg("column 'inventory' must be a list of dictionary<uint16, utf8>".into())
        })?;
    let dict = inv
        .values()
        .as_dictionary_opt::<UInt16Type>()
        .ok_or_else(|| arg("inventory items must be dictionary<uint16, utf8>".into()))?;
    let names = dict
        .values()
        .as_string_opt::<i32>()
        .ok_or_else(|| arg("inventory dictionary must hold utf8".into()))?;
    let keys = dict.keys().values().as_ref();
    if keys.iter().any(|&k| usize::from(k) >= names.len()) {
        return Err(arg("inventory dictionary key out of range".into()));
    }
    Ok(Inventory {
        offsets: inv.value_offsets(),
        keys,
        names,
    })
}

/// Every column of a GameState batch, typed: what the encoders write back out.
pub struct GameStateColumns<'a> {
    pub rows: usize,
    pub timestamp: &'a PrimitiveArray<TimestampMicrosecondType>,
    pub champion: &'a StringArray,
    /// As `dense`: x, y, health, mana, cooldowns, vision score, gold advantage.
    pub dense: [&'a [f64]; 12],
    pub inventory: Inventory<'a>,
}

impl<'a> GameStateColumns<'a> {
    pub fn of_batch(b: &'a RecordBatch) -> CoreResult<Self> {
        let get = |n: &str| b.column_by_name(n).map(|c| c.as_ref());
        Self::read(&get, b.num_rows())
    }

    pub fn of_struct(s: &'a StructArray) -> CoreResult<Self> {
        let get = |n: &str| s.column_by_name(n).map(|c| c.as_ref());
        Self::read(&get, s.len())
    }

    fn read(get: Getter<'_, 'a>, rows: usize) -> CoreResult<Self> {
        let timestamp = column(get, "timestamp")?
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| arg("column 'timestamp' must be timestamp[us, UTC]".into()))?;
        let champion = column(get, "champion")?
            .as_string_opt::<i32>()
            .ok_or_else(|| arg("column 'champion' must be utf8".into()))?;
        Ok(GameStateColumns {
            rows,
            timestamp,
            champion,
            dense: dense(get)?,
            inventory: inventory(get)?,
        })
    }
}
