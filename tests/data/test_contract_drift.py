"""Drift test: every copy of the wire contract agrees with the codec's (``system0.data.contract``).

The codec (``rust/codec/contract.rs``) is the source. Each check below compares one copy with it
and returns what differs: the pydantic models (read through their JSON Schema, so a changed
``Field(le=...)`` shows), the ``.proto`` users compile (parsed, and its field numbers held to the
bytes the codec writes), the storage schema, and the simulator's records. Each check is run on
the real copy (no drift) and on a copy changed alone (the check must bite).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from conftest import game_state
from pydantic import TypeAdapter

from system0.data import contract, models
from system0.data.serialization import decode_game_states, decode_training_samples, to_protobuf
from system0.data.storage import schema as storage_schema

PROTO = Path(__file__).parents[2] / "python/system0/data/game_state.proto"

# -- pydantic ----------------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` (and pydantic's ``anyOf: [ref, null]`` for optional models)."""
    if "anyOf" in node:
        [node] = [n for n in node["anyOf"] if n.get("type") != "null"]
    if "$ref" in node:
        return dict(schema.get("$defs", {}).get(node["$ref"].rsplit("/", 1)[1], {}))
    return node


def _object_drift(
    name: str, schema: dict[str, Any], node: dict[str, Any], fields: Any, optional: Any
) -> list[str]:
    out = []
    props = list(node.get("properties", {}))
    if props != list(fields):
        out.append(f"{name} fields {props} != contract {list(fields)}")
    required = set(node.get("required", []))
    want = set(fields) - set(optional)
    if required != want:
        out.append(f"{name} required {sorted(required)} != contract {sorted(want)}")
    return out


def model_drift(gs: dict[str, Any], ts: dict[str, Any], action: dict[str, Any]) -> list[str]:
    """What the pydantic models' JSON Schemas (GameState, TrainingSample, Action) say that the
    contract does not."""
    out = _object_drift(
        "GameState", gs, gs, contract.GAME_STATE_FIELDS, contract.GAME_STATE_OPTIONAL
    )
    props = gs.get("properties", {})
    pos = _resolve(gs, props.get("position", {}))
    out += _object_drift("Position", gs, pos, contract.POSITION_FIELDS, ())
    cds = _resolve(gs, props.get("cooldowns", {}))
    out += _object_drift("Cooldowns", gs, cds, contract.ABILITY_SLOTS, ())
    # every bounded leaf: its (minimum, maximum) is the contract's range, and no other leaf
    # carries a bound the contract does not know
    bounds: dict[str, tuple[Any, Any]] = {}
    for field, node in props.items():
        sub = _resolve(gs, node)
        leaves = sub.get("properties", {}) if sub.get("type") == "object" else {"": sub}
        for leaf, leaf_node in leaves.items():
            if leaf_node.get("type") == "number":
                path = f"{field}.{leaf}" if leaf else field
                bounds[path] = (leaf_node.get("minimum"), leaf_node.get("maximum"))
    want = dict(contract.RANGES)
    if bounds != want:
        pairs = {k: (bounds.get(k), want.get(k)) for k in bounds.keys() | want.keys()}
        diff = {k: v for k, v in pairs.items() if v[0] != v[1]}
        out.append(f"ranges differ (model, contract): {diff}")
    if props.get("inventory", {}).get("maxItems") != contract.MAX_INVENTORY:
        out.append("inventory maxItems != contract.MAX_INVENTORY")
    if props.get("schema_version", {}).get("const") != contract.SCHEMA_VERSION:
        out.append("GameState schema_version != contract.SCHEMA_VERSION")

    out += _object_drift(
        "TrainingSample", ts, ts, contract.TRAINING_SAMPLE_FIELDS, contract.TRAINING_SAMPLE_OPTIONAL
    )
    meta = _resolve(ts, ts.get("properties", {}).get("metadata", {}))
    out += _object_drift("SampleMetadata", ts, meta, contract.METADATA_FIELDS, ())
    mp = meta.get("properties", {})
    if mp.get("step", {}).get("maximum") != contract.MAX_STEP:
        out.append("metadata.step maximum != contract.MAX_STEP")
    for key in ("match_id", "source"):
        if mp.get(key, {}).get("maxLength") != contract.MAX_METADATA_STRING:
            out.append(f"metadata.{key} maxLength != contract.MAX_METADATA_STRING")

    mapping = action.get("discriminator", {}).get("mapping", {})
    if set(mapping) != set(contract.ACTION_KINDS):  # pydantic sorts the mapping
        out.append(f"action kinds {sorted(mapping)} != contract {sorted(contract.ACTION_KINDS)}")
    for kind, ref in mapping.items():
        node = _resolve(action, {"$ref": ref})
        fields = contract.ACTION_FIELDS.get(kind, ())
        optional = {f for k, f in contract.ACTION_OPTIONAL if k == kind}
        out += _object_drift(f"{kind} action", action, node, fields, optional)
        slot = node.get("properties", {}).get("slot")
        if slot is not None and slot.get("enum") != list(contract.ABILITY_SLOTS):
            out.append(f"{kind} action slots {slot.get('enum')} != contract.ABILITY_SLOTS")
    return out


def _real_model_schemas() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    return (
        models.GameState.model_json_schema(),
        models.TrainingSample.model_json_schema(),
        TypeAdapter(models.Action).json_schema(),
    )


def test_the_pydantic_models_are_the_contract() -> None:
    assert model_drift(*_real_model_schemas()) == []
    assert models.ABILITY_SLOTS == contract.ABILITY_SLOTS == ("q", "w", "e", "r", "d", "f")
    assert models.ACTION_KINDS == contract.ACTION_KINDS
    assert models.ITEM_VOCABULARY == contract.ITEM_VOCABULARY
    assert (models.MAX_INVENTORY, models.SCHEMA_VERSION) == (6, 1)
    assert (models.TIMESTAMP_MIN.year, models.TIMESTAMP_MAX.year) == (2000, 2100)


def _bumped(path: list[str], key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(schema: dict[str, Any]) -> None:
        node = schema
        for p in path:
            node = node[p]
        node[key] = value

    return edit


MODEL_EDITS: dict[str, tuple[int, Callable[[dict[str, Any]], None]]] = {
    "health le": (0, _bumped(["properties", "health"], "maximum", 99_999.0)),
    "cooldown ge": (0, _bumped(["$defs", "Cooldowns", "properties", "f"], "minimum", -1.0)),
    "position le": (0, _bumped(["$defs", "Position", "properties", "y"], "maximum", 2.0)),
    "unbounded gold": (0, lambda s: s["properties"]["gold_advantage"].pop("maximum")),
    "renamed field": (0, lambda s: s["properties"].update(hp=s["properties"].pop("health"))),
    "required version": (0, lambda s: s["required"].append("schema_version")),
    "inventory size": (0, _bumped(["properties", "inventory"], "maxItems", 8)),
    "step bound": (1, _bumped(["$defs", "SampleMetadata", "properties", "step"], "maximum", 9)),
    "slot enum": (2, _bumped(["$defs", "CastAction", "properties", "slot"], "enum", ["q"])),
    "kind renamed": (
        2,
        lambda s: s["discriminator"]["mapping"].update(
            ability=s["discriminator"]["mapping"].pop("cast")
        ),
    ),
    "buy field": (2, lambda s: s["$defs"]["BuyAction"]["properties"].update(count={})),
}


@pytest.mark.parametrize("edit", sorted(MODEL_EDITS))
def test_the_model_check_bites_when_the_models_change_alone(edit: str) -> None:
    schemas = [json.loads(json.dumps(s)) for s in _real_model_schemas()]
    which, change = MODEL_EDITS[edit]
    change(schemas[which])
    assert model_drift(*schemas) != [], edit


def test_the_bounds_are_the_ones_the_issue_names() -> None:
    # pinned once: a change to the contract's ranges is a decision, reviewed here
    assert dict(contract.RANGES) == {
        "position.x": (0.0, 1.0),
        "position.y": (0.0, 1.0),
        "health": (0.0, 100_000.0),
        "mana": (0.0, 100_000.0),
        **{f"cooldowns.{s}": (0.0, 3600.0) for s in contract.ABILITY_SLOTS},
        "vision_score": (0.0, 10_000.0),
        "gold_advantage": (-1_000_000.0, 1_000_000.0),
    }


# -- the .proto --------------------------------------------------------------------------------

_MESSAGE = re.compile(r"message\s+(\w+)\s*\{([^}]*)\}")
_FIELD = re.compile(r"^\s*(optional\s+|repeated\s+)?(\w+)\s+(\w+)\s*=\s*(\d+)\s*;", re.M)


def parse_proto(text: str) -> dict[str, list[tuple[str, str, int]]]:
    """``{message: [(type, field, number), ...]}`` of a proto3 file without nested messages."""
    text = re.sub(r"//[^\n]*", "", text)
    return {
        name: [(m[2], m[3], int(m[4])) for m in _FIELD.finditer(body)]
        for name, body in _MESSAGE.findall(text)
    }


def proto_drift(text: str) -> list[str]:
    msgs = parse_proto(text)
    out = []
    expected = {
        "GameState": contract.GAME_STATE_FIELDS,
        "Position": contract.POSITION_FIELDS,
        "Cooldowns": contract.ABILITY_SLOTS,
        "GameStateBatch": ("states",),
    }
    for name, fields in expected.items():
        got = [f for _t, f, _n in msgs.get(name, [])]
        if got != list(fields):
            out.append(f"proto message {name} fields {got} != contract {list(fields)}")
    for name, fields_ in msgs.items():
        numbers = [n for _t, _f, n in fields_]
        if numbers != list(range(1, len(numbers) + 1)):
            out.append(f"proto message {name} numbers {numbers} are not 1..n in field order")
    return out


def test_the_proto_is_the_contract() -> None:
    assert proto_drift(PROTO.read_text()) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("double health = 5", "double hp = 5"),
        ("optional double f = 6;\n", ""),
        ("double mana = 6", "double mana = 11"),
        ("optional double y = 2;", "optional double y = 2;\n  optional double z = 3;"),
    ],
)
def test_the_proto_check_bites_when_the_proto_changes_alone(old: str, new: str) -> None:
    text = PROTO.read_text()
    assert old in text
    assert proto_drift(text.replace(old, new)) != []


def _read_pb(data: bytes) -> list[tuple[int, int, Any]]:
    """Minimal protobuf wire reader: ``[(field number, wire type, value), ...]``."""
    out, i = [], 0

    def varint() -> int:
        nonlocal i
        v = shift = 0
        while True:
            b = data[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value = varint()
        elif wire == 1:
            value = struct.unpack_from("<d", data, i)[0]
            i += 8
        elif wire == 2:
            n = varint()
            value = data[i : i + n]
            i += n
        else:  # pragma: no cover - the codec writes only these three
            raise AssertionError(f"unexpected wire type {wire}")
        out.append((number, wire, value))
    return out


def test_the_proto_field_numbers_carry_what_the_codec_writes() -> None:
    # the codec's protobuf bytes, read with the .proto's numbering, hold each field's value
    row = game_state(health=1234.5, mana=77.0, inventory=["boots", "thornmail"])
    wire = to_protobuf(decode_game_states([json.dumps(row).encode()]))
    msgs = parse_proto(PROTO.read_text())
    name = {m: {n: f for _t, f, n in fields} for m, fields in msgs.items()}
    [(number, wire_type, state)] = _read_pb(wire)
    assert (number, wire_type) == (1, 2)  # GameStateBatch.states, length-delimited
    got: dict[str, Any] = {}
    for number, _wire, value in _read_pb(state):
        field = name["GameState"][number]
        if field in ("position", "cooldowns"):
            sub = "Position" if field == "position" else "Cooldowns"
            value = {name[sub][n]: v for n, _w, v in _read_pb(value)}
        elif isinstance(value, bytes):
            value = value.decode()
        if field == "inventory":
            got.setdefault(field, []).append(value)
        else:
            got[field] = value
    assert got.pop("schema_version") == contract.SCHEMA_VERSION
    assert got.pop("timestamp") == "2024-05-01T12:00:00.250000Z"
    assert got == {k: v for k, v in row.items() if k != "timestamp"}


# -- storage schema ----------------------------------------------------------------------------


def schema_drift(schema: pa.Schema) -> list[str]:
    want = contract.training_sample_schema()
    if schema.equals(want, check_metadata=True):
        return []
    return [f"storage schema differs from the codec's:\n{schema}\n!=\n{want}"]


def test_the_storage_schema_is_the_codecs() -> None:
    assert schema_drift(storage_schema.sample_schema()) == []
    state = pa.schema(list(storage_schema.game_state_type()))
    assert state.equals(contract.game_state_schema())  # field for field, nullability included
    decoded = decode_game_states([json.dumps(game_state()).encode()])
    assert pa.schema(decoded).equals(contract.game_state_schema(), check_metadata=True)


def test_every_exported_schema_is_the_same_bytes() -> None:
    # storage names a layout by the hash of its schema: the codec must export one byte form,
    # metadata in key order, through the schema, array and stream capsules alike
    row = [json.dumps(game_state()).encode()]
    forms = [contract.training_sample_schema(), storage_schema.sample_schema()]
    for _ in range(20):
        d = decode_game_states(row)
        forms += [pa.schema(d), pa.record_batch(d).schema, pa.table(d).schema]
        forms.append(contract.game_state_schema())
    for schema in forms:
        assert list(schema.metadata) == sorted(schema.metadata)
    blobs = {
        s.serialize().to_pybytes() for s in forms if s.metadata[b"system0.contract"] == b"GameState"
    }
    assert len(blobs) == 1


def test_the_storage_check_bites_when_the_storage_schema_changes_alone() -> None:
    schema = storage_schema.sample_schema()
    assert schema_drift(schema.remove(2)) != []
    assert schema_drift(schema.remove_metadata()) != []
    widened = schema.set(2, pa.field("reward", pa.float32(), nullable=False))
    assert schema_drift(widened) != []


def _sample_json(row: dict[str, Any]) -> bytes:
    """A row of ``synthetic_samples`` as the TrainingSample JSON a producer would send."""

    def state(s: dict[str, Any]) -> dict[str, Any]:
        return {
            "timestamp": s["timestamp"].isoformat().replace("+00:00", "Z"),
            "champion": s["champion"],
            "position": {"x": s["position_x"], "y": s["position_y"]},
            "health": s["health"],
            "mana": s["mana"],
            "cooldowns": {k: s[f"cooldown_{k}"] for k in contract.ABILITY_SLOTS},
            "inventory": s["inventory"],
            "vision_score": s["vision_score"],
            "gold_advantage": s["gold_advantage"],
        }

    a = row["action"]
    action: dict[str, Any] = {"kind": a["kind"]}
    if a["slot"] is not None:
        action["slot"] = a["slot"]
    if a["target_x"] is not None:
        action["target"] = {"x": a["target_x"], "y": a["target_y"]}
    if a["item"] is not None:
        action["item"] = a["item"]
    doc = {
        "state": state(row["state"]),
        "action": action,
        "reward": row["reward"],
        "next_state": state(row["next_state"]) if row["next_state"] else None,
        "metadata": row["metadata"],
    }
    return json.dumps(doc).encode()


def test_synthetic_samples_are_what_the_codec_decodes() -> None:
    # every synthetic row keeps the contract, and the codec rebuilds the very same table
    table = storage_schema.synthetic_samples(3000, seed=5)
    decoded = decode_training_samples([_sample_json(r) for r in table.to_pylist()])
    assert decoded.errors == []
    assert pa.table(decoded).equals(table)
    kinds = set(table.column("action").combine_chunks().field("kind").to_pylist())
    assert kinds == set(contract.ACTION_KINDS)


# -- the simulator -----------------------------------------------------------------------------


def simulator_drift(slots: Any, record_keys: set[str]) -> list[str]:
    out = []
    if slots is not None and tuple(slots) != contract.ABILITY_SLOTS:
        out.append(f"simulator SLOTS {slots} != contract.ABILITY_SLOTS")
    want = set(contract.GAME_STATE_FIELDS) - contract.GAME_STATE_OPTIONAL
    if record_keys != want:
        out.append(f"simulator record keys {sorted(record_keys)} != contract {sorted(want)}")
    return out


def _simulator() -> tuple[Any, set[str]]:
    from system0.game import simulator

    record = simulator.MatchSimulator(seed=0).observe().states[0]
    return getattr(simulator, "SLOTS", None), set(record)


def test_the_simulator_writes_contract_records() -> None:
    slots, keys = _simulator()
    assert simulator_drift(slots, keys) == []


def test_the_simulator_check_bites_when_the_simulator_changes_alone() -> None:
    slots, keys = _simulator()
    assert simulator_drift(("q", "w", "e", "r"), keys) != []
    assert simulator_drift(slots, keys - {"mana"}) != []
    assert simulator_drift(slots, keys | {"armor"}) != []


def test_simulator_records_pass_the_codec() -> None:
    from system0.game.simulator import MatchSimulator

    rows = [
        json.dumps(s).encode() for tick in MatchSimulator(seed=3).run(ticks=40) for s in tick.states
    ]
    decoded = decode_game_states(rows)
    assert decoded.errors == [] and decoded.num_rows == len(rows)
