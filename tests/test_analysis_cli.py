"""Analysis commands on real score stores and on a table of published summaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.helpers import assert_same_summaries

from pctce_cli.scoring.options import ScoreOptions
from pctce_cli.scoring.run import score_checkpoints
from pctce_cli.store import load_scores, read_manifest

from .cli import run, run_json
from .conftest import TEXTS
from .helpers import assert_close_tree


PAPER = """checkpoint,objective,mean,p50,p95,judge
teacher,Token CE,1.442,0.609,5.57,2.01
full-kl,Full KL,1.489,0.632,5.73,1.92
top-40,Top-40 KL,1.520,0.620,5.88,1.97
top-15,Top-15 KL,1.568,0.596,6.37,2.00
top-5,Top-5 KL,1.708,0.525,7.82,2.06
"""


@pytest.fixture(scope="module")
def stores(tmp_path_factory, tiny_run, tiny_ckpt):
    """The same 4 checkpoints scored into many small shards and into one shard."""
    base = tmp_path_factory.mktemp("stores")
    data = base / "val.txt"
    data.write_text("\n\n".join(TEXTS * 3), encoding="utf-8")
    out = {}
    for name, shard in (("many", 30), ("one", 1 << 20)):
        res = score_checkpoints(
            [str(tiny_run), str(tiny_ckpt)],
            ScoreOptions(data=[str(data)], out=base / name, split_on="blank-lines", shard_targets=shard),
        )
        assert all(r.status == "scored" for r in res), [r.message for r in res]
        out[name] = base / name
    out["data"] = data
    return out


def test_summary_matches_numpy_and_lm_eval_definitions(stores):
    rows = run_json("summary", stores["many"], "--percentiles", "10,50,95")["Per-token CE summaries (nats)"]
    assert [r["checkpoint"] for r in rows] == ["teacher.checkpoint-250", "teacher.checkpoint-500", "teacher.checkpoint-1000", "tiny"]
    s = load_scores(stores["many"], "tiny")
    r = rows[-1]
    ce = s.ce.astype(np.float64)
    assert r["targets"] == len(ce) and r["documents"] == 15
    assert r["mean"] == pytest.approx(ce.mean(), rel=1e-12)
    assert [r["p10"], r["p50"], r["p95"]] == pytest.approx(np.percentile(ce, [10, 50, 95]), rel=1e-12)
    assert r["iqr"] == pytest.approx(np.percentile(ce, 75) - np.percentile(ce, 25))
    assert r["top1"] == pytest.approx((s.rank == 0).mean())
    text = stores["data"].read_text().split("\n\n")
    n_bytes = sum(len(t.encode()) for t in text)
    n_words = sum(len(__import__("re").split(r"\s+", t)) for t in text)
    assert r["bpb"] == pytest.approx(ce.sum() / n_bytes / math.log(2), rel=1e-9)
    assert r["word_ppl"] == pytest.approx(math.exp(ce.sum() / n_words), rel=1e-9)


def test_results_do_not_depend_on_sharding(stores):
    """Many shards and one shard give the same summaries, bootstrap intervals and concordance.

    Not bit for bit: ``shard_targets`` changes which documents share a batch, so
    the padded shapes and the blocked matmul order of the forward pass differ,
    and a few stored CE values move by one float32 step (4.8e-7 measured on
    another machine). Summaries of CE are then equal to float32 round-off; the
    statistics themselves are shard-invariant exactly (tests/test_stats_*.py).
    """
    a = run_json("summary", stores["many"], "--ci", "0.9", "--bootstrap", "200")
    b = run_json("summary", stores["one"], "--ci", "0.9", "--bootstrap", "200")
    assert_close_tree(a, b, rel=1e-5)
    assert_close_tree(run_json("concord", stores["many"]), run_json("concord", stores["one"]), rel=1e-5)
    many, one = load_scores(stores["many"], "tiny"), load_scores(stores["one"], "tiny")
    assert np.array_equal(many.doc, one.doc) and np.array_equal(many.token, one.token)
    # a rank can flip only where two logits are within round-off of each other
    assert np.abs(many.rank - one.rank).max() <= 1 and (many.rank != one.rank).mean() < 0.01
    np.testing.assert_allclose(many.ce, one.ce, rtol=1e-5, atol=1e-6)


def test_parallel_summaries_equal_one_at_a_time(stores, monkeypatch):
    from pctce_cli.analysis import summary as analysis
    from pctce_cli.catalog import resolve_checkpoints

    cks = resolve_checkpoints([stores["many"]])
    one = analysis.summary_rows(cks, [10, 50, 95], workers=1, ci=0.9, n_boot=100)
    assert analysis.summary_rows(cks, [10, 50, 95], workers=3, ci=0.9, n_boot=100) == one
    monkeypatch.setenv("PCTCE_WORKERS", "2")
    assert analysis.analysis_workers() == 2
    monkeypatch.setenv("PCTCE_WORKERS", "two")
    r = run("summary", stores["many"])
    assert r.exit_code == 2 and r.output.strip() == "Error: PCTCE_WORKERS must be a whole number, got 'two'"


def test_bootstrap_is_reproducible_and_seeded(stores):
    a = run_json("summary", stores["one"], "--ci", "0.95", "--bootstrap", "300", "--seed", "7")
    b = run_json("summary", stores["one"], "--ci", "0.95", "--bootstrap", "300", "--seed", "7")
    c = run_json("summary", stores["one"], "--ci", "0.95", "--bootstrap", "300", "--seed", "8")
    assert a == b and a != c
    r = a["Per-token CE summaries (nats)"][0]
    assert r["mean_lo"] <= r["mean"] <= r["mean_hi"] and r["p50_lo"] <= r["p50"] <= r["p50_hi"]


def test_summary_vs_reference_and_crossings(stores):
    out = run_json("summary", stores["one"], "--vs", "tiny")
    deltas = {d["checkpoint"]: d for d in out["Difference to tiny (negative = lower CE than the reference)"]}
    rows = {r["checkpoint"]: r for r in out["Per-token CE summaries (nats)"]}
    assert deltas["tiny"]["Δmean"] == 0
    assert deltas["teacher.checkpoint-500"]["Δp50"] == pytest.approx(rows["teacher.checkpoint-500"]["p50"] - rows["tiny"]["p50"])
    assert any(n.startswith("mean of run teacher") for n in out["notes"])


def _two_runs_and_a_reference(root):
    """Runs a and b (steps 1, 2) and a reference: a's mean drops below the reference at step 2, b's never does."""
    from tests.helpers import make_store

    doc = np.repeat(np.arange(4), 5)
    for ck, step, level in (("ref", None, 2.0), ("a.checkpoint-1", 1, 3.0), ("a.checkpoint-2", 2, 1.0), ("b.checkpoint-1", 1, 3.0), ("b.checkpoint-2", 2, 3.0)):
        make_store(root, ck, np.full(doc.size, level), doc, step=step)
    return root


def test_summary_vs_crossings_follow_runs_not_groups(tmp_path):
    """A group gathers runs a and b; its steps interleave, so crossings are taken per run (a crosses at 2, b never)."""
    out = run_json("summary", _two_runs_and_a_reference(tmp_path), "--vs", "ref", "-g", "g=a.*", "-g", "g=b.*", "--percentiles", "50")
    assert [n for n in out["notes"] if "crosses" in n] == [
        "mean of run a crosses below ref at step 2",
        "p50 of run a crosses below ref at step 2",
        "mean of run b never crosses below ref",
        "p50 of run b never crosses below ref",
    ]


def test_report_crossing_finding_lists_runs_that_cross_first():
    from pctce_cli.report.findings import crossing_findings

    rows = [{"checkpoint": "ref", "mean": 2.0, "p50": 2.0, "p95": 2.0}]
    rows += [{"checkpoint": f"{r}.checkpoint-{s}", "step": s, "mean": m, "p50": m, "p95": 9.0} for r, s, m in (("b", 1, 3.0), ("b", 2, 3.0), ("a", 1, 3.0), ("a", 2, 1.0))]
    runs = {"ref": None, **{r["checkpoint"]: r["checkpoint"].split(".")[0] for r in rows[1:]}}
    [f] = crossing_findings(rows, "ref", runs)
    assert f.text == "mean of run a crosses below ref at step 2; p50 of run a crosses below ref at step 2; no other run crosses below it in these summaries."
    [none] = crossing_findings([rows[0], *rows[1:3]], "ref", runs)
    assert none.text == "No run crosses below ref in mean, p50 or p95."
    assert crossing_findings(rows, None, runs) == []


def test_paper_table_select_picks_teacher_by_mean_and_top5_by_median_and_judge(tmp_path):
    p = tmp_path / "paper.csv"
    p.write_text(PAPER)
    out = run_json("select", "--summaries", p, "--percentiles", "50,95", "--task", "judge")
    picks = {r["rule"]: r["checkpoint"] for r in out["Selection rules (each picks the checkpoint minimizing its summary)"]}
    assert picks == {"best by mean": "teacher", "best by p50": "top-5", "best by p95": "teacher", "best by task": "top-5"}
    agreement = out["Agreement of each summary with judge"]
    assert [r["summary"] for r in agreement if r["best"]] == ["p50"]
    c = run_json("concord", "--summaries", p, "--percentiles", "50,95")
    [row] = c["Concordance of S = {mean, p50, p95}"]
    assert row["C_S"] == pytest.approx(0.2) and row["concordant"] == 2
    assert "summaries disagree" in c["notes"][0]


def test_concord_groups_and_pairs(tmp_path):
    p = tmp_path / "paper.csv"
    p.write_text(PAPER)
    out = run_json("concord", "--summaries", p, "--percentiles", "50", "--set", "mean,p50", "--group", "kl=top-*", "--group", "kl=full-kl", "--pairs")
    groups = {r["group"]: r for r in out["Concordance of S = {mean, p50}"]}
    assert set(groups) == {"all", "kl"} and groups["kl"]["checkpoints"] == 4
    assert len(out["Pairs on which mean and median disagree — all"]) == 8


def test_select_undefined_correlation_is_explained(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("checkpoint,mean,p50,acc\na,1,1,0.5\nb,2,2,0.5\nc,3,3,0.5\n")
    out = run_json("select", "--summaries", p, "--percentiles", "50", "--task", "acc")
    notes = {r["note"] for r in out["Agreement of each summary with acc"]}
    assert notes == {"constant task"}


@pytest.mark.parametrize(
    "args,message",
    [
        (["summary", "{tmp}/nope"], "Error: score directory not found: {tmp}/nope"),
        (["summary", "{tmp}"], "Error: {tmp} is not a pctce score directory (no checkpoint=* partitions)"),
        (["summary", "{one}", "--checkpoint", "zzz*"], "Error: --checkpoint 'zzz*' matches no checkpoint (have: teacher.checkpoint-250, teacher.checkpoint-500, teacher.checkpoint-1000, tiny)"),
        (["select", "{one}", "--task", "acc"], "Error: --task 'acc': no such column"),
        (["summary", "{one}", "--percentiles", "50,abc"], "Error: --percentiles: 'abc' is not a number (expected e.g. 50,90,95,99)"),
        (["summary", "{one}", "--vs", "nobody"], "Error: --vs 'nobody' is not among the selected checkpoints"),
        (["concord", "{one}", "--set", "mean,q50"], "Error: --set: "),
    ],
)
def test_bad_input_messages(stores, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, one=stores["one"]) for a in args]
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(message.format(tmp=tmp_path, one=stores["one"])), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_task_column_non_numeric(stores, tmp_path):
    meta = tmp_path / "meta.csv"
    ids = ["teacher.checkpoint-250", "teacher.checkpoint-500", "teacher.checkpoint-1000", "tiny"]
    pd.DataFrame({"checkpoint": ids, "acc": ["high", "low", "mid", "x"]}).to_csv(meta, index=False)
    r = run("select", stores["one"], "--meta", meta, "--task", "acc")
    assert r.exit_code == 2 and r.stderr.strip() == "Error: --task 'acc': column is not numeric"


def test_mixed_data_is_refused_unless_allowed(stores, tiny_ckpt, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("Completely different validation text about the sea and the shore.")
    score_checkpoints([str(tiny_ckpt)], ScoreOptions(data=[str(other)], out=tmp_path / "other", split_on="blank-lines"))
    r = run("summary", stores["one"], tmp_path / "other")
    assert r.exit_code == 2
    fp = [read_manifest(d, c)["fingerprints"]["data"][:8] for d, c in ((stores["one"], "teacher.checkpoint-250"), (tmp_path / "other", "tiny"))]
    assert r.stderr.strip() == (
        f"Error: 'teacher.checkpoint-250' and 'other/tiny' were scored on different validation data "
        f"(data fingerprints {fp[0]} vs {fp[1]}); "
        "their CE distributions are not comparable (pass --allow-mixed to compare anyway)"
    )
    r = run("summary", stores["one"], tmp_path / "other", "--allow-mixed")
    assert r.exit_code == 0 and "other/tiny" in r.stdout


def test_formats(stores, tmp_path):
    for fmt in ("table", "json", "csv", "markdown"):
        out = tmp_path / f"s.{fmt}"
        r = run("summary", stores["one"], "--format", fmt, "--output", out)
        assert r.exit_code == 0 and out.read_text()
    df = pd.read_csv(tmp_path / "s.csv")
    assert list(df["checkpoint"])[-1] == "tiny" and "p95" in df.columns
    assert (tmp_path / "s.markdown").read_text().startswith("### Per-token CE summaries (nats)\n\n| checkpoint |")


def test_shape_bands_profiles_and_group_distances(stores):
    out = run_json("shape", stores["one"], "--group", "run=teacher.*", "--edges", "0,5,6,inf")
    bands = out["Mass in CE bands (fraction of targets)"]
    s = load_scores(stores["one"], "tiny")
    tiny = next(b for b in bands if b["checkpoint"] == "tiny")
    masses = [v for k, v in tiny.items() if k not in ("checkpoint", "group")]
    assert sum(masses) == pytest.approx(1.0)
    assert masses[0] == pytest.approx((s.ce < 5).mean())
    prof = {r["checkpoint"]: r for r in out["Standardized percentile profile z_q = (p_q − p50) / iqr"]}
    ce = s.ce.astype(np.float64)
    p25, p50, p75, p90 = np.percentile(ce, [25, 50, 75, 90])
    assert prof["tiny"]["z90"] == pytest.approx((p90 - p50) / (p75 - p25))
    assert prof["tiny"]["z50"] == 0
    assert out["Mean profile distance within and between groups"]


def test_shape_ecdf_points_as_csv(stores, tmp_path):
    r = run("shape", stores["one"], "--ecdf", "--format", "csv", "--output", tmp_path / "e.csv")
    assert r.exit_code == 0, r.stderr
    df = pd.read_csv(tmp_path / "e.csv")
    assert list(df.columns[:3]) == ["checkpoint", "ce", "cdf"]
    for _, g in df.groupby("checkpoint"):
        assert g["ce"].is_monotonic_increasing and g["cdf"].is_monotonic_increasing


def test_decompose_identity_holds(stores):
    rows = run_json("decompose", stores["one"])["Cross-entropy decomposition: mean CE = EE + SA − CONF"]
    for r in rows:
        assert abs(r["residual"]) < 1e-9
        assert r["EE"] + r["SA"] - r["CONF"] == pytest.approx(r["mean"], abs=1e-9)


def test_streamed_summaries_equal_the_loaded_ones(stores, monkeypatch):
    """Above PCTCE_STREAM_ABOVE targets a checkpoint streams its shards: the same row (means to round-off)."""
    loaded = run_json("summary", stores["many"], "--percentiles", "5,50,90,99.9")["Per-token CE summaries (nats)"]
    monkeypatch.setenv("PCTCE_STREAM_ABOVE", "0")
    streamed = run_json("summary", stores["many"], "--percentiles", "5,50,90,99.9")["Per-token CE summaries (nats)"]
    assert [list(r) for r in streamed] == [list(r) for r in loaded]
    for a, b in zip(loaded, streamed):
        for k, v in a.items():
            if k in ("mean", "ppl", "bpb", "byte_ppl", "word_ppl"):  # sums in another order
                assert b[k] == pytest.approx(v, rel=1e-12), k
            else:  # counts, order statistics, top-1: exact
                assert b[k] == v, k


@pytest.mark.parametrize("name", ["many", "one"])
def test_streamed_intervals_equal_the_loaded_ones(stores, monkeypatch, name):
    """--ci above PCTCE_STREAM_ABOVE is streamed (docs/streaming.md): the same rows and intervals."""
    args = ("--ci", "0.9", "--bootstrap", "200")
    loaded = run_json("summary", stores[name], *args)
    monkeypatch.setenv("PCTCE_STREAM_ABOVE", "0")
    streamed = run_json("summary", stores[name], *args)
    assert_same_summaries(loaded, streamed)
