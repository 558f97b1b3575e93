"""Scoring a tiny real GPT-2 on CPU in float32, checked against the model's own loss."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pctce_cli.data import read_records, tokenize_records
from pctce_cli.scoring.options import ScoreOptions
from pctce_cli.scoring.run import score_checkpoints
from pctce_cli.store import list_checkpoints, load_scores

from .conftest import TEXTS


def _score(paths, data, out, **kw):
    return score_checkpoints([str(p) for p in paths], ScoreOptions(data=[str(d) for d in data], out=out, **kw))


def _model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def _documents(data, tokenizer, **kw):
    docs, _ = tokenize_records(read_records([str(d) for d in data], **kw), tokenizer)
    return docs


def test_mean_ce_equals_the_models_own_loss(tiny_ckpt, tiny_tokenizer, text_jsonl, tmp_path):
    [res] = _score([tiny_ckpt], [text_jsonl], tmp_path / "out")
    assert res.status == "scored", res.message
    s = load_scores(tmp_path / "out", "tiny")
    model = _model(tiny_ckpt)
    docs = _documents([text_jsonl], tiny_tokenizer)
    assert len(docs) == len(TEXTS)
    for d in docs:
        ids = torch.from_numpy(d.input_ids)[None]
        labels = ids.clone()
        labels[0, ~torch.from_numpy(d.targets)] = -100
        with torch.no_grad():
            loss = model(ids, labels=labels).loss.item()
        ours = s.ce[s.doc == d.index].astype(np.float64).mean()
        assert abs(ours - loss) < 1e-5
    # every target of the plain text is scored once: positions 0..n-1 (BOS prefix)
    for d in docs:
        assert s.pos[s.doc == d.index].tolist() == list(range(len(d.input_ids) - 1))
        assert s.token[s.doc == d.index].tolist() == d.input_ids[1:].tolist()
    # rank agrees with the full logits
    d = docs[0]
    with torch.no_grad():
        logits = model(torch.from_numpy(d.input_ids)[None]).logits[0, :-1]
    tgt = torch.from_numpy(d.input_ids[1:])
    ref_rank = (logits > logits.gather(1, tgt[:, None])).sum(-1)
    assert s.rank[s.doc == d.index].tolist() == ref_rank.tolist()
    assert s.manifest["engine"]["chunked_output_layer"] is True


def test_long_document_every_target_once_with_window_context(tiny_ckpt, tiny_tokenizer, tmp_path):
    data = tmp_path / "long.txt"
    data.write_text(" ".join(TEXTS * 3), encoding="utf-8")
    L, S = 16, 5
    [res] = _score([tiny_ckpt], [data], tmp_path / "out", max_length=L, stride=S, batch_tokens=40)
    assert res.status == "scored", res.message
    s = load_scores(tmp_path / "out", "tiny")
    [d] = _documents([data], tiny_tokenizer)
    n = len(d.input_ids)
    assert n > 4 * L
    assert s.pos.tolist() == list(range(n - 1))
    # brute force: target i is predicted from the window that the SPEC's stride rule gives it
    model = _model(tiny_ckpt)
    ends = [min(L, n)]
    while ends[-1] < n:
        ends.append(min(ends[-1] + S, n))
    ref = np.empty(n - 1)
    prev = 1
    for e in ends:
        start = max(0, e - L)
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.from_numpy(d.input_ids[start:e])[None]).logits[0], -1)
        for i in range(prev, e):
            assert i - start >= min(i, L - S)
            ref[i - 1] = -logp[i - start - 1, d.input_ids[i]].item()
        prev = e
    np.testing.assert_allclose(s.ce, ref, atol=1e-5)


def test_answer_only_counts_only_completion_tokens(tiny_ckpt, tiny_tokenizer, tmp_path):
    data = tmp_path / "qa.jsonl"
    rows = [
        {"q": "Question: What is the capital of Zorblandia? Answer:", "a": " Quexville."},
        {"q": "Question: Who jumps over the lazy dog? Answer:", "a": " The quick brown fox."},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    [res] = _score([tiny_ckpt], [data], tmp_path / "out", prompt_field="q", completion_field="a")
    assert res.status == "scored", res.message
    s = load_scores(tmp_path / "out", "tiny")
    model = _model(tiny_ckpt)
    for k, r in enumerate(rows):
        ctx = tiny_tokenizer(r["q"], add_special_tokens=False).input_ids
        whole = tiny_tokenizer(r["q"] + r["a"], add_special_tokens=False).input_ids
        completion = whole[len(ctx) :]
        assert s.token[s.doc == k].tolist() == completion
        ids = torch.tensor([[tiny_tokenizer.bos_token_id] + whole])
        labels = torch.full_like(ids, -100)
        labels[0, -len(completion) :] = ids[0, -len(completion) :]
        with torch.no_grad():
            loss = model(ids, labels=labels).loss.item()
        assert abs(s.ce[s.doc == k].astype(np.float64).mean() - loss) < 1e-5
    docs = s.docs.set_index("doc")
    assert docs.loc[0, "n_bytes"] == len(" Quexville.".encode())
    assert docs.loc[0, "n_targets"] == (s.doc == 0).sum()


def test_chat_counts_only_assistant_tokens(tiny_ckpt, tiny_tokenizer, tmp_path):
    data = tmp_path / "chat.jsonl"
    msgs = [
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "hi, how can I help you today?"},
        {"role": "user", "content": "tell me a story"},
        {"role": "assistant", "content": "Once upon a time there was a cat."},
    ]
    data.write_text(json.dumps({"messages": msgs}) + "\n", encoding="utf-8")
    [res] = _score([tiny_ckpt], [data], tmp_path / "out")
    assert res.status == "scored", res.message
    s = load_scores(tmp_path / "out", "tiny")
    decoded = tiny_tokenizer.decode(s.token.tolist())
    assert decoded == "hi, how can I help you today?<|end|>Once upon a time there was a cat.<|end|>"


def test_lora_adapter_scores_equal_the_merged_model(tiny_ckpt, tiny_tokenizer, text_jsonl, tmp_path, monkeypatch):
    from peft import LoraConfig, get_peft_model

    base = _model(tiny_ckpt)
    torch.manual_seed(3)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], init_lora_weights=False)
    peft_model = get_peft_model(base, cfg)
    adapters = []
    for k in range(2):  # two adapters on one base: the base is loaded once and adapters swapped
        for n, p in peft_model.named_parameters():
            if "lora_" in n:
                torch.nn.init.normal_(p, std=0.3)
        path = tmp_path / "lora" / f"epoch-{k + 1}"
        peft_model.save_pretrained(path)
        cfgj = json.loads((path / "adapter_config.json").read_text())
        cfgj["base_model_name_or_path"] = str(tiny_ckpt)
        (path / "adapter_config.json").write_text(json.dumps(cfgj))
        merged = tmp_path / f"merged{k}"
        import copy

        copy.deepcopy(peft_model).merge_and_unload().save_pretrained(merged)
        tiny_tokenizer.save_pretrained(merged)
        adapters.append((path, merged))
    import pctce_cli.scoring.hf as hf

    loads = []
    real_load = hf._load_causal_lm
    monkeypatch.setattr(hf, "_load_causal_lm", lambda path, *a: (loads.append(path), real_load(path, *a))[1])
    res = _score([tmp_path / "lora"] + [m for _, m in adapters], [text_jsonl], tmp_path / "out")
    assert [r.status for r in res] == ["scored"] * 4, [r.message for r in res]
    # the base is loaded once for both adapters, then each merged model once
    assert [p.name for p in loads] == [tiny_ckpt.name, "merged0", "merged1"]
    assert [r.id for r in res[:2]] == ["lora.epoch-1", "lora.epoch-2"]
    for k in range(2):
        a = load_scores(tmp_path / "out", f"lora.epoch-{k + 1}")
        m = load_scores(tmp_path / "out", f"merged{k}")
        np.testing.assert_allclose(a.ce, m.ce, atol=1e-5)
        assert a.manifest["kind"] == "adapter"
    assert not np.allclose(load_scores(tmp_path / "out", "lora.epoch-1").ce, load_scores(tmp_path / "out", "lora.epoch-2").ce)


def test_run_directory_is_ordered_by_step(tiny_run, text_jsonl, tmp_path):
    res = _score([tiny_run], [text_jsonl], tmp_path / "out")
    assert [r.id for r in res] == ["teacher.checkpoint-250", "teacher.checkpoint-500", "teacher.checkpoint-1000"]
    assert [m["step"] for m in list_checkpoints(tmp_path / "out")] == [250, 500, 1000]


def test_bin_weights_load(tiny_tokenizer, text_jsonl, tmp_path):
    from pctce_cli.testing import make_gpt2

    make_gpt2(tmp_path / "binckpt", tokenizer=tiny_tokenizer, safe_serialization=False)
    assert (tmp_path / "binckpt" / "pytorch_model.bin").is_file()
    [res] = _score([tmp_path / "binckpt"], [text_jsonl], tmp_path / "out")
    assert res.status == "scored", res.message


class _Capped(torch.nn.Module):
    pass


def test_fallback_to_model_logits_when_the_head_is_not_the_whole_story(tiny_ckpt, tiny_tokenizer, text_jsonl):
    """A model that soft-caps its logits after the head fails the check and uses its own logits."""
    from pctce_cli.scoring.engine import score_documents
    from pctce_cli.scoring.hf import HFAdapter

    model = _model(tiny_ckpt)
    orig = model.forward

    def capped_forward(*a, **kw):
        out = orig(*a, **kw)
        out.logits = 2.0 * torch.tanh(out.logits / 2.0)
        return out

    model.forward = capped_forward
    adapter = HFAdapter(model)
    docs = _documents([text_jsonl], tiny_tokenizer)
    shard = score_documents(adapter, docs, max_length=64, stride=32, batch_tokens=256)
    assert adapter.fast is False
    d = docs[0]
    with torch.no_grad():
        logp = torch.log_softmax(capped_forward(torch.from_numpy(d.input_ids)[None]).logits[0, :-1], -1)
    ref = -logp.gather(1, torch.from_numpy(d.input_ids[1:])[:, None])[:, 0]
    np.testing.assert_allclose(shard.ce[shard.doc == 0], ref.numpy(), atol=1e-5)


def test_chunking_does_not_change_results(tiny_ckpt, tiny_tokenizer, text_jsonl):
    from pctce_cli.scoring.engine import score_documents
    from pctce_cli.scoring.hf import HFAdapter

    docs = _documents([text_jsonl], tiny_tokenizer)
    big = score_documents(HFAdapter(_model(tiny_ckpt)), docs, max_length=64, stride=32, batch_tokens=4096)
    small = score_documents(HFAdapter(_model(tiny_ckpt), chunk_elements=1000), docs, max_length=64, stride=32, batch_tokens=30)
    np.testing.assert_allclose(big.ce, small.ce, atol=1e-5)
    assert (big.rank == small.rank).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_on_gpu_is_close_to_float32(tiny_ckpt, text_jsonl, tmp_path, dtype):
    _score([tiny_ckpt], [text_jsonl], tmp_path / "f32", device="cuda", dtype="float32")
    _score([tiny_ckpt], [text_jsonl], tmp_path / "half", device="cuda", dtype=dtype)
    a, b = load_scores(tmp_path / "f32", "tiny"), load_scores(tmp_path / "half", "tiny")
    np.testing.assert_allclose(a.ce, b.ce, atol=5e-2)


def test_output_layer_into_a_reused_buffer_gives_the_heads_own_values(tiny_ckpt, tiny_tokenizer, text_jsonl):
    """The fast path's mm into one reused buffer equals calling the head (hooked heads call it)."""
    from pctce_cli.scoring.engine import score_documents
    from pctce_cli.scoring.hf import HFAdapter

    docs = _documents([text_jsonl], tiny_tokenizer)
    kw = dict(max_length=64, stride=32, batch_tokens=64)
    plain = HFAdapter(_model(tiny_ckpt), chunk_elements=5000)
    a = score_documents(plain, docs, **kw)
    assert plain.fast and plain._plain_head() and plain._logits_buf is not None
    assert plain._logits_buf.shape == (plain.chunk, plain.vocab_size)
    hooked_model = _model(tiny_ckpt)
    calls = []
    hooked_model.get_output_embeddings().register_forward_hook(lambda m, i, o: calls.append(o.shape))
    hooked = HFAdapter(hooked_model, chunk_elements=5000)
    b = score_documents(hooked, docs, **kw)
    assert not hooked._plain_head() and hooked._logits_buf is None and len(calls) > 2
    np.testing.assert_array_equal(a.ce, b.ce)
    np.testing.assert_array_equal(a.rank, b.rank)
    # every chunk of a batch is written into the same storage
    with torch.inference_mode():
        ids = torch.from_numpy(docs[0].input_ids)[None]
        n = ids.shape[1] - 1
        rows, cols = torch.zeros(n, dtype=torch.long), torch.arange(n)
        ptrs = {c.data_ptr() for c in plain.logits_chunks(ids, torch.ones_like(ids), rows, cols)}
    assert ptrs == {plain._logits_buf.data_ptr()} and n > plain.chunk


def test_project_with_a_bias_matches_linear():
    from pctce_cli.scoring.hf import HFAdapter

    adapter = HFAdapter.__new__(HFAdapter)
    torch.manual_seed(0)
    adapter.head = torch.nn.Linear(16, 50)
    h = torch.randn(7, 16)
    with torch.inference_mode():
        out = torch.empty(7, 50)
        got = adapter._project(h, out=out)
        assert got.data_ptr() == out.data_ptr()
        assert torch.equal(got, adapter.head(h))
        assert torch.equal(adapter._project(h), adapter.head(h))
    # with autograd on, the head module itself runs (out= does not support autograd)
    assert adapter._project(h).requires_grad


def test_buffer_made_in_inference_mode_is_replaced_under_no_grad(tiny_ckpt, tiny_tokenizer, text_jsonl):
    from pctce_cli.scoring.hf import HFAdapter

    adapter = HFAdapter(_model(tiny_ckpt))
    ids = torch.from_numpy(_documents([text_jsonl], tiny_tokenizer)[0].input_ids)[None]
    rows, cols = torch.zeros(ids.shape[1], dtype=torch.long), torch.arange(ids.shape[1])
    with torch.inference_mode():
        first = torch.cat(list(adapter.logits_chunks(ids, torch.ones_like(ids), rows, cols)))
    assert adapter._logits_buf.is_inference()
    with torch.no_grad():
        again = torch.cat(list(adapter.logits_chunks(ids, torch.ones_like(ids), rows, cols)))
    assert not adapter._logits_buf.is_inference()
    assert torch.equal(first, again)
