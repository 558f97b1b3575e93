"""Task accuracy for prompt/completion data: greedy decoding from each prompt.

For every document the model greedily continues the prompt for the
completion's length plus a margin. Two per-document outcomes are stored:

- ``exact_match``: the first ``len(completion tokens)`` generated tokens are
  exactly the completion's tokens;
- ``substring_match``: the completion's text (stripped) occurs in the decoded
  generation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pctce_cli.data import Document, Record

# Generation is a loop of small forward passes whose cost on CPU is mostly per
# step, not per token: batches far larger than 32 prompts are cheaper. The
# budget bounds the key/value cache (batch × (prompt + new tokens)); MAX_BATCH
# bounds the per-step work of a batch of very short prompts.
GENERATE_BATCH_TOKENS = 16384
MAX_BATCH = 512


def _prompt_and_answer(doc: Document) -> tuple[np.ndarray, np.ndarray]:
    first = int(np.argmax(doc.targets))  # prompt/completion targets are one contiguous block at the end
    return doc.input_ids[:first], doc.input_ids[first:]


def greedy_batch(model, prompts: Sequence[np.ndarray], max_new: Sequence[int], pad_id: int, eos_id: int | None) -> list[list[int]]:
    """Greedy continuations of left-padded prompts through ``model.generate``.

    Args:
        model: A causal LM (transformers or PEFT-wrapped), in eval mode.
        prompts: Token ids of each prompt (already starting with the prefix token).
        max_new: How many tokens to generate for each prompt.
        pad_id: Id used for left padding (masked out).
        eos_id: Generation of a prompt stops after this token, if given.

    Returns:
        The generated ids of each prompt (without the prompt), each cut at its
        own ``max_new`` and after its first ``eos_id``.
    """
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)  # (B, T) left-padded
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, width - len(p) :] = torch.from_numpy(np.asarray(p, dtype=np.int64))
        mask[b, width - len(p) :] = 1
    from pctce_cli.scoring.hf import quiet_transformers

    # quiet: generate drops an all-ones mask and then warns that the prompt holds
    # the pad id (a BOS/EOS prefix shares it), though the mask was given
    with torch.inference_mode(), quiet_transformers():
        seqs = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=int(max(max_new)),
            do_sample=False,
            num_beams=1,
            pad_token_id=pad_id,
            eos_token_id=eos_id,
        )
    out = []
    for b, n in enumerate(max_new):
        gen = seqs[b, width:].tolist()[:n]
        if eos_id is not None and eos_id in gen:
            gen = gen[: gen.index(eos_id) + 1]
        out.append(gen)
    return out


def generation_batches(widths: Sequence[int], news: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Group prompts into generation batches that hold at most ``batch_tokens`` tokens each.

    Prompts are sorted by length (then by tokens to generate), so a batch pads
    little; a batch of ``B`` prompts costs ``B × (longest prompt + most new
    tokens)`` positions, the size of its final key/value cache. A prompt that
    alone exceeds the budget is a batch of its own.

    Args:
        widths: Length of each prompt in tokens.
        news: Tokens to generate for each prompt.
        batch_tokens: The budget, as ``--batch-tokens`` for scoring.

    Returns:
        Lists of prompt indices, in generation order.

    Examples:
        >>> generation_batches([3, 1, 2, 9], [2, 2, 2, 2], 15)
        [[1, 2, 0], [3]]
    """
    order = sorted(range(len(widths)), key=lambda k: (widths[k], news[k], k))
    batches: list[list[int]] = []
    width = new = 0
    for k in order:
        w, n = max(width, widths[k]), max(new, news[k])
        if batches and batches[-1] and len(batches[-1]) < MAX_BATCH and (len(batches[-1]) + 1) * (w + n) <= batch_tokens:
            batches[-1].append(k)
            width, new = w, n
        else:
            batches.append([k])
            width, new = widths[k], news[k]
    return batches


def task_accuracy(
    model,
    tokenizer,
    documents: Sequence[Document],
    records: Sequence[Record],
    *,
    margin: int = 8,
    batch_tokens: int = GENERATE_BATCH_TOKENS,
) -> dict[str, np.ndarray]:
    """Exact and substring match of greedy generations against each completion.

    Args:
        model: The checkpoint's model.
        tokenizer: Its tokenizer (to decode generations).
        documents: Prompt/completion documents (targets = completion tokens).
        records: All records, indexed by ``Document.index`` (for the completion text).
        margin: Extra tokens generated beyond the completion's length.
        batch_tokens: Token budget of one generation batch (see :func:`generation_batches`).

    Returns:
        Per-document columns ``exact_match``, ``substring_match`` (bool) and
        ``generation`` (the decoded continuation), in the order of ``documents``.
    """
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    eos_id = tokenizer.eos_token_id
    n = len(documents)
    exact = np.zeros(n, dtype=bool)
    substring = np.zeros(n, dtype=bool)
    generation = np.empty(n, dtype=object)
    parts = [_prompt_and_answer(d) for d in documents]
    news = [len(a) + margin for _, a in parts]
    for batch in generation_batches([len(p) for p, _ in parts], news, batch_tokens):
        gens = greedy_batch(model, [parts[k][0] for k in batch], [news[k] for k in batch], pad_id, eos_id)
        for k, gen in zip(batch, gens):
            answer = parts[k][1]
            exact[k] = len(gen) >= len(answer) and list(gen[: len(answer)]) == answer.tolist()
            text = tokenizer.decode(gen, skip_special_tokens=True)
            want = (records[documents[k].index].completion or "").strip()
            substring[k] = bool(want) and want in text
            generation[k] = text
    return {"exact_match": exact, "substring_match": substring, "generation": generation}
