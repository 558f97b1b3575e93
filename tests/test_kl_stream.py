"""`pctce summary --value kl|dp` above PCTCE_STREAM_ABOVE: the streamed rows equal the in-memory rows (docs/kl.md).

The in-memory path is the reference (tests/test_kl_analysis.py checks it
against numpy): counts, percentiles (p99.9 too), the maximum, same_top1 and
interval bounds of percentiles exactly; means to float64 round-off (summed per
batch). Batches of a few targets, so that documents and words straddle them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pctce_cli.analysis import divergence_stream
from pctce_cli.store import write_labels
from pctce_cli.testing import reseal

from .cli import run, run_json
from .helpers import assert_same_summaries, make_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(1)
    root = tmp_path_factory.mktemp("klstream") / "out"
    doc = np.repeat(np.arange(40), rng.integers(5, 60, 40))
    kl = rng.lognormal(-4, 2, doc.size)
    kl[rng.random(doc.size) < 0.05] = 0.0  # ties at zero, as a model against itself
    dp = rng.normal(0, 0.05, doc.size).clip(-1, 1)
    dp[::7] = -dp[::7] * 3  # negative and positive tails
    same = (rng.random(doc.size) < 0.9).astype(np.int8)
    make_store(root, "student", rng.gamma(2, 1, doc.size), doc, divergence={"kl": kl, "dp": dp, "same_top1": same}, shards=3)
    make_store(root, "other", rng.gamma(2, 1, doc.size), doc, divergence={"kl": kl[::-1].copy(), "dp": dp, "same_top1": same[::-1].copy()})
    labels = {"half": ["a" if d < 15 else "b" if d < 35 else "c" for d in range(40)]}
    for ck in ("student", "other"):
        write_labels(root, ck, labels, list(range(40)))
    return root


def streamed_and_loaded(root, monkeypatch, *args):
    loaded = run_json("summary", root, *args)
    monkeypatch.setenv("PCTCE_STREAM_ABOVE", "0")
    monkeypatch.setattr(divergence_stream, "BATCH_ROWS", 7)
    return loaded, run_json("summary", root, *args)


SLOW = pytest.mark.slow  # over a second on a shared machine: the fast lane keeps the pooled case of each value


@pytest.mark.parametrize("value", ["kl", "dp"])
@pytest.mark.parametrize("args", [(), pytest.param(("--by", "half"), marks=SLOW), pytest.param(("--subset", "b"), marks=SLOW), pytest.param(("--percentiles", "0,10,50,99.9,100"), marks=SLOW)])
def test_streamed_divergence_equals_loaded(store, monkeypatch, value, args):
    loaded, streamed = streamed_and_loaded(store, monkeypatch, "--value", value, *args)
    assert_same_summaries(loaded, streamed)
    assert streamed["notes"] == loaded["notes"]
    rows = [r for t, rs in streamed.items() if t != "notes" for r in rs]
    assert rows and all("max" in r and "same_top1" in r for r in rows)


@pytest.mark.parametrize("value", ["kl", "dp"])
@pytest.mark.parametrize("args", [(), pytest.param(("--by", "half"), marks=SLOW)])
def test_streamed_divergence_intervals_equal_loaded(store, monkeypatch, value, args):
    """The bounded-memory bootstrap (Δp: signed buckets) and the maximum from each document's maximum: the in-memory replicates."""
    ci = ("--ci", "0.9", "--bootstrap", "300", "--seed", "5")
    levels = ("--percentiles", "0.5,5,50,99.9") if value == "dp" else ()  # Δp: windows in the negative tail too
    loaded, streamed = streamed_and_loaded(store, monkeypatch, "--value", value, *ci, *levels, *args)
    assert_same_summaries(loaded, streamed)
    rows = [r for t, rs in streamed.items() if t != "notes" for r in rs]
    for r in rows:
        for name in ("mean", "p50", "p99.9", "max", "same_top1"):
            assert r[f"{name}_lo"] <= r[name] <= r[f"{name}_hi"], name
    if value == "dp":
        assert all(r["p5_hi"] < 0 for r in rows) and any(r["p50_lo"] < 0 < r["p50_hi"] for r in rows)


def test_a_damaged_kl_value_is_named_with_its_shard_row(store, tmp_path, monkeypatch):
    """The streamed path checks the divergence columns as the loaded one does (ranges per batch, kl_sum per shard)."""
    import hashlib
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "s"
    shutil.copytree(store, root)
    part = next(root.glob("checkpoint=student*"))
    man = json.loads((part / "_manifest.json").read_text())
    rec = man["shards"][1]
    table = pq.read_table(part / rec["tokens_file"])
    kl = table.column("kl").to_numpy().copy()
    kl[9] = -0.5
    table = table.set_column(table.column_names.index("kl"), "kl", pa.array(kl, type=pa.float32()))
    pq.write_table(table, part / rec["tokens_file"])
    rec["tokens_sha256"] = hashlib.sha256((part / rec["tokens_file"]).read_bytes()).hexdigest()
    (part / "_manifest.json").write_text(json.dumps(man))
    reseal(part)
    monkeypatch.setenv("PCTCE_STREAM_ABOVE", "0")
    monkeypatch.setattr(divergence_stream, "BATCH_ROWS", 4)
    r = run("summary", root, "-c", "student", "--value", "kl")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"{part / rec['tokens_file']}: row 9: kl = -0.5, expected a finite value >= 0" in " ".join(r.stderr.split())


@pytest.fixture(scope="module")
def scored(tmp_path_factory, tiny_tokenizer, one_thread):
    """Two tiny GPT-2s scored with byte spans and words, one against the other (--reference), labelled by half."""
    return scored_with_words(tmp_path_factory.mktemp("klwords"), tiny_tokenizer)


def scored_with_words(base, tokenizer):
    """The store of :func:`scored`, made in ``base``: its ``out`` directory."""
    from pctce_cli.scoring.options import ScoreOptions
    from pctce_cli.scoring.run import score_checkpoints
    from pctce_cli.testing import make_gpt2

    from .conftest import TEXTS

    for name, seed in (("a", 0), ("b", 7)):
        make_gpt2(base / name, tokenizer=tokenizer, seed=seed)
    data = base / "val.jsonl"
    data.write_text("".join(json.dumps({"text": t, "half": "x" if k % 2 else "y"}) + "\n" for k, t in enumerate(TEXTS)), encoding="utf-8")
    opts = ScoreOptions(data=[str(data)], out=base / "out", subset_fields=("half",), reference=str(base / "a"))
    res = score_checkpoints([str(base / "b")], opts)
    assert all(r.status == "scored" for r in res), [r.message for r in res]
    return base / "out"


@pytest.mark.slow
@pytest.mark.parametrize("args", [(), ("--by", "half"), ("--ci", "0.9", "--bootstrap", "200", "--by", "half")])
def test_streamed_word_kl_equals_loaded(scored, monkeypatch, args):
    """KL per word (the sum of its tokens') streamed: words straddle batches of 7 targets; the loaded numbers, intervals too."""
    loaded, streamed = streamed_and_loaded(scored, monkeypatch, "--value", "kl", "--unit", "word", *args)
    assert_same_summaries(loaded, streamed)
    rows = [r for t, rs in streamed.items() if t != "notes" for r in rs]
    assert rows and all(r["words"] > 0 and "same_top1" not in r for r in rows)


# --------------------------------------------------------------------------- the statistics, against independent references


def _chunks(n, rng):
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, 6), replace=False)) if n > 1 else []
    return np.split(np.arange(n), cuts)


@pytest.mark.parametrize("seed", range(4))
def test_part_summaries_of_signed_and_weighted_values_equal_numpy(seed):
    """Δp (signed) and bytes (weighted), per part, in chunks: np.percentile of each part's values (expanded by weight) exactly."""
    from pctce_cli.stats.streaming_parts import PartSummaries

    rng = np.random.default_rng(seed)
    n = 3000
    values = rng.normal(0, 0.05, n).astype(np.float32)
    values[rng.random(n) < 0.2] = 0.0  # ties at zero, and -0.0 beside them
    values[::11] = -0.0
    weights = rng.integers(0, 5, n)
    code = rng.integers(-1, 3, n)
    levels = [0, 1, 50, 99.9, 100]
    for w in (None, weights):
        s = PartSummaries(3, levels, bits=12, signed=True)
        for c in _chunks(n, rng):
            s.update(code[c], values[c], None if w is None else w[c])
        s.plan()
        for c in _chunks(n, rng):
            s.collect(code[c], values[c], None if w is None else w[c])
        for p, got in enumerate(s.compute()):
            mine = code == p
            expanded = values[mine].astype(np.float64) if w is None else np.repeat(values[mine], w[mine]).astype(np.float64)
            assert got["n"] == expanded.size
            assert [got[f"p{q:g}"] for q in levels] == np.percentile(expanded, levels).tolist()
            assert got["mean"] == pytest.approx(expanded.mean(), rel=1e-9, abs=1e-12)


def test_max_replicates_are_the_in_memory_bootstrap_max():
    """The max of each replicate from the documents' maxima alone: bootstrap_replicates' p100, replicate for replicate."""
    from pctce_cli.stats.bootstrap import bootstrap_replicates
    from pctce_cli.stats.streaming_parts import DocMax, max_replicates

    rng = np.random.default_rng(3)
    doc = np.sort(rng.choice([2, 5, 6, 9, 14, 30], 400))
    values = rng.lognormal(-3, 2, doc.size).astype(np.float32)
    want = bootstrap_replicates({"a": values}, doc, ["p100"], n_boot=300, seed=11)["a"]["p100"]
    m = DocMax(31)
    for c in _chunks(doc.size, rng):
        m.update(doc[c], values[c])
    ids = np.unique(doc)
    assert np.array_equal(max_replicates(m.max[ids], 300, seed=11, chunk_cells=50), want)
