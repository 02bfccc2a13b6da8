"""Loading: interpolation, references, canonical hashing, migrations, hermetic defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pydantic
import pytest

from system0.core.config import (
    SCHEMA_VERSION,
    AIConfig,
    load_from_text,
    load_from_yaml,
    validate_config,
)
from system0.core.config.migrations import MIGRATIONS, migrate
from system0.errors import ConfigError

# The hash of the defaults, per schema version. A default that changes without a new schema
# version and a migration changes the meaning of every file that omits it: this pin fails.
PINNED_DEFAULTS = {
    2: "sha256:5147b4e609c5de1692ba427b0692696e0d6067cf30f2c91194339956f3822917",
}


def write(tmp_path: Path, text: str, name: str = "system0.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_the_defaults_are_valid_and_pinned_for_this_schema_version() -> None:
    config = AIConfig()
    assert validate_config(config.to_dict()) == config
    assert config.content_hash == PINNED_DEFAULTS[SCHEMA_VERSION]


def test_a_file_that_states_only_its_version_is_the_defaults(tmp_path: Path) -> None:
    config = load_from_yaml(write(tmp_path, "schema_version: 2\n"), env={})
    assert config == AIConfig()
    assert config.content_hash == AIConfig().content_hash


def test_environment_interpolation_with_and_without_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        schema_version: 2
        inference:
          max_batch: ${env:S0_BATCH}
          latency_budget_ms: ${env:S0_BUDGET,80}
        storage:
          root: /srv/${env:S0_SITE,eu}/samples
          backend: ${env:S0_BACKEND,}duckdb
        """,
    )
    config = load_from_yaml(path, env={"S0_BATCH": "48"})
    # Environment values are text; validation gives them the field's type.
    assert config.inference.max_batch == 48
    assert config.inference.latency_budget_ms == 80.0
    assert config.storage.root == "/srv/eu/samples"
    assert config.storage.backend == "duckdb"
    other = load_from_yaml(path, env={"S0_BATCH": "48", "S0_SITE": "us"})
    assert other.storage.root == "/srv/us/samples"
    assert other.content_hash != config.content_hash


def test_references_keep_types_splice_text_and_fall_back_to_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        schema_version: 2
        inference:
          max_batch: 128
          queue_capacity: ${ref:inference.max_batch}
        monitoring:
          default_latency_threshold_ms: ${ref:inference.latency_budget_ms}
          otlp_endpoint: http://${ref:serving.host}:${ref:serving.port}/v1
          trace_export: otlp
        training:
          batch_size: ${ref:inference.queue_capacity}
        serving:
          host: "$${not an interpolation}"
        """,
    )
    config = load_from_yaml(path, env={})
    assert config.inference.queue_capacity == 128
    assert config.training.batch_size == 128
    # latency_budget_ms is not in the file: the reference reads the schema default.
    assert config.monitoring.default_latency_threshold_ms == 50.0
    assert config.monitoring.otlp_endpoint == "http://${not an interpolation}:8080/v1"
    assert config.serving.host == "${not an interpolation}"


def test_the_resolved_values_are_what_is_hashed(tmp_path: Path) -> None:
    literal = write(tmp_path, "schema_version: 2\ninference: {max_batch: 64}\n", "a.yaml")
    via_env = write(
        tmp_path,
        "# a comment\nschema_version: 2\ninference:\n  max_batch: '${env:B}'\n",
        "b.yaml",
    )
    a = load_from_yaml(literal, env={})
    b = load_from_yaml(via_env, env={"B": "64"})
    assert a.content_hash == b.content_hash
    assert a.canonical_json() == b.canonical_json()
    canonical = a.canonical_json()
    assert json.loads(canonical) == a.to_dict()
    assert json.loads(canonical)["inference"]["max_batch"] == 64
    # RFC 8785: sorted keys, no whitespace, integral floats without a fraction.
    assert canonical.startswith(b'{"inference":{"breaker":{"failure_threshold":5,')
    assert b'"latency_budget_ms":50,' in canonical and b" " not in canonical


_HASH_SCRIPT = (
    "import sys; from system0.core.config import load_from_yaml; "
    "print(load_from_yaml(sys.argv[1]).content_hash)"
)


def test_same_file_same_environment_same_hash_across_processes(tmp_path: Path) -> None:
    # Two "machines": separate interpreters with different hash seeds, and the same settings
    # written in a different key order and style.
    a = write(
        tmp_path,
        """\
        schema_version: 2
        monitoring: {latency_threshold_ms: {policy: 20, critic: 35.5}}
        inference: {max_batch: "${env:S0_BATCH}", max_wait_ms: 1}
        model: {name: policy, seed: 7}
        """,
        "a.yaml",
    )
    b = write(
        tmp_path,
        """\
        model:
          seed: 7
        inference:
          max_wait_ms: 1.0
          max_batch: ${env:S0_BATCH}
        monitoring:
          latency_threshold_ms:
            critic: 35.5
            policy: 20.0
        schema_version: 2
        """,
        "b.yaml",
    )
    hashes = set()
    for seed, path in (("1", a), ("2", b), ("12345", a)):
        env = {**os.environ, "PYTHONHASHSEED": seed, "S0_BATCH": "16"}
        out = subprocess.run(
            [sys.executable, "-c", _HASH_SCRIPT, str(path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        hashes.add(out.stdout.strip())
    assert hashes == {load_from_yaml(a, env={"S0_BATCH": "16"}).content_hash}


def test_to_yaml_loads_back_to_the_same_config(tmp_path: Path) -> None:
    base = load_from_text(
        "schema_version: 2\nserving: {host: '$${literal}'}\nsecurity: {privacy_delta: 1e-9}\n",
        env={},
    )
    fork = base.fork_for_experiment("lr-sweep", {"training.learning_rate": 1e-3})
    for config in (base, fork):
        path = write(tmp_path, config.to_yaml(), "dump.yaml")
        again = load_from_yaml(path, env={})
        assert again == config
        assert again.content_hash == config.content_hash


def test_get_reads_dotted_paths() -> None:
    config = AIConfig().fork_for_experiment("x", ["monitoring.latency_threshold_ms.policy=12"])
    assert config.get("inference.breaker.failure_threshold") == 5
    assert config.get("monitoring.latency_threshold_ms.policy") == 12.0
    assert config.monitoring.threshold_ms("policy") == 12.0
    assert config.monitoring.threshold_ms("other") == 100.0
    with pytest.raises(ConfigError, match=r"inference\.nope: no such key"):
        config.get("inference.nope")


# -- migrations ------------------------------------------------------------------------------


def test_a_version_1_file_is_migrated_with_its_meaning_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        schema_version: 1
        inference: {max_batch: 16}
        monitoring:
          thresholds: {policy: 0.025, critic: 1}
        """,
    )
    config = load_from_yaml(path, env={})
    assert config.schema_version == SCHEMA_VERSION
    assert dict(config.monitoring.latency_threshold_ms) == {"critic": 1000.0, "policy": 25.0}
    assert config.inference.max_batch == 16


def test_migration_steps_run_in_order_from_a_registry() -> None:
    def one(doc: dict[str, Any]) -> dict[str, Any]:
        doc["trail"] = [*doc.get("trail", []), "1->2"]
        return doc

    def two(doc: dict[str, Any]) -> dict[str, Any]:
        doc["trail"] = [*doc["trail"], "2->3"]
        return doc

    source = {"schema_version": 1}
    out = migrate(source, target=3, registry={1: one, 2: two})
    assert out == {"schema_version": 3, "trail": ["1->2", "2->3"]}
    assert source == {"schema_version": 1}  # the input is left alone
    with pytest.raises(ConfigError, match="no migration from schema version 2 to 3"):
        migrate(source, target=3, registry={1: one})


def test_every_version_before_the_current_one_has_a_step() -> None:
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("inference: {max_batch: 3}\n", r"schema_version is missing: add 'schema_version: 2'"),
        ("schema_version: 9\n", r"schema_version 9 is newer than this release understands"),
        ("schema_version: two\n", r"schema_version: got 'two'; expected an integer"),
        ("schema_version: 0\n", r"got 0; versions start at 1"),
    ],
)
def test_schema_version_problems_are_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_from_text(text, file="v.yaml", env={})


def test_code_builds_only_the_current_version_and_validate_config_migrates() -> None:
    with pytest.raises(pydantic.ValidationError, match="not the current one"):
        AIConfig(schema_version=1)
    old = {"schema_version": 1, "monitoring": {"thresholds": {"policy": 0.5}}}
    assert validate_config(old).monitoring.threshold_ms("policy") == 500.0


def test_anchors_aliases_and_merge_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        schema_version: 2
        training: &shared {seed: 11}
        model: *shared
        inference:
          breaker:
            <<: {failure_threshold: 3, reset_timeout_s: 9}
            failure_threshold: 7
        """,
    )
    config = load_from_yaml(path, env={})
    assert config.training.seed == 11 and config.model.seed == 11
    # An explicit key overrides the merged one; that is not a duplicate.
    assert config.inference.breaker.failure_threshold == 7
    assert config.inference.breaker.reset_timeout_s == 9.0
