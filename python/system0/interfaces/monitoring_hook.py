"""Pre and post hooks that every model interface emits through, and ``AIMonitoring``.

A model interface calls :meth:`AIMonitoring.before` with the batch it is about to run and
:meth:`AIMonitoring.after` with the outputs (or the exception) and the model time. Hooks are
plain callables; one that raises is counted and skipped, never allowed to break an inference
(monitoring must not become the outage). ``AIMonitoring`` also keeps its own running figures
(calls, rows, errors, non-finite outputs, model time) so a caller without a metrics backend
still sees them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["AIMonitoring", "InferenceEvent", "PostHook", "PreHook"]


@dataclass(slots=True)
class InferenceEvent:
    """One call of a model interface, as hooks see it."""

    model: str
    backend: str
    batch_size: int
    start_ns: int
    inputs: npt.NDArray[Any]
    outputs: npt.NDArray[Any] | None = None
    error: BaseException | None = None
    end_ns: int = 0
    #: free-form attributes a hook may add for the hooks after it
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def model_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)


PreHook = Callable[[InferenceEvent], None]
PostHook = Callable[[InferenceEvent], None]


class AIMonitoring:
    """Hook registry plus running figures for one or more model interfaces.

    Thread-safe: hooks may be added while inferences run on other threads (the hook lists are
    replaced, never mutated in place, so an emitting thread iterates a stable snapshot).
    """

    def __init__(self, *, check_finite: bool = True) -> None:
        self._lock = threading.Lock()
        self._pre: tuple[PreHook, ...] = ()
        self._post: tuple[PostHook, ...] = ()
        self.check_finite = check_finite
        self.calls = 0
        self.rows = 0
        self.errors = 0
        self.non_finite = 0
        self.hook_failures = 0
        self.model_ns_total = 0
        self.last_hook_error: BaseException | None = None

    def add_pre_hook(self, hook: PreHook) -> Callable[[], None]:
        """Call ``hook(event)`` before each inference; returns a function that removes it."""
        with self._lock:
            self._pre = (*self._pre, hook)
        return lambda: self._remove(hook, pre=True)

    def add_post_hook(self, hook: PostHook) -> Callable[[], None]:
        """Call ``hook(event)`` after each inference (success or failure)."""
        with self._lock:
            self._post = (*self._post, hook)
        return lambda: self._remove(hook, pre=False)

    def _remove(self, hook: PreHook, *, pre: bool) -> None:
        with self._lock:
            if pre:
                self._pre = tuple(h for h in self._pre if h is not hook)
            else:
                self._post = tuple(h for h in self._post if h is not hook)

    def _run(self, hooks: tuple[PreHook, ...], event: InferenceEvent) -> None:
        for hook in hooks:
            try:
                hook(event)
            except Exception as exc:  # a broken hook is counted, never fatal
                with self._lock:
                    self.hook_failures += 1
                    self.last_hook_error = exc

    def before(self, event: InferenceEvent) -> None:
        if self._pre:
            self._run(self._pre, event)

    def after(self, event: InferenceEvent) -> None:
        bad = False
        if self.check_finite and event.outputs is not None and event.error is None:
            out = event.outputs
            bad = out.dtype.kind == "f" and not bool(np.isfinite(out).all())
            event.attributes["non_finite"] = bad
        with self._lock:
            self.calls += 1
            self.rows += event.batch_size
            self.model_ns_total += event.model_ns
            if event.error is not None:
                self.errors += 1
            if bad:
                self.non_finite += 1
        if self._post:
            self._run(self._post, event)

    def summary(self) -> dict[str, float]:
        with self._lock:
            calls = self.calls
            return {
                "calls": calls,
                "rows": self.rows,
                "errors": self.errors,
                "non_finite": self.non_finite,
                "hook_failures": self.hook_failures,
                "mean_model_us": (self.model_ns_total / calls / 1e3) if calls else 0.0,
            }
