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


def task_accuracy(
    model,
    tokenizer,
    documents: Sequence[Document],
    records: Sequence[Record],
    *,
    margin: int = 8,
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """Exact and substring match of greedy generations against each completion.

    Args:
        model: The checkpoint's model.
        tokenizer: Its tokenizer (to decode generations).
        documents: Prompt/completion documents (targets = completion tokens).
        records: All records, indexed by ``Document.index`` (for the completion text).
        margin: Extra tokens generated beyond the completion's length.
        batch_size: Prompts decoded together (sorted by length to limit padding).

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
    order = sorted(range(n), key=lambda k: len(parts[k][0]))
    for s in range(0, n, batch_size):
        batch = order[s : s + batch_size]
        gens = greedy_batch(
            model,
            [parts[k][0] for k in batch],
            [len(parts[k][1]) + margin for k in batch],
            pad_id,
            eos_id,
        )
        for k, gen in zip(batch, gens):
            answer = parts[k][1]
            exact[k] = len(gen) >= len(answer) and list(gen[: len(answer)]) == answer.tolist()
            text = tokenizer.decode(gen, skip_special_tokens=True)
            want = (records[documents[k].index].completion or "").strip()
            substring[k] = bool(want) and want in text
            generation[k] = text
    return {"exact_match": exact, "substring_match": substring, "generation": generation}
