"""Writing one demo run into its run folder (layout and manifest: ``system0.run_folder``).

:class:`RunWriter` is created before the matches start (the folder, the effective config,
the weights, the keyring and the ledger's first entry) and finished after they end: the
ledger gets one entry per match and one digest per recorded batch, storage gets the training
samples (codec-validated) and the decisions as one version each, tagged with the run id
(every write audited in the same ledger), and the manifest is sealed into the ledger before
its signed checkpoint. Nothing here runs while the engine answers.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from system0 import _core
from system0.core.config import AIConfig
from system0.data.models import format_rfc3339
from system0.demo_play import PlaySettings, Sink, match_seed
from system0.interfaces.flight_recorder import FlightRecorder
from system0.interfaces.model_interface import ModelInfo
from system0.run_folder import (
    AUDIT,
    CONFIG,
    DATA,
    FORMAT,
    VERSION,
    RunKeys,
    body_hash,
    create_keys,
    file_sha256,
    make_run_dir,
    run_id,
    write_manifest,
)
from system0.security.audit import AuditLedger
from system0.security.encryption import SigningKey

__all__ = ["RunResult", "RunWriter"]

SUBJECT = "system0-demo"


@dataclass
class RunResult:
    run: Path
    manifest: dict[str, Any]
    audit: str
    persist_s: float
    keys: str
    extra: dict[str, str] = field(default_factory=dict)

    def rows(self) -> dict[str, str]:
        return self.extra


class RunWriter:
    """One run folder being written; see the module doc."""

    def __init__(
        self,
        run: Path,
        rid: str,
        config: AIConfig,
        info: ModelInfo,
        keys: RunKeys,
        ledger: AuditLedger,
        body: dict[str, Any],
    ) -> None:
        self.run, self.run_id, self.config, self.info = run, rid, config, info
        self.keys, self.ledger, self.body = keys, ledger, body

    @classmethod
    def create(
        cls,
        out: str | os.PathLike[str] | None,
        config: AIConfig,
        info: ModelInfo,
        weights: Path,
        *,
        signature: Path | None = None,
    ) -> RunWriter:
        started = datetime.now(UTC)
        run, rid = make_run_dir(out, run_id(config.content_hash, started))
        try:
            (run / CONFIG).write_text(config.to_yaml(), encoding="utf-8")
            if signature is not None:  # it signs the resolved form, which config.yaml holds
                shutil.copyfile(signature, run / (CONFIG + ".sig"))
            (run / "model").mkdir()
            model_file = run / "model" / weights.name
            shutil.copyfile(weights, model_file)
            keys = create_keys(run)
            ledger = AuditLedger.open(
                run / AUDIT, keyring=keys.keyring, signing_key=SigningKey.generate(), fsync="never"
            )
        except BaseException:
            shutil.rmtree(run, ignore_errors=True)  # new and empty when we made it: no run yet
            raise
        body: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "run_id": rid,
            "started": format_rfc3339(started),
            "system0": _core.__version__,
            "config": {
                "file": CONFIG,
                "hash": config.content_hash,
                "signature": CONFIG + ".sig" if signature is not None else None,
            },
            "policy": {
                "file": f"model/{weights.name}",
                "file_sha256": file_sha256(model_file),
                "hash": info.content_hash,
                "backend": info.backend,
                "device": info.device,
            },
            "keys": keys.manifest(),
        }
        return cls(run, rid, config, info, keys, ledger, body)

    def started(
        self,
        settings: PlaySettings,
        engine: Any,
        *,
        signed_by: str | None,
        overrides: list[str],
    ) -> None:
        """Record what is about to run: in the manifest body and as the ledger's first entry."""
        from system0.game.simulator import CHAMPIONS

        self.body["config"].update({"signed_by": signed_by, "overrides": overrides})
        self.body["engine"] = {
            "max_batch": engine.max_batch,
            "max_wait_ms": engine.max_wait_ns / 1e6,
            "buckets": list(engine.buckets),
            "queue_capacity": engine.queue.capacity,
        }
        self.body["simulation"] = {
            "matches": settings.matches,
            "ticks": settings.ticks,
            "tick_rate": settings.tick_rate,
            "seed": settings.seed,
            "match_seeds": [match_seed(settings.seed, m) for m in range(settings.matches)],
            "budget_ms": settings.budget_s * 1e3,
            "corrupt": settings.corrupt,
            "champions": list(CHAMPIONS),
        }
        self.ledger.append(
            {
                "type": "run_started",
                "run_id": self.run_id,
                "config": self.config.content_hash,
                "policy": self.info.content_hash,
                "backend": self.info.backend,
                "simulation": self.body["simulation"],
            }
        )

    def finish(self, sink: Sink, recorder: FlightRecorder | None, wall_s: float) -> RunResult:
        """Store the samples and decisions, seal the manifest, sign the checkpoint."""
        from system0.data.storage import ScalableStorage
        from system0.game.samples import match_samples, training_batch

        t0 = time.perf_counter()
        ledger, rid = self.ledger, self.run_id
        sim = self.body["simulation"]
        ledger.append_many(
            {
                "type": "match_played",
                "run_id": rid,
                "match": m,
                "seed": sim["match_seeds"][m],
                "ticks": sim["ticks"],
                "policy": self.info.content_hash,
            }
            for m in range(sim["matches"])
        )
        recording: dict[str, Any] = {"mode": "off"}
        if recorder is not None:
            digests = recorder.digests()
            if digests:
                ledger.append_many(digests)
            recording = {
                "mode": recorder.mode,
                "rate": recorder.rate,
                "seed": recorder.seed,
                "batches": len(digests),
                "skipped_batches": recorder.skipped,
                "decisions": recorder.decisions,
                "ledger": "one decision_batch entry per recorded batch (digests)",
            }
        self.body["recording"] = recording
        data: dict[str, Any] = {"root": DATA, "tag": rid}
        with ScalableStorage(self.run / DATA, audit=ledger, subject=SUBJECT) as storage:
            samples = [
                s
                for m in sorted(sink.states)
                for s in match_samples(
                    sink.states[m], sink.actions[m], match_id=f"{rid}/m{m}", source=SUBJECT
                )
            ]
            v = storage.commit(training_batch(samples), dataset="samples", message=f"run {rid}")
            storage.tag(rid, dataset="samples", version=v.id)
            data["samples"] = {"dataset": "samples", "version": v.id, "rows": v.rows}
            if recorder is not None and recorder.decisions:
                table = recorder.table(
                    config_hash=self.config.content_hash,
                    model_hash=self.info.content_hash,
                    context=sink.context,
                )
                d = storage.commit(table, dataset="decisions", message=f"run {rid}")
                storage.tag(rid, dataset="decisions", version=d.id)
                data["decisions"] = {"dataset": "decisions", "version": d.id, "rows": d.rows}
        self.body["data"] = data
        self.body["play_wall_s"] = round(wall_s, 6)
        manifest = dict(self.body)
        manifest["sealed"] = body_hash(manifest)
        ledger.append({"type": "run_sealed", "run_id": rid, "manifest": manifest["sealed"]})
        cp = ledger.checkpoint()
        key = ledger.public_key
        proved = key is not None and ledger.inclusion_proof(0, cp).verify(key)
        manifest["ledger"] = {
            "path": AUDIT,
            "ledger_id": ledger.ledger_id.hex(),
            "public_key": key.hex() if key is not None else None,
            "size": cp.size,
            "root": cp.root.hex(),
            "checkpoint": cp.to_json(),
        }
        ledger.close()
        write_manifest(self.run, manifest)
        persist = time.perf_counter() - t0
        audit = (
            f"{cp.size} entries in {self.run / AUDIT} (signed checkpoint; inclusion proof "
            f"{'verified' if proved else 'FAILED'})"
        )
        cfg = self.body["config"]
        stored = [f"samples {data['samples']['version'][:12]} ({data['samples']['rows']} rows)"]
        if "decisions" in data:
            d = data["decisions"]
            stored.append(f"decisions {d['version'][:12]} ({d['rows']} rows)")
        extra = {
            "run folder": str(self.run),
            "config": self.config.content_hash
            + (f", signed by {cfg['signed_by']}" if cfg.get("signed_by") else ", unsigned"),
            "policy": f"{self.info.content_hash[:16]} ({self.body['policy']['file']})",
            "keyring": self.keys.description,
            "data": ", ".join(stored) + f"; tagged {rid}",
            "flight recorder": _describe(recording),
            "persisting the run": f"{persist:.2f} s (storage, ledger, manifest; after the play)",
        }
        return RunResult(self.run, manifest, audit, persist, self.keys.description, extra)


def _describe(recording: dict[str, Any]) -> str:
    if recording["mode"] == "off":
        return "off"
    share = "" if recording["mode"] == "complete" else f" at rate {recording['rate']:g}"
    return (
        f"{recording['mode']}{share}: {recording['decisions']} decisions in "
        f"{recording['batches']} batches ({recording['skipped_batches']} batches not kept)"
    )
