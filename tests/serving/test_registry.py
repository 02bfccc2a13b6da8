"""The model registry: versions pinned by content hash, refused when tampered or unknown."""

from __future__ import annotations

import json
import pathlib
import threading

import numpy as np
import pytest

from system0.core.config import AIConfig
from system0.errors import Error, IntegrityError, NotFound, ValidationError
from system0.game.policy import policy_weights_path
from system0.interfaces.model_interface import load_mlp, save_mlp
from system0.serving.engine_io import state_engine
from system0.serving.registry import ModelRegistry, warm_up

from .conftest import biased_mlp


def test_publish_pins_weights_and_config(registry: ModelRegistry) -> None:
    cfg = AIConfig()
    v = registry.publish("policy", policy_weights_path(), cfg)
    assert v.version == "v1"
    assert v.content_hash == load_mlp(policy_weights_path()).content_hash()
    assert v.config_hash == cfg.content_hash
    doc = json.loads((v.path / "version.json").read_text())
    assert set(doc) == {"name", "version", "content_hash", "config_hash", "created"}
    assert registry.get("policy", "v1") == v
    assert v.config() == cfg
    model = v.load()
    assert model.introspect().content_hash == v.content_hash


def test_same_artifact_keeps_its_version_and_new_ones_count_up(
    registry: ModelRegistry, weights_dir: pathlib.Path
) -> None:
    first = registry.publish("policy", policy_weights_path())
    assert registry.publish("policy", policy_weights_path()).version == first.version
    # the same weights under another config are another artifact
    assert registry.publish("policy", policy_weights_path(), AIConfig()).version == "v2"
    other = save_mlp(biased_mlp(3), weights_dir)
    assert registry.publish("policy", other).version == "v3"
    assert [v.version for v in registry.versions("policy")] == ["v1", "v2", "v3"]
    assert registry.latest("policy").version == "v3"
    assert registry.names() == ["policy"]
    # nothing half-written is left behind
    assert not [p for p in (registry.root / "policy").iterdir() if p.name.startswith(".")]


def test_tampered_weights_are_refused_naming_both_hashes(
    registry: ModelRegistry, weights_dir: pathlib.Path
) -> None:
    v = registry.publish("policy", policy_weights_path())
    forged = save_mlp(biased_mlp(1), weights_dir)
    (v.path / "weights.safetensors").write_bytes(pathlib.Path(forged).read_bytes())
    found = biased_mlp(1).content_hash()
    with pytest.raises(
        IntegrityError, match=f"expected content hash {v.content_hash}, found {found}"
    ):
        registry.get("policy", "v1").load()


def test_corrupt_weights_file_is_an_integrity_error(registry: ModelRegistry) -> None:
    v = registry.publish("policy", policy_weights_path())
    data = bytearray((v.path / "weights.safetensors").read_bytes())
    data[:8] = b"\xff" * 8  # the header length: the file no longer parses
    (v.path / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=v.content_hash):
        v.load()


def test_tampered_config_is_refused(registry: ModelRegistry) -> None:
    v = registry.publish("policy", policy_weights_path(), AIConfig())
    doc = json.loads((v.path / "config.json").read_bytes())
    doc["inference"]["max_batch"] = int(doc["inference"]["max_batch"]) + 1
    (v.path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match=f"expected config hash {v.config_hash}"):
        v.load()


def test_rewritten_version_json_is_caught_by_an_outside_pin(registry: ModelRegistry) -> None:
    v = registry.publish("policy", policy_weights_path())
    pin = v.content_hash
    doc = json.loads((v.path / "version.json").read_text())
    doc["content_hash"] = "0" * 64
    (v.path / "version.json").write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match=f"but {pin} was expected"):
        registry.get("policy", "v1").load(expected_hash=pin)
    with pytest.raises(IntegrityError, match="expected content hash 0000"):
        registry.get("policy", "v1").load()


def test_moved_version_folder_is_refused(registry: ModelRegistry) -> None:
    v = registry.publish("policy", policy_weights_path())
    v.path.rename(v.path.with_name("v7"))
    with pytest.raises(IntegrityError, match="moved or copied by hand"):
        registry.get("policy", "v7")


def test_unknown_version_and_bad_names(registry: ModelRegistry) -> None:
    registry.publish("policy", policy_weights_path())
    with pytest.raises(NotFound, match=r"no version 'v9'.*versions: v1"):
        registry.get("policy", "v9")
    with pytest.raises(NotFound, match="no version"):
        registry.get("other", "v1")
    for bad in ("../etc", "", "a/b", "x" * 65):
        with pytest.raises(ValidationError):
            registry.get(bad, "v1")
    with pytest.raises(NotFound, match="cannot read"):
        registry.publish("policy", registry.root / "missing.safetensors")


def test_load_is_shared_until_unload(registry: ModelRegistry) -> None:
    v = registry.publish("policy", policy_weights_path())
    a = registry.load("policy", "v1")
    assert registry.load("policy", "v1") is a
    assert registry.loaded() == [("policy", "v1")]
    with pytest.raises(IntegrityError):
        registry.load("policy", "v1", expected_hash="f" * 64)
    assert registry.unload("policy", "v1") and not registry.unload("policy", "v1")
    assert registry.load("policy", "v1", expected_hash=v.content_hash) is not a


def test_concurrent_publishers_get_distinct_versions(
    registry: ModelRegistry, weights_dir: pathlib.Path
) -> None:
    paths = [save_mlp(biased_mlp(i % 8, seed=i), weights_dir, prefix=f"m{i}") for i in range(6)]
    got: list[str] = []
    lock = threading.Lock()

    def pub(p: str) -> None:
        v = registry.publish("policy", p)
        with lock:
            got.append(v.version)

    threads = [threading.Thread(target=pub, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got, key=lambda s: int(s[1:])) == [f"v{i}" for i in range(1, 7)]
    hashes = {v.content_hash for v in registry.versions("policy")}
    assert len(hashes) == 6


def test_warm_up_runs_every_bucket_through_the_real_path(registry: ModelRegistry) -> None:
    model = registry.publish("policy", policy_weights_path()).load()
    with state_engine(model, max_batch=16, buckets=(1, 4, 16), max_wait=0.01) as engine:
        rows = warm_up(engine)
        assert rows == 1 + 4 + 16
        padded = {b.padded for b in engine.batches}
        assert {1, 4, 16} <= padded
        assert engine.stats.completed == rows and engine.stats.fallbacks == 0


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_warm_up_fails_when_the_model_cannot_answer(
    registry: ModelRegistry, weights_dir: pathlib.Path
) -> None:
    mlp = biased_mlp(0)
    broken = type(mlp)(
        (np.full_like(mlp.weights[0], np.inf), mlp.weights[1]),
        mlp.biases,
        mlp.mean,
        mlp.std,
        mlp.clip,
    )
    v = registry.publish("policy", save_mlp(broken, weights_dir))
    with (
        state_engine(v.load(), max_batch=4) as engine,
        pytest.raises(Error, match="the model did not answer"),
    ):
        warm_up(engine)
