"""The simulator is deterministic by seed; the shipped policy imitates the scripted player."""

from __future__ import annotations

import numpy as np
import pytest

from system0.data.models import ITEM_VOCABULARY, MAX_INVENTORY
from system0.data.serialization import FEATURE_NAMES, SCALES, features_from_records
from system0.errors import ValidationError
from system0.game.heuristic import RETREAT, WARD, heuristic_actions
from system0.game.policy import load_policy, policy_weights_path
from system0.game.simulator import ACTIONS, CHAMPIONS, MatchSimulator, Tick


def _features(seed: int, ticks: int = 30) -> np.ndarray:
    return np.concatenate([t.features for t in MatchSimulator(seed).run(ticks)])


def test_same_seed_same_match_other_seed_other_match() -> None:
    a, b, c = _features(3), _features(3), _features(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (30 * len(CHAMPIONS), len(FEATURE_NAMES)) == (180, 52)


def test_records_follow_the_contract_and_the_matrix_is_the_codecs() -> None:
    ticks = list(MatchSimulator(1).run(60))
    tick = ticks[-1]
    np.testing.assert_array_equal(features_from_records(list(tick.states)), tick.features)
    s = tick.states[0]
    assert set(s) == {
        "timestamp",
        "champion",
        "position",
        "health",
        "mana",
        "cooldowns",
        "inventory",
        "vision_score",
        "gold_advantage",
    }
    assert s["timestamp"].endswith("Z") and 0 <= s["position"]["x"] <= 1
    assert all(v >= 0 for v in s["cooldowns"].values()) and s["health"] >= 0
    # the dense columns are the record's values over the codec's scales
    f = tick.features[0]
    assert f[FEATURE_NAMES.index("health")] == np.float32(s["health"] / SCALES["health"])
    assert f[FEATURE_NAMES.index("cooldown_q")] == np.float32(
        s["cooldowns"]["q"] / SCALES["cooldown"]
    )


def test_champions_buy_items_so_the_multi_hot_is_used() -> None:
    ticks = list(MatchSimulator(2).run(120))
    held = np.concatenate([t.features for t in ticks])[:, 12:]
    assert held.shape[1] == len(ITEM_VOCABULARY)
    assert held.sum(axis=1).max() <= MAX_INVENTORY
    assert held[-len(CHAMPIONS) :].sum() >= len(CHAMPIONS)  # every champion owns something
    assert (held.sum(axis=0) > 0).sum() >= 10  # many different items, not one
    for t in ticks:
        for s, row in zip(t.states, t.features, strict=True):
            hot = {ITEM_VOCABULARY[i] for i in np.flatnonzero(row[12:])}
            assert hot == set(s["inventory"])


@pytest.mark.parametrize("action", ["attack", "retreat", "farm", "ward"])
def test_a_long_one_sided_match_stays_inside_the_contract(action: str) -> None:
    # observe() decodes every tick through the codec and raises on any refused row; 1500
    # ticks of farming reach the gold cap, a few of warding the vision cap
    sim = MatchSimulator(9)
    for _ in range(1500):
        sim.observe()
        sim.step([ACTIONS.index(action)] * len(CHAMPIONS))
    tick = sim.observe()
    assert np.isfinite(tick.features).all()
    assert np.abs(tick.features[:, :12]).max() <= 10.0


def test_the_scripted_player_reads_the_documented_layout() -> None:
    tick: Tick = MatchSimulator(4).observe()
    x = tick.features.copy()
    hp = FEATURE_NAMES.index("health")
    x[:, hp] = 600 / SCALES["health"]
    assert (heuristic_actions(x) == RETREAT).all()
    x[:, hp] = 2000 / SCALES["health"]
    x[:, FEATURE_NAMES.index("mana")] = 0.0
    x[:, FEATURE_NAMES.index("vision_score")] = 15 / SCALES["vision_score"]
    ward_cols = [FEATURE_NAMES.index("item_control_ward"), FEATURE_NAMES.index("item_stealth_ward")]
    x[:, ward_cols] = 0.0
    assert not (heuristic_actions(x) == WARD).any()
    x[:, ward_cols[0]] = 1.0  # carrying a ward, it places it before vision runs out
    assert (heuristic_actions(x) == WARD).all()
    with pytest.raises(ValidationError, match="52"):
        heuristic_actions(np.zeros((2, 12), np.float32))


def test_bad_simulator_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="champions"):
        MatchSimulator(0, champions=("Nobody",))
    sim = MatchSimulator(0)
    with pytest.raises(ValueError, match="actions"):
        sim.step([len(ACTIONS)] * len(CHAMPIONS))


def test_shipped_weights_are_small_and_named_by_their_hash() -> None:
    path = policy_weights_path()
    assert path.stat().st_size < 1_000_000
    model = load_policy("numpy")
    assert path.name == f"policy-{model.introspect().content_hash[:12]}.safetensors"


def test_policy_imitates_the_scripted_player_on_unseen_matches() -> None:
    x = _features(seed=987_654, ticks=100)
    agree = (load_policy("numpy").infer(x).argmax(axis=1) == heuristic_actions(x)).mean()
    assert agree >= 0.85


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_policy_backends_agree_with_numpy(backend: str) -> None:
    pytest.importorskip(backend, reason=f"{backend} absent: pip install 'system0[{backend}]'")
    x = _features(seed=5)
    opts = {"device": "cpu"} if backend == "torch" else {}
    got = load_policy(backend, **opts).infer(x)
    np.testing.assert_allclose(got, load_policy("numpy").infer(x), rtol=1e-4, atol=1e-5)
