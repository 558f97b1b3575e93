"""The engine on a mock model with an analytic answer, and its window/batch planning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pctce_cli.data import Document
from pctce_cli.errors import ScoringError, UsageError
from pctce_cli.scoring.engine import (
    UniformAdapter,
    ce_and_rank,
    plan_batches,
    plan_windows,
    score_documents,
)


def _doc(index, n, offset=1, targets=None):
    t = np.ones(n, bool) if targets is None else np.asarray(targets, bool)
    t[0] = False
    return Document(index, np.arange(n, dtype=np.int64) % 50, t, offset, 0, 0, f"doc{index}")


def test_uniform_logits_give_ln_v_and_rank_zero():
    docs = [_doc(0, 30), _doc(1, 5), _doc(2, 17)]
    shard = score_documents(UniformAdapter(50), docs, max_length=8, stride=3, batch_tokens=20)
    assert len(shard.ce) == 29 + 4 + 16
    np.testing.assert_allclose(shard.ce, math.log(50), rtol=1e-6)
    assert (shard.rank == 0).all()
    # sorted by (doc, pos); positions exclude the prefix token
    assert shard.doc.tolist() == [0] * 29 + [1] * 4 + [2] * 16
    assert shard.pos[:29].tolist() == list(range(29))


@pytest.mark.parametrize("n,L,S", [(1, 4, 2), (2, 4, 4), (10, 4, 1), (10, 4, 3), (64, 64, 32), (100, 7, 7), (33, 10, 9)])
def test_every_target_scored_exactly_once_with_enough_context(n, L, S):
    d = _doc(0, n)
    seen = []
    for w in plan_windows([d], L, S):
        assert 0 <= w.start < w.score_from <= w.end <= n and w.end - w.start <= L
        for i in range(w.score_from, w.end):
            seen.append(i)
            if w.start > 0:  # away from the start, at least L - S tokens of context
                assert i - w.start >= L - S
    assert sorted(seen) == list(range(1, n))


def test_windows_without_targets_are_dropped():
    t = np.zeros(40, bool)
    t[35:] = True  # a long prompt, then a short answer
    windows = plan_windows([_doc(0, 40, targets=t)], 8, 4)
    assert len(windows) == 2 and windows[-1].end == 40
    shard = score_documents(UniformAdapter(50), [_doc(0, 40, targets=t)], max_length=8, stride=4, batch_tokens=64)
    assert shard.pos.tolist() == [34, 35, 36, 37, 38]


def test_batches_respect_the_token_budget_and_sort_by_length():
    docs = [_doc(k, n) for k, n in enumerate([3, 20, 9, 20, 5, 12])]
    windows = plan_windows(docs, 16, 8)
    for batch in plan_batches(windows, 32):
        assert len(batch) == 1 or len(batch) * batch[0].length <= 32
        assert [w.length for w in batch] == sorted((w.length for w in batch), reverse=True)
    assert sum(len(b) for b in plan_batches(windows, 32)) == len(windows)


def test_ce_and_rank_against_log_softmax():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(13, 97, generator=g)
    targets = torch.randint(0, 97, (13,), generator=g)
    ce, rank = ce_and_rank(logits, targets)
    ref = -torch.log_softmax(logits, -1)[torch.arange(13), targets]
    torch.testing.assert_close(ce, ref)
    ref_rank = [(logits[i] > logits[i, targets[i]]).sum().item() for i in range(13)]
    assert rank.tolist() == ref_rank


def test_ties_do_not_raise_the_rank():
    logits = torch.tensor([[1.0, 1.0, 0.5], [2.0, 1.0, 3.0]])
    _, rank = ce_and_rank(logits, torch.tensor([1, 1]))
    assert rank.tolist() == [0, 2]


def test_option_errors():
    with pytest.raises(UsageError, match="stride must be between 1 and max_length"):
        plan_windows([_doc(0, 5)], 4, 5)
    with pytest.raises(UsageError, match="max_length must be at least 2"):
        plan_windows([_doc(0, 5)], 1, 1)
    with pytest.raises(UsageError, match="batch_tokens must be positive"):
        plan_batches([], 0)


class _NaNAdapter(UniformAdapter):
    def logits_chunks(self, input_ids, attention_mask, rows, cols):
        for chunk in super().logits_chunks(input_ids, attention_mask, rows, cols):
            chunk[0, 0] = float("nan")
            yield chunk


def test_non_finite_ce_fails_with_float32_hint():
    with pytest.raises(ScoringError, match=r"ckpt: non-finite CE at document 0 \(doc0\); .* --dtype float32"):
        score_documents(_NaNAdapter(50), [_doc(0, 10)], max_length=8, stride=4, batch_tokens=64, label="ckpt")
    half = _NaNAdapter(50)
    half.dtype = torch.bfloat16
    with pytest.raises(ScoringError, match=r"overflows in bfloat16, rescore with --dtype float32$"):
        score_documents(half, [_doc(0, 10)], max_length=8, stride=4, batch_tokens=64, label="ckpt")


def test_non_finite_ce_in_float32_does_not_suggest_float32():
    full = _NaNAdapter(50)
    full.dtype = torch.float32
    with pytest.raises(ScoringError) as e:
        score_documents(full, [_doc(0, 10)], max_length=8, stride=4, batch_tokens=64, label="ckpt")
    assert str(e.value) == (
        "ckpt: non-finite CE at document 0 (doc0); the model gives NaN or infinite logits in float32, "
        "so a higher precision cannot help: its weights may hold non-finite values (check the checkpoint)"
    )


class _OOMAdapter(UniformAdapter):
    def logits_chunks(self, *a):
        raise torch.OutOfMemoryError("CUDA out of memory")
        yield


def test_out_of_memory_suggests_smaller_batch_tokens():
    with pytest.raises(ScoringError, match=r"ckpt: out of memory with --batch-tokens 64 .*try a smaller --batch-tokens"):
        score_documents(_OOMAdapter(50), [_doc(0, 10)], max_length=8, stride=4, batch_tokens=64, label="ckpt")


def _reference_ce_and_rank(logits, targets):
    """The whole-tensor formulas of the SPEC, as ce_and_rank computed them before blocking."""
    t = logits.gather(1, targets[:, None])
    rank = (logits > t).sum(-1).to(torch.int32)
    top = logits.amax(-1, keepdim=True)
    ce = (logits - top).exp_().sum(-1).log_() + top[:, 0] - t[:, 0]
    return ce, rank


@pytest.mark.parametrize(
    "rows,vocab,block", [(1, 97, 97), (2, 97, 97), (7, 97, 97), (9, 97, 200), (13, 50, 10**6), (5, 40000, 1)]
)
def test_blocked_ce_and_rank_is_bit_identical_to_whole_tensor(rows, vocab, block, monkeypatch):
    """Any block size (including a remainder of one row, merged) gives the same bits, and the input is kept."""
    import pctce_cli.scoring.engine as E

    monkeypatch.setattr(E, "BLOCK_ELEMENTS", block)
    g = torch.Generator().manual_seed(rows * 1000 + vocab)
    logits = torch.randn(rows, vocab, generator=g) * 3
    targets = torch.randint(0, vocab, (rows,), generator=g)
    logits[:, :5] = logits.gather(1, targets[:, None])  # exact ties with the target
    logits[0, -1] = float("-inf")
    before = logits.clone()
    ce, rank = ce_and_rank(logits, targets)
    ref_ce, ref_rank = _reference_ce_and_rank(logits, targets)
    assert torch.equal(logits, before)
    assert ce.dtype == torch.float32 and rank.dtype == torch.int32
    assert torch.equal(ce, ref_ce) and torch.equal(rank, ref_rank)
    # a column-major view gives the same answer (the sums may be taken in another order)
    ce2, rank2 = ce_and_rank(logits.t().contiguous().t(), targets)
    torch.testing.assert_close(ce2, ref_ce, rtol=1e-6, atol=1e-6)
    assert torch.equal(rank2, ref_rank)


def test_ce_and_rank_other_dtypes_and_non_finite():
    logits = torch.tensor([[0.0, float("nan"), 1.0], [0.0, 1.0, float("inf")], [2.0, 1.0, 0.0]])
    ce, rank = ce_and_rank(logits, torch.tensor([0, 0, 0]))
    assert math.isnan(ce[0]) and math.isnan(ce[1]) and math.isfinite(ce[2])
    assert rank.tolist()[2] == 0
    # float64 and tensors that need grad take the whole-tensor path, with the same answer
    x = torch.randn(4, 33, dtype=torch.float64)
    t = torch.tensor([0, 5, 32, 7])
    ce64, rank64 = ce_and_rank(x, t)
    ref_ce, ref_rank = _reference_ce_and_rank(x, t)
    assert ce64.dtype == torch.float32 and torch.equal(rank64, ref_rank)
    torch.testing.assert_close(ce64, ref_ce.float())
    xg = x.float().requires_grad_()
    ceg, _ = ce_and_rank(xg, t)
    torch.testing.assert_close(ceg.detach(), _reference_ce_and_rank(x.float(), t)[0])


def test_default_batch_tokens_depend_on_the_device(monkeypatch):
    from pctce_cli.errors import UsageError
    from pctce_cli.scoring.options import resolve_batch_tokens

    monkeypatch.delenv("PCTCE_BATCH_TOKENS", raising=False)

    assert resolve_batch_tokens(None, torch.device("cpu")) == 2048
    assert resolve_batch_tokens(None, torch.device("cuda", 0)) == 16384
    assert resolve_batch_tokens(None, "mps") == 16384
    assert resolve_batch_tokens(512, torch.device("cpu")) == 512
    monkeypatch.setenv("PCTCE_BATCH_TOKENS", "700")  # a machine's default; an explicit value still wins
    assert resolve_batch_tokens(None, torch.device("cpu")) == 700 and resolve_batch_tokens(512, "cpu") == 512
    monkeypatch.setenv("PCTCE_BATCH_TOKENS", "lots")
    with pytest.raises(UsageError, match="^PCTCE_BATCH_TOKENS must be a positive whole number, got 'lots'$"):
        resolve_batch_tokens(None, "cpu")
