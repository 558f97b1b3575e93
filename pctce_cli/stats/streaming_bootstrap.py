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
* the probe pass (:meth:`~StreamingBootstrap.start_probe`,
  :meth:`~StreamingBootstrap.probe`, :meth:`~StreamingBootstrap.refine`):
  documents mix low and high CE, so the actual standard deviation
  ``sqrt(Σ_d (c_d(v) − q n_d)²)`` is several times below that bound (4–12× on
  the benchmark's data); the probe counts ``c_d`` at the percentile's bucket
  and a histogram 2**:data:`FINE` times finer inside each bound's window, and
  :meth:`refine` narrows every window to :data:`Z` measured standard
  deviations at the finer resolution (about 5× fewer targets kept). It costs
  one more pass over the shards.
* pass 2 (:meth:`~StreamingBootstrap.collect`): per document and level, its
  targets below the window; and every target inside a window, with its document.
* :meth:`~StreamingBootstrap.compute`: the replicates are drawn as
  :func:`~._resample.draw_counts` draws them (same seed, same documents); each
  replicate's order statistic is found inside the window by
  :func:`~._resample._order_stats` at its rank less the replicate's count below
  the window. Every replicate is checked to fall inside its window; when one
  does not, :class:`WindowMissed` asks the caller for pass 2 again with wider
  windows (the bound's, :meth:`plan` with a larger ``widen``), so the result
  is never wrong, only later.

Values of any sign (Δp, ``signed``) are bucketed by
:func:`~.streaming_parts.signed_bucket_of`, an order key of their float32 bits,
instead of the bits themselves; everything else is unchanged. Weighted values
(bytes: ``weights=`` to every pass, value ``i`` counting ``weights[i]`` times,
as :func:`~.bootstrap.bootstrap_ci`'s) count by their weight everywhere a
target counts 1: a document's size, sum (Σ w v), counts below and inside
the windows, the histograms (weighted ones, from
:class:`~.streaming_parts.PartSummaries`) and the ranks inside a window
(the fast method's weighted order statistics). The windows' sizes are then
weight (bytes); :data:`WINDOW_CAP` is checked against them divided by the
values' mean weight (an estimate of the values kept: the cap bounds memory).

So the replicates and intervals equal :func:`~.bootstrap.bootstrap_ci`'s
(percentiles exactly; means and top-1 to float64 round-off: documents' sums
are added in stored order, not sorted order). Memory: 8 bytes × 4 + 12 × levels
per document id (4 more per level with weights), plus 8 bytes per target in a window (float32 CE, int32
document; 4 more with weights) and about as much again while the replicates are computed;
:data:`WINDOW_CAP` bounds the windows, beyond which the bootstrap is refused
with the reason rather than run out of memory.
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
from pctce_cli.stats.streaming_parts import signed_bucket_of
from pctce_cli.stats.streaming_subsets import lookup_codes
from pctce_cli.stats.summaries import finish_summary, parse_summary_names

Z = 6.0  # window half-width in standard deviations of a replicate's rank shift
WINDOW_CAP = 40_000_000  # targets kept in windows, all subsets and levels (8 bytes each, ~16 while computing)
COARSE_CELLS = 16_000_000  # documents × coarse blocks of all levels' window indexes together
CHUNK_CELLS = 4_000_000  # replicates drawn at once × documents
FINE = 8  # the probe's histograms split each bucket of the windows into up to 2**FINE (bits + FINE bits of the float32)
PROBE_CELLS = 4_000_000  # counters of all the probe's histograms together; beyond, no probe (the bound's windows)


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
        signed: Values may be negative (Δp): histogram buckets of an order key
            that orders them too (:func:`~.streaming_parts.signed_bucket_of`;
            the histograms given to :meth:`plan` must use the same buckets).
    """

    def __init__(self, codes: np.ndarray, summaries: Sequence[str], n_boot: int = 1000, ci: float = 0.95, seed: int = 0, bits: int = 16, signed: bool = False):
        self.codes = np.asarray(codes)
        self.parsed = parse_summary_names(summaries)
        self.levels = sorted({q for p in self.parsed for q in p.levels()})
        self.n_boot, self.ci, self.seed, self.bits = n_boot, ci, seed, bits
        self._bucket = signed_bucket_of if signed else bucket_of
        n_ids = self.codes.size
        self.n = np.zeros(n_ids, np.int64)  # per document: its targets (with weights: their weight)
        self.n_values = 0  # targets in all (with weights: values, not their weight)
        self.sum = np.zeros(n_ids)
        self.top1 = np.zeros(n_ids, np.int64)
        self.has_rank = True
        self.weighted = None  # set by the first update: every chunk weighted (bytes) or none
        self.below = np.zeros((len(self.levels), n_ids), np.int32)  # per level, per document: targets (weight) below the window
        self.wbits = bits  # the windows' resolution in bits of the float32 (bits, or bits + FINE after a probe)
        self._kept: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        self._probe: dict | None = None

    def update(self, doc: np.ndarray, ce: np.ndarray, rank: np.ndarray | None = None, weights=None) -> None:
        """Pass 1: a chunk of targets (sorted by document, as stored) with their CE and, for top-1, ranks.

        ``weights`` (bytes): value ``i`` counts ``weights[i]`` times, as
        :func:`~.bootstrap.bootstrap_ci`'s ``weights`` (its mean Σ w v / Σ w); give
        them to every pass, or to none.
        """
        w = self._weights(ce, weights)
        if self.weighted is None:
            self.weighted = w is not None
            if w is not None:  # a document's bytes may pass 2**31
                self.below = self.below.astype(np.int64)
        starts, ids = doc_runs(doc)
        self.n_values += int(np.size(ce))
        add_by_run(self.n, starts, ids, np.ones(np.size(ce), np.int64) if w is None else w)
        add_by_run(self.sum, starts, ids, np.asarray(ce, dtype=np.float64) * (1 if w is None else w))
        if rank is None:
            self.has_rank = False
        else:
            add_by_run(self.top1, starts, ids, (np.asarray(rank) == 0).astype(np.int64))

    def plan(self, counts: Sequence[np.ndarray], widen: float = 1.0, check: bool = True) -> int:
        """Between the passes: each subset's and level's window of buckets, from its histogram ``counts[code]``.

        Returns:
            Targets the windows will keep.

        Raises:
            UsageError: the windows would keep more than :data:`WINDOW_CAP` targets.
        """
        self._kept, self.below[:], self.wbits, self._probe = [], 0, self.bits, None
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
        if check:  # (not before a probe: it narrows the windows, then checks)
            _check_cap(self._targets(kept))
        self._counts = [np.asarray(c) for c in counts]
        return kept

    def collect(self, doc: np.ndarray, ce: np.ndarray, weights=None) -> None:
        """Pass 2: per document its targets (weight) below each window, and the targets inside a window, with their weights."""
        wt = self._weights(ce, weights)
        doc, ce, code, wt = self._in_subsets(doc, ce, wt)
        bucket = self._bucket(ce, self.wbits)
        starts, ids = doc_runs(doc)
        keep = np.zeros(ce.size, bool)
        lengths, run_code = np.diff(np.r_[starts, ce.size]), code[starts]  # a document's targets share its subset
        for j in range(len(self.levels)):  # one level at a time: a chunk × levels table would be the peak
            if self.window.shape[0] == 1:
                lo, hi = self.window[0, j]
            else:
                lo, hi = (np.repeat(self.window[run_code, j, e], lengths) for e in (0, 1))
            add_by_run(self.below[j], starts, ids, (bucket < lo).astype(self.below.dtype) * (1 if wt is None else wt))
            keep |= (bucket >= lo) & (bucket < hi)
        ce = np.asarray(ce, dtype=np.float64 if np.asarray(ce).dtype == np.float64 else np.float32)  # word sums stay float64
        self._kept.append((ce[keep], doc[keep].astype(self._doc_dtype), None if wt is None else wt[keep].astype(np.int32)))

    def start_probe(self, counts: Sequence[np.ndarray]) -> bool:
        """After :meth:`plan` at ``widen`` 1: set up a probe pass that narrows the windows (:meth:`probe`, :meth:`refine`).

        The bound of the module docstring assumes every document's targets lie
        all below or all above a percentile; real documents mix, and the rank
        shift's actual standard deviation ``sqrt(Σ_d (c_d(v) − q n_d)²)`` is
        several times smaller (4–12× on the benchmark's data). The probe
        measures it, and a finer histogram inside each window, so that the
        collected windows are a fraction of the bound's.

        Returns:
            False when the probe's histograms would exceed :data:`PROBE_CELLS`
            counters even at the buckets' own resolution; keep the bound's windows.
        """
        widths = self.window[..., 1] - self.window[..., 0]  # (k, L) buckets
        fine = next((f for f in range(FINE, -1, -1) if int(widths.sum()) << f <= PROBE_CELLS), None)
        if not self.levels or fine is None:
            return False
        widths = widths << fine  # as fine as the counters allow (wide windows: few documents, small data)
        center = np.zeros(widths.shape, np.int64)
        for p, hist in enumerate(self._counts):
            ends = np.cumsum(hist)
            n = int(ends[-1]) if ends.size else 0
            for j, q in enumerate(self.levels):
                center[p, j] = np.searchsorted(ends, math.floor(q / 100.0 * max(n - 1, 0)), side="right") if n else 0
        off = np.r_[0, np.cumsum(widths.ravel())[:-1]].reshape(widths.shape)
        self._probe = {"fine": fine, "off": off, "hist": np.zeros(int(widths.sum()), np.int64), "center": center,
                       "c": np.zeros((len(self.levels), self.codes.size, 2), self.below.dtype), "table": _probe_table(self.window, center, self.bits)}  # fmt: skip
        return True

    def probe(self, doc: np.ndarray, ce: np.ndarray, weights=None) -> None:
        """The probe pass: per window a histogram of ``bits + fine`` bits; per document its targets (weight) below and up to the percentile's bucket."""
        doc, ce, code, wt = self._in_subsets(doc, ce, self._weights(ce, weights))
        pr = self._probe
        fine = self._bucket(ce, self.bits + pr["fine"])
        flat = code * (1 << self.bits) + (fine >> pr["fine"])  # (subset, bucket): one gather per level below
        starts, ids = doc_runs(doc)
        below = np.empty((ce.size, 2), self.below.dtype)
        for j in range(len(self.levels)):
            t = pr["table"][j][flat]
            sel = t >= 4
            cs = code[sel]
            key = pr["off"][cs, j] + fine[sel] - (self.window[cs, j, 0] << pr["fine"])
            if key.size:  # counted over the keys' span only: a full-size count per level would be the probe's peak
                first = int(key.min())
                span = np.bincount(key - first, weights=None if wt is None else wt[sel])
                pr["hist"][first : first + span.size] += span.astype(np.int64)
            np.bitwise_and(t, 1, out=below[:, 0], casting="unsafe")
            np.bitwise_and(t >> 1, 1, out=below[:, 1], casting="unsafe")
            add_by_run(pr["c"][j], starts, ids, below if wt is None else below * wt[:, None])

    def refine(self, widen: float = 1.0) -> int:
        """After the probe pass: windows of ``bits + fine`` bits, :data:`Z` × ``widen`` measured standard deviations each side.

        Returns:
            Targets the windows will keep (collect them with :meth:`collect`).
        """
        pr, k = self._probe, len(self._counts)
        e = pr["fine"]
        valid = (self.codes >= 0) & (self.n > 0)
        cd, nd = self.codes[valid], self.n[valid].astype(np.float64)
        n_part = np.maximum(np.bincount(cd, weights=nd, minlength=k), 1.0)
        new, kept = np.zeros_like(self.window), 0
        for j, q in enumerate(self.levels):
            sd = np.zeros(k)
            for col in (0, 1):  # below the percentile's bucket, and up to its end: the larger spread
                c = pr["c"][j, :, col][valid].astype(np.float64)
                dev = c - (np.bincount(cd, weights=c, minlength=k) / n_part)[cd] * nd
                sd = np.maximum(sd, np.sqrt(np.bincount(cd, weights=dev * dev, minlength=k)))
            for p, hist in enumerate(self._counts):
                a, b = (int(x) for x in self.window[p, j])
                h = pr["hist"][pr["off"][p, j] : pr["off"][p, j] + ((b - a) << e)]
                n = int(hist.sum())
                ends = int(hist[:a].sum()) + np.cumsum(h)
                margin = math.ceil(Z * widen * sd[p]) + 2
                at = q / 100.0 * max(n - 1, 0)
                lo = min(int(np.searchsorted(ends, max(0, math.floor(at) - margin), side="right")), h.size - 1)
                hi = min(int(np.searchsorted(ends, min(max(n - 1, 0), math.ceil(at) + margin), side="right")), h.size - 1)
                new[p, j] = (a << e) + lo, (a << e) + hi + 1
                kept += int(ends[hi] - (ends[lo] - h[lo])) if n else 0
        _check_cap(self._targets(kept))
        self.window, self.wbits, self._probe, self._kept, self.below[:] = new, self.bits + e, None, [], 0
        return kept

    def _in_subsets(self, doc: np.ndarray, ce: np.ndarray, weights: np.ndarray | None = None):
        """A chunk's targets whose document is in a subset: ``(doc, ce, subset code, weights or None)``."""
        doc = np.asarray(doc, dtype=np.int64)
        code = lookup_codes(self.codes, doc)
        inside = code >= 0
        return doc[inside], np.asarray(ce)[inside], code[inside], None if weights is None else weights[inside]

    def _weights(self, ce: np.ndarray, weights) -> np.ndarray | None:
        """``weights`` as int64 (checked: one per value, >= 0, as every chunk before), or None."""
        if self.weighted is not None and self.weighted != (weights is not None):
            raise UsageError("weights must be given with every chunk or with none")
        if weights is None:
            return None
        w = np.asarray(weights)
        if w.shape != np.shape(ce) or w.dtype.kind not in "iu" or (w.size and w.min() < 0):
            raise UsageError("weights must be non-negative integers, one per value")
        return w.astype(np.int64, copy=False)

    def _targets(self, kept: int) -> int:
        """Targets in windows of ``kept`` weight: with weights, at the values' mean weight (what :data:`WINDOW_CAP` bounds is memory)."""
        total = int(self.n.sum())
        return kept if not self.weighted or not total else math.ceil(kept * self.n_values / total)

    @property
    def _doc_dtype(self):
        return np.int32 if self.codes.size < 2**31 else np.int64

    def compute(self, n_subsets: int) -> list[dict[str, np.ndarray]]:
        """Each subset's replicate values, ``{summary: (n_boot,) float64}``.

        Raises:
            WindowMissed: a replicate fell outside a window (widen and collect again).
        """
        ce = np.concatenate([k[0] for k in self._kept]) if self._kept else np.zeros(0, np.float32)
        doc = np.concatenate([k[1] for k in self._kept]) if self._kept else np.zeros(0, self._doc_dtype)
        wt = (np.concatenate([k[2] for k in self._kept]) if self._kept else np.zeros(0, np.int32)) if self.weighted else None
        self._kept = [(ce, doc, wt)]  # one copy, not chunks and their concatenation
        code = lookup_codes(self.codes, doc)
        return [self._replicates(p, ce[code == p], doc[code == p], None if wt is None else wt[code == p]) for p in range(n_subsets)]

    def intervals(self, reps: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
        """``{summary: (lo, hi)}``: the percentile interval of the replicates, NaN replicates left out (as :func:`~.bootstrap.bootstrap_ci`)."""
        return {name: percentile_interval(np.asarray(v, dtype=np.float64), self.ci, drop="nan") for name, v in reps.items()}

    def _replicates(self, p: int, ce: np.ndarray, doc: np.ndarray, wt: np.ndarray | None) -> dict[str, np.ndarray]:
        """One subset's replicates: draws as :func:`draw_counts`, order statistics inside the windows."""
        ids = np.flatnonzero((self.codes == p) & (self.n > 0))
        if not ids.size:
            raise UsageError("ce is empty: there are no documents to resample")
        n_docs = ids.size
        n_d = self.n[ids].astype(np.float64)
        docnum = np.searchsorted(ids, doc).astype(self._doc_dtype)
        bucket = self._bucket(ce, self.wbits)
        preps, below, inside = [], [], []
        for j in range(len(self.levels)):
            a, b = self.window[p, j]
            sel = (bucket >= a) & (bucket < b)
            w_sel = None if wt is None else wt[sel]
            preps.append(_window_prep(ce[sel], docnum[sel], n_docs, max(1, COARSE_CELLS // (n_docs * max(1, len(self.levels)))), w_sel))
            below.append(self.below[j, ids].astype(np.float64))
            inside.append(np.bincount(docnum[sel], weights=w_sel, minlength=n_docs).astype(np.float64))
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


def _probe_table(window: np.ndarray, center: np.ndarray, bits: int) -> np.ndarray:
    """Per level, per (subset, bucket): bit 0 below the percentile's bucket, bit 1 up to it, bit 2 inside the window."""
    k, n_levels = center.shape
    bucket = np.arange(1 << bits)
    table = np.zeros((n_levels, k, 1 << bits), np.uint8)
    for p in range(k):
        for j in range(n_levels):
            a, b = window[p, j]
            table[j, p] = (bucket < center[p, j]) | ((bucket <= center[p, j]) << 1) | (((bucket >= a) & (bucket < b)) << 2)
    return table.reshape(n_levels, -1)


def _check_cap(kept: int) -> None:
    if kept > WINDOW_CAP:
        raise UsageError(
            f"the bounded-memory bootstrap would keep {kept:,} targets (more than {WINDOW_CAP:,}): the documents are few "
            "and long, so replicates move the percentiles far; summarize without intervals, or in memory"
        )


def _window_prep(ce: np.ndarray, docnum: np.ndarray, n_docs: int, k1: int, weights: np.ndarray | None = None) -> _Prepared:
    """The fast method's sorted targets and per-document coarse counts (weights: bytes), of one window's targets."""
    n = ce.size
    ce = np.asarray(ce, dtype=np.float64 if ce.dtype == np.float64 else np.float32)  # word sums stay float64
    if weights is None:
        sorted_ce, sorted_doc = _sort_by_ce(ce, docnum, n_docs)
        sorted_w = None
    else:  # a value's weight follows it through the sort (as the in-memory fast method)
        order = np.argsort(ce, kind="stable")
        sorted_ce, sorted_doc, sorted_w = ce[order], docnum[order], weights[order].astype(np.int64)
    k1 = int(max(1, min(256, n, k1)))
    block = max(1, -(-n // k1))
    k1 = max(1, -(-n // block))
    cells = sorted_doc.astype(np.int64) * k1 + np.arange(n, dtype=np.int64) // block
    coarse = np.bincount(cells, weights=sorted_w, minlength=n_docs * k1).reshape(n_docs, k1)
    coarse = coarse.astype(np.float32 if coarse.max(initial=0) < 2**24 else np.float64)
    return _Prepared(sorted_ce, sorted_doc, sorted_w, np.zeros(0), None, coarse, block)
