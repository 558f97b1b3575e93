"""Concordance against brute-force loops over checkpoint pairs and scipy's Kendall tau."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pctce_cli.errors import UsageError
from pctce_cli.stats.concordance import (
    concordance,
    concordance_matrix,
    discordant_pairs,
    kendall_tau,
    kendall_tau_matrix,
    tied_pairs_matrix,
)


def sign(x: float) -> int:
    return int(x > 0) - int(x < 0)


def brute_concordance(table: pd.DataFrame, summaries) -> tuple[int, int, int]:
    rows = table[list(summaries)].to_numpy().tolist()
    conc = tied = pairs = 0
    for a, b in itertools.combinations(range(len(rows)), 2):
        pairs += 1
        signs = [sign(rows[a][k] - rows[b][k]) for k in range(len(summaries))]
        if 0 in signs:
            tied += 1
        elif len(set(signs)) == 1:
            conc += 1
    return conc, tied, pairs


def random_table(m: int, seed: int, ties: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=m)
    cols = {}
    for k, s in enumerate(["mean", "p50", "p90", "p95", "p99"]):
        v = base + rng.normal(scale=0.3 * (k + 1), size=m)
        cols[s] = np.round(v, 1) if ties else v
    return pd.DataFrame(cols, index=[f"ck{i}" for i in range(m)])


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("summaries", [["mean"], ["mean", "p50"], ["mean", "p50", "p95"], ["mean", "p50", "p90", "p95", "p99"]])
def test_concordance_matches_brute_force(ties, summaries):
    t = random_table(37, seed=len(summaries), ties=ties)
    got = concordance(t, summaries)
    conc, tied, pairs = brute_concordance(t, summaries)
    assert (got.n_concordant, got.n_tied, got.n_pairs) == (conc, tied, pairs)
    assert got.c == conc / pairs
    assert got.n_discordant == pairs - conc - tied


def test_two_summaries_no_ties_equal_half_one_plus_tau():
    t = random_table(50, seed=3, ties=False)
    for s1, s2 in itertools.combinations(t.columns, 2):
        tau = stats.kendalltau(t[s1], t[s2]).statistic
        assert concordance(t, [s1, s2]).c == pytest.approx((1 + tau) / 2, abs=1e-12)


def test_matrices_match_brute_force_and_scipy():
    t = random_table(25, seed=4, ties=True)
    names = list(t.columns)
    cm = concordance_matrix(t, names)
    tm = tied_pairs_matrix(t, names)
    km = kendall_tau_matrix(t, names)
    for a, b in itertools.product(names, names):
        conc, tied, pairs = brute_concordance(t, [a] if a == b else [a, b])
        assert cm.loc[a, b] == conc / pairs
        assert tm.loc[a, b] == tied
        assert km.loc[a, b] == pytest.approx(stats.kendalltau(t[a], t[b]).statistic, abs=1e-12)
    assert list(cm.index) == names and list(cm.columns) == names


def test_diagonal_is_one_without_ties():
    t = random_table(20, seed=5, ties=False)
    np.testing.assert_array_equal(np.diag(concordance_matrix(t, list(t.columns))), 1.0)


def test_default_set_and_mapping_input():
    t = random_table(10, seed=6, ties=False)
    values = {s: t[s].tolist() for s in ("mean", "p50", "p95")}
    assert concordance(values) == concordance(t)


def test_fewer_than_two_checkpoints_is_nan():
    for m in (0, 1):
        r = concordance({"mean": [1.0] * m, "p50": [2.0] * m}, ["mean", "p50"])
        assert math.isnan(r.c) and r.n_pairs == 0


def test_discordant_pairs_brute_force():
    t = random_table(15, seed=7, ties=True)
    t.insert(0, "checkpoint", [f"run/{i}" for i in range(15)])
    got = discordant_pairs(t, "mean", "p95")
    want = []
    for a, b in itertools.combinations(range(15), 2):
        d1 = t["mean"].iloc[b] - t["mean"].iloc[a]
        d2 = t["p95"].iloc[b] - t["p95"].iloc[a]
        if sign(d1) * sign(d2) < 0:
            want.append([f"run/{a}", f"run/{b}", d1, d2])
    assert list(got.columns) == ["a", "b", "delta_mean", "delta_p95"]
    assert got.values.tolist() == want


def test_kendall_tau_undefined_is_nan_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(kendall_tau([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
        assert math.isnan(kendall_tau([1.0], [2.0]))
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "values, summaries, msg",
    [
        (pd.DataFrame({"mean": [1.0, 2.0]}), ["mean", "p95"], "values has no column p95 (columns: mean)"),
        (pd.DataFrame({"mean": [1.0, np.nan]}, index=["a", "b"]), ["mean"],
         "values: mean is NaN for checkpoint 'b'; concordance needs a value for every checkpoint"),
        ({"mean": [1.0, 2.0], "p50": [1.0]}, ["mean", "p50"],
         "values: every summary needs one value per checkpoint, got lengths {'mean': 2, 'p50': 1}"),
        ([1.0, 2.0], ["mean"], "values must be a DataFrame or a mapping summary → values, got list"),
    ],
)
def test_errors(values, summaries, msg):
    with pytest.raises(UsageError) as exc:
        concordance(values, summaries)
    assert str(exc.value) == msg


def test_vectorised_scale():
    t = random_table(400, seed=8, ties=False)
    r = concordance(t, list(t.columns))
    assert r.n_pairs == 400 * 399 // 2
    assert 0.0 <= r.c <= 1.0
