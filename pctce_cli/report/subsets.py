"""The report's subset section (docs/definitions.md#subsets): a summary table and small-multiples ECDFs per subset field.

Shown when the checkpoints have subset fields (every common one, at most
:data:`MAX_FIELDS`) or ``--by FIELD`` names one; ``--subset VALUE`` keeps only
those documents for the whole report. The numbers come from the arrays
:func:`pctce_cli.report.build.measure` has already read (one read of each
partition): :func:`measure_subsets` splits them by document.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from pctce_cli.analysis.subsets import Subsets, split_scores, subset_fields
from pctce_cli.report.doc import Details, Notes, Section, Table, Text
from pctce_cli.report.story import pivot
from pctce_cli.units import unit_named

MAX_FIELDS = 4  # subset fields shown by default; --by FIELD picks one
SUBSET_SECTION = ("subsets", "Subsets")


def report_fields(cks, by: str | None) -> tuple[list[str], list[str]]:
    """The subset fields the section shows: ``--by``'s, else every field all checkpoints have (at most :data:`MAX_FIELDS`)."""
    if by is not None:
        return [by], []
    have = [subset_fields(c) for c in cks]
    common = [f for f in have[0] if all(f in h for h in have[1:])] if have else []
    if len(common) > MAX_FIELDS:
        return common[:MAX_FIELDS], [f"{len(common)} subset fields: the report shows {', '.join(common[:MAX_FIELDS])}; choose one with --by FIELD"]
    return common, []


def keep_view(c, s, keep: Subsets):
    """``--subset``: the checkpoint's arrays (tokens, or words and bytes) restricted to the kept documents (unchanged without it)."""
    if not keep.active:
        return s, []
    parts, notes = split_scores(c.id, s.doc, s.docs, keep)
    return _view(s, parts[0]), [f"{c.id}: {n}" for n in notes]


def _view(s, part):
    """One subset's rows of loaded :class:`~pctce_cli.store.Scores` or :class:`~pctce_cli.store.UnitScores`: every per-row array cut, its documents."""
    from dataclasses import fields, replace

    n = len(s.ce)
    cut = {f.name: part.take(v) for f in fields(s) if isinstance(v := getattr(s, f.name), np.ndarray) and len(v) == n}
    return replace(s, docs=part.docs, **cut)


class SubsetMeasures:
    """Per field: the summary rows per checkpoint and subset, each subset's distributions, and notes."""

    def __init__(self, fields: Sequence[str], unit: str = "token"):
        self.fields = list(fields)
        self.unit = unit
        self.rows: dict[str, list[dict]] = {f: [] for f in fields}
        self.panels: dict[str, dict] = {f: {} for f in fields}  # field -> subset -> [Distribution]
        self.notes: dict[str, list[str]] = {f: [] for f in fields}

    def add(self, c, s, percentiles, edges) -> None:
        """Split one checkpoint's loaded arrays (tokens, or words and bytes) by every field and measure each subset."""
        from pctce_cli import plot
        from pctce_cli.analysis.summary import checkpoint_row
        from pctce_cli.analysis.units import unit_rows
        from pctce_cli.errors import DataError

        for f in self.fields:
            parts, notes = split_scores(c.id, s.doc, s.docs, Subsets(f, split=True))
            self.notes[f] += [f"{c.id}: {n}" for n in notes]
            for p in parts:
                view = _view(s, p)
                row = unit_rows(c, percentiles, self.unit, scores=view)[0][0] if unit_named(self.unit).spans else checkpoint_row(c, view, percentiles)
                self.rows[f].append({"checkpoint": row.pop("checkpoint"), "step": row.pop("step"), "group": row.pop("group"), "subset": p.label, **row})
                try:
                    self.panels[f].setdefault(p.label, []).append(plot.unit_distribution(c.id, view, edges, self.unit))
                except DataError:  # a subset whose targets are all in no word or byte: no panel line
                    pass


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40] or "field"


def subset_section(cks, m: SubsetMeasures, percentiles, plots, colors, scored: str, intro: Sequence[str] = ()) -> Section:
    """The section: per field, the summaries by subset (with pooled and macro means) and the ECDF per subset."""
    from pctce_cli import plot
    from pctce_cli.analysis.summary import merge_notes, summary_report

    unit = m.unit
    what = unit_named(unit).plural
    sec = Section(SUBSET_SECTION[0], SUBSET_SECTION[1] + unit_named(unit).per)
    sec.blocks.append(
        Text(
            f"Every target belongs to its document's subset; a subset's summaries are docs/definitions.md#summaries-of-one-checkpoint: over its documents' {what}, "
            f"and macro_mean is the unweighted mean over subsets of their mean {plot.unit_text(unit, 'ce')} (docs/definitions.md#subsets)."
        )
    )
    if intro:
        sec.blocks.append(Notes(list(intro)))
    for f in m.fields:
        rep = summary_report(cks, percentiles, rows=m.rows[f], subsets=Subsets(f, split=True), unit=unit)
        panels = sorted(m.panels[f].items(), key=lambda kv: str(kv[0]))
        panels, more = plot.cap_panels(panels, f)
        notes = merge_notes(m.notes[f], len(cks)) + rep.notes + more
        drawn = {c.id for c in plot.overlaid(cks)[0]}
        panels = [(label, [d for d in ds if d.id in drawn]) for label, ds in panels]
        if panels:
            img = plots.image(
                f"subsets-{_safe(f)}",
                f"{plot.unit_text(unit, 'CE')} distribution per subset of {f} (ECDF, log CE axis; ◆ = mean), one panel per subset",
                lambda panels=panels, f=f: plot.subset_ecdf_figure(panels, f, colors, plot.plot_title("ecdf", unit, scored, by=f)),
            )
            if img is not None:
                sec.blocks.append(img)
        if notes:
            sec.blocks.append(Notes(notes))
        # checkpoint × subset, one table per summary, fits a screen; the long table is on demand
        sec.blocks += [pivot(m.rows[f], s, f"{s} of {plot.unit_text(unit, 'ce')} by {f} (rows: checkpoints, columns: subsets)") for s in ("mean", "p50", "p95") if any(s in r for r in m.rows[f])][:1]
        sec.blocks.append(Details(f"Every summary by {f}, and the other summaries pivoted", [pivot(m.rows[f], s, f"{s} by {f}") for s in ("p50", "p95") if any(s in r for r in m.rows[f])] + [Table(title, rows) for title, rows in rep.sections]))
    return sec

