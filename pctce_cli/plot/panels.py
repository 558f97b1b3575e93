"""Small multiples by subset (docs/definitions.md#subsets): one panel per subset, every checkpoint on each panel.

``pctce plot ecdf|shape|bands --by FIELD`` and the report's subset section
draw these. The inputs are read once per checkpoint (``doc`` and ``ce``) and
split by document (:func:`pctce_cli.analysis.subsets.split_scores`);
at most :data:`MAX_PANELS` panels are drawn, the subsets with the most targets,
and a note says which were left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from pctce_cli.analysis.subsets import Subsets, split_scores
from pctce_cli.errors import DataError
from pctce_cli.plot.inputs import CE_FLOOR, Distribution, load_unit_scores, unit_distribution
from pctce_cli.plot.theme import ce_axis, color_map, legend_inside, new_figure, style, unit_text

MAX_PANELS = 12  # a grid of more is unreadable: the largest subsets are drawn, a note names the rest


def subset_distributions(
    cks, subsets: Subsets, edges: Sequence[float] | None = None, unit: str = "token"
) -> tuple[list[tuple[str | None, list[Distribution]]], list[str]]:
    """Each checkpoint's :class:`Distribution` per subset (``--by``), or of the kept documents (``--subset``).

    Args:
        unit: ``token``, ``word`` or ``byte`` (docs/definitions.md#words-and-bytes): a subset's words or bytes are those of its documents.

    Returns:
        ``(panels, notes)``: ``[(subset label, one Distribution per checkpoint that has values there)]``
        in label order (one ``(None, …)`` entry without ``--by``), and what was left out.
    """
    by_label: dict[str | None, list[Distribution]] = {}
    notes: list[str] = []
    for c in cks:
        s = load_unit_scores(c, unit, ("doc", "ce"))
        parts, ns = split_scores(c.id, s.doc, s.docs, subsets)
        notes += [n for n in ns if n not in notes]
        for p in parts:
            try:
                d = unit_distribution(c.id, s, edges, unit, p)
            except DataError:  # no targets (or no word, no byte) in this subset
                continue
            by_label.setdefault(p.label, []).append(d)
    labels = sorted(by_label, key=lambda x: (x is not None, x))
    return [(k, by_label[k]) for k in labels], notes


def cap_panels(panels: list, field: str | None) -> tuple[list, list[str]]:
    """At most :data:`MAX_PANELS` panels, those with the most targets (kept in label order), and a note when some were dropped."""
    if len(panels) <= MAX_PANELS:
        return panels, []
    size = {label: sum(d.n for d in ds) for label, ds in panels}
    keep = set(sorted(size, key=lambda k: (-size[k], str(k)))[:MAX_PANELS])
    note = f"{len(panels):,} subsets of '{field}': the figure shows the {MAX_PANELS} with the most targets; choose others with --subset VALUE"
    return [p for p in panels if p[0] in keep], [note]


def _grid(n: int, width: float, height: float):
    ncols = min(n, 3 if n <= 9 else 4)
    nrows = math.ceil(n / ncols)
    fig = new_figure(width * ncols + 0.6, height * nrows + 1.2)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _panel_title(field: str | None, label, ds: Sequence[Distribution]) -> str:
    n = max(d.n for d in ds)
    what = f"{n:,} {unit_text(ds[0].unit, 'noun')}s"
    return f"{field} = {label} ({what})" if label is not None else what


def _legend(fig, ids: Sequence[str], colors: Mapping[str, str], extra=()) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[i], lw=2, label=i) for i in ids] + list(extra)
    legend_inside(fig, handles)


def subset_ecdf_figure(panels: Sequence[tuple[str, Sequence[Distribution]]], field: str, colors: Mapping[str, str] | None = None, title: str = "") -> object:
    """Small multiples of the CE ECDF (log CE axis; words or bytes as the distributions' unit), one panel per subset, one line per checkpoint, the mean as a diamond.

    Returns:
        A Figure with one visible Axes per panel; each holds one labeled line per checkpoint.
    """
    from matplotlib.lines import Line2D

    ids = list(dict.fromkeys(d.id for _, ds in panels for d in ds))
    colors = colors or color_map(ids)
    unit = panels[0][1][0].unit
    edges_h = panels[0][1][0].hist_edges
    lows = [d.low for _, ds in panels for d in ds]
    lo = 10.0 ** math.floor(math.log10(max(CE_FLOOR, min(lows))))
    used = [edges_h[np.flatnonzero(d.hist > 0)[-1] + 1] for _, ds in panels for d in ds if (d.hist > 0).any()]
    hi = max(used) if used else edges_h[-1]
    with style():
        fig, axes = _grid(len(panels), 3.6, 2.9)
        for ax, (label, ds) in zip(axes, panels):
            for d in ds:
                c = colors[d.id]
                ax.plot(np.maximum(d.ecdf_ce, lo), d.ecdf, drawstyle="steps-post", color=c, lw=1.4, label=d.id)
                ax.plot([max(d.mean, lo)], [d.cdf_at_mean], marker="D", ls="none", color=c, mec="black", mew=0.5, ms=5, label="_mark")
            ax.set_xscale("log")
            ax.set_xlim(lo, hi)
            ax.set_ylim(0, 1.005)
            ax.set_title(_panel_title(field, label, ds), fontsize=9)
        for ax in axes[-min(len(axes), 4):]:
            ax.set_xlabel(ce_axis(unit, ", log"))
        axes[0].set_ylabel(f"fraction of {unit_text(unit, 'noun')}s with CE ≤ x")
        _legend(fig, ids, colors, [Line2D([], [], color="grey", marker="D", ls="none", mec="black", mew=0.5, label="mean")])
        fig.suptitle(title or f"{unit_text(unit, 'CE')} distribution by {field}")
    return fig


def subset_shape_figure(panels: Sequence[tuple[str, Sequence[Distribution]]], field: str, colors: Mapping[str, str] | None = None, title: str = "") -> object:
    """Small multiples of the standardized percentile profile z_q, one panel per subset, one line per checkpoint.

    Returns:
        A Figure with one visible Axes per panel; each holds one labeled line per checkpoint.
    """
    from pctce_cli.stats.shape import PROFILE_LEVELS

    ids = list(dict.fromkeys(d.id for _, ds in panels for d in ds))
    colors = colors or color_map(ids)
    with style():
        fig, axes = _grid(len(panels), 3.6, 2.9)
        for ax, (label, ds) in zip(axes, panels):
            for d in ds:
                ax.plot(PROFILE_LEVELS, d.profile, marker="o", ms=2.5, lw=1.3, color=colors[d.id], label=d.id)
            ax.axhline(0, color="black", lw=0.6, label="_zero")
            ax.set_xticks(PROFILE_LEVELS[1::4], [f"p{q}" for q in PROFILE_LEVELS[1::4]])
            ax.set_title(_panel_title(field, label, ds), fontsize=9)
        axes[0].set_ylabel("z_q = (p_q − p50) / IQR")
        _legend(fig, ids, colors)
        fig.suptitle(title or f"Standardized percentile profiles by {field}")
    return fig


def flatten_panels(panels: Sequence[tuple[str, Sequence[Distribution]]], colors: Mapping[str, str]) -> tuple[list[Distribution], dict[str, str]]:
    """One row per checkpoint and subset (``id · subset``) for the bands chart, colored by checkpoint."""
    from dataclasses import replace

    out, cmap = [], {}
    for label, ds in panels:
        for d in ds:
            name = f"{d.id} · {label}"
            out.append(replace(d, id=name))
            cmap[name] = colors.get(d.id, "black")
    return out, cmap

