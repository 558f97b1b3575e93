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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

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

    def __init__(self, percentiles: Sequence[float] = DEFAULT_PERCENTILES, edges: Sequence[float] | None = None):
        self.levels = check_qs(percentiles)
        self.needed = np.array(sorted(set(self.levels.tolist()) | {25.0, 50.0, 75.0, 95.0}))
        self.edges = None if edges is None else np.asarray(edges, dtype=np.float64)
        self.n = 0
        self.total = 0.0
        self.top1_hits = 0
        self.has_rank = True
        self.counts = np.zeros(1 << BITS, dtype=np.int64)
        self.bands = None if self.edges is None else np.zeros(self.edges.size - 1, dtype=np.int64)
        self._kept: list[np.ndarray] = []

    @staticmethod
    def _bucket(ce: np.ndarray) -> np.ndarray:
        ce = np.ascontiguousarray(ce, dtype=np.float32)
        if ce.size and (not np.isfinite(ce).all() or ce.min() < 0):
            raise UsageError("ce must be finite and >= 0 for streaming summaries")
        # for non-negative floats the bits order like the values (+0.0 is the smallest key)
        return (ce.view(np.uint32) >> np.uint32(32 - BITS)).astype(np.intp)

    def update(self, ce: np.ndarray, rank: np.ndarray | None = None) -> None:
        """Pass 1: add a chunk of CE (and, for top-1, the matching ranks)."""
        bucket = self._bucket(ce)
        self.counts += np.bincount(bucket, minlength=1 << BITS)
        self.n += int(ce.size)
        self.total += float(np.sum(ce, dtype=np.float64))
        if rank is None:
            self.has_rank = False
        else:
            self.top1_hits += int(np.count_nonzero(np.asarray(rank) == 0))
        if self.bands is not None:
            band = np.searchsorted(self.edges, np.asarray(ce, dtype=np.float64), side="right") - 1
            inside = (band >= 0) & (band < self.bands.size)
            self.bands += np.bincount(band[inside], minlength=self.bands.size)

    def plan(self) -> None:
        """Between the passes: the buckets that hold the wanted order statistics."""
        self._lo, self._hi, self._gamma = type7_index(self.n, self.needed) if self.n else (None, None, None)
        self._kth = np.unique(np.concatenate([self._lo, self._hi])) if self.n else np.zeros(0, np.int64)
        ends = np.cumsum(self.counts)
        self._which = np.searchsorted(ends, self._kth, side="right")
        self._wanted = np.zeros(1 << BITS, dtype=bool)
        self._wanted[self._which] = True
        self._before = ends - self.counts  # values in lower buckets

    def collect(self, ce: np.ndarray) -> None:
        """Pass 2: keep this chunk's values that fall in a wanted bucket."""
        if self.n:
            self._kept.append(np.asarray(ce, dtype=np.float32)[self._wanted[self._bucket(ce)]])

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
        nb = np.flatnonzero(self._wanted)
        start = dict(zip(nb.tolist(), np.concatenate([[0], np.cumsum(self.counts[nb])[:-1]]).tolist()))
        idx = np.array([start[b] + int(k) - int(self._before[b]) for b, k in zip(self._which.tolist(), self._kth.tolist())])
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
