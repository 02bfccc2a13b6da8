"""``ModelRegistry``: a folder of model versions, each pinned by content hash.

Layout: ``ROOT/NAME/VERSION/`` holds ``weights.safetensors`` (``save_mlp`` format),
``version.json`` (``{"name", "version", "content_hash", "config_hash", "created"}``) and, when
the version was published with a configuration, ``config.json`` (its canonical JSON). The
content hash is ``MLPWeights.content_hash()`` (over the tensors, not the file bytes, so a
re-encoded file of equal weights keeps its name); the config hash is ``AIConfig.content_hash``.

A version is written into a hidden temporary folder and renamed into place, so a reader never
sees half a version, and two publishers racing for the same number cannot both win (the
rename of a folder onto an existing one fails). Publishing weights and config already in the
registry returns the existing version: an artifact has one name.

Loading re-hashes what it reads and refuses a folder whose weights or config differ from the
pins in ``version.json`` with :class:`IntegrityError` naming the expected and the found hash;
a caller holding a pin from elsewhere (an audit entry, a gate report) passes it as
``expected_hash`` and is refused if ``version.json`` itself was rewritten.

:func:`warm_up` runs every bucket size of an engine once through the real request path
(GameState bytes, the validator, the batcher, the model), which is what "ready" means.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from system0.core.config import AIConfig, validate_config
from system0.errors import ConfigError, Error, IntegrityError, NotFound, ValidationError
from system0.interfaces.model_interface import (
    AIModelInterface,
    MLPWeights,
    NumpyModelInterface,
    load_mlp,
)
from system0.serving.engine_io import StateEngine, submit_states

__all__ = ["WARMUP_STATE", "ModelRegistry", "ModelVersion", "warm_up"]

WEIGHTS_FILE = "weights.safetensors"
VERSION_FILE = "version.json"
CONFIG_FILE = "config.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_VERSION = re.compile(r"v([1-9][0-9]{0,8})")

WARMUP_STATE: bytes = json.dumps(
    {
        "timestamp": "2024-05-01T12:00:00Z",
        "champion": "Ahri",
        "position": {"x": 0.5, "y": 0.5},
        "health": 1800.0,
        "mana": 900.0,
        "cooldowns": {"q": 0.0, "w": 3.0, "e": 0.0, "r": 40.0, "d": 0.0, "f": 120.0},
        "inventory": ["dorans_ring", "boots"],
        "vision_score": 12.0,
        "gold_advantage": 250.0,
    },
    separators=(",", ":"),
).encode()
"""A GameState that keeps the contract: what :func:`warm_up` sends through the real path."""


def _check_name(name: str, what: str = "model name") -> str:
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ValidationError(
            f"{what} {name!r} is not valid: use 1-64 of A-Z a-z 0-9 _ . - (starting with a "
            "letter or digit)"
        )
    return name


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One published version: its pins and its folder. ``load()`` checks the pins."""

    name: str
    version: str
    content_hash: str
    config_hash: str | None
    created: str
    path: Path

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS_FILE

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "content_hash": self.content_hash,
            "config_hash": self.config_hash,
            "created": self.created,
        }

    def weights(self, expected_hash: str | None = None) -> MLPWeights:
        """The weights, re-hashed and compared with the pin (and ``expected_hash``)."""
        where = f"{self.name}/{self.version}"
        if expected_hash is not None and expected_hash != self.content_hash:
            raise IntegrityError(
                f"{where}: version.json pins content hash {self.content_hash} but "
                f"{expected_hash} was expected; the folder was rewritten, do not serve it"
            )
        try:
            mlp = load_mlp(self.weights_path)
        except (OSError, ValidationError) as exc:
            raise IntegrityError(
                f"{where}: weights unreadable ({exc}); expected content hash "
                f"{self.content_hash}; republish the version"
            ) from exc
        except Exception as exc:  # safetensors raises its own errors on a corrupt header
            raise IntegrityError(
                f"{where}: weights file is corrupt ({type(exc).__name__}: {exc}); expected "
                f"content hash {self.content_hash}; republish the version"
            ) from exc
        found = mlp.content_hash()
        if found != self.content_hash:
            raise IntegrityError(
                f"{where}: weights were tampered with: expected content hash "
                f"{self.content_hash}, found {found}; republish the version"
            )
        return mlp

    def config(self) -> AIConfig | None:
        """The pinned configuration (None when published without one), re-hashed."""
        if self.config_hash is None:
            return None
        where = f"{self.name}/{self.version}"
        try:
            doc = json.loads((self.path / CONFIG_FILE).read_bytes())
            cfg = validate_config(doc, where=f"{where}/{CONFIG_FILE}")
        except (OSError, ValueError, ConfigError) as exc:
            raise IntegrityError(
                f"{where}: config unreadable ({exc}); expected config hash {self.config_hash}"
            ) from exc
        if cfg.content_hash != self.config_hash:
            raise IntegrityError(
                f"{where}: config was tampered with: expected config hash {self.config_hash}, "
                f"found {cfg.content_hash}; republish the version"
            )
        return cfg

    def load(self, expected_hash: str | None = None) -> AIModelInterface:
        """The model on numpy, after checking the weights' and the config's pins."""
        self.config()
        model = NumpyModelInterface(name=f"{self.name}@{self.version}")
        return model.load(self.weights(expected_hash))


class ModelRegistry:
    """Versions of named models under ``root`` (created if missing). Thread-safe.

    ``load``/``unload`` keep loaded models by ``(name, version)``, so that two deployments of
    one version share one set of weights in memory.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"registry root {self.root}: cannot create ({exc.strerror})") from exc
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str], AIModelInterface] = {}

    def __repr__(self) -> str:
        return f"ModelRegistry({os.fspath(self.root)!r})"

    # --- publishing ----------------------------------------------------------------------

    def publish(
        self,
        name: str,
        weights_path: str | os.PathLike[str],
        config: AIConfig | None = None,
    ) -> ModelVersion:
        """Publish the weights at ``weights_path`` (and ``config``) as the next version.

        The same weights and config already published return that version unchanged.
        """
        _check_name(name)
        try:
            mlp = load_mlp(weights_path)
        except OSError as exc:
            raise NotFound(f"weights {os.fspath(weights_path)}: cannot read ({exc})") from exc
        digest = mlp.content_hash()
        cfg_hash = config.content_hash if config is not None else None
        for existing in self.versions(name):
            if existing.content_hash == digest and existing.config_hash == cfg_hash:
                return existing
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".publish-", dir=folder))
        try:
            shutil.copyfile(weights_path, tmp / WEIGHTS_FILE)
            if config is not None:
                (tmp / CONFIG_FILE).write_bytes(config.canonical_json())
            created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            while True:
                number = self._next_number(name)
                version = f"v{number}"
                doc = {
                    "name": name,
                    "version": version,
                    "content_hash": digest,
                    "config_hash": cfg_hash,
                    "created": created,
                }
                (tmp / VERSION_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
                try:
                    os.rename(tmp, folder / version)
                except OSError:
                    if (folder / version).exists():
                        continue  # another publisher took this number: take the next one
                    raise
                return ModelVersion(name, version, digest, cfg_hash, created, folder / version)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _next_number(self, name: str) -> int:
        numbers = [int(m.group(1)) for v in self._folders(name) if (m := _VERSION.fullmatch(v))]
        return max(numbers, default=0) + 1

    # --- reading -------------------------------------------------------------------------

    def _folders(self, name: str) -> list[str]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        return [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]

    def names(self) -> list[str]:
        """The model names with at least one version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self._folders(p.name))

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first (``v1``, ``v2``...)."""
        _check_name(name)

        def order(v: str) -> tuple[int, str]:
            m = _VERSION.fullmatch(v)
            return (int(m.group(1)) if m else 1 << 40, v)

        return [self.get(name, v) for v in sorted(self._folders(name), key=order)]

    def get(self, name: str, version: str) -> ModelVersion:
        """The version's pins; ``NotFound`` naming the versions there are."""
        _check_name(name)
        _check_name(version, "version")
        path = self.root / name / version
        try:
            doc = json.loads((path / VERSION_FILE).read_bytes())
        except FileNotFoundError:
            known = sorted(self._folders(name))
            raise NotFound(
                f"model {name!r} has no version {version!r} in {self.root} "
                f"(versions: {', '.join(known) or 'none'}); publish it first"
            ) from None
        except (OSError, ValueError) as exc:
            raise IntegrityError(f"{name}/{version}/{VERSION_FILE} is unreadable ({exc})") from exc
        try:
            mv = ModelVersion(
                str(doc["name"]),
                str(doc["version"]),
                str(doc["content_hash"]),
                None if doc["config_hash"] is None else str(doc["config_hash"]),
                str(doc["created"]),
                path,
            )
        except (KeyError, TypeError) as exc:
            raise IntegrityError(f"{name}/{version}/{VERSION_FILE} lacks {exc}") from exc
        if (mv.name, mv.version) != (name, version):
            raise IntegrityError(
                f"{path}: version.json names {mv.name}/{mv.version}; a version folder was "
                "moved or copied by hand; republish it"
            )
        return mv

    def latest(self, name: str) -> ModelVersion:
        found = self.versions(name)
        if not found:
            raise NotFound(f"model {name!r} has no version in {self.root}; publish one first")
        return found[-1]

    # --- loading -------------------------------------------------------------------------

    def load(self, name: str, version: str, expected_hash: str | None = None) -> AIModelInterface:
        """The model of ``name``/``version``, pins checked; loaded once and kept until
        :meth:`unload`."""
        key = (name, version)
        with self._lock:
            model = self._loaded.get(key)
        if model is not None:
            mv = self.get(name, version)
            if expected_hash is not None and expected_hash != mv.content_hash:
                mv.weights(expected_hash)  # raises, naming both hashes
            return model
        model = self.get(name, version).load(expected_hash)
        with self._lock:
            return self._loaded.setdefault(key, model)

    def unload(self, name: str, version: str) -> bool:
        """Forget the loaded model; True if it was loaded."""
        with self._lock:
            return self._loaded.pop((name, version), None) is not None

    def loaded(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._loaded)


def warm_up(
    engine: StateEngine,
    *,
    sizes: Sequence[int] | None = None,
    budget: float = 5.0,
    state: bytes = WARMUP_STATE,
) -> int:
    """Run every bucket size of ``engine`` once through the real request path; returns the
    rows answered. Raises the engine's error, or ``Error`` when the model did not answer (a
    fallback answered instead): a version that cannot answer a valid state is not ready."""
    engine.warmup()  # compile every shape and seed the admission estimate first
    chosen = tuple(sizes) if sizes is not None else (engine.buckets or (1, engine.max_batch))
    rows = 0
    for size in chosen:
        for fut in submit_states(engine, [state] * size, budget):
            result = fut.result(timeout=budget + 5.0)
            if result.fallback:
                raise Error(
                    f"warm-up at batch size {size}: the model did not answer, the fallback "
                    f"did ({result.reason}); the version is not ready"
                )
            rows += 1
    return rows
