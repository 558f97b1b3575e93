"""`pctce compare`: pairing checks (exact messages), paired bootstrap vs a naive loop, verdict lines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pctce_cli.compare import compare_scores, signed, verdict
from pctce_cli.store import load_scores

from .cli import as_json, run, section
from .helpers import docs_of, make_store


@pytest.fixture()
def pair(tmp_path):
    """A baseline and a candidate in one store: 30 documents of varying length and difficulty."""
    rng = np.random.default_rng(1)
    lengths = rng.integers(5, 40, size=30)
    doc = np.repeat(np.arange(30), lengths)
    hard = rng.gamma(2.0, 0.5, size=30)[doc]
    a = rng.gamma(0.8, 2.0, size=len(doc)) * hard
    b = a * rng.lognormal(-0.05, 0.2, size=len(doc))
    n_bytes = rng.integers(20, 200, size=30)
    store = tmp_path / "scores"
    make_store(store, "base", a, doc, n_bytes=n_bytes)
    make_store(store, "cand", b, doc, n_bytes=n_bytes)
    return store


# ---------------------------------------------------------------- refusing to pair


def test_compare_refuses_different_data_with_exact_message(tmp_path):
    doc = docs_of(4, 5)
    make_store(tmp_path / "a", "base", np.ones(20), doc)
    make_store(tmp_path / "b", "cand", np.ones(20), doc, fingerprints={"data": "e" * 64, "documents": "y" * 64})
    r = run("compare", tmp_path / "a", tmp_path / "b")
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        "Error: cannot pair 'base' with 'cand': they were scored on different validation data "
        "(data fingerprints dddddddd vs eeeeeeee); a paired comparison needs both scored on the same data "
        "with the same tokenizer and settings"
    )


def test_compare_refuses_different_tokenizers_and_target_settings(tmp_path):
    doc = docs_of(4, 5)
    make_store(tmp_path / "s", "base", np.ones(20), doc)
    make_store(tmp_path / "s", "tok", np.ones(20), doc, fingerprints={"tokenizer": "u" * 64})
    make_store(tmp_path / "s", "pre", np.ones(20), doc, fingerprints={"documents": "y" * 64}, settings={"prefix": "none"})
    r = run("compare", f"{tmp_path / 's'}:base", f"{tmp_path / 's'}:tok")
    assert r.exit_code == 2 and "they were scored on different tokenizers (tokenizer fingerprints tttttttt vs uuuuuuuu)" in r.stderr
    r = run("compare", "base", "pre", "--store", tmp_path / "s")
    assert r.exit_code == 2
    assert "they were scored on different targets (prefix 'auto' vs 'none')" in r.stderr


def test_compare_refuses_misaligned_arrays_even_with_equal_fingerprints(tmp_path):
    doc = docs_of(4, 5)
    token = (doc * 7 + np.tile(np.arange(5), 4)) % 300
    token2 = token.copy()
    token2[7] += 1
    make_store(tmp_path / "s", "base", np.ones(20), doc, token=token)
    make_store(tmp_path / "s", "cand", np.ones(20), doc, token=token2)
    r = run("compare", "base", "cand", "--store", tmp_path / "s")
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        "Error: cannot pair 'base' with 'cand': target 7 is document 1 position 2 token 9 in 'base' but "
        "document 1 position 2 token 10 in 'cand'; rescore one of them with pctce score --force"
    )
    make_store(tmp_path / "t", "short", np.ones(19), doc[:19])
    r = run("compare", f"{tmp_path / 's'}:base", tmp_path / "t")
    assert r.exit_code == 2 and "they hold 20 and 19 targets" in r.stderr


def test_checkpoint_arguments_and_their_errors(pair, tmp_path):
    r = run("compare", pair, f"{pair}:cand")
    assert r.exit_code == 2
    assert r.stderr.strip() == f"Error: BASELINE: {pair} holds 2 checkpoints (base, cand); name one as {pair}:ID"
    r = run("compare", tmp_path / "nowhere", f"{pair}:cand")
    assert r.exit_code == 2 and "Error: BASELINE: score directory not found:" in r.stderr
    r = run("compare", f"{pair}:base", f"{pair}:nope")
    assert r.exit_code == 2 and r.stderr.strip() == f"Error: no checkpoint 'nope' in {pair}"
    r = run("compare", "base", "base", "--store", pair)
    assert r.exit_code == 2 and "same checkpoint" in r.stderr
    # DIR:ID, a partition directory, and ids with --store name the same checkpoints
    a = as_json(run("compare", f"{pair}:base", f"{pair}:cand", "--bootstrap", "50", "-f", "json"))
    b = as_json(run("compare", "base", pair / "checkpoint=cand", "--store", pair, "--bootstrap", "50", "-f", "json"))
    assert a == b


# ---------------------------------------------------------------- statistics


def naive_paired(a, b, doc, n_bytes, names_q, n_boot, ci, seed):
    """Resample documents with the same RNG draws, rebuild the arrays, recompute every summary."""
    ids = np.unique(doc)
    per_a = [a[doc == i].astype(np.float64) for i in ids]
    per_b = [b[doc == i].astype(np.float64) for i in ids]
    rng = np.random.default_rng(seed)
    reps = {k: [] for k in [*names_q, "mean", "iqr", "bpb"]}
    for _ in range(n_boot):
        pick = rng.integers(0, len(ids), size=len(ids))
        xa = np.concatenate([per_a[j] for j in pick])
        xb = np.concatenate([per_b[j] for j in pick])
        nb = float(np.sum(n_bytes[pick]))
        reps["mean"].append(xb.mean() - xa.mean())
        for name, q in names_q.items():
            reps[name].append(np.percentile(xb, q) - np.percentile(xa, q))
        iqr = lambda x: np.percentile(x, 75) - np.percentile(x, 25)  # noqa: E731
        reps["iqr"].append(iqr(xb) - iqr(xa))
        reps["bpb"].append((xb.sum() - xa.sum()) / nb / math.log(2))
    tail = (1 - ci) / 2
    return {k: tuple(np.percentile(v, [100 * tail, 100 * (1 - tail)])) for k, v in reps.items()}


def test_paired_bootstrap_matches_a_naive_implementation(pair):
    sa, sb = load_scores(pair, "base"), load_scores(pair, "cand")
    n_bytes = sa.docs.set_index("doc")["n_bytes"].sort_index().to_numpy()
    c = compare_scores(sa, sb, "base", "cand", percentiles=[50, 90], ci=0.9, n_boot=200, seed=7)
    want = naive_paired(sa.ce, sb.ce, sa.doc, n_bytes, {"p50": 50, "p90": 90}, 200, 0.9, 7)
    assert list(c.stats) == ["mean", "p50", "p90", "iqr", "bpb"]
    for name, (lo, hi) in want.items():
        assert c.stats[name]["lo"] == pytest.approx(lo, abs=1e-9), name
        assert c.stats[name]["hi"] == pytest.approx(hi, abs=1e-9), name
    a64, b64 = sa.ce.astype(np.float64), sb.ce.astype(np.float64)
    assert c.stats["mean"]["delta"] == pytest.approx(b64.mean() - a64.mean(), abs=1e-12)
    assert c.stats["p90"]["delta"] == pytest.approx(np.percentile(b64, 90) - np.percentile(a64, 90), abs=1e-12)
    assert c.stats["bpb"]["delta"] == pytest.approx((b64.sum() - a64.sum()) / n_bytes.sum() / math.log(2), abs=1e-12)
    d = b64 - a64
    assert c.targets == {
        "targets": len(d),
        "down": np.mean(d < 0),
        "up": np.mean(d > 0),
        "unchanged": np.mean(d == 0),
    }


def test_moved_documents_are_ranked_by_delta_nll_and_delta_mean(pair):
    sa, sb = load_scores(pair, "base"), load_scores(pair, "cand")
    obj = as_json(run("compare", "base", "cand", "--store", pair, "--bootstrap", "20", "--top", "3", "-f", "json"))
    by_nll = section(obj, "Documents that moved most by Δ summed nll")
    by_mean = section(obj, "Documents that moved most by Δ mean")
    d = sb.ce.astype(np.float64) - sa.ce.astype(np.float64)
    dn = np.bincount(sa.doc, weights=d)
    dm = dn / np.bincount(sa.doc)
    assert [r["doc"] for r in by_nll] == np.argsort(-np.abs(dn), kind="stable")[:3].tolist()
    assert [r["doc"] for r in by_mean] == np.argsort(-np.abs(dm), kind="stable")[:3].tolist()
    assert by_nll[0]["Δ nll"] == pytest.approx(dn[by_nll[0]["doc"]], abs=1e-9)


def test_seed_makes_the_bootstrap_reproducible(pair):
    args = ("compare", "base", "cand", "--store", pair, "--bootstrap", "100", "-f", "json")
    one, two = as_json(run(*args, "--seed", "3")), as_json(run(*args, "--seed", "3"))
    other = as_json(run(*args, "--seed", "4"))
    key = next(k for k in one if k.startswith("cand − base"))
    assert one == two
    assert [r["lo"] for r in one[key]] != [r["lo"] for r in other[key]]
    assert [r["Δ"] for r in one[key]] == [r["Δ"] for r in other[key]]


# ---------------------------------------------------------------- verdict


def test_verdict_when_mean_and_median_move_in_opposite_directions(tmp_path):
    """The bulk gets better while the tail gets much worse: median down, mean up."""
    rng = np.random.default_rng(0)
    doc = docs_of(60, 40)
    a = rng.gamma(0.7, 2.0, size=len(doc))
    cut = np.percentile(a, 85)
    b = np.where(a < cut, a * 0.85, a * 1.8)
    make_store(tmp_path / "s", "teacher", a, doc)
    make_store(tmp_path / "s", "student", b, doc)
    obj = as_json(run("compare", "teacher", "student", "--store", tmp_path / "s", "--bootstrap", "200", "-f", "json"))
    rows = {r["summary"]: r for r in section(obj, "student − teacher")}
    dm, dp = rows["mean"]["Δ"], rows["p50"]["Δ"]
    assert dm > 0 > dp and rows["mean"]["significant"] and rows["p50"]["significant"]
    assert obj["notes"][0] == (
        f"Verdict: mean worse by {signed(dm)}, median better by {signed(dp)}: "
        "the distribution is being reshaped — decide by what your task depends on."
    )
    assert obj["notes"][0].startswith("Verdict: mean worse by +0.")
    assert ", median better by −0." in obj["notes"][0]
    r = run("compare", "teacher", "student", "--store", tmp_path / "s", "--bootstrap", "50")
    assert r.exit_code == 0 and "the distribution is being reshaped" in " ".join(r.stdout.split())


def _s(delta, lo, hi):
    return {"delta": delta, "lo": lo, "hi": hi}


@pytest.mark.parametrize(
    "mean, p50, expected",
    [
        (_s(-0.05, -0.07, -0.03), _s(-0.03, -0.04, -0.02),
         "Verdict: candidate better: mean −0.05 [−0.07, −0.03], median −0.03 [−0.04, −0.02] (both 95% intervals exclude 0)."),
        (_s(0.05, 0.03, 0.07), _s(0.02, 0.01, 0.03),
         "Verdict: candidate worse: mean +0.05 [+0.03, +0.07], median +0.02 [+0.01, +0.03] (both 95% intervals exclude 0)."),
        (_s(0.01, -0.01, 0.03), _s(-0.002, -0.01, 0.005),
         "Verdict: no significant change: mean +0.01 [−0.01, +0.03], median −0.002 [−0.01, +0.005] (both 95% intervals include 0)."),
        (_s(0.05, 0.03, 0.07), _s(-0.03, -0.04, -0.02),
         "Verdict: mean worse by +0.05, median better by −0.03: the distribution is being reshaped — decide by what your task depends on."),
        (_s(-0.05, -0.07, -0.03), _s(-0.01, -0.03, 0.01),
         "Verdict: candidate better on the mean: −0.05 [−0.07, −0.03]; the median change −0.01 [−0.03, +0.01] is within noise."),
    ],
)
def test_verdict_lines(mean, p50, expected):
    assert verdict({"mean": mean, "p50": p50}, 0.95) == [expected]


def test_verdict_names_other_significant_changes():
    lines = verdict({"mean": _s(0.01, -0.01, 0.03), "p50": _s(0.0, -0.01, 0.01), "p99": _s(0.4, 0.2, 0.6)}, 0.9)
    assert lines[1] == "Also changed beyond noise (90% interval excludes 0): p99 +0.4."


def test_different_window_settings_pair_with_a_note(tmp_path):
    doc = docs_of(6, 10)
    ce = np.random.default_rng(2).gamma(1.0, 1.0, size=60)
    make_store(tmp_path / "s", "base", ce, doc)
    make_store(tmp_path / "s", "cand", ce * 0.9, doc, settings={"max_length": 128, "stride": 64})
    r = run("compare", "base", "cand", "--store", tmp_path / "s", "--bootstrap", "20", "-f", "json")
    notes = as_json(r)["notes"]
    assert notes[-1] == (
        "Note: 'base' and 'cand' were scored with different settings (max_length 64 vs 128, stride 32 vs 64); "
        "part of Δ may come from the settings, not the weights."
    )
    assert notes[0].startswith("Verdict: candidate better: mean −")
