"""Golden sets: fixed inputs and the outputs a version must give on them before it serves.

A :class:`GoldenSet` is a feature matrix (the codec's layout, made from GameStates) with the
expected probabilities and actions, and a tolerance. ``check(model)`` runs the model on the
inputs and raises :class:`GoldenMismatch` naming the worst row when an output differs by more
than ``atol`` or, with ``require_actions``, when an action changes. ``GoldenSet.record(model,
states)`` records the expected answers from a trusted model (the shipped policy); the set
is saved as a small ``.npz`` next to the registry so that it is itself an artifact.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from system0.data.serialization import featurize_requests, reason_code
from system0.errors import GoldenMismatch, ValidationError
from system0.interfaces.model_interface import AIModelInterface

__all__ = ["GoldenSet"]

F32 = npt.NDArray[np.float32]


def _features(states: Sequence[Any]) -> F32:
    matrix, _, errors = featurize_requests(list(states))
    if errors:
        i, path, code, _ = errors[0]
        raise ValidationError(f"golden state {i} breaks its contract: {reason_code(path, code)}")
    return matrix


@dataclass(frozen=True)
class GoldenSet:
    """``inputs`` (rows, features), ``expected`` (rows, actions); ``atol`` on probabilities."""

    inputs: F32
    expected: F32
    atol: float = 1e-4
    require_actions: bool = True

    def __post_init__(self) -> None:
        if self.inputs.ndim != 2 or self.expected.ndim != 2 or not len(self.inputs):
            raise ValidationError("a golden set needs >= 1 input row and 2-D inputs and outputs")
        if len(self.inputs) != len(self.expected):
            raise ValidationError(
                f"golden set: {len(self.inputs)} inputs but {len(self.expected)} expected rows"
            )
        if not (math.isfinite(self.atol) and self.atol >= 0):
            raise ValidationError(f"golden set: atol must be finite and >= 0, got {self.atol}")

    @classmethod
    def record(
        cls,
        model: AIModelInterface,
        states: Sequence[Any],
        *,
        atol: float = 1e-4,
        require_actions: bool = True,
    ) -> GoldenSet:
        """The set of ``states`` (GameState dicts or bytes) answered by a trusted ``model``."""
        x = _features(states)
        out = np.asarray(model.infer(x), dtype=np.float32)
        return cls(x, out, atol, require_actions)

    def check(self, model: AIModelInterface) -> None:
        """Raise :class:`GoldenMismatch` unless ``model`` answers the set within tolerance."""
        try:
            got = np.asarray(model.infer(self.inputs), dtype=np.float32)
        except Exception as exc:
            raise GoldenMismatch(
                f"{model.name} failed on its golden set ({type(exc).__name__}: {exc})"
            ) from exc
        if got.shape != self.expected.shape:
            raise GoldenMismatch(
                f"{model.name} answers shape {got.shape} on the golden set; "
                f"{self.expected.shape} expected"
            )
        if not np.isfinite(got).all():
            bad = int(np.flatnonzero(~np.isfinite(got).all(axis=1))[0])
            raise GoldenMismatch(f"{model.name} answers NaN or infinity on golden row {bad}")
        diff = np.abs(got - self.expected).max(axis=1)
        worst = int(diff.argmax())
        if diff[worst] > self.atol:
            raise GoldenMismatch(
                f"{model.name} differs from the golden set on row {worst} by "
                f"{float(diff[worst]):.3g} (> atol {self.atol:g}); {int((diff > self.atol).sum())}"
                f" of {len(diff)} rows out of tolerance"
            )
        if self.require_actions:
            moved = np.flatnonzero(got.argmax(axis=1) != self.expected.argmax(axis=1))
            if len(moved):
                raise GoldenMismatch(
                    f"{model.name} changes the action on golden row {int(moved[0])} "
                    f"({len(moved)} of {len(got)} rows)"
                )

    def __call__(self, model: AIModelInterface) -> None:
        """A golden set is a deployment's ``golden_check``."""
        self.check(model)

    def save(self, path: str | os.PathLike[str]) -> None:
        with open(path, "wb") as fh:
            np.savez(
                fh,
                inputs=self.inputs,
                expected=self.expected,
                atol=np.float64(self.atol),
                require_actions=np.bool_(self.require_actions),
            )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GoldenSet:
        try:
            with np.load(os.fspath(path), allow_pickle=False) as z:
                return cls(
                    np.ascontiguousarray(z["inputs"], np.float32),
                    np.ascontiguousarray(z["expected"], np.float32),
                    float(z["atol"]),
                    bool(z["require_actions"]),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ValidationError(f"golden set {os.fspath(path)}: unreadable ({exc})") from exc
