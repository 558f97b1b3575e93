"""`pctce summary --value kl|dp`: summaries of the divergence from a reference model (docs/definitions.md#divergence-from-a-reference-model).

The divergence columns that ``pctce score --reference`` stores are summarized
the way llama.cpp's ``--kl-divergence`` report is read: mean, p50, p90, p95,
p99, p99.9 and max of KL (or Δp), and ``same_top1``, the fraction of targets
where both models pick the same top token; with ``--ci``, document-bootstrap
intervals (docs/definitions.md#summaries-of-one-checkpoint), by ``--by`` subset
when asked, in tokens or (KL only) words — a word's KL is the sum of its tokens'.
Checkpoints above ``PCTCE_STREAM_ABOVE`` targets are streamed
(:mod:`pctce_cli.analysis.divergence_stream`): the same rows in bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pctce_cli.analysis.divergence_stream import streamed_divergence_rows
from pctce_cli.analysis.report import Report
from pctce_cli.analysis.stream_bound import stream_above
from pctce_cli.analysis.subsets import NO_SUBSETS, Subsets, split_scores, stored_values
from pctce_cli.catalog import Checkpoint, identical_notes
from pctce_cli.errors import UsageError
from pctce_cli.stats.divergence import DIVERGENCE_PERCENTILES, divergence_row  # re-exported (moved to stats: ScoreResult summarizes with it too)
from pctce_cli.store import incomplete_notes, load_scores
from pctce_cli.units import unit_named
from pctce_cli.values import value_named


def divergence_rows(ck: Checkpoint, value: str, percentiles: Sequence[float], unit: str = "token", subsets: Subsets = NO_SUBSETS, ci: float | None = None, n_boot: int = 1000, seed: int = 0) -> tuple[list[dict], list[str]]:
    """One checkpoint's rows (one, or one per subset) of ``--value kl|dp``; with the subsets' notes.

    Raises:
        UsageError: the checkpoint was scored without ``--reference``, or the unit has no form of the value.
    """
    kind, u = value_named(value), unit_named(unit)
    kind.check(ck, u)
    if ck.manifest.targets > stream_above():  # two passes over the shards, in bounded memory (docs/kl.md)
        return streamed_divergence_rows(ck, kind, percentiles, u, subsets, ci, n_boot, seed)
    words = _words(ck) if u.spans else None  # raises for a partition without byte spans and words
    s = load_scores(ck.root, ck.partition, columns=("doc", kind.column, "same_top1"))
    parts, notes = split_scores(ck.id, s.doc, s.docs, subsets, stored_values(ck, subsets.field)) if subsets.active else ([None], [])
    rows = []
    for part in parts:
        take = (lambda x: x) if part is None else part.take
        values, doc, same = take(getattr(s, kind.column)), take(s.doc), take(s.same_top1)
        if u.spans:  # a word's KL: the sum of its tokens' (docs/definitions.md#divergence-from-a-reference-model)
            from pctce_cli.stats.units import word_ce

            values, doc = word_ce(values, doc, take(words))[:2]
            same = None
        r = divergence_row(values, doc, same, percentiles, ci, n_boot, seed)
        row = {"checkpoint": ck.id, "step": ck.step, "group": ck.group, **({"subset": part.label} if subsets.split else {})}
        row[u.plural] = r.pop("n")
        row["documents"] = int(len(part.docs)) if part is not None else int(len(s.docs)) if s.docs is not None else 0
        rows.append({**row, **r})
    return rows, [f"{ck.id}: {n}" for n in notes]


def _words(ck: Checkpoint) -> np.ndarray:
    """The stored word index of each target (the unit's own reader, verified)."""
    from pctce_cli.store import load_units

    return load_units(ck.root, ck.partition, "word").word


def divergence_summary(cks: Sequence[Checkpoint], value: str, percentiles: Sequence[float] | None = None, unit: str = "token", subsets: Subsets = NO_SUBSETS, ci: float | None = None, n_boot: int = 1000, seed: int = 0, vs: str | None = None) -> Report:
    """`pctce summary --value kl|dp`: one table of every checkpoint's divergence summaries (and notes).

    Args:
        percentiles: Levels reported (default :data:`DIVERGENCE_PERCENTILES`).
        vs: Refused: the reference of a divergence is the model it was scored against.
    """
    if vs is not None:
        raise UsageError(f"vs with value {value}: the divergence is already taken from the reference model it was scored against; drop vs", param=("vs", "value", "vs"))
    if ci is not None and not 0 < ci < 1:
        raise UsageError(f"ci must be between 0 and 1 (e.g. 0.95), got {ci}", param="ci")
    kind, u = value_named(value), unit_named(unit)
    levels = [float(q) for q in (percentiles or DIVERGENCE_PERCENTILES)]
    report = Report()
    rows = []
    for ck in cks:
        r, notes = divergence_rows(ck, value, levels, unit, subsets, ci, n_boot, seed)
        rows += r
        report.notes += notes
    title = u.title(subsets.field if subsets.split else None, kind)
    report.add(title + (f", subset {subsets.describe()}" if subsets.active and not subsets.split else ""), rows)
    refs = sorted({(ck.manifest.reference or {}).get("path", "") for ck in cks})
    # with several references, say which row was taken from which: their numbers are not comparable
    whence = f"the reference {refs[0]}" if len(refs) == 1 else "different references (" + ", ".join(f"'{ck.id}' from {(ck.manifest.reference or {}).get('path', '')}" for ck in cks) + "; not comparable with each other)"
    report.notes.append(
        f"{kind.label} of each model from {whence}: "
        + ("KL(p_ref ‖ p_model) in nats" if kind.column == "kl" else "Δp = p_model(target) − p_ref(target)")
        + ("; same_top1: the fraction of targets where both pick the same top token" if not u.spans else "; a word's KL is the sum of its tokens'")
        + " (docs/definitions.md#divergence-from-a-reference-model)."
    )
    if ci is not None:
        report.notes.append(f"Intervals: {ci:.0%} document-level bootstrap, {n_boot} resamples, seed {seed}.")
    report.notes += incomplete_notes(sorted({str(c.root) for c in cks if c.root is not None})) + identical_notes(cks)
    return report


__all__ = ["DIVERGENCE_PERCENTILES", "divergence_summary", "divergence_row", "divergence_rows"]
