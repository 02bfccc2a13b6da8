"""The engine's recorder hook and the FlightRecorder: once per batch and per inline call, after
the answers are settled, with the matrix as the model saw it; never in the way of an answer."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from system0.errors import ValidationError
from system0.game.policy import load_policy
from system0.interfaces.flight_recorder import FlightRecorder, batch_digest
from system0.interfaces.inference_engine import DecisionBatch, InferenceEngine
from system0.interfaces.model_interface import NumpyModelInterface, load_mlp


class Failing(NumpyModelInterface):
    def _forward(self, x: Any) -> Any:
        raise RuntimeError("model down")


def _rows(n: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, width)).astype(np.float32)


def _fallback(x: np.ndarray) -> np.ndarray:
    out = np.zeros((len(x), 8), np.float32)
    out[:, 1] = 1.0
    return out


def test_one_recording_per_batch_with_its_padding() -> None:
    model = load_policy("numpy")
    seen: list[DecisionBatch] = []
    rows = _rows(5, model.num_features)
    with InferenceEngine(
        model, max_batch=8, max_wait=0.05, buckets=(1, 4, 8), recorder=seen.append
    ) as eng:
        results = [f.result(5) for f in eng.submit_many(rows, 10.0)]
    assert len(seen) == 1
    b = seen[0]
    assert b.rows == 5 and b.padded == 8 and not b.inline and not b.fallback
    assert b.features.shape == (8, model.num_features)
    np.testing.assert_array_equal(b.features[:5], rows)
    assert not b.features[5:].any()  # the padding rows the model saw
    assert b.outputs.shape == (5, 8)
    np.testing.assert_array_equal(b.actions, b.outputs.argmax(axis=1))
    assert [r.row for r in results] == [0, 1, 2, 3, 4]
    assert {r.batch_id for r in results} == {b.batch_id}
    for r in results:
        np.testing.assert_array_equal(r.outputs, b.outputs[r.row])
        assert r.action == b.actions[r.row]
    # the model on the recorded matrix gives the recorded answer, bit for bit
    again = np.asarray(model.infer(b.features))[:5]
    assert again.tobytes() == b.outputs.tobytes()


def test_an_inline_call_is_recorded_once() -> None:
    model = load_policy("numpy")
    seen: list[DecisionBatch] = []
    with InferenceEngine(model, recorder=seen.append) as eng:
        r = eng.infer(_rows(1, model.num_features)[0], 10.0)
    assert len(seen) == 1 and seen[0].inline and seen[0].rows == 1
    assert seen[0].batch_id == r.batch_id and r.row == 0
    assert int(seen[0].actions[0]) == r.action


def test_a_failing_recorder_never_reaches_a_request() -> None:
    model = load_policy("numpy")

    def broken(_: DecisionBatch) -> None:
        raise OSError("disk full")

    with InferenceEngine(model, max_wait=0.01, recorder=broken) as eng:
        results = [f.result(5) for f in eng.submit_many(_rows(3, model.num_features), 10.0)]
        r = eng.infer(_rows(1, model.num_features)[0], 10.0)
    assert len(results) == 3 and r.outputs.shape == (8,)
    assert eng.stats.recorder_errors == 2


def test_fallback_batches_are_recorded_with_their_flag_and_reason() -> None:
    from system0.game.policy import policy_weights_path

    model = Failing().load(load_mlp(policy_weights_path()))
    seen: list[DecisionBatch] = []
    with InferenceEngine(model, max_wait=0.01, fallback=_fallback, recorder=seen.append) as eng:
        [f.result(5) for f in eng.submit_many(_rows(2, model.num_features), 10.0)]
    assert seen and all(b.fallback for b in seen)
    assert "model down" in (seen[0].reason or "")
    np.testing.assert_array_equal(seen[0].outputs, _fallback(seen[0].features[: seen[0].rows]))


def test_recorder_keeps_copies_and_builds_table_and_digests() -> None:
    rec = FlightRecorder()
    x = _rows(4, 6)
    out = np.full((3, 2), 0.5, np.float32)
    batch = DecisionBatch(7, x, 3, out, np.array([0, 1, 0]), False, None, False, 10)
    rec(batch)
    x[:] = 9.0  # the engine's or the model's buffer reused: the recording does not change
    (kept,) = rec.batches
    assert float(kept.features.max()) < 1.0 and kept.padded == 4
    table = rec.table(config_hash="sha256:c", model_hash="m", context={(7, 1): (0, 5, "Lux")})
    assert table.num_rows == 3
    assert table.column("row").to_pylist() == [0, 1, 2]
    assert table.column("champion").to_pylist() == [None, "Lux", None]
    assert table.schema.field("features").type.list_size == 6
    (digest,) = rec.digests()
    assert digest["batch_id"] == 7 and digest["padded"] == 4 and digest["actions"] == [0, 1, 0]
    assert digest["features_sha256"] == hashlib.sha256(kept.features.tobytes()).hexdigest()
    assert digest == {**digest, **batch_digest(kept.features, kept.outputs, kept.actions)}


def test_sampling_keeps_a_stable_share_of_whole_batches() -> None:
    a = FlightRecorder("sampled", rate=0.25, seed=3)
    b = FlightRecorder("sampled", rate=0.25, seed=3)
    kept = [i for i in range(1, 4001) if a.keeps(i)]
    assert kept == [i for i in range(1, 4001) if b.keeps(i)]
    assert 800 < len(kept) < 1200
    other = [i for i in range(1, 4001) if FlightRecorder("sampled", rate=0.25, seed=4).keeps(i)]
    assert other != kept
    assert all(FlightRecorder().keeps(i) for i in range(1, 100))
    for bad in (0.0, 1.5, -1.0):
        with pytest.raises(ValidationError, match="rate"):
            FlightRecorder("sampled", rate=bad)
    with pytest.raises(ValidationError, match="recording must be"):
        FlightRecorder("everything")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="no decision"):
        FlightRecorder().table(config_hash="c", model_hash="m")
