"""Core of `pctce report`: one self-contained HTML (or Markdown) report over score directories.

:func:`build_report` gathers what the analysis commands compute — what was
scored, summaries, concordance and its reading, selection rules and task
agreement, shape, tail examples — plus the plots of :mod:`pctce_cli.plot` into
a :class:`ReportDoc`. :func:`to_html` turns it into one HTML string (images as
inline base64 PNG, styles inline, every piece of user text escaped, no network
resource); :func:`to_markdown` into Markdown plus PNG files to place beside it.
Writing happens only in :func:`save_report` (temporary name, then rename).

Without matplotlib the report is still written, without plots, and says so.
No torch import here (transformers is imported only to decode tail examples).
"""

from __future__ import annotations

import fnmatch
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pctce_cli import plot
from pctce_cli.errors import PctceError, UsageError

SECTIONS = (
    ("scored", "What was scored"),
    ("summaries", "Summaries"),
    ("concordance", "Concordance"),
    ("selection", "Selection rules"),
    ("shape", "Shape"),
    ("tail", "Tail examples"),
)


# ---------------------------------------------------------------- document model


@dataclass
class Text:
    """A paragraph of plain text."""

    text: str


@dataclass
class Notes:
    """A bulleted list of plain-language lines (readings, crossings, caveats)."""

    lines: list[str]


@dataclass
class Table:
    """A titled table: one dict per row."""

    title: str
    rows: list[dict]


@dataclass
class Image:
    """A rendered plot: ``name`` (file-name safe), caption, PNG bytes."""

    name: str
    caption: str
    png: bytes


@dataclass
class Section:
    """A report section: an anchor id, a title and its blocks in order."""

    id: str
    title: str
    blocks: list = field(default_factory=list)


@dataclass
class ReportDoc:
    """A whole report, independent of its output format."""

    title: str
    intro: list[str]
    sections: list[Section]
    warnings: list[str] = field(default_factory=list)


@dataclass
class ReportOptions:
    """Settings of a report (the analysis commands' options of the same names).

    Attributes:
        percentiles: Percentiles of the summary table and selection rules.
        set_: The summary set S of C_S.
        vs: Reference checkpoint (differences, crossings, trajectory line).
        task: Task-metric column (from ``--meta``) for regret and agreement.
        higher_is_better: Direction of the task metric.
        edges: CE band edges.
        tail_top: Highest-CE targets listed per tail checkpoint (0: none).
        tail_checkpoints: Id globs of the checkpoints whose tail is shown
            (default: the one with the lowest mean CE).
        context: Decoded tokens before each tail target.
        agree, disagree: Concordance reading thresholds.
        dpi: Resolution of the embedded PNGs.
    """

    percentiles: Sequence[float] = (50, 90, 95, 99)
    set_: Sequence[str] = ("mean", "p50", "p95")
    vs: str | None = None
    task: str | None = None
    higher_is_better: bool = True
    edges: Sequence[float] | None = None
    tail_top: int = 10
    tail_checkpoints: Sequence[str] = ()
    context: int = 20
    agree: float = 0.8
    disagree: float = 0.6
    dpi: int = 110


# ---------------------------------------------------------------- building


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
                "kind": m.get("kind"),
                "targets": m.get("targets"),
                "documents": m.get("documents"),
                "path": m.get("path"),
                "weights": _short((m.get("fingerprints") or {}).get("weights")),
                "scored": m.get("created"),
            }
        )
    sec.blocks.append(Table("Checkpoints", rows))
    inputs: dict[tuple, dict] = {}
    for c in cks:
        m = c.manifest
        fp = m.get("fingerprints") or {}
        data = m.get("data") or {}
        files = ", ".join(map(str, data.get("files") or [])) or None
        key = (files, fp.get("data"), fp.get("tokenizer"), m.get("tokenizer_path"))
        row = inputs.setdefault(
            key,
            {
                "data files": files,
                "records": data.get("records"),
                "documents": data.get("documents"),
                "skipped documents": data.get("skipped_documents"),
                "data fingerprint": _short(fp.get("data")),
                "tokenizer": m.get("tokenizer_path"),
                "tokenizer fingerprint": _short(fp.get("tokenizer")),
                "checkpoints": 0,
            },
        )
        row["checkpoints"] += 1
    sec.blocks.append(Table("Data and tokenizer", list(inputs.values())))
    flat = [(c.id, {**_flat(c.manifest.get("settings") or {}), **_flat(c.manifest.get("versions") or {}, "version of ")}) for c in cks]
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


def _pick_tail(cks, table, patterns: Sequence[str]) -> list:
    if patterns:
        picked = []
        for p in patterns:
            hit = [c for c in cks if fnmatch.fnmatchcase(c.id, p)]
            if not hit:
                raise UsageError(f"--tail-checkpoint '{p}' matches no selected checkpoint")
            picked += [c for c in hit if c not in picked]
        return picked
    best = table.loc[table["mean"].astype(float).idxmin(), "checkpoint"]
    return [c for c in cks if c.id == best]


def tail_section(cks, table, options: ReportOptions) -> Section:
    """Highest-CE targets of the chosen checkpoints, decoded when tokenizer and data are still there."""
    from pctce_cli.tail import run_tail

    sec = Section("tail", "Tail examples")
    if options.tail_top <= 0:
        sec.blocks.append(Text("Tail examples were not requested (--tail-top 0)."))
        return sec
    picked = _pick_tail(cks, table, options.tail_checkpoints)
    if not options.tail_checkpoints:
        sec.blocks.append(Text(f"The highest-CE targets of {picked[0].id}, the checkpoint with the lowest mean CE (choose others with --tail-checkpoint)."))
    for c in picked:
        kw = dict(store=c.root, top=options.tail_top, context=options.context)
        try:
            rep = run_tail(c.partition, **kw)
            lost = None
        except PctceError as e:
            rep = run_tail(c.partition, decode=False, **kw)
            reason = str(e).split("; pass ")[0]  # the tail command's own options do not apply here
            lost = f"The text of {c.id}'s tail is not shown, only token ids: {reason}."
        for title, rows in rep.sections:
            sec.blocks.append(Table(title.replace(c.partition, c.id), rows))
        sec.blocks.append(Notes(([lost] if lost else []) + list(rep.notes)))
    return sec


def build_report(cks, options: ReportOptions | None = None) -> ReportDoc:
    """Compute every section of the report for the selected checkpoints.

    Args:
        cks: Checkpoints from :func:`pctce_cli.analysis.resolve_checkpoints`.
        options: :class:`ReportOptions` (defaults as in the analysis commands).

    Returns:
        A :class:`ReportDoc` with the sections of :data:`SECTIONS`, in order.

    Raises:
        UsageError: bad options (unknown ``vs``, ``task`` column, tail glob).
    """
    from pctce_cli import analysis
    from pctce_cli.stats.selection import AGREEMENT_PERCENTILES

    options = options or ReportOptions()
    if not cks:
        raise UsageError("no checkpoints selected")
    if options.tail_top > 0 and options.tail_checkpoints:
        _pick_tail(cks, None, options.tail_checkpoints)  # a bad glob fails before any work
    ids = [c.id for c in cks]
    if options.vs is not None and options.vs not in ids:
        raise UsageError(f"--vs '{options.vs}' is not among the selected checkpoints ({', '.join(ids[:8])})")
    summaries = ["mean"] + [analysis.pname(q) for q in options.percentiles]
    agreement = ["mean"] + [analysis.pname(q) for q in AGREEMENT_PERCENTILES]
    needed = list(dict.fromkeys(summaries + list(options.set_) + (agreement if options.task else [])))
    table = analysis.summaries_table(cks, None, needed)
    task_col = analysis.resolve_task(table, options.task)
    plots = _Plots(options.dpi)
    colors = plot.checkpoint_colors(cks)
    scored = plot.what_was_scored(cks)
    warnings = [f"{plots.missing}; the report has no plots"] if plots.missing else []

    def add(sec: Section, block) -> None:
        if block is not None:
            sec.blocks.append(block)

    sections = [scored_section(cks)]

    # summaries, the distributions and the trajectories
    sec = Section("summaries", "Summaries")
    sec.blocks += _report_blocks(analysis.summary_report(cks, options.percentiles, vs=options.vs))
    dists = plot.distributions(cks, options.edges) if plots.missing is None else []
    add(sec, plots.image("ecdf", "CE distributions (ECDF and histogram, log CE axis; ◆/dashed = mean, ●/dotted = median)", lambda: plot.ecdf_figure(dists, colors, f"CE distribution of {scored}")))
    traj = ["mean", "p50", "p95"]
    add(
        sec,
        plots.image(
            "trajectory",
            "Trajectory of mean, p50 and p95 over training" + (f" against {options.vs}" if options.vs else ""),
            lambda: plot.trajectory_figure(plot.trajectory_rows(cks, traj), traj, {c.id: plot.run_of(c) for c in cks}, options.vs, colors, f"Summaries over training of {scored}"),
        ),
    )
    sections.append(sec)

    # concordance and its reading
    sec = Section("concordance", "Concordance")
    if len(cks) < 2:
        sec.blocks.append(Text("Concordance needs at least 2 checkpoints."))
    else:
        rep = analysis.concord_report(table, summaries, list(options.set_), options.agree, options.disagree)
        sec.blocks.append(
            Text(
                f"Reading: C ≥ {options.agree:g} — the summaries tell one story and mean CE is a safe selector; "
                f"C ≤ {options.disagree:g} — the distribution is being reshaped and the choice of summary changes which checkpoint wins."
            )
        )
        # tied-pair tables that hold only zeros say nothing; C_S's table counts ties anyway
        rep.sections = [(t, rows) for t, rows in rep.sections if not (t.startswith("Tied pairs") and _all_zero(rows))]
        sec.blocks += _report_blocks(rep)
        add(sec, plots.image("concord", "Concordance matrix C(s, s') per group", lambda: plot.concord_figure(table, summaries, list(options.set_), f"Concordance of summaries across {scored}")))
    sections.append(sec)

    # selection rules and task agreement
    sec = Section("selection", "Selection rules")
    sec.blocks += _report_blocks(
        analysis.select_report(table, summaries, options.task, options.higher_is_better, agreement if task_col else None)
    )
    if task_col is None:
        sec.blocks.append(Text("No task metric given: pass --meta FILE --task COLUMN to add regret and the agreement of each summary with the task."))
    else:
        add(sec, plots.image("agreement", f"Agreement of each CE percentile with {options.task}", lambda: plot.agreement_figure(table, task_col, options.higher_is_better, f"Agreement of CE summaries with {options.task} across {scored}")))
    sections.append(sec)

    # shape
    sec = Section("shape", "Shape")
    sec.blocks += _report_blocks(analysis.shape_report(cks, options.edges or analysis.parse_edges(None)))
    add(sec, plots.image("shape", "Standardized percentile profiles", lambda: plot.shape_figure(dists, colors, f"Standardized percentile profiles of {scored}")))
    add(sec, plots.image("bands", "Mass in CE bands", lambda: plot.bands_figure(dists, options.edges, colors, f"Mass in CE bands of {scored}")))
    sections.append(sec)

    sections.append(tail_section(cks, table, options))

    from pctce_cli import __version__

    intro = [
        f"{len(cks)} checkpoint(s) scored on {plot.data_names(cks)}: {', '.join(ids[:12])}{' …' if len(ids) > 12 else ''}.",
        f"Per-token cross-entropy in nats; percentiles are type-7 (linear). Made by pctce {__version__}.",
    ]
    if plots.missing:
        intro.append(f"No plots: {plots.missing}.")
    return ReportDoc(f"pctce report: {scored}", intro, sections, warnings)


# ---------------------------------------------------------------- HTML


REPORT_STYLE = (
    "h1{font-size:1.5em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}"
    "nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1.2em}"
    ".table{overflow-x:auto;margin:1em 0}"
    "table{border-collapse:collapse;font-size:.85em;font-variant-numeric:tabular-nums}"
    "caption{text-align:left;font-weight:600;padding:.3em 0;white-space:nowrap}"
    "th,td{border-bottom:1px solid #e5e5e5;padding:.25em .6em;text-align:left;vertical-align:top}"
    "th{background:#f6f6f6;white-space:nowrap}td.num{text-align:right;white-space:nowrap}"
    "td.text{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;max-width:40em}"
    "figure{margin:1.5em 0}figcaption{color:#555;font-size:.9em}"
    ".notes li{margin:.2em 0}.intro{color:#444}"
)

_TEXT_COLUMNS = ("context", "target", "path", "data files", "tokenizer", "value")


def _columns(rows: list[dict]) -> list[str]:
    """Every column in order of first appearance, less those empty in every row."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    return [c for c in cols if any(r.get(c) is not None and not (isinstance(r.get(c), float) and math.isnan(r.get(c))) for r in rows)] or cols


def _cell(v) -> str:
    from pctce_cli.render import fmt_number

    return fmt_number(v)


def table_html(t: Table) -> str:
    """One table, every cell and header escaped; numbers right-aligned."""
    from pctce_cli.render import records

    rows = records(t.rows)
    cols = _columns(rows)
    out = [f'<div class="table"><table>\n<caption>{html.escape(t.title)}</caption>\n<thead><tr>']
    out += [f"<th>{html.escape(str(c))}</th>" for c in cols]
    out.append("</tr></thead>\n<tbody>\n")
    for r in rows:
        out.append("<tr>")
        for c in cols:
            v = r.get(c)
            cls = "num" if isinstance(v, (int, float)) and not isinstance(v, bool) else "text" if c in _TEXT_COLUMNS else ""
            out.append(f'<td class="{cls}">{html.escape(_cell(v))}</td>' if cls else f"<td>{html.escape(_cell(v))}</td>")
        out.append("</tr>\n")
    out.append("</tbody></table></div>")
    return "".join(out)


def block_html(b) -> str:
    """One block of a section as HTML."""
    if isinstance(b, Text):
        return f"<p>{html.escape(b.text)}</p>"
    if isinstance(b, Notes):
        return '<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in b.lines) + "</ul>" if b.lines else ""
    if isinstance(b, Table):
        return table_html(b)
    if isinstance(b, Image):
        return (
            f'<figure id="plot-{html.escape(b.name)}"><img alt="{html.escape(b.caption)}" src="{plot.png_data_uri(b.png)}">'
            f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
        )
    raise TypeError(f"unknown report block {type(b).__name__}")


def to_html(doc: ReportDoc) -> str:
    """The report as one self-contained HTML page (no external resource of any kind)."""
    body = [f"<h1>{html.escape(doc.title)}</h1>"]
    body += [f'<p class="intro">{html.escape(p)}</p>' for p in doc.intro]
    body.append("<nav><ul>" + "".join(f'<li><a href="#{s.id}">{html.escape(s.title)}</a></li>' for s in doc.sections) + "</ul></nav>")
    for s in doc.sections:
        body.append(f'<section id="{s.id}">\n<h2>{html.escape(s.title)}</h2>')
        body += [block_html(b) for b in s.blocks]
        body.append("</section>")
    return plot.html_page(doc.title, "\n".join(body), REPORT_STYLE)


def html_report(cks, options: ReportOptions | None = None) -> str:
    """:func:`build_report` rendered by :func:`to_html`."""
    return to_html(build_report(cks, options))


# ---------------------------------------------------------------- Markdown


def _md_text(text: str) -> str:
    """Plain text safe in Markdown: HTML special characters as entities."""
    return html.escape(str(text), quote=False)


def to_markdown(doc: ReportDoc, image_prefix: str) -> tuple[str, dict[str, bytes]]:
    """The report as Markdown, and its images as ``{file name: PNG bytes}``.

    Images are referenced by relative file names ``<image_prefix>-<plot>.png``,
    to be written beside the Markdown file.
    """
    from pctce_cli.render import markdown_table, records

    lines = [f"# {_md_text(doc.title)}", ""]
    lines += [p for x in doc.intro for p in (_md_text(x), "")]
    images: dict[str, bytes] = {}
    for s in doc.sections:
        lines += [f"## {_md_text(s.title)}", ""]
        for b in s.blocks:
            if isinstance(b, Text):
                lines += [_md_text(b.text), ""]
            elif isinstance(b, Notes):
                if b.lines:
                    lines += [f"- {_md_text(n)}" for n in b.lines] + [""]
            elif isinstance(b, Table):
                rows = [{k: _md_text(v) if isinstance(v, str) else v for k, v in r.items()} for r in records(b.rows)]
                lines += [f"**{_md_text(b.title)}**", "", markdown_table(rows, _columns(rows)).rstrip("\n"), ""]
            elif isinstance(b, Image):
                name = f"{image_prefix}-{b.name}.png"
                images[name] = b.png
                lines += [f"![{_md_text(b.caption)}]({name})", ""]
    return "\n".join(lines), images


# ---------------------------------------------------------------- writing


def save_report(cks, out: str | Path, options: ReportOptions | None = None, markdown: bool = False) -> tuple[list[Path], list[str]]:
    """`pctce report`: build the report and write it (HTML, or Markdown with PNGs beside it).

    Returns:
        The written paths (the report first) and warnings for the user.
    """
    out = Path(out)
    if not markdown and out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--out {out}: expected an .html file (or pass --markdown for Markdown)")
    doc = build_report(cks, options)
    if not markdown:
        return [plot.write_atomic(out, to_html(doc).encode("utf-8"))], doc.warnings
    text, images = to_markdown(doc, out.stem)
    written = [plot.write_atomic(out.parent / name, png) for name, png in images.items()]
    return [plot.write_atomic(out, text.encode("utf-8")), *written], doc.warnings
