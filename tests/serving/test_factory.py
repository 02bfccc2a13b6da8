"""PolicyEngineFactory: a picklable recipe that builds the same engine in any process."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from system0.game.policy import load_policy
from system0.interfaces.inference_engine import InvalidRequest
from system0.interfaces.model_interface import NumpyModelInterface, save_mlp
from system0.serving.factory import PolicyEngineFactory

from .scale_support import states


def test_it_pickles_and_builds_an_engine_that_serves_game_states(tmp_path: Path) -> None:
    factory = pickle.loads(pickle.dumps(PolicyEngineFactory(max_batch=4, max_wait=0.0)))
    tick = states(3)
    with factory("factory-test#0") as engine:
        assert engine.name == "factory-test#0" and engine.max_batch == 4
        shipped = [f.result(5) for f in engine.submit_many(tick, 5.0)]
        with pytest.raises(InvalidRequest):
            engine.submit({**tick[0], "health": -1.0}, 1.0)
    source = load_policy("numpy")
    assert isinstance(source, NumpyModelInterface)
    path = save_mlp(source.mlp, tmp_path)
    with PolicyEngineFactory(weights=path)("factory-file#0") as engine:
        from_file = [engine.infer(s, 5.0) for s in tick]
    for a, b in zip(shipped, from_file, strict=True):
        assert a.action == b.action  # batched and single rows differ in the last bits only
        np.testing.assert_allclose(a.outputs, b.outputs, rtol=1e-4, atol=1e-9)


def test_bad_recipes_are_refused_before_any_replica_is_built(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        PolicyEngineFactory(backend="onnx")
    with pytest.raises(FileNotFoundError, match="no weights file"):
        PolicyEngineFactory(weights=str(tmp_path / "missing.safetensors"))
