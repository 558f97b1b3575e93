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
from pathlib import Path

from pctce_cli import atomic
from pctce_cli.analysis.subsets import NO_SUBSETS, Subsets
from pctce_cli.errors import UsageError
from pctce_cli.fmt import clean_figure_text
from pctce_cli.plot.figures import agreement_figure, bands_figure, concord_figure, ecdf_figure, shape_figure, trajectory_figure
from pctce_cli.plot.inputs import distributions, trajectory_rows
from pctce_cli.plot.panels import cap_panels, flatten_panels, subset_distributions, subset_ecdf_figure, subset_shape_figure
from pctce_cli.plot.theme import checkpoint_colors, plot_title, require_matplotlib, run_of, style, what_was_scored

KINDS = ("ecdf", "trajectory", "concord", "agreement", "shape", "bands")
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
        edges: ``bands``: CE band edges (default SPEC §2's).
        colors: Name → color (default :func:`checkpoint_colors` of ``cks``).
        subsets: ``--by``: small multiples, one panel per subset (:data:`BY_KINDS`);
            ``--subset``: only the kept documents, for every kind.
        notes: Where notes for the user go (subsets left out of the figure).
        unit: ``token``, ``word`` or ``byte`` (SPEC §8): every kind draws that
            unit's distribution or summaries (bytes weighted: each token's CE
            spread evenly over its bytes), and its axes and title say so.

    Raises:
        UsageError: unknown kind or unit, a missing option, too few checkpoints,
            a token-only summary (``top1``) in words or bytes, or words/bytes of
            a checkpoint without byte spans.
    """
    from pctce_cli.analysis.select import resolve_task
    from pctce_cli.analysis.summary import summaries_table
    from pctce_cli.analysis.units import check_unit, check_unit_summaries
    from pctce_cli.parse import parse_summary_list

    if kind not in KINDS:
        raise UsageError(f"unknown plot kind '{kind}' (expected one of: {', '.join(KINDS)})")
    check_unit(unit)
    require_matplotlib()
    if not cks:
        raise UsageError("no checkpoints selected")
    if subsets.split and kind not in BY_KINDS:
        raise UsageError(f"plot {kind} --by: one panel per subset is drawn for {', '.join(BY_KINDS)}; plot one subset with --subset VALUE")
    colors = colors or checkpoint_colors(cks)
    scored = what_was_scored(cks) + (f", subset {subsets.describe()}" if subsets.keep else "")
    notes = notes if notes is not None else []
    if subsets.active and kind in BY_KINDS:
        panels, ns = subset_distributions(cks, subsets, edges, unit)
        if not panels:
            raise UsageError(f"--subset {', '.join(subsets.keep)}: the documents of {subsets.field} = {', '.join(subsets.keep)} have no scored targets")
        if subsets.split:
            panels, more = cap_panels(panels, subsets.field)
            notes += ns + more
            title = plot_title(kind, unit, scored, by=subsets.field)
            if kind == "ecdf":
                return subset_ecdf_figure(panels, subsets.field, colors, title)
            if kind == "shape":
                return subset_shape_figure(panels, subsets.field, colors, title)
            dists, colors = flatten_panels(panels, colors)
            return bands_figure(dists, edges, colors, title)
        notes += ns
        dists = panels[0][1]
    elif kind in BY_KINDS:
        dists = distributions(cks, edges, unit)
    if kind in BY_KINDS:
        title = plot_title(kind, unit, scored)
        if kind == "ecdf":
            return ecdf_figure(dists, colors, title)
        if kind == "shape":
            return shape_figure(dists, colors, title)
        return bands_figure(dists, edges, colors, title)
    if kind == "trajectory":
        names = parse_summary_list(summaries, ["mean", "p50", "p95"], "--summaries")
        check_unit_summaries(names, unit, "--summaries")
        runs = {c.id: run_of(c) for c in cks}
        rows = trajectory_rows(cks, names, subsets, notes, unit)
        return trajectory_figure(rows, names, runs, vs, colors, plot_title(kind, unit, scored), unit)
    if kind == "concord":
        names = parse_summary_list(summaries, ["mean", "p50", "p90", "p95", "p99"], "--summaries")
        check_unit_summaries(names, unit, "--summaries")
        if len(cks) < 2:
            raise UsageError(f"concordance needs at least 2 checkpoints, got {len(cks)}")
        needed = list(dict.fromkeys([*names, "mean", "p50", "p95"]))
        table = summaries_table(cks, None, needed, meta_columns=False, subsets=subsets, notes=notes, unit=unit)
        return concord_figure(table, names, ["mean", "p50", "p95"], plot_title(kind, unit, scored))
    # agreement
    if task is None:
        raise UsageError("plot agreement needs --task COL (a task-metric column of --meta)")
    from pctce_cli.stats.selection import AGREEMENT_PERCENTILES

    table = summaries_table(cks, None, ["mean", *[f"p{q}" for q in AGREEMENT_PERCENTILES]], subsets=subsets, notes=notes, unit=unit)
    col = resolve_task(table, task)
    return agreement_figure(table, col, higher_is_better, plot_title(kind, unit, scored, task=task), unit)


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
        raise UsageError(f"--out {out}: expected a .png, .svg or .html file, got '{suffix or 'no suffix'}'")
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
        raise UsageError(f"--dpi must be at least 10, got {dpi}")
    require_matplotlib()
    fig = plot_figure(kind, cks, **options)
    unit = options.get("unit", "token")
    return save_figure(fig, out, f"pctce plot {kind}: {what_was_scored(cks)}" + (f", per {unit}" if unit != "token" else ""), dpi)
