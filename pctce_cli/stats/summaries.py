"""Summaries of one checkpoint's per-token CE distribution (docs/definitions.md#summaries-of-one-checkpoint).

Every function here takes plain arrays (``ce``: per-target cross-entropy in
nats, ``rank``: rank of the target's logit, ``doc``: document index of each
target) and returns plain Python numbers, numpy arrays or dicts.

Conventions fixed here and used by the whole ``stats`` package:

* Percentiles are Hyndman–Fan type 7 (numpy's default ``linear``), computed in
  float64 whatever the input dtype, and agree bit for bit with
  ``np.percentile(ce.astype(np.float64), q)`` (:mod:`.order`).
* Empty input is defined: summaries of zero targets are NaN with ``n = 0``.
  (Resampling zero documents is not defined; :mod:`.bootstrap` raises.)
* ``ce`` must be finite. The scorer refuses non-finite CE, so a NaN or inf
  here means the caller passed the wrong column; failing loudly beats a NaN
  percentile that silently poisons a release gate (:mod:`.checks`).

Defaults live in :mod:`.defaults`; this module re-exports them and the order
statistics of :mod:`.order` under their old names.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats.checks import as_ce, as_int_array, check_qs, format_level
from pctce_cli.stats.defaults import (
    DEFAULT_CONCORDANCE_SET,
    DEFAULT_EDGES,
    DEFAULT_PERCENTILES,
    DEFAULT_SUMMARIES,
    LN2,
)

# Re-exported: these lived here before stats.checks, stats.order and stats.defaults
# existed, and other modules import them from here.
from pctce_cli.stats.order import (  # noqa: F401
    RADIX_BITS,
    RADIX_MIN,
    float32_from_order_key,
    float32_order_key,
    lerp,
    order_statistics,
    percentiles,
    type7_index,
)

__all__ = [
    "DEFAULT_PERCENTILES",
    "DEFAULT_SUMMARIES",
    "DEFAULT_CONCORDANCE_SET",
    "DEFAULT_EDGES",
    "SummaryName",
    "percentiles",
    "percentile_name",
    "parse_summary_name",
    "summarize",
    "summary_value",
    "summary_values",
    "doc_normalized",
    "doc_sums",
]

# Names that are not percentiles; the pXX / zXX families are parsed.
_PLAIN_SUMMARIES = ("mean", "ppl", "iqr", "top1")
_FAMILY_RE = re.compile(r"^([pz])(\d+(?:\.\d+)?)$")
VALID_SUMMARY_HELP = "mean, ppl, iqr, top1, pXX (percentile, e.g. p50, p99.9) or zXX (standardized percentile, e.g. z95)"


# --------------------------------------------------------------------------
# summary names


# summarize's ``percentiles`` parameter shadows the function inside its body.
percentiles_fn = percentiles


def percentile_name(q: float) -> str:
    """Canonical summary name of percentile ``q``: 50 → ``p50``, 99.9 → ``p99.9``.

    Example:
        >>> percentile_name(95), percentile_name(99.9)
        ('p95', 'p99.9')
    """
    return "p" + format_level(q)


def summary_columns(percentiles, *extra: str) -> list[str]:
    """The summary columns an analysis of ``percentiles`` needs: ``mean``, each ``pXX``, then ``extra``.

    Example:
        >>> summary_columns([50, 99.9]), summary_columns([95], "iqr")
        (['mean', 'p50', 'p99.9'], ['mean', 'p95', 'iqr'])
    """
    return ["mean", *(percentile_name(q) for q in percentiles), *extra]


@dataclass(frozen=True)
class SummaryName:
    """A parsed summary name.

    Attributes:
        name: canonical spelling (``p050`` → ``p50``).
        kind: ``"mean"``, ``"ppl"``, ``"iqr"``, ``"top1"``, ``"p"`` (percentile)
            or ``"z"`` (standardized percentile ``(p_q − p50)/iqr``).
        q: the level for ``p``/``z`` kinds, else None.
    """

    name: str
    kind: str
    q: float | None = None

    def levels(self) -> tuple[float, ...]:
        """Percentile levels this summary needs."""
        if self.kind == "p":
            return (self.q,)
        if self.kind == "iqr":
            return (25.0, 75.0)
        if self.kind == "z":
            return (self.q, 25.0, 50.0, 75.0)
        return ()


def parse_summary_name(name: str) -> SummaryName:
    """Validate a summary name and return its canonical parsed form.

    Valid names: ``mean``, ``ppl``, ``iqr``, ``top1``, ``pXX`` (percentile,
    0 ≤ XX ≤ 100, decimals allowed) and ``zXX`` (standardized percentile).

    Raises:
        UsageError: naming the bad name and listing the valid ones.

    Example:
        >>> parse_summary_name("p99.9")
        SummaryName(name='p99.9', kind='p', q=99.9)
        >>> parse_summary_name("mean").kind
        'mean'
    """
    if not isinstance(name, str):
        raise UsageError(f"summary name must be a string, got {name!r}")
    if name in _PLAIN_SUMMARIES:
        return SummaryName(name, name)
    m = _FAMILY_RE.match(name)
    if m:
        q = float(m.group(2))
        if q > 100:
            raise UsageError(f"summary {name!r}: percentiles must be in [0, 100], got {format_level(q)}")
        return SummaryName(m.group(1) + format_level(q), m.group(1), q)
    raise UsageError(f"unknown summary {name!r}; valid summaries: {VALID_SUMMARY_HELP}")


def parse_summary_names(names: Iterable[str] | str) -> list[SummaryName]:
    """Parse several names; a bare string is one name, duplicates are dropped."""
    if isinstance(names, str):
        names = [names]
    out: list[SummaryName] = []
    seen = set()
    for raw in names:
        parsed = parse_summary_name(raw)
        if parsed.name not in seen:
            seen.add(parsed.name)
            out.append(parsed)
    if not out:
        raise UsageError(f"summaries must name at least one summary ({VALID_SUMMARY_HELP})")
    return out


def finish_summary(parsed: SummaryName, mean: float, pct: Mapping[float, float], top1: float) -> float:
    """Turn sufficient statistics (mean, percentiles by level, top-1) into one summary.

    Shared by :func:`summary_values` and the bootstrap so both define each
    derived summary (ppl, iqr, z) identically. Works elementwise on arrays.
    """
    kind = parsed.kind
    if kind == "mean":
        return mean
    if kind == "ppl":
        with np.errstate(over="ignore"):
            return np.exp(mean)
    if kind == "top1":
        return top1
    if kind == "p":
        return pct[parsed.q]
    iqr = np.subtract(pct[75.0], pct[25.0])
    if kind == "iqr":
        return iqr
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(iqr == 0, np.nan, np.subtract(pct[parsed.q], pct[50.0]) / np.where(iqr == 0, 1.0, iqr))


# --------------------------------------------------------------------------
# named summaries


def summary_values(names: Sequence[str] | str, ce, rank=None, weights=None) -> dict[str, float]:
    """Evaluate several named summaries with one percentile pass.

    Args:
        names: summary names (see :func:`parse_summary_name`).
        ce: 1-D array of finite CE values.
        rank: 1-D int array of target ranks, needed only for ``top1``.
        weights: 1-D non-negative int array: ``ce[i]`` counts ``weights[i]``
            times (the byte distribution, docs/definitions.md#words-and-bytes); ``top1`` is then undefined.

    Returns:
        dict canonical name → float (NaN for empty ``ce``).

    Raises:
        UsageError: unknown name, or ``top1`` requested without ``rank``.

    Example:
        >>> summary_values(["mean", "p50", "iqr"], [1.0, 2.0, 3.0, 6.0])
        {'mean': 3.0, 'p50': 2.5, 'iqr': 2.0}
    """
    parsed = parse_summary_names(names)
    arr = as_ce(ce)
    if weights is not None:
        return _weighted_summary_values(parsed, arr, weights)
    n = arr.shape[0]
    top1 = math.nan
    if any(p.kind == "top1" for p in parsed):
        if rank is None:
            raise UsageError("summary 'top1' needs rank (the rank of each target), got none")
        r = as_int_array(rank, "rank", n=n)
        top1 = float(np.count_nonzero(r == 0) / n) if n else math.nan
    levels = sorted({q for p in parsed for q in p.levels()})
    pct = dict(zip(levels, percentiles(arr, levels).tolist())) if levels else {}
    mean = float(np.mean(arr, dtype=np.float64)) if n else math.nan
    return {p.name: float(finish_summary(p, mean, pct, top1)) for p in parsed}


def _weighted_summary_values(parsed, arr: np.ndarray, weights) -> dict[str, float]:
    """:func:`summary_values` of the multiset where ``arr[i]`` occurs ``weights[i]`` times (no expansion)."""
    from pctce_cli.stats.units import weighted_percentiles

    if any(p.kind == "top1" for p in parsed):
        raise UsageError("summary 'top1' is a token summary: it has no weighted (byte) form")
    w = as_int_array(weights, "weights", n=arr.shape[0], nonnegative=True).astype(np.int64, copy=False)
    total = int(w.sum())
    levels = sorted({q for p in parsed for q in p.levels()})
    pct = dict(zip(levels, weighted_percentiles(arr, w, levels).tolist())) if levels else {}
    mean = float(np.dot(arr.astype(np.float64), w.astype(np.float64)) / total) if total else math.nan
    return {p.name: float(finish_summary(p, mean, pct, math.nan)) for p in parsed}


def summary_value(name: str, ce, rank=None) -> float:
    """Evaluate one named summary (``mean``, ``ppl``, ``pXX``, ``iqr``, ``zXX``, ``top1``).

    Example:
        >>> summary_value("p50", [3.0, 1.0, 2.0])
        2.0
        >>> summary_value("top1", [0.1, 2.0], rank=[0, 3])
        0.5
    """
    return next(iter(summary_values([name], ce, rank).values()))


def summarize(
    ce,
    rank=None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    *,
    unit: str = "token",
    doc=None,
    word=None,
    nbytes=None,
) -> dict[str, float]:
    """The standard summary of one checkpoint's CE distribution (docs/definitions.md#summaries-of-one-checkpoint), in tokens, words or bytes (docs/definitions.md#words-and-bytes).

    Args:
        ce: 1-D array of finite CE values (nats), float32 or float64, one per target.
        rank: optional 1-D int array, rank of each target (0 = top choice).
        percentiles: levels in [0, 100] reported as ``pXX``.
        unit: ``"token"`` (each target one value), ``"word"`` (each word the
            sum of its targets' CE; needs ``doc`` and ``word``) or ``"byte"``
            (each target ``nbytes`` values ``ce / nbytes``; needs ``nbytes``).
            Targets in no word (``word`` -1) or with no byte are left out.
        doc, word, nbytes: per-target document id, word index and byte count,
            sorted by (doc, pos) as the store holds them.

    Returns:
        dict with ``n`` (targets, words or bytes), ``mean``, ``ppl``, one
        ``pXX`` per level (in the order given), ``iqr`` (p75 − p25), ``z95``
        ((p95 − p50)/iqr, NaN when iqr == 0) and ``top1`` (fraction of rank 0;
        NaN without ``rank``, and in words and bytes). With nothing to summarize
        ``n`` is 0 and every other value NaN.

    Raises:
        UsageError: bad levels or unit, non-finite ``ce``, arrays of the wrong
            length, or a unit without the arrays it needs.

    Example:
        >>> s = summarize([0.5, 1.0, 1.5, 3.0], rank=[0, 0, 1, 7], percentiles=[50])
        >>> s["n"], s["mean"], s["p50"], s["iqr"], s["top1"]
        (4, 1.5, 1.25, 1.0, 0.5)
        >>> summarize([0.5, 1.0, 1.5, 3.0], percentiles=[50], unit="word", doc=[0, 0, 0, 1], word=[0, 0, 1, 0])["p50"]
        1.5
        >>> summarize([2.0, 1.0], percentiles=[50], unit="byte", nbytes=[4, 1])["mean"]
        0.6
    """
    from pctce_cli.stats.units import UNITS

    if unit not in UNITS:
        raise UsageError(f"unit must be one of {', '.join(UNITS)}; got {unit!r}", param="unit")
    arr = as_ce(ce)
    levels = check_qs(percentiles)
    needed = sorted(set(levels.tolist()) | {25.0, 50.0, 75.0, 95.0})
    n, mean, pct, top1 = _DISTRIBUTIONS[unit](arr, needed, rank=rank, doc=doc, word=word, nbytes=nbytes)
    out: dict[str, float] = {"n": int(n), "mean": mean}
    with np.errstate(over="ignore"):
        out["ppl"] = float(np.exp(mean))
    for q in levels.tolist():
        out[percentile_name(q)] = pct[q]
    out["iqr"] = float(finish_summary(SummaryName("iqr", "iqr"), mean, pct, math.nan))
    out["z95"] = float(finish_summary(SummaryName("z95", "z", 95.0), mean, pct, math.nan))
    out["top1"] = top1
    return out


def _token_distribution(arr, needed, rank=None, **_) -> tuple:
    """``(n, mean, {level: percentile}, top1)`` of the targets' CE (top1 from ``rank``, NaN without)."""
    n, top1 = arr.shape[0], math.nan
    if rank is not None:
        top1 = float(np.count_nonzero(as_int_array(rank, "rank", n=n) == 0) / n) if n else math.nan
    pct = dict(zip(needed, percentiles_fn(arr, needed).tolist()))
    return n, float(np.mean(arr, dtype=np.float64)) if n else math.nan, pct, top1


def _word_distribution(arr, needed, doc=None, word=None, **_) -> tuple:
    """``(n, mean, {level: percentile}, NaN)`` of the word CEs (each word the sum of its targets')."""
    from pctce_cli.stats.units import word_sums

    if doc is None or word is None:
        raise UsageError("unit 'word' needs doc and word (each target's document and word index)", param="unit")
    values = word_sums(arr, doc, word)
    n = values.shape[0]
    pct = dict(zip(needed, percentiles_fn(values, needed).tolist()))
    return n, float(values.mean()) if n else math.nan, pct, math.nan


def _byte_distribution(arr, needed, nbytes=None, **_) -> tuple:
    """``(n, mean, {level: percentile}, NaN)`` of the per-byte values (weighted, never one row per byte)."""
    from pctce_cli.stats.units import byte_distribution, weighted_percentiles

    if nbytes is None:
        raise UsageError("unit 'byte' needs nbytes (each target's byte count)", param="unit")
    values, weights, mean = byte_distribution(arr, nbytes)
    pct = dict(zip(needed, weighted_percentiles(values, weights, needed).tolist()))
    return int(weights.sum()), mean, pct, math.nan


# how each unit's values are made from the per-target arrays (the units of pctce_cli.stats.units.UNITS)
_DISTRIBUTIONS = {"token": _token_distribution, "word": _word_distribution, "byte": _byte_distribution}


# --------------------------------------------------------------------------
# per-document normalizations


def doc_numbers(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique document ids and each target's document number (0-based).

    Stores write targets document by document, so sorted input skips the
    full sort that ``np.unique`` would do (a quarter of a second per 10M targets).

    Example:
        >>> ids, inv = doc_numbers(np.array([3, 3, 7]))
        >>> ids.tolist(), inv.tolist()
        ([3, 7], [0, 0, 1])
    """
    if d.shape[0] > 1 and np.all(d[1:] >= d[:-1]):
        new = np.concatenate([[True], d[1:] != d[:-1]])
        return d[new], np.cumsum(new, dtype=np.int64) - 1
    ids, inv = np.unique(d, return_inverse=True)
    return ids, inv.astype(np.int64)


def doc_sums(ce, doc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-document sufficient statistics, over the sorted unique document ids.

    Returns:
        ``(doc_ids, nll_sum, n_targets)``: sorted unique ids, float64 sum of CE
        per document and target count per document.

    Example:
        >>> ids, nll, n = doc_sums([1.0, 2.0, 4.0], [7, 3, 7])
        >>> ids.tolist(), nll.tolist(), n.tolist()
        ([3, 7], [2.0, 5.0], [1, 2])
    """
    arr = as_ce(ce)
    d = as_int_array(doc, "doc", n=arr.shape[0])
    if d.shape[0] > 1 and np.all(d[1:] >= d[:-1]):
        # sorted ids (the store's order): sum each run of equal ids in one pass
        starts = np.flatnonzero(np.concatenate([[True], d[1:] != d[:-1]]))
        nll = np.add.reduceat(arr, starts, dtype=np.float64)
        return d[starts], nll, np.diff(np.append(starts, d.shape[0]))
    ids, inv = doc_numbers(d)
    nll = np.bincount(inv, weights=arr, minlength=ids.shape[0]) if arr.size else np.zeros(0)
    count = np.bincount(inv, minlength=ids.shape[0]) if arr.size else np.zeros(0, dtype=np.int64)
    return ids, nll.astype(np.float64), count


def doc_normalized(nll_sum, n_bytes, n_words) -> dict[str, float]:
    """Document-normalized metrics as lm-evaluation-harness defines them.

    ``bpb`` = Σ nll / Σ bytes / ln 2, ``byte_ppl`` = exp(Σ nll / Σ bytes),
    ``word_ppl`` = exp(Σ nll / Σ words); sums over documents. A zero
    denominator (or no documents) gives NaN.

    Args:
        nll_sum: per-document sum of CE (nats) over the document's targets.
        n_bytes: per-document UTF-8 byte count of the scored text.
        n_words: per-document word count (``len(re.split(r"\\s+", text))``).

    Returns:
        dict with ``n_docs``, ``bpb``, ``byte_ppl``, ``word_ppl``.

    Example:
        >>> m = doc_normalized([math.log(2) * 8, 0.0], [4, 4], [2, 2])
        >>> m["bpb"], m["byte_ppl"], m["word_ppl"]
        (1.0, 2.0, 4.0)
    """
    nll = as_ce(nll_sum, "nll_sum").astype(np.float64, copy=False)
    nb = np.asarray(n_bytes, dtype=np.float64)
    nw = np.asarray(n_words, dtype=np.float64)
    for name, arr in (("n_bytes", nb), ("n_words", nw)):
        if arr.shape != nll.shape:
            raise UsageError(
                f"{name} must have one entry per document ({nll.shape[0]}), got shape {arr.shape}"
            )
        if arr.size and (not np.isfinite(arr).all() or arr.min() < 0):
            raise UsageError(f"{name} must be finite and >= 0")
    total = float(nll.sum())
    bytes_, words = float(nb.sum()), float(nw.sum())
    per_byte = total / bytes_ if bytes_ > 0 else math.nan
    per_word = total / words if words > 0 else math.nan
    with np.errstate(over="ignore"):
        return {
            "n_docs": int(nll.shape[0]),
            "bpb": per_byte / LN2,
            "byte_ppl": float(np.exp(per_byte)),
            "word_ppl": float(np.exp(per_word)),
        }
