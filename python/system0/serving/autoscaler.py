"""``Autoscaler``: sets a ReplicaSet's size from its queue depth and latency, without swinging.

Once per window the autoscaler reads the set's :class:`~system0.serving.balancer.LoadSample`
and turns it into one number, the **pressure**: how full the replicas are against their
targets, 1.0 meaning exactly at target. It is the larger of

* the load ratio: requests outstanding (queued and in flight) per replica over
  ``target_ongoing_requests`` (the figure Ray Serve scales on), and
* the latency ratio: the window's p99 request latency over ``latency_target_ms`` (when set;
  a window without requests has none).

Why it does not swing (Ray Serve users report replicas flapping every minute):

* **hysteresis**: it grows only above ``upscale_threshold`` and shrinks only below
  ``downscale_threshold``; between the two it holds;
* **a projected target**: a change goes to the size that brings the pressure to the middle
  of that band, never to its edge. Growth projects linearly (``n * p / middle``): an
  overloaded set's queue says little about how much more it needs, and more is the safe
  side. A shrink is projected with care, since fewer replicas also queue longer: each
  replica is modelled as a single-server queue, a pressure ``p`` is a utilisation
  ``u = p / (1 + p)`` (``p = u / (1 - u)`` is such a server's queue), ``u`` scales by
  ``n / m`` from ``n`` to ``m`` replicas, and the new pressure follows. The curve is convex:
  for an engine whose batching absorbs load better than one server would, it errs towards
  more replicas. A shrink whose projection lands over the middle of the band is not made;
  under a steady load, then, a change lands inside the band and no later window asks for
  the opposite one;
* **a memory of overload**: where the projection is wrong after all and the set has to grow
  from a size, the autoscaler remembers that size and the throughput (answers per second)
  it was failing to carry; for ``overload_memory_s`` it never shrinks back to that size (nor
  below) while the set carries at least 80 % of that throughput. It settles one replica above
  instead of swinging between the two; an idle set still shrinks to ``min_replicas``;
* **delays**: the pressure must stay over (under) its threshold for ``upscale_delay_s``
  (``downscale_delay_s``) without a break before the size changes: one noisy window is not
  a trend;
* **cooldowns**: after any change, no growth for ``upscale_cooldown_s`` and no shrink for
  ``downscale_cooldown_s``, so the set is judged once it has settled at its new size.

The size always stays within ``[min_replicas, max_replicas]``. Growing is quicker than
shrinking by default (short delay and cooldown up, long ones down): an overloaded set refuses
requests, an oversized one only costs idle replicas. Shrinking goes through the ReplicaSet, so
a replica leaves the balancer and drains before it is closed.

``evaluate(now_ns)`` is one window's step (tests drive it with a fake clock); ``start()`` runs
it on a thread every ``window_s`` seconds, ``stop()`` ends that.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from system0 import _core
from system0.core import telemetry
from system0.serving.balancer import LoadSample

__all__ = ["Autoscaler", "AutoscalingConfig", "Scalable", "ScalingDecision"]

_log = logging.getLogger("system0.serving.autoscaler")
# the share of a remembered overload's throughput at which a load counts as that load again:
# a throughput read over one window is noisy, and erring high only keeps a replica longer
_SAME_LOAD = 0.8
Direction = Literal["up", "down", "hold"]


class Scalable(Protocol):
    """What the autoscaler drives: a :class:`~system0.serving.balancer.ReplicaSet`."""

    @property
    def size(self) -> int: ...

    def load(self) -> LoadSample: ...

    def scale_to(self, n: int) -> int: ...


def _positive(name: str, value: float, *, zero: bool = False) -> None:
    ok = isinstance(value, int | float) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(f"AutoscalingConfig.{name} must be a finite number {bound}, got {value!r}")


@dataclass(frozen=True, slots=True)
class AutoscalingConfig:
    """Bounds, targets, thresholds and timings of an :class:`Autoscaler` (see the module doc).

    Times are seconds. ``latency_target_ms`` should sit well above an idle request's latency,
    or the latency ratio alone keeps the set from shrinking.
    """

    min_replicas: int = 1
    max_replicas: int = 4
    target_ongoing_requests: float = 4.0
    latency_target_ms: float | None = None
    upscale_threshold: float = 1.0
    downscale_threshold: float = 0.5
    window_s: float = 1.0
    upscale_delay_s: float = 2.0
    downscale_delay_s: float = 20.0
    upscale_cooldown_s: float = 2.0
    downscale_cooldown_s: float = 10.0
    overload_memory_s: float = 300.0

    def __post_init__(self) -> None:
        lo, hi = self.min_replicas, self.max_replicas
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
            raise ValueError(
                f"AutoscalingConfig needs integers 1 <= min_replicas <= max_replicas, "
                f"got min_replicas={lo!r}, max_replicas={hi!r}"
            )
        _positive("target_ongoing_requests", self.target_ongoing_requests)
        if self.latency_target_ms is not None:
            _positive("latency_target_ms", self.latency_target_ms)
        _positive("upscale_threshold", self.upscale_threshold)
        _positive("downscale_threshold", self.downscale_threshold)
        if not self.downscale_threshold < self.upscale_threshold:
            raise ValueError(
                "AutoscalingConfig.downscale_threshold must be below upscale_threshold (the "
                f"band between them is the hysteresis), got {self.downscale_threshold} and "
                f"{self.upscale_threshold}"
            )
        _positive("window_s", self.window_s)
        for name in ("upscale_delay_s", "downscale_delay_s"):
            _positive(name, getattr(self, name), zero=True)
        for name in ("upscale_cooldown_s", "downscale_cooldown_s", "overload_memory_s"):
            _positive(name, getattr(self, name), zero=True)

    @property
    def aim(self) -> float:
        """The load ratio a change aims at: the middle of the hysteresis band."""
        return (self.upscale_threshold + self.downscale_threshold) / 2


@dataclass(frozen=True, slots=True)
class ScalingDecision:
    """One window's verdict. ``direction`` is ``"hold"`` when the size stayed; ``reason``
    says why in words (for logs and the dashboard)."""

    at_ns: int
    before: int
    after: int
    direction: Direction
    pressure: float
    load_ratio: float
    latency_p99_ns: int | None
    reason: str


class Autoscaler:
    """Drives ``target``'s size by ``config`` (see the module doc). ``clock`` returns ns."""

    def __init__(
        self,
        target: Scalable,
        config: AutoscalingConfig | None = None,
        *,
        clock: Callable[[], int] = _core.now_ns,
        name: str = "autoscaler",
        history: int = 1000,
    ) -> None:
        self.target = target
        self.config = config or AutoscalingConfig()
        self.clock = clock
        self.name = name
        self.decisions: collections.deque[ScalingDecision] = collections.deque(maxlen=history)
        self._last_latency = target.load().latency
        self._over_since: int | None = None  # start of the current streak over the threshold
        self._under_since: int | None = None
        self._last_change_ns: int | None = None
        # size -> (when the set last had to grow from it, the throughput it carried then)
        self._overloaded: dict[int, tuple[int, float]] = {}
        self._last_eval_ns: int | None = None
        self._throughput = 0.0  # answers per second over the last window
        self._lock = threading.Lock()  # one evaluation at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._g_size = telemetry.gauge("autoscaler_replicas", ("autoscaler",)).labels(name)
        self._g_pressure = telemetry.gauge("autoscaler_pressure", ("autoscaler",)).labels(name)
        changes = telemetry.counter("autoscaler_changes", ("autoscaler", "direction"))
        self._c_up, self._c_down = changes.labels(name, "up"), changes.labels(name, "down")

    # --- one window --------------------------------------------------------------------------

    def evaluate(self, now_ns: int | None = None) -> ScalingDecision:
        """Read the load, decide, and resize when the decision says so; one window's step."""
        with self._lock:
            now = self.clock() if now_ns is None else now_ns
            decision = self._decide(now, self.target.load())
            if decision.after != decision.before:
                reached = self.target.scale_to(decision.after)
                self._last_change_ns = now
                self._over_since = self._under_since = None  # a new size: judge it afresh
                (self._c_up if decision.direction == "up" else self._c_down).inc()
                _log.info(
                    "%s: %d -> %d replicas (%s)",
                    self.name,
                    decision.before,
                    reached,
                    decision.reason,
                )
            self._g_size.set(decision.after)
            self._g_pressure.set(decision.pressure)
            self.decisions.append(decision)
            return decision

    def _decide(self, now: int, sample: LoadSample) -> ScalingDecision:
        cfg = self.config
        n = max(sample.replicas, 1)
        load_ratio = sample.outstanding / (n * cfg.target_ongoing_requests)
        window = sample.latency.delta(self._last_latency)
        self._last_latency = sample.latency
        span_s = cfg.window_s if self._last_eval_ns is None else (now - self._last_eval_ns) / 1e9
        self._last_eval_ns = now
        self._throughput = window.count / span_s if span_s > 0 else 0.0
        p99 = window.p99 if window.count else None
        latency_ratio = 0.0
        if cfg.latency_target_ms is not None and p99 is not None:
            latency_ratio = p99 / (cfg.latency_target_ms * 1e6)
        pressure = max(load_ratio, latency_ratio)

        def verdict(after: int, direction: Direction, reason: str) -> ScalingDecision:
            return ScalingDecision(
                now, sample.replicas, after, direction, pressure, load_ratio, p99, reason
            )

        if sample.replicas < cfg.min_replicas or sample.replicas > cfg.max_replicas:
            bounded = min(max(sample.replicas, cfg.min_replicas), cfg.max_replicas)
            way: Direction = "up" if bounded > sample.replicas else "down"
            return verdict(bounded, way, f"outside [{cfg.min_replicas}, {cfg.max_replicas}]")

        if pressure > cfg.upscale_threshold:
            self._under_since = None
            if self._over_since is None:
                self._over_since = now
            return self._grow(now, n, load_ratio, pressure, verdict)
        if pressure < cfg.downscale_threshold:
            self._over_since = None
            if self._under_since is None:
                self._under_since = now
            return self._shrink(now, n, load_ratio, pressure, verdict)
        self._over_since = self._under_since = None
        return verdict(n, "hold", f"pressure {pressure:.2f} inside the band")

    def _since_change(self, now: int) -> float:
        last = self._last_change_ns
        return math.inf if last is None else (now - last) / 1e9

    def _grow(
        self,
        now: int,
        n: int,
        load_ratio: float,
        pressure: float,
        verdict: Callable[[int, Direction, str], ScalingDecision],
    ) -> ScalingDecision:
        cfg = self.config
        assert self._over_since is not None
        held = (now - self._over_since) / 1e9
        if n >= cfg.max_replicas:
            return verdict(n, "hold", f"pressure {pressure:.2f} but at max_replicas {n}")
        if held < cfg.upscale_delay_s:
            return verdict(n, "hold", f"pressure {pressure:.2f} for {held:.1f}s, waiting")
        if self._since_change(now) < cfg.upscale_cooldown_s:
            return verdict(n, "hold", f"pressure {pressure:.2f}, in the upscale cooldown")
        after = min(max(n + 1, math.ceil(n * pressure / cfg.aim - 1e-9)), cfg.max_replicas)
        self._overloaded[n] = (now, self._throughput)
        return verdict(after, "up", f"pressure {pressure:.2f} for {held:.1f}s")

    def _shrink(
        self,
        now: int,
        n: int,
        load_ratio: float,
        pressure: float,
        verdict: Callable[[int, Direction, str], ScalingDecision],
    ) -> ScalingDecision:
        cfg = self.config
        assert self._under_since is not None
        held = (now - self._under_since) / 1e9
        if n <= cfg.min_replicas:
            return verdict(n, "hold", f"pressure {pressure:.2f} but at min_replicas {n}")
        if held < cfg.downscale_delay_s:
            return verdict(n, "hold", f"pressure {pressure:.2f} for {held:.1f}s, waiting")
        if self._since_change(now) < cfg.downscale_cooldown_s:
            return verdict(n, "hold", f"pressure {pressure:.2f}, in the downscale cooldown")
        # the shrink never lands where the next window would ask to grow again
        after = max(cfg.min_replicas, self._fit(n, pressure), self._floor(now))
        if after >= n:
            return verdict(n, "hold", f"pressure {pressure:.2f}; one fewer would be over target")
        return verdict(after, "down", f"pressure {pressure:.2f} for {held:.1f}s")

    def _fit(self, n: int, pressure: float) -> int:
        """The fewest replicas whose projected pressure is at most the band's middle, for
        ``n`` replicas under ``pressure`` now (the single-server projection of the module
        doc: utilisation u = p / (1 + p) scales as n / m)."""
        aim = self.config.aim
        u = pressure / (1.0 + pressure)
        return max(1, math.ceil(n * u * (1.0 + aim) / aim - 1e-9))

    def _floor(self, now: int) -> int:
        """The fewest replicas a shrink may reach: one above the largest size that was
        overloaded within ``overload_memory_s`` by a throughput like today's (sizes past
        the memory are forgotten)."""
        horizon = now - int(self.config.overload_memory_s * 1e9)
        self._overloaded = {k: v for k, v in self._overloaded.items() if v[0] > horizon}
        busy = [
            k
            for k, (_, rate) in self._overloaded.items()
            if self._throughput >= _SAME_LOAD * rate > 0
        ]
        return max(busy, default=0) + 1

    # --- on a thread -------------------------------------------------------------------------

    def start(self) -> Autoscaler:
        """Evaluate every ``window_s`` seconds on a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running; stop() it first")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.config.window_s):
            try:
                self.evaluate()
            except Exception:  # a failed step (a factory error, say) must not end scaling
                _log.exception("%s: an evaluation failed; trying again next window", self.name)

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread (after the evaluation in progress, if any)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)

    def __enter__(self) -> Autoscaler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
