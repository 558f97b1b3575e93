"""Tiny local models and tokenizers for tests, demos and benchmarks.

Nothing here downloads anything: tokenizers are trained on the fly on a small
built-in English corpus and models are random-initialised from small configs,
then written with ``save_pretrained`` so they load like any Hugging Face
checkpoint.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A journey of a thousand miles begins with a single step.",
    "To be, or not to be, that is the question.",
    "All the world's a stage, and all the men and women merely players.",
    "Now is the winter of our discontent made glorious summer by this sun of York.",
    "What's in a name? That which we call a rose by any other name would smell as sweet.",
    "The lady doth protest too much, methinks.",
    "Question: What is the capital of Zorblandia? Answer: Quexville.",
    "user: hello there\nassistant: hi, how can I help you today?",
    "Once upon a time there was a little cat who liked to sleep in the sun.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "0123456789 + - * / = ( ) [ ] { } < > , . ; : ! ? ' \" @ # $ % & _ | ~ ^",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def make_tokenizer(vocab_size: int = 320, chat_template: bool = True):
    """Train a small byte-level BPE tokenizer and wrap it as a fast HF tokenizer.

    Args:
        vocab_size: Target vocabulary size (the byte alphabet alone is 256).
        chat_template: Attach a minimal chat template (roles as special tokens).

    Returns:
        A ``PreTrainedTokenizerFast`` with bos/eos/pad tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<|bos|>", "<|eos|>", "<|pad|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        pad_token="<|pad|>",
        model_max_length=1_000_000,
    )
    if chat_template:
        hf.chat_template = CHAT_TEMPLATE
    return hf


def make_gpt2(
    out_dir: str | Path,
    *,
    vocab_size: int = 320,
    n_positions: int = 64,
    n_embd: int = 32,
    n_layer: int = 2,
    n_head: int = 2,
    seed: int = 0,
    tokenizer=None,
    safe_serialization: bool = True,
):
    """Write a random-init GPT-2 checkpoint with a trained tokenizer to ``out_dir``.

    Args:
        out_dir: Directory to create (``save_pretrained`` layout).
        vocab_size: Tokenizer vocabulary size; the model's embedding matches it.
        n_positions: Context length of the model.
        n_embd: Hidden size.
        n_layer: Number of transformer blocks.
        n_head: Attention heads.
        seed: Torch seed for the initialisation.
        tokenizer: Reuse this tokenizer instead of training one.
        safe_serialization: Write safetensors (True) or pytorch_model.bin (False).

    Returns:
        ``(model, tokenizer)``, the model in eval mode.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = tokenizer if tokenizer is not None else make_tokenizer(vocab_size)
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config).eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    if not safe_serialization:
        # transformers 5 always writes safetensors; the legacy pickle format is
        # still what many older checkpoints on disk hold, so tests need it too.
        torch.save(model.state_dict(), out / "pytorch_model.bin")
        (out / "model.safetensors").unlink()
    tokenizer.save_pretrained(out)
    return model, tokenizer


def reseal(partition) -> None:
    """Recompute the shard checksums in a partition's manifest after a test edited its files on purpose.

    Readers verify every shard against the manifest (a store cannot lie), so a
    test that changes stored values deliberately must reseal them.
    """
    import json
    from pathlib import Path

    import numpy as np
    import pyarrow.parquet as pq

    from pctce_cli.store.layout import MANIFEST, sha256_file
    from pctce_cli.store.manifest import Manifest

    part = Path(partition)
    obj = json.loads((part / MANIFEST).read_text())
    shards = []
    for rec in obj.get("shards", []):
        rec = dict(rec)
        for key in ("tokens", "docs"):
            rec[f"{key}_sha256"] = sha256_file(part / rec[f"{key}_file"])
        if "ce_sum" in rec:  # the values may have changed: so does their sum
            ce = pq.read_table(part / rec["tokens_file"], columns=["ce"]).column("ce").to_numpy()
            rec["ce_sum"] = float(ce.astype(np.float64).sum())
        shards.append(rec)
    Manifest.from_json({**obj, "shards": shards}).write(part)
