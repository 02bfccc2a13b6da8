"""Variants of the shipped policy broken on purpose, for the gate's tests.

* ``slow``: the shipped weights behind a model that sleeps on every call (perf must fail);
* ``fragile``: the shipped network plus a sawtooth over health: a few hundred extra ReLUs make
  the policy switch to ``retreat`` and back every few dozen hit points, the overfit a robustness
  gate exists to catch (adversarial must fail);
* ``golden_broken``: one output bias moved, so the answers drift past the golden tolerance.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from system0.data.serialization import FEATURE_NAMES
from system0.game.policy import load_policy
from system0.interfaces.model_interface import (
    AIModelInterface,
    MLPWeights,
    ModelInfo,
    NumpyModelInterface,
)

RETREAT = 1


class SlowModel(AIModelInterface):
    """The shipped policy, ``delay`` seconds slower per call."""

    backend = "slow"

    def __init__(self, inner: NumpyModelInterface, delay: float) -> None:
        super().__init__(name="slow-policy")
        self.inner, self.delay = inner, delay

    @property
    def mlp(self) -> MLPWeights:
        return self.inner.mlp

    def load(self, source: Any) -> Self:
        self.inner.load(source)
        return self

    def introspect(self) -> ModelInfo:
        return self.inner.introspect()

    def _forward(self, x: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        time.sleep(self.delay)
        return np.asarray(self.inner.infer(x))


def shipped_mlp() -> MLPWeights:
    model = load_policy()
    assert isinstance(model, NumpyModelInterface)
    return model.mlp


def sawtooth_mlp(base: MLPWeights, period_hp: float = 40.0, gain: float = 30.0) -> MLPWeights:
    """``base`` plus gain * triangle(health) on the retreat logit; the triangle has period
    ``period_hp`` hit points over the health the model sees (its normalization clips)."""
    col = FEATURE_NAMES.index("health")
    period = period_hp / 5000.0  # health feature = hp / 5000
    mean, std, clip = float(base.mean[col]), float(base.std[col]), base.clip
    top = mean + clip * std
    knots = np.arange(0.0, top, period / 2)
    n = len(knots)
    # layer 0: relu(x_health - knot) from the normalized input z: x = z * std + mean
    w0 = np.zeros((n, base.in_features), np.float32)
    w0[:, col] = std
    b0 = (mean - knots).astype(np.float32)
    # layer 1: the triangle, sum of ramps whose slopes alternate +2/period, -2/period
    slopes = np.where(np.arange(n) % 2 == 0, 2.0 / period, -2.0 / period)
    coef = np.diff(np.concatenate([[0.0], slopes])).astype(np.float32)
    h1 = base.weights[1].shape[0]
    w1 = np.zeros((h1 + 1, base.weights[0].shape[0] + n), np.float32)
    w1[:h1, : base.weights[0].shape[0]] = base.weights[1]
    w1[h1, base.weights[0].shape[0] :] = coef
    b1 = np.concatenate([base.biases[1], [0.0]]).astype(np.float32)
    w2 = np.concatenate([base.weights[2], np.zeros((base.out_features, 1), np.float32)], axis=1)
    w2[RETREAT, -1] = gain
    assert len(base.weights) == 3, "the sawtooth is written for the shipped two-hidden-layer MLP"
    return dataclasses.replace(
        base,
        weights=(np.concatenate([base.weights[0], w0]), w1, w2),
        biases=(np.concatenate([base.biases[0], b0]).astype(np.float32), b1, base.biases[2]),
    )


def moved_bias(base: MLPWeights, action: int = 6, by: float = 0.4) -> MLPWeights:
    b = base.biases[-1].copy()
    b[action] += by
    return dataclasses.replace(base, biases=(*base.biases[:-1], b))
