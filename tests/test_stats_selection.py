"""Selection rules against brute force; agreement against scipy.stats."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pctce_cli.errors import UsageError
from pctce_cli.stats.selection import agreement, agreement_summaries, best_summary, select


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    m = 24
    quality = rng.normal(size=m)
    t = pd.DataFrame(
        {
            "checkpoint": [f"ck{i}" for i in range(m)],
            "family": ["a", "b", "c"] * 8,
            "mean": 2.0 - 0.3 * quality + rng.normal(scale=0.1, size=m),
            "p50": 1.0 - 0.1 * quality + rng.normal(scale=0.2, size=m),
            "p95": 6.0 + rng.normal(scale=0.5, size=m),
            "acc": 0.5 + 0.1 * quality,
        }
    )
    return t


def brute_select(t, s, task, higher):
    best_i = None
    for i in range(len(t)):  # strict < keeps the first of tied minima
        if best_i is None or t[s].iloc[i] < t[s].iloc[best_i]:
            best_i = i
    task_vals = t[task].tolist()
    best_task = max(task_vals) if higher else min(task_vals)
    picked = task_vals[best_i]
    return t["checkpoint"].iloc[best_i], (best_task - picked) if higher else (picked - best_task)


@pytest.mark.parametrize("higher", [True, False])
def test_select_matches_brute_force(table, higher):
    out = select(table, ["mean", "p50", "p95"], task="acc", higher_is_better=higher)
    assert out["rule"].tolist() == ["best by mean", "best by p50", "best by p95", "best by task"]
    for _, row in out.iloc[:3].iterrows():
        s = row["rule"].removeprefix("best by ")
        name, regret = brute_select(table, s, "acc", higher)
        assert row["checkpoint"] == name
        assert row["regret"] == pytest.approx(regret, abs=1e-15)
        picked = table[table.checkpoint == name].iloc[0]
        assert row["task"] == picked["acc"] and row[s] == picked[s]
    assert (out["regret"] >= 0).all()
    assert out["regret"].iloc[-1] == 0


def test_select_ties_go_to_first_and_nan_is_skipped():
    t = pd.DataFrame({"mean": [np.nan, 1.0, 1.0, 2.0], "p50": [np.nan] * 4}, index=["w", "x", "y", "z"])
    out = select(t, ["mean", "p50"])
    assert out["checkpoint"].iloc[0] == "x" and pd.isna(out["checkpoint"].iloc[1])
    assert "regret" not in out.columns
    assert math.isnan(out["mean"].iloc[1])


def test_select_task_as_sequence(table):
    a = select(table, ["mean"], task="acc")
    b = select(table, ["mean"], task=table["acc"].to_numpy())
    pd.testing.assert_frame_equal(a, b)


def test_agreement_matches_scipy(table):
    out = agreement(table, "acc", ["mean", "p50", "p95"], groups="family")
    assert out["group"].tolist() == ["all"] * 3 + ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    for _, row in out.iterrows():
        sub = table if row["group"] == "all" else table[table.family == row["group"]]
        pr = stats.pearsonr(sub[row["summary"]], sub["acc"])
        sr = stats.spearmanr(sub[row["summary"]], sub["acc"])
        assert row["n"] == len(sub)
        assert row["pearson_r"] == pytest.approx(pr.statistic, abs=1e-12)
        assert row["pearson_p"] == pytest.approx(pr.pvalue, rel=1e-9)
        assert row["spearman_rho"] == pytest.approx(sr.statistic, abs=1e-12)
        assert row["spearman_p"] == pytest.approx(sr.pvalue, rel=1e-9)
        assert row["agreement"] == pytest.approx(-sr.statistic, abs=1e-12)
    # Lower CE goes with higher accuracy in this table: mean agrees best overall.
    best = out[out.best]
    assert best["group"].tolist() == ["all", "a", "b", "c"]
    assert best[best.group == "all"]["summary"].item() == "mean"


def test_agreement_lower_is_better_task_flips_sign(table):
    t = table.assign(err=1 - table["acc"])
    hi = agreement(t, "acc", ["mean"])
    lo = agreement(t, "err", ["mean"], higher_is_better=False)
    assert lo["agreement"].item() == pytest.approx(hi["agreement"].item())
    assert lo["spearman_rho"].item() == pytest.approx(-hi["spearman_rho"].item())


def test_agreement_notes_and_no_scipy_warnings():
    t = pd.DataFrame(
        {
            "mean": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "p50": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            "acc": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            "flat": [0.3] * 6,
            "g": ["x", "x", "y", "y", "y", "y"],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = agreement(t, "acc", ["mean", "p50"], groups="g")
        b = agreement(t, "flat", ["mean"])
    notes = dict(zip(zip(a.group, a.summary), a.note))
    assert notes[("all", "p50")] == "constant summary"
    assert notes[("x", "mean")] == "n < 3"
    assert notes[("all", "mean")] == ""
    assert b["note"].item() == "constant task"
    assert math.isnan(b["pearson_r"].item())


def test_agreement_nan_rows_left_out():
    t = pd.DataFrame({"mean": [1.0, 2.0, np.nan, 4.0, 5.0], "acc": [0.5, 0.4, 0.3, np.nan, 0.1]})
    row = agreement(t, "acc", ["mean"]).iloc[0]
    assert row["n"] == 3
    assert row["pearson_r"] == pytest.approx(stats.pearsonr([1.0, 2.0, 5.0], [0.5, 0.4, 0.1]).statistic)


def test_agreement_default_summaries_present_in_table(table):
    out = agreement(table, "acc")
    assert out["summary"].tolist() == ["mean", "p50", "p95"]


def test_agreement_groups_as_mapping(table):
    groups = dict(zip(table.checkpoint, table.family))
    a = agreement(table, "acc", ["mean"], groups=groups)
    b = agreement(table, "acc", ["mean"], groups="family")
    pd.testing.assert_frame_equal(a, b)


def test_agreement_summaries_list():
    s = agreement_summaries()
    assert s == ["mean"] + [f"p{q}" for q in range(5, 100, 5)] + ["p99"]


def test_best_summary_skips_all_nan_groups():
    a = pd.DataFrame(
        {"group": ["all", "all", "g", "g"], "summary": ["mean", "p50", "mean", "p50"],
         "agreement": [0.2, 0.2, np.nan, np.nan]}
    )
    b = best_summary(a)
    assert b[["group", "summary"]].values.tolist() == [["all", "mean"]]


@pytest.mark.parametrize(
    "call, msg",
    [
        (lambda t: select(t, ["p99"]), "table has no column p99 (columns: checkpoint, family, mean, p50, p95, acc)"),
        (lambda t: select(t, ["mean"], task="bleu"), "task column 'bleu' not found"),
        (lambda t: agreement(t, [1.0, 2.0], ["mean"]), "task must have one value per checkpoint (24), got shape (2,)"),
        (lambda t: agreement(t, "acc", ["mean"], groups="fam"), "groups column 'fam' not found"),
        (lambda t: agreement(t, "acc", ["mean"], groups={"ck0": "a"}), "groups has no group for checkpoint(s) ck1"),
    ],
)
def test_errors(table, call, msg):
    with pytest.raises(UsageError) as exc:
        call(table)
    assert str(exc.value).startswith(msg)
