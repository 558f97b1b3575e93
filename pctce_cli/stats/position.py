"""Position in the context (docs/definitions.md#position-in-the-context): bucket edges, bucket assignment, per-bucket summaries, the context length.

Position is a token-level dimension, beside the document-level subsets: a
target's bucket is fixed by its own ``pos`` (its index in its document) or its
``ctx`` (how many tokens the model conditioned on), not by its document. A
bucket is ``[lo, hi)``; the last bucket of user edges is open (``hi`` None).
Every target is in exactly one bucket, and per-bucket summaries are
:func:`~pctce_cli.stats.summaries.summarize` over that bucket's targets.

The context length follows the sliding windows of the scoring engine
(``plan_windows``): the first window is ``[0, min(L, n))`` and each next one
ends ``step = min(stride, L - 1)`` tokens later (the last one ends at the
document's end ``n``) and starts ``L`` tokens before its end; a target at
index ``i`` of the model's input is scored by the first window that ends
after it, with ``i - start`` tokens of context.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats.defaults import DEFAULT_PERCENTILES
from pctce_cli.stats.summaries import summarize

# the largest position a store can hold (pos is int32): an edge above it names an empty bucket
MAX_POSITION = 2**31 - 1

# how a store scored before the per-document n_input and prefix_offset gets ctx for prompts and chats
RESCORE = "re-score the checkpoint with 'pctce score … --force' to record each document's input tokens, which ctx needs"

__all__ = ["bucket_index", "bucket_label", "bucket_summaries", "context_lengths", "document_context", "position_buckets", "recorded_context", "where_it_stops_falling"]


def position_buckets(largest: int, edges: Sequence[int] | None = None, option: str = "position_edges") -> np.ndarray:
    """The lower edges of the buckets, starting at 0: bucket ``k`` is ``[lo[k], lo[k+1])``, the last one open.

    Args:
        largest: The largest position (or context length) to be bucketed.
        edges: User edges ``e_1 < e_2 < …`` (whole numbers ≥ 0); the buckets are
            ``[0, e_1)`` (when ``e_1 > 0``), ``[e_k, e_{k+1})`` and ``[e_last, ∞)``.
            None: powers of two, {0}, {1}, [2, 4), [4, 8), … up to the bucket
            holding ``largest``.
        option: How errors name the edges.

    Raises:
        UsageError: negative, non-whole, too large or not strictly increasing edges.

    Example:
        >>> position_buckets(9).tolist(), position_buckets(9, [4, 8]).tolist()
        ([0, 1, 2, 4, 8], [0, 4, 8])
    """
    if edges is None:
        top = max(int(largest), 0)
        lo = [0, 1]
        while lo[-1] * 2 <= top:
            lo.append(lo[-1] * 2)
        return np.asarray(lo if top >= 1 else [0], dtype=np.int64)
    e = list(edges)
    if not e:
        raise UsageError(f"{option}: give at least one edge, e.g. 1024,4096", param=option)
    for v in e:
        try:
            if not np.isfinite(float(v)):
                raise ValueError(v)
        except (TypeError, ValueError):
            raise UsageError(f"{option}: expected whole numbers separated by commas (e.g. 1024,4096), got '{v}'", param=option) from None
        if float(v) != int(float(v)):
            raise UsageError(f"{option}: edges must be whole numbers of tokens, got {v}", param=option)
        if float(v) < 0:
            raise UsageError(f"{option}: edges must be >= 0, got {int(float(v))}", param=option)
        if float(v) > MAX_POSITION:  # past it no position can be (and numpy's int64 would overflow)
            raise UsageError(f"{option}: edges must be at most {MAX_POSITION:,} (a position is a 32-bit integer), got {v}", param=option)
    e = [int(float(v)) for v in e]
    for a, b in zip(e, e[1:]):
        if b <= a:
            raise UsageError(f"{option}: edges must be strictly increasing, got {a} then {b}", param=option)
    return np.asarray(([0] if e[0] > 0 else []) + e, dtype=np.int64)


def bucket_index(values, lo: np.ndarray, option: str = "pos") -> np.ndarray:
    """Each value's bucket: the ``k`` with ``lo[k] <= value < lo[k+1]``.

    Raises:
        UsageError: a negative value (named by ``option``).

    Example:
        >>> bucket_index([0, 1, 2, 3, 4, 100], position_buckets(100)).tolist()
        [0, 1, 2, 2, 3, 7]
    """
    v = np.asarray(values, dtype=np.int64)
    if v.size and v.min() < 0:
        raise UsageError(f"{option} must be >= 0, got {int(v.min())}", param=option)
    return np.searchsorted(np.asarray(lo, dtype=np.int64), v, side="right") - 1


def bucket_label(lo: np.ndarray, k: int, open_last: bool) -> tuple[str, int, int | None]:
    """``(label, from, to)`` of bucket ``k``: ``"0"``, ``"2–3"``, ``"4096+"`` (``to`` exclusive, None when open).

    Example:
        >>> [bucket_label(np.array([0, 1, 2, 4]), k, True)[0] for k in range(4)]
        ['0', '1', '2–3', '4+']
    """
    a = int(lo[k])
    if k + 1 < len(lo):
        b = int(lo[k + 1])
    elif open_last:
        return f"{a}+", a, None
    else:
        b = max(2 * a, 1)
    return (f"{a}" if b == a + 1 else f"{a}–{b - 1}"), a, b


def bucket_summaries(ce, values, lo: np.ndarray, rank=None, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> list[tuple[int, dict]]:
    """``(bucket, summarize(...))`` of every non-empty bucket, in bucket order.

    Example:
        >>> [(k, s["n"], s["p50"]) for k, s in bucket_summaries([1.0, 2.0, 3.0, 5.0], [0, 2, 3, 9], np.array([0, 2, 8]), percentiles=[50])]
        [(0, 1, 1.0), (1, 2, 2.5), (2, 1, 5.0)]
    """
    ce = np.asarray(ce)
    k = bucket_index(values, lo)
    order = np.argsort(k, kind="stable")
    bounds = np.searchsorted(k[order], np.arange(len(lo) + 1))
    r = None if rank is None else np.asarray(rank)[order]
    c = ce[order]
    out = []
    for b in range(len(lo)):
        s, e = bounds[b], bounds[b + 1]
        if e > s:
            out.append((b, summarize(c[s:e], None if r is None else r[s:e], percentiles=percentiles)))
    return out


def document_context(index, n, max_length: int, stride: int) -> np.ndarray:
    """The context length of the targets at input indices ``index`` of documents of ``n`` input tokens (one, or one per target).

    The arithmetic of the scoring engine's sliding windows (module docstring):
    ``L = max_length``, ``step = min(stride, L - 1)``.

    Example:
        >>> document_context(np.arange(1, 10), 10, 4, 2).tolist()
        [1, 2, 3, 2, 3, 2, 3, 2, 3]
    """
    i = np.asarray(index, dtype=np.int64)
    L, step = int(max_length), min(int(stride), int(max_length) - 1)
    k = np.where(i < L, 0, (i - L) // step + 1)  # the window: the first that ends after i
    end = np.minimum(L + k * step, n)
    return i - np.maximum(end - L, 0)


def recorded_context(pos, n_input, prefix_offset, max_length: int, stride: int, doc=None) -> np.ndarray:
    """Each target's context length from its ``pos`` and its document's recorded geometry (one value per target).

    Any document: a prompt, earlier chat turns and a prefix token are input the
    model reads without scoring it. The target is input index ``pos +
    prefix_offset`` of ``n_input`` tokens, and :func:`document_context` places
    its window.

    Args:
        pos: The targets' positions.
        n_input: Per target, its document's input tokens (the ``n_input`` column).
        prefix_offset: Per target, 1 when its document has a prefix token, else 0 (``prefix_offset``).
        max_length, stride: The partition's window settings.
        doc: The targets' documents, to name one in an error (optional).

    Raises:
        UsageError: a target outside its document's input (the recorded counts do not fit the rows).

    Example:
        >>> recorded_context(np.arange(5, 9), 9, 0, 4, 2).tolist()  # a 5-token prompt, a 4-token completion
        [3, 2, 3, 3]
    """
    p = np.asarray(pos, dtype=np.int64)
    i = p + np.asarray(prefix_offset, dtype=np.int64)
    n = np.broadcast_to(np.asarray(n_input, dtype=np.int64), i.shape)
    bad = (i < 1) | (i >= n)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        which = "" if doc is None else f" of document {int(np.asarray(doc)[j])}"
        raise UsageError(f"ctx: the target at position {int(p[j])}{which} lies outside its {int(n[j])} recorded input tokens: the document table does not fit the rows")
    return document_context(i, n, max_length, stride)


def context_lengths(doc, pos, max_length: int, stride: int) -> np.ndarray:
    """Each target's context length ``ctx`` from the stored ``doc`` and ``pos`` alone (sorted by document, then position).

    For stores written before each document's ``n_input`` and ``prefix_offset``
    were recorded (:func:`recorded_context` reads them). A document's tokens are recovered from its rows when every input token after
    the first is a target (plain text: no prompt, no chat turns): its first
    target is at input index 1, so its positions start at 0 when a prefix
    token was prepended (``offset`` 1) and at 1 otherwise, and it has
    ``last pos + 1 + offset`` input tokens.

    Raises:
        UsageError: a document whose targets are not every token after its first
            (named: its context length cannot be recovered from the stored rows).

    Example:
        >>> context_lengths([7] * 9, np.arange(9), 4, 2).tolist()  # a prefix token, then 9 text tokens
        [1, 2, 3, 2, 3, 2, 3, 2, 3]
    """
    p = np.asarray(pos, dtype=np.int64)
    if not p.size:
        return np.zeros(0, np.int64)
    ids, first, last, count = doc_extents(doc, p)
    check_extents(ids, first, last, count)
    return context_of(p, np.repeat(first, count), np.repeat(last, count), max_length, stride)


def doc_extents(doc, pos) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(document, first pos, last pos, targets)`` of each run of rows of one document (rows sorted by document, then position).

    Example:
        >>> [a.tolist() for a in doc_extents([3, 3, 5], [0, 1, 1])]
        [[3, 5], [0, 1], [1, 1], [2, 1]]
    """
    d = np.asarray(doc, dtype=np.int64)
    p = np.asarray(pos, dtype=np.int64)
    if not d.size:
        z = np.zeros(0, np.int64)
        return z, z, z, z
    starts = np.r_[0, np.flatnonzero(d[1:] != d[:-1]) + 1]
    count = np.diff(np.r_[starts, d.size])
    return d[starts], p[starts], p[starts + count - 1], count


def check_extents(ids, first, last, count) -> None:
    """Raise unless every document scores every token after its first (the context length is recoverable).

    Raises:
        UsageError: naming the first document that does not.
    """
    bad = (np.asarray(first) > 1) | (np.asarray(last) - np.asarray(first) + 1 != np.asarray(count))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise UsageError(
            f"ctx: document {int(ids[j])} does not score every token after its first (targets at positions "
            f"{int(first[j])}–{int(last[j])}, {int(count[j])} of them): the context length is recovered only for plain-text documents",
            remedy=RESCORE,
        )


def context_of(pos, first, last, max_length: int, stride: int) -> np.ndarray:
    """The context length of targets at ``pos`` whose documents' first and last positions are ``first`` and ``last`` (per target)."""
    offset = 1 - np.asarray(first, dtype=np.int64)  # the first target is input index 1
    return document_context(np.asarray(pos, dtype=np.int64) + offset, np.asarray(last, dtype=np.int64) + 1 + offset, max_length, stride)


def position_range(text: str) -> tuple[int, int | None]:
    """``(lo, hi)`` of a position range written ``>=A``, ``<B`` or ``>=A,<B`` (``hi`` None: no upper bound).

    Raises:
        ValueError: anything else (the caller words the message: it knows the rule).

    Example:
        >>> position_range(">=4096"), position_range("<64"), position_range(">=1024,<4096")
        ((4096, None), (0, 64), (1024, 4096))
    """
    import re

    m = re.fullmatch(r"\s*(?:>=\s*(\d+))?\s*,?\s*(?:<\s*(\d+))?\s*", text)
    if not m or not (m.group(1) or m.group(2)):
        raise ValueError(text)
    lo, hi = int(m.group(1) or 0), int(m.group(2)) if m.group(2) else None
    if hi is not None and hi <= lo:
        raise ValueError(text)
    return lo, hi


def range_text(dim: str, lo: int, hi: int | None) -> str:
    """How a gate check on a position range is named: ``pos ≥ 4096``, ``ctx < 64``, ``pos in [1024, 4096)``.

    Example:
        >>> range_text("pos", 4096, None), range_text("ctx", 0, 64), range_text("pos", 1024, 4096)
        ('pos ≥ 4096', 'ctx < 64', 'pos in [1024, 4096)')
    """
    if hi is None:
        return f"{dim} ≥ {lo}"
    return f"{dim} < {hi}" if lo == 0 else f"{dim} in [{lo}, {hi})"


def where_it_stops_falling(values, share: float = 0.1) -> tuple[int, int]:
    """``(lowest, stop)`` of a curve over buckets (e.g. median CE by position): the index of its lowest value, and the
    first index after which it falls by less than ``share`` of its whole fall (``values[0] − lowest value``) more.

    ``stop <= lowest`` always; ``stop == 0`` when the curve never falls below its start; ``stop`` the last index when
    it is still falling there.

    Example:
        >>> where_it_stops_falling([5.0, 4.0, 3.0, 2.05, 2.0, 2.1])  # after index 3 it falls 0.05 more, < 0.3
        (4, 3)
        >>> where_it_stops_falling([1.0, 2.0, 3.0]), where_it_stops_falling([3.0, 2.0, 1.0])
        ((0, 0), (2, 2))
    """
    y = np.asarray(values, dtype=np.float64)
    if not y.size:
        raise ValueError("no values")
    lowest = int(np.argmin(y))
    fall = y[0] - y[lowest]
    if not fall > 0:
        return lowest, 0
    later_min = np.minimum.accumulate(y[::-1])[::-1]  # later_min[k]: the lowest value from k on
    ahead = np.r_[later_min[1:], np.inf]  # the lowest value after k
    stop = int(np.flatnonzero(ahead >= y - share * fall)[0])
    return lowest, stop
