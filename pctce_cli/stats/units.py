"""Tokenizer-independent units (SPEC §8): word CE and byte-weighted distributions, from per-token arrays.

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

# The units a CE distribution can be summarized in (SPEC §8); the CLI's --unit choices.
UNITS = ("token", "word", "byte")

RADIX_BITS = 20
RADIX_MIN = 1 << 16


def word_ce(ce, doc, word) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """Per-word CE sums (SPEC §8) from per-token arrays sorted by (doc, pos).

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
    c = as_ce(ce).astype(np.float64, copy=False)
    d = as_int_array(doc, "doc").astype(np.int64, copy=False)
    w = as_int_array(word, "word").astype(np.int64, copy=False)
    if not (c.shape == d.shape == w.shape):
        raise UsageError(f"ce, doc and word must have the same length, got {c.shape[0]}, {d.shape[0]}, {w.shape[0]}")
    empty = w < 0
    n_empty = int(np.count_nonzero(empty))
    empty_ce = float(c[empty].sum())
    c, d, w = c[~empty], d[~empty], w[~empty]
    if c.size > 1 and ((d[1:] < d[:-1]) | ((d[1:] == d[:-1]) & (w[1:] < w[:-1]))).any():
        raise UsageError("word_ce needs targets sorted by document, then position (as the store holds them)")
    if c.size == 0:
        z = np.zeros(0)
        return z, z.astype(np.int64), z.astype(np.int64), empty_ce, n_empty
    # tokens of one word are adjacent in (doc, pos) order: a new word starts where (doc, word) changes
    starts = np.flatnonzero(np.r_[True, (d[1:] != d[:-1]) | (w[1:] != w[:-1])])
    return np.add.reduceat(c, starts), d[starts], w[starts], empty_ce, n_empty


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
    wts = wts.astype(np.int64, copy=False)
    total = int(wts.sum())
    if total == 0:
        return np.full(levels.shape, np.nan)
    return type7_percentiles(total, levels, lambda kth: _weighted_order_statistics(v, wts, kth))


def _weighted_order_statistics(v: np.ndarray, w: np.ndarray, kth: np.ndarray) -> np.ndarray:
    """The ``kth`` smallest (0-based) of the expanded multiset, by a weighted value-bit histogram when large."""
    if v.size >= RADIX_MIN and v.dtype == np.float32:
        key, _ = float32_order_key(v)
        bucket = (key >> np.uint32(32 - RADIX_BITS)).astype(np.intp)
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

    Example:
        >>> v, w = byte_values([2.0, 1.0, 0.3], [4, 1, 0])
        >>> v.tolist(), w.tolist()
        ([0.5, 1.0], [4, 1])
    """
    c = as_ce(ce)
    nb = as_int_array(n_bytes, "n_bytes", n=c.shape[0], nonnegative=True).astype(np.int64, copy=False)
    keep = nb > 0
    return (c[keep] / nb[keep].astype(c.dtype)).astype(c.dtype, copy=False), nb[keep]


def byte_mean(ce, n_bytes) -> float:
    """Mean CE per byte: Σ ce / Σ n_bytes over tokens with a non-empty span (NaN without bytes).

    For plain text scored from a prefix token this is ln(byte perplexity) (SPEC §8).

    Example:
        >>> byte_mean([2.0, 1.0, 0.3], [4, 1, 0])
        0.6
    """
    c = as_ce(ce)
    nb = as_int_array(n_bytes, "n_bytes", n=c.shape[0], nonnegative=True)
    total = int(nb.sum())
    if total == 0:
        return float("nan")
    return float(c[nb > 0].astype(np.float64).sum() / total)


__all__ = ["UNITS", "byte_mean", "byte_values", "weighted_percentiles", "word_ce"]
