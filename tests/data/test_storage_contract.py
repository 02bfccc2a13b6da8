"""Storage validates what it stores: the Rust Arrow check (``_core.check_batch``) reports the
codec's codes and paths, and ``commit`` refuses a bad batch whole (nothing written) or
quarantines its bad rows and commits the rest."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from system0 import _core
from system0.data.serialization import decode_training_samples
from system0.data.storage import ScalableStorage
from system0.data.storage.check import _plain, _sample_doc, check_table
from system0.data.storage.schema import game_state_type, sample_schema, synthetic_samples
from system0.data.validation import Quarantine
from system0.errors import ConfigError, ValidationError

Row = dict[str, Any]
# every field nullable (pyarrow casts refuse a null under a non-null field; users still make
# such tables), with timestamps as microseconds to build rows, as timestamps to check them
_INT_SCHEMA = pa.schema([_plain(f) for f in sample_schema()], metadata=sample_schema().metadata)


def _loose(f: pa.Field) -> pa.Field:
    t = f.type
    if pa.types.is_struct(t):
        t = pa.struct([_loose(c) for c in t])
    elif pa.types.is_list(t):
        t = pa.list_(_loose(t.value_field))
    return f.with_type(t).with_nullable(True)


_LOOSE = pa.schema([_loose(f) for f in sample_schema()], metadata=sample_schema().metadata)


def _rows(n: int = 8, seed: int = 3) -> list[Row]:
    """Valid samples as Arrow-shaped dicts (timestamps as microseconds)."""
    return synthetic_samples(n, seed=seed).cast(_INT_SCHEMA).to_pylist()


def _table(rows: list[Row]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=_INT_SCHEMA).cast(_LOOSE)


def _found(table: pa.Table) -> list[tuple[int, str, str]]:
    return [(v.row, v.path, v.code) for v in check_table(table, "TrainingSample")]


def _idle(r: Row) -> None:
    r["action"] = {"kind": "idle", "slot": None, "target_x": None, "target_y": None, "item": None}


def _set(path: str, value: Any) -> Callable[[Row], None]:
    def apply(r: Row) -> None:
        *parents, leaf = path.split(".")
        node = r
        for p in parents:
            node = node[p]
        node[leaf] = value

    return apply


def _action(**fields: Any) -> Callable[[Row], None]:
    def apply(r: Row) -> None:
        _idle(r)
        r["action"].update(fields)

    return apply


# (what breaks, the mutation of an Arrow-shaped row, the codec's path and code for it)
CASES: list[tuple[str, Callable[[Row], None], str, str]] = [
    ("negative health", _set("state.health", -5.0), "state.health", "greater_than_equal"),
    ("x off the map", _set("state.position_x", 1.5), "state.position.x", "less_than_equal"),
    (
        "negative cooldown",
        _set("state.cooldown_r", -1.0),
        "state.cooldowns.r",
        "greater_than_equal",
    ),
    ("next_state mana", _set("next_state.mana", -1.0), "next_state.mana", "greater_than_equal"),
    ("vision", _set("state.vision_score", -2.0), "state.vision_score", "greater_than_equal"),
    ("null health", _set("state.health", None), "state.health", "float_type"),
    ("null reward", _set("reward", None), "reward", "float_type"),
    ("null champion", _set("state.champion", None), "state.champion", "string_type"),
    ("bad champion", _set("state.champion", "Ahri\n"), "state.champion", "champion_invalid"),
    (
        "unknown item",
        _set("state.inventory", ["boots", "excalibur"]),
        "state.inventory.1",
        "unknown_item",
    ),
    ("null item", _set("state.inventory", ["boots", None]), "state.inventory.1", "string_type"),
    ("seven items", _set("state.inventory", ["boots"] * 7), "state.inventory", "too_long"),
    ("null inventory", _set("state.inventory", None), "state.inventory", "list_type"),
    ("1999", _set("state.timestamp", 946_684_799_000_000), "state.timestamp", "timestamp_range"),
    (
        "2100",
        _set("next_state.timestamp", 4_102_444_800_000_000),
        "next_state.timestamp",
        "timestamp_range",
    ),
    ("null state", _set("state", None), "state", "model_type"),
    ("null metadata", _set("metadata", None), "metadata", "model_type"),
    ("negative step", _set("metadata.step", -1), "metadata.step", "out_of_range"),
    ("null step", _set("metadata.step", None), "metadata.step", "int_type"),
    ("empty match id", _set("metadata.match_id", ""), "metadata.match_id", "string_too_short"),
    ("long source", _set("metadata.source", "é" * 65), "metadata.source", "string_too_long"),
    ("kind ability", _action(kind="ability", slot="q"), "action", "union_tag_invalid"),
    ("null kind", _action(kind=None), "action", "union_tag_invalid"),
    ("cast, no slot", _action(kind="cast"), "action.slot", "missing"),
    ("cast, slot z", _action(kind="cast", slot="z"), "action.slot", "literal_error"),
    ("buy, no item", _action(kind="buy"), "action.item", "missing"),
    ("buy excalibur", _action(kind="buy", item="excalibur"), "action.item", "unknown_item"),
    ("move, no target", _action(kind="move"), "action.target", "missing"),
    ("move, half a target", _action(kind="move", target_x=0.5), "action.target.y", "missing"),
    (
        "move off the map",
        _action(kind="move", target_x=2.0, target_y=0.5),
        "action.target.x",
        "less_than_equal",
    ),
    ("idle with a target", _action(target_x=0.1, target_y=0.2), "action.target", "extra_forbidden"),
    ("idle with a slot", _action(slot="q"), "action.slot", "extra_forbidden"),
    ("recall with an item", _action(kind="recall", item="boots"), "action.item", "extra_forbidden"),
    (
        "attack, slot",
        _action(kind="attack", slot="q", target_x=0.1, target_y=0.1),
        "action.slot",
        "extra_forbidden",
    ),
]


@pytest.mark.parametrize(("what", "mutate", "path", "code"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_is_the_codecs_rule(
    what: str, mutate: Callable[[Row], None], path: str, code: str
) -> None:
    rows = _rows()
    mutate(rows[5])
    assert _found(_table(rows)) == [(5, path, code)]
    # the same row as JSON: the codec reports the same path and code
    decoded = decode_training_samples([json.dumps(_sample_doc(rows[5])).encode()])
    assert [(p, c) for _r, p, c, _m in decoded.errors] == [(path, code)]


@pytest.mark.parametrize(
    ("path", "value", "where", "code"),
    [
        ("state.health", float("nan"), "state.health", "finite_number"),
        ("state.mana", float("inf"), "state.mana", "finite_number"),
        ("reward", float("-inf"), "reward", "finite_number"),
        ("state.health", 100_001.0, "state.health", "less_than_equal"),
        ("state.health", 1e300, "state.health", "less_than_equal"),
        ("state.mana", 100_000.0, None, None),
        ("state.cooldown_q", 3_600.5, "state.cooldowns.q", "less_than_equal"),
        ("state.vision_score", 10_001.0, "state.vision_score", "less_than_equal"),
        ("state.gold_advantage", -1e300, "state.gold_advantage", "greater_than_equal"),
        ("next_state.gold_advantage", 1_000_000.0, None, None),
    ],
)
def test_floats_are_finite_and_inside_the_contracts_bounds(
    path: str, value: float, where: str | None, code: str | None
) -> None:
    rows = _rows()
    _set(path, value)(rows[2])
    assert _found(_table(rows)) == ([] if where is None else [(2, where, code)])


def test_synthetic_samples_keep_the_contract_in_both_checks() -> None:
    table = synthetic_samples(3000, seed=11)
    assert check_table(table, "TrainingSample") == []
    docs = [json.dumps(_sample_doc(r)).encode() for r in table.cast(_INT_SCHEMA).to_pylist()]
    assert decode_training_samples(docs).errors == []
    kinds = set(table.column("action").combine_chunks().field("kind").to_pylist())
    assert kinds == {"move", "attack", "cast", "buy", "recall", "idle"}


def test_next_state_may_be_null_and_is_then_not_looked_into() -> None:
    rows = _rows()
    rows[1]["next_state"] = None
    assert _found(_table(rows)) == []


def test_rows_are_indexed_across_chunks_and_listed_in_order() -> None:
    a, b = _rows(8, seed=1), _rows(8, seed=2)
    b[3]["state"]["health"] = -1.0
    b[3]["reward"] = float("nan")
    a[0]["metadata"]["step"] = -4
    table = pa.concat_tables([_table(a), _table(b)])
    assert table.column("state").num_chunks == 2
    assert _found(table) == [
        (0, "metadata.step", "out_of_range"),
        (11, "state.health", "greater_than_equal"),
        (11, "reward", "finite_number"),
    ]


def test_a_game_state_table_is_checked_with_root_paths() -> None:
    states = synthetic_samples(6).column("state").combine_chunks().flatten()
    cols = dict(zip([f.name for f in game_state_type()], states, strict=True))
    cols["health"] = pa.array([1.0, 2.0, -3.0, 4.0, 5.0, 6.0])
    table = pa.table(cols)
    assert [(v.row, v.path, v.code) for v in check_table(table, "GameState")] == [
        (2, "health", "greater_than_equal")
    ]


def test_schema_mismatches_are_typed_errors_that_name_the_field() -> None:
    table = synthetic_samples(4)
    state = table.column("state").combine_chunks()
    fields = [f for f in game_state_type() if f.name != "mana"]
    thin = pa.StructArray.from_arrays([state.field(f.name) for f in fields], fields=fields)
    with pytest.raises(ValidationError, match=r"schema mismatch at state\.mana: the contract's"):
        check_table(table.set_column(0, "state", thin), "TrainingSample")
    with pytest.raises(ValidationError, match=r"at reward: expected float64, found Float32"):
        check_table(
            table.set_column(2, "reward", table["reward"].cast(pa.float32())), "TrainingSample"
        )
    with pytest.raises(ValidationError, match="at extra: the contract has no such field"):
        check_table(table.append_column("extra", pa.array([1, 2, 3, 4])), "TrainingSample")
    with pytest.raises(ValidationError, match="names the contract"):
        check_table(table, "GameState")
    with pytest.raises(ValueError, match="contract must be"):
        _core.check_batch(table.to_batches()[0], "Sample")


# --- commit -----------------------------------------------------------------------------


def _nothing_stored(root: Path) -> None:
    with ScalableStorage(root) as s:
        assert s.datasets() == []
        assert s.versions() == []
        for backend in s.backends.values():
            assert backend.list("samples") == []
    parquet = root / "parquet"
    assert not parquet.exists() or not any(p.is_file() for p in parquet.rglob("*"))


def test_a_table_with_negative_health_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    rows = _rows(200)
    rows[17]["state"]["health"] = -5.0
    rows[42]["action"] = {**rows[42]["action"], "kind": "ability"}
    with ScalableStorage(tmp_path / "r") as s, pytest.raises(ValidationError) as err:
        s.commit(_table(rows))
    text = str(err.value)
    assert "2 of 200 TrainingSample rows break the contract, nothing was stored" in text
    assert "row 17: greater_than_equal:state.health" in text
    assert "row 42: union_tag_invalid:action" in text
    assert "on_invalid='quarantine'" in text
    _nothing_stored(tmp_path / "r")


def test_a_refusal_names_the_first_rows_and_counts_the_rest(tmp_path: Path) -> None:
    rows = _rows(50)
    for i in range(3, 50, 4):
        rows[i]["state"]["mana"] = -1.0
    with ScalableStorage(tmp_path / "r") as s, pytest.raises(ValidationError) as err:
        s.commit(_table(rows))
    assert "12 of 50" in str(err.value)
    assert "row 3: greater_than_equal:state.mana; row 7:" in str(err.value)
    assert "row 19: " in str(err.value) and "row 23:" not in str(err.value)
    assert "(and 7 more rows)" in str(err.value)


def test_the_quarantine_takes_the_bad_rows_and_the_rest_commits(tmp_path: Path) -> None:
    rows = _rows(100)
    rows[17]["state"]["health"] = -5.0
    rows[60]["metadata"]["step"] = -1
    rows[60]["next_state"]["position_y"] = 3.0
    with (
        Quarantine(tmp_path / "q.db") as q,
        ScalableStorage(tmp_path / "r", quarantine=q) as s,
    ):
        v = s.commit(_table(rows), on_invalid="quarantine")
        good = [r for i, r in enumerate(rows) if i not in (17, 60)]
        assert v.manifest.rows == 98
        # values, not dictionaries: the committed rows keep the batch's item dictionary
        assert s.read().to_pylist() == _table(good).to_pylist()
        held = q.list(contract="TrainingSample")
        assert [(h.row, h.codes, h.source) for h in held] == [
            (17, ("greater_than_equal",), "storage:samples"),
            (60, ("less_than_equal", "out_of_range"), "storage:samples"),
        ]
        assert held[1].errors[0][:2] == ("next_state.position.y", "less_than_equal")

        # the held row is the contract's JSON document: fixed, it replays through the codec
        def fix(raw: bytes) -> bytes:
            doc = json.loads(raw)
            doc["state"]["health"] = 5.0
            return json.dumps(doc).encode()

        done = q.replay(fix, contract="TrainingSample", ids=[held[0].id])
        assert done.replayed_ids == (held[0].id,)
        assert (
            pa.table(done.batch).column("state").combine_chunks().field("health")[0].as_py() == 5.0
        )


def test_a_batch_of_only_bad_rows_is_quarantined_and_commits_nothing(tmp_path: Path) -> None:
    rows = _rows(3)
    for r in rows:
        r["reward"] = float("nan")
    with (
        Quarantine(tmp_path / "q.db") as q,
        ScalableStorage(tmp_path / "r", quarantine=q) as s,
    ):
        with pytest.raises(ValidationError, match="all 3 rows break the contract"):
            s.commit(_table(rows), on_invalid="quarantine")
        assert q.count() == 3
    _nothing_stored(tmp_path / "r")


def test_quarantine_needs_a_quarantine_and_never_holds_encrypted_data(tmp_path: Path) -> None:
    rows = _rows(4)
    rows[0]["state"]["health"] = -1.0
    with ScalableStorage(tmp_path / "r") as s:
        with pytest.raises(ConfigError, match="needs a quarantine"):
            s.commit(_table(rows), on_invalid="quarantine")
        with pytest.raises(ConfigError, match="on_invalid must be"):
            s.commit(_table(rows), on_invalid="drop")  # type: ignore[arg-type]
    with (
        Quarantine(tmp_path / "q.db") as q,
        ScalableStorage(tmp_path / "r", quarantine=q) as s,
    ):
        with pytest.raises(ConfigError, match="encrypted at rest"):
            s.commit(_table(rows), on_invalid="quarantine", encrypt=True)
        assert q.count() == 0
    _nothing_stored(tmp_path / "r")


def test_a_decoded_batch_is_not_checked_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [json.dumps(_sample_doc(r)).encode() for r in _rows(20)]
    decoded = decode_training_samples(docs)
    calls: list[int] = []
    real = _core.check_batch

    def counting(batch: Any, contract: str = "TrainingSample") -> Any:
        calls.append(pa.record_batch(batch).num_rows)
        return real(batch, contract)

    monkeypatch.setattr(_core, "check_batch", counting)
    with ScalableStorage(tmp_path / "r") as s:
        s.commit(decoded)
        assert calls == []  # the codec's own output: validated in Rust when decoded
        s.commit(pa.table(decoded))  # a table made from it is anyone's table: checked
        assert calls == [20]


def test_metadata_cannot_waive_or_dodge_the_check(tmp_path: Path) -> None:
    rows = _rows(5)
    rows[4]["state"]["health"] = -5.0
    bad = _table(rows)
    with ScalableStorage(tmp_path / "r") as s:
        for meta in ({}, {"system0.contract": "TrainingSample", "system0.validated": "1"}):
            with pytest.raises(ValidationError, match=r"row 4: greater_than_equal:state\.health"):
                s.commit(bad.replace_schema_metadata(meta))
        # a table that is not contract data is stored as it is; contract= can insist
        s.commit(pa.table({"x": [1, 2]}), dataset="other")
        with pytest.raises(ValidationError, match="schema mismatch at state"):
            s.commit(pa.table({"x": [1, 2]}), dataset="other", contract="TrainingSample")
        # and contract=None is the caller saying so, for data of its own
        s.commit(bad, dataset="raw", contract=None)
