"""`pctce plot position`: CE percentiles against position in the document, one line per checkpoint (docs/definitions.md#position-in-the-context).

Each checkpoint's targets are bucketed by ``pos``, or by ``ctx`` with ``--by ctx``
(powers of two: {0}, {1}, [2, 4), …, or ``--position-edges``) and summarized per bucket (:func:`pctce_cli.analysis.position.position_rows`,
streamed above ``PCTCE_STREAM_ABOVE``). A bucket is drawn at the geometric
middle of its 1-based positions on a log axis, ticked with its label: the
median as a line, p10–p90 and p25–p75 as shaded bands, the mean dashed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pctce_cli.errors import UsageError
from pctce_cli.units import TOKEN, unit_named

LEVELS = (10.0, 25.0, 50.0, 75.0, 90.0)
MAX_BANDED = 3  # checkpoints drawn with their bands and mean; past it, medians only (a dozen overlapping bands are unreadable)


def position_series(cks, subsets=None, notes: list[str] | None = None, positions=None) -> dict[str, list[dict]]:
    """Checkpoint id → its per-bucket rows (p10 … p90 and mean), bucketed by ``positions`` (default: the stored ``pos``)."""
    from pctce_cli.analysis.position import Positions, position_rows

    out = {}
    for ck in cks:
        rows, ns = position_rows(ck, LEVELS, positions or Positions("position"), subsets)
        out[ck.id] = rows
        if notes is not None:
            notes += ns
    return out


def bucket_x(row: dict) -> float:
    """Where a bucket is drawn: the geometric middle of its 1-based positions (``{0}`` at 1, ``[2, 4)`` at √12).

    Example:
        >>> bucket_x({"from": 0, "to": 1}), round(bucket_x({"from": 2, "to": 4}), 3)
        (1.0, 3.464)
    """
    last = row["to"] if row["to"] is not None else 2 * max(row["from"], 1)
    return math.sqrt((row["from"] + 1) * last)


def position_figure(series: Mapping[str, Sequence[dict]], colors: Mapping[str, str], title: str = "", dim: str = "position") -> object:
    """CE percentiles against position: per checkpoint the median (line, dots), p25–p75 and p10–p90 (bands) and the mean
    (dashed); of more than :data:`MAX_BANDED` checkpoints, the medians alone.

    Args:
        series: Checkpoint id → its bucket rows (``position``, ``from``, ``to``, ``p10`` … ``p90``, ``mean``).
        colors: Checkpoint id → color.
        title: Figure title.
        dim: The rows' bucket column (``position`` or ``ctx``).

    Returns:
        A Figure with one Axes; its labeled lines are the checkpoints' medians.
    """
    from matplotlib.lines import Line2D

    from pctce_cli.plot.theme import new_figure, style

    if not any(series.values()):
        raise UsageError("plot position: no scored targets to draw")
    with style():
        fig = new_figure(9, 5.2)
        ax = fig.subplots()
        ticks: dict[float, str] = {}
        banded = banded_figure(series)
        for ck, rows in series.items():
            if not rows:
                continue
            c = colors[ck]
            x = [bucket_x(r) for r in rows]
            ticks.update({xi: r[dim] for xi, r in zip(x, rows)})
            if banded:
                ax.fill_between(x, [r["p10"] for r in rows], [r["p90"] for r in rows], color=c, alpha=0.10, lw=0)
                ax.fill_between(x, [r["p25"] for r in rows], [r["p75"] for r in rows], color=c, alpha=0.22, lw=0)
            ax.plot(x, [r["p50"] for r in rows], color=c, lw=1.8, marker="o", ms=3.5, label=ck)
            if banded:
                ax.plot(x, [r["mean"] for r in rows], color=c, lw=1.2, ls="--", label="_mean")
        ax.set_xscale("log")
        xs = sorted(ticks)
        ax.set_xticks(xs, [ticks[v] for v in xs], rotation=45 if len(xs) > 8 else 0, ha="right" if len(xs) > 8 else "center")
        ax.minorticks_off()
        ax.set_xlabel(("position in the document" if dim == "position" else "context length") + " (bucket, log scale)")
        ax.set_ylabel("per-token CE (nats)" if banded else "median per-token CE (nats)")
        ax.set_title(title)
        handles = list(ax.get_legend_handles_labels()[0])
        if banded:
            handles += [
                Line2D([], [], color="0.3", lw=1.2, ls="--", label="mean"),
                Line2D([], [], color="0.3", lw=6, alpha=0.22, label="p25–p75"),
                Line2D([], [], color="0.3", lw=6, alpha=0.10, label="p10–p90"),
            ]
        # beside the axes: over them it would hide the curves of many checkpoints
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return fig


def banded_figure(series: Mapping[str, Sequence[dict]]) -> bool:
    """Whether :func:`position_figure` draws bands and means (at most :data:`MAX_BANDED` checkpoints with rows)."""
    return sum(1 for rows in series.values() if rows) <= MAX_BANDED


def figure_what(series: Mapping[str, Sequence[dict]]) -> str:
    """What :func:`position_figure` draws, for its title: ``CE percentiles``, or ``Median CE`` past :data:`MAX_BANDED` checkpoints."""
    return "CE percentiles" if banded_figure(series) else "Median CE"


def position_plot(p) -> object:
    """The ``position`` kind of :func:`pctce_cli.plot.plot_figure` (``p``: its inputs; tokens only)."""
    if unit_named(p.unit) is not TOKEN:
        raise UsageError(f"plot position draws targets by position: use it with unit token, got unit {p.unit}", param=("unit", "unit"))
    dim = p.positions.dim if p.positions is not None else "position"
    from pctce_cli.plot.inputs import overlaid

    drawn, note = overlaid(p.cks, "plot position")
    p.notes += [note] if note else []
    series = position_series(drawn, p.subsets, p.notes, p.positions)
    what = "position in the document" if dim == "position" else "context length"
    return position_figure(series, p.colors, f"{figure_what(series)} by {what} of {p.scored}", dim)
