"""One checkpoint's summary row: the numbers ``pctce summary`` prints, from arrays.

The single home of the per-checkpoint row used by the CLI (``pctce summary``),
the Python API (``ScoreResult.summary``) and the Trainer callback, so the three
can never disagree. Pure: it takes arrays, reads nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from pctce_cli.stats.defaults import DEFAULT_PERCENTILES
from pctce_cli.stats.summaries import doc_normalized, doc_sums, summarize, summary_columns

ACCURACY_COLUMNS = ("exact_match", "substring_match")
DOC_SUMMARIES = frozenset({"bpb", "byte_ppl", "word_ppl"})


def summary_row(
    ce,
    doc=None,
    rank=None,
    docs: Mapping | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    ci: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci_summaries: Sequence[str] | None = None,
) -> dict:
    """Every docs/definitions.md#summaries-of-one-checkpoint summary of one checkpoint's targets, as one row.

    Args:
        ce: per-target CE (nats).
        doc: per-target document id; with ``docs`` it adds ``bpb``, ``byte_ppl``
            and ``word_ppl``; it is required by ``ci`` (documents are resampled).
        rank: per-target rank (0 = top choice); without it ``top1`` is NaN.
        docs: the per-document table (a DataFrame or a mapping of column name →
            array) with ``doc``, ``n_bytes``, ``n_words`` and, after task
            accuracy, ``exact_match``/``substring_match``.
        percentiles: levels reported as ``pXX``.
        ci: with a level in (0, 1), document-level bootstrap bounds
            ``<summary>_lo``/``<summary>_hi`` plus ``_ci_method``/``_ci_error``.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.
        ci_summaries: summaries given intervals (default mean and each percentile).

    Returns:
        ``targets``, ``documents``, ``mean``, ``ppl``, ``pXX``…, ``iqr``, ``z95``,
        ``top1``, then ``bpb``, ``byte_ppl``, ``word_ppl`` (with ``doc`` and
        ``docs``), ``acc_*`` (when ``docs`` holds accuracy) and the interval
        columns.

    Example:
        >>> row = summary_row([1.0, 2.0, 3.0], percentiles=[50])
        >>> row["targets"], row["documents"], row["mean"], row["p50"]
        (3, 0, 2.0, 2.0)
    """
    summ = summarize(ce, rank, percentiles=percentiles)
    sums = doc_sums(ce, doc)[:2] if doc is not None and docs is not None else None
    row = assemble_row(summ, docs, sums)
    if ci is not None:
        from pctce_cli.stats.bootstrap import bootstrap_ci

        names = list(ci_summaries or summary_columns(percentiles))
        res = bootstrap_ci(ce, doc, names, n_boot=n_boot, ci=ci, seed=seed, rank=rank)
        for name in names:
            row[f"{name}_lo"], row[f"{name}_hi"] = res[name]
        row["_ci_method"] = res.method
        row["_ci_error"] = max(res.max_abs_error.values()) if res.max_abs_error else 0.0
    return row


def assemble_row(summ: Mapping, docs: Mapping | None = None, doc_nll: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """The summary row from token-level summaries and per-document CE sums, however they were computed.

    Args:
        summ: :func:`~pctce_cli.stats.summaries.summarize`'s dict (or the
            streaming equivalent), with ``n``.
        docs: The per-document table (``doc``, ``n_bytes``, ``n_words``, accuracy columns).
        doc_nll: ``(document ids, summed CE)`` of the documents with targets, sorted
            by id; with ``docs`` it adds ``bpb``, ``byte_ppl`` and ``word_ppl``.

    Example:
        >>> assemble_row({"n": 2, "mean": 1.5}, {"doc": [0], "n_bytes": [4], "n_words": [1]}, (np.array([0]), np.array([3.0])))["word_ppl"]
        20.085536923187668
    """
    summ = dict(summ)
    row: dict = {"targets": int(summ.pop("n")), "documents": int(len(docs["doc"])) if docs is not None else 0}
    row.update(summ)
    if doc_nll is not None and docs is not None:
        ids, nll = doc_nll
        lookup = _reindex(docs, ids)
        norm = doc_normalized(nll, lookup("n_bytes"), lookup("n_words"))
        norm.pop("n_docs")
        row.update(norm)
    if docs is not None:
        for col in ACCURACY_COLUMNS:
            if col in docs:
                row[f"acc_{col}"] = float(np.mean(np.asarray(docs[col], dtype=np.float64)))
    return row


def _reindex(docs: Mapping, ids: np.ndarray):
    """Column getter aligned to ``ids`` (documents with targets, sorted); missing ids give NaN."""
    table_ids = np.asarray(docs["doc"])
    order = np.argsort(table_ids, kind="stable")
    pos = np.searchsorted(table_ids[order], ids)
    pos = np.clip(pos, 0, max(len(order) - 1, 0))
    found = (table_ids[order][pos] == ids) if len(order) else np.zeros(len(ids), bool)

    def column(name: str) -> np.ndarray:
        values = np.asarray(docs[name], dtype=np.float64)[order][pos] if len(order) else np.zeros(len(ids))
        return np.where(found, values, np.nan)

    return column
