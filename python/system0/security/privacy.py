"""Differential privacy for released aggregates: a budget accountant over OpenDP mechanisms.

Noise protects *released aggregates* (a count, a sum, a mean, a histogram, a quantile) over
telemetry and training data; it is never added to ciphertext, which encryption protects instead.

Every mechanism is an OpenDP measurement (``opendp`` on PyPI, the ``privacy`` extra): OpenDP
computes the stability of each transformation (clamping, dropping NaN, summing with its
floating-point rounding error) and samples the noise (discrete Laplace / discrete Gaussian
underneath, exponential mechanism for quantiles). system0 never samples noise itself.

OpenDP gates most of its measurements behind ``dp.enable_features("contrib")``: "contrib" marks
components whose proofs have not finished OpenDP's own vetting committee, which today includes
every constructor used here (``make_laplace``, ``make_sum``, ``make_private_quantile``...). We
enable it process-wide on first use; it changes no behaviour of measurements built elsewhere.

Accounting. A :class:`PrivacyAccountant` holds one dataset's total ``(epsilon, delta)`` budget
and uses *basic sequential composition*: the privacy loss of k releases is at most the sum of
their epsilons and the sum of their deltas. It is loose for many Gaussian releases (zCDP would
be tighter) but exact, simple to audit, and valid for any mix of mechanisms. Amounts are kept as
exact fractions of the decimal values the caller typed, so ten releases of ``0.1`` spend exactly
``1.0`` and a budget is never refused by floating-point drift. Each release is charged exactly
the ``(epsilon, delta)`` it asked for; the noise scale is the smallest one for which OpenDP's
own privacy map proves a loss no larger than that (checked, not assumed).

Neighbouring datasets differ by ``max_contributions`` rows (symmetric distance): the caller must
bound how many rows one person contributes; OpenDP cannot see identities.

Switching privacy off (``enabled=False``, the config switch) returns exact aggregates, each
marked ``exact=True`` with ``mechanism="none"``, spends nothing and is still audited.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Generic, TypeVar

from system0.errors import BudgetExhausted, ValidationError
from system0.security.audit_sink import AuditSink
from system0.security.privacy_mechanisms import (
    Mechanism,
    accuracy95,
    check_bounds,
    check_categories,
    check_delta,
    check_epsilon,
    exact_fraction,
    fit,
    floats,
    fmt,
    opendp,
)

__all__ = [
    "Budget",
    "Mechanism",
    "PrivacyAccountant",
    "Release",
]

T = TypeVar("T")


@dataclass(frozen=True)
class _Ask:
    """One release request, checked: the query's name, its mechanism and budget."""

    query: str
    mech: Mechanism
    eps: float
    dlt: float


@dataclass(frozen=True)
class Budget:
    """An ``(epsilon, delta)`` amount of privacy loss."""

    epsilon: float
    delta: float


@dataclass(frozen=True)
class Release(Generic[T]):
    """One released aggregate and what it cost.

    ``value`` is the noisy answer (exact when ``exact`` is true); ``epsilon``/``delta`` the
    budget charged; ``mechanism`` the noise (``laplace``, ``gaussian``, ``exponential`` for
    quantiles, ``none`` when privacy is off); ``scale`` the noise scale; ``accuracy`` the
    half-width of a 95% interval around the true value due to the noise alone (per bin for a
    histogram; ``None`` where there is no closed form).
    """

    value: T
    epsilon: float
    delta: float
    mechanism: str
    description: str
    query: str
    dataset: str
    exact: bool = False
    scale: float | None = None
    accuracy: float | None = None
    spent: Budget = field(default_factory=lambda: Budget(0.0, 0.0))

    def to_record(self) -> dict[str, Any]:
        """The audit record of this release (plain JSON-able values)."""
        value: Any = self.value
        if isinstance(value, dict):
            value = [[k, v] for k, v in value.items()]
        return {
            "kind": "dp_release",
            "dataset": self.dataset,
            "query": self.query,
            "value": value,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "mechanism": self.mechanism,
            "scale": self.scale,
            "exact": self.exact,
            "description": self.description,
            "spent_epsilon": self.spent.epsilon,
            "spent_delta": self.spent.delta,
        }


class PrivacyAccountant:
    """One dataset's differential-privacy budget, and the releases that spend it.

    ``epsilon``/``delta`` is the total budget (basic composition, see the module docstring);
    ``mechanism`` the default noise (``laplace``: pure epsilon-DP, releases use ``delta=0``;
    ``gaussian``: each release needs a ``delta > 0``); ``max_contributions`` how many rows one
    person may contribute; ``enabled=False`` turns noise off (exact results, nothing spent);
    ``audit`` receives one record per release and per refusal. Thread-safe.
    """

    def __init__(
        self,
        dataset: str,
        epsilon: float,
        delta: float = 0.0,
        *,
        mechanism: Mechanism = "laplace",
        max_contributions: int = 1,
        enabled: bool = True,
        audit: AuditSink | None = None,
    ) -> None:
        where = f"PrivacyAccountant({dataset!r})"
        if not isinstance(dataset, str) or not dataset:
            raise ValidationError(
                f"PrivacyAccountant: dataset must be a non-empty name, got {dataset!r}"
            )
        self._epsilon = exact_fraction(check_epsilon(epsilon, where))
        self._delta = exact_fraction(check_delta(delta, where))
        if mechanism not in ("laplace", "gaussian"):
            raise ValidationError(
                f"{where}: mechanism must be 'laplace' or 'gaussian', got {mechanism!r}"
            )
        if (
            isinstance(max_contributions, bool)
            or not isinstance(max_contributions, int)
            or max_contributions < 1
        ):
            raise ValidationError(
                f"{where}: max_contributions must be an int >= 1, got {max_contributions!r}"
            )
        self.dataset = dataset
        self.mechanism: Mechanism = mechanism
        self.max_contributions = max_contributions
        self.enabled = bool(enabled)
        self._audit = audit
        self._spent_eps = Fraction(0)
        self._spent_delta = Fraction(0)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        s = self.spent
        return (
            f"PrivacyAccountant(dataset={self.dataset!r}, budget=({float(self._epsilon)}, "
            f"{float(self._delta)}), spent=({s.epsilon}, {s.delta}), enabled={self.enabled})"
        )

    @property
    def budget(self) -> Budget:
        return Budget(float(self._epsilon), float(self._delta))

    @property
    def spent(self) -> Budget:
        with self._lock:
            return Budget(float(self._spent_eps), float(self._spent_delta))

    @property
    def remaining(self) -> Budget:
        with self._lock:
            return Budget(
                float(max(Fraction(0), self._epsilon - self._spent_eps)),
                float(max(Fraction(0), self._delta - self._spent_delta)),
            )

    def can_spend(self, epsilon: float, delta: float = 0.0) -> bool:
        eps = exact_fraction(check_epsilon(epsilon, "can_spend"))
        dlt = exact_fraction(check_delta(delta, "can_spend"))
        with self._lock:
            return self._spent_eps + eps <= self._epsilon and self._spent_delta + dlt <= self._delta

    def replay(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Re-charge the releases recorded earlier for this dataset (from the audit ledger).

        A budget held only in memory would reset on every restart, which is a privacy hole:
        on start-up, feed this accountant the ledger's records and it resumes where it was.
        Records of other datasets, refusals and exact releases are skipped; nothing is audited
        again. Returns how many releases were charged. Spending past the budget is recorded
        as it happened (the releases were made) and simply leaves nothing to spend.
        """
        charged = 0
        for rec in records:
            if rec.get("kind") != "dp_release" or rec.get("dataset") != self.dataset:
                continue
            if rec.get("exact"):
                continue
            eps = exact_fraction(check_epsilon(rec["epsilon"], "replay"))
            dlt = exact_fraction(check_delta(rec.get("delta", 0.0), "replay"))
            with self._lock:
                self._spent_eps += eps
                self._spent_delta += dlt
            charged += 1
        return charged

    # -- releases -------------------------------------------------------------------------

    def count(
        self,
        data: Sized,
        *,
        epsilon: float,
        delta: float | None = None,
        mechanism: Mechanism | None = None,
    ) -> Release[int]:
        """How many rows ``data`` holds (sensitivity: ``max_contributions``)."""
        ask = self._params("count", epsilon, delta, mechanism)
        n = len(data)
        what = f"count of rows in {self.dataset!r}"
        if not self.enabled:
            return self._exact(ask, n, what)
        dp = opendp()

        def build(scale: float) -> Any:
            t = dp.t.make_count(dp.vector_domain(dp.atom_domain(T=bool)), dp.symmetric_distance())
            return t >> self._noise(dp, ask.mech, scale)

        return self._noisy(ask, dp, build, (), [True] * n, what, int)

    def sum(
        self,
        data: Iterable[float],
        *,
        lower: float,
        upper: float,
        epsilon: float,
        delta: float | None = None,
        mechanism: Mechanism | None = None,
    ) -> Release[float]:
        """Sum of ``data`` with each value clamped into ``[lower, upper]``; NaN rows dropped."""
        ask = self._params("sum", epsilon, delta, mechanism)
        lo, hi = check_bounds(lower, upper, "sum")
        values = floats(data, "sum")
        what = f"sum of values clamped to [{fmt(lo)}, {fmt(hi)}] in {self.dataset!r}"
        if not self.enabled:
            return self._exact(ask, math.fsum(v for v in values if not math.isnan(v)), what)
        dp = opendp()

        def build(scale: float) -> Any:
            return self._clamped_sum(dp, lo, hi) >> self._noise(dp, ask.mech, scale)

        return self._noisy(ask, dp, build, (lo, hi), values, what, float)

    def mean(
        self,
        data: Iterable[float],
        *,
        lower: float,
        upper: float,
        epsilon: float,
        delta: float | None = None,
        mechanism: Mechanism | None = None,
    ) -> Release[float]:
        """Mean of ``data`` clamped into ``[lower, upper]``; NaN rows dropped.

        The row count is private too, so this releases a noisy clamped sum and a noisy count,
        each with half the budget (composed by OpenDP), and divides: post-processing, free of
        further privacy cost. The ratio is clamped back into ``[lower, upper]``.
        """
        ask = self._params("mean", epsilon, delta, mechanism)
        lo, hi = check_bounds(lower, upper, "mean")
        values = floats(data, "mean")
        what = f"mean of values clamped to [{fmt(lo)}, {fmt(hi)}] in {self.dataset!r}"
        if not self.enabled:
            present = [v for v in values if not math.isnan(v)]
            if not present:
                raise ValidationError(f"mean over {self.dataset!r}: no non-NaN values")
            return self._exact(ask, math.fsum(present) / len(present), what)
        dp = opendp()

        def build_sum(scale: float) -> Any:
            return self._clamped_sum(dp, lo, hi) >> self._noise(dp, ask.mech, scale)

        def build_count(scale: float) -> Any:
            vd = dp.vector_domain(dp.atom_domain(T=float, nan=True))
            t = (vd, dp.symmetric_distance()) >> dp.t.then_drop_null() >> dp.t.then_count()
            return t >> self._noise(dp, ask.mech, scale)

        s_meas, s_scale = self._measure(ask, build_sum, (lo, hi), name="sum", share=0.5)
        c_meas, _ = self._measure(ask, build_count, (), name="count_present", share=0.5)
        both = dp.c.make_composition([s_meas, c_meas])

        def post(out: Any) -> float:
            noisy_sum, noisy_count = out
            ratio = float(noisy_sum) / max(1.0, float(noisy_count))
            return min(hi, max(lo, ratio))

        return self._release(ask, both, values, s_scale, what, post, None)

    def histogram(
        self,
        data: Iterable[Hashable],
        *,
        categories: Sequence[str] | Sequence[int],
        epsilon: float,
        delta: float | None = None,
        mechanism: Mechanism | None = None,
    ) -> Release[dict[str | int | None, int]]:
        """Count of rows per category; rows outside ``categories`` are counted under ``None``.

        The categories must be public (chosen without looking at the data), else their very
        presence leaks; that is why they are an argument and not discovered.
        """
        ask = self._params("histogram", epsilon, delta, mechanism)
        cats, kind, rows = check_categories(categories, data)
        what = f"histogram over {len(cats)} categories in {self.dataset!r}"
        keys: list[str | int | None] = [*cats, None]
        if not self.enabled:
            known = set(cats)
            exact: dict[str | int | None, int] = dict.fromkeys(keys, 0)
            for r in rows:
                exact[r if r in known else None] += 1
            return self._exact(ask, exact, what)
        dp = opendp()
        metric = "L2Distance<int>" if ask.mech == "gaussian" else "L1Distance<int>"

        def build(scale: float) -> Any:
            vd = dp.vector_domain(dp.atom_domain(T=kind))
            t = (vd, dp.symmetric_distance()) >> dp.t.then_count_by_categories(
                categories=cats, null_category=True, MO=metric
            )
            return t >> self._noise(dp, ask.mech, scale)

        def post(out: Any) -> dict[str | int | None, int]:
            return {k: int(v) for k, v in zip(keys, out, strict=True)}

        return self._noisy(ask, dp, build, (kind, tuple(cats)), rows, what, post)

    def quantile(
        self,
        data: Iterable[float],
        *,
        q: float,
        lower: float,
        upper: float,
        epsilon: float,
        delta: float | None = None,
        mechanism: Mechanism | None = None,
        bins: int = 1024,
    ) -> Release[float]:
        """The ``q``-quantile of ``data``, chosen among ``bins + 1`` evenly spaced candidates in
        ``[lower, upper]`` by OpenDP's private quantile (exponential mechanism); NaN rows
        dropped. The answer is always one of the candidates."""
        ask = self._params("quantile", epsilon, delta, mechanism)
        lo, hi = check_bounds(lower, upper, "quantile")
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 <= float(q) <= 1.0:
            raise ValidationError(f"quantile: q must be in [0, 1], got {q!r}")
        if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= 1_000_000:
            raise ValidationError(f"quantile: bins must be an int in [1, 1000000], got {bins!r}")
        values = floats(data, "quantile")
        what = f"{float(q):g}-quantile within [{fmt(lo)}, {fmt(hi)}] in {self.dataset!r}"
        if not self.enabled:
            import numpy as np

            present = [v for v in values if not math.isnan(v)]
            if not present:
                raise ValidationError(f"quantile over {self.dataset!r}: no non-NaN values")
            return self._exact(ask, float(np.quantile(present, float(q))), what)
        dp = opendp()
        candidates = [lo + (hi - lo) * i / bins for i in range(bins + 1)]
        gaussian = ask.mech == "gaussian"
        measure = dp.zero_concentrated_divergence() if gaussian else dp.max_divergence()

        def build(scale: float) -> Any:
            vd = dp.vector_domain(dp.atom_domain(T=float, nan=True))
            return (
                (vd, dp.symmetric_distance())
                >> dp.t.then_drop_null()
                >> (
                    dp.m.then_private_quantile(
                        measure, candidates=candidates, alpha=float(q), scale=scale
                    )
                )
            )

        return self._noisy(
            ask,
            dp,
            build,
            (lo, hi, float(q), bins),
            values,
            what,
            float,
            mechanism="exponential-zcdp" if gaussian else "exponential",
            accuracy=False,
        )

    # -- internals ------------------------------------------------------------------------

    def _params(
        self, query: str, epsilon: float, delta: float | None, mechanism: Mechanism | None
    ) -> _Ask:
        mech = self.mechanism if mechanism is None else mechanism
        if mech not in ("laplace", "gaussian"):
            raise ValidationError(
                f"{query}: mechanism must be 'laplace' or 'gaussian', got {mech!r}"
            )
        eps = check_epsilon(epsilon, query)
        dlt = 0.0 if delta is None else check_delta(delta, query)
        if mech == "laplace" and dlt != 0.0:
            raise ValidationError(
                f"{query}: the Laplace mechanism is pure epsilon-DP; pass delta=0 or "
                "mechanism='gaussian'"
            )
        if mech == "gaussian" and dlt == 0.0:
            raise ValidationError(f"{query}: the Gaussian mechanism needs delta > 0 (e.g. 1e-6)")
        return _Ask(query, mech, eps, dlt)

    def _measure(
        self,
        ask: _Ask,
        build: Callable[[float], Any],
        extra: tuple[Any, ...],
        *,
        name: str | None = None,
        share: float = 1.0,
    ) -> tuple[Any, float]:
        """The OpenDP measurement ``build`` makes, calibrated to ``share`` of the asked budget
        (cached by ``fit`` under the query, the budget and ``extra``, what else fixes it)."""
        eps, dlt, d_in = ask.eps * share, ask.dlt * share, self.max_contributions
        key = (name or ask.query, ask.mech, eps, dlt, *extra, d_in)
        return fit(key, build, d_in, eps, dlt, ask.mech)

    def _noisy(
        self,
        ask: _Ask,
        dp: Any,
        build: Callable[[float], Any],
        extra: tuple[Any, ...],
        data: Any,
        what: str,
        post: Callable[[Any], T],
        *,
        mechanism: str | None = None,
        accuracy: bool = True,
    ) -> Release[T]:
        """The path of every single-measurement release: calibrate, charge, run, record."""
        meas, scale = self._measure(ask, build, extra)
        acc = accuracy95(dp, ask.mech, scale) if accuracy else None
        return self._release(ask, meas, data, scale, what, post, acc, mechanism=mechanism)

    def _clamped_sum(self, dp: Any, lo: float, hi: float) -> Any:
        vd = dp.vector_domain(dp.atom_domain(T=float, nan=True))
        return (
            (vd, dp.symmetric_distance())
            >> dp.t.then_drop_null()
            >> dp.t.then_clamp((lo, hi))
            >> dp.t.then_sum()
        )

    @staticmethod
    def _noise(dp: Any, mech: Mechanism, scale: float) -> Any:
        return (
            dp.m.then_gaussian(scale=scale)
            if mech == "gaussian"
            else dp.m.then_laplace(scale=scale)
        )

    def _reserve(self, query: str, eps: float, dlt: float) -> Budget:
        e, d = exact_fraction(eps), exact_fraction(dlt)
        with self._lock:
            if self._spent_eps + e <= self._epsilon and self._spent_delta + d <= self._delta:
                self._spent_eps += e
                self._spent_delta += d
                return Budget(float(self._spent_eps), float(self._spent_delta))
            left = (float(self._epsilon - self._spent_eps), float(self._delta - self._spent_delta))
        if self._audit is not None:
            self._audit.append(
                {
                    "kind": "dp_refused",
                    "dataset": self.dataset,
                    "query": query,
                    "epsilon": eps,
                    "delta": dlt,
                    "remaining_epsilon": left[0],
                    "remaining_delta": left[1],
                }
            )
        raise BudgetExhausted(
            f"{query} on {self.dataset!r} refused: it needs epsilon={eps:g}, delta={dlt:g} but "
            f"only epsilon={left[0]:g}, delta={left[1]:g} of the budget remain; nothing was "
            "released. Ask for less, or release from a dataset with budget left",
            dataset=self.dataset,
            requested=(eps, dlt),
            remaining=left,
        )

    def _release(
        self,
        ask: _Ask,
        meas: Any,
        data: Any,
        scale: float,
        what: str,
        post: Callable[[Any], T],
        accuracy: float | None,
        *,
        mechanism: str | None = None,
    ) -> Release[T]:
        query, eps, dlt = ask.query, ask.eps, ask.dlt
        mech = mechanism or ask.mech
        # Budget first: once reserved it stays spent even if the mechanism then fails, because
        # a failure that depends on the data could itself leak.
        spent = self._reserve(query, eps, dlt)
        value = post(meas(data))
        noise = f"{mech} noise (scale {fmt(scale)})"
        release = Release(
            value=value,
            epsilon=eps,
            delta=dlt,
            mechanism=mech,
            scale=scale,
            description=f"{what} with {noise}, epsilon={eps:g}, delta={dlt:g}",
            query=query,
            dataset=self.dataset,
            accuracy=accuracy,
            spent=spent,
        )
        self._record(release)
        return release

    def _exact(self, ask: _Ask, value: T, what: str) -> Release[T]:
        release = Release(
            value=value,
            epsilon=0.0,
            delta=0.0,
            mechanism="none",
            exact=True,
            description=f"{what}, exact: differential privacy is disabled by configuration",
            query=ask.query,
            dataset=self.dataset,
            spent=self.spent,
        )
        self._record(release)
        return release

    def _record(self, release: Release[Any]) -> None:
        # No unaudited release: if the sink fails, the caller gets its error, not the value.
        if self._audit is not None:
            self._audit.append(release.to_record())
