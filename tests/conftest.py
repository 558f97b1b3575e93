"""Shared fixtures: a tiny GPT-2 checkpoint with a locally trained tokenizer, and data files."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models: one OpenMP thread scores them several times faster than two on a 2-core machine (no
# spin-waiting; 0.4 s instead of 6.8 s for test_analysis_cli's stores on a busy one), and it is what the
# subprocess tests already pass. Set before torch is imported; pctce's thread policy takes it as the user's choice.
os.environ.setdefault("OMP_NUM_THREADS", "1")

TEXTS = [
    "The quick brown fox jumps over the lazy dog. To be, or not to be, that is the question.",
    "Once upon a time there was a little cat who liked to sleep in the sun all day long.",
    "All the world's a stage, and all the men and women merely players; they have their exits.",
    "She sells sea shells by the sea shore.",
    "Now is the winter of our discontent made glorious summer by this sun of York, and all the clouds.",
]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from pctce_cli.testing import make_tokenizer

    return make_tokenizer()


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory, tiny_tokenizer):
    """A random-init GPT-2 (2 layers, 32 dims, context 64) saved with its tokenizer."""
    from pctce_cli.testing import make_gpt2

    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    make_gpt2(path, tokenizer=tiny_tokenizer, seed=0)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_tokenizer):
    """A training-run directory with three checkpoints at steps 500, 1000, 250 (written out of order)."""
    from pctce_cli.testing import make_gpt2

    run = tmp_path_factory.mktemp("runs") / "teacher"
    for seed, name in enumerate(["checkpoint-1000", "checkpoint-250", "checkpoint-500"]):
        make_gpt2(run / name, tokenizer=tiny_tokenizer, seed=seed + 1)
    return run


@pytest.fixture()
def text_jsonl(tmp_path):
    p = tmp_path / "val.jsonl"
    p.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is many times faster (no spin-waiting)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def model(tiny_ckpt):
    """The tiny checkpoint loaded in float32, eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_ckpt, dtype=torch.float32).eval()
