"""The flight recorder: every decision the engine makes, kept so that it can be replayed.

A :class:`FlightRecorder` is the ``recorder=`` of an
:class:`~system0.interfaces.inference_engine.InferenceEngine`. The engine calls it once per
batch, after the batch's answers are settled; the recorder keeps a copy of the matrix the
model saw (padding included), the outputs, the actions and the fallback flag, and does nothing
else on that thread: turning them into a table and into ledger digests happens afterwards,
off the hot path (:meth:`FlightRecorder.table`, :meth:`FlightRecorder.digests`).

Recording is ``complete`` (every batch) or ``sampled`` (a share ``rate`` of the batches,
chosen by a hash of the batch id and ``seed``, so the same run keeps the same batches).
Sampling keeps or drops whole batches, never single rows: a replay needs the whole matrix
to run a batch again as it ran.

The ``decisions`` table has one row per decision, in batch order then row order:
``decision``, ``batch_id``, ``row`` (in its batch), ``batch_rows``, ``batch_padded``,
``inline``, ``features`` (the request's feature row as the model saw it), ``outputs``,
``action``, ``fallback``, ``reason``, ``config_hash``, ``model_hash``, and the caller's context
columns (``match``, ``tick``, ``champion`` in the demo; null where the caller gave none).
Each batch's digest holds the SHA-256 of the whole padded matrix and of the outputs, so a
replay proves it rebuilt the very bytes the model was given.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from system0.errors import ValidationError
from system0.interfaces.inference_engine import DecisionBatch

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["MODES", "FlightRecorder", "RecordedBatch", "Recording", "batch_digest"]

Recording = Literal["complete", "sampled"]
MODES: tuple[Recording, ...] = ("complete", "sampled")
_MASK = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class RecordedBatch:
    """A batch as the recorder kept it (its own copies of the engine's arrays)."""

    batch_id: int
    features: npt.NDArray[np.float32]  # (padded, features)
    rows: int
    outputs: npt.NDArray[Any]  # (rows, outputs)
    actions: npt.NDArray[np.int64]
    fallback: bool
    reason: str | None
    inline: bool

    @property
    def padded(self) -> int:
        return int(self.features.shape[0])


def batch_digest(
    features: npt.NDArray[Any], outputs: npt.NDArray[Any], actions: npt.NDArray[Any]
) -> dict[str, Any]:
    """The digest of one batch: what the ledger holds and a replay must reproduce."""
    f = np.ascontiguousarray(features)
    o = np.ascontiguousarray(outputs)
    return {
        "features_sha256": hashlib.sha256(f.tobytes()).hexdigest(),
        "features_shape": list(f.shape),
        "features_dtype": f.dtype.str,
        "outputs_sha256": hashlib.sha256(o.tobytes()).hexdigest(),
        "outputs_dtype": o.dtype.str,
        "actions": [int(a) for a in actions],
    }


def _keep_share(batch_id: int, seed: int) -> float:
    # splitmix64 of (batch id, seed): a stable, well-spread choice of batches for a seed
    z = (batch_id * 0x9E3779B97F4A7C15 + seed * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return (z ^ (z >> 31)) / 2.0**64


class FlightRecorder:
    """Keeps the engine's decisions (see the module doc). Thread-safe; cheap per call."""

    def __init__(self, mode: Recording = "complete", *, rate: float = 1.0, seed: int = 0) -> None:
        if mode not in MODES:
            raise ValidationError(f"recording must be one of {MODES}, got {mode!r}")
        if mode == "sampled" and not 0.0 < rate <= 1.0:
            raise ValidationError(f"a sampled recording needs a rate in (0, 1], got {rate!r}")
        self.mode: Recording = mode
        self.rate = 1.0 if mode == "complete" else float(rate)
        self.seed = seed
        self.skipped = 0  # batches sampling left out
        self._batches: list[RecordedBatch] = []
        self._lock = threading.Lock()

    def keeps(self, batch_id: int) -> bool:
        """Whether this recorder keeps batch ``batch_id``."""
        return self.rate >= 1.0 or _keep_share(batch_id, self.seed) < self.rate

    def __call__(self, batch: DecisionBatch) -> None:
        if not self.keeps(batch.batch_id):
            self.skipped += 1
            return
        kept = RecordedBatch(
            batch.batch_id,
            batch.features.copy(),  # the engine reuses nothing, a model may: keep our own
            batch.rows,
            np.array(batch.outputs, copy=True),
            np.array(batch.actions, dtype=np.int64, copy=True),
            batch.fallback,
            batch.reason,
            batch.inline,
        )
        with self._lock:
            self._batches.append(kept)

    @property
    def batches(self) -> list[RecordedBatch]:
        """The kept batches by batch id."""
        with self._lock:
            return sorted(self._batches, key=lambda b: b.batch_id)

    @property
    def decisions(self) -> int:
        with self._lock:
            return sum(b.rows for b in self._batches)

    def digests(self) -> list[dict[str, Any]]:
        """One ledger entry per kept batch: its id, sizes, flag and :func:`batch_digest`."""
        return [
            {
                "type": "decision_batch",
                "batch_id": b.batch_id,
                "rows": b.rows,
                "padded": b.padded,
                "inline": b.inline,
                "fallback": b.fallback,
                **batch_digest(b.features, b.outputs, b.actions),
            }
            for b in self.batches
        ]

    def table(
        self,
        *,
        config_hash: str,
        model_hash: str,
        context: Mapping[tuple[int, int], tuple[int, int, str]] | None = None,
    ) -> pa.Table:
        """The ``decisions`` table (see the module doc); ``context`` maps (batch id, row) to
        the caller's (match, tick, champion)."""
        import pyarrow as pa

        batches = self.batches
        if not batches:
            raise ValidationError("the flight recorder holds no decision; nothing to store")
        width = batches[0].features.shape[1]
        outs = batches[0].outputs.shape[1]
        dtype = batches[0].outputs.dtype
        for b in batches:
            if b.features.shape[1] != width or b.outputs.shape[1] != outs:
                raise ValidationError(
                    f"batch {b.batch_id} has {b.features.shape[1]} features and "
                    f"{b.outputs.shape[1]} outputs, batch {batches[0].batch_id} {width} and "
                    f"{outs}: one recording holds one model's decisions"
                )
        feats = np.concatenate([b.features[: b.rows] for b in batches])
        out = np.concatenate([b.outputs.astype(dtype, copy=False) for b in batches])
        n = len(feats)
        ctx = context or {}
        keys = [(b.batch_id, j) for b in batches for j in range(b.rows)]
        where = [ctx.get(k) for k in keys]

        def repeat(values: list[Any]) -> list[Any]:
            return [v for b, v in zip(batches, values, strict=True) for _ in range(b.rows)]

        columns: dict[str, Any] = {
            "decision": pa.array(np.arange(n, dtype=np.int64)),
            "batch_id": pa.array([k[0] for k in keys], pa.int64()),
            "row": pa.array([k[1] for k in keys], pa.int32()),
            "batch_rows": pa.array(repeat([b.rows for b in batches]), pa.int32()),
            "batch_padded": pa.array(repeat([b.padded for b in batches]), pa.int32()),
            "inline": pa.array(repeat([b.inline for b in batches]), pa.bool_()),
            "features": pa.FixedSizeListArray.from_arrays(pa.array(feats.ravel()), width),
            "outputs": pa.FixedSizeListArray.from_arrays(pa.array(out.ravel()), outs),
            "action": pa.array(np.concatenate([b.actions for b in batches]).astype(np.int32)),
            "fallback": pa.array(repeat([b.fallback for b in batches]), pa.bool_()),
            "reason": pa.array(repeat([b.reason for b in batches]), pa.string()),
            "config_hash": pa.array([config_hash] * n, pa.string()),
            "model_hash": pa.array([model_hash] * n, pa.string()),
            "match": pa.array([w[0] if w else None for w in where], pa.int32()),
            "tick": pa.array([w[1] if w else None for w in where], pa.int32()),
            "champion": pa.array([w[2] if w else None for w in where], pa.string()),
        }
        return pa.table(columns)
