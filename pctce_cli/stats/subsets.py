"""Subsets of the validation data (SPEC §7): split targets by their document's label, pure numpy.

A subset labels documents; every target belongs to its document's subset.
Targets are stored sorted by document, so each document is one contiguous run
of rows and a subset's targets are the concatenation of its documents' runs:
one gather per checkpoint, then each subset's statistics run on its own
contiguous array.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from pctce_cli.errors import UsageError


def subset_index(doc, doc_ids, doc_labels) -> dict[str, np.ndarray]:
    """Row indices of each subset's targets, in stored order.

    Args:
        doc: per-target document id.
        doc_ids: the documents of the per-document table.
        doc_labels: one label per entry of ``doc_ids`` (strings; None or NaN is an error).

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
    d = np.asarray(doc, dtype=np.int64)
    ids = np.asarray(doc_ids, dtype=np.int64)
    labels = np.asarray([_label(x) for x in doc_labels], dtype=object)
    if labels.shape != ids.shape:
        raise UsageError(f"doc_labels must have one label per document ({ids.size}), got {labels.size}")
    names, codes = np.unique(labels.astype(str), return_inverse=True)
    order = np.argsort(ids, kind="stable")
    pos = np.searchsorted(ids[order], d)
    pos = np.clip(pos, 0, max(ids.size - 1, 0))
    if d.size and (ids.size == 0 or not np.array_equal(ids[order][pos], d)):
        missing = int(d[ids.size == 0 or ids[order][pos] != d][0]) if ids.size else int(d[0])
        raise UsageError(f"document {missing} has targets but no row in the per-document table")
    target_code = codes[order][pos]
    by = np.argsort(target_code, kind="stable")  # stable: stored (doc, pos) order within each subset
    bounds = np.searchsorted(target_code[by], np.arange(names.size + 1))
    return {str(n): by[bounds[k] : bounds[k + 1]] for k, n in enumerate(names)}


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


def correct_split(ce, doc, doc_ids, correct: Sequence[bool]) -> dict[str, float]:
    """The paper's Table 6 columns: mean CE over targets of correctly / incorrectly answered documents, and their ratio.

    Example:
        >>> correct_split([0.1, 0.3, 2.0], [0, 0, 1], [0, 1], [True, False])
        {'mean_correct': 0.2, 'mean_incorrect': 2.0, 'ratio': 10.0, 'n_correct': 1, 'n_incorrect': 1}
    """
    ok = np.asarray(correct, dtype=bool)
    idx = subset_index(doc, doc_ids, np.where(ok, "correct", "incorrect"))
    c = np.asarray(ce, dtype=np.float64)

    def mean(rows):
        return float(c[rows].mean()) if rows is not None and rows.size else math.nan

    mc, mi = mean(idx.get("correct")), mean(idx.get("incorrect"))
    return {
        "mean_correct": mc,
        "mean_incorrect": mi,
        "ratio": mi / mc if mc and not (math.isnan(mc) or math.isnan(mi)) else math.nan,
        "n_correct": int(ok.sum()),
        "n_incorrect": int((~ok).sum()),
    }


def labels_of(docs: Mapping, field: str) -> np.ndarray:
    """The label column ``field`` of a per-document table, checked to exist."""
    if field not in docs:
        raise UsageError(f"no subset '{field}' in the per-document table")
    return np.asarray(docs[field], dtype=object)
