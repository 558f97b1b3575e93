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
    """Per checkpoint: its rows by position bucket (p10 … p90, the report's percentiles, mean) and its window.

    ``positions`` (``--by position|ctx``, :class:`pctce_cli.analysis.position.Positions`) buckets by that
    dimension and edges and shows the section whatever the documents' length; None: by ``pos``, powers of two,
    shown by the rule of the module docstring.
    """

    def __init__(self, unit: str = "token", positions=None, words=None):
        from pctce_cli.analysis.position import Positions

        self.unit = unit
        self.forced = positions is not None
        self.positions = positions or Positions("position")
        self.rows: dict[str, list[dict]] = {}
        self.long: dict[str, int] = {}  # checkpoint → targets at positions >= LONG_FROM
        self.last: dict[str, int] = {}  # checkpoint → its largest position
        self.window: dict[str, tuple[int, int]] = {}  # checkpoint → (max_length, stride)
        self.refused: dict[str, str] = {}  # checkpoint → why it has no ctx (an older store of prompts or chats)
        self.words = words or {}  # parameter → the front end's spelling (ReportOptions.words)

    def add(self, c, s, percentiles: Sequence[float]) -> None:
        """Bucket one checkpoint's loaded token arrays by position or ctx (nothing in words or bytes)."""
        from pctce_cli.analysis.position import bucket_rows, target_values
        from pctce_cli.errors import UsageError, option_message
        from pctce_cli.plot.position import LEVELS

        if self.unit != "token" or getattr(s, "pos", None) is None:
            return
        pos = np.asarray(s.pos, dtype=np.int64)
        self.long[c.id] = int(np.count_nonzero(pos >= LONG_FROM))
        self.last[c.id] = int(pos.max()) if pos.size else -1
        try:
            values = target_values(self.positions, s.doc, pos, c.manifest, c.id, s.docs)
        except UsageError as e:
            self.refused[c.id] = option_message(e, self.words)  # with its remedy (a re-score), in the front end's words
            return
        qs = sorted(set(LEVELS) | set(percentiles))
        self.rows[c.id] = bucket_rows(c, s.ce, s.doc, values, s.rank, qs, self.positions) if pos.size else []
        st = c.manifest.settings
        if "max_length" in st and "stride" in st:
            self.window[c.id] = (int(st["max_length"]), int(st["stride"]))

    def shown(self) -> bool:
        """Whether the section shows its figure: asked for (``--by``), or documents long enough to matter."""
        if not any(self.rows.values()):
            return False
        return self.forced or max(self.long.values()) >= MIN_LONG_TARGETS


def position_section(cks, m: PositionMeasures, plots, colors, scored: str) -> Section:
    """The section: the reason it is shown (or not), the figure, the window's note, the per-bucket table on demand."""
    from pctce_cli import plot
    from pctce_cli.plot.position import MAX_BANDED, banded_figure, figure_what, position_figure

    sec = Section(*POSITION_SECTION)
    rule = f"the section is shown when some checkpoint has at least {MIN_LONG_TARGETS:,} targets at positions ≥ {LONG_FROM}, or with --by position|ctx (docs/position.md)"
    dim = m.positions.dim
    what = "position in the document" if dim == "position" else "context length (the tokens the model conditioned on)"
    if m.unit != "token":
        sec.blocks.append(Text(f"Not shown: position in the context is a token dimension, and a {m.unit} has no single position; the report with --unit token shows it."))
        return sec
    refused = [Notes([f"{ck}: {why}" for ck, why in m.refused.items()])] if m.refused else []
    most = max(m.long, key=lambda k: m.long[k]) if m.long else None
    if not m.shown():
        if not m.forced:
            last = max(m.last.values(), default=-1)
            sec.blocks.append(Text(f"Not shown: the documents are too short for it ({m.long.get(most, 0) if most else 0:,} targets at positions ≥ {LONG_FROM}, the last at position {last:,}); {rule}."))
        else:
            sec.blocks.append(Text(f"Not shown: no checkpoint has a {what} to bucket."))
        sec.blocks += refused
        return sec
    why = f"--by {dim} asks for it" if m.forced else f"{most} has {m.long[most]:,} targets at positions ≥ {LONG_FROM}; {rule}"
    sec.blocks.append(Text(f"Shown because {why}. {m.positions.note()} A bucket's summaries are over its targets."))
    drawn, note = plot.overlaid(cks, "The position figure")
    series = {c.id: m.rows.get(c.id, []) for c in drawn}
    title = f"{figure_what(series)} by {what.split(' (')[0]} of {scored}"
    drawn_what = "Median CE (line), p25–p75 and p10–p90 (bands) and mean (dashed)" if banded_figure(series) else f"Median CE of each checkpoint (bands and means are drawn for {MAX_BANDED} checkpoints at most)"
    img = plots.image(FIGURE, f"{drawn_what} by {what.split(' (')[0]}, log axis", lambda: position_figure(series, colors, title, dim))
    if img is not None:
        sec.blocks.append(img)
    notes = [note.replace("--checkpoint GLOB", "pctce plot position DIR --checkpoint GLOB") + "."] if note else []
    notes += window_notes(m) if dim == "position" else []
    if notes:
        sec.blocks.append(Notes(notes))
    sec.blocks += refused
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for c in cks for r in m.rows.get(c.id, [])]
    title = "position" if dim == "position" else "context length"
    sec.blocks.append(Details(f"Summaries by {title} bucket ('from' and 'to' bound each bucket [from, to))", [Table(f"Per-token CE summaries by {title}", rows)]))
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
    f = position_finding(who, m.rows[ck], MIN_BUCKET_TARGETS, FIGURE, dim=m.positions.dim)
    return [f] if f is not None else []
