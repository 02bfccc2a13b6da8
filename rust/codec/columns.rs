//! Columnar builders: valid rows are appended to plain vectors, which become Arrow arrays
//! without a copy (an Arrow buffer takes ownership of a `Vec`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::types::UInt16Type;
use arrow_array::{
    Array, ArrayRef, DictionaryArray, Float64Array, Int32Array, ListArray, RecordBatch,
    StringArray, StructArray, TimestampMicrosecondArray, UInt16Array,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};

use super::contract::{ABILITY_SLOTS, ACTION_KINDS, ITEM_VOCABULARY, SCHEMA_VERSION};
use super::validate::{ActionRow, GameStateRow, SampleRow};

/// Growing Utf8 column (offsets + bytes).
#[derive(Default)]
pub struct Utf8Col {
    offsets: Vec<i32>,
    bytes: Vec<u8>,
    valid: Vec<bool>,
    any_null: bool,
}

impl Utf8Col {
    fn with_capacity(n: usize) -> Self {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        Self {
            offsets,
            bytes: Vec::with_capacity(n * 8),
            valid: Vec::new(),
            any_null: false,
        }
    }
    fn push(&mut self, s: Option<&str>) {
        if let Some(s) = s {
            self.bytes.extend_from_slice(s.as_bytes());
        } else {
            self.any_null = true;
        }
        self.valid.push(s.is_some());
        self.offsets.push(self.bytes.len() as i32);
    }
    fn finish(self) -> StringArray {
        let nulls = self.any_null.then(|| NullBuffer::from(self.valid));
        // SAFETY: offsets are monotone, start at 0, end at bytes.len(), and every slice between
        // them was appended from a `&str`, so each is valid UTF-8.
        unsafe {
            StringArray::new_unchecked(
                OffsetBuffer::new_unchecked(ScalarBuffer::from(self.offsets)),
                Buffer::from_vec(self.bytes),
                nulls,
            )
        }
    }
}

fn f64_array(v: Vec<f64>) -> ArrayRef {
    Arc::new(Float64Array::new(ScalarBuffer::from(v), None))
}

fn f64_nullable(v: Vec<f64>, valid: &[bool]) -> ArrayRef {
    let nulls = valid
        .iter()
        .any(|v| !v)
        .then(|| NullBuffer::from(valid.to_vec()));
    Arc::new(Float64Array::new(ScalarBuffer::from(v), nulls))
}

/// The item vocabulary as a dictionary value array (shared by every inventory column).
fn vocabulary() -> ArrayRef {
    Arc::new(StringArray::from(ITEM_VOCABULARY.to_vec()))
}

pub fn item_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8))
}

/// The GameState columns, in order (see `game_state_fields`).
pub struct GameStateCols {
    ts: Vec<i64>,
    champion: Utf8Col,
    x: Vec<f64>,
    y: Vec<f64>,
    health: Vec<f64>,
    mana: Vec<f64>,
    cooldowns: [Vec<f64>; 6],
    inv_offsets: Vec<i32>,
    inv_keys: Vec<u16>,
    vision: Vec<f64>,
    gold: Vec<f64>,
}

/// Arrow fields of a GameState batch: flat, one column per leaf, in a stable order.
pub fn game_state_fields() -> Fields {
    let mut f = vec![
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("champion", DataType::Utf8, false),
        Field::new("position_x", DataType::Float64, false),
        Field::new("position_y", DataType::Float64, false),
        Field::new("health", DataType::Float64, false),
        Field::new("mana", DataType::Float64, false),
    ];
    for slot in ABILITY_SLOTS {
        f.push(Field::new(
            format!("cooldown_{slot}"),
            DataType::Float64,
            false,
        ));
    }
    f.push(Field::new(
        "inventory",
        DataType::List(Arc::new(Field::new_list_field(item_type(), false))),
        false,
    ));
    f.push(Field::new("vision_score", DataType::Float64, false));
    f.push(Field::new("gold_advantage", DataType::Float64, false));
    f.into()
}

impl GameStateCols {
    pub fn with_capacity(n: usize) -> Self {
        let mut inv_offsets = Vec::with_capacity(n + 1);
        inv_offsets.push(0);
        let v = || Vec::<f64>::with_capacity(n);
        Self {
            ts: Vec::with_capacity(n),
            champion: Utf8Col::with_capacity(n),
            x: v(),
            y: v(),
            health: v(),
            mana: v(),
            cooldowns: [v(), v(), v(), v(), v(), v()],
            inv_offsets,
            inv_keys: Vec::with_capacity(n * 3),
            vision: v(),
            gold: v(),
        }
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn push(&mut self, r: &GameStateRow<'_>) {
        self.ts.push(r.ts_us);
        self.champion.push(Some(r.champion));
        self.x.push(r.x);
        self.y.push(r.y);
        self.health.push(r.health);
        self.mana.push(r.mana);
        for (col, v) in self.cooldowns.iter_mut().zip(r.cooldowns) {
            col.push(v);
        }
        self.inv_keys
            .extend_from_slice(&r.items[..usize::from(r.n_items)]);
        self.inv_offsets.push(self.inv_keys.len() as i32);
        self.vision.push(r.vision);
        self.gold.push(r.gold);
    }

    pub fn finish(self) -> Vec<ArrayRef> {
        let keys = UInt16Array::new(ScalarBuffer::from(self.inv_keys), None);
        // SAFETY: every key came from `item_index`, so it indexes the vocabulary.
        let dict = unsafe { DictionaryArray::<UInt16Type>::new_unchecked(keys, vocabulary()) };
        let inventory = ListArray::new(
            Arc::new(Field::new_list_field(item_type(), false)),
            // SAFETY: offsets start at 0 and grow with each row's item count.
            unsafe { OffsetBuffer::new_unchecked(ScalarBuffer::from(self.inv_offsets)) },
            Arc::new(dict),
            None,
        );
        let mut out: Vec<ArrayRef> = vec![
            Arc::new(
                TimestampMicrosecondArray::new(ScalarBuffer::from(self.ts), None)
                    .with_timezone("UTC"),
            ),
            Arc::new(self.champion.finish()),
            f64_array(self.x),
            f64_array(self.y),
            f64_array(self.health),
            f64_array(self.mana),
        ];
        for c in self.cooldowns {
            out.push(f64_array(c));
        }
        out.push(Arc::new(inventory));
        out.push(f64_array(self.vision));
        out.push(f64_array(self.gold));
        out
    }
}

fn metadata(kind: &str) -> HashMap<String, String> {
    HashMap::from([
        ("system0.contract".to_owned(), kind.to_owned()),
        (
            "system0.schema_version".to_owned(),
            SCHEMA_VERSION.to_string(),
        ),
    ])
}

/// The Arrow schema of a decoded GameState batch (with contract name and version metadata).
pub fn game_state_schema() -> Schema {
    Schema::new(game_state_fields()).with_metadata(metadata("GameState"))
}

pub fn finish_game_states(cols: GameStateCols) -> RecordBatch {
    let schema = Arc::new(game_state_schema());
    let n = cols.len();
    let arrays = cols.finish();
    RecordBatch::try_new_with_options(
        schema,
        arrays,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .expect("GameState columns match their schema by construction")
}

/// TrainingSample columns: nested structs for state / action / next_state / metadata.
pub struct SampleCols {
    state: GameStateCols,
    kind: Utf8Col,
    slot: Utf8Col,
    tx: Vec<f64>,
    ty: Vec<f64>,
    target_valid: Vec<bool>,
    item: Utf8Col,
    reward: Vec<f64>,
    next_state: GameStateCols,
    next_valid: Vec<bool>,
    match_id: Utf8Col,
    step: Vec<i32>,
    source: Utf8Col,
}

fn action_fields() -> Fields {
    vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("slot", DataType::Utf8, true),
        Field::new("target_x", DataType::Float64, true),
        Field::new("target_y", DataType::Float64, true),
        Field::new("item", DataType::Utf8, true),
    ]
    .into()
}

fn meta_fields() -> Fields {
    vec![
        Field::new("match_id", DataType::Utf8, false),
        Field::new("step", DataType::Int32, false),
        Field::new("source", DataType::Utf8, false),
    ]
    .into()
}

pub fn sample_schema() -> Schema {
    Schema::new(vec![
        Field::new("state", DataType::Struct(game_state_fields()), false),
        Field::new("action", DataType::Struct(action_fields()), false),
        Field::new("reward", DataType::Float64, false),
        Field::new("next_state", DataType::Struct(game_state_fields()), true),
        Field::new("metadata", DataType::Struct(meta_fields()), false),
    ])
    .with_metadata(metadata("TrainingSample"))
}

impl SampleCols {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            state: GameStateCols::with_capacity(n),
            kind: Utf8Col::with_capacity(n),
            slot: Utf8Col::with_capacity(n),
            tx: Vec::with_capacity(n),
            ty: Vec::with_capacity(n),
            target_valid: Vec::with_capacity(n),
            item: Utf8Col::with_capacity(n),
            reward: Vec::with_capacity(n),
            next_state: GameStateCols::with_capacity(n),
            next_valid: Vec::with_capacity(n),
            match_id: Utf8Col::with_capacity(n),
            step: Vec::with_capacity(n),
            source: Utf8Col::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.reward.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reward.is_empty()
    }

    pub fn push(&mut self, r: &SampleRow<'_>) {
        self.state.push(&r.state);
        self.push_action(&r.action);
        self.reward.push(r.reward);
        // A null struct still needs child slots: a default row stands under the null bit.
        self.next_state
            .push(r.next_state.as_ref().unwrap_or(&GameStateRow::default()));
        self.next_valid.push(r.next_state.is_some());
        self.match_id.push(Some(r.match_id));
        self.step.push(r.step);
        self.source.push(Some(r.source));
    }

    fn push_action(&mut self, a: &ActionRow) {
        self.kind.push(Some(ACTION_KINDS[usize::from(a.kind)]));
        self.slot
            .push(a.slot.map(|s| ABILITY_SLOTS[usize::from(s)]));
        let (x, y) = a.target.unwrap_or((0.0, 0.0));
        self.tx.push(x);
        self.ty.push(y);
        self.target_valid.push(a.target.is_some());
        self.item
            .push(a.item.map(|i| ITEM_VOCABULARY[usize::from(i)]));
    }

    pub fn finish(self) -> RecordBatch {
        let n = self.len();
        let state = StructArray::new(game_state_fields(), self.state.finish(), None);
        let action = StructArray::new(
            action_fields(),
            vec![
                Arc::new(self.kind.finish()) as ArrayRef,
                Arc::new(self.slot.finish()),
                f64_nullable(self.tx, &self.target_valid),
                f64_nullable(self.ty, &self.target_valid),
                Arc::new(self.item.finish()),
            ],
            None,
        );
        let next_nulls = self
            .next_valid
            .iter()
            .any(|v| !v)
            .then(|| NullBuffer::from(self.next_valid));
        let next_state =
            StructArray::new(game_state_fields(), self.next_state.finish(), next_nulls);
        let meta = StructArray::new(
            meta_fields(),
            vec![
                Arc::new(self.match_id.finish()) as ArrayRef,
                Arc::new(Int32Array::new(ScalarBuffer::from(self.step), None)),
                Arc::new(self.source.finish()),
            ],
            None,
        );
        debug_assert_eq!(state.len(), n);
        RecordBatch::try_new_with_options(
            Arc::new(sample_schema()),
            vec![
                Arc::new(state),
                Arc::new(action),
                f64_array(self.reward),
                Arc::new(next_state),
                Arc::new(meta),
            ],
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(n)),
        )
        .expect("TrainingSample columns match their schema by construction")
    }
}
