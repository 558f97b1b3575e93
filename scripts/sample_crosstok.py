"""The cross-tokenizer run of pctce's sample data: the teacher's recipe with another tokenizer.

pctce compares checkpoints with different tokenizers in words and bytes, never in
tokens (docs/definitions.md#words-and-bytes, docs/units.md). The distillation study's checkpoints all share one
1,024-token byte-level BPE, so this module adds a run that does not
(``make_sample_data.py`` calls it from its ``crosstok`` stage):

- **tokenizer**: a Unigram language-model tokenizer (Kudo 2018, the algorithm of
  SentencePiece's default ``unigram`` model) of 512 pieces, trained on the same train
  documents as the teacher's BPE. It is SentencePiece-style: a space becomes ``▁`` at
  the start of the piece after it, and newlines are pieces of their own (the BPE's
  pre-tokenizer splits them off too), so no piece spans two words. It is a *fast*
  tokenizer (``PreTrainedTokenizerFast``), whose offsets give pctce the byte span of
  every token. It has the teacher's bos/eos/pad tokens and an ``<unk>`` that the
  validation text never needs (every character of it occurs in training);
- **model**: a GPT-2 of the teacher's shape (4 layers x 64 dims), trained with token CE
  on the same number of steps, batch size, context, learning rate and schedule as the
  teacher, from the same seed, and saved at the same steps, under
  ``crosstok/unigram<vocab>/checkpoint-<step>/``.

The ``tokenizers`` Unigram trainer is not deterministic bit for bit: it counts words
in a hash map whose iteration order changes from process to process, so its float
sums change in the last bits (at most 4e-11 nats where measured), and the characters
it appends at the end to cover the alphabet get their scores (the lowest score plus
1e-4 per character) in that random order. :func:`canonical_vocab` removes both: it
rounds every score to 1e-6 nats and gives those appended characters one score, in
character order, so the saved tokenizer, and the model trained on its tokens, are
the same in every build.
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger("make_sample_data")

SPECIALS = ("<|bos|>", "<|eos|>", "<|pad|>", "<unk>")  # the teacher's three, and Unigram's unknown piece
DECIMALS = 6  # scores rounded to 1e-6 nats: far above the trainer's round-off, far below any gap that matters
FILL_BAND = 0.01  # nats above the lowest score: the alphabet characters the trainer appended (1e-4 apart)


def run_name(vocab_size: int) -> str:
    """The run's directory under ``crosstok/``, e.g. ``unigram512``."""
    return f"unigram{vocab_size}"


def canonical_vocab(vocab: list[tuple[str, float]], n_special: int = len(SPECIALS)) -> tuple[list[tuple[str, float]], list[str]]:
    """A trained Unigram vocabulary made independent of the trainer's hash-map order.

    The special tokens keep their ids (the first ``n_special``). Every other score is
    rounded to :data:`DECIMALS` places; the pieces within :data:`FILL_BAND` of the
    lowest score, which are the single characters the trainer appended to cover the
    alphabet, all get the lowest score; then the pieces are ordered by score, ties
    by the piece's text.

    Returns:
        ``(vocab, appended)``: the canonical vocabulary and the appended characters.

    Raises:
        SystemExit: a piece of more than one character fell into the band (the trainer
            no longer works as described above, so the rule would change real scores).

    Example:
        >>> canonical_vocab([("<s>", 0.0), ("b", -12.0999), ("a", -1.00000049), ("q", -12.1), ("c", -1.0)], 1)
        ([('<s>', 0.0), ('a', -1.0), ('c', -1.0), ('b', -12.1), ('q', -12.1)], ['b', 'q'])
    """
    rest = [(p, round(s, DECIMALS)) for p, s in vocab[n_special:]]
    floor = min(s for _, s in rest)
    appended = sorted(p for p, s in rest if s < floor + FILL_BAND)
    if any(len(p) != 1 for p in appended):
        raise SystemExit(f"Unigram vocabulary: pieces {appended} lie within {FILL_BAND} nats of the lowest score; expected single characters")
    rest = [(p, floor if p in appended else s) for p, s in rest]
    rest.sort(key=lambda ps: (-ps[1], ps[0]))
    return list(vocab[:n_special]) + rest, appended


def train_unigram(texts: list[str], vocab_size: int) -> tuple[object, dict]:
    """A Unigram tokenizer of ``vocab_size`` pieces trained on ``texts``, canonical (:func:`canonical_vocab`).

    Returns:
        ``(tokenizer, info)``: a ``PreTrainedTokenizerFast`` with bos/eos/pad/unk, and
        what :func:`canonical_vocab` changed.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    # "never": no ▁ is prepended to the text, so its first token starts at its first character,
    # like the teacher's BPE (add_prefix_space=False); a prepended ▁ would be a token of its own.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r"\n+"), behavior="isolated"), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="never")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIALS), unk_token=SPECIALS[-1], max_piece_length=16, show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer)
    spec = json.loads(tok.to_str())
    vocab = [tuple(v) for v in spec["model"]["vocab"]]
    if [p for p, _ in vocab[: len(SPECIALS)]] != list(SPECIALS):
        raise SystemExit(f"Unigram vocabulary: expected {SPECIALS} first, got {[p for p, _ in vocab[:len(SPECIALS)]]}")
    canon, appended = canonical_vocab(vocab)
    spec["model"]["vocab"] = [list(v) for v in canon]
    spec["model"]["unk_id"] = SPECIALS.index(SPECIALS[-1])
    tok = Tokenizer.from_str(json.dumps(spec))
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=SPECIALS[0], eos_token=SPECIALS[1], pad_token=SPECIALS[2], unk_token=SPECIALS[3],
        model_max_length=1_000_000,
    )
    return hf, {"kind": "unigram", "vocab": len(hf), "appended_characters": "".join(appended)}


def unknown_pieces(tok, texts: list[str]) -> int:
    """How many ``<unk>`` tokens ``texts`` encode to (0: the tokenizer covers every character)."""
    ids = tok(texts, add_special_tokens=False, return_attention_mask=False, verbose=False)["input_ids"]
    return sum(i == tok.unk_token_id for row in ids for i in row)
