"""The bootstrap's resampling engine: document resamples and their replicate values (docs/definitions.md#summaries-of-one-checkpoint).

:func:`draw_counts` draws the resamples, one ``rng.integers(0, D, size=D)``
call per replicate, in chunks of at most ``_CHUNK_CELLS`` multiplicities;
:func:`_replicates_many` checks the data and evaluates every replicate of
several checkpoints under the same resamples, by one of two methods.
:func:`_exact_chunk` builds each resampled target array (``np.repeat``) and
evaluates the summaries on it: the reference. :func:`_fast_chunk`, the
``"fast"`` method, computes the same exact order statistics without building
a resample:

Never builds a resampled array. A replicate is a vector ``w`` of document
multiplicities (B × D matrix ``W``). Means and top-1 are exact ratios of
``W @ per_doc_sum`` and ``W @ per_doc_count``. Percentiles need two
order statistics per replicate; each is found *exactly* in three steps
over the pooled targets sorted once by CE:

1. coarse: per-document counts in ~256 equal-count blocks of the sorted
   order, ``W @ counts`` (one BLAS product) → the block holding the
   wanted rank, per replicate;
2. fine: only inside the union of blocks that some replicate hit, a
   sparse per-document histogram of 64-target blocks,
   ``W @ H`` (cost B × targets in the window);
3. inside the one 64-target block: cumulative multiplicities of its
   targets → the exact target, hence the exact value.

The result equals the exact method's order statistics (ties included),
so the error bound reported as ``max_abs_error`` is 0: no binning or
interpolation inside bins is involved, only numpy's own type-7
interpolation between the two exact order statistics. Means differ from
the exact method only by float64 summation order (relative ~1e-15).

Cost: one sort of the N targets, one (B × D) @ (D × 256) product, and
B × (targets inside the windows) for the sparse step; the windows are
as wide as the spread of the replicate percentiles, rounded out to
coarse blocks (1–2 blocks, under 1 % of the targets, per percentile
for 20k documents). Measured on 2 CPU cores with
``python -c "from benchmarks.bench_analysis import bootstrap_synthetic; bootstrap_synthetic()"``
(from the repository root):
10M float32 targets in 20k documents, 1000 replicates of mean, p50,
p90, p95, p99: 4.7 s fast (9.8 s while other jobs shared the cores)
versus 0.30–0.60 s per replicate, 5–10 minutes, for the exact method.
50 documents: ~7 s; 500k documents of 20 targets: ~15–30 s (drawing
the 5e8 document indices alone takes several seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats.checks import as_ce, as_int_array
from pctce_cli.stats.order import float32_from_order_key, float32_order_key, lerp, type7_index
from pctce_cli.stats.summaries import SummaryName, doc_numbers, finish_summary, parse_summary_names, summary_values

AUTO_EXACT_MAX_WORK = 1_000_000  # N * n_boot below which "auto" runs the exact method
_CHUNK_CELLS = 4_000_000  # replicates per chunk: W holds at most this many doc counts

# Tuned on 2 cores: the coarse product is cheap BLAS work, so use many
# blocks (narrow windows for the sparse step) within a 64 MB float32 matrix.
_COARSE_BLOCKS = 256
_COARSE_CELLS = 16_000_000  # at most D * K1 cells in the coarse count matrix
_FINE_BLOCK = 64  # targets per fine block; the final exact search scans one


@dataclass
class _Prepared:
    """One checkpoint's sufficient statistics for the fast method."""

    sorted_ce: np.ndarray  # (N,) ce in ascending order, input dtype
    sorted_doc: np.ndarray  # (N,) document number (0..D-1) of each sorted target
    sorted_w: np.ndarray | None  # (N,) int64 weight of each sorted target (bytes), None: every target 1
    doc_sum: np.ndarray  # (D,) float64 Σ ce per document
    doc_top1: np.ndarray | None  # (D,) number of rank-0 targets per document
    coarse: np.ndarray | None  # (D, K1) float64 targets per document per coarse block
    block: int  # coarse block length L1




def _sort_by_ce(ce: np.ndarray, inv: np.ndarray, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """``ce`` ascending, and each value's document index, ties in document order.

    float32 CE (what the store holds) is sorted as one packed uint64 key per
    target, order key above and document below: a direct sort of 8-byte keys
    instead of an indirect sort and two gathers (1.8–2.5× faster at 10M targets,
    docs/benchmarks.md).
    """
    if ce.dtype == np.float32 and n_docs <= 2**32:
        key, flipped = float32_order_key(ce)
        packed = (key.astype(np.uint64) << np.uint64(32)) | inv.astype(np.uint64)
        packed.sort()
        sorted_ce = float32_from_order_key(packed >> np.uint64(32), flipped)
        return sorted_ce, (packed & np.uint64(0xFFFFFFFF)).astype(inv.dtype)
    order = np.argsort(ce)  # the order among tied values is irrelevant: they are equal
    return ce[order], inv[order]


def _prepare(ce: np.ndarray, inv: np.ndarray, n_docs: int, rank, need_pct: bool, weights: np.ndarray | None = None) -> _Prepared:
    if weights is None:
        sorted_ce, sorted_doc = _sort_by_ce(ce, inv, n_docs)
        sorted_w = None
    else:  # a weighted value counts weights[i] times: its weight follows it through the sort
        order = np.argsort(ce, kind="stable")
        sorted_ce, sorted_doc, sorted_w = ce[order], inv[order], weights[order]
    # Summing each document's targets in ascending-CE order makes the sums
    # independent of the input order (tied values are equal), so shards in
    # any order give bit-identical replicates.
    mass = sorted_ce if sorted_w is None else sorted_ce.astype(np.float64) * sorted_w
    doc_sum = np.bincount(sorted_doc, weights=mass, minlength=n_docs)
    doc_top1 = None
    if rank is not None:
        doc_top1 = np.bincount(inv, weights=(rank == 0), minlength=n_docs)
    coarse, block = None, 1
    n = ce.shape[0]
    if need_pct:
        # Many coarse blocks make the windows of the sparse step narrow, but
        # the D × K1 matrix must stay small when there are many documents.
        k1 = int(min(_COARSE_BLOCKS, n, max(16, _COARSE_CELLS // n_docs)))
        block = -(-n // k1)
        k1 = -(-n // block)
        cells = sorted_doc * k1 + np.arange(n, dtype=np.int64) // block
        coarse = np.bincount(cells, weights=sorted_w, minlength=n_docs * k1).reshape(n_docs, k1)
        coarse = coarse.astype(np.float32 if coarse.max(initial=0) < 2**24 else np.float64)
    return _Prepared(sorted_ce, sorted_doc, sorted_w, doc_sum, doc_top1, coarse, block)


def _count_le(ends: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per row b: how many of ``ends[b, :]`` (non-decreasing) are ≤ ``k[b, j]``.

    One ``searchsorted`` over all rows: offsetting row b by ``b * span`` makes
    the flattened matrix globally sorted.
    """
    rows, width = ends.shape
    span = int(max(ends.max(initial=0), k.max(initial=0))) + 1
    offset = np.arange(rows, dtype=np.int64)[:, None] * span
    pos = np.searchsorted((ends + offset).ravel(), (k + offset).ravel(), side="right")
    return pos.reshape(k.shape) - np.arange(rows, dtype=np.int64)[:, None] * width


def _count_product(w: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``w @ counts`` for non-negative integer matrices, in float32 when that is exact.

    Every product and partial sum is an integer no larger than
    max(w) × (largest column sum of ``counts``); below 2**24 float32
    represents them all exactly (FMA included), and single precision halves
    the time of the largest product of the method.
    """
    bound = float(w.max(initial=0)) * float(counts.sum(axis=0).max(initial=0))
    if counts.dtype == np.float32 and bound < 2**24:
        return (w.astype(np.float32) @ counts).astype(np.float64)
    return w @ counts.astype(np.float64, copy=False)


def _merge_windows(first: np.ndarray, last: np.ndarray) -> list[tuple[int, int, list[int]]]:
    """Merge the per-column block ranges [first_c, last_c] that overlap or touch."""
    merged: list[tuple[int, int, list[int]]] = []
    for c in np.argsort(first, kind="stable").tolist():
        lo, hi = int(first[c]), int(last[c])
        if merged and lo <= merged[-1][1] + 1:
            a, b, cols = merged[-1]
            merged[-1] = (a, max(b, hi), cols + [c])
        else:
            merged.append((lo, hi, [c]))
    return merged


def _order_stats(prep: _Prepared, w: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Exact k-th smallest value (0-based) of each replicate, without resampling.

    With weights a target counts ``w[doc] * weight`` times in a replicate
    (ranks are ranks of the expanded multiset); every count below is then a
    weight sum instead of a target count.

    Args:
        prep: the checkpoint's sorted targets and per-document block counts.
        w: (B, D) document multiplicities.
        k: (B, Q) wanted ranks, each < that replicate's (weighted) count.

    Returns:
        (B, Q) float64 values.
    """
    n = prep.sorted_ce.shape[0]
    n_rep, n_docs = w.shape
    rows = np.arange(n_rep)[:, None]
    ends1 = np.rint(np.cumsum(_count_product(w, prep.coarse), axis=1)).astype(np.int64)  # (B, K1)
    blk = _count_le(ends1, k)  # (B, Q) coarse block holding rank k
    out = np.empty(k.shape, dtype=np.float64)
    wt = np.ascontiguousarray(w.T)  # (D, B) for the sparse product
    from scipy import sparse

    for first, last, cols in _merge_windows(blk.min(axis=0), blk.max(axis=0)):
        start, stop = first * prep.block, min((last + 1) * prep.block, n)
        base = ends1[:, first - 1] if first > 0 else np.zeros(n_rep, dtype=np.int64)
        width = stop - start
        n_fine = -(-width // _FINE_BLOCK)
        # Row j of this CSR matrix lists the documents of the targets in fine
        # block j, one entry per target: the targets are already in block
        # order, so no sorting is needed, and the matrix product adds up
        # repeated entries.
        indptr = np.minimum(np.arange(n_fine + 1, dtype=np.int64) * _FINE_BLOCK, width)
        ones = np.ones(width) if prep.sorted_w is None else prep.sorted_w[start:stop].astype(np.float64)
        hist_t = sparse.csr_matrix(
            (ones, prep.sorted_doc[start:stop], indptr), shape=(n_fine, n_docs)
        )  # (K2, D) targets (weights) per fine block per document
        ends2 = base[:, None] + np.rint(np.cumsum((hist_t @ wt).T, axis=1)).astype(np.int64)  # (B, K2)
        kk = k[:, cols]  # (B, C)
        fine = _count_le(ends2, kk)  # (B, C) fine block holding rank k
        before = np.where(fine > 0, ends2[rows, np.maximum(fine - 1, 0)], base[:, None])
        first_pos = start + fine * _FINE_BLOCK  # (B, C)
        pos = first_pos[..., None] + np.arange(_FINE_BLOCK)  # (B, C, L2)
        inside = pos < stop
        at = np.minimum(pos, stop - 1)
        mult = w[rows[..., None], prep.sorted_doc[at]] * inside  # (B, C, L2)
        if prep.sorted_w is not None:
            mult = mult * prep.sorted_w[at]
        cum = before[..., None] + np.rint(np.cumsum(mult, axis=-1)).astype(np.int64)
        step = np.count_nonzero(cum <= kk[..., None], axis=-1)  # (B, C)
        out[:, cols] = prep.sorted_ce[first_pos + step]
    return out


def _fast_chunk(preps, w, parsed, levels, doc_n) -> list[dict[str, np.ndarray]]:
    n_b = np.rint(w @ doc_n).astype(np.int64)  # (B,) targets per replicate
    result = []
    if levels:
        lo, hi, gamma = type7_index(n_b[:, None], np.asarray(levels)[None, :])  # (B, L)
    for prep in preps:
        mean = (w @ prep.doc_sum) / n_b
        top1 = (w @ prep.doc_top1) / n_b if prep.doc_top1 is not None else np.full(n_b.shape, np.nan)
        pct = {}
        if levels:
            vals = _order_stats(prep, w, np.concatenate([lo, hi], axis=1))
            interp = lerp(vals[:, : len(levels)], vals[:, len(levels) :], gamma)
            pct = {q: interp[:, i] for i, q in enumerate(levels)}
        result.append({p.name: np.asarray(finish_summary(p, mean, pct, top1), dtype=np.float64) for p in parsed})
    return result


def _exact_chunk(ces, ranks, inv, w, parsed, weights=None) -> list[dict[str, np.ndarray]]:
    """Replicates by building each resampled target array: O(N) per replicate (O(Σ weights) weighted), the reference."""
    names = [p.name for p in parsed]
    out = [{name: np.empty(w.shape[0]) for name in names} for _ in ces]
    for b in range(w.shape[0]):
        per_target = w[b].astype(np.int64)[inv]
        if weights is not None:
            per_target = per_target * weights
        for j, (ce, rank) in enumerate(zip(ces, ranks)):
            rep_rank = None if rank is None else np.repeat(rank, per_target)
            vals = summary_values(names, np.repeat(ce, per_target), rep_rank)
            for name in names:
                out[j][name][b] = vals[name]
    return out


# --------------------------------------------------------------------------
# drawing resamples


def _documents(doc, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique document ids and each target's document number."""
    d = as_int_array(doc, "doc", n=n)
    if n == 0:
        raise UsageError("ce is empty: there are no documents to resample")
    return doc_numbers(d)


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise UsageError(f"seed must be an integer or None, got {seed!r}")
    return np.random.default_rng(seed)


def draw_counts(rng: np.random.Generator, n_docs: int, n_rep: int) -> np.ndarray:
    """Multiplicity of each document in ``n_rep`` replicates, (n_rep, D) float64.

    One ``rng.integers(0, D, size=D)`` call per replicate, so the stream
    (hence the resamples) does not depend on how replicates are chunked, and
    every bootstrap of :mod:`.bootstrap` given the same seed resamples the same
    documents.

    Example:
        >>> draw_counts(np.random.default_rng(0), 3, 2).sum(axis=1).tolist()
        [3.0, 3.0]
    """
    w = np.empty((n_rep, n_docs), dtype=np.float64)
    for i in range(n_rep):
        w[i] = np.bincount(rng.integers(0, n_docs, size=n_docs), minlength=n_docs)
    return w


def _chunks(n_boot: int, n_docs: int):
    size = max(1, min(n_boot, _CHUNK_CELLS // max(n_docs, 1)))
    for start in range(0, n_boot, size):
        yield start, min(n_boot, start + size)


def _replicates_many(
    ces: Sequence, doc, summaries, n_boot: int, seed, method: str, ranks: Sequence | None, weights=None
) -> tuple[list[dict[str, np.ndarray]], str, int, list[SummaryName]]:
    parsed = parse_summary_names(summaries)
    if not ces:
        raise UsageError("no checkpoints given to bootstrap")
    arrays = [as_ce(ce, "ce") for ce in ces]
    n = arrays[0].shape[0]
    for a in arrays[1:]:
        if a.shape[0] != n:
            raise UsageError(
                f"checkpoints must be scored on the same targets: got {n} and {a.shape[0]} CE values"
            )
    ids, inv = _documents(doc, n)
    ranks = list(ranks) if ranks is not None else [None] * len(arrays)
    needs_rank = any(p.kind == "top1" for p in parsed)
    checked_ranks = []
    for r in ranks:
        if r is None and needs_rank:
            raise UsageError("summary 'top1' needs rank (the rank of each target), got none")
        checked_ranks.append(None if r is None else as_int_array(r, "rank", n=n))
    if weights is not None:
        if needs_rank:
            raise UsageError("summary 'top1' is a token summary: it has no weighted (byte) form")
        weights = as_int_array(weights, "weights", n=n).astype(np.int64, copy=False)
        if weights.size and weights.min() < 1:
            raise UsageError(f"weights must be >= 1 (leave out values of weight 0), got {weights.min()}")
    if method == "auto":
        work = n if weights is None else max(n, int(weights.sum()))  # the exact method expands the weights
        method = "exact" if work * n_boot <= AUTO_EXACT_MAX_WORK else "fast"
    n_docs = ids.shape[0]
    levels = sorted({q for p in parsed for q in p.levels()})
    rng = _rng(seed)

    if method == "fast":
        doc_n = np.bincount(inv, weights=weights, minlength=n_docs).astype(np.float64)
        preps = [
            _prepare(a, inv, n_docs, r if needs_rank else None, bool(levels), weights)
            for a, r in zip(arrays, checked_ranks)
        ]
    pieces = []
    for start, stop in _chunks(n_boot, n_docs):
        w = draw_counts(rng, n_docs, stop - start)
        if method == "fast":
            pieces.append(_fast_chunk(preps, w, parsed, levels, doc_n))
        else:
            pieces.append(_exact_chunk(arrays, checked_ranks if needs_rank else [None] * len(arrays), inv, w, parsed, weights))
    reps = [
        {p.name: np.concatenate([piece[j][p.name] for piece in pieces]) for p in parsed}
        for j in range(len(arrays))
    ]
    return reps, method, n_docs, parsed
