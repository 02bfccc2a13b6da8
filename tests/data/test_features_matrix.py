"""The feature matrix: documented layout, scaling and padding, from any Arrow batch."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pyarrow as pa
import pytest
from conftest import dumps, game_state, sample

from system0.data.models import ABILITY_SLOTS, ITEM_VOCABULARY, GameState
from system0.data.serialization import (
    FEATURE_NAMES,
    PAD_VALUE,
    decode_game_states,
    decode_training_samples,
    features,
    features_from_records,
    features_torch,
)
from system0.errors import ValidationError


def reference(rows: list[dict[str, object]]) -> np.ndarray:
    """The documented layout, written out in plain Python."""
    out = np.zeros((len(rows), 12 + len(ITEM_VOCABULARY)), dtype=np.float32)
    for i, r in enumerate(rows):
        pos, cds = r["position"], r["cooldowns"]
        assert isinstance(pos, dict) and isinstance(cds, dict)
        dense = [pos["x"], pos["y"], r["health"] / 5000, r["mana"] / 5000]  # type: ignore[operator]
        dense += [cds[s] / 300 for s in ABILITY_SLOTS]
        dense += [r["vision_score"] / 100, r["gold_advantage"] / 10000]  # type: ignore[operator]
        out[i, :12] = np.array(dense, dtype=np.float64).astype(np.float32)
        for item in r["inventory"]:  # type: ignore[attr-defined]
            out[i, 12 + ITEM_VOCABULARY.index(item)] = 1.0
    return out


ROWS = [
    game_state(),
    game_state(inventory=[], health=0.0, gold_advantage=12345.678),
    game_state(inventory=list(ITEM_VOCABULARY[-6:]), cooldowns=dict.fromkeys("qwerdf", 7.25)),
]


def test_matrix_matches_the_documented_layout() -> None:
    m = features(decode_game_states(dumps(ROWS)))
    assert m.dtype == np.float32 and m.shape == (3, len(FEATURE_NAMES))
    assert FEATURE_NAMES[:4] == ("position_x", "position_y", "health", "mana")
    assert FEATURE_NAMES[4:10] == tuple(f"cooldown_{s}" for s in ABILITY_SLOTS)
    np.testing.assert_array_equal(m, reference(ROWS))


def test_padding_rows_hold_the_pad_value() -> None:
    m = features(decode_game_states(dumps(ROWS)), pad_rows_to=8)
    assert m.shape == (8, len(FEATURE_NAMES))
    assert np.all(m[3:] == PAD_VALUE)
    np.testing.assert_array_equal(m[:3], reference(ROWS))
    with pytest.raises(ValueError, match="pad_rows_to"):
        features(decode_game_states(dumps(ROWS)), pad_rows_to=2)


def test_pyarrow_batches_and_other_dictionaries_are_accepted() -> None:
    rb = pa.record_batch(decode_game_states(dumps(ROWS)))
    np.testing.assert_array_equal(features(rb), reference(ROWS))
    # a batch rebuilt by pyarrow with its own (smaller) dictionary maps back to the vocabulary
    inv = pa.array([r["inventory"] for r in ROWS], pa.list_(pa.string()))
    items = inv.flatten().dictionary_encode()
    keys = items.indices.cast(pa.uint16())
    dict_items = pa.DictionaryArray.from_arrays(keys, items.dictionary)
    rebuilt = pa.ListArray.from_arrays(inv.offsets, dict_items)
    other = rb.set_column(rb.schema.get_field_index("inventory"), "inventory", rebuilt)
    np.testing.assert_array_equal(features(other), reference(ROWS))


def test_training_samples_featurize_their_state() -> None:
    d = decode_training_samples(json.dumps([sample(), sample()]).encode())
    np.testing.assert_array_equal(features(d), reference([game_state(), game_state()]))


def test_wrong_batches_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="no column 'position_x'"):
        features(pa.record_batch({"a": [1.0]}))
    with pytest.raises(ValueError, match="__arrow_c_array__"):
        features([1, 2, 3])


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch is not installed (system0[torch])"
)
def test_torch_tensor_shares_the_buffer() -> None:
    t = features_torch(decode_game_states(dumps(ROWS)))
    assert str(t.dtype) == "torch.float32" and tuple(t.shape) == (3, len(FEATURE_NAMES))
    np.testing.assert_array_equal(t.numpy(), reference(ROWS))


def test_records_featurize_through_the_codec() -> None:
    models = [GameState.model_validate(r) for r in ROWS]
    np.testing.assert_array_equal(features_from_records(models), reference(ROWS))
    np.testing.assert_array_equal(features_from_records(ROWS), reference(ROWS))
    with pytest.raises(ValidationError, match="health"):
        features_from_records([game_state(health=-1.0)])
