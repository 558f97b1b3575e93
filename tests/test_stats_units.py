"""Word and byte units (SPEC §8) against brute force: expanded arrays, explicit loops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pctce_cli.stats import summarize
from pctce_cli.stats.units import byte_mean, byte_values, weighted_percentiles, word_ce

LEVELS = [0, 5, 25, 50, 75, 90, 95, 99, 100]


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.floats(0, 30, width=32), min_size=1, max_size=60),
    weights=st.lists(st.integers(0, 9), min_size=60, max_size=60),
)
def test_weighted_percentiles_equal_the_expanded_array(values, weights):
    v = np.array(values, np.float32)
    w = np.array(weights[: len(values)], np.int64)
    got = weighted_percentiles(v, w, LEVELS)
    if w.sum() == 0:
        assert np.isnan(got).all()
    else:
        assert got.tolist() == np.percentile(np.repeat(v, w).astype(np.float64), LEVELS).tolist()


def test_weighted_percentiles_histogram_path_is_exact():
    rng = np.random.default_rng(0)
    v = (rng.gamma(1.5, 1.0, 300_000) / rng.integers(1, 9, 300_000)).astype(np.float32)
    v[:5000] = 0.0
    w = rng.integers(1, 12, v.size)
    want = np.percentile(np.repeat(v, w).astype(np.float64), LEVELS)
    assert weighted_percentiles(v, w, LEVELS).tolist() == want.tolist()


def test_word_ce_matches_a_loop():
    rng = np.random.default_rng(1)
    doc = np.sort(rng.integers(0, 20, 500))
    word = np.zeros(500, np.int64)
    for d in np.unique(doc):
        idx = np.flatnonzero(doc == d)
        word[idx] = np.sort(rng.integers(0, max(1, idx.size // 2), idx.size))
    word[rng.random(500) < 0.05] = -1
    ce = rng.gamma(2, 1, 500).astype(np.float32)
    w, wd, wi, empty, n_empty = word_ce(ce, doc, word)
    want = {}
    for c, d, k in zip(ce.astype(np.float64), doc, word):
        if k >= 0:
            want[(int(d), int(k))] = want.get((int(d), int(k)), 0.0) + c
    assert list(zip(wd.tolist(), wi.tolist())) == sorted(want)
    assert w == pytest.approx([want[k] for k in sorted(want)], rel=1e-12)
    assert n_empty == int((word < 0).sum())
    assert w.sum() + empty == pytest.approx(ce.astype(np.float64).sum(), rel=1e-12)  # Σ word CE + Σ empty = Σ token CE


def test_byte_summary_against_expansion():
    rng = np.random.default_rng(2)
    ce = rng.gamma(2, 1.5, 2000).astype(np.float32)
    nb = rng.integers(0, 7, 2000)
    s = summarize(ce, None, [50, 90, 99], unit="byte", nbytes=nb)
    assert s["mean"] == byte_mean(ce, nb)
    v, w = byte_values(ce, nb)
    expanded = np.repeat(v, w).astype(np.float64)
    assert s["n"] == nb.sum() == expanded.size
    assert s["mean"] == pytest.approx(ce[nb > 0].astype(np.float64).sum() / nb.sum(), rel=1e-12)
    assert s["mean"] == pytest.approx(expanded.mean(), rel=1e-6)  # (ce/n_bytes is float32 per byte)
    assert [s["p50"], s["p90"], s["p99"]] == np.percentile(expanded, [50, 90, 99]).tolist()
