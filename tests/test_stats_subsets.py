"""Subset statistics (SPEC §7) against numpy on the filtered arrays; the union of subsets covers every target once."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pctce_cli.errors import UsageError
from pctce_cli.stats.subsets import macro_mean, subset_index
from pctce_cli.stats.summaries import summarize


@settings(max_examples=80, deadline=None)
@given(lengths=st.lists(st.integers(0, 6), min_size=1, max_size=25), labels=st.lists(st.sampled_from("abc"), min_size=25, max_size=25))
def test_subsets_partition_the_targets(lengths, labels):
    doc = np.repeat(np.arange(len(lengths)), lengths)
    idx = subset_index(doc, np.arange(len(lengths)), labels[: len(lengths)])
    rows = np.sort(np.concatenate(list(idx.values()) or [np.zeros(0, np.int64)]))
    assert rows.tolist() == list(range(doc.size))  # each target exactly once
    for label, r in idx.items():
        assert np.all(np.diff(r) > 0)  # stored order kept
        assert all(labels[d] == label for d in doc[r])


def test_per_subset_summaries_equal_numpy_on_the_filtered_arrays():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, 300)
    doc = np.repeat(np.arange(300), lengths)
    ce = rng.gamma(2, 1.2, doc.size).astype(np.float32)
    labels = rng.choice(["prose", "code", "math"], 300)
    idx = subset_index(doc, np.arange(300), labels)
    means = []
    for label, rows in idx.items():
        want = ce[np.isin(doc, np.flatnonzero(labels == label))].astype(np.float64)
        s = summarize(ce[rows], percentiles=[50, 95])
        assert s["n"] == want.size and s["mean"] == pytest.approx(want.mean(), rel=1e-12)
        assert [s["p50"], s["p95"]] == np.percentile(want, [50, 95]).tolist()
        means.append(s["mean"])
    assert macro_mean(means) == pytest.approx(sum(means) / 3, rel=1e-15)
    # pooled numbers do not change when subsets exist
    assert summarize(ce, percentiles=[50])["p50"] == np.percentile(ce.astype(np.float64), 50)


def test_missing_labels_and_documents_are_clear_errors():
    with pytest.raises(UsageError, match="every document needs a subset label"):
        subset_index([0, 1], [0, 1], ["a", None])
    with pytest.raises(UsageError, match="document 5 has targets but no row in the per-document table"):
        subset_index([0, 5], [0, 1], ["a", "b"])


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.lists(st.sampled_from([0.0, 1.0, 2.0, float("nan")]), min_size=4, max_size=4), min_size=1, max_size=4))
def test_opposed_pairs_against_a_brute_force_loop(values):
    from pctce_cli.stats.subsets import opposed_pairs

    cks, subs = ["a", "b", "c", "d"], [f"s{k}" for k in range(len(values))]
    want = []
    for i in range(4):
        for j in range(i + 1, 4):
            lo_a = [subs[k] for k, row in enumerate(values) if row[i] < row[j]]
            lo_b = [subs[k] for k, row in enumerate(values) if row[i] > row[j]]
            if lo_a and lo_b:
                gaps_a = [row[j] - row[i] for row in values if row[i] < row[j]]
                gaps_b = [row[i] - row[j] for row in values if row[i] > row[j]]
                want.append((cks[i], cks[j], lo_a, lo_b, min(max(gaps_a), max(gaps_b))))
    assert opposed_pairs(values, cks, subs) == want


@settings(max_examples=60, deadline=None)
@given(doc=st.lists(st.integers(0, 5), max_size=40), labels=st.lists(st.sampled_from("xyz"), min_size=6, max_size=6))
def test_subset_runs_cover_every_row_once_in_any_order(doc, labels):
    from pctce_cli.stats.subsets import subset_runs, take

    runs = subset_runs(doc, range(6), labels)
    rows = np.arange(len(doc))
    got = np.sort(np.concatenate([take(rows, r) for r in runs.values()] or [rows[:0]]))
    assert got.tolist() == rows.tolist()
    for label, r in runs.items():
        assert all(labels[doc[i]] == label for i in take(rows, r))
