"""Subsets of the validation data (docs/definitions.md#subsets): split targets by their document's label, pure numpy.

A subset labels documents; every target belongs to its document's subset.
Targets are stored sorted by document, so each document is one contiguous run
of rows and a subset's targets are the concatenation of its documents' runs:
one gather per checkpoint, then each subset's statistics run on its own
contiguous array.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pctce_cli.errors import UsageError


def subset_runs(doc, doc_ids, doc_labels) -> dict[str, np.ndarray]:
    """Each subset's targets as runs of consecutive rows: label → ``(k, 2)`` array of ``[start, end)``.

    A run is a maximal stretch of rows of one document, so with targets stored
    sorted by document a subset of D documents is at most D runs, and
    :func:`take` gathers its values by slicing (no per-target index array).

    Args:
        doc: per-target document id (any order; sorted by document is fastest).
        doc_ids: the documents of the per-document table.
        doc_labels: one label per entry of ``doc_ids`` (strings; None or NaN is an error).

    Returns:
        label → runs, labels sorted, runs in stored order; together they cover
        every target exactly once. Labels of documents without targets are absent.

    Raises:
        UsageError: a missing label, or a target whose document has no row.

    Example:
        >>> runs = subset_runs([0, 0, 1, 2], [0, 1, 2], ["a", "b", "a"])
        >>> {k: v.tolist() for k, v in runs.items()}
        {'a': [[0, 2], [3, 4]], 'b': [[2, 3]]}
    """
    d = np.asarray(doc, dtype=np.int64)
    ids = np.asarray(doc_ids, dtype=np.int64)
    labels = np.asarray([_label(x) for x in doc_labels], dtype=object)
    if labels.shape != ids.shape:
        raise UsageError(f"doc_labels must have one label per document ({ids.size}), got {labels.size}")
    names, codes = np.unique(labels.astype(str), return_inverse=True)
    starts = np.flatnonzero(d[1:] != d[:-1]) + 1 if d.size else np.zeros(0, np.int64)
    starts = np.r_[0, starts] if d.size else starts
    ends = np.r_[starts[1:], d.size].astype(np.int64)
    run_code = _target_codes(d[starts], ids, codes)
    order = np.argsort(run_code, kind="stable")  # stable: stored order within each subset
    bounds = np.searchsorted(run_code[order], np.arange(names.size + 1))
    runs = np.stack([starts[order], ends[order]], axis=1) if d.size else np.zeros((0, 2), np.int64)
    return {str(n): runs[bounds[k] : bounds[k + 1]] for k, n in enumerate(names) if bounds[k + 1] > bounds[k]}


def take(values, runs: np.ndarray) -> np.ndarray:
    """The rows of ``values`` in ``runs`` (``[start, end)`` pairs), concatenated.

    Example:
        >>> take(np.arange(6), np.array([[0, 2], [4, 6]])).tolist()
        [0, 1, 4, 5]
    """
    values = np.asarray(values)
    if len(runs) == 1:
        return values[runs[0, 0] : runs[0, 1]]
    return np.concatenate([values[a:b] for a, b in runs.tolist()]) if len(runs) else values[:0]


def subset_index(doc, doc_ids, doc_labels) -> dict[str, np.ndarray]:
    """Row indices of each subset's targets, in stored order (:func:`subset_runs` as index arrays).

    Returns:
        label → int64 array of target rows, labels sorted; every target is in
        exactly one subset.

    Raises:
        UsageError: a target whose document has no label.

    Example:
        >>> idx = subset_index([0, 0, 1, 2], [0, 1, 2], ["a", "b", "a"])
        >>> {k: v.tolist() for k, v in idx.items()}
        {'a': [0, 1, 3], 'b': [2]}
    """
    return {k: take(np.arange(len(np.asarray(doc)), dtype=np.int64), r) for k, r in subset_runs(doc, doc_ids, doc_labels).items()}


def _target_codes(d: np.ndarray, ids: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each target's subset code, by its document id; a target of a document not in ``ids`` is an error."""
    if d.size == 0:
        return codes[:0]
    if ids.size and ids.min() >= 0 and ids.max() < 4 * ids.size + 1024:
        # document ids are dense (records' indices): one table lookup per target
        table = np.full(int(max(ids.max(), d.max())) + 1, -1, dtype=np.int64)
        table[ids] = np.arange(ids.size)
        where = table[np.clip(d, 0, table.size - 1)]
        bad = (where < 0) | (d < 0)
        if bad.any():
            raise UsageError(f"document {int(d[bad][0])} has targets but no row in the per-document table")
        return codes[where]
    order = np.argsort(ids, kind="stable")
    pos = np.clip(np.searchsorted(ids[order], d), 0, max(ids.size - 1, 0))
    if ids.size == 0 or not np.array_equal(ids[order][pos], d):
        missing = int(d[ids[order][pos] != d][0]) if ids.size else int(d[0])
        raise UsageError(f"document {missing} has targets but no row in the per-document table")
    return codes[order][pos]


def _label(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        raise UsageError("every document needs a subset label, found a missing one")
    return str(x)


def macro_mean(means: Sequence[float]) -> float:
    """Unweighted mean over subsets of each subset's mean CE (Paloma's macro average); NaN subsets are skipped.

    Example:
        >>> macro_mean([1.0, 3.0, float("nan")])
        2.0
    """
    m = np.asarray(means, dtype=np.float64)
    m = m[~np.isnan(m)]
    return float(m.mean()) if m.size else math.nan


def correct_ratio(mean_correct: float, mean_incorrect: float) -> float:
    """The paper's Table 6 ratio: mean CE of incorrectly over correctly answered documents (NaN when either is missing or the first is 0).

    Example:
        >>> correct_ratio(0.2, 2.0), correct_ratio(0.2, float("nan"))
        (10.0, nan)
    """
    mc, mi = mean_correct, mean_incorrect
    return mi / mc if mc and not (math.isnan(mc) or math.isnan(mi)) else math.nan


def opposed_pairs(values, checkpoints: Sequence[str], subsets: Sequence[str]) -> list[tuple[str, str, list[str], list[str], float]]:
    """Checkpoint pairs that one subset ranks one way and another subset the other way, by one summary.

    Args:
        values: ``(len(subsets), len(checkpoints))`` array of a summary (lower is better); NaN is no ranking.
        checkpoints: Column names.
        subsets: Row names.

    Returns:
        ``(a, b, subsets where a is lower, subsets where b is lower, margin)``
        for each pair ``a`` before ``b`` in ``checkpoints`` order with both
        lists non-empty; ``margin`` is the smaller of the two largest gaps (how
        clearly each side wins somewhere), so sorting by it puts the sharpest
        flips first.

    Example:
        >>> opposed_pairs([[1.0, 2.0, 3.0], [2.0, 1.5, 4.0]], ["a", "b", "c"], ["prose", "code"])
        [('a', 'b', ['prose'], ['code'], 0.5)]
    """
    v = np.asarray(values, dtype=np.float64)
    out = []
    for i in range(v.shape[1]):
        for j in range(i + 1, v.shape[1]):
            d = v[:, i] - v[:, j]
            lower_a, lower_b = np.flatnonzero(d < 0), np.flatnonzero(d > 0)
            if lower_a.size and lower_b.size:
                margin = float(min(-d[lower_a].min(), d[lower_b].max()))
                out.append((checkpoints[i], checkpoints[j], [subsets[k] for k in lower_a], [subsets[k] for k in lower_b], margin))
    return out
