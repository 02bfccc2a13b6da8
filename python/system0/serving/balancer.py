"""``ReplicaSet``: several engine replicas behind a least-outstanding-requests balancer.

Each replica is an :class:`~system0.interfaces.inference_engine.InferenceEngine` built by a
factory, named ``"{name}#{slot}"`` (``slot`` the lowest free index, so the telemetry label
sets stay bounded by the largest size the set ever had, however often it scales). The set
offers the engine's surface (``submit``, ``submit_many``, ``asubmit``, ``infer``) and sends
each call to the serving replica with the fewest requests outstanding (submitted and not yet
answered); ties go round-robin, so an idle set spreads its first requests.

Why least-outstanding and not round-robin: a replica that is slow for a while (a GC pause,
a noisy neighbour, a bigger batch) keeps its requests longer, and gets fewer new ones.

Removing a replica (``scale_to`` a smaller size, ``remove``) follows one order, so that no
request is ever sent to a closed engine (the complaint "traffic sent to dead replicas"):

1. it leaves the balancer under the same lock that routing takes, so no new request can
   pick it once it is out;
2. it drains: the set waits until every request routed to it has its answer (up to
   ``drain_timeout``);
3. only then is its engine closed (which finishes anything still queued).

A new replica is warmed up (``engine.warmup()``) before it joins, so it never answers its
first requests cold.

A replica that refuses a request with ``Overloaded`` (its queue full, or its admission
estimate over the budget) is not the last word: the request is offered to the others, least
outstanding first, and only when every one refuses does the caller get ``Overloaded`` (the
smallest ``retry_after`` of them). ``load()`` reports the figures the autoscaler reads.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from system0.core import telemetry
from system0.errors import Closed, Overloaded
from system0.interfaces.inference_engine import EngineFuture, InferenceEngine, InferenceResult

__all__ = ["EngineFactory", "LoadSample", "Replica", "ReplicaInfo", "ReplicaSet"]

EngineFactory = Callable[[str], InferenceEngine]
"""Builds one replica's engine; gets the replica's name (pass it as the engine's ``name``)."""

ReplicaState = Literal["serving", "draining", "closed"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    """One replica as ``replicas()`` reports it."""

    name: str
    state: ReplicaState
    outstanding: int
    queue_depth: int
    routed: int


@dataclass(frozen=True, slots=True)
class LoadSample:
    """What the set carries now (read by the autoscaler once per window).

    ``outstanding``: requests routed and not yet answered, over the serving replicas;
    ``queue_depth``: requests waiting in their queues (a part of ``outstanding``);
    ``latency``: the set's request-latency histogram so far (the autoscaler takes deltas);
    ``rejected``: requests refused by every replica so far (a counter).
    """

    replicas: int
    outstanding: int
    queue_depth: int
    latency: telemetry.HistogramSnapshot
    rejected: int


class Replica:
    """One engine in the set, with the count of its requests in flight."""

    __slots__ = ("engine", "name", "outstanding", "routed", "slot", "state")

    def __init__(self, slot: int, name: str, engine: InferenceEngine) -> None:
        self.slot = slot
        self.name = name
        self.engine = engine
        self.state: ReplicaState = "serving"
        self.outstanding = 0  # guarded by the set's lock
        self.routed = 0

    def info(self) -> ReplicaInfo:
        return ReplicaInfo(
            self.name, self.state, self.outstanding, len(self.engine.queue), self.routed
        )


class ReplicaSet:
    """Engine replicas behind a least-outstanding-requests balancer (see the module doc).

    ``factory(name) -> InferenceEngine`` builds a replica; ``replicas`` is the starting size
    (at least 1); ``warmup`` runs ``engine.warmup()`` before a replica joins; a removed
    replica gets ``drain_timeout`` seconds for its answers before its engine is closed.
    """

    def __init__(
        self,
        factory: EngineFactory,
        replicas: int = 1,
        *,
        name: str = "replicas",
        warmup: bool = True,
        drain_timeout: float = 10.0,
    ) -> None:
        if not isinstance(replicas, int) or replicas < 1:
            raise ValueError(f"replicas must be an int >= 1, got {replicas!r}")
        if not drain_timeout > 0:
            raise ValueError(f"drain_timeout must be > 0 seconds, got {drain_timeout!r}")
        if "#" in name:
            raise ValueError(f"name must not hold '#' (it separates the replica slot): {name!r}")
        self.name = name
        self._factory = factory
        self._warmup = warmup
        self._drain_timeout = drain_timeout
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)  # notified as outstanding falls
        self._resize_lock = threading.Lock()  # one resize at a time; routing never waits on it
        self._serving: list[Replica] = []
        self._draining: list[Replica] = []
        self._rr = itertools.count()
        self._closed = False
        self._rejected = 0
        self._latency = telemetry.histogram(
            "replicaset_request_ns", ("set",), "request latency through the balancer"
        ).labels(name)
        self._size_gauge = telemetry.gauge("replicaset_replicas", ("set",)).labels(name)
        self._c_rejected = telemetry.counter("replicaset_rejected", ("set",)).labels(name)
        try:
            self.scale_to(replicas)
        except BaseException:  # a replica failed to build: close those already built
            self.close()
            raise

    # --- routing -----------------------------------------------------------------------------

    def _order(self) -> list[Replica]:
        """The serving replicas, least outstanding first (the lock held); equal counts in a
        rotating order, so ties do not always go to the first replica."""
        reps = self._serving
        if not reps:
            raise Closed(f"{self.name}: no replica is serving; scale_to(n >= 1) first")
        k = next(self._rr) % len(reps)
        rotated = reps[k:] + reps[:k]
        return sorted(rotated, key=lambda r: r.outstanding)  # sort is stable: ties rotate

    def _reserve(self, n: int, skip: Sequence[Replica] = ()) -> Replica | None:
        """Pick the least-outstanding serving replica not in ``skip`` and count ``n``
        requests against it, in one step under the lock that removal takes: a replica out
        of the balancer can never be picked, and one being drained waits for these."""
        with self._lock:
            if self._closed:
                raise Closed(f"{self.name} is closed; create a new ReplicaSet")
            for rep in self._order():
                if rep not in skip:
                    rep.outstanding += n
                    rep.routed += n
                    return rep
        return None

    def _release(self, rep: Replica, n: int) -> None:
        with self._lock:
            rep.outstanding -= n
            if rep.outstanding == 0 and rep.state == "draining":
                self._answered.notify_all()

    def _route(self, n: int, call: Callable[[InferenceEngine], T]) -> tuple[Replica, T]:
        """Run ``call`` on the least-outstanding replica with ``n`` requests reserved there;
        on ``Overloaded`` try the next one. The caller releases the reservation when the
        answers are in; here it is released only when the call raised."""
        tried: list[Replica] = []
        refusals: list[Overloaded] = []
        while (rep := self._reserve(n, tried)) is not None:
            try:
                return rep, call(rep.engine)
            except Overloaded as exc:
                self._release(rep, n)
                tried.append(rep)
                refusals.append(exc)
            except BaseException:
                self._release(rep, n)
                raise
        self._count_rejected(n)
        if not refusals:  # every replica left between the picks
            raise Closed(f"{self.name}: no replica is serving; scale_to(n >= 1) first")
        best = min(refusals, key=lambda e: e.retry_after)
        raise Overloaded(
            f"{self.name}: all {len(refusals)} replicas refused: {best}",
            depth=sum(e.depth for e in refusals),
            retry_after=best.retry_after,
        ) from refusals[-1]

    def _count_rejected(self, n: int) -> None:
        with self._lock:
            self._rejected += n
        self._c_rejected.inc(n)

    def _settle_on(self, rep: Replica, fut: EngineFuture) -> None:
        """When ``fut`` is answered: release its reservation and time it."""

        def done(f: EngineFuture) -> None:
            self._release(rep, 1)
            if not f.cancelled() and f.exception() is None:
                self._latency.record(f.result().total_ns)

        fut.add_done_callback(done)

    def submit(self, request: Any, budget: float) -> EngineFuture:
        """Queue one request on the least-outstanding replica (see ``InferenceEngine``)."""
        rep, fut = self._route(1, lambda e: e.submit(request, budget))
        self._settle_on(rep, fut)
        return fut

    def submit_many(self, requests: Any, budget: float) -> list[EngineFuture]:
        """Queue a tick on one replica (so it rides in as few batches as it can, and is
        refused whole, as ``InferenceEngine.submit_many`` refuses it)."""
        requests = requests if isinstance(requests, list | tuple) else list(requests)
        n = len(requests)
        if n == 0:
            return []
        rep, futs = self._route(n, lambda e: e.submit_many(requests, budget))
        for f in futs:
            self._settle_on(rep, f)
        return futs

    def submit_many_bytes(self, items: Sequence[bytes], budget: float) -> list[EngineFuture]:
        """Queue a tick of GameState JSON/msgpack bodies on one replica (the engine's bytes
        path: decoded in Rust, refused whole)."""
        n = len(items)
        if n == 0:
            return []
        rep, futs = self._route(n, lambda e: e.submit_many_bytes(items, budget))
        for f in futs:
            self._settle_on(rep, f)
        return futs

    def infer(self, request: Any, budget: float) -> InferenceResult:
        """Blocking: the answer of the least-outstanding replica, or the typed error."""
        rep, result = self._route(1, lambda e: e.infer(request, budget))
        self._release(rep, 1)
        self._latency.record(result.total_ns)
        return result

    async def asubmit(self, request: Any, budget: float) -> InferenceResult:
        """The awaitable form of :meth:`submit`."""
        result: InferenceResult = await self.submit(request, budget)
        return result

    # --- size --------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """How many replicas are serving (draining ones are not counted)."""
        with self._lock:
            return len(self._serving)

    def scale_to(self, n: int) -> int:
        """Grow or shrink to ``n`` serving replicas; returns the size reached.

        Growth builds and warms the new replicas before they join; shrinking takes out the
        replicas with the fewest requests outstanding (the newest among equals), drains and
        closes them (see the module doc), and returns once they are closed.
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"a ReplicaSet keeps at least 1 replica, asked for {n!r}")
        with self._resize_lock:
            if self._closed:
                raise Closed(f"{self.name} is closed; create a new ReplicaSet")
            while self.size < n:
                self._add()
            if self.size > n:
                with self._lock:
                    ranked = sorted(self._serving, key=lambda r: (r.outstanding, -r.slot))
                    leaving = ranked[: len(self._serving) - n]
                    for rep in leaving:
                        self._leave(rep)
                for rep in leaving:
                    self._drain_and_close(rep)
            self._size_gauge.set(self.size)
            return self.size

    def remove(self, name: str) -> None:
        """Take the replica ``name`` out (leave, drain, close); the set may not go empty."""
        with self._resize_lock:
            with self._lock:
                rep = next((r for r in self._serving if r.name == name), None)
                if rep is None:
                    known = ", ".join(r.name for r in self._serving)
                    raise ValueError(f"{self.name}: no serving replica {name!r} (serving: {known})")
                if len(self._serving) == 1:
                    raise ValueError(f"{self.name}: {name!r} is the last replica; add one first")
                self._leave(rep)
            self._drain_and_close(rep)
            self._size_gauge.set(self.size)

    def _add(self) -> None:
        with self._lock:
            used = {r.slot for r in self._serving + self._draining}
        slot = next(i for i in itertools.count() if i not in used)
        name = f"{self.name}#{slot}"
        engine = self._factory(name)
        if self._warmup:
            try:
                engine.warmup()
            except BaseException:
                engine.close()
                raise
        with self._lock:
            self._serving.append(Replica(slot, name, engine))

    def _leave(self, rep: Replica) -> None:
        """Out of the balancer (the lock held): no request can pick it from now on."""
        self._serving.remove(rep)
        rep.state = "draining"
        self._draining.append(rep)

    def _drain_and_close(self, rep: Replica) -> None:
        with self._lock:
            self._answered.wait_for(lambda: rep.outstanding == 0, self._drain_timeout)
        # close() lets the engine's workers finish anything still queued, so even a replica
        # whose drain timed out answers what it took
        rep.engine.close(self._drain_timeout)
        with self._lock:
            rep.state = "closed"
            self._draining.remove(rep)

    # --- reports and lifecycle ---------------------------------------------------------------

    def replicas(self) -> list[ReplicaInfo]:
        """Every replica not yet closed: the serving ones, then those draining."""
        with self._lock:
            return [r.info() for r in self._serving + self._draining]

    def engines(self) -> list[InferenceEngine]:
        """The serving replicas' engines (for stats and health checks; route through the set)."""
        with self._lock:
            return [r.engine for r in self._serving]

    def load(self) -> LoadSample:
        """The figures the autoscaler reads (see :class:`LoadSample`)."""
        with self._lock:
            reps = list(self._serving)
            outstanding = sum(r.outstanding for r in reps)
            rejected = self._rejected
        depth = sum(len(r.engine.queue) for r in reps)
        return LoadSample(len(reps), outstanding, depth, self._latency.snapshot(), rejected)

    def close(self) -> None:
        """Take every replica out, drain and close it; the set accepts nothing more."""
        with self._resize_lock:
            with self._lock:
                if self._closed:
                    return
                self._closed = True
                leaving = list(self._serving)
                for rep in leaving:
                    self._leave(rep)
            for rep in leaving:
                self._drain_and_close(rep)
            self._size_gauge.set(0)

    def __enter__(self) -> ReplicaSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
