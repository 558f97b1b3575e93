"""The document bootstrap (docs/definitions.md#summaries-of-one-checkpoint) of CE too large for memory: the in-memory replicates, exactly, from a window.

:mod:`.bootstrap`'s fast method needs every target sorted in memory. It does
not need them all: a replicate's percentile is one of the few order
statistics near the full data's percentile. This module keeps only those.

* pass 1 (:meth:`StreamingBootstrap.update`): per document, its targets, its
  float64 CE sum and its rank-0 hits (sufficient statistics of mean and top-1);
  the subsets' histograms come from :class:`~.streaming_subsets.SubsetSummaries`.
* :meth:`~StreamingBootstrap.plan`: for each subset and percentile level, a
  *window* of histogram buckets around the full data's order statistic, wide
  enough for the replicates' ones. A replicate ``w`` (document multiplicities)
  moves the rank of a value ``v`` by ``Σ_d w_d (c_d(v) − q n_d)`` against
  ``q × (its size − 1)`` (``c_d``: document d's targets below v, ``n_d`` its
  targets); with ``w_d`` of variance ~1 its standard deviation is at most about
  ``sqrt(q (1 − q) Σ_d n_d²)`` when the documents' fractions below v average
  q. The window is :data:`Z` of those each side.
* pass 2 (:meth:`~StreamingBootstrap.collect`): per document and level, its
  targets below the window; and every target inside a window, with its document.
* :meth:`~StreamingBootstrap.compute`: the replicates are drawn as
  :func:`~._resample.draw_counts` draws them (same seed, same documents); each
  replicate's order statistic is found inside the window by
  :func:`~._resample._order_stats` at its rank less the replicate's count below
  the window. Every replicate is checked to fall inside its window; when one
  does not, :class:`WindowMissed` asks the caller for pass 2 again with wider
  windows (:meth:`plan` with a larger ``widen``), so the result is never wrong.

So the replicates and intervals equal :func:`~.bootstrap.bootstrap_ci`'s
(percentiles exactly; means and top-1 to float64 round-off: documents' sums
are added in stored order, not sorted order). Memory: 8 bytes × 3 + 8 × levels
per document id, plus 12 bytes per target in a window; :data:`WINDOW_CAP`
bounds the windows (about 0.5 GB), beyond which the bootstrap is refused with
the reason rather than run out of memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats._resample import _order_stats, _Prepared, _sort_by_ce, draw_counts
from pctce_cli.stats.bootstrap import percentile_interval
from pctce_cli.stats.order import lerp, type7_index
from pctce_cli.stats.streaming import bucket_of
from pctce_cli.stats.streaming_subsets import lookup_codes
from pctce_cli.stats.summaries import finish_summary, parse_summary_names

Z = 6.0  # window half-width in standard deviations of a replicate's rank shift
WINDOW_CAP = 40_000_000  # targets kept in windows, all subsets and levels (12 bytes each)
COARSE_CELLS = 16_000_000  # documents × coarse blocks of all levels' window indexes together
CHUNK_CELLS = 4_000_000  # replicates drawn at once × documents


class WindowMissed(Exception):
    """A replicate's order statistic fell outside its window: run pass 2 again after ``plan(widen=...)`` larger."""


def doc_runs(doc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts of the runs of equal document ids in a chunk, and each run's id.

    Example:
        >>> [a.tolist() for a in doc_runs(np.array([4, 4, 7, 4]))]
        [[0, 2, 3], [4, 7, 4]]
    """
    doc = np.asarray(doc)
    if not doc.size:
        return np.zeros(0, np.intp), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
    return starts, doc[starts].astype(np.int64)


def add_by_run(out: np.ndarray, starts: np.ndarray, ids: np.ndarray, values: np.ndarray) -> None:
    """``out[id] += Σ values`` over each run (targets sorted by document: one reduce per run)."""
    if starts.size:
        np.add.at(out, ids, np.add.reduceat(values, starts, axis=0))


class StreamingBootstrap:
    """The document-bootstrap intervals of each subset's summaries, in bounded memory (module docstring).

    Args:
        codes: Document id → subset code (-1: in no subset), as
            :func:`~.streaming_subsets.codes_by_document` builds it.
        summaries: Summary names (``mean``, ``ppl``, ``pXX``, ``iqr``, ``zXX``, ``top1``).
        n_boot, ci, seed: As :func:`~.bootstrap.bootstrap_ci`.
    """

    def __init__(self, codes: np.ndarray, summaries: Sequence[str], n_boot: int = 1000, ci: float = 0.95, seed: int = 0, bits: int = 16):
        self.codes = np.asarray(codes)
        self.parsed = parse_summary_names(summaries)
        self.levels = sorted({q for p in self.parsed for q in p.levels()})
        self.n_boot, self.ci, self.seed, self.bits = n_boot, ci, seed, bits
        n_ids = self.codes.size
        self.n = np.zeros(n_ids, np.int64)
        self.sum = np.zeros(n_ids)
        self.top1 = np.zeros(n_ids, np.int64)
        self.has_rank = True
        self.below = np.zeros((n_ids, len(self.levels)), np.int64)
        self._kept: list[tuple[np.ndarray, np.ndarray]] = []

    def update(self, doc: np.ndarray, ce: np.ndarray, rank: np.ndarray | None = None) -> None:
        """Pass 1: a chunk of targets (sorted by document, as stored) with their CE and, for top-1, ranks."""
        starts, ids = doc_runs(doc)
        add_by_run(self.n, starts, ids, np.ones(np.size(ce), np.int64))
        add_by_run(self.sum, starts, ids, np.asarray(ce, dtype=np.float64))
        if rank is None:
            self.has_rank = False
        else:
            add_by_run(self.top1, starts, ids, (np.asarray(rank) == 0).astype(np.int64))

    def plan(self, counts: Sequence[np.ndarray], widen: float = 1.0) -> int:
        """Between the passes: each subset's and level's window of buckets, from its histogram ``counts[code]``.

        Returns:
            Targets the windows will keep.

        Raises:
            UsageError: the windows would keep more than :data:`WINDOW_CAP` targets.
        """
        self._kept, self.below[:] = [], 0
        k = len(counts)
        s2 = np.bincount(self.codes[self.codes >= 0], weights=self.n[self.codes >= 0].astype(np.float64) ** 2, minlength=k)
        self.window = np.zeros((k, len(self.levels), 2), np.int64)  # [first bucket, last bucket + 1)
        kept = 0
        for p, hist in enumerate(counts):
            ends = np.cumsum(hist)
            n = int(ends[-1]) if ends.size else 0
            for j, q in enumerate(self.levels):
                f = q / 100.0
                margin = math.ceil(Z * widen * math.sqrt(f * (1 - f) * s2[p])) + 2
                at = f * max(n - 1, 0)
                lo = np.searchsorted(ends, max(0, math.floor(at) - margin), side="right")
                hi = np.searchsorted(ends, min(max(n - 1, 0), math.ceil(at) + margin), side="right")
                self.window[p, j] = lo, hi + 1
                kept += int(ends[min(hi, ends.size - 1)] - (ends[lo] - hist[lo])) if n else 0
        if kept > WINDOW_CAP:
            raise UsageError(
                f"the bounded-memory bootstrap would keep {kept:,} targets (more than {WINDOW_CAP:,}): the documents are few "
                "and long, so replicates move the percentiles far; summarize without intervals, or in memory"
            )
        self._wanted = np.zeros((k, 1 << self.bits), bool)
        for p in range(k):
            for a, b in self.window[p].tolist():
                self._wanted[p, a:b] = True
        return kept

    def collect(self, doc: np.ndarray, ce: np.ndarray) -> None:
        """Pass 2: per document its targets below each window, and the targets inside a window."""
        doc = np.asarray(doc, dtype=np.int64)
        code = lookup_codes(self.codes, doc)
        inside = code >= 0
        doc, ce, code = doc[inside], np.asarray(ce)[inside], code[inside]
        bucket = bucket_of(ce, self.bits)
        below = (bucket[:, None] < self.window[code, :, 0]).astype(np.int64)  # (n, levels)
        starts, ids = doc_runs(doc)
        add_by_run(self.below, starts, ids, below)
        keep = self._wanted[code, bucket]
        self._kept.append((ce[keep], doc[keep]))

    def compute(self, n_subsets: int) -> list[dict[str, np.ndarray]]:
        """Each subset's replicate values, ``{summary: (n_boot,) float64}``.

        Raises:
            WindowMissed: a replicate fell outside a window (widen and collect again).
        """
        ce = np.concatenate([k[0] for k in self._kept]) if self._kept else np.zeros(0, np.float32)
        doc = np.concatenate([k[1] for k in self._kept]) if self._kept else np.zeros(0, np.int64)
        code = lookup_codes(self.codes, doc)
        return [self._replicates(p, ce[code == p], doc[code == p]) for p in range(n_subsets)]

    def intervals(self, reps: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
        """``{summary: (lo, hi)}``: the percentile interval of the replicates, NaN replicates left out (as :func:`~.bootstrap.bootstrap_ci`)."""
        return {name: percentile_interval(np.asarray(v, dtype=np.float64), self.ci, drop="nan") for name, v in reps.items()}

    def _replicates(self, p: int, ce: np.ndarray, doc: np.ndarray) -> dict[str, np.ndarray]:
        """One subset's replicates: draws as :func:`draw_counts`, order statistics inside the windows."""
        ids = np.flatnonzero((self.codes == p) & (self.n > 0))
        if not ids.size:
            raise UsageError("ce is empty: there are no documents to resample")
        n_docs = ids.size
        n_d = self.n[ids].astype(np.float64)
        docnum = np.searchsorted(ids, doc)
        bucket = bucket_of(ce, self.bits)
        preps, below, inside = [], [], []
        for j in range(len(self.levels)):
            a, b = self.window[p, j]
            sel = (bucket >= a) & (bucket < b)
            preps.append(_window_prep(ce[sel], docnum[sel], n_docs, max(1, COARSE_CELLS // (n_docs * max(1, len(self.levels))))))
            below.append(self.below[ids, j].astype(np.float64))
            inside.append(np.bincount(docnum[sel], minlength=n_docs).astype(np.float64))
        rng = np.random.default_rng(self.seed)
        size = max(1, min(self.n_boot, CHUNK_CELLS // n_docs))
        pieces = []
        for start in range(0, self.n_boot, size):
            w = draw_counts(rng, n_docs, min(size, self.n_boot - start))  # (B, D)
            n_b = np.rint(w @ n_d).astype(np.int64)
            mean = (w @ self.sum[ids]) / n_b
            top1 = (w @ self.top1[ids].astype(np.float64)) / n_b if self.has_rank else np.full(n_b.shape, np.nan)
            pct = {}
            if self.levels:
                lo, hi, gamma = type7_index(n_b[:, None], np.asarray(self.levels)[None, :])  # (B, L)
                for j, q in enumerate(self.levels):
                    base = np.rint(w @ below[j]).astype(np.int64)
                    k = np.stack([lo[:, j], hi[:, j]], axis=1) - base[:, None]  # (B, 2) ranks inside the window
                    if k.min() < 0 or (k.max(axis=1) >= np.rint(w @ inside[j])).any():
                        raise WindowMissed(f"subset {p}, level {q}")
                    vals = _order_stats(preps[j], w, k)
                    pct[q] = lerp(vals[:, 0], vals[:, 1], gamma[:, j])
            pieces.append({s.name: np.asarray(finish_summary(s, mean, pct, top1), dtype=np.float64) for s in self.parsed})
        return {s.name: np.concatenate([piece[s.name] for piece in pieces]) for s in self.parsed}


def _window_prep(ce: np.ndarray, docnum: np.ndarray, n_docs: int, k1: int) -> _Prepared:
    """The fast method's sorted targets and per-document coarse counts, of one window's targets."""
    n = ce.size
    sorted_ce, sorted_doc = _sort_by_ce(np.asarray(ce, dtype=np.float64 if ce.dtype == np.float64 else np.float32), docnum.astype(np.int64), n_docs)  # word sums stay float64
    k1 = int(max(1, min(256, n, k1)))
    block = max(1, -(-n // k1))
    k1 = max(1, -(-n // block))
    cells = sorted_doc * k1 + np.arange(n, dtype=np.int64) // block
    coarse = np.bincount(cells, minlength=n_docs * k1).reshape(n_docs, k1)
    coarse = coarse.astype(np.float32 if coarse.max(initial=0) < 2**24 else np.float64)
    return _Prepared(sorted_ce, sorted_doc, None, np.zeros(0), None, coarse, block)
