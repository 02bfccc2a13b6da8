"""Fixtures of the gate's tests: the broken variants (``gate_variants``) and a signing key."""

from __future__ import annotations

from pathlib import Path

import pytest
from gate_variants import SlowModel, moved_bias, sawtooth_mlp, shipped_mlp

from system0.core.config.signing import generate_keypair
from system0.game.policy import load_policy
from system0.interfaces.model_interface import NumpyModelInterface


@pytest.fixture(scope="session")
def slow_model() -> SlowModel:
    inner = load_policy()
    assert isinstance(inner, NumpyModelInterface)
    return SlowModel(inner, delay=0.002)


@pytest.fixture(scope="session")
def fragile_model() -> NumpyModelInterface:
    return NumpyModelInterface(sawtooth_mlp(shipped_mlp()), name="fragile-policy")


@pytest.fixture(scope="session")
def golden_broken_model() -> NumpyModelInterface:
    return NumpyModelInterface(moved_bias(shipped_mlp()), name="drifted-policy")


@pytest.fixture(scope="session")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate_keypair(tmp_path_factory.mktemp("keys") / "gate.key")
