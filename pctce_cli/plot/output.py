"""From a plot kind to a file: :func:`plot_figure` dispatch, deterministic PNG/SVG bytes, HTML pages, writing.

Writing happens only in :func:`save_figure` (through :mod:`pctce_cli.atomic`:
temporary name, then rename). :func:`figure_bytes`, :func:`inline_svg`,
:func:`png_data_uri` and :func:`html_page` are shared with `pctce report`.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pctce_cli import atomic
from pctce_cli.analysis.subsets import NO_SUBSETS, Subsets, no_targets
from pctce_cli.errors import UsageError
from pctce_cli.fmt import clean_figure_text
from pctce_cli.plot.figures import agreement_figure, bands_figure, concord_figure, ecdf_figure, shape_figure, trajectory_figure
from pctce_cli.plot.inputs import distributions, overlaid_titled, trajectory_rows
from pctce_cli.plot.training import FAN_PERCENTILES, band_trajectory_figure, fan_figure
from pctce_cli.plot.position import position_plot
from pctce_cli.plot.panels import cap_panels, flatten_panels, subset_distributions, subset_ecdf_figure, subset_shape_figure
from pctce_cli.plot.theme import checkpoint_colors, plot_title, require_matplotlib, runs_of, style, what_was_scored
from pctce_cli.parse import parse_summary_list
from pctce_cli.stats.defaults import DEFAULT_CONCORDANCE_SET, DEFAULT_SUMMARIES, TRAJECTORY_SUMMARIES
from pctce_cli.stats.summaries import summary_columns
from pctce_cli.units import unit_named

KINDS = ("ecdf", "trajectory", "fan", "band-trajectory", "concord", "agreement", "shape", "bands", "position")
OUTPUT_SUFFIXES = (".png", ".svg", ".html")
BY_KINDS = ("ecdf", "shape", "bands")  # kinds drawn per subset with --by (small multiples; bands: a bar per checkpoint and subset)


def plot_figure(
    kind: str,
    cks,
    *,
    summaries: Sequence[str] | None = None,
    vs: str | None = None,
    task: str | None = None,
    higher_is_better: bool = True,
    edges: Sequence[float] | None = None,
    colors: Mapping[str, str] | None = None,
    subsets: Subsets = NO_SUBSETS,
    notes: list[str] | None = None,
    unit: str = "token",
    positions=None,
    value: str = "ce",
) -> object:
    """The Figure of one plot ``kind`` for the selected checkpoints.

    Args:
        kind: One of :data:`KINDS`.
        cks: Checkpoints from :func:`pctce_cli.analysis.resolve_checkpoints`
            (with ``unit`` word or byte, checkpoints of different tokenizers on the same data may mix).
        summaries: ``trajectory``: summaries to draw (default mean, p50, p95);
            ``concord``: rows/columns of the matrix (default mean, p50, p90, p95, p99).
        vs: ``trajectory``: reference checkpoint id.
        task: ``agreement``: task-metric column (from ``--meta``).
        higher_is_better: Direction of the task metric.
        edges: ``bands``: CE band edges (default docs/definitions.md#summaries-of-one-checkpoint:).
        colors: Name → color (default :func:`checkpoint_colors` of ``cks``).
        subsets: ``--by``: small multiples, one panel per subset (:data:`BY_KINDS`);
            ``--subset``: only the kept documents, for every kind.
        notes: Where notes for the user go (subsets left out of the figure).
        unit: ``token``, ``word`` or ``byte`` (docs/definitions.md#words-and-bytes): every kind draws that
            unit's distribution or summaries (bytes weighted: each token's CE
            spread evenly over its bytes), and its axes and title say so.
        positions: ``position``: ``--by position|ctx`` and its edges (:class:`pctce_cli.analysis.position.Positions`; None: by position).
        value: ``ce``, or ``kl`` (``ecdf`` and ``trajectory`` of the divergence stored by ``pctce score --reference``,
            :mod:`~pctce_cli.plot.divergence`).

    Raises:
        UsageError: unknown kind or unit, a missing option, too few checkpoints,
            a token-only summary (``top1``) in words or bytes, or words/bytes of
            a checkpoint without byte spans.
    """
    if kind not in KINDS:
        raise UsageError(f"unknown plot kind '{kind}' (expected one of: {', '.join(KINDS)})")
    unit_named(unit)
    require_matplotlib()
    if not cks:
        raise UsageError("no checkpoints selected")
    if subsets.split and kind not in BY_KINDS:
        raise UsageError(f"plot {kind} by: one panel per subset is drawn for {', '.join(BY_KINDS)}", param="by", remedy="plot one subset with subset VALUE", remedy_param=("one subset", "subset"))
    if positions is not None and kind != "position":
        raise UsageError(f"plot {kind} by {positions.dim}: only plot position buckets targets (use plot position)", param="by")
    if value != "ce":
        return _divergence_plot(kind, cks, value, summaries, vs, colors, subsets, notes, unit)
    scored = what_was_scored(cks) + (f", subset {subsets.describe()}" if subsets.keep else "")
    p = _Inputs(cks, summaries, vs, task, higher_is_better, edges, colors or checkpoint_colors(cks), subsets, notes if notes is not None else [], unit, scored, positions)
    if kind in BY_KINDS:
        return _distribution_plot(kind, p)
    return SUMMARY_PLOTS[kind](p)


def _divergence_plot(kind, cks, value, summaries, vs, colors, subsets, notes, unit) -> object:
    """``plot ecdf|trajectory --value kl``, checked (subsets on the ecdf only; token unit; every store scored with a reference)."""
    from pctce_cli.plot.divergence import check_divergence_plot, divergence_plot, divergence_title

    check_divergence_plot(kind, value, cks, unit, bool(subsets.split))
    scored = what_was_scored(cks) + (f", subset {subsets.describe()}" if subsets.keep else "")
    if value == "dp":
        from pctce_cli.plot.delta_p import dp_plot

        return dp_plot(cks, subsets, colors or checkpoint_colors(cks), scored, notes if notes is not None else [])
    u = unit_named(unit).name
    title = divergence_title(kind, cks, scored, by=subsets.field if subsets.split else None, unit=u)
    if kind == "ecdf" and subsets.active:
        from pctce_cli.plot.divergence_panels import kl_subset_figure

        return kl_subset_figure(cks, subsets, colors or checkpoint_colors(cks), title, notes if notes is not None else [], u)
    return divergence_plot(kind, value, cks, summaries=summaries, vs=vs, colors=colors or checkpoint_colors(cks), runs=runs_of(cks), title=title, notes=notes, subsets=subsets, unit=u)


@dataclass
class _Inputs:
    """The options of :func:`plot_figure`, as its builders take them."""

    cks: list
    summaries: Sequence[str] | None
    vs: str | None
    task: str | None
    higher_is_better: bool
    edges: Sequence[float] | None
    colors: Mapping[str, str]
    subsets: Subsets
    notes: list[str]
    unit: str
    scored: str
    positions: object = None  # plot position: --by position|ctx (None: position)

    def title(self, kind: str, **kw) -> str:
        return plot_title(kind, self.unit, self.scored, **kw)


def _distribution_plot(kind: str, p: _Inputs) -> object:
    """``ecdf``, ``shape`` or ``bands``: one figure of every checkpoint's distribution, or one panel per subset (``--by``).

    ``ecdf`` and ``shape`` overlay at most :data:`~pctce_cli.plot.inputs.MAX_OVERLAID`
    checkpoints: past it each run's last one (:func:`~pctce_cli.plot.inputs.overlaid`), said in the title and a note.
    """
    drawn, more = overlaid_titled(p.cks, f"plot {kind}", p.notes) if kind != "bands" else (p.cks, "")
    if p.subsets.active:
        panels, ns = subset_distributions(drawn, p.subsets, p.edges, p.unit)
        if not panels:
            raise no_targets(p.subsets)
        if p.subsets.split:
            panels, capped = cap_panels(panels, p.subsets.field)
            p.notes += ns + capped
            title = p.title(kind, by=p.subsets.field) + more
            if kind == "ecdf":
                return subset_ecdf_figure(panels, p.subsets.field, p.colors, title)
            if kind == "shape":
                return subset_shape_figure(panels, p.subsets.field, p.colors, title)
            dists, colors = flatten_panels(panels, p.colors)
            return bands_figure(dists, p.edges, colors, title)
        p.notes += ns
        dists = panels[0][1]
    else:
        dists = distributions(drawn, p.edges, p.unit)
    title = p.title(kind) + more
    if kind == "ecdf":
        return ecdf_figure(dists, p.colors, title)
    if kind == "shape":
        return shape_figure(dists, p.colors, title)
    return bands_figure(dists, p.edges, p.colors, title)


def _trajectory_plot(p: _Inputs) -> object:
    names = parse_summary_list(p.summaries, list(TRAJECTORY_SUMMARIES), "summaries")
    unit_named(p.unit).check_summaries(names, "summaries")
    runs = runs_of(p.cks)
    rows = trajectory_rows(p.cks, names, p.subsets, p.notes, p.unit)
    return trajectory_figure(rows, names, runs, p.vs, p.colors, p.title("trajectory"), p.unit)


def _concord_plot(p: _Inputs) -> object:
    from pctce_cli.analysis.summary import summaries_table

    names = parse_summary_list(p.summaries, list(DEFAULT_SUMMARIES), "summaries")
    unit_named(p.unit).check_summaries(names, "summaries")
    if len(p.cks) < 2:
        raise UsageError(f"concordance needs at least 2 checkpoints, got {len(p.cks)}")
    needed = list(dict.fromkeys([*names, *DEFAULT_CONCORDANCE_SET]))
    table = summaries_table(p.cks, None, needed, meta_columns=False, subsets=p.subsets, notes=p.notes, unit=p.unit)
    return concord_figure(table, names, list(DEFAULT_CONCORDANCE_SET), p.title("concord"))


def _agreement_plot(p: _Inputs) -> object:
    from pctce_cli.analysis.select import resolve_task
    from pctce_cli.analysis.summary import summaries_table
    from pctce_cli.stats.selection import AGREEMENT_PERCENTILES

    if p.task is None:
        raise UsageError("plot agreement needs task COL (a task-metric column of meta)", param=("task", "meta"))
    table = summaries_table(p.cks, None, summary_columns(AGREEMENT_PERCENTILES), subsets=p.subsets, notes=p.notes, unit=p.unit)
    col = resolve_task(table, p.task)
    return agreement_figure(table, col, p.higher_is_better, p.title("agreement", task=p.task), p.unit)


def _fan_plot(p: _Inputs) -> object:
    from pctce_cli.stats.summaries import percentile_name

    names = [percentile_name(q) for q in FAN_PERCENTILES]
    rows = trajectory_rows(p.cks, names, p.subsets, p.notes, p.unit)
    return fan_figure(rows, runs_of(p.cks), p.colors, p.title("fan"), p.unit)


def _band_trajectory_plot(p: _Inputs) -> object:
    stepped = [c for c in p.cks if c.step is not None]
    if p.subsets.active and stepped:
        panels, ns = subset_distributions(stepped, p.subsets, p.edges, p.unit)
        p.notes += ns
        dists = panels[0][1] if panels else []
    else:
        dists = distributions(stepped, p.edges, p.unit)
    return band_trajectory_figure(dists, {c.id: c.step for c in p.cks}, runs_of(p.cks), p.edges, p.colors, p.title("band-trajectory"))


# the kinds drawn from summaries (the others, BY_KINDS, from each checkpoint's distribution)
SUMMARY_PLOTS = {"trajectory": _trajectory_plot, "fan": _fan_plot, "band-trajectory": _band_trajectory_plot, "concord": _concord_plot, "agreement": _agreement_plot, "position": position_plot}


# ---------------------------------------------------------------- rendering and writing


def figure_bytes(fig, fmt: str, dpi: int = 150) -> bytes:
    """Render a Figure to ``png`` or ``svg`` bytes, deterministically.

    SVG: fixed ``svg.hashsalt``, no metadata (no date, no creator); PNG: no
    ``Software`` entry (matplotlib writes no date into PNGs).

    Args:
        fig: The Figure.
        fmt: ``png`` or ``svg``.
        dpi: PNG resolution.

    Returns:
        The encoded image.

    Raises:
        UsageError: another ``fmt``.
    """
    buf = io.BytesIO()
    with style():
        clean_figure_text(fig)  # labels are data: no control character, no mathtext (pctce_cli.fmt.plot_text)
        if fmt == "svg":
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
        elif fmt == "png":
            fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
        else:
            raise UsageError(f"unknown image format '{fmt}' (expected png or svg)")
    return buf.getvalue()


def inline_svg(svg: bytes | str) -> str:
    """An SVG document as an element for an HTML page.

    Drops the XML prolog and DOCTYPE and the namespace declarations (HTML
    parsers put ``<svg>`` in the SVG namespace themselves), so the page holds
    no ``http://`` string at all.

    Args:
        svg: An SVG document, e.g. from :func:`figure_bytes`.

    Returns:
        The ``<svg …>…</svg>`` element as text.
    """
    text = svg.decode("utf-8") if isinstance(svg, bytes) else svg
    text = text[text.index("<svg") :]
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text, count=3)


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,…`` for an ``<img src>``.

    Args:
        png: PNG bytes.

    Returns:
        The data URI.
    """
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


PAGE_STYLE = (
    "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;"
    "padding:0 1em;color:#222;line-height:1.45}"
    "svg,img{max-width:100%;height:auto}"
)


def html_page(title: str, body: str, extra_style: str = "") -> str:
    """A minimal self-contained HTML page (``title`` is escaped, ``body`` is HTML).

    Args:
        title: Page title (plain text).
        body: The page's body (HTML).
        extra_style: CSS appended to :data:`PAGE_STYLE`.

    Returns:
        The page.
    """
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{html.escape(title)}</title>\n"
        f"<style>{PAGE_STYLE}{extra_style}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def check_output(out: str | Path) -> str:
    """The output format named by ``--out``'s suffix: ``png``, ``svg`` or ``html``.

    Args:
        out: The ``--out`` path.

    Returns:
        The format, lower case.

    Raises:
        UsageError: another suffix, or none.

    Examples:
        >>> check_output("ecdf.SVG")
        'svg'
    """
    suffix = Path(out).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise UsageError(f"out {out}: expected a .png, .svg or .html file, got '{suffix or 'no suffix'}'", param="out")
    return suffix[1:]


def save_figure(fig, out: str | Path, title: str = "", dpi: int = 150) -> Path:
    """Write a Figure to ``out`` (.png, .svg, or .html = the SVG inlined in a page), atomically.

    Args:
        fig: The Figure.
        out: The file; its suffix picks the format.
        title: HTML page title (default the file's stem).
        dpi: PNG resolution.

    Returns:
        ``out`` as a :class:`~pathlib.Path`.
    """
    fmt = check_output(out)
    if fmt == "html":
        svg = inline_svg(figure_bytes(fig, "svg"))
        page = html_page(title or Path(out).stem, f"<figure>\n{svg}\n</figure>")
        return atomic.write_output(out, page, "--out")
    return atomic.write_output(out, figure_bytes(fig, fmt, dpi), "--out")


def save_plot(kind: str, cks, out: str | Path, dpi: int = 150, **options) -> Path:
    """`pctce plot`: check ``out`` and matplotlib, draw ``kind`` (:func:`plot_figure`), write the file.

    Args:
        kind: One of :data:`KINDS`.
        cks: The selected checkpoints.
        out: Output file (.png, .svg or .html).
        dpi: PNG resolution (at least 10).
        **options: Passed to :func:`plot_figure`.

    Returns:
        The written path.

    Raises:
        UsageError: a bad ``out``, ``dpi`` or option, or matplotlib is missing.
    """
    check_output(out)
    if dpi < 10:
        raise UsageError(f"dpi must be at least 10, got {dpi}", param="dpi")
    require_matplotlib()
    fig = plot_figure(kind, cks, **options)
    unit = options.get("unit", "token")
    return save_figure(fig, out, f"pctce plot {kind}: {what_was_scored(cks)}" + unit_named(unit).per_comma, dpi)
