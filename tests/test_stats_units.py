"""Word and byte units (SPEC §8) against brute force: expanded arrays, explicit loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pctce_cli.errors import UsageError
from pctce_cli.stats import summarize, units
from pctce_cli.stats.units import byte_distribution, byte_mean, byte_values, weighted_percentiles, word_ce, word_sums

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


# ---------------------------------------------------------------- summarize(unit=...), invariants


def _random_units(rng, n_docs=30):
    doc, word, nbytes = [], [], []
    for d in range(n_docs):
        n = int(rng.integers(1, 40))
        w = np.sort(rng.integers(0, max(1, n // 2), n))
        w = np.searchsorted(np.unique(w), w)  # word indices 0..k-1 without gaps
        nb = rng.integers(1, 6, n)
        empty = rng.random(n) < 0.05
        w[empty], nb[empty] = -1, 0
        doc.append(np.full(n, d))
        word.append(w)
        nbytes.append(nb)
    doc, word, nbytes = (np.concatenate(x) for x in (doc, word, nbytes))
    ce = rng.gamma(2, 1.2, doc.size).astype(np.float32)
    return ce, doc, word, nbytes


def test_summarize_word_and_byte_against_brute_force():
    rng = np.random.default_rng(3)
    ce, doc, word, nbytes = _random_units(rng)
    levels = [5, 25, 50, 75, 95, 99]
    sums = {}
    for c, d, w in zip(ce.astype(np.float64), doc, word):
        if w >= 0:
            sums[(d, w)] = sums.get((d, w), 0.0) + c
    words = np.array([sums[k] for k in sorted(sums)])
    s = summarize(ce, None, levels, unit="word", doc=doc, word=word)
    assert s["n"] == len(words) and s["mean"] == pytest.approx(words.mean(), rel=1e-12)
    assert [s[f"p{q}"] for q in levels] == pytest.approx(np.percentile(words, levels).tolist(), rel=1e-12)
    expanded = np.repeat(ce / np.maximum(nbytes, 1).astype(np.float32), nbytes).astype(np.float64)
    b = summarize(ce, None, levels, unit="byte", nbytes=nbytes)
    assert b["n"] == expanded.size == nbytes.sum()
    assert [b[f"p{q}"] for q in levels] == np.percentile(expanded, levels).tolist()
    assert b["mean"] == pytest.approx(ce[nbytes > 0].astype(np.float64).sum() / nbytes.sum(), rel=1e-12)
    assert b["iqr"] == b["p75"] - b["p25"] and math.isnan(b["top1"]) and math.isnan(s["top1"])


def test_word_and_byte_units_do_not_depend_on_how_documents_are_sharded():
    rng = np.random.default_rng(4)
    ce, doc, word, nbytes = _random_units(rng)
    cut = int(np.searchsorted(doc, 13))  # shards hold whole documents
    whole = word_ce(ce, doc, word)
    parts = [word_ce(ce[s], doc[s], word[s]) for s in (slice(0, cut), slice(cut, None))]
    assert np.concatenate([p[0] for p in parts]).tolist() == whole[0].tolist()
    assert sum(p[4] for p in parts) == whole[4]
    v1, w1 = byte_values(ce, nbytes)
    vs = [byte_values(ce[s], nbytes[s]) for s in (slice(0, cut), slice(cut, None))]
    assert np.concatenate([v for v, _ in vs]).tolist() == v1.tolist()
    # order of tokens does not matter to byte percentiles
    perm = rng.permutation(ce.size)
    assert weighted_percentiles(v1, w1, LEVELS).tolist() == weighted_percentiles(*byte_values(ce[perm], nbytes[perm]), LEVELS).tolist()


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.floats(0, 30, width=32), min_size=1, max_size=40),
    weights=st.lists(st.integers(1, 9), min_size=40, max_size=40),
    levels=st.lists(st.floats(0, 100), min_size=2, max_size=8),
)
def test_weighted_percentiles_are_monotone_and_within_range(values, weights, levels):
    v = np.array(values, np.float32)
    w = np.array(weights[: len(values)], np.int64)
    qs = sorted(levels)
    got = weighted_percentiles(v, w, qs)
    assert (np.diff(got) >= 0).all()
    assert got[0] >= v.min() and got[-1] <= v.max()


def test_word_ce_refuses_unsorted_rows():
    with pytest.raises(UsageError, match="sorted"):
        word_ce([1.0, 2.0, 3.0], [0, 0, 0], [1, 0, 1])
    for doc, word in (([0, 0, 0, 0], [0, 1, -1, 0]), ([1, 1, 0, 0], [0, 0, -1, 0]), ([0, 0, 0, 0], [1, -1, -1, 0])):
        with pytest.raises(UsageError, match="sorted"):  # across tokens in no word, too
            word_ce([1.0, 2.0, 3.0, 4.0], doc, word)
        _same_as_masked(np.ones(4), doc, word)
    _same_as_masked(np.ones(4), [0, 9, 0, 1], [0, -1, 0, 0])  # a token in no word may carry any document


def test_units_need_their_arrays():
    with pytest.raises(UsageError, match="needs doc and word"):
        summarize([1.0], unit="word")
    with pytest.raises(UsageError, match="needs nbytes"):
        summarize([1.0], unit="byte")
    with pytest.raises(UsageError, match="unit must be one of"):
        summarize([1.0], unit="char")


# ---------------------------------------------------------------- word_ce's lean path against the masked one


def _word_ce_masked(ce, doc, word):
    """word_ce as first written: drop the tokens in no word (int64/float64 copies), then sum runs of (doc, word)."""
    c, d, w = (np.asarray(ce).astype(np.float64), np.asarray(doc).astype(np.int64), np.asarray(word).astype(np.int64))
    empty = w < 0
    empty_ce, n_empty = float(c[empty].sum()), int(empty.sum())
    c, d, w = c[~empty], d[~empty], w[~empty]
    if c.size > 1 and ((d[1:] < d[:-1]) | ((d[1:] == d[:-1]) & (w[1:] < w[:-1]))).any():
        raise UsageError("sorted")
    if c.size == 0:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64), empty_ce, n_empty
    starts = np.flatnonzero(np.r_[True, (d[1:] != d[:-1]) | (w[1:] != w[:-1])])
    return np.add.reduceat(c, starts), d[starts], w[starts], empty_ce, n_empty


def _same_as_masked(ce, doc, word):
    try:
        want = _word_ce_masked(ce, doc, word)
    except UsageError:
        with pytest.raises(UsageError, match="sorted"):
            word_ce(ce, doc, word)
        return
    default = units.WORD_BLOCK
    try:
        for units.WORD_BLOCK in (default, 1, 3):  # words summed a block at a time: any block size, the same sums
            got = word_ce(ce, doc, word)
            assert got[0].dtype == np.float64 and got[1].dtype == got[2].dtype == np.int64
            assert got[0].view(np.uint64).tolist() == want[0].view(np.uint64).tolist()  # bit for bit
            assert [got[1].tolist(), got[2].tolist(), got[3], got[4]] == [want[1].tolist(), want[2].tolist(), want[3], want[4]]
            assert word_sums(ce, doc, word).view(np.uint64).tolist() == want[0].view(np.uint64).tolist()
    finally:
        units.WORD_BLOCK = default


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 2), st.booleans(), st.floats(0, 30, width=32)), max_size=40),
    swap=st.one_of(st.none(), st.tuples(st.integers(0, 39), st.integers(1, 3))),
    empty_doc=st.integers(-1, 9),
)
@pytest.mark.slow  # over half a second: kept out of the fast lane
def test_word_ce_equals_the_masked_computation_bit_for_bit(steps, swap, empty_doc):
    doc = np.cumsum([s[0] for s in steps], dtype=np.int64)
    word = np.zeros(len(steps), np.int32)
    for i in range(1, len(steps)):
        word[i] = 0 if doc[i] != doc[i - 1] else word[i - 1] + steps[i][1] % 2
    word[np.array([s[2] for s in steps], dtype=bool)] = -1
    if swap is not None and swap[0] + swap[1] < len(steps):  # out of order (or not: equal, or in no word)
        i, j = swap[0], swap[0] + swap[1]
        word[[i, j]] = word[[j, i]]
    if empty_doc >= 0 and steps:
        doc = doc.copy()
        doc[word < 0] = empty_doc  # a token in no word may carry any document: it is left out
    _same_as_masked(np.array([s[3] for s in steps], np.float32), doc, word)


@pytest.mark.slow
def test_word_ce_lean_path_on_long_words_and_runs_of_empty_tokens():
    rng = np.random.default_rng(5)
    n = 200_000
    doc = np.repeat(np.arange(40), n // 40)
    word = np.concatenate([np.sort(rng.integers(0, k, n // 40)) for k in rng.integers(1, 3000, 40)]).astype(np.int32)
    word[:50] = 0  # one long word at the start
    word[rng.random(n) < 0.02] = -1
    word[1000:1300] = -1  # a long run of tokens in no word
    word[:3] = -1  # leading ones
    ce = rng.gamma(2, 1, n).astype(np.float32)
    _same_as_masked(ce, doc, word)
    _same_as_masked(ce.astype(np.float64), doc, word)
    _same_as_masked(ce, doc, np.maximum(word, 0))  # none in no word
    _same_as_masked(ce[:1], doc[:1], word[:1])
    _same_as_masked(ce[:0], doc[:0], word[:0])


@pytest.mark.parametrize("with_empty", [True, False])
def test_byte_distribution_is_byte_values_and_byte_mean(with_empty):
    rng = np.random.default_rng(6)
    ce = rng.gamma(2, 1.5, 5000).astype(np.float32)
    nb = rng.integers(0 if with_empty else 1, 9, 5000).astype(np.int32)
    v, w, mean = byte_distribution(ce, nb)
    keep = nb > 0
    assert v.dtype == np.float32 and w.dtype == np.int32  # the division in ce's dtype; weights as stored
    assert v.tolist() == (ce[keep] / nb[keep].astype(np.float32)).tolist() and w.tolist() == nb[keep].tolist()
    assert mean == float(ce[keep].astype(np.float64).sum() / nb.sum()) == byte_mean(ce, nb)
    assert [x.tolist() for x in byte_values(ce, nb)] == [v.tolist(), w.tolist()]
    assert weighted_percentiles(v, w, LEVELS).tolist() == np.percentile(np.repeat(v, w).astype(np.float64), LEVELS).tolist()
