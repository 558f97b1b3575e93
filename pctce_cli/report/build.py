"""Building the report: every section computed from one read of each checkpoint's partition."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pctce_cli import plot
from pctce_cli.catalog import identical_notes
from pctce_cli.errors import PctceError, UsageError
from pctce_cli.report.divergence import divergence_findings, divergence_sections, measure_divergence
from pctce_cli.report.doc import Image, Notes, ReportDoc, ReportOptions, Section, Table, Text
from pctce_cli.report.story import findings_section, header, is_square, matrix_blocks, on_demand, scored_section
from pctce_cli.report.subsets import SubsetMeasures, keep_view, report_fields, subset_section
from pctce_cli.report.position import PositionMeasures, position_findings, position_section
from pctce_cli.stats.defaults import TRAJECTORY_SUMMARIES
from pctce_cli.units import Unit, unit_named

# ---------------------------------------------------------------- building

# what the report's numbers are, per unit (docs/definitions.md#words-and-bytes), for its introduction
UNIT_INTRO = {
    "token": "Per-token cross-entropy in nats; percentiles are type-7 (linear).",
    "word": (
        "Per-word cross-entropy in nats per word (docs/definitions.md#words-and-bytes): a word is a maximal run of non-whitespace characters and "
        "its CE is the sum of its tokens' CE, so checkpoints with different tokenizers on the same data have the same "
        "words; percentiles are type-7 (linear) over the words."
    ),
    "byte": (
        "Per-byte cross-entropy in nats per byte (docs/definitions.md#words-and-bytes): each token's CE is spread evenly over its UTF-8 bytes, so "
        "checkpoints with different tokenizers on the same data have the same bytes; percentiles are type-7 (linear) "
        "over the bytes, each token weighted by its byte count; bpb = mean / ln 2."
    ),
}


def _report_blocks(report) -> list:
    """An analysis :class:`~pctce_cli.analysis.Report` as blocks (tables, then its notes)."""
    blocks: list = [Table(title, rows) for title, rows in report.sections]
    if report.notes:
        blocks.append(Notes(list(report.notes)))
    return blocks


def _all_zero(rows: list[dict]) -> bool:
    import numbers

    return all(v == 0 for r in rows for v in r.values() if isinstance(v, numbers.Number) and not isinstance(v, bool))


class _Plots:
    """Renders plots to PNG, or explains why a plot is absent."""

    def __init__(self, dpi: int):
        self.dpi = dpi
        try:
            plot.require_matplotlib()
            self.missing = None
        except UsageError as e:
            self.missing = str(e)

    def image(self, name: str, caption: str, make) -> Image | Text | None:
        if self.missing is not None:
            return None
        try:
            fig = make()
        except UsageError as e:
            return Text(f"No {name} plot: {e}.")
        return Image(name, caption, plot.figure_bytes(fig, "png", self.dpi))


def _pick_tail(cks, patterns: Sequence[str]) -> list:
    """The checkpoints ``--tail-checkpoint`` names (none when it is not given)."""
    from pctce_cli.catalog import select_by_globs

    return select_by_globs(list(cks), patterns, lambda p: UsageError(f"tail_checkpoint '{p}' matches no selected checkpoint", param="tail_checkpoint"))


@dataclass
class Measured:
    """Everything the report needs of the checkpoints' arrays, from one read of each partition.

    Attributes:
        rows: Summary rows at the report's percentiles (the summary table).
        table: Summary rows for concordance, selection and the trajectory plot (every needed summary).
        dists: What the distribution plots and the shape tables need.
        tail: Loaded arrays of the checkpoints whose tail is shown.
        subsets: Per subset field, each subset's summary rows and distributions.
        notes: What ``--subset`` left out.
    """

    rows: list[dict]
    table: list[dict]
    dists: list
    tail: dict
    subsets: SubsetMeasures | None = None
    notes: list | None = None
    positions: PositionMeasures | None = None  # the position section's rows (docs/definitions.md#position-in-the-context)


def measure(cks, options: ReportOptions, needed: Sequence[str], fields: Sequence[str] = ()) -> Measured:
    """Read each checkpoint's partition once and compute every number the report shows of it.

    Only the arrays of the checkpoints whose tail is shown are kept (the ones
    ``--tail-checkpoint`` names, else the lowest mean CE so far), so memory
    stays at about two checkpoints. With ``options.subsets.keep`` every number is
    of the kept documents; each of ``fields`` splits the arrays by subset. With
    ``options.unit`` word or byte the partition's words and bytes are read
    instead (:func:`pctce_cli.store.load_units`), and every number is of them.
    """
    from pctce_cli.analysis.subsets import NO_SUBSETS, Subsets

    from pctce_cli.analysis.summary import checkpoint_row, table_percentiles
    from pctce_cli.analysis.units import unit_rows
    unit = unit_named(options.unit)
    wanted = {c.id for c in _pick_tail(cks, options.tail_checkpoints)} if options.tail_top > 0 else set()
    table_qs = table_percentiles(needed)
    m = Measured([], [], [], {}, SubsetMeasures(fields, unit.name), [], PositionMeasures(unit.name, options.positions, options.words))
    keep = options.subsets if options.subsets is not None and options.subsets.keep else NO_SUBSETS
    keep = Subsets(keep.field, split=False, keep=keep.keep) if keep.active else keep
    best = None
    for c in cks:
        s, notes = keep_view(c, unit.load_arrays(c, columns=None), keep)
        m.notes += notes
        m.subsets.add(c, s, options.percentiles, options.edges)
        m.positions.add(c, s, options.percentiles)
        if unit.spans:
            m.rows += unit_rows(c, options.percentiles, unit, scores=s)[0]
            m.table += unit_rows(c, table_qs, unit, scores=s)[0]
        else:
            m.rows.append(checkpoint_row(c, s, options.percentiles))
            m.table.append(checkpoint_row(c, s, table_qs, only=needed))
        m.dists.append(plot.unit_distribution(c.id, s, options.edges, unit.name))
        # the word tail reads the words it lists itself: it needs only the kept documents (--subset)
        kept = (s.docs["doc"].to_numpy() if keep.active else None) if unit.spans else s
        if c.id in wanted:
            m.tail[c.id] = kept
        elif options.tail_top > 0 and not options.tail_checkpoints and _lower(m.rows[-1]["mean"], best):
            best = m.rows[-1]["mean"]
            m.tail = {c.id: kept}
    return m


def _lower(mean: float, best: float | None) -> bool:
    # strictly lower, NaN never: the first of equal means is kept, as pandas' idxmin does
    return not math.isnan(mean) and (best is None or mean < best)


def tail_section(cks, measured: Measured, options: ReportOptions) -> Section:
    """Highest-CE targets of the chosen checkpoints, decoded when tokenizer and data are still there."""
    from pctce_cli.report.findings import diverse_rows, tail_finding
    from pctce_cli.tail import TAIL_UNITS, run_tail, word_tail

    unit = unit_named(options.unit)
    listed = unit.name in TAIL_UNITS  # a byte has no example of its own
    sec = Section("tail", "Tail examples" + (f" (highest-CE {unit.plural})" if listed and unit.titled else ""))
    if options.tail_top <= 0:
        sec.blocks.append(Text("Tail examples were not requested (--tail-top 0)."))
        return sec
    if not listed:
        sec.blocks.append(
            Text(
                "Tail examples list targets or words: a byte's CE is its token's spread evenly over the token's bytes, "
                "so a byte has no example of its own. The highest-CE words are in the report with --unit word "
                "(or pctce tail CHECKPOINT --unit word)."
            )
        )
        return sec
    picked = [c for c in cks if c.id in measured.tail]
    if options.tail_checkpoints:
        picked = _pick_tail(cks, options.tail_checkpoints)
    else:
        sec.blocks.append(Text(f"The highest-CE {unit.plural} of {picked[0].id}, the checkpoint with the lowest mean {plot.unit_text(options.unit, 'ce')} (choose others with --tail-checkpoint)."))
    for c in picked:
        if unit.spans:  # words: measured.tail holds the kept documents (--subset), or None for all

            def tail(decode: bool = True, c=c):
                return word_tail(c.partition, c.root, options.tail_top, None, decode=decode, only_docs=measured.tail.get(c.id))
        else:

            def tail(decode: bool = True, c=c):
                # many more than shown, so that at most two per document and each token once still leave tail_top
                return run_tail(c.partition, store=c.root, top=min(20 * options.tail_top, 400), context=options.context, scores=measured.tail[c.id], decode=decode)

        try:
            rep = tail()
            lost = None
        except PctceError as e:
            rep = tail(decode=False)
            reason = e.message  # without the remedy: the tail command's own options do not apply here
            lost = f"The text of {c.id}'s tail is not shown, only token ids: {reason}."
        for title, rows in rep.sections:
            if not unit.spans:
                rows = diverse_rows(rows, options.tail_top)
                title += " (at most 2 per document, each token once)"
            sec.blocks.append(Table(title.replace(c.partition, c.id), rows))
        said = [] if unit.spans or measured.tail.get(c.id) is None else [tail_finding(c.id, measured.tail[c.id].ce, measured.tail[c.id].doc).text]
        sec.blocks.append(Notes(([lost] if lost else []) + said + [n for n in rep.notes if "highest-CE of" not in n]))
    return sec


@dataclass
class _Build:
    """What every section builder of :func:`build_report` shares."""

    cks: list
    options: ReportOptions
    unit: Unit
    measured: Measured
    table: object  # pandas.DataFrame: one row per checkpoint, every needed summary
    task_col: str | None
    summaries: list[str]
    agreement: list[str]
    plots: "_Plots"
    colors: dict
    scored: str
    runs: dict

    def title(self, kind: str, **kw) -> str:
        return plot.plot_title(kind, self.unit.name, self.scored, **kw)

    def add(self, sec: Section, block) -> None:
        if block is not None:
            sec.blocks.append(block)




def build_report(cks, options: ReportOptions | None = None) -> ReportDoc:
    """Compute every section of the report for the selected checkpoints.

    Args:
        cks: Checkpoints from :func:`pctce_cli.catalog.resolve_checkpoints`.
        options: :class:`ReportOptions` (defaults as in the analysis commands).

    Returns:
        A :class:`ReportDoc` with the sections of :data:`SECTIONS`, in order.

    Raises:
        UsageError: bad options (unknown ``vs``, ``task`` column, tail glob).
    """
    from pctce_cli.analysis.select import resolve_task
    from pctce_cli.analysis.summary import rows_table
    from pctce_cli.stats.selection import AGREEMENT_PERCENTILES
    from pctce_cli.stats.summaries import summary_columns

    options = options or ReportOptions()
    if not cks:
        raise UsageError("no checkpoints selected")
    if options.tail_top > 0 and options.tail_checkpoints:
        _pick_tail(cks, options.tail_checkpoints)  # a bad glob fails before any work
    unit = unit_named(options.unit)
    unit.check_summaries(options.set_, "set_")
    ids = [c.id for c in cks]
    if options.vs is not None and options.vs not in ids:
        raise UsageError(f"vs '{options.vs}' is not among the selected checkpoints ({', '.join(ids[:8])})", param="vs")
    summaries = summary_columns(options.percentiles)
    agreement = summary_columns(AGREEMENT_PERCENTILES)
    fan = summary_columns(plot.FAN_PERCENTILES)
    needed = list(dict.fromkeys(summaries + list(options.set_) + list(TRAJECTORY_SUMMARIES) + fan + (agreement if options.task else [])))
    fields, field_notes = report_fields(cks, options.subsets.field if options.subsets is not None and options.subsets.split else None)
    measured = measure(cks, options, needed, fields)
    table = rows_table(cks, measured.table)
    b = _Build(
        cks, options, unit, measured, table, resolve_task(table, options.task), summaries, agreement,
        _Plots(options.dpi), plot.checkpoint_colors(cks), plot.what_was_scored(cks), plot.runs_of(cks),
    )
    warnings = ([f"{b.plots.missing}; the report has no plots"] if b.plots.missing else []) + identical_notes(cks)
    kl = measure_divergence(cks)  # None for a store scored without --reference: no KL finding, no KL section
    sections = [findings_section(report_findings(b, fields) + divergence_findings(kl)), summaries_section(b)]
    sections += divergence_sections(kl, b.plots, b.colors, b.runs, b.scored, options.subsets.describe() if options.subsets is not None else "")
    if fields:
        from pctce_cli.analysis.summary import merge_notes

        kept = merge_notes(measured.notes, len(cks))
        sections.append(subset_section(cks, measured.subsets, options.percentiles, b.plots, b.colors, b.scored, field_notes + kept))
    sections.append(position_section(cks, measured.positions, b.plots, b.colors, b.scored))
    sections += [concordance_section(b), selection_section(b), shape_section(b), tail_section(cks, measured, options), scored_section(cks)]
    return ReportDoc(f"pctce report: {b.scored}" + unit.per_comma, _intro(b), sections, warnings)


def report_findings(b: _Build, fields) -> list:
    """Every reading of :mod:`pctce_cli.report.findings` that applies to these checkpoints, in the order a reader asks."""
    from pctce_cli.report import findings as f

    t = b.table
    out = [f.mean_median_finding(t, plot.unit_text(b.unit.name, "ce"))]
    out += f.crossing_findings(b.measured.table, b.options.vs, b.runs)
    out += f.mover_findings(t, b.runs)
    out += f.concordance_findings(t, list(b.options.set_), b.options.agree, b.options.disagree)
    out += f.selection_findings(t, b.summaries, b.task_col, b.options.higher_is_better)
    out += f.subset_findings(b.measured.subsets.rows, fields)
    out += position_findings(b.measured.positions, b.measured.rows)
    for ck, s in b.measured.tail.items():
        if not b.unit.spans and s is not None and len(s.ce):
            out.append(f.tail_finding(ck, s.ce, s.doc))
    return [x for x in out if x is not None]


def _intro(b: _Build) -> list[str]:
    from pctce_cli import __version__

    intro = [header(b.cks, b.runs) + " " + UNIT_INTRO[b.unit.name] + f" Made by pctce {__version__}."]
    if b.plots.missing:
        intro.append(f"No plots: {b.plots.missing}.")
    if b.options.subsets is not None and b.options.subsets.keep:
        intro.append(f"Only documents of subset {b.options.subsets.describe()} (--subset): every number is of those documents.")
    return intro


def summaries_section(b: _Build) -> Section:
    """Trajectories (mean, p50, p95; the percentile fan), the distributions (ECDF and histogram), then the summary table on demand."""
    from pctce_cli.analysis.summary import summary_report

    unit, options, cks = b.unit, b.options, b.cks
    ce, big = plot.unit_text(unit.name, "ce"), plot.unit_text(unit.name, "CE")
    sec = Section("summaries", "Summaries" + unit.per)
    rep = summary_report(cks, options.percentiles, vs=options.vs, rows=b.measured.rows, unit=unit.name)
    stepped = [b.runs.get(c.id) or c.id for c in cks if c.step is not None]
    if any(stepped.count(r) > 1 for r in stepped):  # a line needs two steps of one run; dots alone are no trajectory
        b.add(
            sec,
            b.plots.image(
                "trajectory",
                f"Trajectory of mean, p50 and p95{' of ' + ce if unit.titled else ''} over training, one line per run" + (f" against {options.vs}" if options.vs else ""),
                lambda: plot.trajectory_figure(b.measured.table, list(TRAJECTORY_SUMMARIES), b.runs, options.vs, b.colors, b.title("trajectory"), unit.name),
            ),
        )
        b.add(
            sec,
            b.plots.image(
                "fan",
                f"Percentiles p10 … p99 of {ce} over training, one panel per run: the bulk and the tail",
                lambda: plot.fan_figure(b.measured.table, b.runs, b.colors, b.title("fan"), unit.name),
            ),
        )
    else:
        sec.blocks.append(Text("No trajectory plot: " + ("none of the checkpoints has a training step." if not stepped else "no run has two checkpoints with a training step (a run: --meta's run column, else the run directory).")))
    drawn, note = plot.overlaid(cks, "The ECDF")
    ids = {c.id for c in drawn}
    dists = [d for d in b.measured.dists if d.id in ids]
    b.add(sec, b.plots.image("ecdf", f"{big} distributions (ECDF and histogram, log CE axis; ◆/dashed = mean, ●/dotted = median)", lambda: plot.ecdf_figure(dists, b.colors, b.title("ecdf"))))
    if note:
        sec.blocks.append(Text(note.replace("--checkpoint GLOB", "pctce plot ecdf DIR --checkpoint GLOB") + "."))
    if rep.notes:
        sec.blocks.append(Notes(list(rep.notes)))
    b.add(sec, on_demand("Summary table", [Table(title, rows) for title, rows in rep.sections]))
    return sec


def concordance_section(b: _Build) -> Section:
    """Concordance of the summaries, its reading and the matrix plot (two checkpoints at least)."""
    from pctce_cli.analysis.concord import concord_report

    options = b.options
    sec = Section("concordance", "Concordance" + b.unit.per)
    if len(b.cks) < 2:
        sec.blocks.append(Text("Concordance needs at least 2 checkpoints."))
        return sec
    rep = concord_report(b.table, b.summaries, list(options.set_), options.agree, options.disagree)
    sec.blocks.append(
        Text(
            f"Reading: C ≥ {options.agree:g} — the summaries tell one story and mean CE is a safe selector; "
            f"C ≤ {options.disagree:g} — the distribution is being reshaped and the choice of summary changes which checkpoint wins."
        )
    )
    # tied-pair tables that hold only zeros say nothing; C_S's table counts ties anyway
    rep.sections = [(t, rows) for t, rows in rep.sections if not (t.startswith("Tied pairs") and _all_zero(rows))]
    b.add(sec, b.plots.image("concord", "Concordance matrix C(s, s') per group", lambda: plot.concord_figure(b.table, b.summaries, list(options.set_), b.title("concord"))))
    if rep.notes:
        sec.blocks.append(Notes(list(rep.notes)))
    b.add(sec, on_demand("Concordance tables", [Table(t, rows) for t, rows in rep.sections]))
    return sec


def selection_section(b: _Build) -> Section:
    """The selection rules and, with a task metric, the agreement of each summary with it."""
    from pctce_cli.analysis.select import select_report

    options = b.options
    sec = Section("selection", "Selection rules" + b.unit.per)
    rep = select_report(b.table, b.summaries, options.task, options.higher_is_better, b.agreement if b.task_col else None)
    tables = [Table(title, rows) for title, rows in rep.sections]
    if b.task_col is None:
        sec.blocks += tables[:1] + tables[1:] + ([Notes(list(rep.notes))] if rep.notes else [])
        sec.blocks.append(Text("No task metric given: pass --meta FILE --task COLUMN to add regret and the agreement of each summary with the task."))
        return sec
    sec.blocks += tables[:1] + ([Notes(list(rep.notes))] if rep.notes else [])
    b.add(sec, on_demand("Agreement tables", tables[1:]))
    b.add(
        sec,
        b.plots.image(
            "agreement",
            f"Agreement of each {plot.unit_text(b.unit.name, 'ce')} percentile with {options.task}",
            lambda: plot.agreement_figure(b.table, b.task_col, options.higher_is_better, b.title("agreement", task=options.task), b.unit.name),
        ),
    )
    return sec


def shape_section(b: _Build) -> Section:
    """Mass in CE bands, the standardized profiles and their plots."""
    from pctce_cli.analysis.shape import shape_tables
    from pctce_cli.stats.summaries import DEFAULT_EDGES

    dists, per = b.measured.dists, b.unit.per
    sec = Section("shape", "Shape" + per)
    edges = b.options.edges or DEFAULT_EDGES
    ce = plot.unit_text(b.unit.name, "ce")
    if any(c.step is not None for c in b.cks):
        steps = {c.id: c.step for c in b.cks}
        b.add(sec, b.plots.image("band-trajectory", f"Mass in {ce} bands over training, one panel per run", lambda: plot.band_trajectory_figure(dists, steps, b.runs, b.options.edges, b.colors, b.title("band-trajectory"))))
    b.add(sec, b.plots.image("bands", f"Mass in {ce} bands", lambda: plot.bands_figure(dists, b.options.edges, b.colors, b.title("bands"))))
    drawn, note = plot.overlaid(b.cks, "The profile plot")
    ids = {c.id for c in drawn}
    shown = [d for d in dists if d.id in ids]
    b.add(sec, b.plots.image("shape", "Standardized percentile profiles" + per, lambda: plot.shape_figure(shown, b.colors, b.title("shape"))))
    if note:
        sec.blocks.append(Text(note.replace("--checkpoint GLOB", "pctce plot shape DIR --checkpoint GLOB") + "."))
    rep = shape_tables(b.cks, [d.bands for d in dists], [d.profile for d in dists], edges, b.unit.name)
    tables = [Table(title, rows) for title, rows in rep.sections]
    for t in [t for t in tables if is_square(t)]:
        sec.blocks += matrix_blocks(t, b.plots, "profile-distances")
    b.add(sec, on_demand("Band masses and profiles", [t for t in tables if not is_square(t)] + ([Notes(list(rep.notes))] if rep.notes else [])))
    return sec
