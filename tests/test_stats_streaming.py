"""Streaming summaries (two passes, bounded memory) against the in-memory functions: exact, chunking-invariant."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pctce_cli.stats.shape import band_mass
from pctce_cli.stats.streaming import StreamingSummary, streaming_summarize
from pctce_cli.stats.summaries import DEFAULT_EDGES, summarize

LEVELS = [0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100]


def chunked(ce, rank, sizes):
    cuts = np.cumsum(sizes)[:-1]
    return list(zip(np.split(ce, cuts), np.split(rank, cuts)))


def check(ce, rank, sizes):
    want = summarize(ce, rank, percentiles=LEVELS)
    got = streaming_summarize(lambda: iter(chunked(ce, rank, sizes)), LEVELS, DEFAULT_EDGES)
    for k, v in want.items():
        if k == "mean" or k == "ppl" or k == "z95":  # sums per chunk: equal to round-off
            assert got[k] == pytest.approx(v, rel=1e-12, nan_ok=True), k
        else:
            assert got[k] == v or (np.isnan(v) and np.isnan(got[k])), k  # order statistics: exact
    assert got["bands"] == band_mass(ce, DEFAULT_EDGES).tolist()


def test_large_gamma_sample_equals_in_memory_exactly():
    rng = np.random.default_rng(0)
    ce = rng.gamma(1.2, 2.0, 2_000_003).astype(np.float32)
    ce[:1000] = 0.0  # a crowd at zero, as saturated tokens give
    ce[1000:5000] = np.float32(1e-7)
    rank = rng.integers(0, 5, ce.size)
    check(ce, rank, [700_001, 1, 999_999, 300_002])


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(0, 50, width=32, allow_subnormal=True), min_size=1, max_size=300),
    cuts=st.lists(st.integers(1, 50), min_size=1, max_size=10),
)
def test_any_values_any_chunking(values, cuts):
    ce = np.array(values, dtype=np.float32)
    rank = np.arange(ce.size) % 3
    sizes = []
    left = ce.size
    for c in cuts:
        if left <= 0:
            break
        sizes.append(min(c, left))
        left -= sizes[-1]
    if left > 0:
        sizes.append(left)
    check(ce, rank, sizes)


def test_empty_and_rankless():
    out = streaming_summarize(lambda: iter([]), [50])
    assert out["n"] == 0 and np.isnan(out["p50"]) and np.isnan(out["mean"])
    out = streaming_summarize(lambda: iter([(np.array([1.0, 2.0], np.float32), None)]), [50])
    assert out["p50"] == 1.5 and np.isnan(out["top1"])


def test_memory_stays_small_for_a_smooth_distribution():
    """Only the wanted buckets' values are kept: a tiny fraction of the targets."""
    rng = np.random.default_rng(1)
    ce = rng.gamma(2.0, 1.5, 4_000_000).astype(np.float32)
    s = StreamingSummary([50, 90, 95, 99])
    for c in np.array_split(ce, 8):
        s.update(c)
    s.plan()
    for c in np.array_split(ce, 8):
        s.collect(c)
    s.compute()
    assert s.kept_values < ce.size / 500


def test_negative_or_nan_values_are_refused():
    from pctce_cli.errors import UsageError

    with pytest.raises(UsageError, match="finite and >= 0"):
        streaming_summarize(lambda: iter([(np.array([1.0, -1.0], np.float32), None)]), [50])
