"""`concord`, `select` and `compare` on `--value kl|dp`, on synthetic stores: numbers against numpy loops, refusals exactly."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pctce_cli.store import write_labels

from .cli import run, run_json, section
from .helpers import make_store

N_DOCS, PER_DOC = 20, 50
OTHER = {"path": "/checkpoints/other", "fingerprint": "q" * 64}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(1)
    root = tmp_path_factory.mktemp("klcmp") / "out"
    doc = np.repeat(np.arange(N_DOCS), PER_DOC)
    div = {}
    for i, ck in enumerate(("a", "b", "c")):
        # b: the bulk further and the tail closer than a; c: the bulk closer, the heaviest tail (the summaries disagree)
        kl = rng.lognormal((-4.0, -3.3, -4.6)[i], (2.0, 1.4, 2.6)[i], doc.size).astype(np.float32)
        dp = rng.normal(0, 0.05, doc.size).clip(-1, 1).astype(np.float32)
        same = (rng.random(doc.size) < 0.9 - 0.05 * i).astype(np.int8)
        div[ck] = {"kl": kl, "dp": dp, "same_top1": same}
        make_store(root, ck, rng.gamma(2, 1, doc.size), doc, step=100 * (i + 1), divergence=div[ck])
        write_labels(root, ck, {"half": ["x" if d < 10 else "y" for d in range(N_DOCS)]}, list(range(N_DOCS)))
    other = tmp_path_factory.mktemp("klother") / "out"
    make_store(other, "o", rng.gamma(2, 1, doc.size), doc, divergence=div["a"], reference=OTHER)
    make_store(other, "plain", rng.gamma(2, 1, doc.size), doc)
    return root, other, doc, div


def _paired_loop(a, b, doc, same_a, same_b, names, n_boot, seed, ci):
    """Δ = s(b) − s(a) and its paired document-bootstrap interval, one replicate at a time (numpy, float64)."""

    def value(x, same, rows, name):
        x = x[rows].astype(np.float64)
        if name == "mean":
            return x.mean()
        if name == "same_top1":
            return same[rows].mean()
        return np.percentile(x, 100.0 if name == "max" else float(name[1:]))

    ids = np.unique(doc)
    by_doc = [np.flatnonzero(doc == d) for d in ids]
    rng = np.random.default_rng(seed)
    every = np.arange(len(doc))
    out = {n: {"delta": value(b, same_b, every, n) - value(a, same_a, every, n), "reps": []} for n in names}
    for _ in range(n_boot):
        rows = np.concatenate([by_doc[i] for i in rng.integers(0, ids.size, size=ids.size)])
        for n in names:
            out[n]["reps"].append(value(b, same_b, rows, n) - value(a, same_a, rows, n))
    tail = 100 * (1 - ci) / 2
    for n in names:
        out[n]["lo"], out[n]["hi"] = np.percentile(out[n].pop("reps"), [tail, 100 - tail])
    return out


@pytest.mark.parametrize("value", ["kl", "dp"])
def test_compare_pairs_the_divergence_like_a_numpy_loop(store, value):
    root, _, doc, div = store
    got = run_json("compare", f"{root}:a", f"{root}:b", "--value", value, "--bootstrap", "200", "--ci", "0.9", "--seed", "4", "--percentiles", "50,99")
    rows = {r["summary"]: r for r in got[next(k for k in got if k.startswith("b − a"))]}
    assert list(rows) == ["mean", "p50", "p99", "max", "same_top1"]
    a, b = div["a"], div["b"]
    want = _paired_loop(a[value], b[value], doc, a["same_top1"], b["same_top1"], list(rows), 200, 4, 0.9)
    for name, r in rows.items():
        for key, col in (("delta", "Δ"), ("lo", "lo"), ("hi", "hi")):
            assert r[col] == pytest.approx(want[name][key], rel=1e-9, abs=1e-12), (name, key)
    if value == "dp":  # signed, often near 0: no relative change, and a note says why
        assert all(r.get("Δ%") is None for r in rows.values())
        assert "No Δ% for Δp: its values are signed and often near 0, so a change relative to the baseline says nothing; read Δ." in got["notes"]
    else:
        assert rows["mean"]["Δ%"] == pytest.approx(100 * rows["mean"]["Δ"] / abs(rows["mean"]["baseline"]), rel=1e-12)
        assert not any(n.startswith("No Δ%") for n in got["notes"])
    d = b[value].astype(np.float64) - a[value].astype(np.float64)
    [moved] = section(got, f"Targets whose {'KL' if value == 'kl' else 'Δp'} went down")
    assert moved == {"targets": doc.size, "down": np.mean(d < 0), "up": np.mean(d > 0), "unchanged": np.mean(d == 0)}
    top = section(got, "Documents that moved most by Δ summed")
    sums = np.array([d[doc == k].sum() for k in range(N_DOCS)])
    assert top[0]["doc"] == int(np.argmax(np.abs(sums))) and top[0][f"Δ summed {'KL' if value == 'kl' else 'Δp'}"] == pytest.approx(sums[top[0]["doc"]], rel=1e-5)


def test_compare_kl_reads_closer_and_further_from_the_reference(store):
    root = store[0]
    got = run_json("compare", f"{root}:a", f"{root}:c", "--value", "kl", "--bootstrap", "100", "--top", "0")
    assert "c − a (KL from the reference, nats; negative = closer to the reference for the candidate)" in got
    # c: the heavier tail (mean up) on a closer bulk (median down)
    assert re.fullmatch(r"Verdict: mean further from the reference by \+[0-9.]+, median closer to the reference by −[0-9.]+: the distribution is being reshaped — decide by what your task depends on\.", got["notes"][0])
    assert got["notes"][-1] == (
        "Both scored against the reference /checkpoints/reference (fingerprint rrrrrrrrrrrr); each value is KL(p_ref ‖ p_model), "
        "nats; Δ = candidate − baseline, target by target; same_top1: top-1 agreement with the reference "
        "(docs/definitions.md#divergence-from-a-reference-model)."
    )


def test_compare_kl_by_subset_is_each_subsets_own_difference(store):
    root, _, doc, div = store
    got = run_json("compare", f"{root}:a", f"{root}:b", "--value", "kl", "--by", "half", "--bootstrap", "50", "--top", "0")
    rows = [r for r in section(got, "b − a by half") if r["summary"] == "mean"]
    for r, keep in zip(rows, (doc < 10, doc >= 10)):
        assert r["Δ"] == pytest.approx(div["b"]["kl"][keep].astype(np.float64).mean() - div["a"]["kl"][keep].astype(np.float64).mean(), rel=1e-9)
    verdicts = section(got, "Verdict by half")
    assert {v["candidate"] for v in verdicts} <= {"closer to the reference", "further from the reference", "reshaped", "no significant change"}


def _kl_table(div, levels):
    rows = []
    for ck, d in div.items():
        x = d["kl"].astype(np.float64)
        rows.append({"checkpoint": ck, "mean": x.mean(), **{f"p{q:g}": np.percentile(x, q) for q in levels}})
    return pd.DataFrame(rows)


def test_select_picks_the_lowest_kl_by_each_summary(store):
    root, _, _, div = store
    levels = (50, 90, 95, 99, 99.9)
    got = run_json("select", root, "--value", "kl")
    picks = {r["rule"]: r["checkpoint"] for r in section(got, "Selection rules")}
    table = _kl_table(div, levels).set_index("checkpoint")
    assert picks == {f"best by {s}": table[s].idxmin() for s in table.columns}
    [row] = [r for r in section(got, "Selection rules") if r["rule"] == "best by p99.9"]
    assert row["p99.9"] == pytest.approx(table["p99.9"].min(), rel=1e-9)


@pytest.mark.slow
def test_concord_on_kl_equals_concord_on_the_same_summaries_from_a_file(store, tmp_path):
    """The KL table from the store and a table of numpy's KL summaries, read as --summaries: the same concordance."""
    root, _, _, div = store
    levels = (50, 90, 95, 99, 99.9)
    csv = tmp_path / "kl.csv"
    _kl_table(div, levels).to_csv(csv, index=False)
    got = run_json("concord", root, "--value", "kl", "--set", "mean,p50,p99.9")
    want = run_json("concord", "--summaries", csv, "--percentiles", "50,90,95,99,99.9", "--set", "mean,p50,p99.9")
    for title in ("Concordance C(s, s') — all", "Kendall τ — all", "Concordance of S"):
        assert section(got, title) == section(want, title), title
    assert section(got, "Concordance of S")[0]["C_S"] < 1  # the rules disagree on these students


def test_concord_kl_by_subset(store):
    got = run_json("concord", store[0], "--value", "kl", "--by", "half")
    assert [r["subset"] for r in section(got, "Concordance by half")] == ["x", "y"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("concord", "{root}", "--value", "dp"), "--value dp with concord: Δp is signed (a model can move the target's probability either way from the reference), so no summary of it ranks checkpoints by closeness to the reference; use --value kl, or compare two checkpoints' Δp with compare"),
        (("select", "{root}", "--value", "dp"), "--value dp with select: Δp is signed (a model can move the target's probability either way from the reference), so no summary of it ranks checkpoints by closeness to the reference; use --value kl, or compare two checkpoints' Δp with compare"),
        (("concord", "{root}", "--value", "kl", "--set", "mean,iqr"), "--set iqr with --value kl: a divergence is summarized by its mean and percentiles (pXX; p100 is the max); drop iqr"),
        (("concord", "{root}", "{other}", "-c", "a", "-c", "o", "--value", "kl"), "--value kl: 'a' was scored against /checkpoints/reference (fingerprint rrrrrrrrrrrr) and 'o' against /checkpoints/other (fingerprint qqqqqqqqqqqq); concord ranks checkpoints by their divergence from one reference model; score both with the same reference"),
        (("select", "{root}", "{other}", "-c", "plain", "-c", "b", "--value", "kl"), "--value kl: 'plain' in {other} was scored without a reference model; score it with 'pctce score CHECKPOINT --reference REF --force' to store its divergence (docs/kl.md)"),
        (("concord", "--summaries", "{root}/x.csv", "--value", "kl"), "--value kl needs score directories: --summaries holds precomputed CE summaries"),
        (("compare", "{root}:a", "{other}:o", "--value", "kl"), "--value kl: 'a' was scored against /checkpoints/reference (fingerprint rrrrrrrrrrrr) and 'o' against /checkpoints/other (fingerprint qqqqqqqqqqqq); a paired comparison needs both divergences taken from the same reference model; score both with the same reference"),
        (("compare", "{root}:a", "{other}:plain", "--value", "dp"), "--value dp: 'plain' in {other} was scored without a reference model; score it with 'pctce score CHECKPOINT --reference REF --force' to store its divergence (docs/kl.md)"),
        (("compare", "{root}:a", "{root}:b", "--value", "kl", "--unit", "byte"), "--value kl with --unit byte: a divergence is taken per prediction and has no byte form; use --unit token or word"),
        (("compare", "{root}:a", "{root}:b", "--value", "dp", "--unit", "word"), "--value dp with --unit word: Δp is a token quantity (it does not sum into words); use --unit token"),
    ],
)
def test_refusals(store, args, message):
    root, other = store[0], store[1]
    r = run(*(a.format(root=root, other=other) for a in args))
    assert r.exit_code == 2, r.output
    assert r.stderr.strip() == f"Error: {message.format(root=root, other=other)}"


def test_ce_stays_the_default_and_stores_without_kl_stay_readable(store):
    root, other = store[0], store[1]
    assert run_json("compare", f"{root}:a", f"{root}:b", "--bootstrap", "50") == run_json("compare", f"{root}:a", f"{root}:b", "--bootstrap", "50", "--value", "ce")
    got = run_json("select", other, "-c", "plain")
    assert [r["checkpoint"] for r in section(got, "Selection rules")] == ["plain"] * 5
