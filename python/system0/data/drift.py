"""Drift checks: a reference profile of a dataset, and a report comparing a live window to it.

:class:`ReferenceProfile` keeps, per numeric feature, quantile bin edges with the reference
share of each bin (for PSI) and a bounded, seeded sample of reference values (for KS and
Wasserstein; exact when the reference is no larger than ``sample_size``); per categorical
feature, the frequency of each category.

:meth:`ReferenceProfile.compare` computes every statistic for every feature and always reports
the raw values; which one decides pass/fail depends on the live sample size:

* numeric: fewer than ``min_samples`` (30) live values: no verdict (``test="insufficient"``);
  up to ``large_sample`` (1000): the KS test, drift when p < ``alpha`` (0.01); above that KS
  flags differences too small to matter, so PSI decides, drift when PSI >= ``psi_threshold``
  (0.2, the industry rule of thumb);
* categorical: chi-square when every expected count is >= 5 (Cochran's rule), drift when
  p < ``alpha``; otherwise the Jensen-Shannon distance, drift when >= ``js_threshold`` (0.1).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from system0.data import stats
from system0.errors import ValidationError

Array = npt.NDArray[np.float64]
Sink = Callable[[str, float, Mapping[str, str]], None]


def telemetry_sink(name: str, value: float, labels: Mapping[str, str]) -> None:
    """The default sink: a gauge per statistic in the telemetry registry, labelled by feature
    and test (so `render_prometheus()` and the OTel bridge carry drift like any other metric).
    A statistic that is undefined for this window (NaN) leaves its gauge unset."""
    from system0.core import telemetry  # the data layer does not need telemetry to import

    if math.isfinite(value):
        family = telemetry.gauge(name, labels=tuple(sorted(labels)), help="data drift statistic")
        family.labels(**labels).set(value)


GAME_STATE_NUMERIC = (
    "position_x",
    "position_y",
    "health",
    "mana",
    "cooldown_q",
    "cooldown_w",
    "cooldown_e",
    "cooldown_r",
    "cooldown_d",
    "cooldown_f",
    "vision_score",
    "gold_advantage",
)
GAME_STATE_CATEGORICAL = ("champion", "inventory")


@dataclass(frozen=True)
class NumericProfile:
    count: int
    mean: float
    std: float
    min: float
    max: float
    edges: list[float]  # inner bin edges (quantiles); bins are (-inf, e0], (e0, e1], ...
    shares: list[float]  # reference share of each bin
    sample: list[float]  # sorted reference sample for KS / Wasserstein


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison: every statistic's raw value, the deciding test, the verdict."""

    feature: str
    kind: str  # "numeric" | "categorical"
    n_reference: int
    n_live: int
    values: dict[str, float]
    test: str  # which statistic decided: "ks", "psi", "chi2", "js" or "insufficient"
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    """The comparison of one live window with a reference profile."""

    features: tuple[FeatureDrift, ...]
    profile_hash: str

    @property
    def drifted(self) -> bool:
        return any(f.drifted for f in self.features)

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def __getitem__(self, feature: str) -> FeatureDrift:
        for f in self.features:
            if f.feature == feature:
                return f
        raise KeyError(feature)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile_hash": self.profile_hash,
            "drifted": self.drifted,
            "features": [asdict(f) for f in self.features],
        }

    def publish(
        self,
        sink: Sink = telemetry_sink,
        *,
        on_drift: Callable[[DriftReport], None] | None = None,
    ) -> None:
        """Emit every raw value as a gauge through ``sink(name, value, labels)`` (names
        ``data_drift_<statistic>``, plus ``data_drift_detected`` as 0/1, labelled by
        ``feature`` and ``test``; by default into the telemetry registry), then call
        ``on_drift(report)`` if any feature drifted."""
        for f in self.features:
            labels = {"feature": f.feature, "test": f.test}
            for name, value in f.values.items():
                sink(f"data_drift_{name}", value, labels)
            sink("data_drift_detected", 1.0 if f.drifted else 0.0, labels)
        if on_drift is not None and self.drifted:
            on_drift(self)


@dataclass(frozen=True)
class ReferenceProfile:
    numeric: dict[str, NumericProfile]
    categorical: dict[str, dict[str, int]]
    alpha: float = 0.01
    psi_threshold: float = 0.2
    js_threshold: float = 0.1
    min_samples: int = 30
    large_sample: int = 1000
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        numeric: Mapping[str, Iterable[float]],
        categorical: Mapping[str, Iterable[str]] | None = None,
        *,
        bins: int = 10,
        sample_size: int = 10_000,
        seed: int = 0,
        **thresholds: Any,
    ) -> ReferenceProfile:
        """Profile a reference dataset (arrays of numbers, sequences of category labels)."""
        rng = np.random.default_rng(seed)
        nums: dict[str, NumericProfile] = {}
        for name in sorted(numeric):
            v = np.asarray(
                list(numeric[name]) if not isinstance(numeric[name], np.ndarray) else numeric[name],
                dtype=np.float64,
            )
            if v.size == 0 or not np.all(np.isfinite(v)):
                raise ValidationError(
                    f"reference feature {name!r} is empty or holds non-finite values; "
                    "profile only validated data"
                )
            qs = np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1])
            edges = np.unique(qs)
            counts = np.bincount(np.searchsorted(edges, v, side="left"), minlength=len(edges) + 1)
            sample = v if v.size <= sample_size else rng.choice(v, size=sample_size, replace=False)
            nums[name] = NumericProfile(
                count=int(v.size),
                mean=float(v.mean()),
                std=float(v.std()),
                min=float(v.min()),
                max=float(v.max()),
                edges=[float(e) for e in edges],
                shares=[float(c) / v.size for c in counts],
                sample=[float(x) for x in np.sort(sample)],
            )
        cat_src = categorical or {}
        cats = {name: dict(sorted(Counter(cat_src[name]).items())) for name in sorted(cat_src)}
        return cls(numeric=nums, categorical=cats, **thresholds)

    @classmethod
    def from_game_states(cls, batch: Any, **kwargs: Any) -> ReferenceProfile:
        """Profile a GameState batch (a DecodedBatch or any Arrow batch / table)."""
        numeric, categorical = _game_state_columns(batch)
        return cls.build(numeric, categorical, **kwargs)

    def compare(
        self,
        numeric: Mapping[str, Iterable[float]],
        categorical: Mapping[str, Iterable[str]] | None = None,
    ) -> DriftReport:
        """Compare a live window (same feature names) with this reference."""
        out: list[FeatureDrift] = []
        for name, live in sorted(numeric.items()):
            if name not in self.numeric:
                raise ValidationError(f"feature {name!r} is not in the reference profile")
            out.append(self._numeric(name, np.asarray(live, dtype=np.float64)))
        for name, labels in sorted((categorical or {}).items()):
            if name not in self.categorical:
                raise ValidationError(f"feature {name!r} is not in the reference profile")
            out.append(self._categorical(name, Counter(labels)))
        return DriftReport(tuple(out), self.content_hash())

    def compare_game_states(self, batch: Any) -> DriftReport:
        numeric, categorical = _game_state_columns(batch)
        return self.compare(numeric, categorical)

    def _numeric(self, name: str, live: Array) -> FeatureDrift:
        ref = self.numeric[name]
        live = live[np.isfinite(live)]
        sample = np.asarray(ref.sample)
        counts = np.bincount(
            np.searchsorted(np.asarray(ref.edges), live, side="left"), minlength=len(ref.edges) + 1
        ).astype(np.float64)
        d, p = stats.ks_2samp(sample, live) if live.size else (math.nan, math.nan)
        values = {
            "psi": stats.psi(np.asarray(ref.shares) * ref.count, counts),
            "ks_statistic": d,
            "ks_pvalue": p,
            "wasserstein": stats.wasserstein_distance(sample, live) if live.size else math.nan,
            "live_mean": float(live.mean()) if live.size else math.nan,
        }
        if live.size < self.min_samples:
            test, threshold, drifted = "insufficient", math.nan, False
        elif live.size <= self.large_sample:
            test, threshold, drifted = "ks", self.alpha, p < self.alpha
        else:
            test, threshold = "psi", self.psi_threshold
            drifted = values["psi"] >= self.psi_threshold
        return FeatureDrift(
            name, "numeric", ref.count, int(live.size), values, test, threshold, bool(drifted)
        )

    def _categorical(self, name: str, live: Counter[str]) -> FeatureDrift:
        ref = self.categorical[name]
        cats = sorted(set(ref) | set(live))
        r = np.array([ref.get(c, 0) for c in cats], dtype=np.float64)
        lv = np.array([live.get(c, 0) for c in cats], dtype=np.float64)
        n_live = int(lv.sum())
        # categories unseen in the reference get a small share so chi-square stays finite
        shares = np.maximum(r / max(r.sum(), 1.0), 1e-4)
        shares /= shares.sum()
        expected = shares * n_live
        chi2, p = stats.chisquare(lv, expected) if n_live else (math.nan, math.nan)
        js = stats.jensenshannon(r, lv) if n_live and r.sum() else math.nan
        unseen = float(sum(live[c] for c in live if c not in ref))
        values = {
            "chi2": chi2,
            "chi2_pvalue": p,
            "js_distance": js,
            "unseen_share": unseen / max(n_live, 1),
        }
        if n_live < self.min_samples:
            test, threshold, drifted = "insufficient", math.nan, False
        elif np.all(expected >= 5.0):
            test, threshold, drifted = "chi2", self.alpha, p < self.alpha
        else:
            test, threshold, drifted = "js", self.js_threshold, js >= self.js_threshold
        return FeatureDrift(
            name, "categorical", int(r.sum()), n_live, values, test, threshold, bool(drifted)
        )

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): equal profiles serialize to equal bytes."""
        body = {
            "numeric": {k: asdict(v) for k, v in self.numeric.items()},
            "categorical": self.categorical,
            "alpha": self.alpha,
            "psi_threshold": self.psi_threshold,
            "js_threshold": self.js_threshold,
            "min_samples": self.min_samples,
            "large_sample": self.large_sample,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        body = json.loads(text)
        numeric = {k: NumericProfile(**v) for k, v in body.pop("numeric").items()}
        return cls(numeric=numeric, categorical=body.pop("categorical"), **body)

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON: profiles are named by content."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def _game_state_columns(batch: Any) -> tuple[dict[str, Array], dict[str, list[str]]]:
    import pyarrow as pa

    table = batch if isinstance(batch, pa.Table) else pa.table(batch)
    numeric = {n: table.column(n).to_numpy() for n in GAME_STATE_NUMERIC}
    items = table.column("inventory").combine_chunks().flatten().cast(pa.string()).to_pylist()
    categorical = {"champion": table.column("champion").to_pylist(), "inventory": items}
    return numeric, categorical


__all__ = ["DriftReport", "FeatureDrift", "NumericProfile", "ReferenceProfile"]
