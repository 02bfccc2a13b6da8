"""Real parts for the serving tests: a registry on disk, small real MLPs, GameState bodies, and
the server tests' admin (a real token issuer, RBAC policy and ledger) and server on loopback
(helpers in serving_fixtures.py)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from system0.data.serialization import FEATURE_NAMES
from system0.game.simulator import MatchSimulator
from system0.interfaces.model_interface import MLPWeights, save_mlp
from system0.security.access_control import Enforcer, Policy
from system0.security.audit import AuditLedger
from system0.security.encryption import Keyring, SigningKey
from system0.security.identity import TokenIssuer, TokenVerifier
from system0.serving.admin import AdminAuth
from system0.serving.registry import ModelRegistry
from system0.serving.wire import Limits

from .serving_fixtures import AUDIENCE, ISSUER, POLICY, Admin, Served, pinned, serve

N_FEATURES = len(FEATURE_NAMES)


def biased_mlp(action: int, *, seed: int = 0, hidden: int = 16, margin: float = 8.0) -> MLPWeights:
    """A real two-layer MLP whose output bias makes ``action`` win on any sane input."""
    rng = np.random.default_rng(seed)
    w0 = (rng.standard_normal((hidden, N_FEATURES)) * 0.05).astype(np.float32)
    w1 = (rng.standard_normal((8, hidden)) * 0.05).astype(np.float32)
    b1 = np.zeros(8, np.float32)
    b1[action] = margin
    return MLPWeights(
        (w0, w1),
        (np.zeros(hidden, np.float32), b1),
        np.zeros(N_FEATURES, np.float32),
        np.ones(N_FEATURES, np.float32),
        5.0,
    )


def publish(
    registry: ModelRegistry, tmp: pathlib.Path, mlp: MLPWeights, name: str = "policy"
) -> str:
    path = save_mlp(mlp, tmp, prefix=f"w{len(list(tmp.iterdir()))}")
    return registry.publish(name, path).version


def tick_bodies(seed: int = 3, ticks: int = 4) -> list[bytes]:
    """GameState JSON bodies of a simulated match, one per champion per tick."""
    out: list[bytes] = []
    for tick in MatchSimulator(seed=seed).run(ticks=ticks):
        out.extend(json.dumps(s).encode() for s in tick.states)
    return out


def state(**changes: Any) -> dict[str, Any]:
    """One valid GameState dict with ``changes`` applied (``cooldowns`` merged)."""
    base: dict[str, Any] = {
        "timestamp": "2024-05-01T12:00:00Z",
        "champion": "Ahri",
        "position": {"x": 0.5, "y": 0.5},
        "health": 1800.0,
        "mana": 900.0,
        "cooldowns": {"q": 0.0, "w": 0.0, "e": 0.0, "r": 0.0, "d": 0.0, "f": 0.0},
        "inventory": [],
        "vision_score": 30.0,
        "gold_advantage": 100.0,
    }
    cds = changes.pop("cooldowns", {})
    base.update(changes)
    base["cooldowns"] = {**base["cooldowns"], **cds}
    return base


@pytest.fixture
def registry(tmp_path: pathlib.Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry")


@pytest.fixture
def weights_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    d = tmp_path / "weights"
    d.mkdir()
    return d


@pytest.fixture
def ledger(tmp_path: pathlib.Path) -> Iterator[AuditLedger]:
    with AuditLedger.open(tmp_path / "audit", keyring=Keyring.generate(), fsync="never") as led:
        yield led


def events(ledger: AuditLedger) -> list[dict[str, Any]]:
    return [ledger.read(i).json() for i in range(ledger.size)]


@pytest.fixture
def admin(tmp_path: pathlib.Path) -> Iterator[Admin]:
    key = Ed25519PrivateKey.generate()
    ledger = AuditLedger.open(
        tmp_path / "audit", keyring=Keyring.generate(), signing_key=SigningKey.generate()
    )
    verifier = TokenVerifier(key.public_key(), audience=AUDIENCE, issuer=ISSUER)
    auth = AdminAuth(verifier, Enforcer(Policy.from_dict(POLICY)), ledger)
    yield Admin(auth, TokenIssuer(key, ISSUER), ledger)
    ledger.close()


@pytest.fixture
def served(admin: Admin) -> Iterator[Served]:
    yield from serve(pinned(), auth=admin.auth, limits=Limits(max_body_bytes=64 * 1024))
