"""The simulator is deterministic by seed; the shipped policy imitates the scripted player."""

from __future__ import annotations

import numpy as np
import pytest

from system0.game.heuristic import heuristic_actions
from system0.game.policy import load_policy, policy_weights_path
from system0.game.simulator import ACTIONS, CHAMPIONS, MatchSimulator, feature_matrix


def _features(seed: int, ticks: int = 30) -> np.ndarray:
    return np.concatenate([t.features for t in MatchSimulator(seed).run(ticks)])


def test_same_seed_same_match_other_seed_other_match() -> None:
    a, b, c = _features(3), _features(3), _features(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (30 * len(CHAMPIONS), 12)


def test_records_follow_the_contract_fields_and_match_the_matrix() -> None:
    tick = MatchSimulator(1).observe()
    np.testing.assert_array_equal(feature_matrix(tick.states), tick.features)
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
