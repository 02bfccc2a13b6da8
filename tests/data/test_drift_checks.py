"""Drift: statistics agree with scipy on the same samples; the deciding test follows the
sample size; raw values are always reported; the publish hook carries them."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import dumps, game_state

from system0.data import stats
from system0.data.serialization import decode_game_states
from system0.data.validation import ReferenceProfile

scipy_stats = pytest.importorskip("scipy.stats", reason="scipy is in the dev extra")
from scipy.spatial.distance import jensenshannon  # noqa: E402
from scipy.special import gammaincc  # noqa: E402


@pytest.mark.parametrize("seed", range(5))
def test_numeric_statistics_agree_with_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=400)
    b = rng.normal(0.2, 1.3, size=250)
    d, p = stats.ks_2samp(a, b)
    ref = scipy_stats.ks_2samp(a, b)
    assert d == pytest.approx(ref.statistic, abs=1e-15)
    lam = np.sqrt(400 * 250 / 650) * d
    assert p == pytest.approx(scipy_stats.kstwobign.sf(lam), rel=1e-9)
    assert stats.wasserstein_distance(a, b) == pytest.approx(
        scipy_stats.wasserstein_distance(a, b), rel=1e-12
    )


@pytest.mark.parametrize("seed", range(5))
def test_categorical_statistics_agree_with_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    obs = rng.integers(5, 100, size=6).astype(float)
    exp = rng.integers(5, 100, size=6).astype(float)
    exp *= obs.sum() / exp.sum()
    chi, p = stats.chisquare(obs, exp)
    ref = scipy_stats.chisquare(obs, exp)
    assert chi == pytest.approx(ref.statistic, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
    assert stats.jensenshannon(obs, exp) == pytest.approx(jensenshannon(obs, exp, base=2), rel=1e-9)
    for a, x in [(0.5, 0.1), (2.5, 7.0), (30.0, 12.0), (1.0, 40.0)]:
        assert stats.gammaincc(a, x) == pytest.approx(gammaincc(a, x), rel=1e-9)


def test_profile_values_are_the_scipy_values_on_the_same_samples() -> None:
    rng = np.random.default_rng(7)
    ref, live = rng.gamma(2.0, size=2000), rng.gamma(2.3, size=500)
    profile = ReferenceProfile.build({"health": ref})  # 2000 <= sample_size: exact
    f = profile.compare({"health": live})["health"]
    assert f.values["ks_statistic"] == pytest.approx(scipy_stats.ks_2samp(ref, live).statistic)
    assert f.values["wasserstein"] == pytest.approx(scipy_stats.wasserstein_distance(ref, live))
    assert f.test == "ks" and f.drifted == (f.values["ks_pvalue"] < 0.01)


def test_the_deciding_test_follows_the_sample_size() -> None:
    rng = np.random.default_rng(1)
    profile = ReferenceProfile.build({"x": rng.normal(size=5000)}, {"c": ["a"] * 50 + ["b"] * 50})
    small = profile.compare({"x": rng.normal(size=10)}, {"c": ["a"] * 5})
    assert small["x"].test == "insufficient" and not small["x"].drifted
    assert np.isfinite(small["x"].values["psi"])  # raw values reported anyway
    mid = profile.compare({"x": rng.normal(size=500)})
    assert mid["x"].test == "ks" and not mid["x"].drifted
    shifted = profile.compare({"x": rng.normal(1.0, size=5000)})
    assert shifted["x"].test == "psi" and shifted["x"].drifted
    assert shifted["x"].values["psi"] > 0.2
    cats = profile.compare({}, {"c": ["a"] * 90 + ["b"] * 10})
    assert cats["c"].test == "chi2" and cats["c"].drifted
    sparse = profile.compare({}, {"c": ["a"] * 20 + ["b"] * 20 + [f"new{i}" for i in range(10)]})
    assert sparse["c"].test == "js" and sparse["c"].values["unseen_share"] == pytest.approx(0.2)


def test_game_state_profile_publishes_through_the_hook() -> None:
    rng = np.random.default_rng(3)
    ref_rows = [game_state(health=float(h)) for h in rng.uniform(100, 600, size=300)]
    live_rows = [
        game_state(health=float(h), champion="Zed") for h in rng.uniform(50, 200, size=300)
    ]
    profile = ReferenceProfile.from_game_states(decode_game_states(dumps(ref_rows)))
    report = profile.compare_game_states(decode_game_states(dumps(live_rows)))
    assert "health" in report.drifted_features and "champion" in report.drifted_features
    assert "position_x" not in report.drifted_features
    gauges: dict[tuple[str, str], float] = {}
    alerts = []
    report.publish(
        lambda n, v, labels: gauges.__setitem__((n, labels["feature"]), v), on_drift=alerts.append
    )
    assert gauges[("data_drift_detected", "health")] == 1.0
    assert gauges[("data_drift_ks_statistic", "health")] == report["health"].values["ks_statistic"]
    assert alerts == [report]


def test_profile_round_trips_and_is_named_by_content() -> None:
    p = ReferenceProfile.build({"x": np.arange(100.0)}, {"c": ["a", "b", "a"]})
    q = ReferenceProfile.from_json(p.to_json())
    assert q == p and q.content_hash() == p.content_hash()
    assert ReferenceProfile.build({"x": np.arange(101.0)}).content_hash() != p.content_hash()


def test_drift_reaches_the_telemetry_registry_by_default() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from system0.core import telemetry

    rng = np.random.default_rng(5)
    profile = ReferenceProfile.build({"mana": rng.normal(size=5000)})
    report = profile.compare({"mana": rng.normal(2.0, size=5000)})
    report.publish()
    families = {f.name: f for f in text_string_to_metric_families(telemetry.render_prometheus())}
    detected = [s for s in families["data_drift_detected"].samples if s.labels["feature"] == "mana"]
    assert [s.value for s in detected] == [1.0]
    psi = [s for s in families["data_drift_psi"].samples if s.labels["feature"] == "mana"]
    assert psi[0].value == pytest.approx(report["mana"].values["psi"])
