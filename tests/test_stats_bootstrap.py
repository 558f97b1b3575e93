"""Document-level bootstrap: both methods against a naive reference.

The reference follows the documented resampling contract literally: documents
numbered by sorted unique id, replicate b draws ``rng.integers(0, D, size=D)``
from ``np.random.default_rng(seed)``, concatenates the drawn documents'
targets and calls ``np.percentile`` / ``np.mean`` on the result.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pctce_cli.errors import UsageError
from pctce_cli.stats import bootstrap as B
from pctce_cli.stats import _resample as R


def make_data(n_docs=40, mean_len=30, seed=0, ties=True, dtype=np.float32):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 2 * mean_len, size=n_docs)
    ids = rng.choice(10 * n_docs, size=n_docs, replace=False)  # sparse, unsorted ids
    doc = np.repeat(ids, lengths)
    difficulty = rng.gamma(2.0, 0.5, size=n_docs)
    ce = rng.gamma(0.6, 2.5, size=doc.size) * np.repeat(difficulty, lengths)
    if ties:
        ce[rng.random(doc.size) < 0.2] = 0.0
        ce = np.round(ce, 1)
    rank = rng.integers(0, 3, size=doc.size)
    return ce.astype(dtype), doc, rank


def naive_replicates(ce, doc, summaries, n_boot, seed, rank=None):
    ids = np.unique(doc)
    by_doc = [np.flatnonzero(doc == d) for d in ids]
    rng = np.random.default_rng(seed)
    out = {s: [] for s in summaries}
    for _ in range(n_boot):
        idx = rng.integers(0, ids.size, size=ids.size)
        rows = np.concatenate([by_doc[i] for i in idx])
        x = ce[rows].astype(np.float64)
        for s in summaries:
            if s == "mean":
                out[s].append(x.mean())
            elif s == "top1":
                out[s].append(np.mean(rank[rows] == 0))
            elif s == "iqr":
                out[s].append(np.percentile(x, 75) - np.percentile(x, 25))
            else:
                out[s].append(np.percentile(x, float(s[1:])))
    return {s: np.asarray(v) for s, v in out.items()}


SUMMARIES = ["mean", "p0", "p5", "p50", "p90", "p95", "p99", "p99.9", "p100", "iqr", "top1"]


@pytest.mark.parametrize("method", ["exact", "fast"])
@pytest.mark.parametrize("ties", [True, False])
def test_replicates_match_naive_reference(method, ties):
    ce, doc, rank = make_data(ties=ties)
    want = naive_replicates(ce, doc, SUMMARIES, n_boot=60, seed=7, rank=rank)
    got = B.bootstrap_replicates({"x": ce}, doc, SUMMARIES, n_boot=60, seed=7, method=method, ranks={"x": rank})["x"]
    for s in SUMMARIES:
        if s == "mean":
            np.testing.assert_allclose(got[s], want[s], rtol=1e-12)
        else:
            np.testing.assert_array_equal(got[s], want[s], err_msg=s)


@pytest.mark.parametrize(
    "n_docs, mean_len, dtype",
    [(400, 80, np.float32), (6, 3000, np.float32), (3000, 4, np.float64), (1, 500, np.float32)],
)
def test_fast_equals_exact_within_reported_bound(n_docs, mean_len, dtype):
    """Same seed → same resampled documents, so replicates compare one to one."""
    ce, doc, _ = make_data(n_docs=n_docs, mean_len=mean_len, seed=n_docs, ties=False, dtype=dtype)
    names = ["mean", "ppl", "p1", "p50", "p90", "p95", "p99", "iqr", "z95"]
    exact = B.bootstrap_ci(ce, doc, names, n_boot=40, seed=3, method="exact")
    fast = B.bootstrap_ci(ce, doc, names, n_boot=40, seed=3, method="fast")
    assert (exact.method, fast.method) == ("exact", "fast")
    for s in names:
        bound = fast.max_abs_error[s]
        assert bound == 0.0
        tol = 1e-12 * max(1.0, float(np.nanmax(np.abs(exact.replicates[s]))))
        np.testing.assert_allclose(fast.replicates[s], exact.replicates[s], rtol=0, atol=bound + tol, err_msg=s)
        np.testing.assert_allclose(fast[s], exact[s], rtol=0, atol=bound + tol)


def test_interval_is_percentile_of_replicates():
    ce, doc, _ = make_data()
    res = B.bootstrap_ci(ce, doc, ["mean", "p95"], n_boot=200, ci=0.9, seed=1)
    want = naive_replicates(ce, doc, ["mean", "p95"], n_boot=200, seed=1)
    for s in ("mean", "p95"):
        lo, hi = np.percentile(want[s], [5, 95])
        assert res[s] == pytest.approx((lo, hi), rel=1e-12)
    assert res["mean"][0] <= res.point["mean"] <= res["mean"][1]
    assert res.point["mean"] == pytest.approx(ce.astype(np.float64).mean(), rel=1e-12)
    assert res.n_docs == np.unique(doc).size and res.n_targets == ce.size


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_shard_invariance(method):
    """Targets in another order (shards concatenated differently) → same intervals."""
    ce, doc, rank = make_data(n_docs=60)
    rng = np.random.default_rng(5)
    perm = rng.permutation(ce.size)
    names = ["mean", "p50", "p95", "top1"]
    a = B.bootstrap_ci(ce, doc, names, n_boot=50, seed=11, method=method, rank=rank)
    b = B.bootstrap_ci(ce[perm], doc[perm], names, n_boot=50, seed=11, method=method, rank=rank[perm])
    for s in names:
        if method == "exact" and s == "mean":
            np.testing.assert_allclose(a.replicates[s], b.replicates[s], rtol=1e-12)
        else:
            np.testing.assert_array_equal(a.replicates[s], b.replicates[s])


def test_seed_reproducible_and_generator_accepted():
    ce, doc, _ = make_data()
    a = B.bootstrap_ci(ce, doc, ["p50"], n_boot=30, seed=4, method="fast")
    b = B.bootstrap_ci(ce, doc, ["p50"], n_boot=30, seed=4, method="fast")
    c = B.bootstrap_ci(ce, doc, ["p50"], n_boot=30, seed=np.random.default_rng(4), method="fast")
    d = B.bootstrap_ci(ce, doc, ["p50"], n_boot=30, seed=5, method="fast")
    np.testing.assert_array_equal(a.replicates["p50"], b.replicates["p50"])
    np.testing.assert_array_equal(a.replicates["p50"], c.replicates["p50"])
    assert not np.array_equal(a.replicates["p50"], d.replicates["p50"])


def test_chunking_does_not_change_replicates(monkeypatch):
    ce, doc, _ = make_data(n_docs=50)
    whole = B.bootstrap_ci(ce, doc, ["p90"], n_boot=25, seed=2, method="fast")
    monkeypatch.setattr(R, "_CHUNK_CELLS", 120)  # 2 replicates per chunk
    chunked = B.bootstrap_ci(ce, doc, ["p90"], n_boot=25, seed=2, method="fast")
    np.testing.assert_array_equal(whole.replicates["p90"], chunked.replicates["p90"])


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_paired_matches_naive_differences(method):
    ce_a, doc, rank_a = make_data(seed=1)
    rng = np.random.default_rng(9)
    ce_b = (ce_a * rng.uniform(0.8, 1.1, size=ce_a.size)).astype(np.float32)
    names = ["mean", "p50", "p95"]
    res = B.paired_bootstrap(ce_a, ce_b, doc, names, n_boot=80, ci=0.95, seed=3, method=method)
    ra = naive_replicates(ce_a, doc, names, 80, 3)
    rb = naive_replicates(ce_b, doc, names, 80, 3)
    for s in names:
        diff = rb[s] - ra[s]
        np.testing.assert_allclose(res.replicates[s], diff, rtol=0, atol=1e-12)
        lo, hi = np.percentile(diff, [2.5, 97.5])
        assert res[s]["lo"] == pytest.approx(lo, abs=1e-12) and res[s]["hi"] == pytest.approx(hi, abs=1e-12)
        pa = np.percentile(ce_a.astype(np.float64), 50) if s == "p50" else None
        if pa is not None:
            assert res[s]["a"] == pa
        assert res[s]["delta"] == pytest.approx(res[s]["b"] - res[s]["a"], abs=1e-15)


def test_paired_constant_shift_has_degenerate_interval():
    ce_a, doc, _ = make_data(seed=2, dtype=np.float64)
    res = B.paired_bootstrap(ce_a, ce_a + 0.25, doc, ["mean", "p50"], n_boot=50, method="fast")
    for s in ("mean", "p50"):
        assert res[s]["delta"] == pytest.approx(0.25)
        assert res[s]["lo"] == pytest.approx(0.25) and res[s]["hi"] == pytest.approx(0.25)


def test_multi_uses_same_resamples_as_single():
    ce_a, doc, _ = make_data(seed=3)
    ce_b = ce_a[::-1].copy()
    df = B.multi_bootstrap_ci({"a": ce_a, "b": ce_b}, doc, ["mean", "p95"], n_boot=40, seed=8)
    for name, ce in (("a", ce_a), ("b", ce_b)):
        single = B.bootstrap_ci(ce, doc, ["mean", "p95"], n_boot=40, seed=8)
        for s in ("mean", "p95"):
            row = df[(df.checkpoint == name) & (df.summary == s)].iloc[0]
            assert (row.lo, row.hi) == pytest.approx(single[s], rel=1e-13)
            assert row.value == pytest.approx(single.point[s], rel=1e-13)


def test_auto_method_by_size():
    ce, doc, _ = make_data()
    assert B.bootstrap_ci(ce, doc, ["p50"], n_boot=10).method == "exact"
    assert B.bootstrap_ci(ce, doc, ["p50"], n_boot=B.AUTO_EXACT_MAX_WORK // ce.size + 1).method == "fast"


def test_zq_nan_replicates_are_dropped():
    # One document has a constant CE: replicates drawing only it have iqr 0.
    ce = np.array([1.0, 1.0, 1.0, 0.0, 2.0, 5.0])
    doc = np.array([0, 0, 0, 1, 1, 1])
    res = B.bootstrap_ci(ce, doc, ["z95"], n_boot=50, seed=0)
    reps = res.replicates["z95"]
    assert np.isnan(reps).any() and not np.isnan(reps).all()
    lo, hi = res["z95"]
    assert lo == np.percentile(reps[~np.isnan(reps)], 2.5)


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        (dict(n_boot=0), "n_boot must be a positive integer, got 0"),
        (dict(ci=1.0), "ci must be a confidence level strictly between 0 and 1, got 1.0"),
        (dict(method="bogus"), "method must be one of auto, exact, fast, got 'bogus'"),
        (dict(seed="x"), "seed must be an integer or None, got 'x'"),
        (dict(summaries=["p200"]), "summary 'p200': percentiles must be in [0, 100], got 200"),
        (dict(summaries=["top1"]), "summary 'top1' needs rank (the rank of each target), got none"),
    ],
)
def test_bad_arguments(kwargs, msg):
    ce, doc, _ = make_data()
    args = dict(summaries=["mean"]) | kwargs
    with pytest.raises(UsageError) as exc:
        B.bootstrap_ci(ce, doc, **args)
    assert str(exc.value) == msg


def test_bad_data():
    with pytest.raises(UsageError, match="ce is empty: there are no documents to resample"):
        B.bootstrap_ci(np.zeros(0), np.zeros(0, dtype=int), ["mean"])
    with pytest.raises(UsageError, match=r"doc must have one entry per target \(3\), got 2"):
        B.bootstrap_ci([1.0, 2.0, 3.0], [0, 1], ["mean"])
    with pytest.raises(UsageError, match="same targets: got 3 and 2 CE values"):
        B.paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0], [0, 1, 1], ["mean"])


def test_point_mean_and_ppl_consistent():
    ce, doc, _ = make_data()
    res = B.bootstrap_ci(ce, doc, ["mean", "ppl"], n_boot=100, seed=0, method="fast")
    np.testing.assert_allclose(res.replicates["ppl"], np.exp(res.replicates["mean"]), rtol=1e-14)
    assert res.point["ppl"] == pytest.approx(math.exp(res.point["mean"]), rel=1e-14)


@pytest.mark.parametrize("signed", [False, True])
def test_packed_sort_equals_the_indirect_sort(signed):
    """float32 CE is sorted as packed (order key, document) integers: same values, same documents per value."""
    rng = np.random.default_rng(5)
    ce = np.round(rng.gamma(0.7, 2.0, 5000), 1).astype(np.float32)  # many ties
    if signed:
        ce[::7] *= -1
        ce[3], ce[4] = -0.0, 0.0
    inv = rng.integers(0, 300, ce.size).astype(np.intp)
    sorted_ce, sorted_doc = B._sort_by_ce(ce, inv, 300)
    order = np.argsort(ce, kind="stable")
    np.testing.assert_array_equal(sorted_ce, ce[order])  # -0.0 and 0.0 compare equal
    assert sorted_doc.dtype == inv.dtype
    # within each run of identical values (bit for bit: -0.0 sorts before 0.0),
    # the same documents as before, now in document order
    bits, sorted_bits = ce.view(np.uint32), sorted_ce.view(np.uint32)
    for v in np.unique(bits):
        np.testing.assert_array_equal(sorted_doc[sorted_bits == v], np.sort(inv[bits == v]))
    ref_ce, _ = B._sort_by_ce(ce.astype(np.float64), inv, 300)  # the indirect path
    np.testing.assert_array_equal(sorted_ce, ref_ce)
