"""Storage takes the codec's output as it comes: a DecodedBatch (Arrow PyCapsule) from
``decode_training_samples``, or pydantic ``TrainingSample`` objects, which go through the codec.
Runs once ``system0.data.serialization`` is part of the build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from system0.data.storage import ScalableStorage


def _state(health: float) -> dict[str, Any]:
    return {
        "timestamp": "2024-05-01T12:00:00.250Z",
        "champion": "Ahri",
        "position": {"x": 0.5, "y": 0.25},
        "health": health,
        "mana": 300.5,
        "cooldowns": {"q": 0, "w": 1.5, "e": 0, "r": 80, "d": 0, "f": 300},
        "inventory": ["boots"],
        "vision_score": 12,
        "gold_advantage": -350.0,
    }


def _rows(n: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "state": _state(500.0 + i),
                "action": {"kind": "cast", "slot": "q", "target": {"x": 0.1, "y": 0.9}},
                "reward": float(i),
                "next_state": _state(400.0 + i),
                "metadata": {"match_id": f"EUW-{i % 3}", "step": i, "source": "replay"},
            }
        ).encode()
        for i in range(n)
    ]


def test_a_decoded_batch_is_stored_and_read_back(tmp_path: Path) -> None:
    serialization = pytest.importorskip(
        "system0.data.serialization", reason="the data codec is not merged into this build"
    )
    decoded = serialization.decode_training_samples(_rows(50))
    expected = pa.Table.from_batches([pa.record_batch(decoded)])
    with ScalableStorage(tmp_path / "r") as s:
        s.commit(decoded)
        assert s.read().equals(expected)
        a = s.reader(seed=1, batch_size=16).digest()
        assert a == s.reader(seed=1, batch_size=16).digest()


def test_pydantic_samples_go_through_the_codec(tmp_path: Path) -> None:
    models = pytest.importorskip(
        "system0.data.models", reason="the data contracts are not merged into this build"
    )
    serialization = pytest.importorskip("system0.data.serialization")
    rows = _rows(20)
    samples = [models.TrainingSample.model_validate_json(r) for r in rows]
    with ScalableStorage(tmp_path / "r") as s:
        s.commit(samples)
        direct = pa.Table.from_batches(
            [pa.record_batch(serialization.decode_training_samples(rows))]
        )
        assert s.read().equals(direct)


def test_the_synthetic_samples_have_the_codecs_exact_schema() -> None:
    serialization = pytest.importorskip(
        "system0.data.serialization", reason="the data codec is not merged into this build"
    )
    from system0.data.storage.schema import sample_schema, synthetic_samples

    real = pa.record_batch(serialization.decode_training_samples(_rows(2))).schema
    assert real.equals(sample_schema(), check_metadata=True)
    assert synthetic_samples(3).schema.equals(real, check_metadata=True)
