"""Blue/green deployment of one named model: two warm slots and an atomic switch.

``Deployment`` implements :class:`~system0.serving.service.ModelService`. It holds two slots
(blue and green), each an engine over one loaded registry version. ``deploy(version)`` fills
the slot that is not serving: the gate check (the release gate's signed report), the registry
load (pins re-hashed), the golden check, a fresh engine from ``engine_factory`` and a warm-up
of every bucket size through the real request path. Only then is the slot a *candidate*;
nothing has changed for traffic. ``promote()`` makes it active by replacing one reference,
which is atomic: a call reads that reference once (a version and its engine, never a slot
that may be refilled) and is answered by that version whole; the slot it replaced becomes
*previous* and stays warm. ``rollback()`` is the same switch back, so it costs the pointer
write and the audit entry, not a load.

A call keeps its version's in-flight count up until its last answer is set; a replaced engine
is closed only when nothing is in flight on it, so no request fails because of a switch (a
call that read the reference just before it moved and finds the engine closed is retried on
the new one). After a
promote a :class:`~system0.serving.watch.SwitchWatch` judges the new version's answers; a
breach of the :class:`~system0.serving.watch.RollbackPolicy` rolls back by itself and marks
the slot *failed* (it is not promoted again until it is deployed again).

Every answered tick goes through the inline guards when there are some
(:mod:`system0.serving.guards`). Every deploy, refusal, switch, rollback and guard veto is one
entry in the audit ledger.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import numpy as np

from system0 import _core
from system0.core import telemetry
from system0.data.serialization import featurize_requests
from system0.errors import (
    Closed,
    DeadlineExceeded,
    Draining,
    InternalError,
    NotFound,
    Overloaded,
    ValidationError,
)
from system0.game.simulator import ACTIONS
from system0.interfaces.inference_engine import EngineFuture, InferenceResult, InvalidRequest
from system0.interfaces.model_interface import AIModelInterface
from system0.security.audit import AuditLedger
from system0.serving.engine_io import StateEngine, state_engine, submit_states
from system0.serving.guards import GuardRules, Guards
from system0.serving.registry import ModelRegistry, ModelVersion, warm_up
from system0.serving.service import ServedAnswer
from system0.serving.watch import RollbackPolicy, SwitchWatch

__all__ = ["Deployment"]

_log = logging.getLogger("system0.serving.deployment")
Clock = Callable[[], int]
# failures that say nothing about the version: the caller's input, the load, the deadline
_NOT_THE_MODEL = (InvalidRequest, Overloaded, DeadlineExceeded)


class _Loaded:
    """One version in memory: its pins, its engine, and the calls in flight on it.

    Traffic holds a reference to this object, never to a slot: a call answered by it is
    labelled with its version even if the slot is refilled while the call runs.
    """

    def __init__(self, version: ModelVersion, engine: StateEngine) -> None:
        self.version = version
        self.label = version.version
        self.engine = engine
        self._cv = threading.Condition()
        self._inflight = 0

    def enter(self) -> None:
        with self._cv:
            self._inflight += 1

    def leave(self) -> None:
        with self._cv:
            self._inflight -= 1
            if self._inflight == 0:
                self._cv.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: self._inflight == 0, timeout)

    @property
    def inflight(self) -> int:
        return self._inflight


class _Slot:
    """One colour: what it holds and its role in the lifecycle."""

    def __init__(self, color: str) -> None:
        self.color = color
        self.loaded: _Loaded | None = None
        self.role = "empty"  # empty | candidate | active | previous | failed
        self.note: str | None = None  # why a failed slot failed

    @property
    def version(self) -> str | None:
        return self.loaded.label if self.loaded is not None else None


class _VetoWriter:
    """Appends guard-veto entries to the ledger on its own thread, a tick's entries at once;
    ``close`` writes what is queued before returning, so no veto goes unaudited."""

    def __init__(self, audit: AuditLedger, name: str) -> None:
        self._audit = audit
        self._queue: queue.SimpleQueue[list[dict[str, Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"{name}-veto-audit", daemon=True)
        self._thread.start()
        self.failures = 0

    def put(self, entries: list[dict[str, Any]]) -> None:
        self._queue.put(entries)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[dict[str, Any]] = []
            stop = item is None
            if item is not None:
                batch.extend(item)
            while not stop and len(batch) < 4096:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                else:
                    batch.extend(more)
            if batch:
                try:
                    self._audit.append_many(batch)
                except Exception:
                    self.failures += len(batch)
                    _log.exception("auditing %d guard vetoes failed", len(batch))
            if stop:
                return

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Deployment:
    """A named model served blue/green from ``registry``; see the module docs.

    ``engine_factory(model)`` builds a slot's engine (default: :func:`state_engine`);
    ``golden_check(model)`` and ``gate_check(version)`` raise a system0 ``Error`` to refuse a
    deploy; ``guards`` are signed :class:`GuardRules` (or ready :class:`Guards`); ``audit``
    the ledger that records the lifecycle; ``rollback_policy`` the watch after a promote;
    ``clock`` (ns) the watch's clock.
    """

    def __init__(
        self,
        name: str,
        registry: ModelRegistry,
        *,
        engine_factory: Callable[[AIModelInterface], StateEngine] = state_engine,
        golden_check: Callable[[AIModelInterface], None],
        gate_check: Callable[[ModelVersion], None] | None = None,
        guards: GuardRules | Guards | None = None,
        audit: AuditLedger | None = None,
        rollback_policy: RollbackPolicy | None = None,
        clock: Clock = _core.now_ns,
        drain_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.registry = registry
        self.engine_factory = engine_factory
        self.golden_check = golden_check
        self.gate_check = gate_check
        self.guards = Guards(guards, model=name) if isinstance(guards, GuardRules) else guards
        self.audit = audit
        self.rollback_policy = rollback_policy or RollbackPolicy()
        self.clock = clock
        self.drain_timeout = drain_timeout
        self._slots = (_Slot("blue"), _Slot("green"))
        self._active: _Slot | None = None  # the serving slot (lifecycle, under _ops)
        # what traffic reads: the one reference a switch writes
        self._serving: _Loaded | None = None
        self._ops = threading.Lock()  # deploy, promote, rollback, drain: one at a time
        self._draining = False
        self._watch: SwitchWatch | None = None
        self.last_switch_ns = 0  # how long the last switch held traffic's reference
        self.last_switch_at_ns = 0  # when traffic's reference last moved (process clock)
        self._h_switch = telemetry.histogram("serving_switch_ns", ("model",)).labels(name)
        self._c_auto = telemetry.counter("serving_auto_rollbacks", ("model",)).labels(name)
        self._veto_log = _VetoWriter(audit, name) if audit is not None and guards else None

    def __repr__(self) -> str:
        act = self._active
        return f"Deployment({self.name!r}, active={act.version if act else None!r})"

    # --- serving -------------------------------------------------------------------------

    def submit(
        self, items: Sequence[bytes], budget: float, *, match: str = ""
    ) -> list[Future[ServedAnswer]]:
        """Answer one tick, all of it by one version; ``match`` scopes guard rate limits."""
        for attempt in (0, 1):
            if self._draining:
                raise Draining(f"{self.name} is draining; it admits no new requests")
            loaded = self._serving  # read once: this call is answered by this version
            if loaded is None:
                raise Closed(f"{self.name}: no version is active; deploy and promote one")
            loaded.enter()
            try:
                inner = submit_states(loaded.engine, items, budget)
            except Closed:
                loaded.leave()
                # the reference moved while this call read it: the new version answers instead
                if attempt == 0 and self._serving is not loaded:
                    continue
                raise
            except BaseException:
                loaded.leave()
                raise
            return self._answers(loaded, items, inner, match)
        raise Closed(f"{self.name}: the active version changed twice during one call; retry")

    def _answers(
        self,
        loaded: _Loaded,
        items: Sequence[bytes],
        inner: list[EngineFuture],
        match: str,
    ) -> list[Future[ServedAnswer]]:
        outer: list[Future[ServedAnswer]] = [Future() for _ in inner]
        if not inner:
            loaded.leave()
            return outer
        left = [len(inner)]
        lock = threading.Lock()

        def one_done(_: EngineFuture) -> None:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:  # the tick is judged whole: guards are vectorized over its rows
                try:
                    self._settle(loaded, items, inner, outer, match)
                except BaseException as exc:  # never leave a caller waiting on a future
                    _log.exception("%s: settling a tick failed", self.name)
                    for out in outer:
                        if not out.done():
                            out.set_exception(exc)
                finally:
                    loaded.leave()

        for f in inner:
            f.add_done_callback(one_done)
        return outer

    def _settle(
        self,
        loaded: _Loaded,
        items: Sequence[bytes],
        inner: list[EngineFuture],
        outer: list[Future[ServedAnswer]],
        match: str,
    ) -> None:
        version = loaded.label
        results: list[InferenceResult | None] = []
        errors = 0
        latencies: list[int] = []
        for f, out in zip(inner, outer, strict=True):
            exc = f.exception()
            if exc is not None:
                results.append(None)
                out.set_exception(exc)
                errors += not isinstance(exc, _NOT_THE_MODEL)
                continue
            r = f.result()
            results.append(r)
            errors += r.fallback
            latencies.append(r.total_ns)
        ok = [i for i, r in enumerate(results) if r is not None]
        vetoes: list[str | None] = [None] * len(ok)
        actions: list[int] = [results[i].action for i in ok]  # type: ignore[union-attr]
        outputs: list[Any] = [results[i].outputs for i in ok]  # type: ignore[union-attr]
        if self.guards is not None and ok:
            try:
                vetoes, actions, outputs = self._guard(items, ok, actions, outputs, match)
            except Exception as exc:  # a guard failure must not lose the answers: fail closed
                _log.exception("%s: guard evaluation failed", self.name)
                for i in ok:
                    outer[i].set_exception(exc)
                return
        for k, i in enumerate(ok):
            res = results[i]
            assert res is not None
            rule = vetoes[k]
            outer[i].set_result(
                ServedAnswer(
                    actions[k],
                    outputs[k],
                    res.fallback or rule is not None,
                    res.reason if rule is None else f"guard {rule} vetoed action {res.action}",
                    version,
                    rule,
                    res.batch_id,
                    res.row,
                    res.queue_wait_ns,
                    res.model_ns,
                    res.total_ns,
                )
            )
        if any(v is not None for v in vetoes):
            self._audit_vetoes(version, match, ok, results, vetoes, actions)
        watch = self._watch
        if watch is not None and watch.version == version:
            breach = watch.observe(latencies, errors)
            if breach is not None:  # off the engine's thread: a switch takes the ops lock
                threading.Thread(
                    target=self._auto_rollback, args=(loaded, breach), daemon=True
                ).start()

    def _guard(
        self,
        items: Sequence[bytes],
        ok: list[int],
        actions: list[int],
        outputs: list[Any],
        match: str,
    ) -> tuple[list[str | None], list[int], list[Any]]:
        assert self.guards is not None
        picked = [items[i] for i in ok]
        x, _, errs = featurize_requests(picked)
        if errs:  # the engine admitted these very bytes: a codec disagreement is a bug
            raise InternalError(f"{self.name}: the codec refused a state the engine admitted")
        got = self.guards.apply(
            x,
            np.stack(outputs).astype(np.float32, copy=False),
            np.asarray(actions, np.int64),
            picked,
            match=match,
        )
        return got.vetoes, got.actions.tolist(), list(got.outputs)

    def _audit_vetoes(
        self,
        version: str,
        match: str,
        ok: list[int],
        results: list[InferenceResult | None],
        vetoes: list[str | None],
        actions: list[int],
    ) -> None:
        """One ledger entry per veto, handed to the veto writer (the ledger may fsync each
        append: that wait belongs on its own thread, not on the engine's batcher)."""
        if self._veto_log is None:
            return
        now = _now_iso()
        entries = []
        for k, i in enumerate(ok):
            rule, r = vetoes[k], results[i]
            if rule is None or r is None:
                continue
            entries.append(
                {
                    "event": "guard_veto",
                    "model": self.name,
                    "version": version,
                    "rule": rule,
                    "action": ACTIONS[r.action],
                    "replacement": ACTIONS[actions[k]],
                    "match": match,
                    "batch_id": r.batch_id,
                    "row": r.row,
                    "time": now,
                }
            )
        self._veto_log.put(entries)

    def ready(self) -> bool:
        return not self._draining and self._serving is not None

    def describe(self) -> dict[str, Any]:
        """``{"name", "active", "standby", "versions": [...]}``; a version's ``state`` is
        ``active``, ``candidate`` (warm, deployed, not yet promoted), ``previous`` (warm, the
        rollback target), ``failed`` (rolled back by a breach) or ``available``."""
        roles = {s.version: s for s in self._slots if s.version is not None}
        active = self._active
        standby = self._standby()
        versions = []
        for mv in self.registry.versions(self.name):
            slot = roles.get(mv.version)
            entry: dict[str, Any] = {
                "version": mv.version,
                "content_hash": mv.content_hash,
                "config_hash": mv.config_hash,
                "state": slot.role if slot is not None else "available",
            }
            if slot is not None:
                entry["slot"] = slot.color
                if slot.note:
                    entry["note"] = slot.note
            versions.append(entry)
        return {
            "name": self.name,
            "active": active.version if active is not None else None,
            "standby": standby.version,
            "draining": self._draining,
            "last_switch_ns": self.last_switch_ns,
            "versions": versions,
        }

    # --- lifecycle -----------------------------------------------------------------------

    def _standby(self) -> _Slot:
        blue, green = self._slots
        return green if self._active is blue else blue

    def _record(self, event: str, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.append({"event": event, "model": self.name, "time": _now_iso(), **fields})

    def deploy(self, version: str) -> None:
        with self._ops:
            if self._draining:
                raise Draining(f"{self.name} is draining; resume it before deploying")
            try:
                active = self._active
                if active is not None and active.version == version:
                    raise ValidationError(f"{self.name}: {version} is already the active version")
                mv = self.registry.get(self.name, version)
                if self.gate_check is not None:
                    self.gate_check(mv)
                model = mv.load()
                self.golden_check(model)
                engine = self.engine_factory(model)
                try:
                    warm_up(engine)
                except BaseException:
                    engine.close()
                    raise
            except Exception as exc:
                self._record(
                    "deploy_refused", version=version, error=type(exc).__name__, reason=str(exc)
                )
                raise
            slot = self._standby()
            old = slot.loaded
            slot.loaded, slot.role, slot.note = _Loaded(mv, engine), "candidate", None
            self._record(
                "deploy",
                version=mv.version,
                content_hash=mv.content_hash,
                config_hash=mv.config_hash,
                slot=slot.color,
            )
            if old is not None:
                self._retire(old)

    def _retire(self, old: _Loaded) -> None:
        """Close a replaced engine once the calls still on it have their answers."""
        if not old.wait_idle(self.drain_timeout):
            _log.warning("%s: closing %s with calls still in flight", self.name, old.label)
        old.engine.close()

    def _switch(self, target: _Slot, event: str, **fields: Any) -> int:
        """Make ``target`` active; returns how long traffic's reference took to move (ns)."""
        start = _core.now_ns()
        before = self._active
        self._serving = target.loaded
        self.last_switch_at_ns = _core.now_ns()
        self._active = target
        took = self.last_switch_at_ns - start
        target.role = "active"
        self.last_switch_ns = took
        self._h_switch.record(took)
        self._record(
            event,
            version=target.version,
            previous=before.version if before is not None else None,
            slot=target.color,
            switch_ns=took,
            **fields,
        )
        return took

    def promote(self) -> None:
        with self._ops:
            slot = self._standby()
            if slot.role != "candidate" or slot.loaded is None:
                raise NotFound(
                    f"{self.name}: no candidate in the idle slot ({slot.role}); deploy a "
                    "version first"
                )
            before = self._active
            self._switch(slot, "promote")
            if before is not None:
                before.role = "previous"
            self._watch = SwitchWatch(self.rollback_policy, slot.loaded.label, self.clock)

    def rollback(self) -> None:
        with self._ops:
            self._rollback("rollback", "candidate")

    def _rollback(self, event: str, demoted: str, **fields: Any) -> None:
        slot = self._standby()
        if slot.role != "previous" or slot.loaded is None:
            raise NotFound(
                f"{self.name}: no previous version is warm in the idle slot ({slot.role}); "
                "deploy and promote the version to go back to"
            )
        before = self._active
        self._watch = None
        self._switch(slot, event, **fields)
        if before is not None:
            before.role = demoted

    def _auto_rollback(self, loaded: _Loaded, breach: str) -> None:
        with self._ops:
            slot = self._active
            if slot is None or self._serving is not loaded:
                return  # someone switched already
            try:
                self._rollback("auto_rollback", "failed", breach=breach)
            except NotFound:
                _log.error(
                    "%s: %s, but there is no previous version to roll back to", self.name, breach
                )
                self._record("auto_rollback_impossible", breach=breach)
                return
            slot.note = breach
            self._c_auto.inc()
            _log.warning("%s: rolled back by itself: %s", self.name, breach)

    def drain(self) -> None:
        with self._ops:
            self._draining = True
            self._record("drain")
        for s in self._slots:
            if s.loaded is not None:
                s.loaded.wait_idle(self.drain_timeout)

    def resume(self) -> None:
        """Admit requests again after :meth:`drain`."""
        with self._ops:
            self._draining = False
            self._record("resume")

    def close(self) -> None:
        """Drain, then close both slots' engines."""
        self.drain()
        with self._ops:
            self._serving = None
            self._active = None
            for s in self._slots:
                if s.loaded is not None:
                    s.loaded.engine.close()
                s.loaded, s.role = None, "empty"
            if self._veto_log is not None:
                self._veto_log.close()
                self._veto_log = None
