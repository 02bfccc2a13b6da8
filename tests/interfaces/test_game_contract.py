"""GameState requests that break the contract are refused with the codec's reason codes,
before the model; a tick given to submit_many is validated in one Rust call."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest

import system0.game.contract as contract
from system0.data.models import GameState
from system0.data.serialization import decode_game_states, features
from system0.game.contract import N_FEATURES, check_state, state_validator
from system0.game.heuristic import heuristic_probabilities
from system0.game.simulator import MatchSimulator
from system0.interfaces.inference_engine import BatchValidator, InferenceEngine, InvalidRequest
from system0.interfaces.model_interface import MLPWeights, NumpyModelInterface


def _state() -> dict[str, Any]:
    return copy.deepcopy(MatchSimulator(3).observe().states[0])


def _model() -> NumpyModelInterface:
    """A small seeded MLP over the codec's feature layout (the demo policy's shape)."""
    rng = np.random.default_rng(0)
    w0 = (rng.standard_normal((16, N_FEATURES)) * 0.1).astype(np.float32)
    w1 = (rng.standard_normal((8, 16)) * 0.1).astype(np.float32)
    mlp = MLPWeights(
        weights=(w0, w1),
        biases=(np.zeros(16, np.float32), np.zeros(8, np.float32)),
        mean=np.zeros(N_FEATURES, np.float32),
        std=np.ones(N_FEATURES, np.float32),
        clip=5.0,
    )
    return NumpyModelInterface(mlp, name="contract-test")


def test_a_valid_record_gives_the_codecs_feature_row() -> None:
    state = _state()
    want = features(decode_game_states(json.dumps([state]).encode()))[0]
    validate = state_validator()
    for form in (state, GameState.model_validate(state), json.dumps(state).encode()):
        np.testing.assert_array_equal(validate(form), want)
    assert check_state(state) == []
    assert isinstance(validate, BatchValidator)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda s: s.pop("health"), "missing:health"),
        (lambda s: s.update(speed=3), "extra_forbidden:speed"),
        (lambda s: s["position"].update(x=1.5), "less_than_equal:position.x"),
        (lambda s: s.update(mana=float("nan")), "finite_number:mana"),
        (lambda s: s.update(health=-1.0), "greater_than_equal:health"),
        (lambda s: s["cooldowns"].update(r="soon"), "float_type:cooldowns.r"),
        (lambda s: s.update(vision_score=True), "float_type:vision_score"),
        (lambda s: s.update(inventory=["boots", "excalibur"]), "unknown_item:inventory.1"),
    ],
)
def test_each_broken_rule_has_the_codecs_reason_code(mutate: Any, reason: str) -> None:
    state = _state()
    mutate(state)
    with pytest.raises(InvalidRequest) as info:
        state_validator()(state)
    assert reason in info.value.reasons
    assert reason in str(info.value)


def test_every_broken_rule_is_reported_at_once() -> None:
    state = _state()
    state.pop("mana")
    state["position"]["y"] = -0.1
    assert set(check_state(state)) == {"missing:mana", "greater_than_equal:position.y"}
    assert check_state(b"{") == ["json_invalid"]  # a root-level reason is its code alone


def test_a_raw_feature_row_is_still_a_request() -> None:
    validate = state_validator()
    row = np.linspace(0, 1, N_FEATURES, dtype=np.float32)
    np.testing.assert_array_equal(validate(list(row)), row)
    for bad, reason in (
        ([1.0, 2.0], "shape"),
        ([float("inf")] * N_FEATURES, "non_finite"),
        ([object()] * N_FEATURES, "not_numeric"),
    ):
        with pytest.raises(InvalidRequest) as info:
            validate(bad)
        assert info.value.reasons == (reason,)


def test_validate_many_names_the_first_refused_request() -> None:
    validate = state_validator()
    good, bad = _state(), _state()
    bad["health"] = -5.0
    row = np.zeros(N_FEATURES, np.float32)
    x = validate.validate_many([good, row, json.dumps(good).encode()])
    assert x.shape == (3, N_FEATURES)
    np.testing.assert_array_equal(x[0], x[2])
    np.testing.assert_array_equal(x[1], row)
    for tick, index in (([good, bad, bad], 1), ([good, [1.0], bad], 1), ([good, row, bad], 2)):
        with pytest.raises(InvalidRequest) as info:
            validate.validate_many(tick)
        assert info.value.index == index and str(info.value).startswith(f"request {index}")
    with pytest.raises(InvalidRequest, match=r"2 of 3 refused") as info:
        validate.validate_many([good, bad, bad])
    assert info.value.reasons == ("greater_than_equal:health",)


def test_the_engine_refuses_bad_records_before_the_model() -> None:
    model = _model()
    with InferenceEngine(
        model, validator=state_validator(), fallback=heuristic_probabilities
    ) as eng:
        bad = _state()
        bad["health"] = -5.0
        with pytest.raises(InvalidRequest) as info:
            eng.submit(bad, budget=1.0)
        assert info.value.reasons == ("greater_than_equal:health",)
        assert model.monitoring.calls == 0
        r = eng.infer(_state(), budget=1.0)
        assert not r.fallback and r.outputs.shape == (8,)
    assert eng.stats.rejected_invalid == 1


def test_submit_many_decodes_a_tick_in_one_rust_call(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = contract.featurize_requests

    def counting(requests: Any, **kw: Any) -> Any:
        calls.append(len(requests))
        return real(requests, **kw)

    monkeypatch.setattr(contract, "featurize_requests", counting)
    tick = MatchSimulator(5).observe().states
    with InferenceEngine(_model(), validator=state_validator(), max_wait=0.0) as eng:
        results = [f.result(5) for f in eng.submit_many(list(tick), budget=5.0)]
        assert calls == [len(tick)]
        one = [eng.infer(s, budget=5.0) for s in tick]
        broken = [*tick[:2], {**tick[2], "mana": -1.0}]
        with pytest.raises(InvalidRequest) as info:
            eng.submit_many(broken, budget=5.0)
        assert info.value.index == 2 and info.value.reasons == ("greater_than_equal:mana",)
    for a, b in zip(results, one, strict=True):
        np.testing.assert_allclose(a.outputs, b.outputs, rtol=1e-6)
    assert eng.stats.rejected_invalid == 1
