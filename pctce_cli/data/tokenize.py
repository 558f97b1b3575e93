"""Records → :class:`Document` objects: token ids and the mask of scored targets (docs/definitions.md#per-token-cross-entropy-and-rank)."""

from __future__ import annotations

import re
from typing import Any, Iterator, Sequence

import numpy as np

from pctce_cli.errors import DataError, UsageError
from pctce_cli.data.records import PREFIXES, Document, Record, _first_line
from pctce_cli.data.spans import UNITS_RULE, token_units, units_of_targets

_WORDS = re.compile(r"\s+")
_SOURCE_SUFFIX = re.compile(r":(?:(?:block|row|item) )?\d+$")
_ENCODE_CHUNK = 4096  # texts per tokenizer call


# --------------------------------------------------------------------------- tokenizing


def scored_text_size(text: str) -> tuple[int, int]:
    """UTF-8 bytes and words of a scored text, as lm-evaluation-harness counts them.

    Words are ``len(re.split(r"\\s+", text))``, so leading/trailing whitespace
    adds an empty "word" and the empty string has one word.

    >>> scored_text_size("héllo  world\\n")
    (14, 3)
    """
    return len(text.encode("utf-8")), len(_WORDS.split(text))


def move_trailing_whitespace(prompt: str, completion: str) -> tuple[str, str]:
    """Move the prompt's trailing whitespace to the front of the completion (lm-eval ``_encode_pair``).

    >>> move_trailing_whitespace("Q: 2+2?\\nA: ", "4")
    ('Q: 2+2?\\nA:', ' 4')
    """
    n_spaces = len(prompt) - len(prompt.rstrip())
    if n_spaces:
        return prompt[:-n_spaces], prompt[-n_spaces:] + completion
    return prompt, completion


def tokenize_records(
    records: Sequence[Record],
    tokenizer: Any,
    *,
    prefix: str = "auto",
    tokenizer_name: str = "tokenizer",
    units: bool = True,
    special_tokens: bool = False,
) -> tuple[list[Document], int]:
    """Tokenize records and mark their scored tokens.

    (Long by its documented arguments; the body is about 20 lines.)

    With a fast tokenizer each document also gets the byte span and word of
    every target (``Document.nbytes``, ``Document.word``; docs/definitions.md#words-and-bytes, the rule in
    :mod:`pctce_cli.data.spans`). A slow tokenizer gives no offsets: documents
    then hold ``None`` there (:func:`units_unavailable` says why).

    Args:
        records: From :func:`read_records`.
        tokenizer: A Hugging Face tokenizer (fast ones are much faster: calls are batched).
        prefix: ``"auto"`` (BOS, else EOS, else none), ``"bos"``, ``"eos"`` or ``"none"``.
        tokenizer_name: How errors name the tokenizer (e.g. its path).
        units: Compute byte spans and words when the tokenizer can (``False``:
            never; the benchmark of their cost turns them off).
        special_tokens: Read special-token strings in texts, prompts and
            completions (``<|endoftext|>``) as the special tokens. Off by
            default: raw text is text, and a literal ``<|endoftext|>`` in a
            document is scored as the characters it is. Chat templates always
            give their own special tokens.

    Returns:
        ``(documents, n_skipped)``: documents with at least one target, in
        record order, and how many records were skipped for having none.

    Raises:
        DataError: No record yields a target; chat records but the tokenizer
            has no chat template; a chat template fails or does not render
            incrementally.
        UsageError: ``prefix`` is unknown, or names a token the tokenizer lacks.
    """
    prefix_id = _prefix_token_id(tokenizer, prefix, tokenizer_name)
    records = list(records)
    modes = [_mode(r) for r in records]
    spans = units and units_unavailable(tokenizer) is None
    # position → (ids, mask, bytes, words, per-token (nbytes, word) or None)
    encoded: dict[int, tuple[list[int], np.ndarray, int, int, tuple | None]] = {}
    split = not special_tokens
    encoded.update(_encode_texts(records, [i for i, m in enumerate(modes) if m == "text"], tokenizer, spans, split))
    encoded.update(_encode_pairs(records, [i for i, m in enumerate(modes) if m == "pair"], tokenizer, spans, split))
    chats = [i for i, m in enumerate(modes) if m == "chat"]
    encoded.update(_encode_chats(records, chats, tokenizer, tokenizer_name, spans))

    documents: list[Document] = []
    for i, record in enumerate(records):
        ids, mask, n_bytes, n_words, token_spans = encoded[i]
        document = _assemble(record, ids, mask, prefix_id, n_bytes, n_words, token_spans)
        if document is not None:
            documents.append(document)
    n_skipped = len(records) - len(documents)
    if not documents:
        raise DataError(_nothing_scored(records, n_skipped, prefix_id))
    return documents, n_skipped


def _mode(record: Record) -> str:
    """A record's mode, with read_records' precedence: prompt/completion, then chat, then text."""
    if record.completion is not None:
        return "pair"
    if record.messages is not None:
        return "chat"
    if record.text is not None:
        return "text"
    raise DataError(f"{record.source}: record has no text, completion or messages")


def _prefix_token_id(tokenizer: Any, prefix: str, tokenizer_name: str) -> int | None:
    if prefix not in PREFIXES:
        raise UsageError(f"prefix must be one of auto, bos, eos, none; got {prefix!r}", param="prefix")
    bos, eos = getattr(tokenizer, "bos_token_id", None), getattr(tokenizer, "eos_token_id", None)
    if prefix == "auto":
        return bos if bos is not None else eos
    if prefix == "bos":
        if bos is None:
            raise UsageError(f"prefix bos: {tokenizer_name} has no BOS token", param="prefix", remedy="use prefix eos, none or auto", remedy_param="prefix")
        return bos
    if prefix == "eos":
        if eos is None:
            raise UsageError(f"prefix eos: {tokenizer_name} has no EOS token", param="prefix", remedy="use prefix bos, none or auto", remedy_param="prefix")
        return eos
    return None


def units_unavailable(tokenizer: Any) -> str | None:
    """Why byte spans and words cannot be computed with ``tokenizer``, or ``None`` when they can.

    They need character offsets (``return_offsets_mapping``), which only fast
    (Rust-backed) tokenizers give.
    """
    if getattr(tokenizer, "is_fast", False):
        return None
    return (
        f"{type(tokenizer).__name__} is a slow tokenizer: it gives no character offsets, so byte spans and words "
        "are not recorded (load the fast tokenizer to record them)"
    )


def units_status(documents: Sequence[Document], tokenizer: Any, tokenizer_name: str = "tokenizer", units: bool = True) -> dict:
    """Whether ``documents`` carry byte spans and words, for a manifest's ``units`` (and why not).

    Args:
        documents: From :func:`tokenize_records`.
        tokenizer, tokenizer_name: The tokenizer it was given, and how to name it.
        units: What :func:`tokenize_records` was asked (``False``: turned off).

    Returns:
        ``{"available": True, "rule": UNITS_RULE}``, or ``{"available": False,
        "reason": …, "tokenizer": <class name>}`` naming the tokenizer.
    """
    if units and documents and all(d.nbytes is not None for d in documents):
        return {"available": True, "rule": UNITS_RULE}
    reason = units_unavailable(tokenizer)
    if not units:
        reason = "byte spans and words were turned off"
    elif reason is None:
        missing = next((d for d in documents if d.nbytes is None), None)
        where = f" of {missing.source}" if missing is not None else ""
        reason = (
            f"its chat template does not render the assistant messages{where} verbatim (nor trimmed), "
            "so their byte spans cannot be located"
        )
    return {"available": False, "reason": f"{tokenizer_name}: {reason}", "tokenizer": type(tokenizer).__name__}


def _encode(tokenizer: Any, texts: list[str], offsets: bool = False, split: bool = False) -> tuple[list[list[int]], list | None]:
    """Batched ``tokenizer(texts, add_special_tokens=False)``, without the too-long-sequence warning.

    Returns the ids of every text and, with ``offsets``, their character offsets.
    With ``split``, special-token strings in the texts are tokenized as the text
    they are (tokenizers' ``split_special_tokens``).
    """
    out: list[list[int]] = []
    spans: list | None = [] if offsets else None
    for start in range(0, len(texts), _ENCODE_CHUNK):
        enc = tokenizer(
            texts[start : start + _ENCODE_CHUNK],
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            return_offsets_mapping=offsets,
            **({"split_special_tokens": True} if split else {}),
            verbose=False,  # long documents are fine: the engine windows them
        )
        out.extend(list(ids) for ids in enc["input_ids"])
        if offsets:
            spans.extend(enc["offset_mapping"])
    return out, spans


def _encode_texts(records: list[Record], positions: list[int], tokenizer: Any, spans: bool, split: bool) -> Iterator[tuple[int, tuple]]:
    texts = [records[i].text for i in positions]
    all_ids, all_offsets = _encode(tokenizer, texts, spans, split)
    for n, (i, ids) in enumerate(zip(positions, all_ids)):
        units = None
        if spans:
            nbytes, word, _, _ = token_units(texts[n], all_offsets[n], [(0, len(ids), 0, len(texts[n]))])
            units = (nbytes, word)
        yield i, (ids, np.ones(len(ids), dtype=bool), *scored_text_size(texts[n]), units)


def _encode_pairs(records: list[Record], positions: list[int], tokenizer: Any, spans: bool, split: bool) -> Iterator[tuple[int, tuple]]:
    pairs = [move_trailing_whitespace(records[i].prompt or "", records[i].completion) for i in positions]
    n = len(pairs)
    all_ids, all_offsets = _encode(tokenizer, [p + c for p, c in pairs] + [p for p, _ in pairs], spans, split)
    for k, (i, (prompt, completion), whole, context) in enumerate(zip(positions, pairs, all_ids[:n], all_ids[n:])):
        # as lm-eval: the model reads context + continuation; an empty completion scores nothing
        # (not even the prompt's trailing whitespace moved onto it)
        continuation = whole[len(context) :] if records[i].completion else []
        mask = np.zeros(len(context) + len(continuation), dtype=bool)
        mask[len(context) :] = True
        units = None
        if spans:
            # offsets are those of the whole text, the tokens the model reads; only the completion is scored
            # (those of the prompt's tokens are never read: they are outside the scored segment)
            offsets = list(all_offsets[k][: len(mask)])
            offsets += [(0, 0)] * (len(mask) - len(offsets))  # the whole has fewer tokens than the prompt alone
            segment = (len(context), len(mask), len(prompt), len(prompt) + len(completion))
            nbytes, word, _, _ = token_units(prompt + completion, offsets, [segment])
            units = (nbytes, word)
        yield i, (context + continuation, mask, *scored_text_size(completion), units)


def _encode_chats(
    records: list[Record], positions: list[int], tokenizer: Any, tokenizer_name: str, spans: bool
) -> Iterator[tuple[int, tuple]]:
    if not positions:
        return
    if not getattr(tokenizer, "chat_template", None):
        raise DataError(
            f"{tokenizer_name} has no chat template, so chat records in {_source_file(records[positions[0]].source)} "
            "cannot be scored; pass --tokenizer with one that has a template, or use --prompt-field/--completion-field"
        )
    # Render each chat whole and, per assistant message k, before it (with the generation
    # prompt) and up to its end; tokenize all renders in two batches (offsets of whole chats only).
    fulls: list[str] = []
    texts: list[str] = []
    plans: list[tuple[int, int, list[tuple[int, int]]]] = []  # (position, index in fulls, [(pre, upto)] in texts)
    for i in positions:
        record = records[i]
        turns = [k for k, m in enumerate(record.messages) if m["role"] == "assistant"]
        if not turns:
            continue
        fulls.append(_render(tokenizer, record.messages, False, record.source, tokenizer_name))
        turn_texts = []
        for k in turns:
            pre = _render(tokenizer, record.messages[:k], True, record.source, tokenizer_name)
            upto = _render(tokenizer, record.messages[: k + 1], False, record.source, tokenizer_name)
            texts += [pre, upto]
            turn_texts.append((len(texts) - 2, len(texts) - 1))
        plans.append((i, len(fulls) - 1, turn_texts))
    full_ids, full_offsets = _encode(tokenizer, fulls, spans)
    all_ids, _ = _encode(tokenizer, texts)

    planned = set()
    for i, f, turn_texts in plans:
        planned.add(i)
        record = records[i]
        ids = full_ids[f]
        mask = np.zeros(len(ids), dtype=bool)
        turns = []
        for n, (pre, upto) in enumerate(turn_texts, start=1):
            start, stop = len(all_ids[pre]), len(all_ids[upto])
            if ids[:start] != all_ids[pre] or ids[:stop] != all_ids[upto] or stop < start:
                raise DataError(
                    f"{record.source}: {tokenizer_name}'s chat template does not render this chat incrementally "
                    f"(the tokens before or through assistant message {n} are not a prefix of the whole chat's "
                    "tokens), so its assistant tokens cannot be located"
                )
            mask[start:stop] = True
            turns.append((start, stop))
        contents = [m["content"] for m in record.messages if m["role"] == "assistant"]
        sizes = [scored_text_size(c) for c in contents]
        units = _chat_units(fulls[f], full_offsets[f], turns, contents) if spans else None
        yield i, (ids, mask, sum(b for b, _ in sizes), sum(w for _, w in sizes), units)
    for i in positions:
        if i not in planned:  # no assistant message: nothing to score
            yield i, ([], np.zeros(0, dtype=bool), 0, 0, (np.zeros(0, np.int32), np.zeros(0, np.int32)) if spans else None)


def _chat_units(full: str, offsets: list, turns: list[tuple[int, int]], contents: list[str]) -> tuple | None:
    """Byte spans and words of a chat's assistant tokens: each turn is scored for its message's text only.

    The message is looked up in the rendered chat after the tokens before the
    turn; a template that trims it is scored for the trimmed text. ``None``
    when the template renders the message otherwise (no span to give).
    """
    segments = []
    for (start, stop), content in zip(turns, contents):
        begin = offsets[start - 1][1] if start > 0 else 0
        limit = offsets[stop - 1][1] if stop > start else begin
        for text in (content, content.strip()):
            at = full.find(text, begin)
            if at >= 0 and at + len(text) <= max(limit, begin):
                segments.append((start, stop, at, at + len(text)))
                break
        else:
            return None
    nbytes, word, _, _ = token_units(full, offsets, segments)
    return nbytes, word


def _render(tokenizer: Any, messages: list[dict], generation_prompt: bool, source: str, tokenizer_name: str) -> str:
    try:
        if not messages:  # apply_chat_template refuses an empty chat; render the generation prompt alone
            from transformers.utils.chat_template_utils import render_jinja_template

            rendered, _ = render_jinja_template(
                conversations=[[]],
                chat_template=tokenizer.get_chat_template(),
                add_generation_prompt=generation_prompt,
                **tokenizer.special_tokens_map,
            )
            return rendered[0]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as e:  # jinja2 TemplateError, raise_exception() in templates, ValueError, …
        raise DataError(f"{source}: {tokenizer_name}'s chat template failed on this chat ({_first_line(e)})") from None


def _assemble(
    record: Record,
    ids: list[int],
    mask: np.ndarray,
    prefix_id: int | None,
    n_bytes: int,
    n_words: int,
    token_spans: tuple[np.ndarray, np.ndarray] | None,
) -> Document | None:
    offset = 0
    if prefix_id is not None and not (ids and ids[0] == prefix_id):
        ids, mask, offset = [prefix_id, *ids], np.concatenate([[False], mask]), 1
        if token_spans is not None:  # the prefix token covers no text
            token_spans = (
                np.concatenate((np.zeros(1, np.int32), token_spans[0])),
                np.concatenate((np.full(1, -1, np.int32), token_spans[1])),
            )
    input_ids = np.asarray(ids, dtype=np.int64)  # (T,)
    targets = np.asarray(mask, dtype=bool).copy()  # (T,)
    if len(targets):
        targets[0] = False  # nothing predicts the first token
    if not targets.any():
        return None
    nbytes = word = None
    if token_spans is not None:
        nbytes, word = units_of_targets(*token_spans, targets)
    return Document(record.index, input_ids, targets, offset, n_bytes, n_words, record.source, nbytes, word)


def _source_file(source: str) -> str:
    return _SOURCE_SUFFIX.sub("", source)


def _nothing_scored(records: list[Record], n_skipped: int, prefix_id: int | None) -> str:
    if not records:
        return "no document to score: the data has no records"
    files = ", ".join(dict.fromkeys(_source_file(r.source) for r in records))
    present = {_mode(r) for r in records}
    reasons = [
        reason
        for mode, reason in (("text", "empty text"), ("pair", "empty completion"), ("chat", "no assistant message"))
        if mode in present
    ]
    message = f"no document in {files} yields a scored token ({n_skipped} skipped: {' or '.join(reasons)})"
    if prefix_id is None:
        message += "; with --prefix none the first token of a document is never scored"
    return message
