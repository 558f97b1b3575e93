"""Hypothesis property tests of the stats invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pctce_cli.stats.bootstrap import bootstrap_replicates
from pctce_cli.stats.concordance import concordance, concordance_matrix
from pctce_cli.stats.decompose import decompose
from pctce_cli.stats.shape import band_mass
from pctce_cli.stats.summaries import percentiles

FAST = settings(max_examples=60, deadline=None)

ce_values = st.floats(min_value=0.0, max_value=50.0, allow_nan=False, width=32)
ce_arrays = hnp.arrays(np.float32, st.integers(1, 200), elements=ce_values)
levels = st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=1, max_size=12)


@FAST
@given(ce=ce_arrays, qs=levels)
def test_percentiles_monotone_in_q_and_equal_numpy(ce, qs):
    qs = sorted(qs)
    p = percentiles(ce, qs)
    assert (np.diff(p) >= 0).all()
    np.testing.assert_array_equal(p, np.percentile(ce.astype(np.float64), qs))
    assert ce.min() <= p[0] and p[-1] <= ce.max()


tables = st.integers(0, 12).flatmap(
    lambda m: st.fixed_dictionaries(
        {s: st.lists(st.integers(-3, 3), min_size=m, max_size=m) for s in ("mean", "p50", "p95")}
    )
)


@FAST
@given(values=tables, k=st.integers(1, 3))
def test_concordance_in_unit_interval(values, k):
    r = concordance(values, ["mean", "p50", "p95"][:k])
    if r.n_pairs:
        assert 0.0 <= r.c <= 1.0
        assert r.n_concordant + r.n_tied <= r.n_pairs


@FAST
@given(values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=30, unique=True))
def test_self_concordance_is_one_without_ties(values):
    t = pd.DataFrame({"mean": values, "copy": values})
    assert concordance(t, ["mean"]).c == 1.0
    assert concordance(t, ["mean", "copy"]).c == 1.0
    assert (concordance_matrix(t, ["mean", "copy"]).to_numpy() == 1.0).all()


@FAST
@given(
    data=st.integers(1, 150).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.float32, n, elements=ce_values),
            hnp.arrays(np.int64, n, elements=st.integers(0, 40)),
        )
    )
)
@pytest.mark.slow  # over half a second: kept out of the fast lane
def test_decomposition_identity(data):
    ce, rank = data
    d = decompose(ce, rank)
    assert abs(d["mean"] - (d["ee"] + d["sa"] - d["conf"])) <= 1e-9 * max(1.0, abs(d["mean"]))
    assert d["ee"] >= 0 and d["sa"] >= -1e-12


@FAST
@given(ce=ce_arrays)
def test_band_masses_sum_to_one(ce):
    m = band_mass(ce)
    assert abs(m.sum() - 1.0) < 1e-12
    assert (m >= 0).all()


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=15),
    seed=st.integers(0, 2**16),
    q=st.sampled_from(["p0", "p10", "p50", "p90", "p99", "p100"]),
)
def test_bootstrap_fast_equals_exact_and_ignores_target_order(lengths, seed, q):
    rng = np.random.default_rng(seed)
    doc = np.repeat(rng.permutation(len(lengths)) * 3, lengths)
    ce = np.round(rng.gamma(0.7, 2.0, size=doc.size), 1).astype(np.float32)  # ties on purpose
    names = ["mean", q]
    exact = bootstrap_replicates({"x": ce}, doc, names, n_boot=15, seed=seed, method="exact")["x"]
    fast = bootstrap_replicates({"x": ce}, doc, names, n_boot=15, seed=seed, method="fast")["x"]
    perm = rng.permutation(doc.size)
    shuffled = bootstrap_replicates({"x": ce[perm]}, doc[perm], names, n_boot=15, seed=seed, method="fast")["x"]
    np.testing.assert_array_equal(fast[q], exact[q])
    np.testing.assert_allclose(fast["mean"], exact["mean"], rtol=1e-12)
    np.testing.assert_array_equal(shuffled[q], fast[q])
    np.testing.assert_array_equal(shuffled["mean"], fast["mean"])
