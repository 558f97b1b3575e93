"""Greedy decoding for --task-accuracy in token-budget batches: the grouping, and results that do not depend on it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pctce_cli.data import read_records, tokenize_records
from pctce_cli.scoring.generate import MAX_BATCH, generation_batches, task_accuracy

from .test_task_accuracy import _qa_file


@given(
    st.lists(st.tuples(st.integers(1, 60), st.integers(1, 20)), min_size=0, max_size=80),
    st.integers(1, 400),
)
def test_batches_cover_every_prompt_once_within_the_budget(items, budget):
    widths, news = [w for w, _ in items], [n for _, n in items]
    batches = generation_batches(widths, news, budget)
    assert sorted(k for b in batches for k in b) == list(range(len(items)))
    for b in batches:
        cost = len(b) * (max(widths[k] for k in b) + max(news[k] for k in b))
        assert cost <= budget or len(b) == 1  # a prompt alone over the budget is its own batch
        assert len(b) <= MAX_BATCH
    order = [k for b in batches for k in b]
    assert [widths[k] for k in order] == sorted(widths)  # sorted by length: little padding


@pytest.mark.parametrize("budget", [1, 64, 100_000])
def test_results_do_not_depend_on_the_budget(tiny_ckpt, tiny_tokenizer, tmp_path, one_thread, budget):
    """Every budget — one prompt per batch, a few, all at once — gives the same per-document outcomes."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_ckpt, dtype=torch.float32).eval()
    records = read_records([str(_qa_file(tmp_path))], prompt_field="prompt", completion_field="completion")
    docs, _ = tokenize_records(records, tiny_tokenizer)
    one_by_one = task_accuracy(model, tiny_tokenizer, docs, records, margin=3, batch_tokens=1)
    got = task_accuracy(model, tiny_tokenizer, docs, records, margin=3, batch_tokens=budget)
    for column in ("exact_match", "substring_match", "generation"):
        assert np.array_equal(got[column], one_by_one[column]), column
