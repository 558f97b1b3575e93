"""`score_model(..., reference=…)`: the divergence from a reference model in the Python API, against the CLI's store."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pctce_cli import api
from pctce_cli.errors import UsageError
from pctce_cli.stats.units import word_ce
from pctce_cli.store import load_scores

from .cli import run, run_json, section
from .conftest import TEXTS

DIV = ("kl", "dp", "same_top1")


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_tokenizer):
    from pctce_cli.testing import make_gpt2

    base = tmp_path_factory.mktemp("apiref")
    (ma, _), (mb, _) = make_gpt2(base / "a", tokenizer=tiny_tokenizer, seed=0), make_gpt2(base / "b", tokenizer=tiny_tokenizer, seed=7)
    data = base / "val.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    return base, ma.float().eval(), mb.float().eval(), data


def test_a_model_against_itself_gives_zero_and_agrees_everywhere(models, tiny_tokenizer):
    _, ma, _, _ = models
    res = api.score_model(ma, tiny_tokenizer, TEXTS[:3], reference=ma)
    assert len(res.kl) == len(res.ce) > 0
    assert res.kl.tolist() == [0.0] * len(res) and res.dp.tolist() == [0.0] * len(res) and res.same_top1.tolist() == [1] * len(res)
    assert res.kl.dtype == np.float32 and res.same_top1.dtype == np.int8
    assert res.identity["reference"] == res.identity["weights"]  # the same weights, the same fingerprint
    row = res.summary(value="kl")
    assert row["mean"] == 0.0 and row["max"] == 0.0 and row["same_top1"] == 1.0 and row["targets"] == len(res)


def test_without_reference_nothing_changes_and_kl_is_refused(models, tiny_tokenizer):
    _, ma, mb, _ = models
    plain = api.score_model(mb, tiny_tokenizer, TEXTS[:3])
    with_ref = api.score_model(mb, tiny_tokenizer, TEXTS[:3], reference=ma)
    assert plain.kl is None and "reference" not in plain.identity
    assert np.array_equal(plain.ce, with_ref.ce) and np.array_equal(plain.rank, with_ref.rank)  # CE unchanged by the reference
    with pytest.raises(UsageError) as e:
        plain.summary(value="kl")
    assert str(e.value) == "value kl: these scores were made without a reference model; pass reference to score_model"
    with pytest.raises(UsageError) as e:
        with_ref.summary(value="dp", unit="word")
    assert str(e.value) == "value dp with unit word: Δp has no word form; use unit token"


@pytest.mark.slow
def test_api_kl_equals_the_cli_store_and_to_store_keeps_it(models, tiny_tokenizer, tmp_path):
    """The same tiny models, the same data and options: the API's kl, dp, same_top1 equal the CLI store's to 1e-6 (float32 forwards)."""
    base, ma, mb, data = models
    out = tmp_path / "cli"
    r = run("score", base / "b", "--data", data, "--out", out, "--reference", base / "a", "--quiet")
    assert r.exit_code == 0, r.output
    cli = load_scores(out, "b", columns=("doc", "pos", "ce", *DIV))
    res = api.score_model(mb, tiny_tokenizer, str(data), reference=ma)
    assert np.array_equal(res.doc, cli.doc) and np.array_equal(res.pos, cli.pos)
    np.testing.assert_allclose(res.kl, cli.kl, atol=1e-6, rtol=0)
    np.testing.assert_allclose(res.dp, cli.dp, atol=1e-6, rtol=0)
    assert np.array_equal(res.same_top1, cli.same_top1)
    assert res.kl.min() > 0 and 0 < res.same_top1.mean() < 1
    # written by the API, read by the CLI: the columns, the manifest's reference, the same summary row
    assert res.to_store(tmp_path / "api", "b-api") == "written"
    back = load_scores(tmp_path / "api", "b-api", columns=("doc", *DIV))
    for col in DIV:
        assert np.array_equal(getattr(back, col), getattr(res, col)), col
    assert back.manifest.reference["fingerprint"] == res.identity["reference"] == api.model_fingerprint(ma)
    [row] = section(run_json("summary", tmp_path / "api", "--value", "kl"), "Per-token KL")
    want = res.summary(value="kl")
    for name in ("targets", "documents", "mean", "p50", "p99.9", "max", "same_top1"):
        assert row[name] == pytest.approx(want[name], rel=1e-12), name
    # compare per word: a word's KL is the sum of its tokens', paired word by word against the same reference
    same = api.score_model(ma, tiny_tokenizer, str(data), reference=ma)
    assert same.to_store(tmp_path / "api", "a-api") == "written"
    got = run_json("compare", tmp_path / "api:a-api", tmp_path / "api:b-api", "--value", "kl", "--unit", "word", "--bootstrap", "20", "--top", "0")
    [mean] = [r for r in section(got, "b-api − a-api") if r["summary"] == "mean"]
    words = word_ce(res.kl, res.doc, res.word)[0]
    assert mean["baseline"] == 0.0 and mean["candidate"] == pytest.approx(words.mean(), rel=1e-9) and mean["Δ"] == pytest.approx(words.mean(), rel=1e-9)
    assert res.summary(value="kl", unit="word")["words"] == len(words)


def test_a_reference_with_another_vocabulary_is_refused(tmp_path, models, tiny_tokenizer):
    from pctce_cli.testing import make_gpt2

    _, ma, _, _ = models
    other, _ = make_gpt2(tmp_path / "other", vocab_size=300, seed=1)
    with pytest.raises(UsageError) as e:
        api.score_model(ma, tiny_tokenizer, TEXTS[:1], reference=other.float())
    assert str(e.value) == "reference: its output layer has 300 entries, the model's 320; KL needs the same vocabulary"
