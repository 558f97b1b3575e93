"""Exact summaries of many subsets of CE too large for memory (docs/definitions.md#subsets), in the same two passes as the pooled ones.

A subset labels documents and every target belongs to its document's subset,
so a target's subset is a table lookup by its document id (``codes``, one
entry per document id, -1 for a document in no subset). Each subset is a
:class:`~pctce_cli.stats.streaming.StreamingSummary` of its own; one
``np.bincount`` over ``code × buckets + bucket`` fills every subset's
histogram from one chunk at once, and pass 2 keeps each target whose bucket
its subset wants. The results equal :func:`~pctce_cli.stats.summaries.summarize`
on each subset's targets exactly (percentiles, top-1) and to round-off (means).

Memory: the histograms use :data:`SUBSET_BITS` bits (2**16 counters, 512 KiB
a subset; the analysis shows at most 50 subsets, 25 MiB) instead of the pooled
summary's 2**20 (8 MiB). The price is wider buckets (~2**-11 relative, about
0.1% of the value): pass 2 keeps the targets of the wanted buckets, about 16×
more than at 2**20, still a small fraction (measured in docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats.defaults import DEFAULT_PERCENTILES
from pctce_cli.stats.streaming import StreamingSummary, bucket_of

SUBSET_BITS = 16


class SubsetSummaries:
    """Exact summaries of ``n_subsets`` subsets over CE chunks labelled by subset code, in two passes.

    Example:
        >>> s = SubsetSummaries(2, [50])
        >>> chunks = [(np.array([0, 1, 0]), np.array([1.0, 5.0, 3.0], np.float32)), (np.array([1, -1]), np.array([7.0, 9.0], np.float32))]
        >>> for code, ce in chunks: s.update(code, ce)
        >>> s.plan()
        >>> for code, ce in chunks: s.collect(code, ce)
        >>> [(r["n"], r["p50"]) for r in s.compute()]
        [(2, 2.0), (2, 6.0)]
    """

    def __init__(self, n_subsets: int, percentiles: Sequence[float] = DEFAULT_PERCENTILES, bits: int = SUBSET_BITS):
        if n_subsets < 1:
            raise UsageError(f"n_subsets must be at least 1, got {n_subsets}")
        self.bits = bits
        self.parts = [StreamingSummary(percentiles, bits=bits) for _ in range(n_subsets)]
        self._wanted: np.ndarray | None = None

    def _codes(self, code: np.ndarray, ce: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The chunk's targets that belong to a subset: (their code, their bucket)."""
        code = np.asarray(code)
        if code.shape != np.shape(ce):
            raise UsageError("code must give one subset code per value")
        inside = code >= 0
        if code.size and code.max(initial=-1) >= len(self.parts):
            raise UsageError(f"subset code {int(code.max())} is out of range (n_subsets={len(self.parts)})")
        return code[inside].astype(np.intp), inside

    def update(self, code: np.ndarray, ce: np.ndarray, rank: np.ndarray | None = None) -> None:
        """Pass 1: add a chunk of CE with each value's subset code (-1: in no subset) and, for top-1, ranks."""
        c, inside = self._codes(code, ce)
        ce = np.asarray(ce)[inside]
        width = 1 << self.bits
        k = len(self.parts)
        counts = np.bincount(c * width + bucket_of(ce, self.bits), minlength=k * width).reshape(k, width)
        n = np.bincount(c, minlength=k)
        total = np.bincount(c, weights=np.asarray(ce, dtype=np.float64), minlength=k)
        hits = None if rank is None else np.bincount(c[np.asarray(rank)[inside] == 0], minlength=k)
        for i, part in enumerate(self.parts):
            if n[i]:
                part.add_counts(counts[i], n[i], total[i], None if hits is None else hits[i])
            elif rank is None:
                part.has_rank = False

    def plan(self) -> None:
        """Between the passes: each subset's wanted buckets."""
        for part in self.parts:
            part.plan()
        self._wanted = np.stack([p.wanted for p in self.parts]).ravel()

    def collect(self, code: np.ndarray, ce: np.ndarray) -> None:
        """Pass 2: keep each value whose bucket its subset wants."""
        if self._wanted is None:
            raise UsageError("SubsetSummaries.collect needs plan() first")
        c, inside = self._codes(code, ce)
        ce = np.asarray(ce)[inside]
        keep = self._wanted[c * (1 << self.bits) + bucket_of(ce, self.bits)]
        kc, kv = c[keep], ce[keep]
        if not kv.size:
            return
        order = np.argsort(kc, kind="stable")
        kc, kv = kc[order], kv[order]
        bounds = np.searchsorted(kc, np.arange(len(self.parts) + 1))
        for i in np.flatnonzero(np.diff(bounds)).tolist():
            self.parts[i].keep(kv[bounds[i] : bounds[i + 1]])

    @property
    def kept_values(self) -> int:
        """Values held after pass 2, all subsets together."""
        return sum(p.kept_values for p in self.parts)

    def compute(self) -> list[dict[str, float]]:
        """One :func:`~pctce_cli.stats.summaries.summarize` dict per subset, in code order (``n`` 0: NaN summaries)."""
        return [p.compute() for p in self.parts]


def codes_by_document(doc_ids, part_of_doc, n_ids: int | None = None) -> np.ndarray:
    """A lookup table document id → subset code (-1 for ids in no subset), for :class:`SubsetSummaries`.

    Args:
        doc_ids: Document ids (non-negative integers).
        part_of_doc: The subset code of each (-1: in none).
        n_ids: Table length (default: largest id + 1).

    Example:
        >>> codes_by_document([0, 3], [1, 0]).tolist()
        [1, -1, -1, 0]
    """
    ids = np.asarray(doc_ids, dtype=np.int64)
    if ids.size and ids.min() < 0:
        raise UsageError("document ids must be >= 0")
    size = n_ids if n_ids is not None else (int(ids.max()) + 1 if ids.size else 0)
    table = np.full(size, -1, dtype=np.int32)
    table[ids] = np.asarray(part_of_doc)
    return table


def lookup_codes(table: np.ndarray, doc: np.ndarray) -> np.ndarray:
    """Each target's subset code from its document id (-1 beyond the table: a document in no subset)."""
    d = np.asarray(doc, dtype=np.int64)
    inside = (d >= 0) & (d < table.size)
    out = np.full(d.shape, -1, dtype=table.dtype)
    out[inside] = table[d[inside]]
    return out
