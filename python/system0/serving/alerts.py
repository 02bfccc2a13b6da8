"""``AlertManager``: per-model alert rules, grouped, deduplicated and inhibited notifications.

Each :meth:`AlertManager.evaluate` step reads one window per model (from a
:class:`~system0.serving.alert_rules.TelemetrySource`, or windows handed in), moves every
rule's alert for every model through Prometheus' states (inactive, *pending* for ``for_s``,
*firing*, kept firing ``keep_firing_for_s`` after the last breach, resolved), and then
notifies as Alertmanager's dispatcher does (the reference for each word here):

* **grouping**: firing alerts are grouped by the ``group_by`` labels (default the
  alertname: every model's latency alert goes out in one notification);
* **group_wait**: a new group waits this long before its first notification, so alerts that
  fire together are sent together;
* **group_interval**: after that, a change in the group (an alert new to it, one resolved)
  is sent at most once per this interval, in one notification holding the group's state;
* **repeat_interval**: a group that is still firing, unchanged, is sent again after this;
* **dedup**: nothing is sent when nothing changed and the repeat is not due;
* **flap damping**: an alert announced resolved less than ``repeat_interval`` ago that fires
  again is not news until that interval has passed, so a flapping signal is announced
  firing at most once per ``repeat_interval`` (and resolved at most once in between). A
  rule's ``keep_firing_for_s`` and ``resolve`` threshold are the first defence: they keep a
  flapping alert firing, so it is not even resolved;
* **inhibition**: a firing alert matching an :class:`InhibitRule`'s source mutes the
  target alerts that share its ``equal`` labels: by default an open breaker
  (``ModelBreakerOpen``) mutes the latency alert (``ModelLatencyHigh``) of the same model,
  since the breaker's own probes and fallbacks are what the latency shows then. A muted
  alert is still evaluated (see :meth:`AlertManager.suppressed`), just not sent.

Sinks (:mod:`system0.serving.alert_sinks`): the log, a webhook, a callback. A failing sink
is logged and counted (``alerts_notifications{outcome="failed"}``) and the others still get
the notification. :meth:`AlertManager.active` lists what is firing now, for the dashboard.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from system0 import _core
from system0.core import telemetry
from system0.serving.alert_rules import ModelWindow, Rule, TelemetrySource

__all__ = ["DEFAULT_INHIBIT", "Alert", "AlertManager", "InhibitRule", "Notification", "Sink"]

_log = logging.getLogger("system0.serving.alerts")
AlertState = Literal["pending", "firing", "resolved"]
Sink = Callable[["Notification"], object]
Labels = tuple[tuple[str, str], ...]


def _rfc3339(ns: int | None) -> str:
    if ns is None:
        return "0001-01-01T00:00:00Z"  # Alertmanager's "not ended" value
    import datetime as _dt

    unix = _core.to_unix_ns(ns)
    t = _dt.datetime.fromtimestamp(unix // 1_000_000_000, _dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{unix % 1_000_000_000:09d}Z"


@dataclass(frozen=True, slots=True)
class Alert:
    """One rule's alert for one model. ``labels``: ``alertname``, ``model``, ``severity``;
    times are the process clock's ns (``as_json`` writes them as RFC 3339)."""

    labels: Labels
    state: AlertState
    value: float | None
    summary: str
    active_since_ns: int
    fired_ns: int | None = None
    resolved_ns: int | None = None

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def alertname(self) -> str:
        return self.label_map["alertname"]

    @property
    def fingerprint(self) -> str:
        """Names the alert across evaluations: a hash of its labels."""
        text = "\x00".join(f"{k}={v}" for k, v in self.labels)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "resolved" if self.state == "resolved" else "firing",
            "labels": self.label_map,
            "annotations": {"summary": self.summary, "value": f"{self.value}"},
            "startsAt": _rfc3339(self.fired_ns or self.active_since_ns),
            "endsAt": _rfc3339(self.resolved_ns),
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True, slots=True)
class Notification:
    """What one group sends at once: its firing alerts and those resolved since the last
    notification. ``repeat``: sent again unchanged because ``repeat_interval`` passed."""

    receiver: str
    group_key: str
    group_labels: Labels
    firing: tuple[Alert, ...]
    resolved: tuple[Alert, ...]
    at_ns: int
    repeat: bool = False

    @property
    def status(self) -> str:
        return "firing" if self.firing else "resolved"


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """A firing ``source`` alert mutes the ``targets`` alerts whose ``equal`` labels match."""

    source: str
    targets: tuple[str, ...]
    equal: tuple[str, ...] = ("model",)

    def mutes(self, source: Alert, target: Alert) -> bool:
        s, t = source.label_map, target.label_map
        return (
            s["alertname"] == self.source
            and t["alertname"] in self.targets
            and source.fingerprint != target.fingerprint
            and all(s.get(k) == t.get(k) for k in self.equal)
        )


DEFAULT_INHIBIT = (InhibitRule("ModelBreakerOpen", ("ModelLatencyHigh",)),)


@dataclass(slots=True)
class _Instance:
    """The state of one rule for one model between evaluations."""

    rule: Rule
    model: str
    state: Literal["inactive", "pending", "firing"] = "inactive"
    since_ns: int = 0
    fired_ns: int | None = None
    last_breach_ns: int = 0
    value: float | None = None

    def alert(self, state: AlertState, now: int | None = None) -> Alert:
        rule = self.rule
        names = {"alertname": rule.name, "model": self.model, "severity": rule.severity}
        labels = tuple(sorted(names.items()))
        return Alert(
            labels,
            state,
            self.value,
            self.rule.summary(self.model, self.value),
            self.since_ns,
            self.fired_ns,
            now if state == "resolved" else None,
        )

    def step(self, value: float | None, now: int) -> Alert | None:
        """One evaluation; returns the resolved alert when this step resolved it."""
        rule = self.rule
        self.value = value
        firing = self.state == "firing"
        if rule.breaches(value, firing):
            self.last_breach_ns = now
            if self.state == "inactive":
                self.state, self.since_ns = "pending", now
            if self.state == "pending" and now - self.since_ns >= rule.for_s * 1e9:
                self.state, self.fired_ns = "firing", now
            return None
        if self.state == "pending":
            self.state = "inactive"  # the breach did not last `for_s`: forget it
        elif firing and now - self.last_breach_ns >= rule.keep_firing_for_s * 1e9:
            resolved = self.alert("resolved", now)
            self.state, self.fired_ns = "inactive", None
            return resolved
        return None


@dataclass(slots=True)
class _Group:
    key: str
    labels: Labels
    first_ns: int
    notified_ns: int | None = None
    notified: dict[str, Alert] = field(default_factory=dict)  # fingerprint -> as last sent
    resolved: dict[str, Alert] = field(default_factory=dict)  # resolved since the last send


def _check(name: str, value: float, *, positive: bool = False) -> None:
    if not (isinstance(value, int | float) and value >= 0 and value < float("inf")):
        raise ValueError(f"AlertManager {name} must be finite seconds >= 0, got {value!r}")
    if positive and value == 0:
        raise ValueError(f"AlertManager {name} must be > 0 seconds, got {value!r}")


class AlertManager:
    """Evaluates ``rules`` per model and notifies ``sinks`` (see the module doc).

    ``source`` gives the windows (default: a :class:`TelemetrySource` over the default
    registry); ``clock`` returns ns (tests inject a fake one, or pass ``now_ns``).
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        sinks: Sequence[Sink] = (),
        source: TelemetrySource | None = None,
        group_by: Sequence[str] = ("alertname",),
        group_wait_s: float = 30.0,
        group_interval_s: float = 300.0,
        repeat_interval_s: float = 4 * 3600.0,
        inhibit: Sequence[InhibitRule] = DEFAULT_INHIBIT,
        receiver: str = "system0",
        clock: Callable[[], int] = _core.now_ns,
    ) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"AlertManager rules need distinct names, got {names}")
        _check("group_wait_s", group_wait_s)
        _check("group_interval_s", group_interval_s, positive=True)
        _check("repeat_interval_s", repeat_interval_s, positive=True)
        if repeat_interval_s < group_interval_s:
            raise ValueError(
                f"AlertManager repeat_interval_s ({repeat_interval_s}) must be at least "
                f"group_interval_s ({group_interval_s})"
            )
        self.rules = tuple(rules)
        self.sinks = list(sinks)
        self.source = source
        self.group_by = tuple(group_by)
        self.group_wait_ns = int(group_wait_s * 1e9)
        self.group_interval_ns = int(group_interval_s * 1e9)
        self.repeat_interval_ns = int(repeat_interval_s * 1e9)
        self.inhibit = tuple(inhibit)
        self.receiver = receiver
        self.clock = clock
        self.notifications: list[Notification] = []  # the last 1000 sent, oldest first
        self._instances: dict[tuple[str, str], _Instance] = {}
        self._groups: dict[str, _Group] = {}
        self._resolved_sent: dict[str, int] = {}  # fingerprint -> when announced resolved
        self._firing: list[Alert] = []
        self._muted: list[Alert] = []
        self._pending: list[Alert] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        outcome = telemetry.counter("alerts_notifications", ("receiver", "outcome"))
        self._c_sent = outcome.labels(receiver, "sent")
        self._c_failed = outcome.labels(receiver, "failed")
        self._g_firing = telemetry.gauge("alerts_firing", ("receiver",)).labels(receiver)

    # --- reading -----------------------------------------------------------------------------

    def active(self) -> list[Alert]:
        """The alerts firing now and not muted by an inhibition (for the dashboard)."""
        with self._lock:
            return list(self._firing)

    def suppressed(self) -> list[Alert]:
        """The alerts firing now but muted by an inhibition."""
        with self._lock:
            return list(self._muted)

    def pending(self) -> list[Alert]:
        """The alerts whose breach has not lasted their rule's ``for_s`` yet."""
        with self._lock:
            return list(self._pending)

    # --- one step ----------------------------------------------------------------------------

    def evaluate(
        self, now_ns: int | None = None, windows: Mapping[str, ModelWindow] | None = None
    ) -> list[Notification]:
        """Evaluate every rule on this window and send what is due; returns what was sent."""
        with self._lock:
            now = self.clock() if now_ns is None else now_ns
            if windows is None:
                source = self.source = self.source or TelemetrySource()
                windows = source.windows()
            resolved = self._step_rules(now, windows)
            self._split(now)
            notes = self._dispatch(now, resolved)
            self._g_firing.set(len(self._firing))
        for note in notes:  # outside the lock: a slow sink must not block active()
            self._send(note)
        return notes

    def _step_rules(self, now: int, windows: Mapping[str, ModelWindow]) -> list[Alert]:
        resolved: list[Alert] = []
        for rule in self.rules:
            models = {m for m in windows if rule.watches(m)}
            models |= {m for (r, m) in self._instances if r == rule.name}
            for model in sorted(models):
                inst = self._instances.setdefault((rule.name, model), _Instance(rule, model))
                window = windows.get(model)
                done = inst.step(None if window is None else rule.value(window), now)
                if done is not None:
                    resolved.append(done)
        return resolved

    def _split(self, now: int) -> None:
        """Sort the firing alerts into active and muted, and list the pending ones."""
        firing = [i.alert("firing") for i in self._instances.values() if i.state == "firing"]
        muted = [a for a in firing if any(ir.mutes(s, a) for ir in self.inhibit for s in firing)]
        muted_fps = {a.fingerprint for a in muted}
        self._firing = sorted((a for a in firing if a.fingerprint not in muted_fps), key=_by_labels)
        self._muted = sorted(muted, key=_by_labels)
        self._pending = sorted(
            (i.alert("pending") for i in self._instances.values() if i.state == "pending"),
            key=_by_labels,
        )

    def _group_of(self, alert: Alert) -> tuple[str, Labels]:
        labels = alert.label_map
        picked = tuple((k, labels.get(k, "")) for k in self.group_by)
        return "{" + ",".join(f'{k}="{v}"' for k, v in picked) + "}", picked

    def _dispatch(self, now: int, resolved: Iterable[Alert]) -> list[Notification]:
        horizon = now - self.repeat_interval_ns
        self._resolved_sent = {fp: t for fp, t in self._resolved_sent.items() if t > horizon}
        by_group: dict[str, dict[str, Alert]] = {}
        for alert in self._firing:
            key, labels = self._group_of(alert)
            by_group.setdefault(key, {})[alert.fingerprint] = alert
            if key not in self._groups:
                self._groups[key] = _Group(key, labels, now)
        for alert in resolved:
            group = self._groups.get(self._group_of(alert)[0])
            if group is not None and alert.fingerprint in group.notified:
                group.resolved[alert.fingerprint] = alert
        notes = []
        for key, group in list(self._groups.items()):
            note = self._flush(now, group, by_group.get(key, {}))
            if note is not None:
                notes.append(note)
            if not by_group.get(key) and not group.notified:
                del self._groups[key]  # empty and nothing announced: the next alert waits again
        return notes

    def _flush(self, now: int, group: _Group, firing: dict[str, Alert]) -> Notification | None:
        if group.notified_ns is None:
            due = group.first_ns + self.group_wait_ns
        else:
            due = group.notified_ns + self.group_interval_ns
        if now < due:
            return None
        sent = group.notified
        # new: firing and not in the last notification, unless announced resolved lately
        new = [fp for fp in firing if fp not in sent and fp not in self._resolved_sent]
        gone = [fp for fp in sent if fp not in firing]
        repeat = (
            bool(firing)
            and group.notified_ns is not None
            and now - group.notified_ns >= self.repeat_interval_ns
        )
        if not (new or gone or repeat) or not (firing or gone):
            return None
        # an alert gone from the group without resolving (muted now) is dropped, not resolved
        ended = tuple(group.resolved[fp] for fp in gone if fp in group.resolved)
        for a in ended:
            self._resolved_sent[a.fingerprint] = now
        group.notified = dict(firing)
        group.notified_ns = now
        group.resolved.clear()
        if not (firing or ended):
            return None
        return Notification(
            self.receiver,
            group.key,
            group.labels,
            tuple(firing.values()),
            ended,
            now,
            repeat and not (new or gone),
        )

    def _send(self, note: Notification) -> None:
        self.notifications.append(note)
        del self.notifications[:-1000]
        for sink in self.sinks:
            try:
                sink(note)
            except Exception:
                self._c_failed.inc()
                _log.exception(
                    "alert sink %r failed on %s; the other sinks still get it", sink, note.group_key
                )
            else:
                self._c_sent.inc()

    # --- on a thread -------------------------------------------------------------------------

    def start(self, interval_s: float = 15.0) -> AlertManager:
        """Evaluate every ``interval_s`` seconds on a daemon thread until :meth:`stop`."""
        _check("interval_s", interval_s, positive=True)
        if self._thread is not None:
            raise RuntimeError("the AlertManager is already running; stop() it first")
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.evaluate()
                except Exception:
                    _log.exception("an alert evaluation failed; trying again next interval")

        self._thread = threading.Thread(target=run, name="alert-manager", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)


def _by_labels(alert: Alert) -> Labels:
    return alert.labels
