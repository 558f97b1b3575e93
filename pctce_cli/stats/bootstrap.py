"""Document-level (cluster) bootstrap intervals for CE summaries (docs/definitions.md#summaries-of-one-checkpoint).

A replicate resamples the D documents with replacement and recomputes a
summary over all targets of the resampled documents. Documents are numbered
by their *sorted unique* ids and replicate ``b`` draws
``rng.integers(0, D, size=D)`` from one ``numpy.random.Generator(seed)``, so a
seed fixes the resampled documents whatever the order of the targets (shards
concatenated in any order give the same intervals) and whichever method runs.

Two methods compute the same replicates:

``"exact"``
    Builds each resampled target array (``np.repeat``) and evaluates the
    summaries on it: O(N) per replicate; minutes for 1000 replicates of 10M
    targets. The reference.

``"fast"``
    Never builds a resampled array: a replicate is a vector of document
    multiplicities, means are ratios of matrix products and each percentile
    is found from two *exact* order statistics of the replicate
    (:mod:`._resample` explains how and what it costs). Equal to the exact
    method's values (the reported ``max_abs_error`` is 0), means up to
    float64 summation order (relative ~1e-15); 10M targets in 20k documents,
    1000 replicates of five summaries: about 5 s on 2 cores.

``"auto"`` (default) runs exact when N × n_boot ≤ 1e6, fast otherwise.

The interval is the percentile interval (:func:`percentile_interval`): the
type-7 ``(1−ci)/2`` and ``(1+ci)/2`` percentiles of the replicate values.
Replicates whose value is NaN (``zXX`` with a zero IQR) are left out; all NaN
gives a NaN interval. Zero documents cannot be resampled: empty input raises
UsageError.

:func:`paired_bpb` bootstraps the ratio summary bits-per-byte of two
checkpoints from per-document sums, with the same resamples (same seed →
same documents) as the other summaries.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from pctce_cli.errors import UsageError
# The resampling engine; AUTO_EXACT_MAX_WORK and _sort_by_ce are re-exported for tests and benchmarks.
from pctce_cli.stats._resample import (  # noqa: F401
    AUTO_EXACT_MAX_WORK,
    _chunks,
    _replicates_many,
    _sort_by_ce,
    draw_counts,
)
from pctce_cli.stats.defaults import DEFAULT_SUMMARIES, LN2
from pctce_cli.stats.summaries import summary_values

__all__ = [
    "BootstrapCI",
    "PairedBootstrap",
    "bootstrap_replicates",
    "bootstrap_ci",
    "paired_bootstrap",
    "multi_bootstrap_ci",
    "draw_counts",
    "percentile_interval",
    "paired_bpb",
]

METHODS = ("auto", "exact", "fast")


# --------------------------------------------------------------------------
# results


class BootstrapCI(dict):
    """``{summary: (lo, hi)}`` plus details as attributes.

    Attributes:
        point: summary values on the full data.
        max_abs_error: bound on |computed − exact| of each interval endpoint
            (0.0 for both methods; see the module docstring).
        method: the method that ran ("exact" or "fast").
        n_boot, ci, seed, n_docs, n_targets: the settings and data sizes.
        replicates: ``{summary: array of n_boot replicate values}``.
    """


class PairedBootstrap(dict):
    """``{summary: {"delta", "lo", "hi", "a", "b", "max_abs_error"}}`` plus settings as attributes.

    ``delta`` = s(b) − s(a) on the full data; ``lo``/``hi`` the interval of the
    replicate differences; ``a``/``b`` the point values.
    """


# --------------------------------------------------------------------------
# argument checks


def _check_settings(n_boot, ci, method) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise UsageError(f"n_boot must be a positive integer, got {n_boot!r}", param="n_boot")
    if not isinstance(ci, (int, float, np.floating)) or not (0.0 < ci < 1.0):
        raise UsageError(f"ci must be a confidence level strictly between 0 and 1, got {ci!r}")
    if method not in METHODS:
        raise UsageError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


# --------------------------------------------------------------------------
# intervals


def percentile_interval(values: np.ndarray, ci: float, drop: str = "nonfinite") -> tuple[float, float]:
    """Type-7 ``(1−ci)/2`` and ``(1+ci)/2`` percentiles of replicate values.

    Args:
        values: 1-D replicate values.
        ci: confidence level in (0, 1).
        drop: which replicates are left out: ``"nonfinite"`` (NaN and ±inf;
            what :func:`paired_bpb` uses) or ``"nan"`` (NaN only, so an
            overflowing ``ppl`` replicate of +inf stays and can make an
            endpoint inf or NaN; what the summary bootstraps use, on
            float64 values).

    Returns:
        ``(lo, hi)``; NaN, NaN when no value is left.

    Example:
        >>> percentile_interval(np.array([1.0, 2.0, np.nan, 3.0, np.inf]), 0.5)
        (1.5, 2.5)
    """
    if drop == "nonfinite":
        v = values[np.isfinite(values)]
    elif drop == "nan":
        v = values[~np.isnan(values)]
    else:
        raise UsageError(f"drop must be 'nonfinite' or 'nan', got {drop!r}")
    if v.size == 0:
        return math.nan, math.nan
    tail = (1.0 - ci) / 2.0
    lo, hi = np.percentile(v, [100.0 * tail, 100.0 * (1.0 - tail)])
    return float(lo), float(hi)


def _interval(values: np.ndarray, ci: float) -> tuple[float, float]:
    """The summary bootstraps' interval: NaN replicates left out, in float64."""
    return percentile_interval(np.asarray(values, dtype=np.float64), ci, drop="nan")


def paired_bpb(nll_a: np.ndarray, nll_b: np.ndarray, n_bytes: np.ndarray, n_boot: int, ci: float, seed: int) -> dict:
    """Paired document-level bootstrap of Δ bits-per-byte (bpb_b − bpb_a).

    bpb = Σ nll / Σ bytes / ln 2 over documents (docs/definitions.md#summaries-of-one-checkpoint), so a replicate is
    ``(w·nll_b − w·nll_a) / (w·bytes) / ln 2`` for document multiplicities
    ``w`` (:func:`draw_counts`: the same resamples as the other summaries
    for the same seed). Replicates with no bytes are NaN and left out.

    Args:
        nll_a, nll_b: per-document Σ CE, over the sorted unique document ids.
        n_bytes: per-document UTF-8 bytes, same order.
        n_boot: number of replicates.
        ci: confidence level in (0, 1).
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        ``{"delta", "lo", "hi", "a", "b"}``.

    Example:
        >>> r = paired_bpb([8 * LN2, 8 * LN2], [4 * LN2, 4 * LN2], [4, 4], n_boot=20, ci=0.9, seed=0)
        >>> [float(r[k]) for k in ("a", "b", "delta", "lo", "hi")]
        [2.0, 1.0, -1.0, -1.0, -1.0]
    """
    nll_a, nll_b = np.asarray(nll_a, np.float64), np.asarray(nll_b, np.float64)
    n_bytes = np.asarray(n_bytes, np.float64)
    total = n_bytes.sum()
    a = nll_a.sum() / total / LN2 if total > 0 else math.nan
    b = nll_b.sum() / total / LN2 if total > 0 else math.nan
    rng = np.random.default_rng(seed)
    n_docs = len(n_bytes)
    diff_doc = nll_b - nll_a
    reps = []
    for start, stop in _chunks(n_boot, n_docs):
        w = draw_counts(rng, n_docs, stop - start)  # (B, D)
        den = w @ n_bytes
        with np.errstate(divide="ignore", invalid="ignore"):
            reps.append(np.where(den > 0, (w @ diff_doc) / np.where(den > 0, den, 1.0) / LN2, np.nan))
    lo, hi = percentile_interval(np.concatenate(reps), ci)
    return {"delta": b - a, "lo": lo, "hi": hi, "a": a, "b": b}


# --------------------------------------------------------------------------
# public API


class _Run:
    """One bootstrap run: settings checked, replicates and point values of every checkpoint."""

    def __init__(self, ces, doc, summaries, n_boot, ci, seed, method, ranks, weights=None):
        _check_settings(n_boot, ci, method)
        self.reps, self.method, self.n_docs, parsed = _replicates_many(ces, doc, summaries, n_boot, seed, method, ranks, weights)
        self.names = [p.name for p in parsed]
        self.points = [summary_values(self.names, ce, rank, weights) for ce, rank in zip(ces, ranks)]
        self.n_boot, self.ci, self.seed = n_boot, ci, seed

    def attach(self, out):
        """Set the settings attributes of a result (``method``, ``n_boot``, ``ci``, ``seed``, ``n_docs``)."""
        out.method, out.n_boot, out.ci, out.seed, out.n_docs = self.method, self.n_boot, self.ci, self.seed, self.n_docs
        return out


def bootstrap_replicates(
    ces: Mapping[str, Sequence[float]] | Sequence,
    doc,
    summaries: Sequence[str] = DEFAULT_SUMMARIES,
    n_boot: int = 1000,
    seed=0,
    method: str = "auto",
    ranks: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Replicate values of summaries for several checkpoints under the same document resamples.

    Args:
        ces: checkpoint name → 1-D CE array; all scored on the same targets
            (rows aligned with ``doc``).
        doc: 1-D int array, document of each target.
        summaries: summary names (``mean``, ``ppl``, ``pXX``, ``iqr``, ``zXX``, ``top1``).
        n_boot: number of replicates.
        seed: int, None or ``numpy.random.Generator``.
        method: "auto", "exact" or "fast" (module docstring).
        ranks: checkpoint name → rank array, needed for ``top1``.

    Returns:
        checkpoint → summary → float64 array of ``n_boot`` replicate values.

    Example:
        >>> reps = bootstrap_replicates({"a": [1.0, 2.0, 3.0]}, [0, 0, 1], ["mean"], n_boot=4)
        >>> reps["a"]["mean"].shape
        (4,)
    """
    _check_settings(n_boot, 0.5, method)
    if not isinstance(ces, Mapping):
        raise UsageError("ces must map checkpoint names to CE arrays")
    names = list(ces)
    rank_list = None
    if ranks is not None:
        missing = [k for k in names if k not in ranks]
        if missing:
            raise UsageError(f"ranks has no entry for checkpoint(s) {', '.join(map(str, missing))}")
        rank_list = [ranks[k] for k in names]
    reps, _, _, _ = _replicates_many([ces[k] for k in names], doc, summaries, n_boot, seed, method, rank_list)
    return dict(zip(names, reps))


def bootstrap_ci(
    ce,
    doc,
    summaries: Sequence[str] = DEFAULT_SUMMARIES,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed=0,
    method: str = "auto",
    rank=None,
    weights=None,
) -> BootstrapCI:
    """Document-level bootstrap percentile intervals for one checkpoint.

    Args:
        ce: 1-D array of finite CE values.
        doc: 1-D int array, document of each target (any ids, any order).
        summaries: summary names, e.g. ``("mean", "p50", "p95")``.
        n_boot: number of replicates.
        ci: confidence level in (0, 1).
        seed: int, None or ``numpy.random.Generator``; same seed → same
            resampled documents.
        method: "auto", "exact" or "fast" (module docstring).
        rank: 1-D int array, needed for ``top1``.
        weights: 1-D int array (each >= 1): value ``i`` counts ``weights[i]``
            times, as in the byte distribution (docs/definitions.md#words-and-bytes: ``ce / n_bytes`` with
            weight ``n_bytes``). Replicates resample documents with their
            weighted values, without expanding them.

    Returns:
        :class:`BootstrapCI`, a dict ``{summary: (lo, hi)}`` with ``point``,
        ``max_abs_error``, ``method``, ``replicates``… as attributes.

    Raises:
        UsageError: empty ``ce``, mismatched lengths, bad settings or names.

    Example:
        >>> ce = [0.1, 0.2, 0.3, 1.0, 2.0, 3.0]
        >>> res = bootstrap_ci(ce, [0, 0, 1, 1, 2, 2], ["mean"], n_boot=200, seed=1)
        >>> lo, hi = res["mean"]
        >>> lo <= res.point["mean"] <= hi
        True
    """
    run = _Run([ce], doc, summaries, n_boot, ci, seed, method, [rank], weights)
    out = run.attach(BootstrapCI({name: _interval(run.reps[0][name], ci) for name in run.names}))
    out.point, out.replicates = run.points[0], run.reps[0]
    out.max_abs_error = {name: 0.0 for name in run.names}
    out.n_targets = int(np.asarray(ce).shape[0])
    return out


def paired_bootstrap(
    ce_a,
    ce_b,
    doc,
    summaries: Sequence[str] = DEFAULT_SUMMARIES,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed=0,
    method: str = "auto",
    rank_a=None,
    rank_b=None,
    weights=None,
) -> PairedBootstrap:
    """Paired bootstrap of the difference s(b) − s(a) between two checkpoints.

    Both checkpoints must be scored on the same targets (rows aligned, one
    shared ``doc`` array); every replicate resamples the same documents for
    both and records s(b) − s(a). An interval excluding 0 means the change
    is larger than document-sampling noise.

    With ``weights`` (one per row, shared by both checkpoints) row ``i``
    counts ``weights[i]`` times in both: paired bytes (docs/definitions.md#words-and-bytes), where a row
    is a run of bytes over which both checkpoints' per-byte values are constant.

    Returns:
        :class:`PairedBootstrap`: ``{summary: {"delta", "lo", "hi", "a", "b",
        "max_abs_error"}}``; replicate differences in ``.replicates``.

    Example:
        >>> a = [1.0, 2.0, 3.0, 4.0]
        >>> b = [0.5, 1.5, 2.5, 3.5]
        >>> res = paired_bootstrap(a, b, [0, 0, 1, 1], ["mean"], n_boot=50)
        >>> res["mean"]["delta"], res["mean"]["lo"], res["mean"]["hi"]
        (-0.5, -0.5, -0.5)
    """
    run = _Run([ce_a, ce_b], doc, summaries, n_boot, ci, seed, method, [rank_a, rank_b], weights)
    (reps_a, reps_b), (point_a, point_b) = run.reps, run.points
    out = run.attach(PairedBootstrap())
    out.replicates = {}
    for name in run.names:
        diff = reps_b[name] - reps_a[name]
        lo, hi = _interval(diff, ci)
        out[name] = {
            "delta": point_b[name] - point_a[name],
            "lo": lo,
            "hi": hi,
            "a": point_a[name],
            "b": point_b[name],
            "max_abs_error": 0.0,
        }
        out.replicates[name] = diff
    return out


def multi_bootstrap_ci(
    ces: Mapping[str, Sequence[float]],
    doc,
    summaries: Sequence[str] = DEFAULT_SUMMARIES,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed=0,
    method: str = "auto",
    ranks: Mapping[str, Sequence[int]] | None = None,
):
    """Intervals for several checkpoints, all under the same document resamples.

    Returns:
        DataFrame with columns ``checkpoint, summary, value, lo, hi,
        max_abs_error``, one row per checkpoint and summary.

    Example:
        >>> df = multi_bootstrap_ci({"a": [1.0, 2.0], "b": [2.0, 3.0]}, [0, 1], ["mean"], n_boot=10)
        >>> df[["checkpoint", "summary", "value"]].values.tolist()
        [['a', 'mean', 1.5], ['b', 'mean', 2.5]]
    """
    import pandas as pd

    _check_settings(n_boot, ci, method)
    reps = bootstrap_replicates(ces, doc, summaries, n_boot, seed, method, ranks)
    rows = []
    for name, by_summary in reps.items():
        point = summary_values(list(by_summary), ces[name], None if ranks is None else ranks[name])
        for summary, values in by_summary.items():
            lo, hi = _interval(values, ci)
            rows.append((name, summary, point[summary], lo, hi, 0.0))
    return pd.DataFrame(rows, columns=["checkpoint", "summary", "value", "lo", "hi", "max_abs_error"])
