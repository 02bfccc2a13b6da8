"""The served run's flight recording: decisions kept as the demo keeps them, written as
run folders that ``system0 replay`` verifies and replays.

:meth:`ServedRecording.recorder` gives the engine of one served version its
:class:`~system0.interfaces.flight_recorder.FlightRecorder` (complete or sampled, the
``mode``) and opens that version's run folder (``ROOT/<model>-<version>/``: the weights
that answered, the effective config, the keyring and the ledger's first entry). A version
is one model, so one folder per version keeps each replay on the weights that made its
decisions. :meth:`ServedRecording.finish` (the app calls it when it shuts down) writes the
decisions into the folder's storage, one digest per batch into its ledger, and seals the
manifest, exactly as a demo run is finished; nothing of it runs while requests are answered.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from system0.core.config import AIConfig
from system0.demo_run import RunWriter
from system0.errors import ValidationError
from system0.interfaces.flight_recorder import FlightRecorder, Recording
from system0.interfaces.model_interface import ModelInfo
from system0.run_folder import body_hash, write_manifest

__all__ = ["SUBJECT", "ServedRecording", "ServedRun"]

SUBJECT = "system0-serve"


@dataclass
class ServedRun:
    """One version's recording in progress: its run folder and its recorder."""

    name: str
    version: str
    writer: RunWriter
    recorder: FlightRecorder
    started: float


class ServedRecording:
    """Flight recording for a server (see the module doc). Thread-safe."""

    def __init__(
        self,
        root: str | Path,
        *,
        mode: Recording = "complete",
        rate: float = 1.0,
        seed: int = 0,
        config: AIConfig | None = None,
    ) -> None:
        FlightRecorder(mode, rate=rate, seed=seed)  # the settings, checked once, here
        self.root = Path(root)
        self.mode, self.rate, self.seed = mode, rate, seed
        self.config = config or AIConfig()
        self.runs: list[ServedRun] = []
        self._lock = threading.Lock()
        self._finished = False

    def recorder(self, name: str, version: str, weights: Path, info: ModelInfo) -> FlightRecorder:
        """The recorder for the engine serving ``name`` at ``version`` from ``weights``."""
        with self._lock:
            if self._finished:
                raise ValidationError("this recording is finished; start a new one")
            if any(r.name == name and r.version == version for r in self.runs):
                raise ValidationError(f"{name} {version} is recorded already")
            writer = RunWriter.create(self.root / f"{name}-{version}", self.config, info, weights)
            rec = FlightRecorder(self.mode, rate=self.rate, seed=self.seed)
            writer.body["serving"] = {"model": name, "version": version}
            writer.ledger.append(
                {
                    "type": "run_started",
                    "run_id": writer.run_id,
                    "config": self.config.content_hash,
                    "policy": info.content_hash,
                    "backend": info.backend,
                    "serving": writer.body["serving"],
                }
            )
            self.runs.append(ServedRun(name, version, writer, rec, time.perf_counter()))
            return rec

    def finish(self) -> list[Path]:
        """Write every version's run folder; returns them. Idempotent."""
        with self._lock:
            if self._finished:
                return [r.writer.run for r in self.runs]
            self._finished = True
            runs = list(self.runs)
        return [_finish(r) for r in runs]


def _finish(r: ServedRun) -> Path:
    """Decisions into storage, digests into the ledger, the manifest sealed and signed: the
    demo's ``RunWriter.finish`` without the training samples a served run does not have."""
    from system0.data.storage import ScalableStorage

    w, rec = r.writer, r.recorder
    ledger, rid = w.ledger, w.run_id
    digests = rec.digests()
    if digests:
        ledger.append_many(digests)
    w.body["recording"] = {
        "mode": rec.mode,
        "rate": rec.rate,
        "seed": rec.seed,
        "batches": len(digests),
        "skipped_batches": rec.skipped,
        "decisions": rec.decisions,
        "ledger": "one decision_batch entry per recorded batch (digests)",
    }
    data: dict[str, Any] = {"root": "data", "tag": rid}
    with ScalableStorage(w.run / "data", audit=ledger, subject=SUBJECT) as storage:
        if rec.decisions:
            table = rec.table(config_hash=w.config.content_hash, model_hash=w.info.content_hash)
            d = storage.commit(table, dataset="decisions", message=f"served run {rid}")
            storage.tag(rid, dataset="decisions", version=d.id)
            data["decisions"] = {"dataset": "decisions", "version": d.id, "rows": d.rows}
    w.body["data"] = data
    w.body["play_wall_s"] = round(time.perf_counter() - r.started, 6)
    manifest = dict(w.body)
    manifest["sealed"] = body_hash(manifest)
    ledger.append({"type": "run_sealed", "run_id": rid, "manifest": manifest["sealed"]})
    cp = ledger.checkpoint()
    key = ledger.public_key
    manifest["ledger"] = {
        "path": "audit",
        "ledger_id": ledger.ledger_id.hex(),
        "public_key": key.hex() if key is not None else None,
        "size": cp.size,
        "root": cp.root.hex(),
        "checkpoint": cp.to_json(),
    }
    ledger.close()
    write_manifest(w.run, manifest)
    return w.run
