"""``--by``/``--subset``/``--ci`` above PCTCE_STREAM_ABOVE: streamed rows equal the in-memory ones.

Against independent references: per-subset streaming summaries against
``summarize`` on each subset's targets (hypothesis: any codes, any chunking);
the streamed bootstrap's replicates against ``bootstrap_ci``'s (same seed:
bit for bit for percentiles, round-off for means), clustered and tied data;
whole rows (``streamed_subset_rows``) against the in-memory ``checkpoint_rows``
on a synthetic store of three shards.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pctce_cli.errors import UsageError
from pctce_cli.stats.bootstrap import bootstrap_ci
from pctce_cli.stats.streaming_bootstrap import StreamingBootstrap, WindowMissed
from pctce_cli.stats.streaming_subsets import SubsetSummaries, codes_by_document, lookup_codes
from pctce_cli.stats.summaries import summarize

from .stream_fixtures import write_store

LEVELS = [0, 1, 25, 50, 90, 99, 100]
NAMES = ["mean", "ppl", "p50", "p90", "p99", "iqr", "z95", "top1"]


def close(a, b) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)


def chunks(n: int, size: int) -> list[slice]:
    return [slice(i, i + size) for i in range(0, n, size)] or [slice(0, 0)]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(0, 30, width=32), min_size=1, max_size=300),
    n_subsets=st.integers(1, 5),
    size=st.integers(1, 64),
    seed=st.integers(0, 2**16),
)
def test_subset_summaries_equal_summarize_on_each_subset(values, n_subsets, size, seed):
    ce = np.asarray(values, np.float32)
    rng = np.random.default_rng(seed)
    code = rng.integers(-1, n_subsets, ce.size)
    rank = rng.integers(0, 3, ce.size)
    s = SubsetSummaries(n_subsets, LEVELS)
    for c in chunks(ce.size, size):
        s.update(code[c], ce[c], rank[c])
    s.plan()
    for c in chunks(ce.size, size):
        s.collect(code[c], ce[c])
    for p, got in enumerate(s.compute()):
        ref = summarize(ce[code == p], rank[code == p], percentiles=LEVELS)
        assert got.keys() == ref.keys()
        for k in ref:
            assert close(got[k], ref[k]), (p, k, got[k], ref[k])


def test_codes_by_document_and_lookup():
    table = codes_by_document([0, 3, 4], [1, 0, -1])
    assert table.tolist() == [1, -1, -1, 0, -1]
    assert lookup_codes(table, np.array([3, 0, 9, 4])).tolist() == [0, 1, -1, -1]


def pass_one(ce, doc, labels, names, n_boot, seed, size, rank=None):
    """Pass 1 of each label's histogram and of the streamed bootstrap, in chunks of ``size`` targets: ``(summaries, bootstrap, n_sub)``."""
    n_sub = int(labels.max()) + 1
    s = SubsetSummaries(n_sub, [50])
    b = StreamingBootstrap(labels, names, n_boot=n_boot, ci=0.9, seed=seed)
    code = labels[doc]
    for c in chunks(ce.size, size):
        s.update(code[c], ce[c], None if rank is None else rank[c])
        b.update(doc[c], ce[c], None if rank is None else rank[c])
    return s, b, n_sub


def streamed_replicates(ce, doc, labels, names, n_boot, seed, size, rank=None):
    """The streamed bootstrap of each label's documents, fed in chunks of ``size`` targets."""
    s, b, n_sub = pass_one(ce, doc, labels, names, n_boot, seed, size, rank)
    for widen in (1.0, 4.0, 16.0):
        b.plan([p.counts for p in s.parts], widen)
        for c in chunks(ce.size, size):
            b.collect(doc[c], ce[c])
        try:
            return b, b.compute(n_sub)
        except WindowMissed:
            continue
    raise AssertionError("no window held every replicate")


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("method", ["fast", "exact"])
def test_streamed_bootstrap_gives_the_in_memory_replicates(tied, method):
    rng = np.random.default_rng(5)
    n_docs = 120
    counts = 1 + rng.poisson(rng.choice([2, 40], n_docs))
    doc = np.repeat(np.arange(n_docs), counts)
    ce = rng.lognormal(0, 1, doc.size) * rng.lognormal(0, 0.6, n_docs)[doc]
    ce = (np.round(ce, 1) if tied else ce).astype(np.float32)
    rank = rng.integers(0, 4, doc.size)
    labels = rng.integers(0, 3, n_docs)
    b, reps = streamed_replicates(ce, doc, labels, NAMES, 60, 11, 97, rank)
    for p in range(3):
        m = labels[doc] == p
        ref = bootstrap_ci(ce[m], doc[m], NAMES, n_boot=60, ci=0.9, seed=11, method=method, rank=rank[m])
        for name in NAMES:
            if name.startswith("p") and name != "ppl" or name == "iqr":
                assert np.array_equal(reps[p][name], ref.replicates[name]), (p, name)
            else:
                np.testing.assert_allclose(reps[p][name], ref.replicates[name], rtol=1e-12)
        got = b.intervals(reps[p])
        assert got["p90"] == ref["p90"]


def test_a_narrow_window_is_detected_not_wrong():
    rng = np.random.default_rng(2)
    doc = np.repeat(np.arange(30), 200)  # few long documents: replicates move the percentiles far
    ce = (rng.lognormal(0, 1, doc.size) * rng.lognormal(0, 1.5, 30)[doc]).astype(np.float32)
    labels = np.zeros(30, np.int64)
    s = SubsetSummaries(1, [50])
    s.update(labels[doc], ce)
    b = StreamingBootstrap(labels, ["p50"], n_boot=50, seed=0)
    b.update(doc, ce)
    b.plan([s.parts[0].counts], widen=1e-4)
    b.collect(doc, ce)
    with pytest.raises(WindowMissed):
        b.compute(1)
    _, reps = streamed_replicates(ce, doc, labels, ["p50"], 50, 0, 1000)
    ref = bootstrap_ci(ce, doc, ["p50"], n_boot=50, seed=0, method="fast")
    assert np.array_equal(reps[0]["p50"], ref.replicates["p50"])


def test_windows_too_large_for_memory_are_refused(monkeypatch):
    import pctce_cli.stats.streaming_bootstrap as sb

    monkeypatch.setattr(sb, "WINDOW_CAP", 10)
    doc = np.repeat(np.arange(5), 20)
    ce = np.linspace(0, 5, 100, dtype=np.float32)
    s = SubsetSummaries(1, [50])
    s.update(np.zeros(100, int), ce)
    b = StreamingBootstrap(np.zeros(5, np.int64), ["p50"])
    b.update(doc, ce)
    with pytest.raises(UsageError, match=r"^the bounded-memory bootstrap would keep \d+ targets \(more than 10\)"):
        b.plan([s.parts[0].counts])


# ----------------------------------------------------------------------------- whole rows on a store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream") / "scores"
    write_store(root, 30_000, 400, n_shards=3)
    from pctce_cli.catalog import resolve_checkpoints

    return resolve_checkpoints([root])


CASES = [("domain", (), None), (None, ("d1",), None), (None, ("d0", "d2"), None), ("domain", (), 0.9), (None, (), 0.9), (None, ("d3",), 0.9)]


@pytest.mark.parametrize("by,keep,ci", CASES)
def test_streamed_rows_equal_the_in_memory_rows(store, by, keep, ci):
    from pctce_cli.analysis.subsets import resolve_subsets
    from pctce_cli.analysis.summary import checkpoint_rows, columns_for
    from pctce_cli.analysis.summary_stream import streamed_subset_rows

    subsets = resolve_subsets(store, by, keep)
    kw = {"n_boot": 80, "seed": 3}
    mem, mem_notes = checkpoint_rows(store[0], [50, 90, 99], subsets=subsets, ci=ci, **kw)
    got, notes = streamed_subset_rows(store[0], [50, 90, 99], subsets, columns_for(None, ci), ci=ci, **kw)
    assert notes == mem_notes
    assert [list(r) for r in got] == [list(r) for r in mem]
    for a, b in zip(mem, got):
        for k, v in a.items():
            if k == "_ci_method":
                assert b[k] == "streamed"
            elif isinstance(v, float):
                assert close(b[k], v) if not (k.startswith("p") and k != "ppl") else b[k] == v, (k, v, b[k])
            else:
                assert b[k] == v, k


def test_only_some_columns(store):
    from pctce_cli.analysis.subsets import resolve_subsets
    from pctce_cli.analysis.summary import checkpoint_rows, columns_for
    from pctce_cli.analysis.summary_stream import streamed_subset_rows

    only = ["p50", "mean"]
    subsets = resolve_subsets(store, "domain")
    mem, _ = checkpoint_rows(store[0], [50], subsets=subsets, only=only)
    got, _ = streamed_subset_rows(store[0], [50], subsets, columns_for(only))
    assert [list(r) for r in got] == [list(r) for r in mem]
    assert all(math.isnan(r["top1"]) for r in got) and all(math.isnan(r["top1"]) for r in mem)
    assert [r["p50"] for r in got] == [r["p50"] for r in mem]


def test_a_subset_value_without_documents_is_the_in_memory_error(store):
    from pctce_cli.analysis.subsets import resolve_subsets
    from pctce_cli.analysis.summary_stream import streamed_subset_rows

    with pytest.raises(UsageError, match=r"^subset nope: no document of ck-a has domain = nope \(values: d0, d1, d2, d3\)$"):
        streamed_subset_rows(store[0], [50], resolve_subsets(store, None, ["domain=nope"]))
