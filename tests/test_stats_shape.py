"""Band masses, percentile profiles and ECDF points against loops and numpy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from pctce_cli.errors import UsageError
from pctce_cli.stats.shape import (
    PROFILE_LEVELS,
    band_labels,
    band_mass,
    ecdf_points,
    group_distance_summary,
    profile,
    profile_distance,
    profile_distances,
)
from pctce_cli.stats.summaries import DEFAULT_EDGES


@pytest.fixture
def ce():
    rng = np.random.default_rng(0)
    x = rng.gamma(0.6, 2.5, size=5000).astype(np.float32)
    x[:50] = 0.1  # exactly on an edge: belongs to the band above
    x[50:60] = 0.0
    return x


def test_band_mass_matches_loop(ce):
    edges = list(DEFAULT_EDGES)
    got = band_mass(ce, edges)
    want = [sum(1 for v in ce.tolist() if lo <= v < hi) / ce.size for lo, hi in zip(edges[:-1], edges[1:])]
    assert got.tolist() == want
    assert got.sum() == pytest.approx(1.0)


def test_band_mass_half_open_and_outside():
    x = np.array([-0.5, 0.0, 1.0, 1.0, 2.0, 7.0])
    got = band_mass(x, [0, 1, 2])
    assert got.tolist() == [1 / 6, 2 / 6]  # -0.5, 2.0 and 7.0 are in no band


def test_band_mass_empty_and_bad_edges():
    assert np.isnan(band_mass([], [0, 1])).all()
    with pytest.raises(UsageError, match=r"edges must be strictly increasing numbers, got \[0.0, 1.0, 1.0\]"):
        band_mass([1.0], [0, 1, 1])
    with pytest.raises(UsageError, match="edges must list at least 2 band edges"):
        band_mass([1.0], [0])


def test_band_labels():
    assert band_labels() == ["[0, 0.1)", "[0.1, 0.5)", "[0.5, 1.5)", "[1.5, 5)", "[5, 10)", "[10, inf)"]


def test_profile_against_numpy(ce):
    x = ce.astype(np.float64)
    p = np.percentile(x, PROFILE_LEVELS)
    p25, p50, p75 = np.percentile(x, [25, 50, 75])
    np.testing.assert_allclose(profile(ce), (p - p50) / (p75 - p25), rtol=0, atol=1e-14)
    assert len(PROFILE_LEVELS) == 19 and PROFILE_LEVELS[0] == 5 and PROFILE_LEVELS[-1] == 95


def test_profile_zero_iqr_is_nan():
    assert np.isnan(profile(np.ones(10))).all()
    assert np.isnan(profile([])).all()


def test_profile_distances_against_loops():
    rng = np.random.default_rng(1)
    profiles = {f"ck{i}": profile(rng.gamma(0.5 + 0.1 * i, 2.0, size=800)) for i in range(6)}
    d = profile_distances(profiles)
    for a, b in itertools.product(profiles, profiles):
        want = math.sqrt(sum((u - v) ** 2 for u, v in zip(profiles[a], profiles[b])))
        assert d.loc[a, b] == pytest.approx(want, abs=1e-12)
        assert profile_distance(profiles[a], profiles[b]) == pytest.approx(want, abs=1e-12)
    frame = pd.DataFrame(profiles).T
    pd.testing.assert_frame_equal(profile_distances(frame), d)


def test_group_distance_summary_against_loops():
    rng = np.random.default_rng(2)
    names = [f"ck{i}" for i in range(7)]
    d = profile_distances({n: rng.normal(size=4) for n in names})
    groups = {n: g for n, g in zip(names, "aabbbca")}
    out = group_distance_summary(d, groups)
    assert out[["group_a", "group_b"]].values.tolist() == [
        ["a", "a"], ["a", "b"], ["a", "c"], ["b", "b"], ["b", "c"], ["c", "c"]
    ]
    for _, row in out.iterrows():
        vals = []
        for i, j in itertools.combinations(range(7), 2):
            gi, gj = groups[names[i]], groups[names[j]]
            if {gi, gj} == {row.group_a, row.group_b} and (gi == gj) == (row.group_a == row.group_b):
                vals.append(d.iloc[i, j])
        assert row.n_pairs == len(vals)
        if vals:
            assert row.mean_distance == pytest.approx(np.mean(vals))
        else:
            assert math.isnan(row.mean_distance)


def test_ecdf_points(ce):
    out = ecdf_points(ce, n_points=50)
    x = np.sort(ce.astype(np.float64))
    assert list(out.columns) == ["ce", "cdf"]
    assert out["ce"].iloc[0] == x[0] and out["ce"].iloc[-1] == x[-1] and out["cdf"].iloc[-1] == 1.0
    for v, c in zip(out["ce"], out["cdf"]):
        assert c == np.count_nonzero(x <= v) / x.size
    assert out["ce"].is_monotonic_increasing and out["cdf"].is_monotonic_increasing
    assert len(out) <= 50


def test_ecdf_points_small_and_errors():
    out = ecdf_points([2.0, 1.0], n_points=200)
    assert out.values.tolist() == [[1.0, 0.5], [2.0, 1.0]]
    assert len(ecdf_points([], 10)) == 0
    with pytest.raises(UsageError, match="n_points must be an integer >= 2, got 1"):
        ecdf_points([1.0], 1)
