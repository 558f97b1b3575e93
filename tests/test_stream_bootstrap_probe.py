"""The streamed bootstrap's probe pass (stats/streaming_bootstrap.py): narrower windows, the same replicates.

Against the in-memory :func:`~pctce_cli.stats.bootstrap.bootstrap_ci` (same seed):
percentiles bit for bit, means to round-off; hypothesis over document lengths,
ties, subsets and chunking. A probe that narrows too far is detected (never a
wrong number) and the streamed rows fall back to the bound's windows.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pctce_cli.stats.streaming_bootstrap as sb
from pctce_cli.errors import UsageError
from pctce_cli.stats.bootstrap import bootstrap_ci
from pctce_cli.stats.streaming_bootstrap import StreamingBootstrap, WindowMissed
from pctce_cli.stats.streaming_parts import PartSummaries
from pctce_cli.stats.streaming_subsets import SubsetSummaries

from .test_stream_subsets import chunks, pass_one

NAMES = ["mean", "p50", "p90", "p99", "iqr", "top1"]


def probed(ce, doc, labels, names, n_boot, seed, size, rank=None, widen=1.0):
    """Pass 1, the probe, the refined windows' collection; ``(bootstrap, kept by the bound, kept after the probe, replicates)``."""
    s, b, n_sub = pass_one(ce, doc, labels, names, n_boot, seed, size, rank)
    counts = [p.counts for p in s.parts]
    bound = b.plan(counts, check=False)
    assert b.start_probe(counts)
    for c in chunks(ce.size, size):
        b.probe(doc[c], ce[c])
    kept = b.refine(widen)
    for c in chunks(ce.size, size):
        b.collect(doc[c], ce[c])
    return b, bound, kept, b.compute(n_sub)


def clustered(seed: int, n_docs: int, mean_len: int, tied: bool = False, n_labels: int = 1):
    rng = np.random.default_rng(seed)
    counts = 1 + rng.poisson(mean_len * rng.lognormal(0, 0.8, n_docs))
    doc = np.repeat(np.arange(n_docs), counts)
    ce = rng.lognormal(0, 1, doc.size) * rng.lognormal(0, 0.3, n_docs)[doc]
    ce = (np.round(ce, 1) if tied else ce).astype(np.float32)
    return doc, ce, rng.integers(0, 4, doc.size), rng.integers(0, n_labels, n_docs)


def assert_equal_to_memory(reps, ce, doc, labels, rank, names, n_boot, seed):
    for p in range(int(labels.max()) + 1):
        m = labels[doc] == p
        ref = bootstrap_ci(ce[m], doc[m], names, n_boot=n_boot, ci=0.9, seed=seed, method="fast", rank=rank[m])
        for name in names:
            if name.startswith("p") or name == "iqr":
                assert np.array_equal(reps[p][name], ref.replicates[name]), (p, name)
            else:
                np.testing.assert_allclose(reps[p][name], ref.replicates[name], rtol=1e-12)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_docs=st.integers(150, 400),
    mean_len=st.integers(5, 60),
    tied=st.booleans(),
    n_labels=st.integers(1, 3),
    size=st.integers(50, 5000),
)
def test_probed_windows_give_the_in_memory_replicates(seed, n_docs, mean_len, tied, n_labels, size):
    doc, ce, rank, labels = clustered(seed, n_docs, mean_len, tied, n_labels)
    labels[: n_labels] = np.arange(n_labels)  # every label has a document
    try:
        _, bound, kept, reps = probed(ce, doc, labels, NAMES, 40, seed, size, rank)
    except WindowMissed:
        return  # detected (the caller then collects the bound's windows); never a wrong number
    assert kept <= bound
    assert_equal_to_memory(reps, ce, doc, labels, rank, NAMES, 40, seed)


@pytest.mark.slow
def test_the_probe_keeps_a_fraction_of_the_bounds_targets():
    doc, ce, rank, labels = clustered(1, 3000, 200)
    _, bound, kept, reps = probed(ce, doc, labels, NAMES, 30, 4, 100_000, rank)
    assert kept * 3 < bound  # documents mix low and high CE: the measured spread is far below the bound
    assert_equal_to_memory(reps, ce, doc, labels, rank, NAMES, 30, 4)


def test_a_probe_too_narrow_is_detected_not_wrong():
    doc, ce, _, labels = clustered(2, 400, 50)
    with pytest.raises(WindowMissed):
        probed(ce, doc, labels, ["p50"], 50, 0, 10_000, widen=1e-3)


def test_no_probe_when_its_histograms_would_be_too_large(monkeypatch):
    monkeypatch.setattr(sb, "PROBE_CELLS", 0)
    doc, ce, _, labels = clustered(3, 50, 20)
    s = SubsetSummaries(1, [50])
    s.update(labels[doc], ce)
    b = StreamingBootstrap(labels, ["p50"])
    b.update(doc, ce)
    b.plan([s.parts[0].counts], check=False)
    assert not b.start_probe([s.parts[0].counts])


def streamed_parts(values, doc, labels, names, n_boot, seed, size, weights=None, signed=False):
    """Each label's streamed replicates over :class:`PartSummaries`' histograms (``signed``, ``weights``): probe, then the bound's windows widened."""
    n_sub = int(labels.max()) + 1
    b = StreamingBootstrap(labels, names, n_boot=n_boot, ci=0.9, seed=seed, signed=signed)
    s = PartSummaries(n_sub, [50], bits=b.bits, signed=signed)
    parts = [(c, None if weights is None else weights[c]) for c in chunks(values.size, size)]
    for c, w in parts:
        s.update(labels[doc[c]], values[c], w)
        b.update(doc[c], values[c], weights=w)
    b.plan(s.counts, check=False)
    if b.start_probe(s.counts):
        for c, w in parts:
            b.probe(doc[c], values[c], weights=w)
        b.refine()
        try:
            for c, w in parts:
                b.collect(doc[c], values[c], weights=w)
            return b.compute(n_sub)
        except WindowMissed:
            pass
    for widen in (1.0, 4.0, 16.0):
        b.plan(s.counts, widen)
        for c, w in parts:
            b.collect(doc[c], values[c], weights=w)
        try:
            return b.compute(n_sub)
        except WindowMissed:
            continue
    raise AssertionError("every window missed")


def assert_parts_equal_memory(reps, values, doc, labels, names, n_boot, seed, weights=None):
    for p in range(int(labels.max()) + 1):
        m = labels[doc] == p
        ref = bootstrap_ci(values[m], doc[m], names, n_boot=n_boot, ci=0.9, seed=seed, method="fast", weights=None if weights is None else weights[m])
        for name in names:
            if name.startswith("p") or name == "iqr":
                assert np.array_equal(reps[p][name], ref.replicates[name]), (p, name)
            else:
                np.testing.assert_allclose(reps[p][name], ref.replicates[name], rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, pytest.param(2, marks=pytest.mark.slow)])
def test_signed_values_give_the_in_memory_replicates(seed):
    """Δp: negative as often as positive, ties at zero; the windows in signed buckets."""
    doc, ce, _, labels = clustered(seed, 300, 30, n_labels=2)
    labels[:2] = [0, 1]
    rng = np.random.default_rng(seed)
    dp = (ce - np.median(ce)).astype(np.float32) * np.where(rng.random(ce.size) < 0.5, 1, -0.5).astype(np.float32)
    dp[rng.random(dp.size) < 0.05] = 0.0
    names = ["mean", "p1", "p10", "p50", "p90", "p99", "iqr"]
    reps = streamed_parts(dp, doc, labels, names, 40, seed, 3000, signed=True)
    assert_parts_equal_memory(reps, dp, doc, labels, names, 40, seed)
    assert min(reps[0]["p10"]) < 0 < max(reps[0]["p90"])


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_weighted_values_give_the_in_memory_replicates(seed, signed):
    """Bytes: each token's ce / nbytes with weight nbytes (1 to 12, a few very heavy); the ranks of the expanded multiset."""
    doc, ce, _, labels = clustered(seed, 300, 30, tied=True, n_labels=2)
    labels[:2] = [0, 1]
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, 13, ce.size).astype(np.int32)
    weights[rng.random(ce.size) < 0.01] = 400
    values = np.divide(ce - (np.float32(1.5) if signed else 0), weights, dtype=np.float32)
    names = ["mean", "ppl", "p1", "p10", "p50", "p90", "p99", "iqr"]
    reps = streamed_parts(values, doc, labels, names, 40, seed, 3000, weights, signed)
    assert_parts_equal_memory(reps, values, doc, labels, names, 40, seed, weights)


def test_weights_are_given_with_every_chunk_or_none():
    b = StreamingBootstrap(np.zeros(2, np.int64), ["p50"])
    b.update(np.array([0, 1]), np.array([1.0, 2.0], np.float32), weights=np.array([1, 2]))
    with pytest.raises(UsageError, match="weights must be given with every chunk or with none"):
        b.update(np.array([1]), np.array([1.0], np.float32))
    with pytest.raises(UsageError, match="weights must be non-negative integers, one per value"):
        b.update(np.array([1]), np.array([1.0], np.float32), weights=np.array([-1]))


def test_the_window_cap_counts_weighted_values_not_their_weight(monkeypatch):
    """Windows are sized in weight (bytes); memory holds values: the cap is checked at the values' mean weight (4 here)."""
    doc, ce, _, labels = clustered(4, 200, 30)
    labels[:] = 0
    b = StreamingBootstrap(labels, ["p50"])
    s = PartSummaries(1, [50], bits=b.bits)
    weights = np.full(ce.size, 4, np.int32)
    s.update(labels[doc], ce, weights)
    b.update(doc, ce, weights=weights)
    kept = b.plan(s.counts, check=False)
    monkeypatch.setattr(sb, "WINDOW_CAP", kept // 2)
    b.plan(s.counts)  # about kept / 4 values: within the cap
    monkeypatch.setattr(sb, "WINDOW_CAP", kept // 8)
    with pytest.raises(UsageError, match="the bounded-memory bootstrap would keep"):
        b.plan(s.counts)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from pctce_cli.catalog import resolve_checkpoints

    from .stream_fixtures import write_store

    root = tmp_path_factory.mktemp("probe") / "scores"
    write_store(root, 30_000, 400, n_shards=3)
    return resolve_checkpoints([root])


@pytest.mark.parametrize("how", ["probe", "missed", "no-probe"])
@pytest.mark.parametrize("by", [None, "domain"])
def test_streamed_rows_equal_the_in_memory_rows_whatever_the_windows(store, monkeypatch, how, by):
    from pctce_cli.analysis.subsets import resolve_subsets
    from pctce_cli.analysis.summary import checkpoint_rows, columns_for
    from pctce_cli.analysis.summary_stream import streamed_subset_rows

    calls = []
    refine = StreamingBootstrap.refine
    if how == "missed":  # the probe's windows miss: the bound's windows are collected instead
        monkeypatch.setattr(StreamingBootstrap, "refine", lambda self, widen=1.0: calls.append(1) or refine(self, 1e-4))
    elif how == "no-probe":
        monkeypatch.setattr(sb, "PROBE_CELLS", 0)
    subsets = resolve_subsets(store, by)
    kw = {"n_boot": 60, "seed": 5, "ci": 0.9}
    mem, _ = checkpoint_rows(store[0], [50, 95], subsets=subsets, **kw)
    got, _ = streamed_subset_rows(store[0], [50, 95], subsets, columns_for(None, 0.9), **kw)
    assert calls == ([1] if how == "missed" else [])
    for a, b in zip(mem, got, strict=True):
        for k in ("p50_lo", "p50_hi", "p95_lo", "p95_hi"):
            assert a[k] == b[k], (k, a[k], b[k])
        np.testing.assert_allclose([b["mean_lo"], b["mean_hi"]], [a["mean_lo"], a["mean_hi"]], rtol=1e-12)


@pytest.mark.parametrize("by", [[], ["--by", "domain"]])
def test_the_cli_streamed_equals_the_cli_in_memory(store, by):
    from .cli import as_json, run

    args = ["summary", store[0].root, *by, "--ci", "0.9", "--bootstrap", "60", "--percentiles", "50,95", "--format", "json"]
    mem = as_json(run(*args))
    got = as_json(run(*args, env={"PCTCE_STREAM_ABOVE": "0"}))
    method = re.compile(r"method (streamed|fast|exact)")  # the in-memory methods (fast, exact) give the same replicates
    assert [method.sub("method …", n) for n in got.pop("notes")] == [method.sub("method …", n) for n in mem.pop("notes")]
    assert "method streamed" in " ".join(as_json(run(*args, env={"PCTCE_STREAM_ABOVE": "0"}))["notes"])
    assert got.keys() == mem.keys()
    for title in mem:
        for a, b in zip(mem[title], got[title], strict=True):
            assert a.keys() == b.keys()
            for k, v in a.items():
                if isinstance(v, float) and (k.startswith("p") and k != "ppl"):
                    assert b[k] == v, (title, k)
                elif isinstance(v, float):
                    assert b[k] == pytest.approx(v, rel=1e-12), (title, k)
                else:
                    assert b[k] == v, (title, k)


def window_spy(monkeypatch) -> dict[str, list[int]]:
    """Targets the streamed rows' windows keep: the bound's (each :meth:`~StreamingBootstrap.plan`) and the probe's (:meth:`~StreamingBootstrap.refine`)."""
    kept: dict[str, list[int]] = {"bound": [], "probe": []}
    plan, refine = StreamingBootstrap.plan, StreamingBootstrap.refine

    def spy_plan(self, counts, widen=1.0, check=True):
        kept["bound"].append(plan(self, counts, widen, check))
        return kept["bound"][-1]

    def spy_refine(self, widen=1.0):
        kept["probe"].append(refine(self, widen))
        return kept["probe"][-1]

    monkeypatch.setattr(StreamingBootstrap, "plan", spy_plan)
    monkeypatch.setattr(StreamingBootstrap, "refine", spy_refine)
    return kept


def assert_same_intervals(mem: list[dict], got: list[dict], names=("p50", "p95")):
    for a, b in zip(mem, got, strict=True):
        for name in names:
            assert (b[f"{name}_lo"], b[f"{name}_hi"]) == (a[f"{name}_lo"], a[f"{name}_hi"]), name
        np.testing.assert_allclose([b["mean_lo"], b["mean_hi"]], [a["mean_lo"], a["mean_hi"]], rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("unit", ["word", "byte"])
@pytest.mark.parametrize("missed", [False, True])
def test_words_and_bytes_are_streamed_through_the_probe(tmp_path, monkeypatch, unit, missed):
    """--unit word|byte --ci streamed: the probe's windows keep a fraction of the bound's, and the intervals are the
    in-memory ones; a probe whose windows miss falls back to the bound's (the same intervals)."""
    from pctce_cli.analysis.units import unit_rows
    from pctce_cli.analysis.units_stream import streamed_unit_rows
    from pctce_cli.catalog import resolve_checkpoints

    from .stream_fixtures import write_store

    write_store(tmp_path / "scores", 30_000, 400, n_shards=3, units=True)
    ck = resolve_checkpoints([tmp_path / "scores"], unit=unit)[0]
    kw = {"ci": 0.9, "n_boot": 60, "seed": 5}
    mem, _ = unit_rows(ck, [50, 95], unit, **kw)
    if missed:
        refine = StreamingBootstrap.refine
        monkeypatch.setattr(StreamingBootstrap, "refine", lambda self, widen=1.0: refine(self, 1e-4))
    kept = window_spy(monkeypatch)
    got, _ = streamed_unit_rows(ck, [50, 95], unit, batch_rows=4_000, **kw)
    assert len(kept["bound"]) == (2 if missed else 1) and len(kept["probe"]) == 1  # missed: the bound's windows, collected
    assert kept["probe"][0] * 3 < kept["bound"][0]
    assert_same_intervals(mem, got)


@pytest.mark.slow
@pytest.mark.parametrize("value", ["kl", "dp"])
def test_divergence_is_streamed_through_the_probe(tmp_path, monkeypatch, value):
    """--value kl|dp --ci streamed: the probe's windows (Δp: signed buckets), a fraction of the bound's; the in-memory intervals."""
    from pctce_cli.analysis import divergence_stream
    from pctce_cli.analysis.divergence import divergence_rows
    from pctce_cli.catalog import resolve_checkpoints
    from pctce_cli.units import TOKEN
    from pctce_cli.values import value_named

    from .helpers import make_store

    rng = np.random.default_rng(3)
    doc = np.repeat(np.arange(400), 1 + rng.poisson(75 * rng.lognormal(0, 0.8, 400)))
    div = {"kl": rng.lognormal(-4, 2, doc.size) * rng.lognormal(0, 0.5, 400)[doc], "dp": rng.normal(0, 0.05, doc.size).clip(-1, 1),
           "same_top1": (rng.random(doc.size) < 0.9).astype(np.int8)}  # fmt: skip
    make_store(tmp_path / "scores", "ck-a", rng.gamma(2, 1, doc.size), doc, divergence=div, shards=3)
    ck = resolve_checkpoints([tmp_path / "scores"])[0]
    kw = {"ci": 0.9, "n_boot": 60, "seed": 5}
    mem, _ = divergence_rows(ck, value, [50, 95], **kw)
    kept = window_spy(monkeypatch)
    monkeypatch.setattr(divergence_stream, "BATCH_ROWS", 4_000)
    got, _ = divergence_stream.streamed_divergence_rows(ck, value_named(value), [50, 95], TOKEN, **kw)
    assert len(kept["bound"]) == len(kept["probe"]) == 1
    assert kept["probe"][0] * 3 < kept["bound"][0]
    assert_same_intervals(mem, got)
