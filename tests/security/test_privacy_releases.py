"""Released values: clamping, and statistical sanity of the noise against its own scale.

OpenDP draws from the OS CSPRNG, so nothing here is seeded; instead every bound is many
standard errors wide (derived from the mechanism's scale), so the tests do not flake.
"""

from __future__ import annotations

import math
import statistics

import pytest

pytest.importorskip("opendp", reason="differential privacy needs the 'privacy' extra (opendp)")

from system0.security.privacy import PrivacyAccountant

BIG = 1e9  # budget large enough for the repeated releases of one test


def test_count_noise_matches_its_scale() -> None:
    acc = PrivacyAccountant("d", epsilon=BIG)
    data = [0] * 200
    errs = [acc.count(data, epsilon=1.0).value - 200 for _ in range(400)]
    r = acc.count(data, epsilon=1.0)
    assert r.scale == pytest.approx(1.0)
    # Laplace(b=1): mean error 0, mean |error| <= b. 400 draws: standard error ~0.07.
    assert abs(statistics.fmean(errs)) < 0.5
    assert 0.4 < statistics.fmean(abs(e) for e in errs) < 1.6
    assert all(isinstance(e, int) for e in errs)


def test_smaller_epsilon_means_larger_noise() -> None:
    acc = PrivacyAccountant("d", epsilon=BIG)
    data = [0] * 100
    loose = [abs(acc.count(data, epsilon=2.0).value - 100) for _ in range(200)]
    tight = [abs(acc.count(data, epsilon=0.02).value - 100) for _ in range(200)]
    # Scales 0.5 and 50: a 100x gap; ask for 10x.
    assert statistics.fmean(tight) > 10 * statistics.fmean(loose)
    assert statistics.fmean(tight) > 20


def test_sum_clamps_each_value_into_the_bounds() -> None:
    acc = PrivacyAccountant("d", epsilon=BIG)
    high = acc.sum([100.0] * 10, lower=0.0, upper=1.0, epsilon=1000.0)
    low = acc.sum([-5.0] * 10 + [0.5] * 4, lower=0.0, upper=1.0, epsilon=1000.0)
    # scale = 1/1000: twenty scales either side is far beyond any plausible draw.
    assert high.value == pytest.approx(10.0, abs=0.02)
    assert low.value == pytest.approx(2.0, abs=0.02)


def test_sum_drops_nan_rows_and_error_stays_within_scale() -> None:
    acc = PrivacyAccountant("d", epsilon=BIG)
    data = [1.0, 2.0, math.nan, 3.0] * 25  # true sum of the non-NaN rows: 150
    errs = [acc.sum(data, lower=0.0, upper=4.0, epsilon=2.0).value - 150.0 for _ in range(300)]
    # sensitivity 4, epsilon 2 -> b = 2; standard error of the mean ~0.16.
    assert abs(statistics.fmean(errs)) < 1.0
    assert statistics.fmean(abs(e) for e in errs) < 4.0


def test_mean_is_close_and_inside_the_bounds() -> None:
    acc = PrivacyAccountant("d", epsilon=BIG)
    data = [float(x % 10) for x in range(1000)]  # true mean 4.5
    vals = [acc.mean(data, lower=0.0, upper=9.0, epsilon=1.0).value for _ in range(50)]
    assert all(0.0 <= v <= 9.0 for v in vals)
    assert abs(statistics.fmean(vals) - 4.5) < 0.2
    tiny = acc.mean([3.0], lower=0.0, upper=9.0, epsilon=0.001)
    assert 0.0 <= tiny.value <= 9.0  # huge noise, still clamped to the bounds


def test_histogram_counts_each_category_and_the_rest() -> None:
    acc = PrivacyAccountant("d", epsilon=BIG)
    data = ["win"] * 60 + ["loss"] * 30 + ["draw"] * 10
    r = acc.histogram(data, categories=["win", "loss"], epsilon=100.0)
    assert list(r.value) == ["win", "loss", None]
    assert r.value == {"win": 60, "loss": 30, None: 10}  # scale 0.01: discrete noise is 0
    ints = acc.histogram([1, 2, 2, 7], categories=[1, 2], epsilon=100.0)
    assert ints.value == {1: 1, 2: 2, None: 1}


def test_histogram_gaussian_noise_has_the_reported_scale() -> None:
    acc = PrivacyAccountant("d", epsilon=BIG, delta=0.5, mechanism="gaussian")
    data = ["a"] * 50
    r = acc.histogram(data, categories=["a"], epsilon=1.0, delta=1e-6)
    assert r.mechanism == "gaussian" and r.scale is not None and r.scale > 1
    errs = [
        acc.histogram(data, categories=["a"], epsilon=1.0, delta=1e-6).value["a"] - 50
        for _ in range(200)
    ]
    sd = statistics.pstdev(errs)
    assert 0.6 * r.scale < sd < 1.5 * r.scale


def test_quantile_is_a_candidate_near_the_truth() -> None:
    acc = PrivacyAccountant("d", epsilon=BIG)
    data = [float(x) for x in range(1001)]  # median 500, 0.9-quantile 900
    med = acc.quantile(data, q=0.5, lower=0.0, upper=1000.0, epsilon=5.0, bins=100)
    p90 = acc.quantile(data, q=0.9, lower=0.0, upper=1000.0, epsilon=5.0, bins=100)
    assert med.value % 10.0 == 0.0 and p90.value % 10.0 == 0.0  # one of the 101 candidates
    assert abs(med.value - 500.0) <= 60.0
    assert abs(p90.value - 900.0) <= 60.0
    assert med.mechanism == "exponential"


def test_contributions_bound_scales_the_noise() -> None:
    one = PrivacyAccountant("d", epsilon=BIG).count([0], epsilon=1.0)
    five = PrivacyAccountant("d", epsilon=BIG, max_contributions=5).count([0], epsilon=1.0)
    assert one.scale == pytest.approx(1.0) and five.scale == pytest.approx(5.0)


def test_opendp_proves_every_release_within_what_it_charged() -> None:
    # The accountant charges the epsilon asked for; OpenDP's own privacy map of the measurement
    # actually used must never exceed it (the noise scale is fitted, then checked).
    from system0.security import privacy_mechanisms

    acc = PrivacyAccountant("proof", epsilon=BIG, delta=0.5, max_contributions=3)
    data = [1.0, 2.0, math.nan, 7.5]
    acc.count(data, epsilon=0.3)
    acc.sum(data, lower=-1.0, upper=8.0, epsilon=0.7)
    acc.mean(data, lower=0.0, upper=8.0, epsilon=0.9)
    acc.histogram(["a", "b"], categories=["a"], epsilon=1.1)
    acc.quantile(data, q=0.25, lower=0.0, upper=8.0, epsilon=0.45, bins=32)
    acc.sum(data, lower=0.0, upper=8.0, epsilon=0.6, delta=1e-7, mechanism="gaussian")
    acc.quantile(data, q=0.5, lower=0.0, upper=8.0, epsilon=0.8, delta=1e-7, mechanism="gaussian")
    checked = 0
    for key, (meas, _scale) in list(privacy_mechanisms._measurements.items()):
        _kind, mech, eps, delta = key[:4]
        d_in = key[-1]
        if d_in != 3:
            continue
        loss = meas.map(d_in)
        if mech == "gaussian":
            assert loss[0] <= eps and loss[1] <= delta, (key, loss)
        else:
            assert loss <= eps, (key, loss)
        checked += 1
    assert checked >= 7  # mean uses two measurements (a sum and a count)


def test_gaussian_mean_and_quantile_release() -> None:
    acc = PrivacyAccountant("d", epsilon=BIG, delta=0.5, mechanism="gaussian")
    data = [float(x % 10) for x in range(2000)]
    mean = acc.mean(data, lower=0.0, upper=9.0, epsilon=2.0, delta=1e-6)
    assert mean.mechanism == "gaussian" and abs(mean.value - 4.5) < 0.5
    med = acc.quantile(data, q=0.5, lower=0.0, upper=9.0, epsilon=2.0, delta=1e-6, bins=90)
    assert med.mechanism == "exponential-zcdp" and abs(med.value - 4.5) <= 1.5
    assert acc.spent.delta == 2e-6
