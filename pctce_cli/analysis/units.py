"""Tokenizer-independent units in analysis commands (docs/definitions.md#words-and-bytes): ``--unit token|word|byte``.

Token percentiles are not comparable across tokenizers; word and byte
distributions are, because words and bytes depend only on the text. A word's
CE is the sum of its tokens' CE; the byte distribution gives each token's CE,
spread evenly, to each of its bytes (weighted percentiles, never one row per
byte). Targets whose span is empty (special tokens) belong to no word or byte:
they are counted in an ``empty`` column, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pctce_cli.analysis.subsets import NO_SUBSETS, Subsets, split_scores, stored_values
from pctce_cli.stats.row import assemble_row
from pctce_cli.stats.summaries import doc_sums, summarize
from pctce_cli.units import Unit, unit_named

def unit_rows(
    ck, percentiles: Sequence[float], unit: str | Unit, subsets: Subsets = NO_SUBSETS, ci: float | None = None, scores=None, **kw
) -> tuple[list[dict], list[str]]:
    """One checkpoint's summary rows in words or bytes (one per subset with ``subsets.split``).

    Each row has ``targets`` (scored tokens), ``words`` or ``bytes`` (the
    values summarized), ``empty`` (targets with an empty span, in no word or
    byte), the docs/definitions.md#summaries-of-one-checkpoint summaries of the unit's distribution and the
    document-level ``bpb``/``byte_ppl``/``word_ppl``.

    With ``ci`` the intervals come from a document bootstrap of the unit's
    distribution: documents resampled with their words, or with their bytes
    (each token's per-byte value weighted by its bytes, never expanded).

    ``scores``: the checkpoint's :class:`pctce_cli.store.UnitScores` when the
    caller has loaded them (``pctce report`` reads each partition once).

    Raises:
        UsageError: the partition holds no byte spans (the message names its
            tokenizer or says to re-score).
    """
    unit = unit_named(unit)
    u = scores if scores is not None else unit.load_arrays(ck)
    parts, notes = split_scores(ck.id, u.doc, u.docs, subsets, stored_values(ck, subsets.field) if subsets.active else ())
    pooled = doc_sums(u.ce, u.doc)[:2] if u.docs is not None and len(u.ce) else None
    rows = []
    for part in parts:
        ce, doc, word, nb = part.take(u.ce), part.take(u.doc), part.take(u.word), part.take(u.nbytes)
        summ = summarize(ce, None, percentiles=percentiles, unit=unit.name, doc=doc, word=word, nbytes=nb)
        sums = None
        if pooled is not None:
            keep = np.isin(pooled[0], np.asarray(part.docs["doc"]))
            sums = (pooled[0][keep], pooled[1][keep])
        empty = int(np.count_nonzero(unit.empty(word, nb)))
        row = unit_row(ck, unit, summ, int(ce.size), empty, part.docs, sums, {"subset": part.label} if subsets.split else {})
        if ci is not None:
            row.update(_unit_intervals(ce, doc, word, nb, unit, percentiles, ci, **kw))
        rows.append(row)
    return rows, [f"{ck.id}: {n}" for n in notes]


def unit_row(ck, unit: str | Unit, summ: dict, targets: int, empty: int, docs, sums, extra: dict | None = None) -> dict:
    """One summary row in words or bytes from the unit's :func:`~pctce_cli.stats.summaries.summarize` dict.

    Args:
        ck: the checkpoint (its id, step and group lead the row).
        unit: ``word`` or ``byte`` (the count column is ``words`` or ``bytes``).
        summ: the unit's summaries (``n`` = words or bytes); ``top1`` is dropped (rank belongs to tokens).
        targets: scored tokens.
        empty: targets with an empty span (in no word or byte).
        docs: the per-document table.
        sums: ``(document ids, summed token CE)`` for bpb, byte_ppl and word_ppl, or None.
        extra: columns after the checkpoint's (``subset``).
    """
    summ = {k: v for k, v in summ.items() if k != "top1"}
    count = int(summ.pop("n"))
    body = assemble_row({"n": targets, **summ}, docs, sums)
    row = {"checkpoint": ck.id, "step": ck.step, "group": ck.group, **(extra or {})}
    row.update({"targets": body.pop("targets"), unit_named(unit).plural: count, "empty": empty})
    row.update(body)
    return row


def _unit_intervals(ce, doc, word, nbytes, unit: Unit, percentiles, ci: float, n_boot: int = 1000, seed: int = 0, **_) -> dict:
    """Document-level bootstrap intervals of the word or byte distribution (documents resampled, their words or bytes with them)."""
    from pctce_cli.stats.bootstrap import bootstrap_ci
    from pctce_cli.stats.summaries import summary_columns

    values, weights, value_doc = unit.bootstrap_inputs(ce, doc, word, nbytes)
    names = summary_columns(percentiles)
    res = bootstrap_ci(values, value_doc, names, n_boot=n_boot, ci=ci, seed=seed, weights=weights)
    out = {}
    for name in names:
        out[f"{name}_lo"], out[f"{name}_hi"] = res[name]
    out["_ci_method"] = res.method
    out["_ci_error"] = max(res.max_abs_error.values()) if res.max_abs_error else 0.0
    return out
