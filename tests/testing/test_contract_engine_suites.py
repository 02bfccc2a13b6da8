"""The contract and engine suites judge the model, not only the engine: a model that answers
NaN on the contract's legal extremes, or answers another model's outputs, fails them."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from gate_variants import shipped_mlp

from system0.data import contract
from system0.interfaces.model_interface import NumpyModelInterface
from system0.testing.contract_suite import contract_corpus, contract_suite
from system0.testing.engine_suite import engine_suite


class NanOnExtremes(NumpyModelInterface):
    """Healthy on ordinary states; NaN when any dense feature sits far out (health 100000)."""

    def _forward(self, x: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        out = np.array(super()._forward(x))
        out[np.abs(x[:, :12]).max(axis=1) > 10] = np.nan
        return out


class Shuffled(NumpyModelInterface):
    """Answers with its rows in the wrong order: each state gets another state's answer."""

    def _forward(self, x: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        return np.array(super()._forward(x))[::-1]


def test_the_corpus_covers_every_bounded_leaf_and_every_required_field() -> None:
    corpus = contract_corpus()
    assert corpus == contract_corpus()  # seeded: the same cases every run
    labels = " ".join(c.label for c in corpus)
    for path in contract.RANGES:
        assert f"{path}=" in labels
    for field in set(contract.GAME_STATE_FIELDS) - contract.GAME_STATE_OPTIONAL:
        assert f"{field} missing" in labels
    assert sum(c.expect is None for c in corpus) > 40  # the legal extremes, two encodings


def test_a_model_that_breaks_on_legal_extremes_fails_the_contract_suite() -> None:
    result = contract_suite(NanOnExtremes(shipped_mlp()))
    failed = {c.name: c.detail for c in result.failed_checks}
    assert list(failed) == ["valid extremes answered"]
    assert "cooldowns.d=3600.0 (in range)" in failed["valid extremes answered"]
    assert "NonFiniteOutput" in failed["valid extremes answered"]


def test_a_model_that_misroutes_answers_fails_the_round_trip() -> None:
    result = engine_suite(Shuffled(shipped_mlp()))
    failed = {c.name: c.detail for c in result.failed_checks}
    assert "round trip" in failed and "DIFFER" in failed["round trip"]
