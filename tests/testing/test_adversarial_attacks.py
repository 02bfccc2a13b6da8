"""The attacks themselves: the analytic gradient is the true one, the attacks keep inside the
contract and their ball, and PGD is at least as strong as FGSM."""

from __future__ import annotations

import numpy as np
import pytest
from gate_variants import sawtooth_mlp, shipped_mlp

from system0.data.contract import RANGES
from system0.data.serialization import DENSE_SCALES, FEATURE_NAMES, featurize_requests
from system0.interfaces.model_interface import MLPWeights, NumpyModelInterface
from system0.testing.adversarial import (
    EPSILONS,
    contract_box,
    fgsm,
    loss_gradient,
    normalized_units,
    perturbable,
    pgd,
)
from system0.testing.states import feature_rows, match_states


def cross_entropy(mlp: MLPWeights, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The loss in float64, written out independently of the suite's code."""
    h = np.clip((x - mlp.mean) / mlp.std, -mlp.clip, mlp.clip)
    for i, (w, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
        h = h @ w.T.astype(np.float64) + b
        if i < len(mlp.weights) - 1:
            h = np.maximum(h, 0.0)
    h -= h.max(axis=1, keepdims=True)
    logp = h - np.log(np.exp(h).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(x)), labels]


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return feature_rows(match_states(64, seed=3))


def test_the_analytic_gradient_matches_finite_differences(rows: np.ndarray) -> None:
    mlp = shipped_mlp()
    labels = NumpyModelInterface(mlp).infer(rows).argmax(axis=1)
    grad = loss_gradient(mlp, rows, labels)
    h = 1e-6
    for col in range(len(DENSE_SCALES)):
        up, down = rows.astype(np.float64), rows.astype(np.float64)
        up[:, col] += h
        down[:, col] -= h
        numeric = (cross_entropy(mlp, up, labels) - cross_entropy(mlp, down, labels)) / (2 * h)
        # the network is piecewise linear: only a row within h of a ReLU kink may differ
        close = np.isclose(grad[:, col], numeric, rtol=1e-4, atol=1e-6)
        assert close.mean() >= 0.97, (FEATURE_NAMES[col], grad[~close, col], numeric[~close])


def test_the_box_is_the_contract_in_feature_units() -> None:
    lo, hi = contract_box()
    health = FEATURE_NAMES.index("health")
    assert (lo[health], hi[health]) == (0.0, RANGES["health"][1] / 5000.0)
    gold = FEATURE_NAMES.index("gold_advantage")
    assert lo[gold] == pytest.approx(RANGES["gold_advantage"][0] / 10000.0)
    assert perturbable()[len(DENSE_SCALES) :].sum() == 0


@pytest.mark.parametrize("eps", EPSILONS)
def test_adversarial_rows_stay_valid_states(rows: np.ndarray, eps: float) -> None:
    mlp = shipped_mlp()
    labels = NumpyModelInterface(mlp).infer(rows).argmax(axis=1)
    unit = normalized_units(rows)
    lo, hi = contract_box()
    for adv in (fgsm(mlp, rows, labels, eps, unit), pgd(mlp, rows, labels, eps, unit)):
        moved = np.abs(adv.astype(np.float64) - rows)
        assert np.all(moved <= eps * unit * (1 + 1e-5) + 1e-7)
        assert np.all((adv >= lo) & (adv <= hi))
        assert np.all(adv[:, len(DENSE_SCALES) :] == rows[:, len(DENSE_SCALES) :])
    # and the contract agrees: a state rebuilt from an adversarial row is admitted
    row = fgsm(mlp, rows, labels, eps, unit)[0, : len(DENSE_SCALES)]
    names = FEATURE_NAMES[: len(DENSE_SCALES)]
    value = {n: float(v) * s for n, v, s in zip(names, row, DENSE_SCALES, strict=True)}
    state = {
        "timestamp": "2024-05-01T12:00:00Z",
        "champion": "Ahri",
        "position": {"x": value["position_x"], "y": value["position_y"]},
        "health": value["health"],
        "mana": value["mana"],
        "cooldowns": {s: value[f"cooldown_{s}"] for s in "qwerdf"},
        "inventory": [],
        "vision_score": value["vision_score"],
        "gold_advantage": value["gold_advantage"],
    }
    assert featurize_requests([state]).errors == []


def test_pgd_finds_at_least_what_fgsm_finds(rows: np.ndarray) -> None:
    mlp = sawtooth_mlp(shipped_mlp())  # a model with much to find
    model = NumpyModelInterface(mlp)
    labels = model.infer(rows).argmax(axis=1)
    unit = normalized_units(rows)
    for eps in EPSILONS:
        f = (model.infer(fgsm(mlp, rows, labels, eps, unit)).argmax(axis=1) != labels).sum()
        p = (model.infer(pgd(mlp, rows, labels, eps, unit)).argmax(axis=1) != labels).sum()
        assert p >= f, (eps, p, f)
    # a zero budget moves nothing
    assert np.array_equal(fgsm(mlp, rows, labels, 0.0, unit), rows)
