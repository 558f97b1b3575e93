"""Exact summaries of CE too large for memory: two passes over chunks, memory bounded by one chunk.

torchmetrics-style update/compute split for the non-mergeable percentiles:

* pass 1 (:meth:`StreamingSummary.update`): count, float64 sum, top-1 hits,
  band counts and a histogram of every value's order-preserving bits
  (top :data:`BITS` bits of the float32, 2**20 counters);
* :meth:`StreamingSummary.plan` finds the histogram bucket of every wanted
  order statistic (type-7 percentiles need at most two per level);
* pass 2 (:meth:`StreamingSummary.collect`): keep only the values that fall in
  those buckets — buckets hold disjoint value ranges, so the rank of a value
  inside the kept ones is its exact global rank;
* :meth:`StreamingSummary.compute`: the order statistics by ``np.partition`` on
  the kept values, interpolated exactly as ``np.percentile`` does.

Percentiles, band fractions and top-1 equal the in-memory functions exactly;
the mean is summed per chunk in float64 (equal to round-off, ~1e-15 relative).
Peak memory is one chunk plus 8 MiB of counters plus the kept values.

Weighted values (``weights=``: value ``v[i]`` occurs ``w[i]`` times, as the
byte distribution's ``ce / nbytes`` weighted by ``nbytes``) count their weight
in the histogram and keep (value, weight) pairs, so the percentiles equal
:func:`pctce_cli.stats.units.weighted_percentiles` exactly. float64 values
(word CE sums) are bucketed by their float32 rounding, which preserves order,
and kept in float64, so their percentiles equal ``np.percentile`` of them exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats.checks import check_qs
from pctce_cli.stats.defaults import DEFAULT_PERCENTILES
from pctce_cli.stats.order import lerp, type7_index
from pctce_cli.stats.summaries import SummaryName, finish_summary, percentile_name

BITS = 20  # histogram buckets 2**20: bucket width ~2**-15 relative, so the kept values are few


class StreamingSummary:
    """Exact ``summarize`` (and band fractions) over CE chunks, in two passes.

    Example:
        >>> chunks = [np.array([3.0, 1.0], np.float32), np.array([2.0, 4.0], np.float32)]
        >>> s = StreamingSummary([50])
        >>> for c in chunks: s.update(c)
        >>> s.plan()
        >>> for c in chunks: s.collect(c)
        >>> out = s.compute()
        >>> out["n"], out["mean"], out["p50"]
        (4, 2.5, 2.5)
    """

    def __init__(self, percentiles: Sequence[float] = DEFAULT_PERCENTILES, edges: Sequence[float] | None = None, bits: int = BITS):
        self.bits = int(bits)  # fewer bits: fewer counters, more values kept in pass 2 (many summaries at once)
        self.levels = check_qs(percentiles)
        self.needed = np.array(sorted(set(self.levels.tolist()) | {25.0, 50.0, 75.0, 95.0}))
        self.edges = None if edges is None else np.asarray(edges, dtype=np.float64)
        self.n = 0
        self.total = 0.0
        self.top1_hits = 0
        self.has_rank = True
        self.counts = np.zeros(1 << self.bits, dtype=np.int64)
        self.bands = None if self.edges is None else np.zeros(self.edges.size - 1, dtype=np.int64)
        self.weighted: bool | None = None  # set by the first chunk
        self._kept: list[np.ndarray] = []
        self._kept_weights: list[np.ndarray] = []

    def _bucket(self, ce: np.ndarray) -> np.ndarray:
        return bucket_of(ce, self.bits)

    def add_counts(self, counts: np.ndarray, n: int, total: float, top1_hits: int | None) -> None:
        """Pass 1 from counts made elsewhere (unweighted): bucket counts, values, their float64 sum, rank-0 hits (None: no ranks)."""
        self.weighted = False
        self.counts += counts
        self.n += int(n)
        self.total += float(total)
        if top1_hits is None:
            self.has_rank = False
        else:
            self.top1_hits += int(top1_hits)

    def keep(self, values: np.ndarray) -> None:
        """Pass 2 from a selection made elsewhere: values already known to fall in a wanted bucket."""
        self._kept.append(values)

    @property
    def wanted(self) -> np.ndarray:
        """After :meth:`plan`: which buckets hold a wanted order statistic (bool, one per bucket)."""
        return self._wanted



    def _weights(self, ce: np.ndarray, weights) -> np.ndarray | None:
        """``weights`` checked (as int64), or None; every chunk is weighted or none is."""
        if self.weighted is None:
            self.weighted = weights is not None
        elif self.weighted != (weights is not None):
            raise UsageError("every chunk of a streaming summary must be weighted, or none")
        if weights is None:
            return None
        w = np.asarray(weights)
        if w.shape != np.shape(ce) or (w.size and (w.dtype.kind not in "iu" or w.min() < 0)):
            raise UsageError("weights must be non-negative integers, one per value")
        return w.astype(np.int64, copy=False)

    def update(self, ce: np.ndarray, rank: np.ndarray | None = None, *, weights=None, total: float | None = None) -> None:
        """Pass 1: add a chunk of CE (and, for top-1, the matching ranks).

        Args:
            ce: the chunk's values (float32, or float64 kept in float64).
            rank: their ranks, for top-1.
            weights: how many times each value occurs (non-negative integers);
                every chunk of one summary is weighted, or none is.
            total: the chunk's share of the mean's numerator, when it is not
                Σ values × weights (bytes: Σ CE, so the mean is Σ CE / Σ bytes).
        """
        bucket = self._bucket(ce)
        w = self._weights(ce, weights)
        if w is None:
            self.counts += np.bincount(bucket, minlength=1 << self.bits)
            self.n += int(ce.size)
            chunk_total = float(np.sum(ce, dtype=np.float64)) if total is None else float(total)
        else:
            # float64 counts are exact below 2**53 (a chunk's weight is far below)
            self.counts += np.bincount(bucket, weights=w, minlength=1 << self.bits).astype(np.int64)
            self.n += int(w.sum())
            chunk_total = float(np.dot(np.asarray(ce, dtype=np.float64), w)) if total is None else float(total)
        self.total += chunk_total
        if rank is None:
            self.has_rank = False
        else:
            self.top1_hits += int(np.count_nonzero(np.asarray(rank) == 0))
        if self.bands is not None:
            band = np.searchsorted(self.edges, np.asarray(ce, dtype=np.float64), side="right") - 1
            inside = (band >= 0) & (band < self.bands.size)
            if w is None:
                self.bands += np.bincount(band[inside], minlength=self.bands.size)
            else:
                self.bands += np.bincount(band[inside], weights=w[inside], minlength=self.bands.size).astype(np.int64)

    def plan(self) -> None:
        """Between the passes: the buckets that hold the wanted order statistics."""
        self._lo, self._hi, self._gamma = type7_index(self.n, self.needed) if self.n else (None, None, None)
        self._kth = np.unique(np.concatenate([self._lo, self._hi])) if self.n else np.zeros(0, np.int64)
        ends = np.cumsum(self.counts)
        self._which = np.searchsorted(ends, self._kth, side="right")
        self._wanted = np.zeros(1 << self.bits, dtype=bool)
        self._wanted[self._which] = True
        self._before = ends - self.counts  # values in lower buckets

    def collect(self, ce: np.ndarray, *, weights=None) -> None:
        """Pass 2: keep this chunk's values (and weights) that fall in a wanted bucket."""
        if not self.n:
            return
        keep = self._wanted[self._bucket(ce)]
        dtype = np.float64 if np.asarray(ce).dtype == np.float64 else np.float32
        w = self._weights(ce, weights)
        if w is None:
            self._kept.append(np.asarray(ce, dtype=dtype)[keep])
            return
        keep &= w > 0  # a value that occurs no time is no order statistic
        self._kept.append(np.asarray(ce, dtype=dtype)[keep])
        self._kept_weights.append(w[keep])

    @property
    def kept_values(self) -> int:
        """Values held after pass 2 (the memory the selection needs beyond one chunk)."""
        return int(sum(k.size for k in self._kept))

    def compute(self) -> dict[str, float]:
        """The same dict as :func:`pctce_cli.stats.summaries.summarize`, plus ``bands`` when edges were given."""
        out: dict[str, float] = {"n": self.n}
        if not self.n:
            out.update({"mean": math.nan, "ppl": math.nan})
            out.update({percentile_name(q): math.nan for q in self.levels.tolist()})
            out.update({"iqr": math.nan, "z95": math.nan, "top1": math.nan})
            return out
        kept = np.concatenate(self._kept) if self._kept else np.zeros(0, np.float32)
        # buckets hold disjoint, ordered value ranges: a wanted rank, less the count below its
        # bucket, plus the count of the kept buckets below it, is its rank among the kept values
        kept_counts = np.where(self._wanted, self.counts, 0)
        idx = self._kth - self._before[self._which] + (np.cumsum(kept_counts) - kept_counts)[self._which]
        if self.weighted:
            order = np.argsort(kept, kind="stable")
            ends = np.cumsum(np.concatenate(self._kept_weights)[order])
            values = kept[order][np.searchsorted(ends, idx, side="right")]
        else:
            values = np.partition(kept, idx)[idx]
        pos = {int(k): i for i, k in enumerate(self._kth)}
        pct_values = lerp(values[[pos[int(k)] for k in self._lo]], values[[pos[int(k)] for k in self._hi]], self._gamma)
        pct = dict(zip(self.needed.tolist(), pct_values.tolist()))
        mean = self.total / self.n
        out["mean"] = mean
        with np.errstate(over="ignore"):
            out["ppl"] = float(np.exp(mean))
        for q in self.levels.tolist():
            out[percentile_name(q)] = pct[q]
        out["iqr"] = float(finish_summary(SummaryName("iqr", "iqr"), mean, pct, math.nan))
        out["z95"] = float(finish_summary(SummaryName("z95", "z", 95.0), mean, pct, math.nan))
        out["top1"] = self.top1_hits / self.n if self.has_rank else math.nan
        if self.bands is not None:
            out["bands"] = (self.bands / self.n).tolist()
        return out



def bucket_of(ce: np.ndarray, bits: int = BITS) -> np.ndarray:
    """Histogram bucket of each value: the top ``bits`` bits of its float32, which order like the values.

    Raises:
        UsageError: a value that is not finite or is negative.

    Example:
        >>> bucket_of(np.array([0.0, 1.0, 2.0], np.float32), 4).tolist()
        [0, 3, 4]
    """
    ce = np.asarray(ce)
    if ce.size and (not np.isfinite(ce).all() or ce.min() < 0):
        raise UsageError("ce must be finite and >= 0 for streaming summaries")
    if ce.dtype != np.float32:
        with np.errstate(over="ignore"):  # float64 (word CE sums): rounding to float32 keeps their order
            ce = ce.astype(np.float32)
    # for non-negative floats the bits order like the values (+0.0 is the smallest key)
    return (np.ascontiguousarray(ce).view(np.uint32) >> np.uint32(32 - bits)).astype(np.intp)


class DocSums:
    """Per-document CE sums of targets streamed in chunks sorted by document (for bpb, byte_ppl, word_ppl).

    Example:
        >>> sums = DocSums(3)
        >>> sums.update(np.array([0, 2, 2]), np.array([1.0, 2.0, 0.5], np.float32))
        >>> sums.update(np.array([2]), np.array([1.0], np.float32))
        >>> [a.tolist() for a in sums.compute()]
        [[0, 2], [1.0, 3.5]]
    """

    def __init__(self, n_docs: int):
        self.nll = np.zeros(n_docs)
        self.hits = np.zeros(n_docs, dtype=np.int64)

    def update(self, doc: np.ndarray, ce: np.ndarray) -> None:
        """Add a chunk of targets: each run of one document is summed once (float64)."""
        if not doc.size:
            return
        starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
        ids = doc[starts].astype(np.intp)
        np.add.at(self.nll, ids, np.add.reduceat(np.asarray(ce, dtype=np.float64), starts))
        np.add.at(self.hits, ids, np.diff(np.r_[starts, doc.size]))

    def compute(self) -> tuple[np.ndarray, np.ndarray]:
        """``(document ids, summed CE)`` of the documents with targets, sorted by id."""
        ids = np.flatnonzero(self.hits)
        return ids, self.nll[ids]


def stream_word_ce(chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], with_doc: bool = False) -> Iterator:
    """Word CEs (docs/definitions.md#words-and-bytes) of ``(ce, doc, word)`` chunks sorted by (doc, pos), as each chunk completes them.

    A word's targets are adjacent but may straddle chunks: the last word of a
    chunk is held back until the next chunk (or the end), and its sum is taken
    over all its targets at once, so every value is bit for bit
    :func:`pctce_cli.stats.units.word_ce`'s in memory (float64 sums, in the same order).
    Memory holds one chunk and the targets of one word. With ``with_doc`` each
    item is ``(word CEs, their documents)`` (per-subset summaries).

    Raises:
        UsageError: targets not sorted by (doc, word), also across chunks.

    Example:
        >>> chunks = [(np.array([1.0, 2.0]), np.array([0, 0]), np.array([0, 1])), (np.array([0.5, 4.0]), np.array([0, 1]), np.array([1, 0]))]
        >>> [w.tolist() for w in stream_word_ce(chunks)]
        [[1.0], [2.5], [4.0]]
    """
    from pctce_cli.stats.units import word_ce

    held = (np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))  # the open word's targets
    for ce, doc, word in chunks:
        inword = np.asarray(word) >= 0  # empty spans belong to no word (word_ce drops them too)
        c = np.concatenate([held[0], np.asarray(ce, dtype=np.float64)[inword]])
        d = np.concatenate([held[1], np.asarray(doc)[inword]])
        w = np.concatenate([held[2], np.asarray(word)[inword]])
        values, word_doc, word_index = word_ce(c, d, w)[:3]
        if values.size:
            last = (d == word_doc[-1]) & (w == word_index[-1])  # the tail: targets are sorted (checked above)
            held = (c[last], d[last], w[last])
            values, word_doc = values[:-1], word_doc[:-1]
        yield (values, word_doc) if with_doc else values
    if held[0].size:
        last = word_ce(*held)
        yield (last[0], last[1]) if with_doc else last[0]

def streaming_summarize(
    chunks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray | None]]],
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    edges: Sequence[float] | None = None,
) -> dict[str, float]:
    """Exact summaries of CE read twice from ``chunks()`` (a fresh iterator of ``(ce, rank_or_None)`` per call).

    Example:
        >>> data = [(np.array([0.5, 1.0], np.float32), np.array([0, 3])), (np.array([1.5, 3.0], np.float32), np.array([1, 0]))]
        >>> s = streaming_summarize(lambda: iter(data), [50])
        >>> s["n"], s["p50"], s["top1"]
        (4, 1.25, 0.5)
    """
    s = StreamingSummary(percentiles, edges)
    for ce, rank in chunks():
        s.update(ce, rank)
    s.plan()
    for ce, _ in chunks():
        s.collect(ce)
    return s.compute()
