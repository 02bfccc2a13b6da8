"""Every bad input gets a ConfigError whose message says what, where and what to do."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from system0.core.config import AIConfig, load_from_yaml, validate_config
from system0.errors import ConfigError, Error


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> AIConfig:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_from_yaml(path, env=env or {})


def message(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env)
    assert isinstance(info.value, Error)
    return str(info.value)


def test_malformed_yaml_reports_file_line_and_column(tmp_path: Path) -> None:
    msg = message(tmp_path, "schema_version: 2\ninference:\n  max_batch: [1, 2\n")
    assert msg.startswith(f"{tmp_path / 'bad.yaml'}:4:1: malformed YAML")
    assert "flow sequence at" in msg and "bad.yaml:3:14" in msg


def test_bad_indentation_points_at_the_offending_token(tmp_path: Path) -> None:
    msg = message(tmp_path, "schema_version: 2\ninference:\n  max_batch: 3\n queue: 4\n")
    assert "bad.yaml:4:2: malformed YAML" in msg


def test_a_type_error_names_the_path_value_expectation_and_place(tmp_path: Path) -> None:
    msg = message(
        tmp_path,
        """\
        schema_version: 2
        inference:
          max_batch: lots
        model:
          framework: tensorflow
        """,
    )
    assert "invalid configuration (2 problems)" in msg
    assert "bad.yaml:3:14: inference.max_batch: got 'lots'; expected a valid integer" in msg
    assert "bad.yaml:5:14: model.framework: got 'tensorflow'; expected 'torch', 'jax'" in msg


def test_an_unknown_key_suggests_the_nearest_valid_name(tmp_path: Path) -> None:
    msg = message(
        tmp_path,
        """\
        schema_version: 2
        inferense:
          max_batch: 3
        training:
          learning_rat: 0.1
        """,
    )
    assert "bad.yaml:2:1: inferense: unknown key 'inferense'; did you mean 'inference'?" in msg
    assert "bad.yaml:5:3: training.learning_rat: unknown key 'learning_rat'; " in msg
    assert "did you mean 'learning_rate'?" in msg


def test_an_out_of_range_value_and_an_incoherent_section(tmp_path: Path) -> None:
    msg = message(
        tmp_path,
        """\
        schema_version: 2
        monitoring: {sampling_ratio: 1.5}
        inference: {max_batch: 64, queue_capacity: 8}
        model: {seed: yes}
        """,
    )
    assert "bad.yaml:4:15: model.seed: got True; expected a number, not a boolean" in msg
    assert "monitoring.sampling_ratio: got 1.5; expected less than or equal to 1" in msg
    assert "inference: queue_capacity (8) must be at least max_batch (64)" in msg


def test_a_missing_variable_names_the_key_and_the_variable(tmp_path: Path) -> None:
    msg = message(
        tmp_path,
        """\
        schema_version: 2
        storage:
          root: /data/${env:S0_MISSING_ROOT}
        """,
    )
    assert msg.startswith(f"{tmp_path / 'bad.yaml'}:3:9: storage.root: environment variable ")
    assert "S0_MISSING_ROOT is not set and has no default" in msg


def test_a_circular_reference_names_the_whole_cycle(tmp_path: Path) -> None:
    msg = message(
        tmp_path,
        """\
        schema_version: 2
        inference:
          max_batch: ${ref:training.batch_size}
        training:
          batch_size: ${ref:storage.prefetch_batches}
        storage:
          prefetch_batches: ${ref:inference.max_batch}
        """,
    )
    assert "circular reference: inference.max_batch -> training.batch_size -> " in msg
    assert "storage.prefetch_batches -> inference.max_batch" in msg
    assert "bad.yaml:3:14" in msg


def test_a_self_reference_is_a_cycle(tmp_path: Path) -> None:
    msg = message(tmp_path, "schema_version: 2\nmodel: {name: '${ref:model.name}'}\n")
    assert "circular reference: model.name -> model.name" in msg


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${ref:inference.max_bach}", "reference to 'inference.max_bach', which is not a key "),
        ("${ref:inference.max_bach}", "did you mean 'inference.max_batch'?"),
        ("${nope:X}", "unknown interpolation 'nope:'"),
        ("${X}", "has no scheme"),
        ("${env:1X}", "'1X' is not a valid environment variable name"),
        ("a-${env:X", "unterminated '${'"),
        ("x${ref:inference}", "only a whole value can be a reference to a section"),
    ],
)
def test_bad_interpolations(tmp_path: Path, value: str, expected: str) -> None:
    msg = message(tmp_path, f"schema_version: 2\nstorage:\n  root: '{value}'\n")
    assert "bad.yaml:3:9: storage.root: " in msg
    assert expected in msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("- 1\n- 2\n", "bad.yaml:1:1: the top level is a list; expected a mapping"),
        ("schema_version: 2\n3: x\n", "bad.yaml:2:1: key 3 at top level is a int"),
        (
            "schema_version: 2\nmodel:\n  seed: 1\n  seed: 2\n",
            "bad.yaml:4:3: duplicate key 'model.seed' (first defined at",
        ),
        ("schema_version: 2\nmodel: !!python/object:os.system x\n", "malformed YAML"),
    ],
)
def test_bad_documents(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in message(tmp_path, text)


def test_a_missing_file_and_a_non_utf8_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config .*nope\.yaml"):
        load_from_yaml(tmp_path / "nope.yaml")
    (tmp_path / "latin.yaml").write_bytes(b"schema_version: 2\nmodel: {name: \xe9}\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_from_yaml(tmp_path / "latin.yaml")


def test_validate_config_from_code_names_paths_without_a_file() -> None:
    with pytest.raises(ConfigError) as info:
        validate_config({"serving": {"port": 0, "min_replicas": 9}, "lineage": None})
    msg = str(info.value)
    assert msg.startswith("config: invalid configuration")
    assert "config: serving.port: got 0; expected greater than or equal to 1" in msg


def test_nan_and_bad_map_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"training\.learning_rate: got nan; expected a finite"):
        validate_config({"training": {"learning_rate": float("nan")}})
    with pytest.raises(ConfigError, match=r"key 'a\.b' is not a valid name"):
        validate_config({"monitoring": {"latency_threshold_ms": {"a.b": 3}}})


def test_recursive_and_exploding_aliases_are_refused(tmp_path: Path) -> None:
    assert "bad.yaml:2:4: a[0]: an alias refers to itself" in message(
        tmp_path, "schema_version: 2\na: &x [*x]\n"
    )
    ten = ",".join(["*{}"] * 10)
    layers = ["schema_version: 2", "a: &a [" + ",".join(["1"] * 10) + "]"]
    for prev, name in zip("abcde", "bcdef", strict=True):
        layers.append(f"{name}: &{name} [{ten.format(*[prev] * 10)}]")
    assert "more than 100000 values after expanding aliases" in message(
        tmp_path, "\n".join(layers) + "\n"
    )
