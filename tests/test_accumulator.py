"""PercentileCE: the engine's per-token CE and rank, accumulated over batches, summarized once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from pctce_cli.accumulator import PercentileCE
from pctce_cli.data import read_records, tokenize_records
from pctce_cli.errors import UsageError
from pctce_cli.scoring.engine import score_documents
from pctce_cli.scoring.hf import HFAdapter
from pctce_cli.stats import summarize

from .conftest import TEXTS


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def documents(text_jsonl_module, tiny_tokenizer):
    docs, _ = tokenize_records(read_records([str(text_jsonl_module)]), tiny_tokenizer)
    return docs


@pytest.fixture(scope="module")
def text_jsonl_module(tmp_path_factory):
    p = tmp_path_factory.mktemp("data") / "val.jsonl"
    p.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    return p


def batches(documents, pad_id, size=2):
    """Right-padded (input_ids, attention_mask, labels) batches; labels -100 on padding and non-targets."""
    for s in range(0, len(documents), size):
        group = documents[s : s + size]
        width = max(len(d.input_ids) for d in group)
        ids = torch.full((len(group), width), pad_id)  # (B, T)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        labels = torch.full((len(group), width), -100)
        for b, d in enumerate(group):
            n = len(d.input_ids)
            ids[b, :n] = torch.from_numpy(d.input_ids)
            mask[b, :n] = 1
            labels[b, :n] = torch.where(torch.from_numpy(d.targets), ids[b, :n], torch.tensor(-100))
        yield ids, mask, labels


def test_equals_the_engine_on_the_same_batches(model, documents):
    pad = model.config.pad_token_id
    metric = PercentileCE()
    with torch.no_grad():
        for ids, mask, labels in batches(documents, pad):
            metric.update(model(input_ids=ids, attention_mask=mask).logits, labels)  # (B, T, V)
    ref = score_documents(HFAdapter(model), documents, max_length=64, stride=32, batch_tokens=4096, pad_id=pad)
    ce, rank = metric.values()
    # batches hold whole documents in order, so update order is the engine's (doc, pos) order
    np.testing.assert_allclose(ce, ref.ce, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(rank, ref.rank)
    assert ce.dtype == np.float32 and rank.dtype == np.int32
    got, want = metric.compute(), summarize(ref.ce, ref.rank)
    assert set(got) == set(want) == {"n", "mean", "ppl", "p50", "p90", "p95", "p99", "iqr", "z95", "top1"}
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-5), k


def test_mean_equals_the_models_own_loss(model, documents):
    ids, mask, labels = next(batches(documents[:1], model.config.pad_token_id, size=1))
    metric = PercentileCE()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
    metric.update(out.logits, labels)
    assert metric.compute()["mean"] == pytest.approx(out.loss.item(), abs=1e-5)


def test_chunking_shift_and_dtype_do_not_change_the_values(model, documents):
    ids, mask, labels = next(batches(documents, model.config.pad_token_id))
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
    whole, tiny_chunks, aligned = PercentileCE(), PercentileCE(chunk_elements=1), PercentileCE(shift=False)
    whole.update(logits, labels)
    tiny_chunks.update(logits, labels)
    aligned.update(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))  # (N, V), (N,)
    for other in (tiny_chunks, aligned):
        np.testing.assert_array_equal(other.values()[0], whole.values()[0])
        np.testing.assert_array_equal(other.values()[1], whole.values()[1])
    half = PercentileCE()
    half.update(logits.bfloat16(), labels)  # upcast a chunk at a time
    np.testing.assert_allclose(half.values()[0], whole.values()[0], atol=0.1)
    assert logits.grad_fn is None and half.n_local == whole.n_local == int((labels[:, 1:] != -100).sum())


def test_update_accumulates_and_reset_forgets():
    metric = PercentileCE(percentiles=[50])
    metric.update(torch.zeros(1, 3, 4), torch.tensor([[-100, 2, 1]]))
    # shifted: the logits at position 0 predict label 1 (token 0, rank 0); label 0 predicts nothing
    metric.update(torch.tensor([[[5.0, 0.0], [0.0, 0.0]]]), torch.tensor([[7, 0]]))
    s = metric.compute()
    assert s["n"] == 3
    assert s["mean"] == pytest.approx((2 * np.log(4) + np.log1p(np.exp(-5.0))) / 3)
    assert s["top1"] == 1.0
    metric.reset()
    empty = metric.compute()
    assert empty["n"] == 0 and np.isnan(empty["mean"]) and np.isnan(empty["p50"])
    metric.update(torch.zeros(2, 3, 4), torch.full((2, 3), -100))  # nothing scored
    assert metric.n_local == 0


def test_bad_inputs_are_refused_with_a_message():
    metric = PercentileCE()
    with pytest.raises(UsageError) as e:
        metric.update(torch.zeros(2, 5, 4), torch.zeros(2, 4, dtype=torch.long))
    assert str(e.value) == (
        "logits (..., T, V) and labels (..., T) must match in their leading dimensions, "
        "got logits (2, 5, 4) and labels (2, 4)"
    )
    with pytest.raises(UsageError) as e:
        metric.update(torch.zeros(1, 3, 4), torch.tensor([[0, 1, 4]]))
    assert str(e.value) == "labels must be token ids in [0, 4) or ignore_index (-100), got 4"
    with pytest.raises(UsageError, match=r"percentiles must be in \[0, 100\], got 101"):
        PercentileCE(percentiles=[50, 101])


WORKER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import torch
    import torch.distributed as dist
    from pctce_cli.accumulator import PercentileCE

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 9, 11, generator=gen)  # the same numbers on every rank; each takes its own rows
    labels = torch.randint(0, 11, (3, 9), generator=gen)
    labels[:, :2] = -100
    mine = slice(0, 1) if rank == 0 else slice(1, 3)  # ranks hold different numbers of tokens
    metric = PercentileCE()
    metric.update(logits[mine], labels[mine])
    synced = metric.compute()
    ce, rk = metric.values()
    local = PercentileCE(sync_on_compute=False)
    local.update(logits[mine], labels[mine])
    whole = PercentileCE(sync_on_compute=False)
    whole.update(logits, labels)
    out = {"synced": synced, "local_n": local.compute()["n"], "whole": whole.compute(),
           "ce": ce.tolist(), "whole_ce": whole.values()[0].tolist()}
    with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as f:
        json.dump(out, f)
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_two_gloo_ranks_gather_every_token_before_summarizing(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script), str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    results = [json.loads((tmp_path / f"rank{k}.json").read_text()) for k in (0, 1)]
    assert [res["local_n"] for res in results] == [7, 14]
    for res in results:
        # rank 0's tokens then rank 1's: exactly the single-process token order
        assert res["ce"] == res["whole_ce"]
        assert res["synced"]["n"] == 21
        for k, v in res["whole"].items():
            assert res["synced"][k] == pytest.approx(v, abs=1e-6), k
