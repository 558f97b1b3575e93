"""Position buckets and the context length (docs/definitions.md#position-in-the-context), against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pctce_cli.errors import UsageError
from pctce_cli.stats.position import bucket_index, bucket_label, bucket_summaries, context_lengths, document_context, position_buckets
from pctce_cli.stats.summaries import summarize


def brute_bucket(p: int, lo: list[int]) -> int:
    """The bucket of one position by a loop over the edges."""
    k = 0
    for j, e in enumerate(lo):
        if p >= e:
            k = j
    return k


def test_default_buckets_are_powers_of_two_up_to_the_largest_position():
    assert position_buckets(0).tolist() == [0]
    assert position_buckets(1).tolist() == [0, 1]
    assert position_buckets(3).tolist() == [0, 1, 2]
    assert position_buckets(4).tolist() == [0, 1, 2, 4]
    assert position_buckets(4095).tolist() == [0, 1] + [2**k for k in range(1, 12)]
    lo = position_buckets(4096)
    assert lo[-1] == 4096 and [bucket_label(lo, k, False)[0] for k in range(len(lo))][:5] == ["0", "1", "2–3", "4–7", "8–15"]
    assert bucket_label(lo, len(lo) - 1, False) == ("4096–8191", 4096, 8192)


def test_user_edges_add_a_first_and_an_open_last_bucket():
    lo = position_buckets(10_000, [1024, 4096])
    assert lo.tolist() == [0, 1024, 4096]
    assert [bucket_label(lo, k, True) for k in range(3)] == [("0–1023", 0, 1024), ("1024–4095", 1024, 4096), ("4096+", 4096, None)]
    assert position_buckets(5, ["0", "2.0"]).tolist() == [0, 2]


@pytest.mark.parametrize(
    "edges, message",
    [
        ([4, 2], "position_edges: edges must be strictly increasing, got 4 then 2"),
        ([4, 4], "position_edges: edges must be strictly increasing, got 4 then 4"),
        ([-1, 4], "position_edges: edges must be >= 0, got -1"),
        ([1.5], "position_edges: edges must be whole numbers of tokens, got 1.5"),
        ([], "position_edges: give at least one edge, e.g. 1024,4096"),
        (["4k"], "position_edges: expected whole numbers separated by commas (e.g. 1024,4096), got '4k'"),
    ],
)
def test_bad_edges_are_refused(edges, message):
    with pytest.raises(UsageError) as e:
        position_buckets(100, edges)
    assert str(e.value) == message


def test_negative_positions_are_refused():
    with pytest.raises(UsageError) as e:
        bucket_index([0, -3], np.array([0, 1]))
    assert str(e.value) == "pos must be >= 0, got -3"


@settings(max_examples=60, deadline=None)
@given(
    pos=st.lists(st.integers(0, 5000), min_size=1, max_size=300),
    edges=st.one_of(st.none(), st.lists(st.integers(0, 6000), min_size=1, max_size=6, unique=True).map(sorted)),
)
def test_every_target_is_in_exactly_one_bucket_as_a_loop_finds(pos, edges):
    p = np.asarray(pos)
    lo = position_buckets(p.max(), edges)
    k = bucket_index(p, lo)
    assert k.tolist() == [brute_bucket(x, lo.tolist()) for x in pos]
    hi = np.r_[lo[1:], np.iinfo(np.int64).max]
    assert ((lo[k] <= p) & (p < hi[k])).all()  # inside its bucket, hence in no other (the buckets are disjoint)
    assert np.bincount(k, minlength=len(lo)).sum() == p.size


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 400), seed=st.integers(0, 10_000), edges=st.one_of(st.none(), st.just([8, 64])))
def test_bucket_summaries_are_summarize_over_each_numpy_group_and_leave_pooled_alone(n, seed, edges):
    rng = np.random.default_rng(seed)
    ce = rng.lognormal(0.0, 1.0, n).astype(np.float32)
    pos = rng.integers(0, 300, n)
    rank = rng.integers(0, 3, n)
    pooled = summarize(ce, rank, percentiles=[10, 50, 90])
    lo = position_buckets(pos.max(), edges)
    got = bucket_summaries(ce, pos, lo, rank, percentiles=[10, 50, 90])
    k = np.searchsorted(lo, pos, side="right") - 1  # the numpy grouping
    assert [b for b, _ in got] == sorted(set(k.tolist()))
    for b, s in got:
        np.testing.assert_equal(s, summarize(ce[k == b], rank[k == b], percentiles=[10, 50, 90]))  # exact, NaN == NaN
    assert sum(s["n"] for _, s in got) == n
    np.testing.assert_equal(summarize(ce, rank, percentiles=[10, 50, 90]), pooled)  # buckets change nothing pooled


def brute_context(n: int, offset: int, L: int, stride: int) -> dict[int, int]:
    """pos → ctx of a plain-text document of ``n`` input tokens, by the scoring engine's own windows."""
    from pctce_cli.data import Document
    from pctce_cli.scoring.engine import plan_windows

    d = Document(0, np.arange(n), np.r_[False, np.ones(n - 1, bool)], offset, 0, 0, "x")
    out = {}
    for w in plan_windows([d], L, stride):
        for i in range(w.score_from, w.end):
            assert i - offset not in out  # scored exactly once
            out[i - offset] = i - w.start
    return out


@pytest.mark.parametrize("L, stride", [(16, 8), (16, 16), (16, 1), (16, 5), (2, 1), (7, 3)])
@pytest.mark.parametrize("offset", [0, 1])
def test_context_length_follows_the_windows(L, stride, offset):
    lengths = [2, 3, L - 1, L, L + 1, 2 * L + 3, 101, 137]
    doc = np.concatenate([np.full(n - 1, k) for k, n in enumerate(lengths)])
    pos = np.concatenate([np.arange(1 - offset, n - offset) for n in lengths])
    want = np.concatenate([[brute_context(n, offset, L, stride)[p] for p in range(1 - offset, n - offset)] for n in lengths])
    got = context_lengths(doc, pos, L, stride)
    assert got.tolist() == want.tolist()
    assert got.max() <= L - 1 and got.min() >= 1
    assert document_context(np.arange(1, 137), 137, L, stride).tolist() == [brute_context(137, 0, L, stride)[p] for p in range(1, 137)]


def test_context_length_needs_plain_text_documents():
    with pytest.raises(UsageError) as e:
        context_lengths([0, 0, 3, 3], [0, 1, 5, 6], 16, 8)
    assert str(e.value) == (
        "ctx: document 3 does not score every token after its first (targets at positions 5–6, 2 of them): "
        "the context length is recovered only for plain-text documents; "
        "re-score the checkpoint with 'pctce score … --force' to record each document's input tokens, which ctx needs"
    )
    with pytest.raises(UsageError, match="document 0 does not score every token"):
        context_lengths([0, 0, 0], [0, 1, 3], 16, 8)  # a gap
    assert context_lengths([], [], 16, 8).tolist() == []


@pytest.mark.slow
@pytest.mark.parametrize("prefix", ["auto", "none"])
def test_context_length_of_a_scored_store_is_what_the_model_conditioned_on(tiny_tokenizer, tmp_path, prefix):
    """A 16-token model on documents of 100+ tokens: ctx from the stored rows equals plan_windows', and re-scoring
    each sampled target from exactly its last ctx tokens gives the stored CE."""
    import json

    import torch

    from pctce_cli.data import read_records, tokenize_records
    from pctce_cli.scoring.engine import plan_windows
    from pctce_cli.store import load_scores, read_manifest
    from pctce_cli.testing import make_gpt2

    from .cli import run

    model, tok = make_gpt2(tmp_path / "short", tokenizer=tiny_tokenizer, n_positions=16, n_embd=8, n_layer=1, n_head=1)
    words = "the cat sat on a mat while seven dogs ran past the old mill and birds sang".split()
    texts = [" ".join(words[(k + j) % len(words)] for j in range(n)) for k, n in enumerate([3, 20, 60, 90])]
    data = tmp_path / "val.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    r = run("score", tmp_path / "short", "--data", data, "--out", tmp_path / "out", "--stride", "5", "--prefix", prefix, "--quiet")
    assert r.exit_code == 0, r.output
    m = read_manifest(tmp_path / "out", "short")
    assert (m.settings["max_length"], m.settings["stride"]) == (16, 5)
    s = load_scores(tmp_path / "out", "short")
    ctx = context_lengths(s.doc, s.pos, 16, 5)

    docs, _ = tokenize_records(read_records([data]), tok, prefix=prefix)
    assert max(len(d.input_ids) for d in docs) > 100
    want = {}
    for w in plan_windows(docs, 16, 5):
        d = docs[w.doc]
        for i in range(w.score_from, w.end):
            want[(d.index, i - d.offset)] = i - w.start
    assert ctx.tolist() == [want[(int(a), int(b))] for a, b in zip(s.doc, s.pos)]
    assert ctx.max() == 15
    by_doc = {d.index: d for d in docs}
    with torch.inference_mode():
        for j in range(0, len(ctx), 7):
            d = by_doc[int(s.doc[j])]
            i = int(s.pos[j]) + d.offset
            ids = torch.as_tensor(d.input_ids[i - ctx[j] : i + 1])[None]
            logits = model(ids).logits[0, -2].double()  # predicts the target from the ctx tokens before it
            ce = float(torch.logsumexp(logits, 0) - logits[ids[0, -1]])
            assert ce == pytest.approx(float(s.ce[j]), abs=1e-4)
