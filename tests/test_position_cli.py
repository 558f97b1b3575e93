"""``--by position|ctx`` on summary and compare (docs/definitions.md#position-in-the-context): exact numbers against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from pctce_cli.stats.bootstrap import bootstrap_ci
from pctce_cli.stats.position import context_lengths
from pctce_cli.stats.summaries import summarize

from .cli import run, run_json, section
from .helpers import make_store

LENGTHS = [3, 1, 40, 90, 130, 7, 64, 65, 200, 12]  # targets per document (a prefix token: pos 0 … n-1)


def store(tmp_path, seed=0, ck="ck-a", shards=2):
    rng = np.random.default_rng(seed)
    doc = np.repeat(np.arange(len(LENGTHS)), LENGTHS)
    pos = np.concatenate([np.arange(n) for n in LENGTHS])
    ce = (rng.lognormal(0.0, 1.0, doc.size) / (1 + 0.01 * pos)).astype(np.float32)
    rank = rng.integers(0, 3, doc.size)
    make_store(tmp_path / "s", ck, ce, doc, rank=rank, step=seed, shards=shards)  # max_length 64, stride 32
    return tmp_path / "s", doc, pos, ce, rank


def numpy_groups(values, lo):
    """Bucket of each value by numpy alone."""
    return np.searchsorted(np.asarray(lo), values, side="right") - 1


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("by", ["position", "ctx"])
def test_summary_by_position_and_ctx_equals_numpy_grouping(tmp_path, by, stream):
    root, doc, pos, ce, rank = store(tmp_path)
    values = pos if by == "position" else context_lengths(doc, pos, 64, 32)
    if by == "ctx":
        assert values.max() == 63 and (values[pos >= 64] >= 32).all()  # capped by the window, at least max_length - stride
    env = {"PCTCE_STREAM_ABOVE": "0"} if stream else None
    r = run("summary", root, "--by", by, "--percentiles", "10,50,90", "--format", "json", env=env)
    rows = section(__import__("json").loads(r.stdout), "Per-token CE summaries by " + by)
    lo = [0, 1, 2, 4, 8, 16, 32, 64, 128]
    k = numpy_groups(values, lo)
    assert [row[by] for row in rows] == [["0", "1", "2–3", "4–7", "8–15", "16–31", "32–63", "64–127", "128–255"][b] for b in np.unique(k)]
    for row in rows:
        b = lo.index(row["from"])
        want = summarize(ce[k == b], rank[k == b], percentiles=[10, 50, 90])
        assert row["targets"] == want["n"] == (k == b).sum()
        assert row["documents"] == np.unique(doc[k == b]).size
        for name in ("p10", "p50", "p90", "iqr", "top1"):
            assert row[name] == want[name]  # exact, streamed or not
        assert row["mean"] == pytest.approx(want["mean"], rel=1e-12)
    assert sum(row["targets"] for row in rows) == ce.size


def test_pooled_summary_is_unchanged_and_user_edges_make_an_open_last_bucket(tmp_path):
    root, doc, pos, ce, rank = store(tmp_path)
    pooled = run("summary", root, "--format", "csv").stdout
    rows = section(run_json("summary", root, "--by", "position", "--position-edges", "64,128", "--percentiles", "50"), "Per-token")
    assert [(r["position"], r["from"], r["to"]) for r in rows] == [("0–63", 0, 64), ("64–127", 64, 128), ("128+", 128, None)]
    assert rows[2]["p50"] == summarize(ce[pos >= 128], percentiles=[50])["p50"]
    assert run("summary", root, "--format", "csv").stdout == pooled


def test_intervals_resample_the_documents_of_each_bucket(tmp_path):
    root, doc, pos, ce, rank = store(tmp_path)
    rows = section(run_json("summary", root, "--by", "position", "--position-edges", "64", "--ci", "0.9", "--bootstrap", "200", "--percentiles", "50"), "Per-token")
    for row, keep in zip(rows, [pos < 64, pos >= 64]):
        res = bootstrap_ci(ce[keep], doc[keep], ["mean", "p50"], n_boot=200, ci=0.9, seed=0, rank=rank[keep])
        assert (row["p50_lo"], row["p50_hi"]) == tuple(res["p50"])
        assert (row["mean_lo"], row["mean_hi"]) == pytest.approx(tuple(res["mean"]), rel=1e-12)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--position-edges", "8"], "--position-edges needs --by position or --by ctx"),
        (["--by", "position", "--position-edges", "8,4"], "--position-edges: edges must be strictly increasing, got 8 then 4"),
        (["--by", "ctx", "--position-edges", "-2"], "--position-edges: edges must be >= 0, got -2"),
        (["--by", "position", "--unit", "word"], "--by position buckets targets: use it with --unit token (a word or byte has no single position)"),
        (["--by", "position", "--vs", "ck-a"], "--vs compares whole checkpoints: use it without --by position"),
    ],
)
def test_bad_position_options_get_one_line_and_exit_2(tmp_path, args, message):
    root = store(tmp_path)[0]
    r = run("summary", root, *args)
    assert r.exit_code == 2
    assert r.stderr.strip() == f"Error: {message}"


def test_ctx_is_refused_for_prompt_completion_stores(tmp_path):
    make_store(tmp_path / "p", "qa", np.ones(6), [0, 0, 0, 1, 1, 1], settings={"prompt_field": "q", "completion_field": "a"})
    r = run("summary", tmp_path / "p", "--by", "ctx")
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        "Error: --by ctx: 'qa' was scored with --prompt-field or --completion-field in an older pctce, so its context lengths "
        "are unknown (use --by position); re-score the checkpoint with 'pctce score … --force' to record each document's input "
        "tokens, which ctx needs"
    )


@pytest.mark.parametrize("by", ["position", "ctx"])
def test_compare_by_position_is_a_paired_bootstrap_per_bucket(tmp_path, by):
    from pctce_cli.stats.bootstrap import paired_bootstrap

    root, doc, pos, ce_a, _ = store(tmp_path, seed=0, ck="ck-a")
    ce_b = store(tmp_path, seed=1, ck="ck-b")[3]
    values = pos if by == "position" else context_lengths(doc, pos, 64, 32)
    out = run_json("compare", f"{root}:ck-a", f"{root}:ck-b", "--by", by, "--position-edges", "32", "--bootstrap", "200", "--percentiles", "50", "--top", "0")
    rows = section(out, f"ck-b − ck-a by {by}")
    verdicts = section(out, f"Verdict by {by}")
    assert [v["subset"] for v in verdicts] == ["0–31", "32+"]
    for label, keep in [("0–31", values < 32), ("32+", values >= 32)]:
        res = paired_bootstrap(ce_a[keep], ce_b[keep], doc[keep], ["mean", "p50", "iqr"], n_boot=200, ci=0.95, seed=0)
        [p50] = [r for r in rows if r["subset"] == label and r["summary"] == "p50"]
        assert p50["Δ"] == summarize(ce_b[keep], percentiles=[50])["p50"] - summarize(ce_a[keep], percentiles=[50])["p50"]
        assert (p50["lo"], p50["hi"]) == (pytest.approx(res["p50"]["lo"], abs=1e-12), pytest.approx(res["p50"]["hi"], abs=1e-12))
        [v] = [v for v in verdicts if v["subset"] == label]
        assert (v["targets"], v["documents"]) == (keep.sum(), np.unique(doc[keep]).size)
    assert not [r for r in rows if r["summary"] == "bpb"]  # bits per byte belong to whole documents


def test_streamed_document_counts_hold_when_documents_span_batches():
    from pctce_cli.analysis.position import _DocCounter

    rng = np.random.default_rng(3)
    doc = np.repeat(np.arange(40), rng.integers(1, 30, 40))
    code = rng.integers(-1, 4, doc.size)
    counter = _DocCounter(4)
    for part in np.array_split(np.arange(doc.size), 9):  # cuts documents between batches
        counter.update(code[part], doc[part])
    assert counter.count.tolist() == [np.unique(doc[code == b]).size for b in range(4)]
