"""Tokenizer-independent units (docs/definitions.md#words-and-bytes): word CE and byte-weighted distributions, from per-token arrays.

A scored token covers ``n_bytes`` bytes of its document's text and belongs to
one word (``word`` = the word's index within its document, or -1 for a token
in no word: an empty span, which belongs to no word or byte and is counted
apart, or a span of a scored text with no word at all). The store's
``nbytes`` and ``word`` columns hold them (:mod:`pctce_cli.data.spans` has the rule).

* word CE = Σ of its tokens' CE; the word distribution is the list of word CEs;
* byte distribution: a token contributes ``n_bytes`` equal values ``ce / n_bytes``.
  Its percentiles are computed from (value, weight) pairs, never by
  materialising one row per byte: a type-7 percentile needs the ``k``-th
  smallest of the expanded values, and the expanded values' order statistics
  are found from cumulative weights.
"""

from __future__ import annotations

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats.checks import as_ce, as_int_array, check_qs
from pctce_cli.stats.order import float32_order_key, type7_percentiles

# The units a CE distribution can be summarized in (docs/definitions.md#words-and-bytes); the CLI's --unit choices.
UNITS = ("token", "word", "byte")

RADIX_BITS = 20
RADIX_MIN = 1 << 16
# Words summed at once by word_ce: their tokens' float64 copy stays small (about 1 MB), not a copy of all of ce.
WORD_BLOCK = 1 << 16


def word_ce(ce, doc, word) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """Per-word CE sums (docs/definitions.md#words-and-bytes) from per-token arrays sorted by (doc, pos).

    Args:
        ce: per-token CE (nats).
        doc: per-token document id (non-decreasing).
        word: per-token word index within its document (non-decreasing within
            a document, as the store writes it), -1 for tokens in no word.

    Raises:
        UsageError: arrays of different lengths, or not sorted by (doc, word)
            (tokens of one word would not be adjacent and their sums split).

    Returns:
        ``(word_ce, word_doc, word_index, empty_ce, n_empty)``: one float64 CE per
        word (in document, then word order), the document and index of each word,
        the summed CE of empty-span tokens and their count.

    Example:
        >>> w, d, i, e, n = word_ce([1.0, 2.0, 0.5, 4.0], [0, 0, 0, 1], [0, 0, -1, 0])
        >>> w.tolist(), d.tolist(), e, n
        ([3.0, 4.0], [0, 1], 0.5, 1)
    """
    c, d, w = _word_inputs(ce, doc, word)
    starts, empty = _word_starts(d, w)
    sums, empty_ce = _word_sums(c, starts, empty)
    return sums, d[starts].astype(np.int64, copy=False), w[starts].astype(np.int64), empty_ce, int(empty.size)


def word_sums(ce, doc, word) -> np.ndarray:
    """The per-word CE sums of :func:`word_ce` alone (what summaries need), without gathering each word's ids.

    Example:
        >>> word_sums([1.0, 2.0, 0.5, 4.0], [0, 0, 0, 1], [0, 0, -1, 0]).tolist()
        [3.0, 4.0]
    """
    c, d, w = _word_inputs(ce, doc, word)
    return _word_sums(c, *_word_starts(d, w))[0]


def _word_inputs(ce, doc, word) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = as_ce(ce)
    d = as_int_array(doc, "doc")
    w = as_int_array(word, "word")
    if not (c.shape == d.shape == w.shape):
        raise UsageError(f"ce, doc and word must have the same length, got {c.shape[0]}, {d.shape[0]}, {w.shape[0]}")
    return c, d, w


def _word_starts(d: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each word starts (indices of its first token) and the indices of the tokens in no word.

    Over the tokens in a word, a word starts where (doc, word) changes. The
    comparisons run on the whole arrays, as they are (no int64 or masked
    copies: a store's 10M targets would copy 240 MB); only the few pairs that
    involve a token in no word are redone, comparing the token after a run
    of them with the token before it.

    Raises:
        UsageError: (doc, word) decreases somewhere among the tokens in a word.
    """
    n = w.shape[0]
    empty = np.flatnonzero(w < 0)
    new = np.ones(n, dtype=bool)  # new[i]: token i starts a word
    bad = np.zeros(max(n - 1, 0), dtype=bool)  # bad[i]: tokens i, i+1 out of order
    if n > 1:
        other = np.not_equal(d[1:], d[:-1])
        np.not_equal(w[1:], w[:-1], out=new[1:])
        new[1:] |= other
        np.less(w[1:], w[:-1], out=bad)
        bad &= np.logical_not(other, out=other)  # a lower word index within the same document
        bad |= np.less(d[1:], d[:-1], out=other)  # or a lower document
        del other
    if empty.size:
        new[empty] = False
        bad[empty[empty < n - 1]] = False
        bad[empty[empty > 0] - 1] = False
        gap = np.diff(empty) != 1
        after = empty[np.r_[gap, True]] + 1  # the token after each run of tokens in no word …
        before = empty[np.r_[True, gap]] - 1  # … and the token before it
        # (a token after a run with none before it starts the first word: its comparison with -1 said so)
        keep = (after < n) & (before >= 0)
        a, b = after[keep], before[keep]
        new[a] = (d[a] != d[b]) | (w[a] != w[b])
        bad[a - 1] = (d[a] < d[b]) | ((d[a] == d[b]) & (w[a] < w[b]))
    if bad.any():
        raise UsageError("word_ce needs targets sorted by document, then position (as the store holds them)")
    return np.flatnonzero(new), empty


def _word_sums(c: np.ndarray, starts: np.ndarray, empty: np.ndarray) -> tuple[np.ndarray, float]:
    """Sum each word's tokens in float64 (tokens in no word left out), and the tokens in no word apart.

    A block of words at a time (:data:`WORD_BLOCK`): each block's tokens are
    widened to float64 and the tokens in no word dropped there, so that memory
    holds no float64 or masked copy of the whole ``ce`` (``np.add.reduceat``
    with ``dtype`` would widen it all). A word's sum is the same whichever
    block it is summed in: its tokens, in order, in float64.
    """
    sums = np.empty(starts.shape[0])
    n_words, n = starts.shape[0], c.shape[0]
    for k0 in range(0, n_words, WORD_BLOCK):
        k1 = min(k0 + WORD_BLOCK, n_words)
        a, b = int(starts[k0]), int(starts[k1]) if k1 < n_words else n
        idx, block = starts[k0:k1] - a, c[a:b]
        e0, e1 = np.searchsorted(empty, (a, b))
        if e1 > e0:  # the block's tokens in no word go out; the starts after them shift down
            out = empty[e0:e1] - a
            idx = idx - np.searchsorted(out, idx)
            block = np.delete(block, out)
        sums[k0:k1] = np.add.reduceat(block.astype(np.float64), idx)
    return sums, float(c[empty].astype(np.float64).sum())


def weighted_percentiles(values, weights, qs) -> np.ndarray:
    """Type-7 percentiles of the multiset where ``values[i]`` occurs ``weights[i]`` times.

    Equals ``np.percentile(np.repeat(values, weights), qs)`` exactly, in
    O(n) memory of the inputs (no expansion).

    Args:
        values: 1-D finite float array.
        weights: 1-D non-negative integer array, same length.
        qs: levels in [0, 100].

    Example:
        >>> weighted_percentiles([1.0, 3.0], [3, 1], [0, 50, 100]).tolist()
        [1.0, 1.0, 3.0]
    """
    v = as_ce(values, "values")
    wts = np.asarray(weights)
    if wts.shape != v.shape or (wts.size and (not np.issubdtype(wts.dtype, np.integer) or wts.min() < 0)):
        raise UsageError("weights must be non-negative integers, one per value")
    levels = check_qs(qs)
    total = int(wts.sum())  # (sums of narrower integers accumulate in int64, as cumsum below does)
    if total == 0:
        return np.full(levels.shape, np.nan)
    return type7_percentiles(total, levels, lambda kth: _weighted_order_statistics(v, wts, kth))


def _weighted_order_statistics(v: np.ndarray, w: np.ndarray, kth: np.ndarray) -> np.ndarray:
    """The ``kth`` smallest (0-based) of the expanded multiset, by a weighted value-bit histogram when large."""
    if v.size >= RADIX_MIN and v.dtype == np.float32:
        key, _ = float32_order_key(v)
        bucket = np.right_shift(key, np.uint32(32 - RADIX_BITS), dtype=np.intp)  # widened as it is shifted: no uint32 copy
        counts = np.bincount(bucket, weights=w, minlength=1 << RADIX_BITS).astype(np.int64)
        ends = np.cumsum(counts)
        which = np.searchsorted(ends, kth, side="right")
        wanted = np.zeros(1 << RADIX_BITS, dtype=bool)
        wanted[which] = True
        keep = wanted[bucket]
        v, w = v[keep], w[keep]  # buckets hold disjoint value ranges: ranks shift by the weight below them
        kth = kth - (ends[which] - counts[which]) + _below_in_kept(counts, wanted, which)
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order])
    return v[order][np.searchsorted(cum, kth, side="right")]


def _below_in_kept(counts: np.ndarray, wanted: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Weight of the kept buckets below each wanted bucket (the offset of its values among the kept ones)."""
    kept_before = np.cumsum(np.where(wanted, counts, 0)) - np.where(wanted, counts, 0)
    return kept_before[which]


def byte_values(ce, n_bytes) -> tuple[np.ndarray, np.ndarray]:
    """(value, weight) pairs of the byte distribution: ``ce / n_bytes`` with weight ``n_bytes`` (empty spans dropped).

    Values are in ``ce``'s dtype (the division is done in it); weights keep
    ``n_bytes``'s integer dtype (int32 from a store).

    Example:
        >>> v, w = byte_values([2.0, 1.0, 0.3], [4, 1, 0])
        >>> v.tolist(), w.tolist()
        ([0.5, 1.0], [4, 1])
    """
    c, nb = _with_bytes(ce, n_bytes)
    return np.divide(c, nb, dtype=c.dtype), nb


def byte_distribution(ce, n_bytes) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`byte_values` and :func:`byte_mean` at once: the inputs checked and copied once, not twice.

    Example:
        >>> v, w, mean = byte_distribution([2.0, 1.0, 0.3], [4, 1, 0])
        >>> v.tolist(), w.tolist(), mean
        ([0.5, 1.0], [4, 1], 0.6)
    """
    c, nb = _with_bytes(ce, n_bytes)
    return np.divide(c, nb, dtype=c.dtype), nb, _mean_per_byte(c, nb)


def _with_bytes(ce, n_bytes) -> tuple[np.ndarray, np.ndarray]:
    """``ce`` and ``n_bytes`` checked, without the targets whose span is empty (no copy when there are none)."""
    c = as_ce(ce)
    nb = as_int_array(n_bytes, "n_bytes", n=c.shape[0], nonnegative=True)
    empty = np.flatnonzero(nb == 0)  # few (special tokens), often none: then nothing is copied
    if empty.size:
        c, nb = np.delete(c, empty), np.delete(nb, empty)
    return c, nb


def byte_mean(ce, n_bytes) -> float:
    """Mean CE per byte: Σ ce / Σ n_bytes over tokens with a non-empty span (NaN without bytes).

    For plain text scored from a prefix token this is ln(byte perplexity) (docs/definitions.md#words-and-bytes).

    Example:
        >>> byte_mean([2.0, 1.0, 0.3], [4, 1, 0])
        0.6
    """
    return _mean_per_byte(*_with_bytes(ce, n_bytes))


def _mean_per_byte(c: np.ndarray, nb: np.ndarray) -> float:
    total = int(nb.sum())
    return float(c.astype(np.float64).sum() / total) if total else float("nan")


__all__ = ["UNITS", "byte_distribution", "byte_mean", "byte_values", "weighted_percentiles", "word_ce", "word_sums"]
