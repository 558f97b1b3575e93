"""Pictures over training: the percentile fan and the mass in CE bands, one panel per run.

The fan draws p10 … p99 of a run's CE against its training step: the bulk
(p10 … p50) saturates while the tail (p95, p99) keeps moving, which a mean
alone hides. The band trajectory stacks the fraction of targets in each CE
band against step: where the mass goes as training goes on. Both take rows or
:class:`~pctce_cli.plot.inputs.Distribution` objects already computed; nothing
here reads a store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.plot.inputs import CE_FLOOR, Distribution
from pctce_cli.plot.theme import ce_axis, legend_inside, new_figure, run_colors, style, unit_text

FAN_PERCENTILES = (10, 25, 50, 75, 90, 95, 99)
MAX_RUN_PANELS = 12  # more runs than this: the runs with the most checkpoints, the title says how many are left out


def _runs_with_steps(ids_steps: Sequence[tuple[str, int | None]], runs: Mapping[str, str | None], what: str) -> tuple[dict[str, list[str]], int]:
    """Run → its checkpoint ids by step (runs with a step only), at most :data:`MAX_RUN_PANELS`; and how many runs were left out.

    Raises:
        UsageError: no checkpoint has a step.
    """
    by_run: dict[str, list[tuple[int, str]]] = {}
    for ck, step in ids_steps:
        if step is not None:
            by_run.setdefault(runs.get(ck) or ck, []).append((step, ck))
    if not by_run:
        raise UsageError(f"{what} needs checkpoints with a training step (score run directories holding checkpoint-*/step_* subdirectories); none of the selected checkpoints has one")
    keep = sorted(by_run, key=lambda r: (-len(by_run[r]), r))[:MAX_RUN_PANELS]
    out = {r: [ck for _, ck in sorted(items)] for r, items in by_run.items() if r in keep}
    return out, len(by_run) - len(out)


def _ncols(n: int) -> int:
    return 2 if n == 4 else min(n, 3 if n <= 9 else 4)


def _grid(n: int, sharey: bool = True):
    ncols = _ncols(n)
    nrows = math.ceil(n / ncols)
    fig = new_figure(3.9 * ncols + 0.6, 2.9 * nrows + 1.0)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=False, sharey=sharey)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _panel_title(ax, run: str, color: str, n: int) -> None:
    ax.set_title(f"{run} ({n} checkpoint{'s' if n != 1 else ''})", fontsize=9.5, color=color)


def fan_figure(
    rows: Sequence[Mapping],
    runs: Mapping[str, str | None],
    colors: Mapping[str, str] | None = None,
    title: str = "",
    unit: str = "token",
    percentiles: Sequence[float] = FAN_PERCENTILES,
) -> object:
    """Percentile trajectories: p10 … p99 against training step, one panel per run (log CE axis, shared).

    Args:
        rows: One dict per checkpoint with ``checkpoint``, ``step`` and ``p10`` … ``p99``.
        runs: Checkpoint id → run name (:func:`~pctce_cli.plot.theme.runs_of`).
        colors: Run name → color (the panel titles).
        title: Figure title.
        unit: The distribution (the y label says it).
        percentiles: The percentiles drawn, one line each (a colormap from bulk to tail).

    Returns:
        A Figure with one Axes per run; each holds one labeled line per percentile
        and the band between p25 and p75 shaded.

    Raises:
        UsageError: no checkpoint has a step, or a percentile is missing.
    """
    from pctce_cli.stats.summaries import percentile_name

    names = [percentile_name(q) for q in percentiles]
    byid = {r["checkpoint"]: r for r in rows}
    for n in names:
        if any(n not in r for r in rows):
            raise UsageError(f"fan: no percentile '{n}' for the selected checkpoints")
    by_run, left = _runs_with_steps([(r["checkpoint"], r.get("step")) for r in rows], runs, "fan")
    colors = colors or run_colors(list(by_run))
    with style():
        import matplotlib as mpl
        from matplotlib.lines import Line2D

        cmap = mpl.colormaps["viridis_r"]
        shades = {n: cmap(0.1 + 0.8 * k / max(len(names) - 1, 1)) for k, n in enumerate(names)}
        fig, axes = _grid(len(by_run))
        for ax, (run, ids) in zip(axes, by_run.items()):
            steps = [byid[i]["step"] for i in ids]
            vals = {n: np.maximum([byid[i][n] for i in ids], CE_FLOOR) for n in names}
            if "p25" in vals and "p75" in vals:
                ax.fill_between(steps, vals["p25"], vals["p75"], color=colors.get(run, "grey"), alpha=0.15, lw=0, label="_iqr")
            for n in names:
                ax.plot(steps, vals[n], marker="o", ms=3, lw=2.2 if n == "p50" else 1.4, color=shades[n], label=n)
            ax.set_yscale("log")
            ax.set_xlabel("training step")
            _panel_title(ax, run, colors.get(run, "black"), len(ids))
        for ax in axes[:: _ncols(len(axes))]:
            ax.set_ylabel(ce_axis(unit, ", log scale"))
        handles = [Line2D([], [], color=shades[n], marker="o", ms=3, lw=2.2 if n == "p50" else 1.4, label=n) for n in reversed(names)]
        legend_inside(fig, handles, len(handles))
        more = f" ({left} more runs not drawn)" if left else ""
        fig.suptitle((title or f"Percentiles of {unit_text(unit, 'ce')} over training") + more)
    return fig


def band_trajectory_figure(
    dists: Sequence[Distribution],
    steps: Mapping[str, int | None],
    runs: Mapping[str, str | None],
    edges: Sequence[float] | None = None,
    colors: Mapping[str, str] | None = None,
    title: str = "",
) -> object:
    """Mass in CE bands against training step, stacked, one panel per run.

    Args:
        dists: One :class:`Distribution` per checkpoint (its ``bands`` at ``edges``).
        steps: Checkpoint id → training step (None: left out).
        runs: Checkpoint id → run name.
        edges: The band edges of the distributions (the legend).
        colors: Run name → color (the panel titles).
        title: Figure title.

    Returns:
        A Figure with one Axes per run; each holds one stacked area (or, for a
        run of one checkpoint, one stacked bar) per band.

    Raises:
        UsageError: no checkpoint has a step.
    """
    from pctce_cli.stats.shape import band_labels
    from pctce_cli.stats.summaries import DEFAULT_EDGES

    labels = band_labels(DEFAULT_EDGES if edges is None else edges)
    byid = {d.id: d for d in dists}
    by_run, left = _runs_with_steps([(d.id, steps.get(d.id)) for d in dists], runs, "band trajectory")
    colors = colors or run_colors(list(by_run))
    unit = dists[0].unit if dists else "token"
    with style():
        import matplotlib as mpl
        from matplotlib.patches import Patch

        cmap = mpl.colormaps["YlOrRd"]
        shades = [cmap(x) for x in np.linspace(0.12, 0.95, len(labels))]
        fig, axes = _grid(len(by_run))
        for ax, (run, ids) in zip(axes, by_run.items()):
            x = [steps[i] for i in ids]
            mass = np.array([np.nan_to_num(byid[i].bands) for i in ids]).reshape(len(ids), len(labels)).T
            if len(ids) >= 2:
                ax.stackplot(x, mass, colors=shades, labels=labels, edgecolor="white", lw=0.4)
            else:
                bottom = 0.0
                for k in range(len(labels)):
                    ax.bar(x, mass[k], bottom=bottom, color=shades[k], width=max(abs(x[0]) * 0.1, 1), label=labels[k])
                    bottom += mass[k]
            ax.set_ylim(0, 1)
            ax.set_xlabel("training step")
            ax.grid(False)
            _panel_title(ax, run, colors.get(run, "black"), len(ids))
        axes[0].set_ylabel(f"fraction of {unit_text(unit, 'noun')}s")
        handles = [Patch(facecolor=shades[k], edgecolor="white", label=labels[k]) for k in range(len(labels))]
        legend_inside(fig, handles, len(handles), title=f"CE band ({unit_text(unit, 'nats')})")
        more = f" ({left} more runs not drawn)" if left else ""
        fig.suptitle((title or f"Mass in {unit_text(unit, 'ce')} bands over training") + more)
    return fig
