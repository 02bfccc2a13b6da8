"""The golden set: fixed inputs, the outputs and actions a model must give on them, a tolerance.

A golden file is JSON (readable in a diff, exact: each float32 is written as the shortest
decimal that reads back to the same float32)::

    {"format": "system0-golden", "version": 1, "model_content_hash": ..., "atol": 1e-4,
     "feature_names": [...], "inputs": [[...]], "outputs": [[...]], "actions": [...]}

``check(model)`` runs the model on the inputs: every output must lie within ``atol`` of the
recorded one, and every action must match, except on rows where the recorded top two actions
are closer than ``2 * atol`` (there a tie may fall either way within the tolerance, on another
backend or BLAS). The shipped policy's golden set ships beside this module. A golden set is
also a deployment's ``golden_check``: calling it with a model raises
:class:`~system0.errors.GoldenMismatch` (a ``GateRefused``) unless the model keeps the set, so
the gate and the blue/green deploy judge a version by one rule (:func:`golden_check` is the
shipped policy's set used that way).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from system0.data.serialization import FEATURE_NAMES
from system0.errors import GoldenMismatch, ValidationError
from system0.interfaces.model_interface import AIModelInterface
from system0.testing.documents import read_document
from system0.testing.results import Check, SuiteResult
from system0.testing.states import feature_rows

__all__ = ["GoldenResult", "GoldenSet", "golden_check", "golden_suite", "shipped_golden_path"]

FORMAT = "system0-golden"
VERSION = 1
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
F32 = npt.NDArray[np.float32]


def shipped_golden_path() -> Path:
    """The golden set of the shipped policy (``golden/policy-<hash12>.json``)."""
    from system0.game.policy import policy_weights_path

    stem = policy_weights_path().stem  # policy-<hash12>
    path = GOLDEN_DIR / f"{stem}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no golden set {path} for the shipped policy {stem}; record one with "
            "GoldenSet.record(load_policy(), inputs).save(path)"
        )
    return path


@dataclass(frozen=True, slots=True)
class GoldenResult:
    """What :meth:`GoldenSet.check` found: the largest output error, the rows off tolerance
    and the rows whose action changed."""

    rows: int
    atol: float
    max_abs_error: float
    row_errors: list[float]
    off_tolerance: list[int]
    action_changed: list[int]

    @property
    def passed(self) -> bool:
        return not self.off_tolerance and not self.action_changed

    def describe(self) -> str:
        head = (
            f"max |output - golden| {self.max_abs_error:.3g} (atol {self.atol:g}) "
            f"over {self.rows} rows"
        )
        if self.passed:
            return head
        return (
            f"{head}; {len(self.off_tolerance)} rows off tolerance "
            f"(first {self.off_tolerance[:5]}), "
            f"{len(self.action_changed)} actions changed (first {self.action_changed[:5]})"
        )


@dataclass(frozen=True)
class GoldenSet:
    """Inputs ``(rows, features)``, expected ``outputs`` ``(rows, actions)`` and ``actions``."""

    inputs: F32
    outputs: F32
    actions: npt.NDArray[np.int64]
    atol: float = 1e-4
    model_content_hash: str = ""

    def __post_init__(self) -> None:
        n = self.inputs.shape[0]
        if self.inputs.ndim != 2 or self.outputs.ndim != 2 or n == 0:
            raise ValidationError(
                "a golden set needs (rows, features) inputs and outputs, rows >= 1"
            )
        if self.outputs.shape[0] != n or self.actions.shape != (n,):
            raise ValidationError(
                f"golden set rows disagree: inputs {self.inputs.shape}, outputs "
                f"{self.outputs.shape}, actions {self.actions.shape}"
            )
        if not (math.isfinite(self.atol) and self.atol > 0):
            raise ValidationError(f"golden atol must be a finite number > 0, got {self.atol}")

    @classmethod
    def record(
        cls, model: AIModelInterface, inputs: npt.ArrayLike, *, atol: float = 1e-4
    ) -> GoldenSet:
        """The golden set of ``model`` on ``inputs``: what it answers now is what it must keep
        answering."""
        x = np.ascontiguousarray(inputs, dtype=np.float32)
        out = np.asarray(model.infer(x), dtype=np.float32)
        return cls(
            x, out, out.argmax(axis=1).astype(np.int64), atol, model.introspect().content_hash
        )

    @classmethod
    def record_states(
        cls, model: AIModelInterface, states: list[dict[str, Any]], *, atol: float = 1e-4
    ) -> GoldenSet:
        """The golden set of ``model`` on GameStates (each must meet the contract)."""
        return cls.record(model, feature_rows(states), atol=atol)

    def __call__(self, model: AIModelInterface) -> None:
        """Raise :class:`GoldenMismatch` unless ``model`` keeps this set: a deployment's
        ``golden_check``. A model that raises on the golden inputs fails it too."""
        try:
            result = self.check(model)
        except GoldenMismatch:
            raise
        except Exception as exc:
            raise GoldenMismatch(
                f"failed: golden: {model.name} raised on its golden set "
                f"({type(exc).__name__}: {exc})",
                "failed",
            ) from exc
        if not result.passed:
            raise GoldenMismatch(
                f"failed: golden: {model.name} {result.describe()}; a model that answers "
                "differently needs its own golden set, reviewed and recorded",
                "failed",
            )

    def check(self, model: AIModelInterface) -> GoldenResult:
        out = np.asarray(model.infer(self.inputs), dtype=np.float32)
        if out.shape != self.outputs.shape:
            raise ValidationError(
                f"{model.name} answers shape {out.shape} on the golden inputs; the golden set "
                f"expects {self.outputs.shape}"
            )
        err = np.abs(out.astype(np.float64) - self.outputs)
        err[~np.isfinite(err)] = np.inf
        row_err = err.max(axis=1)
        top2 = np.sort(self.outputs, axis=1)[:, -2:]
        decisive = (top2[:, 1] - top2[:, 0]) >= 2 * self.atol
        changed = decisive & (out.argmax(axis=1) != self.actions)
        return GoldenResult(
            rows=len(out),
            atol=self.atol,
            max_abs_error=float(row_err.max()),
            row_errors=[float(e) for e in row_err],
            off_tolerance=[int(i) for i in np.flatnonzero(row_err > self.atol)],
            action_changed=[int(i) for i in np.flatnonzero(changed)],
        )

    # --- file form --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "model_content_hash": self.model_content_hash,
            "atol": self.atol,
            "feature_names": list(FEATURE_NAMES),
            "inputs": _rows(self.inputs),
            "outputs": _rows(self.outputs),
            "actions": [int(a) for a in self.actions],
        }
        p = Path(path)
        p.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GoldenSet:
        where = os.fspath(path)
        doc = read_document(path, "golden set", FORMAT, VERSION)
        if doc.get("feature_names") != list(FEATURE_NAMES):
            raise ValidationError(
                f"{where}: recorded for another feature layout; record the golden set again "
                "with this release's FEATURE_NAMES"
            )
        try:
            return cls(
                np.asarray(doc["inputs"], dtype=np.float32),
                np.asarray(doc["outputs"], dtype=np.float32),
                np.asarray(doc["actions"], dtype=np.int64),
                float(doc["atol"]),
                str(doc.get("model_content_hash", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"{where}: malformed golden set ({exc!r})") from None


def _rows(a: F32) -> list[list[float]]:
    # float(np.float32) is exact in float64 and repr() is the shortest decimal that reads back
    # to it, so the file round-trips bit for bit
    return [[float(v) for v in row] for row in np.asarray(a, dtype=np.float32)]


def golden_check(model: AIModelInterface, golden: GoldenSet | None = None) -> None:
    """Raise :class:`GoldenMismatch` unless ``model`` keeps the golden set (default: the
    shipped policy's): what the deploy path calls before a version goes live."""
    (golden if golden is not None else GoldenSet.load(shipped_golden_path()))(model)


def golden_suite(model: AIModelInterface, golden: GoldenSet) -> SuiteResult:
    result = golden.check(model)
    checks = [
        Check("outputs within tolerance", not result.off_tolerance, result.describe()),
        Check(
            "actions unchanged",
            not result.action_changed,
            f"{len(result.action_changed)} of {result.rows} decisive rows changed action"
            + (f" (rows {result.action_changed[:8]})" if result.action_changed else ""),
        ),
    ]
    data: dict[str, Any] = {
        "atol": result.atol,
        "max_abs_error": result.max_abs_error,
        "row_errors": result.row_errors,
        "golden_model": golden.model_content_hash,
    }
    return SuiteResult("golden", checks, data)
