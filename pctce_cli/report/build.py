"""Building the report: every section computed from one read of each checkpoint's partition."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pctce_cli import plot
from pctce_cli.catalog import identical_notes
from pctce_cli.errors import PctceError, UsageError
from pctce_cli.report.doc import Image, Notes, ReportDoc, ReportOptions, Section, Table, Text
from pctce_cli.report.subsets import SubsetMeasures, keep_view, report_fields, subset_section
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


def _short(fp) -> str | None:
    return str(fp)[:12] if fp else None


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, (list, tuple)):
            out[f"{prefix}{k}"] = ", ".join(map(str, v))
        else:
            out[f"{prefix}{k}"] = v
    return out


def scored_section(cks) -> Section:
    """Checkpoints, data and tokenizer, scoring settings and versions, from the manifests."""
    sec = Section("scored", "What was scored")
    sec.blocks.append(Text(f"{plot.what_was_scored(cks)}; settings as recorded in each checkpoint's manifest."))
    rows = []
    for c in cks:
        m = c.manifest
        rows.append(
            {
                "checkpoint": c.id,
                "step": c.step,
                "group": c.group,
                "run": c.run,
                "kind": m.kind,
                "targets": m.targets,
                "documents": m.documents,
                "path": m.path,
                "weights": _short(m.fingerprints.get("weights")),
                "scored": m.created,
            }
        )
    sec.blocks.append(Table("Checkpoints", rows))
    inputs: dict[tuple, dict] = {}
    for c in cks:
        m = c.manifest
        fp = m.fingerprints
        data = m.data
        files = ", ".join(map(str, data.get("files") or [])) or None
        key = (files, fp.get("data"), fp.get("tokenizer"), m.tokenizer_path)
        row = inputs.setdefault(
            key,
            {
                "data files": files,
                "records": data.get("records"),
                "documents": data.get("documents"),
                "skipped documents": data.get("skipped_documents"),
                "data fingerprint": _short(fp.get("data")),
                "tokenizer": m.tokenizer_path,
                "tokenizer fingerprint": _short(fp.get("tokenizer")),
                "checkpoints": 0,
            },
        )
        row["checkpoints"] += 1
    sec.blocks.append(Table("Data and tokenizer", list(inputs.values())))
    flat = [(c.id, {**_flat(c.manifest.settings), **_flat(c.manifest.versions, "version of ")}) for c in cks]
    keys = list(dict.fromkeys(k for _, f in flat for k in f))
    settings = []
    for k in keys:
        values = [f.get(k) for _, f in flat]
        if all(v == values[0] for v in values):
            settings.append({"setting": k, "value": values[0]})
        else:
            settings.append({"setting": k, "value": "; ".join(f"{cid}: {v}" for (cid, _), v in zip(flat, values))})
    sec.blocks.append(Table("Scoring settings and software versions", settings))
    return sec


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

    return select_by_globs(list(cks), patterns, lambda p: UsageError(f"--tail-checkpoint '{p}' matches no selected checkpoint"))


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
    m = Measured([], [], [], {}, SubsetMeasures(fields, unit.name), [])
    keep = options.subsets if options.subsets is not None and options.subsets.keep else NO_SUBSETS
    keep = Subsets(keep.field, split=False, keep=keep.keep) if keep.active else keep
    best = None
    for c in cks:
        s, notes = keep_view(c, unit.load_arrays(c, columns=None), keep)
        m.notes += notes
        m.subsets.add(c, s, options.percentiles, options.edges)
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
                return run_tail(c.partition, store=c.root, top=options.tail_top, context=options.context, scores=measured.tail[c.id], decode=decode)

        try:
            rep = tail()
            lost = None
        except PctceError as e:
            rep = tail(decode=False)
            reason = str(e).split("; pass ")[0]  # the tail command's own options do not apply here
            lost = f"The text of {c.id}'s tail is not shown, only token ids: {reason}."
        for title, rows in rep.sections:
            sec.blocks.append(Table(title.replace(c.partition, c.id), rows))
        sec.blocks.append(Notes(([lost] if lost else []) + list(rep.notes)))
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
    unit.check_summaries(options.set_, "--set")
    ids = [c.id for c in cks]
    if options.vs is not None and options.vs not in ids:
        raise UsageError(f"--vs '{options.vs}' is not among the selected checkpoints ({', '.join(ids[:8])})")
    summaries = summary_columns(options.percentiles)
    agreement = summary_columns(AGREEMENT_PERCENTILES)
    needed = list(dict.fromkeys(summaries + list(options.set_) + list(TRAJECTORY_SUMMARIES) + (agreement if options.task else [])))
    fields, field_notes = report_fields(cks, options.subsets.field if options.subsets is not None and options.subsets.split else None)
    measured = measure(cks, options, needed, fields)
    table = rows_table(cks, measured.table)
    b = _Build(
        cks, options, unit, measured, table, resolve_task(table, options.task), summaries, agreement,
        _Plots(options.dpi), plot.checkpoint_colors(cks), plot.what_was_scored(cks),
    )
    warnings = ([f"{b.plots.missing}; the report has no plots"] if b.plots.missing else []) + identical_notes(cks)
    sections = [scored_section(cks), summaries_section(b)]
    if fields:
        from pctce_cli.analysis.summary import merge_notes

        kept = merge_notes(measured.notes, len(cks))
        sections.append(subset_section(cks, measured.subsets, options.percentiles, b.plots, b.colors, b.scored, field_notes + kept))
    sections += [concordance_section(b), selection_section(b), shape_section(b), tail_section(cks, measured, options)]
    return ReportDoc(f"pctce report: {b.scored}" + unit.per_comma, _intro(b), sections, warnings)


def _intro(b: _Build) -> list[str]:
    from pctce_cli import __version__

    ids = [c.id for c in b.cks]
    intro = [
        f"{len(b.cks)} checkpoint(s) scored on {plot.data_names(b.cks)}: {', '.join(ids[:12])}{' …' if len(ids) > 12 else ''}.",
        UNIT_INTRO[b.unit.name] + f" Made by pctce {__version__}.",
    ]
    if b.plots.missing:
        intro.append(f"No plots: {b.plots.missing}.")
    if b.options.subsets is not None and b.options.subsets.keep:
        intro.append(f"Only documents of subset {b.options.subsets.describe()} (--subset): every number is of those documents.")
    return intro


def summaries_section(b: _Build) -> Section:
    """The summary table, the distributions (ECDF and histogram) and the trajectories of mean, p50 and p95."""
    from pctce_cli.analysis.summary import summary_report

    unit, options, cks = b.unit, b.options, b.cks
    ce, big = plot.unit_text(unit.name, "ce"), plot.unit_text(unit.name, "CE")
    sec = Section("summaries", "Summaries" + unit.per)
    sec.blocks += _report_blocks(summary_report(cks, options.percentiles, vs=options.vs, rows=b.measured.rows, unit=unit.name))
    dists = b.measured.dists
    b.add(sec, b.plots.image("ecdf", f"{big} distributions (ECDF and histogram, log CE axis; ◆/dashed = mean, ●/dotted = median)", lambda: plot.ecdf_figure(dists, b.colors, b.title("ecdf"))))
    b.add(
        sec,
        b.plots.image(
            "trajectory",
            f"Trajectory of mean, p50 and p95{' of ' + ce if unit.titled else ''} over training" + (f" against {options.vs}" if options.vs else ""),
            lambda: plot.trajectory_figure(b.measured.table, list(TRAJECTORY_SUMMARIES), plot.runs_of(cks), options.vs, b.colors, b.title("trajectory"), unit.name),
        ),
    )
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
    sec.blocks += _report_blocks(rep)
    b.add(sec, b.plots.image("concord", "Concordance matrix C(s, s') per group", lambda: plot.concord_figure(b.table, b.summaries, list(options.set_), b.title("concord"))))
    return sec


def selection_section(b: _Build) -> Section:
    """The selection rules and, with a task metric, the agreement of each summary with it."""
    from pctce_cli.analysis.select import select_report

    options = b.options
    sec = Section("selection", "Selection rules" + b.unit.per)
    sec.blocks += _report_blocks(select_report(b.table, b.summaries, options.task, options.higher_is_better, b.agreement if b.task_col else None))
    if b.task_col is None:
        sec.blocks.append(Text("No task metric given: pass --meta FILE --task COLUMN to add regret and the agreement of each summary with the task."))
        return sec
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
    sec.blocks += _report_blocks(shape_tables(b.cks, [d.bands for d in dists], [d.profile for d in dists], edges, b.unit.name))
    b.add(sec, b.plots.image("shape", "Standardized percentile profiles" + per, lambda: plot.shape_figure(dists, b.colors, b.title("shape"))))
    b.add(sec, b.plots.image("bands", f"Mass in {plot.unit_text(b.unit.name, 'ce')} bands", lambda: plot.bands_figure(dists, b.options.edges, b.colors, b.title("bands"))))
    return sec
