"""Byte spans and words of scored tokens (docs/definitions.md#words-and-bytes), from a fast tokenizer's character offsets.

The rule (docs/scoring.md, "Byte spans and words"), for each scored span of a
document (the whole text; a completion; each assistant message of a chat):

1. A token's *start* is the UTF-8 byte offset of its first character
   (``offset_mapping`` gives characters), clipped into the scored span; the
   first token of the span starts at the span's start, and starts never
   decrease. A token's span runs from its start to the next token's start (the
   last one's to the span's end), so the spans partition the scored bytes:
   whitespace that the offsets trim goes to the token before it (leading
   whitespace of the span to the first token). One exception: a token that is
   only whitespace and whose offsets are trimmed to nothing (a lone ``Ġ`` with
   ``trim_offsets``) starts where the whitespace before its offset starts, so
   it keeps that whitespace instead of being an empty span.
2. Tokens whose offsets start at the same character overlap: byte-level pieces
   of one multi-byte character (Hugging Face gives each piece the whole
   character), or a prepended ``▁`` beside the character it precedes. In such a
   run of ``k`` tokens over the ``n`` bytes of the character they start with,
   every token after the first gets one byte, counted back from the end of that
   character, and the first gets the rest (``n - k + 1``); byte-level pieces of
   one character therefore each get one byte when there are as many pieces as
   bytes, and what follows the character up to the next token's start goes to
   the run's last token, never into the middle of another character. With more tokens than bytes the earliest ones get none
   (an empty span).
3. Tokens outside the scored text (chat-template markers, an end-of-turn token)
   clip to the span's end: empty spans.
4. Words are the maximal runs of non-whitespace characters of the scored span
   (``str.split()``'s whitespace, which is ``re``'s ``\\s``), numbered from 0
   per document, across the spans of a chat. A token belongs to the word that
   holds the first non-whitespace byte of its span; a whitespace-only token to
   the next word, or the previous one at the end of the span; an empty-span
   token, and a token of a span with no word at all (whitespace only), to none
   (``-1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np

# Recorded in a run's identity when byte spans and words are stored: a change of
# the rule above is a change of the stored numbers, so bump it with the rule.
UNITS_RULE = "spec8-v1"


def char_to_byte(text: str) -> np.ndarray | None:
    """UTF-8 byte offset of every character of ``text`` and of its end (``len(text) + 1`` entries).

    ``None`` for ASCII text, where characters and bytes coincide.

    >>> char_to_byte("aé😀b").tolist()
    [0, 1, 3, 7, 8]
    """
    return None if text.isascii() else _char_to_byte(_code_points(text))


def _code_points(text: str) -> np.ndarray:
    """The code points of ``text`` as an array (uint8 for ASCII, else uint32)."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _char_to_byte(cp: np.ndarray) -> np.ndarray:
    size = 1 + (cp >= 0x80).astype(np.int64) + (cp >= 0x800) + (cp >= 0x10000)  # UTF-8 bytes per code point
    out = np.zeros(cp.size + 1, dtype=np.int64)
    np.cumsum(size, out=out[1:])
    return out


_SPACE_LIMIT = 0x3001  # every code point Python counts as whitespace is below this (tests check it)
_space_table: np.ndarray | None = None


def _is_space(cp: np.ndarray) -> np.ndarray:
    """``chr(c).isspace()`` for each code point (``str.split()``'s whitespace, also ``re``'s ``\\s``)."""
    global _space_table
    if _space_table is None:
        _space_table = np.array([chr(c).isspace() for c in range(_SPACE_LIMIT)] + [False])
    if cp.dtype == np.uint8:  # ASCII: below the limit
        return _space_table[cp]
    return _space_table[np.minimum(cp, np.uint32(_SPACE_LIMIT))]


def token_units(
    text: str,
    offsets: Sequence[tuple[int, int]] | np.ndarray,
    segments: Sequence[tuple[int, int, int, int]],
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Per-token byte counts and word indices of one encoded text (the rule of the module docstring).

    Args:
        text: The text the tokenizer encoded.
        offsets: ``(T, 2)`` character offsets of its ``T`` tokens (``offset_mapping``).
        segments: Scored spans ``(token_start, token_stop, char_start, char_stop)``:
            tokens ``[token_start, token_stop)`` are scored for the characters
            ``[char_start, char_stop)``, in order, not overlapping.

    Returns:
        ``(nbytes, word, n_bytes, n_words)``: int32 ``(T,)`` arrays (0 and -1
        outside the segments) and the scored spans' total UTF-8 bytes and words.

    Example:
        >>> nb, w, n_bytes, n_words = token_units(" ab  c", [(1, 3), (3, 4), (5, 6)], [(0, 3, 0, 6)])
        >>> nb.tolist(), w.tolist(), n_bytes, n_words
        ([3, 2, 1], [0, 1, 1], 6, 2)
    """
    n_tok = len(offsets)
    nbytes = np.zeros(n_tok, dtype=np.int32)
    word = np.full(n_tok, -1, dtype=np.int32)
    cp = _code_points(text)
    cb = None if cp.dtype == np.uint8 else _char_to_byte(cp)
    spans = _offsets_array(offsets)
    starts_char = _reclaim_trimmed(text, spans, segments)
    starts_all = starts_char if cb is None else cb[starts_char]
    # where the character each token starts with ends: pieces of one multi-byte character share it
    first_end = np.minimum(starts_char + 1, cp.size)
    ends_all = first_end if cb is None else cb[first_end]
    total_bytes = total_words = 0
    for t0, t1, c0, c1 in segments:
        a, b = (c0, c1) if cb is None else (int(cb[c0]), int(cb[c1]))
        total_bytes += b - a
        ws, we = _word_bytes(cp, c0, c1, cb)
        if t1 > t0:
            start = _starts(starts_all[t0:t1], a, b, ends_all[t0:t1])
            end = np.empty_like(start)
            end[:-1], end[-1] = start[1:], b
            nb = end - start
            nbytes[t0:t1] = nb
            if ws.size:
                k = np.searchsorted(we, start, side="right")  # the first word ending after the token's start
                w = np.minimum(k, ws.size - 1) + total_words
                word[t0:t1] = np.where(nb > 0, w, -1)
        total_words += int(ws.size)
    return nbytes, word, total_bytes, total_words


def _offsets_array(offsets) -> np.ndarray:
    """``(T, 2)`` int64 offsets from a tokenizer's list of pairs (flattened: much faster than ``np.asarray``)."""
    if isinstance(offsets, np.ndarray):
        return offsets.astype(np.int64, copy=False).reshape(-1, 2)
    n = len(offsets)
    return np.fromiter(chain.from_iterable(offsets), dtype=np.int64, count=2 * n).reshape(n, 2)


def _reclaim_trimmed(text: str, spans: np.ndarray, segments: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
    """Character starts of the tokens, a whitespace-only token trimmed to nothing moved back over its whitespace.

    Trimmed offsets turn a token that is only whitespace (a lone ``Ġ``) into an
    empty offset just after that whitespace; it is given that whitespace back
    (down to the previous token's second character), so that it is not an
    empty span. Every other start is its offset's.
    """
    starts = spans[:, 0].copy()
    zero = np.flatnonzero(spans[:, 1] == spans[:, 0])
    if not zero.size:
        return starts
    for t0, t1, c0, _ in segments:
        for i in zero[(zero > t0) & (zero < t1)].tolist():
            c, low = int(starts[i]), max(c0, int(starts[i - 1]) + 1)
            while c > low and text[c - 1].isspace():
                c -= 1
            starts[i] = c
    return starts


def _starts(raw: np.ndarray, a: int, b: int, ends: np.ndarray | None = None) -> np.ndarray:
    """Byte starts of one segment's tokens: clipped, first at ``a``, non-decreasing, overlapping runs spread.

    ``ends`` are the byte ends of the character each token starts with: a run
    of equal starts is spread over that character's bytes (its byte-level
    pieces), never into the middle of the characters after it.
    """
    s = np.clip(raw, a, b)
    s[0] = a
    s = np.maximum.accumulate(s)
    n = s.size
    if n < 2 or not (s[1:] == s[:-1]).any():
        return s
    # runs of equal starts: index of each token within its run and the run's size
    new = np.concatenate(([True], s[1:] != s[:-1]))
    run_id = np.cumsum(new) - 1
    run_first = np.flatnonzero(new)
    j = np.arange(n) - run_first[run_id]
    k = np.bincount(run_id)[run_id]
    run_end = np.append(s[run_first[1:]], b)[run_id]  # where the next run starts
    if ends is not None:
        # the bytes of the character the run starts with, when it ends before the next run
        covered = np.maximum.reduceat(np.clip(ends, a, b), run_first)[run_id]
        run_end = np.where(covered > s, np.minimum(covered, run_end), run_end)
    spread = np.maximum(s, run_end - (k - j))
    return np.where(j == 0, s, spread)


def _word_bytes(cp: np.ndarray, c0: int, c1: int, cb: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Byte starts and ends of the words (maximal non-whitespace runs) of characters ``[c0, c1)``."""
    if c1 <= c0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    space = _is_space(cp[c0:c1])
    word = ~space
    first = word.copy()
    first[1:] &= space[:-1]  # a word starts after whitespace or at the span's start
    last = word.copy()
    last[:-1] &= space[1:]  # and ends before whitespace or at the span's end
    starts = np.flatnonzero(first) + c0
    ends = np.flatnonzero(last) + c0 + 1
    if cb is not None:
        starts, ends = cb[starts], cb[ends]
    return starts, ends


def units_of_targets(nbytes: np.ndarray, word: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-target arrays a :class:`~pctce_cli.data.Document` holds: the entries of scored tokens, in order."""
    return nbytes[targets].astype(np.int32, copy=False), word[targets].astype(np.int32, copy=False)


__all__ = ["UNITS_RULE", "char_to_byte", "token_units", "units_of_targets"]
