"""Forks, diffs, immutability and the emergency override."""

from __future__ import annotations

import copy
import json
import logging
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from system0.core.config import (
    AIConfig,
    diff,
    emergency_override,
    fork_for_experiment,
    load_from_text,
    set_audit_sink,
)
from system0.errors import ConfigError


@pytest.fixture
def base() -> AIConfig:
    return load_from_text("schema_version: 2\ninference: {max_batch: 32}\n", env={})


def test_fork_from_strings_applies_typed_values_and_records_lineage(base: AIConfig) -> None:
    before = base.canonical_json()
    fork = base.fork_for_experiment(
        "bigger-batches",
        [
            "inference.max_batch=64",
            "model.compile=true",
            "monitoring.latency_threshold_ms.policy=25",
            "storage.root=/tmp/exp 1",
        ],
    )
    assert base.canonical_json() == before  # the baseline never changes
    assert fork.inference.max_batch == 64 and fork.model.compile is True
    assert fork.storage.root == "/tmp/exp 1"
    assert fork.lineage is not None
    assert fork.lineage.kind == "experiment"
    assert fork.lineage.name == "bigger-batches"
    assert fork.lineage.parent == base.content_hash
    assert [(o.path, o.value) for o in fork.lineage.overrides] == [
        ("inference.max_batch", 64),
        ("model.compile", True),
        ("monitoring.latency_threshold_ms.policy", 25.0),
        ("storage.root", "/tmp/exp 1"),
    ]
    assert fork.content_hash != base.content_hash


def test_fork_from_a_mapping_equals_fork_from_strings(base: AIConfig) -> None:
    a = fork_for_experiment(base, "e", {"training.seed": 3, "inference.max_wait_ms": 1.5})
    b = fork_for_experiment(base, "e", ["inference.max_wait_ms=1.5", "training.seed=3"])
    assert a == b and a.content_hash == b.content_hash


def test_a_mapping_value_merges_into_a_section(base: AIConfig) -> None:
    fork = base.fork_for_experiment("e", {"inference.breaker": {"failure_threshold": 9}})
    assert fork.inference.breaker.failure_threshold == 9
    assert fork.inference.breaker.reset_timeout_s == base.inference.breaker.reset_timeout_s
    assert fork.lineage is not None
    [override] = fork.lineage.overrides
    assert override.path == "inference.breaker"
    assert override.value["failure_threshold"] == 9
    with pytest.raises(TypeError):
        override.value["failure_threshold"] = 1  # the recorded value is read-only too


def test_a_fork_of_a_fork_points_at_its_parent(base: AIConfig) -> None:
    first = base.fork_for_experiment("one", ["training.seed=1"])
    second = first.fork_for_experiment("two", ["training.seed=2"])
    assert second.lineage is not None and second.lineage.parent == first.content_hash
    assert [o.path for o in second.lineage.overrides] == ["training.seed"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["inference.max_batch"], "expected 'path=value'"),
        (["infrence.max_batch=3"], "'infrence' is not a section of the config; did you mean"),
        (["inference.max_bach=3"], "unknown key 'max_bach'; did you mean 'max_batch'?"),
        (["inference.max_batch=many"], "inference.max_batch: got 'many'; expected a valid int"),
        (["schema_version=1"], "cannot be overridden"),
        (["lineage.name=x"], "cannot be overridden"),
        ({"a": 1, " a": 2}, "given more than once"),
        ("inference.max_batch=3", "not a str"),
    ],
)
def test_bad_overrides_are_named(base: AIConfig, overrides: Any, expected: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        base.fork_for_experiment("e", overrides)
    assert expected in str(info.value)


def test_bad_experiment_names(base: AIConfig) -> None:
    for name in ("", "has space", "-dash", "x" * 200, "newline\n"):
        with pytest.raises(ConfigError, match="experiment name"):
            base.fork_for_experiment(name, {})


def test_mutation_raises_everywhere(base: AIConfig) -> None:
    fork = base.fork_for_experiment("e", ["monitoring.latency_threshold_ms.p=5"])
    with pytest.raises(ConfigError, match=r"immutable: cannot set InferenceConfig\.max_batch"):
        fork.inference.max_batch = 1  # type: ignore[misc]
    with pytest.raises(ConfigError, match="immutable"):
        fork.inference = fork.inference  # type: ignore[misc]
    with pytest.raises(ConfigError, match="immutable"):
        del fork.model
    with pytest.raises(TypeError):
        fork.monitoring.latency_threshold_ms["p"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        fork.lineage.overrides.append(None)  # type: ignore[union-attr]
    assert fork.get("monitoring.latency_threshold_ms.p") == 5.0


def test_copies_and_pickles_are_the_same_config(base: AIConfig) -> None:
    fork = base.fork_for_experiment("e", ["monitoring.latency_threshold_ms.p=5"])
    assert copy.deepcopy(fork) is fork
    again = pickle.loads(pickle.dumps(fork))
    assert again == fork and again.content_hash == fork.content_hash
    assert hash(again) == hash(fork)
    assert len({fork, again, base}) == 2


def test_diff_is_structured_and_readable(base: AIConfig) -> None:
    fork = base.fork_for_experiment(
        "e",
        ["inference.max_batch=64", "monitoring.latency_threshold_ms.policy=20", "model.seed=4"],
    )
    d = diff(base, fork)
    assert [(c.path, c.kind, c.old, c.new) for c in d] == [
        ("inference.max_batch", "changed", 32, 64),
        ("model.seed", "changed", 0, 4),
        ("monitoring.latency_threshold_ms.policy", "added", None, 20.0),
    ]
    text = d.render()
    assert text.splitlines() == [
        f"--- {base.content_hash}",
        f"+++ {fork.content_hash}",
        "~ inference.max_batch: 32 -> 64",
        "~ model.seed: 0 -> 4",
        "+ monitoring.latency_threshold_ms.policy: 20.0",
        "3 changes",
    ]
    back = diff(fork, base)
    assert [c.kind for c in back] == ["changed", "changed", "removed"]
    assert json.loads(d.to_json())["changes"][0]["path"] == "inference.max_batch"
    assert "lineage" in diff(base, fork, include_lineage=True).paths()
    second = fork.fork_for_experiment("f", [])
    assert "lineage.name" in diff(fork, second, include_lineage=True).paths()


def test_diff_of_equal_configs_is_empty(base: AIConfig) -> None:
    d = base.diff(load_from_text("schema_version: 2\n", env={}))
    assert not d and len(d) == 0
    assert "(no differences)" in d.render()


_OVERRIDABLE = {
    "inference.max_batch": st.integers(1, 1024),
    "training.seed": st.integers(0, 2**31),
    "training.learning_rate": st.floats(1e-6, 1.0),
    "model.compile": st.booleans(),
    "serving.host": st.text("abcdef.-", min_size=1, max_size=12),
    "monitoring.sampling_ratio": st.floats(0.0, 1.0),
}


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.sampled_from(sorted(_OVERRIDABLE)), st.just(None), min_size=1).flatmap(
        lambda keys: st.fixed_dictionaries({k: _OVERRIDABLE[k] for k in keys})
    )
)
def test_fork_then_diff_names_exactly_the_changed_paths(overrides: dict[str, Any]) -> None:
    base = AIConfig()
    fork = base.fork_for_experiment("prop", overrides)
    changed = {p for p, v in overrides.items() if base.get(p) != v}
    assert set(diff(base, fork).paths()) == changed
    assert all(fork.get(p) == v for p, v in overrides.items())
    # The canonical form does not depend on the order the overrides were given in.
    reordered = base.fork_for_experiment("prop", dict(reversed(list(overrides.items()))))
    assert reordered.content_hash == fork.content_hash


# -- emergency override ----------------------------------------------------------------------


class ListLedger:
    """A real (in-memory) audit sink: keeps what it is given, in order."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, record: dict[str, Any]) -> int:
        self.records.append(record)
        return len(self.records) - 1


def test_emergency_override_returns_a_new_config_and_records_it(base: AIConfig) -> None:
    ledger = ListLedger()
    new = emergency_override(
        base, "inference.max_batch", 8, reason="GPU OOM at peak", actor="oncall@x", audit=ledger
    )
    assert base.inference.max_batch == 32 and new.inference.max_batch == 8
    assert new.lineage is not None and new.lineage.kind == "emergency"
    assert (new.lineage.reason, new.lineage.actor) == ("GPU OOM at peak", "oncall@x")
    [record] = ledger.records
    assert record["event"] == "config.emergency_override"
    assert (record["path"], record["old"], record["new"]) == ("inference.max_batch", 32, 8)
    assert record["parent_hash"] == base.content_hash
    assert record["config_hash"] == new.content_hash
    assert record["actor"] == "oncall@x" and record["reason"] == "GPU OOM at peak"


def test_a_process_wide_sink_records_every_override(base: AIConfig) -> None:
    ledger = ListLedger()
    previous = set_audit_sink(ledger)
    try:
        emergency_override(base, "serving.workers", 2, reason="load", actor="me")
        emergency_override(base, "serving.workers", 3, reason="more load", actor="me")
    finally:
        assert set_audit_sink(previous) is ledger
    assert [r["new"] for r in ledger.records] == [2, 3]


def test_emergency_override_without_a_sink_logs_a_warning(
    base: AIConfig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="system0.config"):
        new = emergency_override(base, "serving.workers", 4, reason="load", actor="me")
    [entry] = [r for r in caplog.records if r.name == "system0.config"]
    assert entry.levelno == logging.WARNING
    assert new.content_hash in entry.getMessage()
    assert '"path": "serving.workers"' in entry.getMessage()


def test_emergency_override_is_refused_when_it_cannot_be_recorded(base: AIConfig) -> None:
    class BrokenLedger:
        def append(self, record: dict[str, Any]) -> None:
            raise OSError("disk full")

    with pytest.raises(ConfigError, match=r"was not applied: recording .* failed \(OSError"):
        emergency_override(base, "serving.workers", 4, reason="r", actor="a", audit=BrokenLedger())
    with pytest.raises(ConfigError, match="reason and actor are both required"):
        emergency_override(base, "serving.workers", 4, reason=" ", actor="a")
    with pytest.raises(ConfigError, match=r"serving\.workers: got -1"):
        emergency_override(base, "serving.workers", -1, reason="r", actor="a")
