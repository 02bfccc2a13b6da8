//! Unit tests of `arrow_check`: the codec's own batches pass, and a value broken after the
//! fact is reported at its row, path and code. (The Python tests cover every rule through
//! pyarrow, and hold the codes to the JSON validator's.)

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StructArray};
use arrow_buffer::NullBuffer;

use super::*;
use crate::codec::batch::{decode_rows, Contract};

fn state(health: f64) -> String {
    format!(
        r#"{{"timestamp":"2024-05-01T12:00:00.250Z","champion":"Ahri","position":{{"x":0.5,"y":0.25}},
        "health":{health},"mana":300.5,"cooldowns":{{"q":0,"w":1.5,"e":0,"r":80,"d":0,"f":300}},
        "inventory":["boots","long_sword"],"vision_score":12,"gold_advantage":-350.0}}"#
    )
}

fn sample(i: usize, action: &str) -> String {
    format!(
        r#"{{"state":{},"action":{action},"reward":0.5,"next_state":{},
        "metadata":{{"match_id":"EUW-1","step":{i},"source":"replay"}}}}"#,
        state(500.0),
        if i % 2 == 0 {
            state(400.0)
        } else {
            "null".into()
        }
    )
}

fn decoded(rows: &[String], contract: Contract) -> RecordBatch {
    let refs: Vec<&[u8]> = rows.iter().map(|r| r.as_bytes()).collect();
    let d = decode_rows(&refs, contract);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    d.batch
}

/// `b` with column `name` replaced (and declared nullable: pyarrow lets a table break its
/// schema's nullability, which is one of the things the check is for).
fn with_column(b: &RecordBatch, name: &str, col: ArrayRef) -> RecordBatch {
    let i = b.schema().index_of(name).unwrap();
    let mut cols = b.columns().to_vec();
    cols[i] = col;
    let mut fields: Vec<_> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[i] = fields[i].clone().with_nullable(true);
    let schema = arrow_schema::Schema::new(fields).with_metadata(b.schema().metadata().clone());
    RecordBatch::try_new(Arc::new(schema), cols).unwrap()
}

fn found(v: &[Violation]) -> Vec<(u32, &str, &str)> {
    v.iter().map(|v| (v.row, v.path.as_str(), v.code)).collect()
}

#[test]
fn the_codecs_batches_keep_the_contract() {
    let states: Vec<String> = (0..100).map(|i| state(f64::from(i))).collect();
    let b = decoded(&states, Contract::GameState);
    assert_eq!(check_batch(&b, Contract::GameState), Ok(vec![]));
    let actions = [
        r#"{"kind":"cast","slot":"q","target":{"x":0.1,"y":0.9}}"#,
        r#"{"kind":"cast","slot":"r"}"#,
        r#"{"kind":"buy","item":"boots"}"#,
        r#"{"kind":"move","target":{"x":1,"y":0}}"#,
        r#"{"kind":"idle"}"#,
    ];
    let samples: Vec<String> = (0..50).map(|i| sample(i, actions[i % 5])).collect();
    let b = decoded(&samples, Contract::TrainingSample);
    assert_eq!(check_batch(&b, Contract::TrainingSample), Ok(vec![]));
}

#[test]
fn a_broken_float_is_reported_at_its_row_and_path() {
    let states: Vec<String> = (0..130).map(|_| state(500.0)).collect();
    let b = decoded(&states, Contract::GameState);
    let mut health = vec![500.0; 130];
    health[3] = -5.0;
    health[70] = f64::NAN;
    health[129] = 1e300;
    let nulls = NullBuffer::from((0..130).map(|i| i != 100).collect::<Vec<_>>());
    let col = Arc::new(Float64Array::new(health.into(), Some(nulls)));
    let v = check_batch(&with_column(&b, "health", col), Contract::GameState).unwrap();
    assert_eq!(
        found(&v),
        [
            (3, "health", "greater_than_equal"),
            (70, "health", "finite_number"),
            (100, "health", "float_type"),
            (129, "health", "less_than_equal"),
        ]
    );
}

#[test]
fn nested_paths_and_null_parents() {
    let samples: Vec<String> = (0..4).map(|i| sample(i, r#"{"kind":"idle"}"#)).collect();
    let b = decoded(&samples, Contract::TrainingSample);
    // next_state.position_x = 2 on every row: reported only where next_state is present
    let next = b.column_by_name("next_state").unwrap().as_struct().clone();
    let (fields, mut cols, nulls) = next.into_parts();
    let x = fields.find("position_x").unwrap().0;
    cols[x] = Arc::new(Float64Array::from(vec![2.0; 4]));
    let next = StructArray::new(fields, cols, nulls);
    let v = check_batch(
        &with_column(&b, "next_state", Arc::new(next)),
        Contract::TrainingSample,
    )
    .unwrap();
    assert_eq!(
        found(&v),
        [
            (0, "next_state.position.x", "less_than_equal"),
            (2, "next_state.position.x", "less_than_equal"),
        ]
    );
}

#[test]
fn a_foreign_schema_is_a_mismatch_not_a_row_error() {
    let b = decoded(&[state(1.0)], Contract::GameState);
    let err = check_batch(&b, Contract::TrainingSample).unwrap_err();
    assert!(err.problem.contains("names the contract"), "{err}");
    let as_int = Arc::new(arrow_array::Int64Array::from(vec![1]));
    let plain =
        RecordBatch::try_from_iter(b.schema().fields().iter().zip(b.columns()).map(|(f, c)| {
            let c = if f.name() == "mana" {
                as_int.clone() as ArrayRef
            } else {
                c.clone()
            };
            (f.name().clone(), c)
        }))
        .unwrap();
    let err = check_batch(&plain, Contract::GameState).unwrap_err();
    assert_eq!(err.path, "mana");
    assert!(
        err.to_string().contains("expected float64, found Int64"),
        "{err}"
    );
    let fewer = plain.project(&[0, 1]).unwrap();
    let err = check_batch(&fewer, Contract::GameState).unwrap_err();
    assert_eq!(err.path, "position_x");
}

#[test]
fn every_action_kind_has_a_rule() {
    for kind in ACTION_KINDS {
        assert!(kind_rule(kind).is_some(), "{kind}");
    }
    assert_eq!(kind_rule("ability"), None);
}
