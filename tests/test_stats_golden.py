"""Bootstrap numbers on fixed seeds against a reference loop written from the documented contract.

These tests once compared 17-digit floats printed by the code at a tag that is
not in the repository, which held only on the machine that printed them. They
now recompute every replicate with a plain loop that follows the contract in
:mod:`pctce_cli.stats.bootstrap` literally (documents numbered by sorted unique
id; replicate ``b`` draws ``rng.integers(0, D, size=D)`` from
``np.random.default_rng(seed)``; percentile intervals of the replicate values).
Percentiles are order statistics and compare exactly up to the interpolation
step; means and ratios differ only by float64 summation order, so every value
is compared with a relative tolerance of 1e-9 (absolute 1e-12 near zero).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pctce_cli import compare as C
from pctce_cli.stats import bootstrap as B

REL, ABS = 1e-9, 1e-12


def pair_data():
    rng = np.random.default_rng(2024)
    lengths = rng.integers(5, 40, size=30)
    doc = np.repeat(np.arange(30), lengths)
    a = (rng.gamma(0.8, 2.0, size=len(doc)) * rng.gamma(2.0, 0.5, size=30)[doc]).astype(np.float32)
    b = (a * rng.lognormal(-0.05, 0.2, size=len(doc))).astype(np.float32)
    n_bytes = rng.integers(20, 200, size=30)
    return a, b, doc, n_bytes


def summary(name: str, x: np.ndarray) -> float:
    """One summary of float64 values, written out (mean, ppl, pXX, iqr, zXX = (pXX − p50)/iqr)."""
    if name == "mean":
        return float(np.mean(x))
    if name == "ppl":
        return float(np.exp(np.mean(x)))
    iqr = np.percentile(x, 75) - np.percentile(x, 25)
    if name == "iqr":
        return float(iqr)
    q = float(name[1:])
    if name[0] == "p":
        return float(np.percentile(x, q))
    return float((np.percentile(x, q) - np.percentile(x, 50)) / iqr) if iqr > 0 else math.nan


def resamples(n_docs: int, n_boot: int, seed: int):
    """The documents each replicate draws, as the contract states."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n_docs, size=n_docs) for _ in range(n_boot)]


def replicates(ce, doc, names, n_boot, seed):
    """``{summary: replicate values}`` by concatenating the drawn documents' targets."""
    ids = np.unique(doc)
    rows_of = [np.flatnonzero(doc == d) for d in ids]
    out = {n: [] for n in names}
    for idx in resamples(ids.size, n_boot, seed):
        x = np.asarray(ce, np.float64)[np.concatenate([rows_of[i] for i in idx])]
        for n in names:
            out[n].append(summary(n, x))
    return {n: np.asarray(v) for n, v in out.items()}


def interval(values, ci):
    """Type-7 (1−ci)/2 and (1+ci)/2 percentiles of the non-NaN values."""
    v = values[~np.isnan(values)]
    tail = (1.0 - ci) / 2.0
    return tuple(float(x) for x in np.percentile(v, [100 * tail, 100 * (1 - tail)]))


def reference_bpb(a, b, doc, n_bytes, n_boot, ci, seed):
    """Paired Δ bits-per-byte: per-document sums of the drawn documents, one replicate at a time."""
    nll_a = np.bincount(doc, weights=a.astype(np.float64))
    nll_b = np.bincount(doc, weights=b.astype(np.float64))
    total = n_bytes.sum()
    reps = np.array([(nll_b[i].sum() - nll_a[i].sum()) / n_bytes[i].sum() / math.log(2) for i in resamples(len(n_bytes), n_boot, seed)])
    bpb_a, bpb_b = nll_a.sum() / total / math.log(2), nll_b.sum() / total / math.log(2)
    lo, hi = interval(reps, ci)
    return {"delta": bpb_b - bpb_a, "lo": lo, "hi": hi, "a": bpb_a, "b": bpb_b}


def reference_paired(a, b, doc, names, n_boot, ci, seed):
    ra, rb = replicates(a, doc, names, n_boot, seed), replicates(b, doc, names, n_boot, seed)
    out = {}
    for n in names:
        pa, pb = summary(n, a.astype(np.float64)), summary(n, b.astype(np.float64))
        lo, hi = interval(rb[n] - ra[n], ci)
        out[n] = {"delta": pb - pa, "lo": lo, "hi": hi, "a": pa, "b": pb}
    return out


def approx(tree):
    """``tree`` with every float wrapped in the stated tolerance."""
    if isinstance(tree, dict):
        return {k: approx(v) for k, v in tree.items()}
    if isinstance(tree, tuple):
        return tuple(approx(v) for v in tree)
    return pytest.approx(tree, rel=REL, abs=ABS)


def test_compare_uses_the_stats_bootstrap():
    assert C.paired_bpb is B.paired_bpb  # one home for bootstrap code: compare has none of its own


def test_paired_bpb_equals_the_reference_loop():
    a, b, doc, n_bytes = pair_data()
    nll_a = np.bincount(doc, weights=a.astype(np.float64))
    nll_b = np.bincount(doc, weights=b.astype(np.float64))
    r = B.paired_bpb(nll_a, nll_b, n_bytes, 300, 0.9, 11)
    assert {k: float(v) for k, v in r.items()} == approx(reference_bpb(a, b, doc, n_bytes, 300, 0.9, 11))


def test_compare_intervals_equal_the_reference_loop():
    a, b, doc, n_bytes = pair_data()
    docs = pd.DataFrame({"doc": np.arange(30), "n_bytes": n_bytes})
    sa, sb = SimpleNamespace(ce=a, doc=doc, docs=docs), SimpleNamespace(ce=b, doc=doc, docs=docs)
    c = C.compare_scores(sa, sb, "base", "cand", percentiles=[50, 90], ci=0.9, n_boot=200, seed=7)
    got = {n: {k: float(v[k]) for k in ("delta", "lo", "hi", "a", "b")} for n, v in c.stats.items()}
    want = reference_paired(a, b, doc, ["mean", "p50", "p90", "iqr"], 200, 0.9, 7)
    want["bpb"] = reference_bpb(a, b, doc, n_bytes, 200, 0.9, 7)
    assert got == approx(want)
    assert c.method == "exact"


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_summary_intervals_equal_the_reference_loop(method):
    a, b, doc, _ = pair_data()
    names = ["mean", "ppl", "p50", "p95", "iqr", "z90"]
    res = B.paired_bootstrap(a, b, doc, names, n_boot=150, ci=0.8, seed=3, method=method)
    want = reference_paired(a, b, doc, names, 150, 0.8, 3)
    assert {n: (float(v["lo"]), float(v["hi"])) for n, v in res.items()} == approx({n: (w["lo"], w["hi"]) for n, w in want.items()})
    names = ["mean", "p50", "p99"]
    res = B.bootstrap_ci(a, doc, names, n_boot=150, ci=0.95, seed=5, method=method)
    reps = replicates(a, doc, names, 150, 5)
    assert {n: tuple(map(float, v)) for n, v in res.items()} == approx({n: interval(reps[n], 0.95) for n in names})


def test_draw_counts_is_one_integers_call_per_replicate():
    w = B.draw_counts(np.random.default_rng(4), 5, 3)
    rng = np.random.default_rng(4)
    want = np.stack([np.bincount(rng.integers(0, 5, size=5), minlength=5) for _ in range(3)]).astype(np.float64)
    np.testing.assert_array_equal(w, want)


def test_the_two_interval_conventions_differ_only_on_infinite_replicates():
    values = np.array([1.0, np.inf, 2.0, np.nan, 3.0])
    # compare's bpb convention: NaN and ±inf left out
    assert B.percentile_interval(values, 0.5) == (1.5, 2.5)
    # the summary bootstraps' convention (an overflowing ppl replicate stays)
    assert B.percentile_interval(values, 0.5, drop="nan") == (1.75, np.inf)
    assert B._interval(values, 0.5) == (1.75, np.inf)
    finite = np.array([3.0, 1.0, np.nan, 2.0])
    assert B.percentile_interval(finite, 0.9) == B.percentile_interval(finite, 0.9, drop="nan")
    with pytest.raises(Exception, match="drop must be 'nonfinite' or 'nan', got 'x'"):
        B.percentile_interval(values, 0.5, drop="x")
