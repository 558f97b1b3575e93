"""`score --task-accuracy`: batched greedy decoding equals a slow one-by-one reference."""

from __future__ import annotations

import json

import numpy as np
import torch

from pctce_cli.data import read_records, tokenize_records
from pctce_cli.scoring.generate import greedy_batch
from pctce_cli.scoring.options import ScoreOptions
from pctce_cli.scoring.run import score_checkpoints
from pctce_cli.store import load_scores

QA = [
    ("Question: What is the capital of Zorblandia? Answer:", " Quexville."),
    ("Q: hello", " there"),
    ("To be, or not to be, that is", " the question."),
    ("Once upon a time there was a little cat who liked to", " sleep in the sun."),
    ("The quick brown fox jumps over the", " lazy dog."),
]


def _slow_greedy(model, prompt, n, eos_id):
    ids = torch.tensor([list(prompt)])
    out = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(ids).logits[0, -1].argmax())
            out.append(nxt)
            if nxt == eos_id:
                break
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return out


def _qa_file(tmp_path):
    p = tmp_path / "qa.jsonl"
    p.write_text("".join(json.dumps({"prompt": q, "completion": a}) + "\n" for q, a in QA), encoding="utf-8")
    return p


def test_batched_greedy_equals_one_by_one(tiny_ckpt, tiny_tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt, dtype=torch.float32).eval()
    records = read_records([str(_qa_file(tmp_path))], prompt_field="prompt", completion_field="completion")
    docs, _ = tokenize_records(records, tiny_tokenizer)
    prompts = [d.input_ids[: int(np.argmax(d.targets))] for d in docs]
    lens = [int(d.targets.sum()) + 3 for d in docs]
    fast = greedy_batch(model, prompts, lens, tiny_tokenizer.pad_token_id, tiny_tokenizer.eos_token_id)
    slow = [_slow_greedy(model, p, n, tiny_tokenizer.eos_token_id) for p, n in zip(prompts, lens)]
    assert fast == slow


def test_matches_are_judged_against_the_completion(tiny_tokenizer, tmp_path, monkeypatch):
    """Exact match compares the first len(answer) tokens; substring match looks for the answer text."""
    import pctce_cli.scoring.generate as gen

    records = read_records([str(_qa_file(tmp_path))], prompt_field="prompt", completion_field="completion")
    docs, _ = tokenize_records(records, tiny_tokenizer)
    answers = {len(d.input_ids[: int(np.argmax(d.targets))]): d.input_ids[d.targets].tolist() for d in docs}
    filler = tiny_tokenizer(" and so on", add_special_tokens=False).input_ids

    def oracle(model, prompts, max_new, pad_id, eos_id):
        # doc 0 gets its answer after a detour (substring only); the others get it right away
        out = []
        for p in prompts:
            a = answers[len(p)]
            out.append(filler + a if a == docs[0].input_ids[docs[0].targets].tolist() else a + filler)
        return out

    monkeypatch.setattr(gen, "greedy_batch", oracle)
    acc = gen.task_accuracy(None, tiny_tokenizer, docs, records, margin=2, batch_tokens=40)
    assert acc["exact_match"].tolist() == [False, True, True, True, True]
    assert acc["substring_match"].all()
    assert acc["generation"][0] == " and so on Quexville."


def test_score_stores_accuracy_per_document(tiny_ckpt, tmp_path):
    [res] = score_checkpoints(
        [str(tiny_ckpt)],
        ScoreOptions(data=[str(_qa_file(tmp_path))], out=tmp_path / "out", prompt_field="prompt",
                     completion_field="completion", task_accuracy=True),
    )
    assert res.status == "scored", res.message
    docs = load_scores(tmp_path / "out", "tiny").docs
    assert {"exact_match", "substring_match", "generation"} <= set(docs.columns)
    assert len(docs) == len(QA) and docs["exact_match"].dtype == bool
