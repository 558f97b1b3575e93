"""ctx of prompt/completion and chat stores (docs/definitions.md#position-in-the-context): recorded at scoring, checked
against the engine's windows with a tiny model whose window is far shorter than the documents."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pctce_cli.stats.position import recorded_context

from .cli import run, run_json, section
from .helpers import make_store

WORDS = "the cat sat on a mat while seven dogs ran past the old mill and birds sang".split()


def _text(k: int, n: int) -> str:
    return " ".join(WORDS[(k + j) % len(WORDS)] for j in range(n))


def _window_contexts(docs, L: int, stride: int) -> dict:
    """(document, pos) → the tokens before the target in the window that scores it (plan_windows, brute force)."""
    from pctce_cli.scoring.engine import plan_windows

    want = {}
    for w in plan_windows(docs, L, stride):
        d = docs[w.doc]
        for i in range(w.score_from, w.end):
            if d.targets[i]:
                assert (d.index, i - d.offset) not in want  # scored once
                want[(d.index, i - d.offset)] = i - w.start
    return want


def test_recorded_context_refuses_targets_outside_their_input():
    assert recorded_context([0, 1, 2], 4, 1, 8, 4).tolist() == [1, 2, 3]
    from pctce_cli.errors import UsageError

    with pytest.raises(UsageError) as e:
        recorded_context([3, 9], [12, 9], [0, 0], 8, 4, doc=[5, 6])
    assert str(e.value) == "ctx: the target at position 9 of document 6 lies outside its 9 recorded input tokens: the document table does not fit the rows"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["prompt", "chat"])
def test_ctx_of_prompt_and_chat_stores_follows_the_windows(tiny_tokenizer, tmp_path, kind):
    """A 16-token model, prompts and earlier turns of 20–60 words: ctx from the store equals plan_windows', the window
    cuts in (ctx reaches 15 = L − 1 and then stays below the target's input index), and re-scoring sampled targets from
    exactly their last ctx tokens gives the stored CE."""
    import torch

    from pctce_cli.data import read_records, tokenize_records
    from pctce_cli.store import load_docs, load_scores
    from pctce_cli.testing import make_gpt2

    from pctce_cli.analysis.position import contexts

    model, tok = make_gpt2(tmp_path / "m", tokenizer=tiny_tokenizer, n_positions=16, n_embd=8, n_layer=1, n_head=1)
    if kind == "prompt":
        rows = [{"q": _text(k, n), "a": " " + _text(k + 3, m)} for k, (n, m) in enumerate([(3, 2), (20, 8), (40, 30), (60, 5)])]
        options = ["--prompt-field", "q", "--completion-field", "a"]
    else:
        rows = [
            {"messages": [{"role": "user", "content": _text(k, n)}, {"role": "assistant", "content": _text(k + 1, m)},
                          {"role": "user", "content": _text(k + 2, n)}, {"role": "assistant", "content": _text(k + 5, m)}]}
            for k, (n, m) in enumerate([(2, 2), (15, 6), (30, 25)])
        ]
        options = []
    data = tmp_path / "val.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    r = run("score", tmp_path / "m", "--data", data, "--out", tmp_path / "out", "--stride", "5", *options, "--quiet")
    assert r.exit_code == 0, r.output
    s = load_scores(tmp_path / "out", "m")
    docs_table = load_docs(tmp_path / "out", "m")
    ctx = contexts(s.doc, s.pos, s.manifest, "m", docs_table)

    docs, _ = tokenize_records(read_records([data], **({"prompt_field": "q", "completion_field": "a"} if kind == "prompt" else {})), tok)
    assert docs_table["n_input"].tolist() == [len(d.input_ids) for d in docs]
    assert docs_table["prefix_offset"].tolist() == [d.offset for d in docs]
    want = _window_contexts(docs, 16, 5)
    assert ctx.tolist() == [want[(int(a), int(b))] for a, b in zip(s.doc, s.pos)]
    first = np.array([int(d.targets.argmax()) for d in docs])
    assert (first[s.doc] > 1).any()  # targets after a prompt or earlier turns: the old recovery would refuse these
    assert ctx.max() == 15 and (ctx < s.pos + docs_table["prefix_offset"].to_numpy()[s.doc]).any()  # the window cuts in
    by_doc = {d.index: d for d in docs}
    with torch.inference_mode():
        for j in range(0, len(ctx), 5):
            d = by_doc[int(s.doc[j])]
            i = int(s.pos[j]) + d.offset
            ids = torch.as_tensor(d.input_ids[i - ctx[j] : i + 1])[None]
            logits = model(ids).logits[0, -2].double()
            assert float(torch.logsumexp(logits, 0) - logits[ids[0, -1]]) == pytest.approx(float(s.ce[j]), abs=1e-4)
    r = run("summary", tmp_path / "out", "--by", "ctx", "--format", "json")
    assert r.exit_code == 0, r.output


def test_a_store_without_the_recorded_geometry_asks_for_a_rescore_for_chats(tmp_path):
    """An older store (no n_input column) whose documents' targets start late (a chat): ctx names the document and the remedy."""
    make_store(tmp_path / "s", "chat", np.ones(4), [0, 0, 1, 1], pos=[5, 6, 7, 8])
    r = run("summary", tmp_path / "s", "--by", "ctx")
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        "Error: ctx: document 0 does not score every token after its first (targets at positions 5–6, 2 of them): the context "
        "length is recovered only for plain-text documents; re-score the checkpoint with 'pctce score … --force' to record each "
        "document's input tokens, which ctx needs"
    )


def test_ctx_reads_the_recorded_geometry_in_memory_and_streamed(tmp_path, monkeypatch):
    """Prompt/completion rows with n_input and prefix_offset: the buckets of ctx are those of the window arithmetic,
    in memory and streamed (a bound of 1 target)."""
    from pctce_cli.stats.position import document_context

    L, stride = 8, 3
    prompt, completion = [2, 10, 30], [3, 12, 20]  # tokens, and no prefix token
    doc = np.repeat(np.arange(3), completion)
    pos = np.concatenate([np.arange(p, p + c) for p, c in zip(prompt, completion)])
    n_input = np.array(prompt) + np.array(completion)
    ce = np.random.default_rng(0).gamma(2.0, 1.0, doc.size)
    make_store(tmp_path / "s", "qa", ce, doc, pos=pos, settings={"prompt_field": "q", "completion_field": "a", "max_length": L, "stride": stride},
               doc_columns={"n_input": n_input, "prefix_offset": [0, 0, 0]})
    want = np.concatenate([document_context(np.arange(p, p + c), p + c, L, stride) for p, c in zip(prompt, completion)])
    rows = section(run_json("summary", tmp_path / "s", "--by", "ctx"), "Per-token")
    got = {r["ctx"]: r["targets"] for r in rows}
    assert got == {lab: int(n) for lab, n in zip(*np.unique([{1: "1", 2: "2–3", 3: "2–3"}.get(int(v), "4–7") for v in want], return_counts=True))}
    monkeypatch.setenv("PCTCE_STREAM_ABOVE", "1")
    assert section(run_json("summary", tmp_path / "s", "--by", "ctx"), "Per-token") == rows


@pytest.mark.parametrize("name", ["position", "ctx"])
def test_a_subset_field_may_not_be_named_like_a_token_dimension(tmp_path, name):
    from pctce_cli.data import read_records
    from pctce_cli.errors import UsageError, option_message
    from pctce_cli.cli.common import OPTIONS
    from pctce_cli.scoring.options import SCORE_OPTIONS

    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"text": "a b", name: "x"}) + "\n", encoding="utf-8")
    with pytest.raises(UsageError) as e:
        read_records(p, subset_fields=[name])
    assert str(e.value) == f"subset_fields {name}: '{name}' is a value of by (by {name} buckets targets), so a field so named could not be chosen; rename the field in the data"
    assert option_message(e.value, {**OPTIONS, **SCORE_OPTIONS}) == (
        f"--subset-field {name}: '{name}' is a value of --by (--by {name} buckets targets), so a field so named could not be chosen; rename the field in the data"
    )


def test_verify_checks_the_recorded_geometry_against_the_rows(tmp_path):
    """A document table whose n_input is too small for its rows is damage; a store without the columns verifies as before."""
    make_store(tmp_path / "ok", "old", np.ones(4), [0, 0, 1, 1])
    assert run("verify", tmp_path / "ok").exit_code == 0
    make_store(tmp_path / "bad", "qa", np.ones(4), [0, 0, 1, 1], pos=[3, 4, 3, 9], doc_columns={"n_input": [5, 9], "prefix_offset": [0, 0]})
    from pctce_cli.store.verify import verify_store

    ok, problems, _ = verify_store(tmp_path / "bad")
    assert ok == [] and [(p.checkpoint, p.message) for p in problems] == [
        ("qa", f"{tmp_path / 'bad' / 'checkpoint=qa' / '_docs'}: document 1 records 9 input tokens, but has a target at position 9")
    ]
    assert run("verify", tmp_path / "bad").exit_code == 1
