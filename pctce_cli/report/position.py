"""The report's position section (docs/definitions.md#position-in-the-context): CE percentiles by position in the document.

Shown when documents are long enough to matter: when some checkpoint has at
least :data:`MIN_LONG_TARGETS` targets at positions ≥ :data:`LONG_FROM` (the
power-of-two buckets past ``32–63``), so the curve has a long part measured
on enough targets. Otherwise the section says why it is absent, as it does for
``--unit word|byte`` (a word or byte has no single position). The figure is
`pctce plot position`'s; the per-bucket table is on demand. The numbers come
from the arrays :func:`pctce_cli.report.build.measure` has already read (one
read of each partition): :meth:`PositionMeasures.add` buckets them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pctce_cli.report.doc import Details, Notes, Section, Table, Text

LONG_FROM = 64  # positions from here on are "long" (the buckets past 32–63)
MIN_LONG_TARGETS = 1000  # the section is shown when some checkpoint has this many targets at positions >= LONG_FROM
MIN_BUCKET_TARGETS = 100  # the finding reads buckets with at least this many targets (a median of fewer is noise)
POSITION_SECTION = ("position", "CE by position in the context")
FIGURE = "position"


class PositionMeasures:
    """Per checkpoint: its rows by position bucket (p10 … p90, the report's percentiles, mean) and its window."""

    def __init__(self, unit: str = "token"):
        self.unit = unit
        self.rows: dict[str, list[dict]] = {}
        self.long: dict[str, int] = {}  # checkpoint → targets at positions >= LONG_FROM
        self.last: dict[str, int] = {}  # checkpoint → its largest position
        self.window: dict[str, tuple[int, int]] = {}  # checkpoint → (max_length, stride)

    def add(self, c, s, percentiles: Sequence[float]) -> None:
        """Bucket one checkpoint's loaded token arrays by position (nothing in words or bytes)."""
        from pctce_cli.analysis.position import Positions, bucket_rows
        from pctce_cli.plot.position import LEVELS

        if self.unit != "token" or getattr(s, "pos", None) is None:
            return
        pos = np.asarray(s.pos, dtype=np.int64)
        qs = sorted(set(LEVELS) | set(percentiles))
        self.rows[c.id] = bucket_rows(c, s.ce, s.doc, pos, s.rank, qs, Positions("position")) if pos.size else []
        self.long[c.id] = int(np.count_nonzero(pos >= LONG_FROM))
        self.last[c.id] = int(pos.max()) if pos.size else -1
        st = c.manifest.settings
        if "max_length" in st and "stride" in st:
            self.window[c.id] = (int(st["max_length"]), int(st["stride"]))

    def shown(self) -> bool:
        """Whether documents are long enough to matter (the rule of the module docstring)."""
        return bool(self.long) and max(self.long.values()) >= MIN_LONG_TARGETS


def position_section(cks, m: PositionMeasures, plots, colors, scored: str) -> Section:
    """The section: the reason it is shown (or not), the figure, the window's note, the per-bucket table on demand."""
    from pctce_cli import plot
    from pctce_cli.plot.position import MAX_BANDED, banded_figure, figure_what, position_figure

    sec = Section(*POSITION_SECTION)
    rule = f"the section is shown when some checkpoint has at least {MIN_LONG_TARGETS:,} targets at positions ≥ {LONG_FROM} (docs/position.md)"
    if m.unit != "token":
        sec.blocks.append(Text(f"Not shown: position in the context is a token dimension, and a {m.unit} has no single position; the report with --unit token shows it."))
        return sec
    most = max(m.long, key=lambda k: m.long[k]) if m.long else None
    if not m.shown():
        last = max(m.last.values(), default=-1)
        sec.blocks.append(Text(f"Not shown: the documents are too short for it ({m.long.get(most, 0) if most else 0:,} targets at positions ≥ {LONG_FROM}, the last at position {last:,}); {rule}."))
        return sec
    sec.blocks.append(
        Text(
            f"Shown because {most} has {m.long[most]:,} targets at positions ≥ {LONG_FROM}; {rule}. Each target is in the bucket of its "
            "position in its document (powers of two: 0, 1, 2–3, 4–7, …); a bucket's summaries are over its targets."
        )
    )
    drawn, note = plot.overlaid(cks, "The position figure")
    series = {c.id: m.rows.get(c.id, []) for c in drawn}
    title = f"{figure_what(series)} by position in the document of {scored}"
    drawn_what = "Median CE (line), p25–p75 and p10–p90 (bands) and mean (dashed)" if banded_figure(series) else f"Median CE of each checkpoint (bands and means are drawn for {MAX_BANDED} checkpoints at most)"
    img = plots.image(FIGURE, f"{drawn_what} by position in the document, log position axis", lambda: position_figure(series, colors, title))
    if img is not None:
        sec.blocks.append(img)
    notes = [note.replace("--checkpoint GLOB", "pctce plot position DIR --checkpoint GLOB") + "."] if note else []
    notes += window_notes(m)
    if notes:
        sec.blocks.append(Notes(notes))
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for c in cks for r in m.rows.get(c.id, [])]
    sec.blocks.append(Details("Summaries by position bucket ('from' and 'to' bound each bucket [from, to))", [Table("Per-token CE summaries by position", rows)]))
    return sec


def window_notes(m: PositionMeasures) -> list[str]:
    """Where the sliding window cuts the context: past ``max_length`` a target's context is capped (ctx, not pos)."""
    out = []
    for (L, stride), ids in _by_window(m.window).items():
        if max(m.last.get(i, -1) for i in ids) >= L:
            step = min(stride, L - 1)
            out.append(
                f"The model's window is {L} tokens (stride {stride}): a target past the first window is scored with {L - step}–{L - 1} tokens "
                f"of context, so past position {L - 1} the curve measures position in the document, not context the model saw; "
                "pctce plot position DIR --by ctx draws CE by context length."
            )
    return out


def _by_window(window: dict) -> dict:
    out: dict = {}
    for ck, w in window.items():
        out.setdefault(w, []).append(ck)
    return out


def position_findings(m: PositionMeasures, rows: Sequence[dict]) -> list:
    """The finding of the checkpoint with the lowest mean CE (``rows``: the summary rows), when the section is shown."""
    import math

    from pctce_cli.report.findings import position_finding

    if m.unit != "token" or not m.shown():
        return []
    means = [(r["mean"], r["checkpoint"]) for r in rows if r.get("mean") is not None and not math.isnan(r["mean"]) and m.rows.get(r["checkpoint"])]
    if not means:
        return []
    ck = min(means, key=lambda x: x[0])[1]  # the first of equal means
    who = f"{ck} (the lowest mean CE; the figure has the others)" if len(m.rows) > 1 else ck
    f = position_finding(who, m.rows[ck], MIN_BUCKET_TARGETS, FIGURE)
    return [f] if f is not None else []
