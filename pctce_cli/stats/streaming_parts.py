"""Exact summaries of several parts (subsets) of weighted or signed values too large for memory, in two passes.

:class:`~.streaming_subsets.SubsetSummaries` serves token CE (unweighted, ≥ 0).
The word and byte distributions (docs/definitions.md#words-and-bytes) and the divergence from a
reference model (docs/definitions.md#divergence-from-a-reference-model) need more: bytes are
weighted values with a mean numerator of their own (Σ CE / Σ bytes), Δp is
negative as often as positive. :class:`PartSummaries` keeps one
:class:`~.streaming.StreamingSummary` per part and hands each the values of
its part (its code), with their weights; with ``signed`` the histogram
buckets come from an order key that orders negative values too
(:func:`signed_bucket_of`). Percentiles equal the in-memory ones exactly
(weighted ones :func:`~.units.weighted_percentiles`'); means to float64 round-off.

:func:`max_replicates` is the document bootstrap of the maximum from each
document's maximum alone: a replicate's maximum is the largest maximum of the
documents it draws, drawn as :func:`~._resample.draw_counts` draws them (the same
documents as the in-memory bootstrap with the same seed), so it equals the in-memory replicate exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats._resample import draw_counts
from pctce_cli.stats.streaming import BITS, StreamingSummary

_SIGN32 = np.uint32(0x80000000)


def signed_bucket_of(values: np.ndarray, bits: int = BITS) -> np.ndarray:
    """Histogram bucket of each value, ordered like the values, negative ones included (the top ``bits`` of an order key).

    float64 values are bucketed by their float32 rounding, which keeps their order.

    Raises:
        UsageError: a value that is not finite.

    Example:
        >>> signed_bucket_of(np.array([-1.0, -0.5, 0.0, 2.0], np.float32), 4).tolist()
        [4, 4, 8, 12]
    """
    v = np.asarray(values)
    if v.size and not np.isfinite(v).all():
        raise UsageError("values must be finite for streaming summaries")
    with np.errstate(over="ignore"):
        u = np.ascontiguousarray(v, dtype=np.float32).view(np.uint32)
    # negatives: every bit flipped (larger magnitude, smaller key); non-negatives: the sign bit set
    key = np.where(u & _SIGN32, ~u, u | _SIGN32)
    return (key >> np.uint32(32 - bits)).astype(np.intp)


class _SignedSummary(StreamingSummary):
    """A :class:`~.streaming.StreamingSummary` of values of any sign (Δp)."""

    def _bucket(self, ce: np.ndarray) -> np.ndarray:
        return signed_bucket_of(ce, self.bits)


class PartSummaries:
    """Exact summaries of ``n_parts`` parts of values labelled by part code (-1: in no part), in two passes.

    Args:
        n_parts: Parts (codes 0 … n_parts − 1).
        percentiles: Levels of each part's summary.
        bits: Histogram bits of each part (2**bits counters of 8 bytes).
        signed: Values may be negative.

    Example:
        >>> s = PartSummaries(2, [50])
        >>> chunks = [(np.array([0, 1, 0]), np.array([1.0, 5.0, 3.0], np.float32)), (np.array([1, -1]), np.array([7.0, 9.0], np.float32))]
        >>> for code, v in chunks: s.update(code, v)
        >>> s.plan()
        >>> for code, v in chunks: s.collect(code, v)
        >>> [(r["n"], r["p50"]) for r in s.compute()]
        [(2, 2.0), (2, 6.0)]
    """

    def __init__(self, n_parts: int, percentiles: Sequence[float], bits: int = BITS, signed: bool = False):
        if n_parts < 1:
            raise UsageError(f"n_parts must be at least 1, got {n_parts}")
        kind = _SignedSummary if signed else StreamingSummary
        self.parts = [kind(percentiles, bits=bits) for _ in range(n_parts)]

    def _split(self, code: np.ndarray, *arrays):
        """``(part, its slices of arrays)`` for each part present in the chunk (arrays None stay None)."""
        code = np.asarray(code)
        if len(self.parts) == 1:
            inside = code >= 0
            if inside.all():
                yield 0, arrays
            elif inside.any():
                yield 0, tuple(None if a is None else np.asarray(a)[inside] for a in arrays)
            return
        order = np.argsort(code, kind="stable")
        bounds = np.searchsorted(code[order], np.arange(len(self.parts) + 1))
        for p in np.flatnonzero(np.diff(bounds)).tolist():
            rows = order[bounds[p] : bounds[p + 1]]
            yield p, tuple(None if a is None else np.asarray(a)[rows] for a in arrays)

    def update(self, code: np.ndarray, values: np.ndarray, weights=None, numerator=None, rank=None) -> None:
        """Pass 1: a chunk of values with their part codes; ``weights`` (bytes), ``numerator`` (each value's share of the mean's numerator), ``rank`` (top-1).

        Without ``numerator`` the mean is Σ values × weights / Σ weights.
        """
        for p, (v, w, num, r) in self._split(code, values, weights, numerator, rank):
            total = None if num is None else float(np.sum(num, dtype=np.float64))
            self.parts[p].update(v, r, weights=w, total=total)

    def plan(self) -> None:
        """Between the passes: each part's wanted buckets."""
        for part in self.parts:
            part.plan()

    def collect(self, code: np.ndarray, values: np.ndarray, weights=None) -> None:
        """Pass 2: the same chunks (values, weights) as pass 1."""
        for p, (v, w) in self._split(code, values, weights):
            self.parts[p].collect(v, weights=w)

    @property
    def counts(self) -> list[np.ndarray]:
        """Each part's histogram (after pass 1)."""
        return [p.counts for p in self.parts]

    def compute(self) -> list[dict[str, float]]:
        """One ``summarize`` dict per part, in code order (``n`` 0: NaN summaries)."""
        return [p.compute() for p in self.parts]


class DocMax:
    """Each document's largest value, over chunks (for :func:`max_replicates`)."""

    def __init__(self, n_ids: int):
        self.max = np.full(n_ids, -np.inf)

    def update(self, doc: np.ndarray, values: np.ndarray) -> None:
        """Add a chunk of values with their document ids."""
        if np.size(values):
            np.maximum.at(self.max, np.asarray(doc, dtype=np.intp), np.asarray(values, dtype=np.float64))


def max_replicates(doc_max: np.ndarray, n_boot: int, seed: int = 0, chunk_cells: int = 4_000_000) -> np.ndarray:
    """The document bootstrap's replicates of the maximum, from each resampled document's maximum (float64).

    Args:
        doc_max: The maximum of each document that has values, in document-id order.
        n_boot, seed: As :func:`~.bootstrap.bootstrap_ci`.

    Example:
        >>> set(max_replicates(np.array([1.0, 5.0, 2.0]), 200).tolist()) <= {1.0, 2.0, 5.0}
        True
    """
    n_docs = int(np.size(doc_max))
    if not n_docs:
        raise UsageError("ce is empty: there are no documents to resample")
    rng = np.random.default_rng(seed)
    size = max(1, min(n_boot, chunk_cells // n_docs))
    out = []
    for start in range(0, n_boot, size):
        w = draw_counts(rng, n_docs, min(size, n_boot - start))
        out.append(np.where(w > 0, doc_max[None, :], -np.inf).max(axis=1))
    return np.concatenate(out)


__all__ = ["DocMax", "PartSummaries", "max_replicates", "signed_bucket_of"]
