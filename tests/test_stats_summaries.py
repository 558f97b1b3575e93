"""Summaries of one checkpoint, each checked against numpy or a plain loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pctce_cli.errors import UsageError
from pctce_cli.stats import summaries as S


@pytest.fixture
def ce32():
    rng = np.random.default_rng(0)
    ce = rng.gamma(0.7, 2.0, size=20_011).astype(np.float32)
    ce[::7] = 0.0  # many exact ties, as near-certain targets produce
    return ce


LEVELS = [0, 0.1, 1, 5, 25, 33.3, 50, 75, 90, 95, 99, 99.9, 100]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_percentiles_equal_numpy_bit_for_bit(ce32, dtype):
    ce = ce32.astype(dtype)
    got = S.percentiles(ce, LEVELS)
    want = np.percentile(ce.astype(np.float64), LEVELS)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_percentiles_tiny_arrays(n):
    ce = np.arange(n, dtype=np.float32)[::-1] * 0.37
    np.testing.assert_array_equal(S.percentiles(ce, LEVELS), np.percentile(ce.astype(np.float64), LEVELS))


def test_percentiles_scalar_level_and_input_untouched(ce32):
    before = ce32.copy()
    assert S.percentiles(ce32, 50).tolist() == [np.percentile(ce32.astype(np.float64), 50)]
    np.testing.assert_array_equal(ce32, before)


def test_percentiles_empty_is_nan():
    assert np.isnan(S.percentiles([], [50, 95])).all()


@pytest.mark.parametrize(
    "qs, msg",
    [
        (120, "percentiles must be in [0, 100], got 120"),
        ([50, -1], "percentiles must be in [0, 100], got -1"),
        ([float("nan")], "percentiles must be in [0, 100], got nan"),
        ("p50", "percentiles must be a number or a 1-D list of numbers, got 'p50'"),
    ],
)
def test_percentiles_bad_levels(qs, msg):
    with pytest.raises(UsageError) as exc:
        S.percentiles([1.0, 2.0], qs)
    assert str(exc.value) == msg


@pytest.mark.parametrize(
    "ce, msg",
    [
        ([1.0, float("nan")], "ce must be finite, got 1 NaN or infinite value(s)"),
        ([[1.0, 2.0]], "ce must be a 1-D array, got shape (1, 2)"),
        (["a", "b"], "ce must hold real numbers, got dtype <U1"),
    ],
)
def test_bad_ce(ce, msg):
    with pytest.raises(UsageError) as exc:
        S.percentiles(ce, [50])
    assert str(exc.value) == msg


def test_summarize_against_numpy(ce32):
    rng = np.random.default_rng(1)
    rank = rng.integers(0, 4, size=ce32.size)
    out = S.summarize(ce32, rank=rank, percentiles=(50, 90, 95, 99, 99.9))
    x = ce32.astype(np.float64)
    assert list(out) == ["n", "mean", "ppl", "p50", "p90", "p95", "p99", "p99.9", "iqr", "z95", "top1"]
    assert out["n"] == x.size
    assert out["mean"] == pytest.approx(x.mean(), rel=1e-13)
    assert out["ppl"] == pytest.approx(math.exp(x.mean()), rel=1e-13)
    for q in (50, 90, 95, 99, 99.9):
        assert out[S.percentile_name(q)] == np.percentile(x, q)
    p25, p50, p75, p95 = np.percentile(x, [25, 50, 75, 95])
    assert out["iqr"] == p75 - p25
    assert out["z95"] == pytest.approx((p95 - p50) / (p75 - p25), rel=1e-14)
    assert out["top1"] == np.mean(rank == 0)


def test_summarize_defaults_and_no_rank(ce32):
    out = S.summarize(ce32)
    assert [k for k in out if k.startswith("p") and k != "ppl"] == ["p50", "p90", "p95", "p99"]
    assert math.isnan(out["top1"])


def test_summarize_empty_is_nan_with_n_zero():
    out = S.summarize(np.zeros(0, dtype=np.float32), rank=np.zeros(0, dtype=np.int32))
    assert out["n"] == 0
    assert all(math.isnan(v) for k, v in out.items() if k != "n")


def test_z95_nan_when_iqr_zero():
    out = S.summarize(np.ones(100))
    assert out["iqr"] == 0 and math.isnan(out["z95"])


def test_summarize_rank_length_mismatch():
    with pytest.raises(UsageError, match=r"rank must have one entry per target \(3\), got 2"):
        S.summarize([1.0, 2.0, 3.0], rank=[0, 1])


def test_shard_invariance(ce32):
    """One array or shards in another order: identical percentiles, same mean."""
    rng = np.random.default_rng(2)
    pieces = np.array_split(ce32, 5)
    shuffled = np.concatenate([rng.permutation(p) for p in pieces[::-1]])
    a, b = S.summarize(ce32, percentiles=LEVELS), S.summarize(shuffled, percentiles=LEVELS)
    for k in a:
        if k in ("mean", "ppl"):
            assert a[k] == pytest.approx(b[k], rel=1e-12)
        else:
            assert a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k]))


@pytest.mark.parametrize("name", ["mean", "ppl", "p50", "p99.9", "iqr", "z95", "top1", "p0", "p100"])
def test_summary_value_matches_summarize(ce32, name):
    rank = (ce32 > 1).astype(np.int64)
    full = S.summarize(ce32, rank=rank, percentiles=(0, 50, 99.9, 100))
    assert S.summary_value(name, ce32, rank=rank) == pytest.approx(full[name], rel=1e-15)


def test_summary_value_zq_general(ce32):
    x = ce32.astype(np.float64)
    p10, p25, p50, p75 = np.percentile(x, [10, 25, 50, 75])
    assert S.summary_value("z10", ce32) == pytest.approx((p10 - p50) / (p75 - p25), rel=1e-14)


def test_summary_value_unknown_name():
    with pytest.raises(UsageError) as exc:
        S.summary_value("median", [1.0])
    assert str(exc.value) == (
        "unknown summary 'median'; valid summaries: mean, ppl, iqr, top1, "
        "pXX (percentile, e.g. p50, p99.9) or zXX (standardized percentile, e.g. z95)"
    )


def test_summary_value_top1_needs_rank():
    with pytest.raises(UsageError, match="summary 'top1' needs rank"):
        S.summary_value("top1", [1.0])


@pytest.mark.parametrize(
    "name, canonical, kind, q",
    [("mean", "mean", "mean", None), ("p50", "p50", "p", 50.0), ("p050", "p50", "p", 50.0),
     ("p99.9", "p99.9", "p", 99.9), ("p99.90", "p99.9", "p", 99.9), ("z95", "z95", "z", 95.0),
     ("top1", "top1", "top1", None)],
)
def test_parse_summary_name(name, canonical, kind, q):
    parsed = S.parse_summary_name(name)
    assert (parsed.name, parsed.kind, parsed.q) == (canonical, kind, q)


@pytest.mark.parametrize("bad", ["p101", "p", "P50", "p-5", "mean ", "p5e1"])
def test_parse_summary_name_rejects(bad):
    with pytest.raises(UsageError):
        S.parse_summary_name(bad)


def test_percentile_name():
    assert [S.percentile_name(q) for q in (50, 50.0, 99.9, 0.5, 100)] == ["p50", "p50", "p99.9", "p0.5", "p100"]


def test_doc_sums_and_doc_normalized_against_loops():
    rng = np.random.default_rng(3)
    doc = rng.integers(0, 30, size=2000) * 7  # sparse, unsorted ids
    ce = rng.gamma(1.0, 1.5, size=doc.size).astype(np.float32)
    ids, nll, count = S.doc_sums(ce, doc)
    assert ids.tolist() == sorted(set(doc.tolist()))
    for i, d in enumerate(ids):
        assert nll[i] == pytest.approx(sum(float(c) for c, dd in zip(ce, doc) if dd == d), rel=1e-12)
        assert count[i] == int(np.sum(doc == d))
    n_bytes = rng.integers(1, 5000, size=ids.size)
    n_words = rng.integers(1, 900, size=ids.size)
    m = S.doc_normalized(nll, n_bytes, n_words)
    total = sum(float(c) for c in ce)
    assert m["n_docs"] == ids.size
    assert m["bpb"] == pytest.approx(total / n_bytes.sum() / math.log(2), rel=1e-12)
    assert m["byte_ppl"] == pytest.approx(math.exp(total / n_bytes.sum()), rel=1e-12)
    assert m["word_ppl"] == pytest.approx(math.exp(total / n_words.sum()), rel=1e-12)


def test_doc_normalized_zero_denominators_and_errors():
    m = S.doc_normalized([], [], [])
    assert m["n_docs"] == 0 and math.isnan(m["bpb"]) and math.isnan(m["word_ppl"])
    with pytest.raises(UsageError, match=r"n_bytes must have one entry per document \(2\)"):
        S.doc_normalized([1.0, 2.0], [3], [1, 1])
    with pytest.raises(UsageError, match="n_words must be finite and >= 0"):
        S.doc_normalized([1.0], [3], [-1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["lognormal", "signed", "ties", "one_value", "tiny_and_huge"])
def test_histogram_selection_equals_partition(kind, dtype):
    """Large float32 and float64 arrays take the histogram path; it must return np.partition's values exactly."""
    rng = np.random.default_rng(3)
    n = S.RADIX_MIN + 12345
    x = rng.lognormal(-0.3, 1.2, n)
    if kind == "signed":
        x[::5] *= -1
        x[7] = -0.0
        x[8] = 0.0
    elif kind == "ties":
        x = np.round(x, 1)
    elif kind == "one_value":
        x = np.full(n, 2.5)
    elif kind == "tiny_and_huge":
        x[::3] = 1e-30
        x[1::3] = 3e30
    x = x.astype(dtype)
    kth = np.unique(rng.integers(0, n, 25).tolist() + [0, n - 1, n // 2])
    np.testing.assert_array_equal(S.order_statistics(x, kth), np.partition(x, kth)[kth])
    qs = [0, 1, 10, 25, 50, 75, 90, 95, 99, 100]
    np.testing.assert_array_equal(S.percentiles(x, qs), np.percentile(x.astype(np.float64), qs))


@given(
    st.lists(
        st.floats(width=32, allow_nan=False, allow_infinity=True, allow_subnormal=True),
        min_size=1,
        max_size=60,
    )
)
def test_float32_order_key_orders_like_the_values_and_round_trips(values):
    x = np.array(values, dtype=np.float32)
    key, flipped = S.float32_order_key(x)
    assert key.dtype == np.uint32 and flipped == bool(np.signbit(x).any())
    ordered = x[np.argsort(key, kind="stable")]
    assert np.all(ordered[:-1] <= ordered[1:])  # sorting keys sorts values
    np.testing.assert_array_equal(S.float32_from_order_key(key, flipped).view(np.uint32), x.view(np.uint32))
