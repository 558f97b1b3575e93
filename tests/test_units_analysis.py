"""Word and byte units in analysis commands (SPEC §8): summaries against brute force, comparability across tokenizers."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from pctce_cli.store import load_units

from .cli import run, run_json
from .units_fixtures import two_tokenizers, write_jsonl

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b",
    "Once upon a time there was a cat, naïve and café-loving.",
    "for i in range(10):\tprint(i)",
    "  All the world's a stage,\n\nand all the men and women merely players.  ",
    "東京 is written 東京; emoji 🎉🎉 too",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory, one_thread):
    """Two checkpoints with different tokenizers (vocabularies 320 and 500) scored on the same data."""
    root = tmp_path_factory.mktemp("units")
    two_tokenizers(root)
    data = write_jsonl(root / "val.jsonl", [{"text": t, "domain": "code" if k in (1, 3) else "prose"} for k, t in enumerate(TEXTS)])
    out = root / "scores"
    r = run("score", root / "small", root / "large", "--data", data, "--out", out, "--quiet", "--max-length", 16, "--subset-field", "domain")
    assert r.exit_code == 0, r.output
    return out


def brute_words(u):
    """Word CEs by a loop over targets: Σ ce per (doc, word), in document then word order."""
    sums: dict[tuple[int, int], float] = {}
    for d, w, c in zip(u.doc.tolist(), u.word.tolist(), u.ce.astype(np.float64).tolist()):
        if w >= 0:
            sums[(d, w)] = sums.get((d, w), 0.0) + c
    return np.array([sums[k] for k in sorted(sums)])


def test_tokens_are_refused_across_tokenizers_but_words_and_bytes_compare(store):
    r = run("summary", store)
    assert r.exit_code == 2
    assert "different tokenizers" in r.output and "--unit word or --unit byte" in r.output
    words = run_json("summary", store, "--unit", "word")["Per-word CE summaries (nats per word)"]
    nbytes = run_json("summary", store, "--unit", "byte")["Per-byte CE summaries (nats per byte)"]
    assert words[0]["targets"] != words[1]["targets"]  # different tokenizations …
    assert words[0]["words"] == words[1]["words"] == sum(len(t.split()) for t in TEXTS)  # … the same words
    assert nbytes[0]["bytes"] == nbytes[1]["bytes"] == sum(len(t.encode("utf-8")) for t in TEXTS)  # … and bytes


def test_word_summaries_equal_a_brute_force_loop(store):
    rows = run_json("summary", store, "--unit", "word", "--percentiles", "10,50,90,99")["Per-word CE summaries (nats per word)"]
    for r in rows:
        u = load_units(store, r["checkpoint"])
        w = brute_words(u)
        assert r["words"] == w.size and r["empty"] == int((u.word < 0).sum())
        assert r["mean"] == pytest.approx(w.mean(), rel=1e-12)
        assert [r["p10"], r["p50"], r["p90"], r["p99"]] == pytest.approx(np.percentile(w, [10, 50, 90, 99]).tolist(), rel=1e-12)
        # SPEC §8: Σ word CE = Σ token CE here (no empty spans), so mean word CE × words =
        # ln(word perplexity) × lm-eval's word count; the counts differ only by the empty
        # strings re.split yields at a text's leading or trailing whitespace (TEXTS[4])
        lm_eval_words = sum(len(re.split(r"\s+", t)) for t in TEXTS)
        assert lm_eval_words == r["words"] + 2
        assert r["mean"] * r["words"] == pytest.approx(math.log(r["word_ppl"]) * lm_eval_words, rel=1e-6)


def test_byte_summaries_equal_the_expanded_distribution(store):
    rows = run_json("summary", store, "--unit", "byte", "--percentiles", "5,50,95")["Per-byte CE summaries (nats per byte)"]
    for r in rows:
        u = load_units(store, r["checkpoint"])
        keep = u.nbytes > 0
        expanded = np.repeat(u.ce[keep] / u.nbytes[keep].astype(np.float32), u.nbytes[keep]).astype(np.float64)
        assert r["bytes"] == expanded.size
        assert [r["p5"], r["p50"], r["p95"]] == pytest.approx(np.percentile(expanded, [5, 50, 95]).tolist(), rel=1e-12)
        assert r["mean"] == pytest.approx(u.ce[keep].astype(np.float64).sum() / expanded.size, rel=1e-12)
        assert r["mean"] == pytest.approx(math.log(r["byte_ppl"]), rel=1e-6)
        assert r["bpb"] == pytest.approx(r["mean"] / math.log(2), rel=1e-6)


def test_concord_select_and_subsets_in_words(store):
    table = run_json("summary", store, "--unit", "word")["Per-word CE summaries (nats per word)"]
    got = run_json("concord", store, "--unit", "word")
    (s_row,) = got["Concordance of S = {mean, p50, p95}"]
    from pctce_cli.stats.concordance import concordance
    import pandas as pd

    t = pd.DataFrame(table)
    assert s_row["C_S"] == concordance(t[["mean", "p50", "p95"]], ["mean", "p50", "p95"]).c
    picks = run_json("select", store, "--unit", "word")["Selection rules (each picks the checkpoint minimizing its summary)"]
    assert next(p for p in picks if p["rule"] == "best by mean")["checkpoint"] == t.loc[t["mean"].idxmin(), "checkpoint"]
    by = run_json("summary", store, "--unit", "word", "--by", "domain")["Per-word CE summaries by domain (nats per word)"]
    for r in by:
        u = load_units(store, r["checkpoint"])
        docs = u.docs.loc[u.docs["domain"] == r["subset"], "doc"].tolist()
        assert r["words"] == sum(len(TEXTS[d].split()) for d in docs)


def test_word_and_byte_intervals_resample_documents(store):
    rows = run_json("summary", store, "--unit", "word", "--ci", "0.9", "--bootstrap", "200", "-c", "small")["Per-word CE summaries (nats per word)"]
    assert rows[0]["mean_lo"] <= rows[0]["mean"] <= rows[0]["mean_hi"]
    rows = run_json("summary", store, "--unit", "byte", "--ci", "0.9", "--bootstrap", "200", "-c", "small")["Per-byte CE summaries (nats per byte)"]
    assert rows[0]["mean_lo"] <= rows[0]["mean"] <= rows[0]["mean_hi"]
    assert rows[0]["p50_lo"] <= rows[0]["p50"] <= rows[0]["p50_hi"]


def test_a_store_without_spans_says_how_to_get_them(tmp_path, tiny_ckpt, text_jsonl, one_thread):
    from pctce_cli.scoring.options import ScoreOptions
    from pctce_cli.scoring.run import score_checkpoints

    out = tmp_path / "old"
    (res,) = score_checkpoints([tiny_ckpt], ScoreOptions(data=[str(text_jsonl)], out=out, max_length=16, units=False))
    assert res.status == "scored"
    assert run("summary", out).exit_code == 0
    r = run("summary", out, "--unit", "word")
    assert r.exit_code == 2
    assert "--unit word: checkpoint 'tiny'" in r.output and "has no byte spans and words" in r.output


def test_shape_in_words_and_bytes(store):
    got = run_json("shape", store, "--unit", "byte", "--edges", "0,2,5,inf", "-c", "small")
    (row,) = got["Mass in CE bands (fraction of bytes)"]
    u = load_units(store, "small")
    keep = u.nbytes > 0
    per_byte = np.repeat(u.ce[keep] / u.nbytes[keep].astype(np.float32), u.nbytes[keep])
    assert row["[0, 2)"] == pytest.approx(float((per_byte < 2).mean()), rel=1e-12)
    assert row["[5, inf)"] == pytest.approx(float((per_byte >= 5).mean()), rel=1e-12)
    words = run_json("shape", store, "--unit", "word", "--edges", "0,10,inf", "-c", "small")
    (wrow,) = words["Mass in CE bands (fraction of words)"]
    assert wrow["[0, 10)"] == pytest.approx(float((brute_words(u) < 10).mean()), rel=1e-12)


def test_compare_pairs_words_across_tokenizers(store):
    r = run("compare", "--store", store, "small", "large")
    assert r.exit_code == 2 and "different tokenizers" in r.output and "pair words or bytes with --unit word or --unit byte" in r.output
    got = run_json("compare", "--store", store, "small", "large", "--unit", "word", "--bootstrap", "200")
    table = next(v for k, v in got.items() if k.startswith("large − small"))
    mean = next(row for row in table if row["summary"] == "mean")
    wa, wb = brute_words(load_units(store, "small")), brute_words(load_units(store, "large"))
    assert (mean["baseline"], mean["candidate"]) == pytest.approx((wa.mean(), wb.mean()), rel=1e-12)
    assert mean["Δ"] == pytest.approx(wb.mean() - wa.mean(), rel=1e-9)
    moved = got["Words whose CE went down / up / stayed (fractions)"][0]
    assert moved["words"] == wa.size and moved["down"] == pytest.approx(float((wb < wa).mean()))


def test_the_documented_example(tmp_path, one_thread):
    """docs/units.md's worked example, rebuilt: its counts exactly, its CE numbers to float round-off."""
    from pctce_cli.testing import make_gpt2, make_tokenizer

    make_gpt2(tmp_path / "ck" / "a", tokenizer=make_tokenizer(320), seed=0)
    make_gpt2(tmp_path / "ck" / "b", tokenizer=make_tokenizer(500), seed=1)
    texts = ["The quick brown fox jumps over the lazy dog.", "def f(x): return x + 1", "Once upon a time there was a cat.", "for i in range(10): print(i)", "All the world's a stage."]
    data = tmp_path / "val.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    out = tmp_path / "scores"
    assert run("score", tmp_path / "ck" / "a", tmp_path / "ck" / "b", "--data", data, "--out", out, "--quiet").exit_code == 0
    doc = (__import__("pathlib").Path(__file__).resolve().parents[1] / "docs" / "units.md").read_text(encoding="utf-8")
    words = run_json("summary", out, "--unit", "word", "--percentiles", "50,95")["Per-word CE summaries (nats per word)"]
    nbytes = run_json("summary", out, "--unit", "byte", "--percentiles", "50,95")["Per-byte CE summaries (nats per byte)"]
    for w, b in zip(words, nbytes):
        assert f"| {w['checkpoint']} | {w['targets']} | {w['words']} | 0 |" in doc
        assert f"| {b['checkpoint']} | {b['targets']} | {b['bytes']} |" in doc
        for value in (w["mean"], w["p50"], w["p95"], b["mean"], b["p50"], b["p95"]):
            # the printed value, within float round-off of the forward pass on another CPU
            assert any(abs(value - float(x)) < 2e-4 for x in _numbers(doc)), value
    for unit in ("word", "byte"):
        got = run_json("compare", "--store", out, "a", "b", "--unit", unit, "--percentiles", "50,95", "--top", "0")
        table = next(v for k, v in got.items() if k.startswith("b − a"))
        printed = [float(x) for x in _numbers(doc)]
        for row in table:  # each printed value, within float round-off of the forward pass on another CPU
            if row["summary"] in ("mean", "p50", "p95"):
                for value in (row["baseline"], row["candidate"], row["Δ"], row["lo"], row["hi"]):
                    assert any(abs(value - x) < 2e-4 for x in printed), (unit, row)


def _numbers(text: str) -> list[str]:
    return re.findall(r"(?<![\w.])-?\d+\.\d{4}(?!\d)", text)


def test_gate_pairs_words_across_tokenizers(store, tmp_path):
    r = run("gate", store, "--baseline", "small", "--rule", "mean:+1%")
    assert r.exit_code == 2 and "different tokenizers" in r.output
    sa = brute_words(load_units(store, "small"))
    sb = brute_words(load_units(store, "large"))
    worse = "large" if sb.mean() > sa.mean() else "small"
    better = "small" if worse == "large" else "large"
    r = run("gate", store, "--baseline", better, "--rule", "mean:+0%", "--unit", "word", "--bootstrap", "200")
    assert r.exit_code == 1, r.output  # the other tokenizer's words cost more on average: the gate fails
    assert "Unit: words" in r.stdout
    policy = tmp_path / "gate.toml"
    policy.write_text(f'baseline = "{worse}"\nunit = "word"\n[[rule]]\nsummary = "mean"\nmax_increase = 0.0\n', encoding="utf-8")
    r = run("gate", store, "--policy", policy, "--bootstrap", "200")
    assert r.exit_code == 0, r.output  # against the worse baseline, the better words pass
    policy.write_text('baseline = "small"\nunit = "bytes"\n', encoding="utf-8")
    r = run("gate", store, "--policy", policy)
    assert r.exit_code == 2 and "unit must be \"token\", \"word\" or \"byte\"" in r.output


def test_tail_lists_the_worst_words_with_both_tokenizations(store):
    got = run_json("tail", "--store", store, "small", "--vs", "large", "--unit", "word", "--top", "5")
    rows = got["Highest-CE words of small (nats per word: the sum of the word's tokens' CE)"]
    wa, wb = brute_words(load_units(store, "small")), brute_words(load_units(store, "large"))
    assert [r["ce"] for r in rows] == pytest.approx(np.sort(wa)[::-1][:5].tolist(), rel=1e-12)
    words = [t.split() for t in TEXTS]
    doc_of = load_units(store, "small")
    for r in rows:
        text = words[r["doc"]][r["word"]]
        assert r["text"] == text.replace("\t", "\\t")  # decoded from the word's tokens together
        for key, ck in (("tokens", "small"), ("tokens vs", "large")):  # each tokenizer's pieces, | between them
            u = load_units(store, ck)
            assert r[key].count("|") + 1 == int(((u.doc == r["doc"]) & (u.word == r["word"])).sum())
        assert r["Δ vs"] == pytest.approx(r["ce vs"] - r["ce"], rel=1e-12)
    assert doc_of is not None and sorted(wb.tolist()) != sorted(wa.tolist())


def test_top1_is_refused_in_words_and_bytes(store):
    for unit in ("word", "byte"):
        r = run("concord", store, "--unit", unit, "--set", "mean,top1")
        assert r.exit_code == 2, r.output
        assert r.output.strip() == f"Error: summary top1 with --unit {unit}: top-1 accuracy is a token summary (a word or byte has no rank); drop it or use --unit token"


def test_shape_ecdf_in_bytes_is_the_ecdf_of_one_value_per_byte(store):
    from pctce_cli.stats.shape import ecdf_points

    got = run_json("shape", store, "--unit", "byte", "--ecdf", "-c", "small")["ECDF points"]
    u = load_units(store, "small")
    keep = u.nbytes > 0
    ref = ecdf_points(np.repeat(u.ce[keep] / u.nbytes[keep].astype(np.float32), u.nbytes[keep]))
    cols = [c for c in ref.columns]
    assert [tuple(r[c] for c in cols) for r in got] == [tuple(v) for v in ref.to_numpy().tolist()]
