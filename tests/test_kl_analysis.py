"""`pctce summary --value kl|dp` on synthetic stores: every number against numpy, the refusals with their exact messages."""

from __future__ import annotations

import numpy as np
import pytest

from pctce_cli.analysis.divergence import divergence_row
from pctce_cli.store import write_labels

from .cli import run, run_json, section
from .helpers import make_store

LEVELS = (50, 90, 95, 99, 99.9)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("kl") / "out"
    doc = np.repeat(np.arange(20), 50)
    kl = rng.lognormal(-4, 2, doc.size)  # a heavy tail, as a top-K student's
    dp = rng.normal(0, 0.05, doc.size).clip(-1, 1)
    same = (rng.random(doc.size) < 0.9).astype(np.int8)
    make_store(root, "student", rng.gamma(2, 1, doc.size), doc, divergence={"kl": kl, "dp": dp, "same_top1": same}, shards=2)
    make_store(root, "plain", rng.gamma(2, 1, doc.size), doc)
    write_labels(root, "student", {"half": ["a" if d < 10 else "b" for d in range(20)]}, list(range(20)))
    return root, doc, kl.astype(np.float32), dp.astype(np.float32), same


def _expected(values, same):
    v = values.astype(np.float64)
    out = {"mean": v.mean(), **{f"p{q:g}": np.percentile(v, q) for q in LEVELS}, "max": v.max()}  # numpy's default: type 7
    if same is not None:
        out["same_top1"] = same.mean()
    return out


@pytest.mark.parametrize("value", ["kl", "dp"])
def test_summary_value_matches_numpy(store, value):
    root, doc, kl, dp, same = store
    rows = section(run_json("summary", root, "-c", "student", "--value", value), "Per-token")
    [row] = rows
    assert row["targets"] == doc.size and row["documents"] == 20
    for name, want in _expected(kl if value == "kl" else dp, same).items():
        assert row[name] == pytest.approx(want, rel=1e-6, abs=1e-9), name


def test_summary_by_subset_and_intervals(store):
    root, doc, kl, _, same = store
    got = run_json("summary", root, "-c", "student", "--value", "kl", "--by", "half", "--ci", "0.9", "--bootstrap", "200")
    rows = section(got, "Per-token KL summaries by half")
    assert [r["subset"] for r in rows] == ["a", "b"]
    for r, keep in zip(rows, (doc < 10, doc >= 10)):
        assert r["targets"] == keep.sum() and r["p99"] == pytest.approx(np.percentile(kl[keep].astype(np.float64), 99), rel=1e-6)
        for name in ("mean", "p99", "same_top1"):
            assert r[f"{name}_lo"] <= r[name] <= r[f"{name}_hi"]


def test_a_store_without_kl_says_how_to_score_it(store):
    root = store[0]
    r = run("summary", root, "-c", "plain", "--value", "kl")
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        f"Error: --value kl: 'plain' in {root} was scored without a reference model; score it with "
        "'pctce score CHECKPOINT --reference REF --force' to store its divergence (docs/kl.md)"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (("--value", "dp", "--unit", "word"), "--value dp with --unit word: Δp is a token quantity (it does not sum into words); use --unit token"),
        (("--value", "kl", "--unit", "byte"), "--value kl with --unit byte: a divergence is taken per prediction and has no byte form; use --unit token or word"),
        (("--value", "kl", "--vs", "student"), "--vs with --value kl: the divergence is already taken from the reference model it was scored against; drop --vs"),
    ],
)
def test_refusals(store, args, message):
    r = run("summary", store[0], "-c", "student", *args)
    assert r.exit_code == 2 and r.stderr.strip() == f"Error: {message}"


def test_ce_summary_is_unchanged_by_the_divergence_columns(store):
    root = store[0]
    with_kl = section(run_json("summary", root, "-c", "student"), "Per-token CE")
    assert "same_top1" not in with_kl[0] and "top1" in with_kl[0]


def test_divergence_row_empty_and_without_agreement():
    row = divergence_row(np.zeros(0), np.zeros(0, np.int64), None, [50])
    assert row["n"] == 0 and np.isnan(row["mean"]) and "same_top1" not in row
