"""`pctce score --reference`: kl, dp and same_top1 per target, through the engine, the store and the CLI (docs/definitions.md, divergence)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from pctce_cli.data import Document
from pctce_cli.scoring.divergence import paired_chunks
from pctce_cli.scoring.engine import UniformAdapter, score_documents
from pctce_cli.store import load_scores

from .cli import run, run_json, section
from .conftest import TEXTS

DIV = ("ce", "kl", "dp", "same_top1")


def _doc(i, n, seed=0):
    ids = np.random.default_rng(seed + i).integers(0, 50, n)
    return Document(i, ids, np.r_[False, np.ones(n - 1, bool)], 1, 0, 0, "x")


class RampAdapter(UniformAdapter):
    """Analytic logits: token v gets logit ``slope * v`` at every position, in chunks of ``chunk`` rows."""

    def __init__(self, vocab_size, slope, chunk=5):
        super().__init__(vocab_size, chunk)
        self.slope = slope

    def logits_chunks(self, input_ids, attention_mask, rows, cols):
        ramp = self.slope * torch.arange(self.vocab_size, dtype=torch.float32)
        buf = torch.empty(self.chunk, self.vocab_size)  # one reused buffer, as HFAdapter's fast path
        for s in range(0, len(rows), self.chunk):
            n = len(rows[s : s + self.chunk])
            buf[:n] = ramp
            yield buf[:n]


def test_uniform_against_uniform_is_zero_with_different_chunking():
    docs = [_doc(0, 30), _doc(1, 11)]
    s = score_documents(UniformAdapter(50, chunk=7), docs, max_length=8, stride=3, batch_tokens=20, reference=UniformAdapter(50, chunk=4))
    assert len(s.kl) == len(s.ce) == 39
    assert s.kl.tolist() == [0.0] * 39 and s.dp.tolist() == [0.0] * 39 and s.same_top1.tolist() == [1] * 39
    assert s.kl.dtype == np.float32 and s.dp.dtype == np.float32 and s.same_top1.dtype == np.int8


def test_analytic_divergence_of_a_ramp_from_uniform():
    v, slope = 50, 0.1
    docs = [_doc(0, 25)]
    s = score_documents(RampAdapter(v, slope, chunk=6), docs, max_length=8, stride=3, batch_tokens=20, reference=UniformAdapter(v, chunk=4))
    lp = slope * np.arange(v) - np.log(np.exp(slope * np.arange(v)).sum())  # float64 log p_cand
    want_kl = -np.log(v) - lp.mean()  # KL(uniform ‖ p) = Σ (1/V)(ln 1/V − ln p)
    np.testing.assert_allclose(s.kl, want_kl, rtol=1e-6)
    np.testing.assert_allclose(s.dp, np.exp(lp[s.token]) - 1 / v, atol=1e-7)
    assert s.same_top1.tolist() == [0] * len(s.kl)  # uniform's argmax is token 0 (the lower id), the ramp's V-1
    plain = score_documents(RampAdapter(v, slope, chunk=6), docs, max_length=8, stride=3, batch_tokens=20)
    assert plain.kl is None and np.array_equal(plain.ce, s.ce) and np.array_equal(plain.rank, s.rank)  # CE unchanged


def test_paired_chunks_refuses_a_different_number_of_rows():
    with pytest.raises(ValueError, match="different numbers of positions"):
        list(paired_chunks(iter([torch.zeros(3, 2)]), iter([torch.zeros(2, 2)])))


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, tiny_tokenizer):
    from pctce_cli.testing import make_gpt2

    base = tmp_path_factory.mktemp("kl")
    (ma, _), (mb, _) = make_gpt2(base / "a", tokenizer=tiny_tokenizer, seed=0), make_gpt2(base / "b", tokenizer=tiny_tokenizer, seed=7)
    return base, ma.float().eval(), mb.float().eval()


def _docs(tok, n=4):
    out = []
    for i, t in enumerate(TEXTS[:n]):
        ids = np.array([tok.bos_token_id, *tok(t)["input_ids"]])
        out.append(Document(i, ids, np.r_[False, np.ones(len(ids) - 1, bool)], 1, 0, 0, "x"))
    return out


def test_two_gpt2s_match_brute_force_kl_div_over_full_logits(two_models, tiny_tokenizer):
    from pctce_cli.scoring.hf import HFAdapter

    _, ref, cand = two_models
    docs = _docs(tiny_tokenizer)
    s = score_documents(HFAdapter(cand), docs, max_length=64, stride=32, batch_tokens=4096, reference=HFAdapter(ref))
    kl, dp, same = [], [], []
    with torch.no_grad():
        for d in docs:  # each document fits one window: full logits, float64, torch's own KL
            ids = torch.from_numpy(d.input_ids)[None]
            lr, lc = ref(ids).logits[0, :-1].double(), cand(ids).logits[0, :-1].double()
            kl.append(torch.nn.functional.kl_div(lc.log_softmax(-1), lr.log_softmax(-1), reduction="none", log_target=True).sum(-1))
            t = ids[0, 1:, None]
            dp.append((lc.softmax(-1).gather(1, t) - lr.softmax(-1).gather(1, t))[:, 0])
            same.append(lr.argmax(-1) == lc.argmax(-1))
    np.testing.assert_allclose(s.kl, torch.cat(kl).numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(s.dp, torch.cat(dp).numpy(), atol=1e-6, rtol=0)
    assert np.array_equal(s.same_top1.astype(bool), torch.cat(same).numpy())
    assert s.kl.min() > 0


def test_chunk_size_and_batch_shape_change_kl_only_by_rounding(two_models, tiny_tokenizer):
    """Batches pad windows differently and chunks cut rows differently: the same values to 1e-5 nats (float32 forward passes)."""
    from pctce_cli.scoring.hf import HFAdapter

    _, ref, cand = two_models
    docs = _docs(tiny_tokenizer, 8)
    a = score_documents(HFAdapter(cand), docs, max_length=16, stride=8, batch_tokens=4096, reference=HFAdapter(ref))
    b = score_documents(HFAdapter(cand, chunk_elements=3 * 320), docs, max_length=16, stride=8, batch_tokens=16, reference=HFAdapter(ref, chunk_elements=5 * 320))
    assert np.array_equal(a.doc, b.doc) and np.array_equal(a.pos, b.pos)
    np.testing.assert_allclose(a.kl, b.kl, atol=1e-5, rtol=0)
    np.testing.assert_allclose(a.dp, b.dp, atol=1e-6, rtol=0)


def _score(*args):
    return run("score", *map(str, args), "--quiet", "--format", "json")


@pytest.mark.slow
def test_cli_model_against_itself_is_zero_and_other_reference_conflicts(two_models, tiny_ckpt, text_jsonl, tmp_path):
    base, _, _ = two_models
    out = tmp_path / "out"
    r = _score(base / "a", base / "b", "--data", text_jsonl, "--out", out, "--reference", base / "a")
    assert r.exit_code == 0, r.stdout
    a, b = (load_scores(out, ck, columns=("doc", *DIV)) for ck in ("a", "b"))
    assert a.kl.tolist() == [0.0] * len(a.kl) and a.dp.tolist() == [0.0] * len(a.kl) and a.same_top1.min() == 1
    assert b.kl.min() > 0 and 0 < b.same_top1.mean() < 1
    ref = b.manifest.reference
    assert ref["path"] == str((base / "a").resolve()) and ref["fingerprint"] == a.manifest.weights_fingerprint
    assert b.manifest["identity"]["reference"] == ref["fingerprint"]
    # the same CE as scoring without a reference, and that run keeps the partition
    plain = tmp_path / "plain"
    assert _score(base / "b", "--data", text_jsonl, "--out", plain).exit_code == 0
    assert np.array_equal(load_scores(plain, "b").ce, b.ce)
    r = _score(base / "b", "--data", text_jsonl, "--out", out)
    assert r.exit_code == 0 and json.loads(r.stdout)[f"Scored into {out}"][0]["status"] == "skipped"
    r = _score(base / "b", "--data", text_jsonl, "--out", out, "--reference", base / "b")
    assert r.exit_code == 2
    fa, fb = a.manifest.weights_fingerprint[:12], b.manifest.weights_fingerprint[:12]
    assert f"b: {out} already holds scores of it made with different reference model ({fa} → {fb}); use --force" in r.stderr
    assert run("verify", str(out)).exit_code == 0
    # per word: the sum of its tokens' KL (docs/definitions.md, divergence)
    from pctce_cli.stats.units import word_ce
    from pctce_cli.store import load_units

    words = word_ce(b.kl, b.doc, load_units(out, "b", "word").word)[0]
    [row] = [r for r in section(run_json("summary", out, "-c", "b", "--value", "kl", "--unit", "word"), "Per-word KL") if r["checkpoint"] == "b"]
    assert row["words"] == len(words) and row["mean"] == pytest.approx(words.astype(np.float64).mean(), rel=1e-6)


@pytest.mark.slow
def test_cli_refuses_a_reference_with_another_tokenizer(two_models, text_jsonl, tmp_path):
    from pctce_cli.testing import make_gpt2

    base, _, _ = two_models
    make_gpt2(tmp_path / "other", vocab_size=300, seed=1)
    r = _score(base / "a", "--data", text_jsonl, "--out", tmp_path / "out", "--reference", tmp_path / "other")
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: a: its tokenizer differs from the reference's ({tmp_path / 'other'}); KL to a reference needs the same "
        "tokenizer, so that both models predict the same targets"
    )
    r = _score(base / "a", "--data", text_jsonl, "--out", tmp_path / "out", "--reference", tmp_path / "missing")
    assert r.exit_code == 2 and "--reference: " in r.stderr


def _subprocess_score(args, fault=None):
    env = {k: v for k, v in os.environ.items() if k != "PCTCE_FAULT"}
    env.update(OMP_NUM_THREADS="1", **({"PCTCE_FAULT": fault} if fault else {}))
    cmd = [sys.executable, "-m", "pctce_cli", "score", *map(str, args), "--shard-targets", "40", "--quiet", "--format", "json"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_a_killed_run_resumes_with_its_kl_columns(two_models, tmp_path):
    base, _, _ = two_models
    data = tmp_path / "val.txt"
    data.write_text("\n\n".join(TEXTS * 2), encoding="utf-8")
    common = [base / "b", "--data", data, "--split-on", "blank-lines", "--reference", base / "a"]
    want = _subprocess_score([*common, "--out", tmp_path / "want"])
    assert want.returncode == 0, want.stderr
    killed = _subprocess_score([*common, "--out", tmp_path / "out"], fault="shard-recorded:2")
    assert killed.returncode == -signal.SIGKILL
    again = _subprocess_score([*common, "--out", tmp_path / "out"])
    assert again.returncode == 0, again.stderr
    w, g = load_scores(tmp_path / "want", "b", columns=("doc", "pos", *DIV)), load_scores(tmp_path / "out", "b", columns=("doc", "pos", *DIV))
    assert len(g.manifest.shards) > 2
    for col in ("doc", "pos", *DIV):
        np.testing.assert_array_equal(getattr(g, col), getattr(w, col))


@pytest.mark.slow
def test_a_peft_adapter_against_its_own_base(tiny_ckpt, tiny_tokenizer, text_jsonl, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_ckpt), LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], init_lora_weights=False))
    path = tmp_path / "lora"
    peft_model.save_pretrained(path)
    cfg = json.loads((path / "adapter_config.json").read_text())
    (path / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": str(tiny_ckpt)}))
    out = tmp_path / "out"
    r = _score(path, tiny_ckpt, "--data", text_jsonl, "--out", out, "--reference", tiny_ckpt)
    assert r.exit_code == 0, r.stdout
    lora, base = load_scores(out, "lora", columns=DIV), load_scores(out, "tiny", columns=DIV)
    assert lora.kl.min() > 0 and lora.manifest["kind"] == "adapter"
    assert base.kl.tolist() == [0.0] * len(base.kl)  # the base was not changed by its adapter (loaded apart)


def test_damaged_divergence_values_are_named(tmp_path):
    from pctce_cli.errors import StoreError
    from pctce_cli.store.read import check_divergence

    with pytest.raises(StoreError, match=r"p1: row 1: kl = -0.5, expected a finite value >= 0"):
        check_divergence([tmp_path / "p0", tmp_path / "p1"], [2, 2], tmp_path, {"kl": np.array([0, 1, 0, -0.5], np.float32)})
    with pytest.raises(StoreError, match=r"p0: row 0: same_top1 = 2, expected 0 or 1"):
        check_divergence([tmp_path / "p0"], [1], tmp_path, {"same_top1": np.array([2], np.int8)})


@pytest.mark.slow
def test_torchrun_with_a_reference_equals_one_process(two_models, tmp_path):
    base, _, _ = two_models
    data = tmp_path / "val.txt"
    data.write_text("\n\n".join(TEXTS * 2), encoding="utf-8")
    common = [str(base / "b"), "--data", str(data), "--split-on", "blank-lines", "--shard-targets", "40", "--quiet", "--reference", str(base / "a")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "pctce_cli", "score"]
    r = subprocess.run(cmd + common + ["--out", str(tmp_path / "ddp")], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    r1 = subprocess.run([sys.executable, "-m", "pctce_cli", "score"] + common + ["--out", str(tmp_path / "one")], capture_output=True, text=True, env=env, timeout=600)
    assert r1.returncode == 0, r1.stderr[-2000:]
    ddp, one = (load_scores(tmp_path / d, "b", columns=("doc", "pos", *DIV)) for d in ("ddp", "one"))
    assert {s["rank"] for s in ddp.manifest["shards"]} == {0, 1} and ddp.manifest.reference == one.manifest.reference
    np.testing.assert_array_equal(ddp.doc, one.doc)
    np.testing.assert_allclose(ddp.kl, one.kl, atol=1e-6)
    np.testing.assert_array_equal(ddp.same_top1, one.same_top1)
