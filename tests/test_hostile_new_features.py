"""A hostile new user of KL, position/ctx and streamed units (issue 23's standard): one line, exit code 2, never a traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .cli import run, run_json
from .helpers import make_store


def test_a_second_reference_is_refused_not_dropped(tiny_ckpt, text_jsonl, tmp_path):
    # Click kept the last --reference given: the run scored against one of the two without a word
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", tmp_path / "out", "--reference", "/r/one", "--reference", "/r/two", "-q")
    assert r.exit_code == 2 and r.stderr.strip() == (
        "Error: --reference is given 2 times ('/r/one', '/r/two'); a run scores every checkpoint against one reference model: "
        "score once per reference, into separate score directories"
    ), r.output
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two checkpoints of 50 three-target documents."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("tiny") / "out"
    doc = np.repeat(np.arange(50), 3)
    for k, ck in enumerate(("a", "b")):
        make_store(root, ck, rng.gamma(2, 1, doc.size), doc, step=k + 1)
    return root


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ("99999999999999999999999", "Error: --position-edges: edges must be at most 2,147,483,647 (a position is a 32-bit integer), got 99999999999999999999999"),
        ("3000000000", "Error: --position-edges: edges must be at most 2,147,483,647 (a position is a 32-bit integer), got 3000000000"),
        ("1,,2", "Error: --position-edges: expected whole numbers separated by commas (e.g. 1024,4096), got '1,,2'"),
        ("1,2,", "Error: --position-edges: expected whole numbers separated by commas (e.g. 1024,4096), got '1,2,'"),
    ],
)
def test_malformed_position_edges_are_one_line(tiny, edges, message):
    # a huge edge was an OverflowError traceback (numpy int64); an empty item was silently dropped
    r = run("summary", tiny, "-c", "a", "--by", "position", "--position-edges", edges)
    assert r.exit_code == 2 and r.output.strip() == message, r.output


def _divergence(rng, n, kl=None):
    return {"kl": rng.lognormal(-4, 2, n) if kl is None else kl, "dp": rng.normal(0, 0.05, n).clip(-1, 1), "same_top1": (rng.random(n) < 0.9).astype(np.int8)}


@pytest.fixture(scope="module")
def two_references(tmp_path_factory):
    """'a' scored against the default reference, 'b' against /other."""
    rng = np.random.default_rng(1)
    root = tmp_path_factory.mktemp("refs") / "out"
    doc = np.repeat(np.arange(10), 30)
    make_store(root, "a", rng.gamma(2, 1, doc.size), doc, divergence=_divergence(rng, doc.size))
    make_store(root, "b", rng.gamma(2, 1, doc.size), doc, divergence=_divergence(rng, doc.size), reference={"path": "/other", "fingerprint": "q" * 64})
    return root


@pytest.mark.parametrize("stream", ["0", None])
def test_summary_of_two_references_says_which_row_is_from_which(two_references, stream):
    # the note listed both references without saying which checkpoint was taken from which
    r = run("summary", two_references, "--value", "kl", "--format", "json", env={"PCTCE_STREAM_ABOVE": stream} if stream else None)
    assert r.exit_code == 0, r.output
    [note] = [n for n in json.loads(r.stdout)["notes"] if n.startswith("KL of each model")]
    assert note.startswith("KL of each model from different references ('a' from /checkpoints/reference, 'b' from /other; not comparable with each other): ")


def test_plot_title_of_two_references():
    from types import SimpleNamespace

    from pctce_cli.plot.divergence import divergence_title

    cks = [SimpleNamespace(manifest=SimpleNamespace(reference={"path": p})) for p in ("/r/one", "/r/two")]
    # was "from the reference 2 references"
    assert divergence_title("ecdf", cks, "2 checkpoints").endswith("from 2 different references (not comparable with each other)")


def test_an_empty_reference_is_refused(tiny_ckpt, text_jsonl, tmp_path):
    # '' was dropped: the run went on without a reference (or skipped the checkpoint) without a word
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", tmp_path / "out", "--reference", "", "--quiet")
    assert r.exit_code == 2 and r.stderr.strip() == "Error: --reference must name one checkpoint (a directory, PEFT adapter or Hub id), got ''", r.output


@pytest.fixture(scope="module")
def short_reference(tmp_path_factory, tiny_tokenizer):
    """A reference of context 16 with the tiny checkpoints' tokenizer."""
    from pctce_cli.testing import make_gpt2

    path = tmp_path_factory.mktemp("ref") / "short"
    make_gpt2(path, tokenizer=tiny_tokenizer, seed=3, n_positions=16)
    return path


@pytest.mark.slow
def test_a_reference_with_a_shorter_context_is_named(tiny_ckpt, short_reference, text_jsonl, tmp_path):
    # was an IndexError traceback from the reference's position embedding
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", tmp_path / "out", "--reference", short_reference, "--quiet")
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: tiny: its windows of --max-length 64 tokens exceed the context of the reference ({short_reference}: 16 tokens), "
        "which reads the same windows; pass --max-length 16 or less"
    )
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", tmp_path / "out", "--reference", short_reference, "--max-length", "16", "--quiet")
    assert r.exit_code == 0, r.output


@pytest.mark.slow
def test_score_model_with_a_reference_of_shorter_context(tiny_ckpt, short_reference, tiny_tokenizer):
    from transformers import AutoModelForCausalLM

    from pctce_cli.api import score_model
    from pctce_cli.errors import UsageError

    model, ref = AutoModelForCausalLM.from_pretrained(tiny_ckpt), AutoModelForCausalLM.from_pretrained(short_reference)
    with pytest.raises(UsageError) as e:
        score_model(model, tiny_tokenizer, ["hello world " * 30], reference=ref)
    assert str(e.value) == "reference: its context (16 tokens) is shorter than the windows (max_length 64), which it reads too; pass max_length 16 or less"
    assert score_model(model, tiny_tokenizer, ["hello world " * 30], reference=ref, max_length=16).kl.min() >= 0


@pytest.fixture(scope="module")
def kl_store(tmp_path_factory):
    """Two checkpoints with divergence columns: 4 documents of 200 targets."""
    rng = np.random.default_rng(2)
    root = tmp_path_factory.mktemp("kl") / "out"
    doc = np.repeat(np.arange(4), 200)
    divs = {}
    for k, ck in enumerate(("a", "b")):
        divs[ck] = _divergence(rng, doc.size)
        make_store(root, ck, rng.gamma(2, 1, doc.size), doc, divergence=divs[ck], step=k + 1)
    return root, doc, divs


@pytest.mark.parametrize("stream", ["0", None])
@pytest.mark.parametrize(("value", "by", "what"), [("kl", "position", "KL"), ("dp", "ctx", "Δp")])
def test_summary_of_a_divergence_by_position_is_refused_not_ce(kl_store, value, by, what, stream):
    # printed the CE rows by position under --value kl|dp, without a word
    r = run("summary", kl_store[0], "--value", value, "--by", by, env={"PCTCE_STREAM_ABOVE": stream} if stream else None)
    assert r.exit_code == 2 and r.output.strip() == (
        f"Error: --value {value} with --by {by}: the rows per {by} bucket are of CE only; for {what} per bucket, compare two checkpoints "
        f"('pctce compare A B --value {value} --by {by}'); per subset, use --by FIELD"
    ), r.output


def test_compare_kl_by_position_matches_numpy(kl_store):
    root, doc, divs = kl_store
    pos = np.arange(doc.size) - np.repeat(np.arange(4) * 200, 200)
    rows = run_json("compare", f"{root}:a", f"{root}:b", "--value", "kl", "--by", "position", "--position-edges", "64,128", "--top", "0")
    [table] = [v for k, v in rows.items() if k.startswith("b − a by position")]
    for label, keep in (("0–63", pos < 64), ("64–127", (pos >= 64) & (pos < 128)), ("128+", pos >= 128)):
        got = {r["summary"]: r for r in table if r["subset"] == label}
        assert got, (label, sorted({r["subset"] for r in table}))
        a, b = (divs[c]["kl"].astype(np.float32).astype(np.float64)[keep] for c in ("a", "b"))
        assert got["mean"]["Δ"] == pytest.approx(b.mean() - a.mean(), rel=1e-6, abs=1e-12)
        assert got["p50"]["Δ"] == pytest.approx(np.percentile(b, 50) - np.percentile(a, 50), rel=1e-6, abs=1e-12)


def _row(ck, mean, p50, p999, same=0.9):
    return {"checkpoint": ck, "mean": mean, "p50": p50, "p99.9": p999, "same_top1": same}


def test_kl_finding_of_a_model_against_itself_has_no_infinite_tail():
    from pctce_cli.report.findings import kl_finding

    # a checkpoint equal to its reference (KL 0 everywhere) was "×inf its median" and the "heaviest KL tail"
    text = kl_finding([_row("same", 0.0, 0.0, 0.0, 1.0), _row("b", 0.013, 0.0125, 0.0158)], "m/a").text
    assert text == (
        "Closest to the reference m/a by mean KL: same (0.000 nats; p50 0.000, p99.9 0.000; the median is 0, so no tail ratio; "
        "same top token on 100.0% of targets). Farthest: b (mean KL 0.013 nats). Heaviest KL tail relative to its median: b (p99.9 / p50 ×1.3)."
    )


def test_kl_finding_of_tied_checkpoints_and_huge_values():
    from pctce_cli.report.findings import kl_finding

    # two all-zero checkpoints: "Closest: a … Farthest: a"
    assert kl_finding([_row("a", 0.0, 0.0, 0.0), _row("b", 0.0, 0.0, 0.0)], "r").text == "All 2 checkpoints are as close to the reference r by mean KL: 0.000 nats."
    # KL of 1e36 nats printed with 37 digits
    text = kl_finding([_row("a", 3.33e27, 0.0, 7.01e29), _row("b", 1e36, 0.019, 2.1e38)], "r").text
    assert "a (3.33e+27 nats; p50 0.000, p99.9 7.01e+29; the median is 0" in text and "Farthest: b (mean KL 1e+36 nats)" in text and "(p99.9 / p50 ×1.11e+40)" in text


def test_report_ranks_kl_only_within_one_reference(two_references):
    from types import SimpleNamespace

    from pctce_cli.report.divergence import KLMeasured, divergence_findings

    cks = [SimpleNamespace(manifest=SimpleNamespace(reference={"path": p})) for p in ("/r/one", "/other")]
    kl = KLMeasured(cks, rows=[_row("a", 0.1, 0.05, 0.5), _row("b", 0.2, 0.1, 1.0)])
    # was one ranking over both ("Closest to the reference //other, r/one … Farthest: b")
    assert [f.text.split(":")[0] for f in divergence_findings(kl)] == ["Closest to the reference other by mean KL", "Closest to the reference r/one by mean KL"]
    assert all("Farthest" not in f.text for f in divergence_findings(kl))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("same_top1 >= 1.5", "Error: --rule 'same_top1 >= 1.5': a same_top1 limit must be between 0 and 1 (a fraction of targets), got 1.5"),
        ("p99 kl <= -1", "Error: --rule 'p99 kl <= -1': a kl limit must be at least 0 (KL is never negative), got -1"),
        ("p50 dp <= 3", "Error: --rule 'p50 dp <= 3': a dp limit must be between -1 and 1 (a difference of two probabilities), got 3"),
    ],
)
def test_gate_limit_outside_what_it_limits_is_refused(kl_store, rule, message):
    # was accepted: a rule that can never pass (exit 1 for every candidate) or never fail
    r = run("gate", kl_store[0], "--candidate", "b", "--rule", rule)
    assert r.exit_code == 2 and r.output.strip() == message, r.output


def test_gate_policy_limit_outside_what_it_limits_is_refused(kl_store, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('[[rule]]\nsummary = "p99"\nvalue = "kl"\nat_most = -0.5\n')
    r = run("gate", kl_store[0], "--candidate", "b", "--policy", policy)
    assert r.exit_code == 2 and r.output.strip() == f"Error: {policy}:1: a kl limit must be at least 0 (KL is never negative), got -0.5", r.output


def test_kl_trajectory_takes_p100_as_the_max():
    from pctce_cli.plot.divergence import kl_summary_names

    # 'p100' was accepted here, then refused by the figure: "no summary 'p100' for the selected checkpoints"
    assert kl_summary_names("p100,p50,max,p50") == ["max", "p50"]


@pytest.mark.slow
def test_plot_kl_trajectory_with_p100(kl_store, tmp_path):
    r = run("plot", "trajectory", kl_store[0], "--value", "kl", "--summaries", "p100,p50", "--out", tmp_path / "kl.svg")
    assert r.exit_code == 0 and (tmp_path / "kl.svg").stat().st_size > 0, r.output


def test_select_kl_says_when_checkpoints_tie(tmp_path):
    # two checkpoints equal to the reference (KL 0 everywhere): 'best by mean: a' with nothing saying b is as close
    doc = np.repeat(np.arange(4), 10)
    rng = np.random.default_rng(3)
    for ck in ("a", "b"):
        make_store(tmp_path / "out", ck, rng.gamma(2, 1, doc.size), doc, divergence=_divergence(rng, doc.size, kl=np.zeros(doc.size)))
    got = run_json("select", tmp_path / "out", "--value", "kl")
    assert "2 checkpoints tie at the lowest mean, p50, p90, p95, p99, p99.9 (a, b): best by each picks the first in table order, a." in got["notes"]
