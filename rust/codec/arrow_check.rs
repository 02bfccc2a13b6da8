//! The contract checked on an Arrow record batch that did not come out of the codec (a table
//! built with pyarrow, polars, numpy), column by column: each leaf column is one pass over its
//! contiguous values buffer, and a row is looked at one by one only where a rule broke.
//!
//! It reports what `validate.rs` reports for the same value in JSON: the codec's reason codes
//! and dotted contract paths (`state.position.x` for the column `state.position_x`,
//! `state.cooldowns.q` for `cooldown_q`, `state.inventory.2` for an inventory entry). A
//! batch whose schema is not the codec's (a missing or extra field, another type) is not
//! checked value by value: it is a `SchemaMismatch`, which names the field.

use std::fmt;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, TimestampMicrosecondType, UInt16Type};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Fields, TimeUnit};

use super::batch::Contract;
use super::contract::{
    champion_ok, item_index, Bounds, ABILITY_SLOTS, ACTION_KINDS, COOLDOWN, GOLD_ADVANTAGE, HEALTH,
    MANA, MAX_CHAMPION, MAX_INVENTORY, MAX_META, MAX_STEP, POSITION, SCHEMA_VERSION, TS_MAX_US,
    TS_MIN_US, VISION_SCORE,
};

/// Any finite float (the reward): `inf` and NaN fall outside, as `finite_number`.
const FINITE: Bounds = Bounds {
    lo: f64::MIN,
    hi: f64::MAX,
};

/// One broken rule: the batch row, the dotted contract path, the codec's code, a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub row: u32,
    pub path: String,
    pub code: &'static str,
    pub message: String,
}

/// The batch's schema is not the contract's: which field, and what was wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaMismatch {
    pub path: String,
    pub problem: String,
}

impl fmt::Display for SchemaMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.path.is_empty() {
            "the batch"
        } else {
            &self.path
        };
        write!(
            f,
            "schema mismatch at {at}: {}; build the table with the contract's schema \
             (system0.data.storage_schema.sample_schema(), or the schema of a batch decoded \
             by system0.data.serialization)",
            self.problem
        )
    }
}

type Checked = Result<(), SchemaMismatch>;

fn mismatch(path: &str, expected: &str, found: &DataType) -> SchemaMismatch {
    SchemaMismatch {
        path: path.to_owned(),
        problem: format!("expected {expected}, found {found}"),
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

#[inline]
fn live(mask: Option<&NullBuffer>, i: usize) -> bool {
    mask.is_none_or(|m| m.is_valid(i))
}

/// The fields of a struct (or of the batch itself), taken by name; a field never taken is
/// an extra one, refused by `done`.
struct Fieldset<'a> {
    path: &'a str,
    fields: &'a Fields,
    columns: &'a [ArrayRef],
    taken: Vec<bool>,
}

impl<'a> Fieldset<'a> {
    fn new(path: &'a str, fields: &'a Fields, columns: &'a [ArrayRef]) -> Self {
        Self {
            path,
            fields,
            columns,
            taken: vec![false; fields.len()],
        }
    }

    fn take(&mut self, name: &str) -> Result<&'a ArrayRef, SchemaMismatch> {
        let Some((i, _)) = self.fields.find(name) else {
            return Err(SchemaMismatch {
                path: join(self.path, name),
                problem: "the contract's field is missing".into(),
            });
        };
        self.taken[i] = true;
        Ok(&self.columns[i])
    }

    fn done(self) -> Checked {
        match self.taken.iter().position(|t| !t) {
            None => Ok(()),
            Some(i) => Err(SchemaMismatch {
                path: join(self.path, self.fields[i].name()),
                problem: "the contract has no such field (extra fields are forbidden)".into(),
            }),
        }
    }
}

/// The bytes `champion_ok` allows (ASCII only, so a value of such bytes is also UTF-8 of
/// as many characters).
const CHAMPION_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b' ' | b'\'' | b'.' | b'_' | b'-');
        b += 1;
    }
    t
};

/// 1 to 64 bytes: at least one and at most 64 characters, whatever they are.
fn meta_fast() -> (std::ops::RangeInclusive<i32>, Option<&'static [bool; 256]>) {
    (1..=MAX_META as i32, None)
}

/// What an action kind carries: (a slot, an item, a target: None forbidden, Some(required)),
/// or None for a kind the contract does not know (every one of `ACTION_KINDS` has a rule).
#[inline]
fn kind_rule(kind: &str) -> Option<(bool, bool, Option<bool>)> {
    Some(match kind {
        "move" | "attack" => (false, false, Some(true)),
        "cast" => (true, false, Some(false)),
        "buy" => (false, true, None),
        "recall" | "idle" => (false, false, None),
        _ => return None,
    })
}

/// The code and message of a float outside `[lo, hi]` (or not finite).
fn out_of_range(v: f64, lo: f64, hi: f64) -> (&'static str, String) {
    if !v.is_finite() {
        ("finite_number", "number must be finite".to_owned())
    } else if v < lo {
        ("greater_than_equal", format!("must be >= {lo}"))
    } else {
        ("less_than_equal", format!("must be <= {hi}"))
    }
}

struct Checker {
    out: Vec<Violation>,
}

impl Checker {
    fn push(&mut self, row: usize, path: &str, code: &'static str, message: String) {
        self.out.push(Violation {
            row: row as u32,
            path: path.to_owned(),
            code,
            message,
        });
    }

    /// Report every live null of a column the contract requires (`code` is the one the
    /// codec gives a JSON `null` there).
    fn nulls(&mut self, a: &dyn Array, mask: Option<&NullBuffer>, path: &str, code: &'static str) {
        let Some(n) = a.nulls().filter(|n| n.null_count() > 0) else {
            return;
        };
        for i in (0..n.len()).filter(|&i| n.is_null(i) && live(mask, i)) {
            self.push(i, path, code, "required, found null".into());
        }
    }

    /// A float64 column in `[lo, hi]`: one branch-free pass per 64 values, rows looked at
    /// only in a chunk that holds a bad value (NaN fails every comparison, so it is caught).
    fn floats(
        &mut self,
        a: &ArrayRef,
        path: &str,
        mask: Option<&NullBuffer>,
        Bounds { lo, hi }: Bounds,
    ) -> Checked {
        let p = a
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| mismatch(path, "float64", a.data_type()))?;
        self.nulls(p, mask, path, "float_type");
        for (c, chunk) in p.values().chunks(64).enumerate() {
            if !chunk
                .iter()
                .fold(false, |bad, &v| bad | !((v >= lo) & (v <= hi)))
            {
                continue;
            }
            for (j, &v) in chunk.iter().enumerate() {
                let i = c * 64 + j;
                if (v >= lo && v <= hi) || !live(mask, i) || p.is_null(i) {
                    continue;
                }
                let (code, message) = out_of_range(v, lo, hi);
                self.push(i, path, code, message);
            }
        }
        Ok(())
    }

    fn timestamps(&mut self, a: &ArrayRef, path: &str, mask: Option<&NullBuffer>) -> Checked {
        let utc = matches!(a.data_type(),
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC");
        let p = a
            .as_primitive_opt::<TimestampMicrosecondType>()
            .filter(|_| utc)
            .ok_or_else(|| mismatch(path, "timestamp[us, tz=UTC]", a.data_type()))?;
        self.nulls(p, mask, path, "datetime_type");
        let ok = |v: i64| (TS_MIN_US..TS_MAX_US).contains(&v);
        for (c, chunk) in p.values().chunks(64).enumerate() {
            if chunk.iter().fold(true, |all, &v| all & ok(v)) {
                continue;
            }
            for (j, &v) in chunk.iter().enumerate() {
                let i = c * 64 + j;
                if !ok(v) && live(mask, i) && p.is_valid(i) {
                    let m = "timestamp must fall in [2000-01-01, 2100-01-01) UTC".to_owned();
                    self.push(i, path, "timestamp_range", m);
                }
            }
        }
        Ok(())
    }

    /// A Utf8 column whose every live, non-null value must pass `rule`. Each value's byte
    /// length in `lens` and each byte in `bytes` (when given) imply the rule: when the whole
    /// column keeps those (one pass over the offsets, one over the bytes), no value is looked
    /// at one by one.
    fn strings<'a>(
        &mut self,
        a: &'a ArrayRef,
        path: &str,
        mask: Option<&NullBuffer>,
        (lens, bytes): (std::ops::RangeInclusive<i32>, Option<&[bool; 256]>),
        rule: impl Fn(&str) -> Option<(&'static str, &'static str)>,
    ) -> Result<&'a StringArray, SchemaMismatch> {
        let s = a
            .as_string_opt::<i32>()
            .ok_or_else(|| mismatch(path, "utf8", a.data_type()))?;
        let offsets = s.value_offsets();
        let sized = offsets
            .windows(2)
            .fold(true, |ok, w| ok & lens.contains(&(w[1] - w[0])));
        let used = || {
            let (first, last) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
            &s.value_data()[first..last]
        };
        if sized && bytes.is_none_or(|t| used().iter().fold(true, |ok, &b| ok & t[usize::from(b)]))
        {
            return Ok(s);
        }
        for i in 0..s.len() {
            if s.is_valid(i) && live(mask, i) {
                if let Some((code, message)) = rule(s.value(i)) {
                    self.push(i, path, code, message.to_owned());
                }
            }
        }
        Ok(s)
    }

    fn inventory(&mut self, a: &ArrayRef, path: &str, mask: Option<&NullBuffer>) -> Checked {
        let expected = "list<dictionary<uint16, utf8>>";
        let list = a
            .as_list_opt::<i32>()
            .ok_or_else(|| mismatch(path, expected, a.data_type()))?;
        let dict = list
            .values()
            .as_dictionary_opt::<UInt16Type>()
            .filter(|d| d.values().data_type() == &DataType::Utf8)
            .ok_or_else(|| mismatch(path, expected, a.data_type()))?;
        self.nulls(list, mask, path, "list_type");
        // The dictionary is checked once; each entry then costs a table lookup.
        let words = dict.values().as_string::<i32>();
        let known: Vec<bool> = (0..words.len())
            .map(|j| words.is_valid(j) && item_index(words.value(j)).is_some())
            .collect();
        let keys = dict.keys();
        let good =
            |k: usize| keys.is_valid(k) && known.get(usize::from(keys.value(k))) == Some(&true);
        // whole-column passes first: every list short enough, every key a known item
        let offsets = list.value_offsets();
        let short = offsets
            .windows(2)
            .fold(true, |ok, w| ok & (w[1] - w[0] <= MAX_INVENTORY as i32));
        let (first, last) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
        let all_known = keys.null_count() == 0
            && keys.values()[first..last].iter().fold(true, |ok, &k| {
                ok & known.get(usize::from(k)).copied().unwrap_or(false)
            });
        if short && all_known {
            return Ok(());
        }
        for (i, w) in offsets.windows(2).enumerate() {
            let (start, end) = (w[0] as usize, w[1] as usize);
            if end - start <= MAX_INVENTORY && (start..end).all(good) {
                continue;
            }
            if !live(mask, i) || list.is_null(i) {
                continue;
            }
            if end - start > MAX_INVENTORY {
                let m = format!("an inventory holds at most {MAX_INVENTORY} items");
                self.push(i, path, "too_long", m);
                continue;
            }
            for (n, k) in (start..end).enumerate().filter(|&(_, k)| !good(k)) {
                let at = format!("{path}.{n}");
                if keys.is_null(k) {
                    self.push(
                        i,
                        &at,
                        "string_type",
                        "expected an item name, found null".into(),
                    );
                    continue;
                }
                let code = usize::from(keys.value(k));
                let m = if code < words.len() && words.is_valid(code) {
                    format!("unknown item {:?}; see ITEM_VOCABULARY", words.value(code))
                } else {
                    format!("item code {code} has no name in the inventory's dictionary")
                };
                self.push(i, &at, "unknown_item", m);
            }
        }
        Ok(())
    }

    /// The GameState leaves of `fields` (the batch itself, or a `state` struct), under
    /// `prefix` (`""`, `"state"`, `"next_state"`), for the rows `mask` keeps.
    fn game_state(&mut self, mut f: Fieldset<'_>, mask: Option<&NullBuffer>) -> Checked {
        let prefix = f.path;
        let p = |name: &str| join(prefix, name);
        self.timestamps(f.take("timestamp")?, &p("timestamp"), mask)?;
        let champion = f.take("champion")?;
        let fast = (1..=MAX_CHAMPION as i32, Some(&CHAMPION_BYTES));
        let s = self.strings(champion, &p("champion"), mask, fast, |s| {
            (!champion_ok(s)).then_some((
                "champion_invalid",
                "champion must be 1-32 of A-Z a-z 0-9 space ' . _ -",
            ))
        })?;
        self.nulls(s, mask, &p("champion"), "string_type");
        for axis in ["x", "y"] {
            let col = f.take(&format!("position_{axis}"))?;
            self.floats(col, &p(&format!("position.{axis}")), mask, POSITION)?;
        }
        self.floats(f.take("health")?, &p("health"), mask, HEALTH)?;
        self.floats(f.take("mana")?, &p("mana"), mask, MANA)?;
        for slot in ABILITY_SLOTS {
            let col = f.take(&format!("cooldown_{slot}"))?;
            self.floats(col, &p(&format!("cooldowns.{slot}")), mask, COOLDOWN)?;
        }
        self.inventory(f.take("inventory")?, &p("inventory"), mask)?;
        self.floats(
            f.take("vision_score")?,
            &p("vision_score"),
            mask,
            VISION_SCORE,
        )?;
        self.floats(
            f.take("gold_advantage")?,
            &p("gold_advantage"),
            mask,
            GOLD_ADVANTAGE,
        )?;
        f.done()
    }

    /// A struct column: its null rows are reported (`null_code`) unless `nullable`, and its
    /// children are checked on the rows where both it and its parent are present.
    fn structure<'a>(
        &mut self,
        a: &'a ArrayRef,
        path: &'a str,
        mask: Option<&NullBuffer>,
        null_code: Option<&'static str>,
    ) -> Result<(Fieldset<'a>, Option<NullBuffer>), SchemaMismatch> {
        let s = a
            .as_struct_opt()
            .ok_or_else(|| mismatch(path, "a struct", a.data_type()))?;
        if let Some(code) = null_code {
            self.nulls(s, mask, path, code);
        }
        let inner = NullBuffer::union(mask, s.nulls());
        Ok((Fieldset::new(path, s.fields(), s.columns()), inner))
    }

    fn action(&mut self, a: &ArrayRef, mask: Option<&NullBuffer>) -> Checked {
        let (mut f, mask) = self.structure(a, "action", mask, Some("model_attributes_type"))?;
        let mask = mask.as_ref();
        let mut utf8 = |col: &'static str| -> Result<StringArray, SchemaMismatch> {
            let c = f.take(col)?;
            let path = join("action", col);
            c.as_string_opt::<i32>()
                .cloned()
                .ok_or_else(|| mismatch(&path, "utf8", c.data_type()))
        };
        let (kind, slot, item) = (utf8("kind")?, utf8("slot")?, utf8("item")?);
        let mut f64s = |col: &'static str| -> Result<Float64Array, SchemaMismatch> {
            let c = f.take(col)?;
            let path = join("action", col);
            c.as_primitive_opt::<Float64Type>()
                .cloned()
                .ok_or_else(|| mismatch(&path, "float64", c.data_type()))
        };
        let (tx, ty) = (f64s("target_x")?, f64s("target_y")?);
        f.done()?;
        // Few rows and many per-kind rules: this one goes row by row.
        for i in (0..kind.len()).filter(|&i| live(mask, i)) {
            // a null kind is what JSON's `"kind": null` is: a tag that names no kind
            let named = kind.is_valid(i).then(|| kind.value(i));
            let Some((wants_slot, wants_item, target)) = named.and_then(kind_rule) else {
                let m = format!("kind must be one of {}", ACTION_KINDS.join(", "));
                self.push(i, "action", "union_tag_invalid", m);
                continue;
            };
            self.carried(i, "action.slot", slot.is_valid(i), wants_slot);
            if wants_slot && slot.is_valid(i) && !ABILITY_SLOTS.contains(&slot.value(i)) {
                let m = format!("slot must be one of {}", ABILITY_SLOTS.join(" "));
                self.push(i, "action.slot", "literal_error", m);
            }
            self.carried(i, "action.item", item.is_valid(i), wants_item);
            if wants_item && item.is_valid(i) && item_index(item.value(i)).is_none() {
                let m = "unknown item; see ITEM_VOCABULARY".to_owned();
                self.push(i, "action.item", "unknown_item", m);
            }
            let (x, y) = (tx.is_valid(i), ty.is_valid(i));
            match target {
                None => self.carried(i, "action.target", x || y, false),
                Some(required) if !x && !y => self.carried(i, "action.target", false, required),
                Some(_) if !(x && y) => {
                    let at = if x {
                        "action.target.y"
                    } else {
                        "action.target.x"
                    };
                    self.push(i, at, "missing", "field required".into());
                }
                Some(_) => {
                    self.coordinate(i, "action.target.x", tx.values()[i]);
                    self.coordinate(i, "action.target.y", ty.values()[i]);
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn coordinate(&mut self, i: usize, path: &str, v: f64) {
        let Bounds { lo, hi } = POSITION;
        if !(v >= lo && v <= hi) {
            let (code, message) = out_of_range(v, lo, hi);
            self.push(i, path, code, message);
        }
    }

    /// `missing` when the kind needs a field the row lacks, `extra_forbidden` when the row
    /// carries one its kind does not.
    #[inline]
    fn carried(&mut self, i: usize, path: &str, present: bool, wanted: bool) {
        if wanted && !present {
            self.push(i, path, "missing", "field required".into());
        } else if present && !wanted {
            let m = "extra fields are not permitted by this action kind".to_owned();
            self.push(i, path, "extra_forbidden", m);
        }
    }

    fn metadata(&mut self, a: &ArrayRef, mask: Option<&NullBuffer>) -> Checked {
        let (mut f, mask) = self.structure(a, "metadata", mask, Some("model_type"))?;
        let mask = mask.as_ref();
        let bounded = |s: &str| -> Option<(&'static str, &'static str)> {
            // bytes bound characters from above, so only a long string needs counting
            if s.is_empty() {
                Some(("string_too_short", "must not be empty"))
            } else if s.len() > MAX_META && s.chars().count() > MAX_META {
                Some(("string_too_long", "at most 64 characters"))
            } else {
                None
            }
        };
        let match_id = f.take("match_id")?;
        let s = self.strings(match_id, "metadata.match_id", mask, meta_fast(), bounded)?;
        self.nulls(s, mask, "metadata.match_id", "string_type");
        let step = f.take("step")?;
        let p = step
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| mismatch("metadata.step", "int32", step.data_type()))?;
        self.nulls(p, mask, "metadata.step", "int_type");
        for (i, &v) in p.values().iter().enumerate() {
            if !(0..=MAX_STEP).contains(&i64::from(v)) && live(mask, i) && p.is_valid(i) {
                let m = "step must be in [0, 2**31 - 1]".to_owned();
                self.push(i, "metadata.step", "out_of_range", m);
            }
        }
        let source = f.take("source")?;
        let s = self.strings(source, "metadata.source", mask, meta_fast(), bounded)?;
        self.nulls(s, mask, "metadata.source", "string_type");
        f.done()
    }

    fn training_sample(&mut self, batch: &RecordBatch) -> Checked {
        let schema = batch.schema_ref();
        let mut f = Fieldset::new("", schema.fields(), batch.columns());
        // the codec's field order, so that a row's rules are listed as the codec lists them
        let (state, mask) = self.structure(f.take("state")?, "state", None, Some("model_type"))?;
        self.game_state(state, mask.as_ref())?;
        self.action(f.take("action")?, None)?;
        self.floats(f.take("reward")?, "reward", None, FINITE)?;
        let (next, mask) = self.structure(f.take("next_state")?, "next_state", None, None)?;
        self.game_state(next, mask.as_ref())?;
        self.metadata(f.take("metadata")?, None)?;
        f.done()
    }
}

/// The schema-level promises a batch may carry in its metadata: which contract, which
/// version. Absent is fine (the columns decide); present and different is a mismatch.
fn check_metadata(batch: &RecordBatch, contract: Contract) -> Checked {
    let meta = batch.schema_ref().metadata();
    let name = match contract {
        Contract::GameState => "GameState",
        Contract::TrainingSample => "TrainingSample",
    };
    if let Some(found) = meta.get("system0.contract").filter(|c| *c != name) {
        return Err(SchemaMismatch {
            path: String::new(),
            problem: format!("its metadata names the contract {found:?}, checked as {name}"),
        });
    }
    if let Some(v) = meta
        .get("system0.schema_version")
        .filter(|v| **v != SCHEMA_VERSION.to_string())
    {
        return Err(SchemaMismatch {
            path: String::new(),
            problem: format!("schema_version {v:?}, this build knows {SCHEMA_VERSION}"),
        });
    }
    Ok(())
}

/// Every broken rule of `batch` under `contract`, ordered by row (within a row, in column
/// order); empty when every row keeps the contract.
pub fn check_batch(
    batch: &RecordBatch,
    contract: Contract,
) -> Result<Vec<Violation>, SchemaMismatch> {
    check_metadata(batch, contract)?;
    let mut c = Checker { out: Vec::new() };
    match contract {
        Contract::GameState => {
            let schema = batch.schema_ref();
            c.game_state(Fieldset::new("", schema.fields(), batch.columns()), None)?;
        }
        Contract::TrainingSample => c.training_sample(batch)?,
    }
    c.out.sort_by_key(|v| v.row); // stable: a row's rules stay in column order
    Ok(c.out)
}

#[cfg(test)]
#[path = "arrow_check_tests.rs"]
mod tests;
