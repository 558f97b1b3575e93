"""The figure builders: one matplotlib Figure per plot kind, built from :mod:`pctce_cli.plot.inputs`.

Each builder draws under :func:`~pctce_cli.plot.theme.style` on a fresh
Agg-canvas Figure and returns it; nothing here reads a store or writes a file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.analysis.report import table_groups
from pctce_cli.plot.inputs import BINS_PER_DECADE, CE_FLOOR, Distribution
from pctce_cli.plot.theme import PALETTE, REFERENCE_COLOR, ce_axis, color_map, legend_inside, new_figure, run_colors, style, summary_label, unit_text


def _legend_below(fig, handles, ncols: int | None = None) -> None:
    legend_inside(fig, handles, ncols or 4)


def ecdf_figure(dists: Sequence[Distribution], colors: Mapping[str, str] | None = None, title: str = "") -> object:
    """Overlaid ECDFs (left) and histograms (right) of CE on a log axis, mean and median marked.

    Args:
        dists: One :class:`Distribution` per checkpoint, all of one unit (their
            ``unit`` names the axes: per-token CE, CE per word, CE per byte).
        colors: Checkpoint id → color (default :func:`color_map`).
        title: Figure title.

    Returns:
        A Figure with two Axes; each holds one labeled series per checkpoint
        (a line on the ECDF, a step patch on the histogram); the mean is a
        diamond (ECDF) / dashed line (histogram), the median a circle / dotted line.
    """
    from matplotlib.lines import Line2D

    colors = colors or color_map([d.id for d in dists])
    unit = dists[0].unit
    edges_h = dists[0].hist_edges
    noun = unit_text(unit, "noun")
    # the log axis starts at the power of 10 below the lowest checkpoint's 1st
    # percentile of positive CE; CE below it (exact zeros included) is drawn at it
    decade = math.floor(math.log10(max(CE_FLOOR, min(d.low for d in dists))))
    k0 = min((decade - round(math.log10(CE_FLOOR))) * BINS_PER_DECADE, len(edges_h) - 2)
    lo = edges_h[k0]
    hists = [np.concatenate([[d.hist[: k0 + 1].sum()], d.hist[k0 + 1 :]]) for d in dists]
    used = np.flatnonzero(np.sum(hists, axis=0) > 0)
    hi = edges_h[k0 + used[-1] + 1] if used.size else edges_h[-1]
    clipped = any(d.ecdf_ce[0] < lo for d in dists)
    with style():
        fig = new_figure(11, 4.4 + 0.25 * math.ceil(len(dists) / 4))
        ax_cdf, ax_hist = fig.subplots(1, 2)
        for d, h in zip(dists, hists):
            c = colors[d.id]
            ax_cdf.plot(np.maximum(d.ecdf_ce, lo), d.ecdf, drawstyle="steps-post", color=c, lw=1.6, label=d.id)
            marks = dict(ls="none", color=c, mec="black", mew=0.6, ms=7, label="_mark", zorder=3)
            ax_cdf.plot([max(d.mean, lo)], [d.cdf_at_mean], marker="D", **marks)
            ax_cdf.plot([max(d.p50, lo)], [0.5], marker="o", **marks)
            ax_hist.stairs(h, edges_h[k0:], color=c, lw=1.5, label=d.id)
            ax_hist.axvline(max(d.mean, lo), color=c, ls="--", lw=1.0, label="_mark")
            ax_hist.axvline(max(d.p50, lo), color=c, ls=":", lw=1.2, label="_mark")
        floor_note = f"; CE < {lo:g} drawn at {lo:g}" if clipped else ""
        for ax in (ax_cdf, ax_hist):
            ax.set_xscale("log")
            ax.set_xlim(lo, hi)
            ax.set_xlabel(ce_axis(unit, f", log scale{floor_note}"))
        ax_cdf.set_ylim(0, 1.005)
        ax_cdf.set_ylabel(f"fraction of {noun}s with CE ≤ x")
        ax_cdf.set_title("Empirical CDF")
        ax_hist.set_ylabel(f"fraction of {noun}s per bin ({BINS_PER_DECADE} bins per decade)")
        ax_hist.set_ylim(bottom=0)
        ax_hist.set_title("Histogram")
        handles = [Line2D([], [], color=colors[d.id], lw=2, label=d.id) for d in dists]
        handles += [
            Line2D([], [], color="grey", marker="D", ls="--", mec="black", mew=0.6, label="mean"),
            Line2D([], [], color="grey", marker="o", ls=":", mec="black", mew=0.6, label="median"),
        ]
        _legend_below(fig, handles, ncols=min(len(handles), 6))
        fig.suptitle(title or f"{unit_text(unit, 'CE')} distribution")
    return fig


def _trajectory_lines(rows, summaries, runs, vs) -> tuple[dict, list, Mapping | None]:
    """``(run → its rows by step, step-less rows, the reference row or None)``, checked.

    Raises:
        UsageError: ``vs`` is unknown, a summary is missing, or no checkpoint has a step.
    """
    ids = [r["checkpoint"] for r in rows]
    if vs is not None and vs not in ids:
        raise UsageError(f"vs '{vs}' is not among the selected checkpoints ({', '.join(ids[:8])})", param="vs")
    for s in summaries:
        if any(s not in r for r in rows):
            raise UsageError(f"summaries: no summary '{s}' for the selected checkpoints", param="summaries")
    by_run: dict[str, list[Mapping]] = {}
    flat = []
    for r in rows:
        if r["checkpoint"] == vs:
            continue
        if r.get("step") is not None:
            by_run.setdefault(runs.get(r["checkpoint"]) or r["checkpoint"], []).append(r)
        else:
            flat.append(r)
    if not by_run:
        raise UsageError(
            "trajectory needs checkpoints with a training step (score run directories holding "
            "checkpoint-*/step_* subdirectories); none of the selected checkpoints has one"
        )
    for items in by_run.values():
        items.sort(key=lambda r: r["step"])
    return by_run, flat, rows[ids.index(vs)] if vs is not None else None


def _run_line(ax, items, s: str, color, run: str, ref) -> bool:
    """One run's line of summary ``s``; the first step below the reference (after starting above) circled. Returns whether one was."""
    steps = [r["step"] for r in items]
    vals = [r[s] for r in items]
    ax.plot(steps, vals, marker="o", ms=4, lw=1.6, color=color, label=run)
    if ref is None:
        return False
    below = [k for k, v in enumerate(vals) if v < ref[s]]
    if not below or below[0] == 0:
        return False
    k = below[0]
    ax.plot([steps[k]], [vals[k]], marker="o", ms=13, mfc="none", mec=color, mew=2, ls="none", label="_mark")
    ax.annotate(f"step {steps[k]:,}", (steps[k], vals[k]), xytext=(6, -14), textcoords="offset points", fontsize=8, color=color)
    return True


def trajectory_figure(
    rows: Sequence[Mapping],
    summaries: Sequence[str],
    runs: Mapping[str, str | None],
    vs: str | None = None,
    colors: Mapping[str, str] | None = None,
    title: str = "",
    unit: str = "token",
    labels=None,
    ncols: int | None = None,
) -> object:
    """Summaries against training step, one line per run and one panel per summary.

    (Long by its documented arguments; the body is about 30 lines.)

    Args:
        rows: One dict per checkpoint with ``checkpoint``, ``step`` and each summary.
        summaries: Summary columns to draw (one panel each).
        runs: Checkpoint id → run name (None: not part of a run).
        vs: Reference checkpoint, drawn as a black dashed horizontal line;
            the first step at which a run's summary drops below it (after
            starting above) is circled and labeled, as in ``pctce summary --vs``.
        colors: Run/checkpoint name → color.
        title: Figure title.
        unit: The distribution the summaries are of (``token``, ``word``, ``byte``; the y labels say it).
        labels: Summary name → y label (default :func:`~pctce_cli.plot.theme.summary_label` in ``unit``; KL has its own).
        ncols: Panels per row (default up to 3).

    Returns:
        A Figure with one Axes per summary; on each, one labeled line per run,
        a dotted line per step-less checkpoint and the reference line.

    Raises:
        UsageError: no checkpoint has a step, ``vs`` is unknown, or a summary is missing.
    """
    from matplotlib.lines import Line2D

    by_run, flat, ref = _trajectory_lines(rows, summaries, runs, vs)
    colors = colors or run_colors(list(by_run) + [r["checkpoint"] for r in flat])
    n = len(summaries)
    ncols = min(n, ncols or 3)
    nrows = math.ceil(n / ncols)
    label = labels or (lambda s: summary_label(s, unit))
    with style():
        fig = new_figure(4.2 * ncols + 0.6, 3.4 * nrows + 0.8)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        crossed = False
        for ax, s in zip(axes, summaries):
            for run, items in by_run.items():
                crossed |= _run_line(ax, items, s, colors[run], run, ref)
            for r in flat:
                ax.axhline(r[s], color=colors[r["checkpoint"]], ls=":", lw=1.4, label=r["checkpoint"])
            if ref is not None:
                ax.axhline(ref[s], color=REFERENCE_COLOR, ls="--", lw=1.2, label=f"{vs} (reference)")
            ax.set_title(s)
            ax.set_xlabel("training step")
            ax.set_ylabel(label(s))
        for ax in axes[n:]:
            ax.set_visible(False)
        handles = [Line2D([], [], color=colors[run], marker="o", ms=4, lw=1.6, label=run) for run in by_run]
        handles += [Line2D([], [], color=colors[r["checkpoint"]], ls=":", lw=1.4, label=r["checkpoint"]) for r in flat]
        if ref is not None:
            handles.append(Line2D([], [], color=REFERENCE_COLOR, ls="--", lw=1.2, label=f"{vs} (reference)"))
        if crossed:
            handles.append(Line2D([], [], marker="o", ms=10, mfc="none", mec="grey", mew=2, ls="none", label="first step below the reference"))
        _legend_below(fig, handles)
        fig.suptitle(title or "Summaries over training")
    return fig


def concord_figure(table, summaries: Sequence[str], set_: Sequence[str] = ("mean", "p50", "p95"), title: str = "") -> object:
    """Heatmap of the concordance matrix C(s, s'), one panel per group ("all" first).

    Args:
        table: One row per checkpoint (``checkpoint``, ``group`` and summary columns).
        summaries: Rows/columns of the matrix.
        set_: The set S whose C_S is given in each panel's title.
        title: Figure title.

    Returns:
        A Figure with one heatmap Axes per group plus a shared colorbar; each
        cell is annotated with its value.

    Raises:
        UsageError: fewer than 2 checkpoints.
    """
    from pctce_cli.stats.concordance import concordance, concordance_matrix

    if len(table) < 2:
        raise UsageError(f"concordance needs at least 2 checkpoints, got {len(table)}")
    groups = table_groups(table)
    n = len(groups)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    size = 0.55 * len(summaries) + 1.6
    with style():
        fig = new_figure(size * ncols + 1.4, size * nrows + 1.0)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        im = None
        for ax, (gname, sub) in zip(axes, groups):
            m = concordance_matrix(sub, list(summaries)).to_numpy(dtype=np.float64)
            im = ax.imshow(m, vmin=0, vmax=1, cmap="RdYlGn")
            for i in range(m.shape[0]):
                for j in range(m.shape[1]):
                    v = m[i, j]
                    dark = not math.isnan(v) and (v < 0.2 or v > 0.85)
                    ax.text(j, i, "–" if math.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if dark else "black")
            ax.set_xticks(range(len(summaries)), list(summaries), rotation=45, ha="right")
            ax.set_yticks(range(len(summaries)), list(summaries))
            ax.grid(False)
            cs = concordance(sub[list(set_)], list(set_)).c
            cs_text = "n/a" if math.isnan(cs) else f"{cs:.2f}"
            ax.set_title(f"{gname} ({len(sub)} checkpoints)\nC_S{{{', '.join(set_)}}} = {cs_text}")
        for ax in axes[n:]:
            ax.set_visible(False)
        fig.colorbar(im, ax=list(axes[:n]), shrink=0.8, label="C(s, s') = fraction of concordant pairs")
        fig.suptitle(title or "Concordance of summaries")
    return fig


def agreement_figure(table, task: str, higher_is_better: bool = True, title: str = "", unit: str = "token") -> object:
    """Correlation of each CE percentile with a task metric, the mean's as reference lines.

    (Long one figure drawn step by step; split, every step would take the same half-dozen matplotlib handles.)

    Args:
        table: One row per checkpoint with ``checkpoint``, ``group``, ``mean``,
            ``p5`` … ``p95``, ``p99`` and the task column.
        task: Task-metric column.
        higher_is_better: Direction of the task metric (stated in the caption).
        title: Figure title.
        unit: The distribution the percentiles are of (``token``, ``word``, ``byte``).

    Returns:
        A Figure with one Axes per group with at least 3 checkpoints ("all"
        first); each holds two labeled lines (Spearman ρ, Pearson r against the
        percentile) and two horizontal reference lines (the mean's ρ and r).

    Raises:
        UsageError: fewer than 3 checkpoints, or the task metric is constant.
    """
    from matplotlib.lines import Line2D

    from pctce_cli.stats.selection import AGREEMENT_PERCENTILES, agreement

    pnames = [f"p{q}" for q in AGREEMENT_PERCENTILES]
    groups = table["group"] if "group" in table.columns and table["group"].notna().any() else None
    agr = agreement(table.set_index("checkpoint"), task, ["mean", *pnames], groups=groups, higher_is_better=higher_is_better)
    panels = []
    for gname, part in agr.groupby("group", sort=False):
        if part["spearman_rho"].notna().any():
            panels.append((str(gname), part.set_index("summary")))
    if not panels:
        notes = sorted(set(agr["note"].dropna()) - {""})
        raise UsageError(
            f"agreement with '{task}' is undefined for every group ({'; '.join(notes) or 'no values'}); "
            "it needs at least 3 checkpoints with different task values"
        )
    n = len(panels)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    qs = list(AGREEMENT_PERCENTILES)
    with style():
        # at least 8 inches wide: one panel must still hold the two-line title and the legend
        fig = new_figure(max(4.6 * ncols + 0.4, 8.0), 3.4 * nrows + 1.1)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
        for ax, (gname, part) in zip(axes, panels):
            rho = part.loc[pnames, "spearman_rho"].to_numpy(dtype=np.float64)
            r = part.loc[pnames, "pearson_r"].to_numpy(dtype=np.float64)
            ax.plot(qs, rho, marker="o", ms=4, lw=1.6, color=PALETTE[0], label="Spearman ρ")
            ax.plot(qs, r, marker="s", ms=3.5, lw=1.2, ls="--", color=PALETTE[1], label="Pearson r")
            ax.axhline(part.loc["mean", "spearman_rho"], color=PALETTE[0], lw=1.0, alpha=0.6, label="mean: Spearman ρ")
            ax.axhline(part.loc["mean", "pearson_r"], color=PALETTE[1], lw=1.0, ls="--", alpha=0.6, label="mean: Pearson r")
            ax.axhline(0, color="black", lw=0.6, label="_zero")
            ax.set_ylim(-1.05, 1.05)
            ax.set_xticks([5, 25, 50, 75, 99], ["p5", "p25", "p50", "p75", "p99"])
            ax.set_xticks(qs, minor=True)
            ax.set_xlabel(f"percentile of {unit_text(unit, 'per')}")
            ax.set_title(f"{gname} ({int(part['n'].max())} checkpoints)")
        axes[0].set_ylabel(f"correlation with {task}")
        for ax in axes[n:]:
            ax.set_visible(False)
        better = "higher" if higher_is_better else "lower"
        handles = [
            Line2D([], [], color=PALETTE[0], marker="o", ms=4, lw=1.6, label="Spearman ρ"),
            Line2D([], [], color=PALETTE[1], marker="s", ms=3.5, lw=1.2, ls="--", label="Pearson r"),
            Line2D([], [], color=PALETTE[0], lw=1.0, alpha=0.6, label=f"mean {unit_text(unit, 'ce')}: ρ"),
            Line2D([], [], color=PALETTE[1], lw=1.0, ls="--", alpha=0.6, label=f"mean {unit_text(unit, 'ce')}: r"),
        ]
        _legend_below(fig, handles)
        sign = "negative" if higher_is_better else "positive"
        fig.suptitle((title or f"Agreement of CE summaries with {task}") + f"\n({better} {task} is better: a good selector has {sign} correlation)")
    return fig


def shape_figure(dists: Sequence[Distribution], colors: Mapping[str, str] | None = None, title: str = "") -> object:
    """Standardized percentile profiles z_q = (p_q − p50) / IQR, one line per checkpoint.

    Returns:
        A Figure with one Axes holding one labeled line per checkpoint.
    """
    from pctce_cli.stats.shape import PROFILE_LEVELS

    colors = colors or color_map([d.id for d in dists])
    unit = dists[0].unit if dists else "token"
    with style():
        fig = new_figure(8, 4.6 + 0.25 * math.ceil(len(dists) / 4))
        ax = fig.subplots()
        for d in dists:
            label = d.id + (" (IQR = 0: no profile)" if np.isnan(d.profile).all() else "")
            ax.plot(PROFILE_LEVELS, d.profile, marker="o", ms=3, lw=1.6, color=colors[d.id], label=label)
        ax.axhline(0, color="black", lw=0.6, label="_zero")
        ax.set_xticks(PROFILE_LEVELS[1::2], [f"p{q}" for q in PROFILE_LEVELS[1::2]])
        ax.set_xlabel(f"percentile q of {unit_text(unit, 'per')}")
        ax.set_ylabel("z_q = (p_q − p50) / IQR")
        ax.set_title("Same shape → same line, whatever the scale; a higher right end = a heavier tail", fontsize=9)
        _legend_below(fig, [h for h in ax.get_lines() if not h.get_label().startswith("_")])
        fig.suptitle(title or "Standardized percentile profiles")
    return fig


def bands_figure(dists: Sequence[Distribution], edges: Sequence[float] | None = None, colors: Mapping[str, str] | None = None, title: str = "") -> object:
    """Stacked horizontal bars: the fraction of each checkpoint's targets (words, bytes) in each CE band.

    Returns:
        A Figure with one Axes holding one bar container per band (plus one
        for targets outside the edges, when there are any); checkpoint names
        on the y axis in their colors.
    """
    from pctce_cli.stats.shape import band_labels
    from pctce_cli.stats.summaries import DEFAULT_EDGES

    edges = DEFAULT_EDGES if edges is None else edges
    labels = band_labels(edges)
    colors = colors or color_map([d.id for d in dists])
    unit = dists[0].unit if dists else "token"
    with style():
        import matplotlib as mpl

        cmap = mpl.colormaps["YlOrRd"]
        shades = [cmap(x) for x in np.linspace(0.12, 0.95, len(labels))]
        fig = new_figure(10, 1.6 + 0.42 * len(dists))
        ax = fig.subplots()
        y = np.arange(len(dists))
        mass = np.array([np.nan_to_num(d.bands) for d in dists]).reshape(len(dists), len(labels))
        left = np.zeros(len(dists))
        for k, label in enumerate(labels):
            bars = ax.barh(y, mass[:, k], left=left, color=shades[k], edgecolor="white", lw=0.6, label=label, height=0.7)
            for b, v in zip(bars, mass[:, k]):
                if v >= 0.06:
                    r, g, bl, _ = shades[k]
                    dark = 0.299 * r + 0.587 * g + 0.114 * bl < 0.5
                    ax.text(b.get_x() + v / 2, b.get_y() + b.get_height() / 2, f"{v:.0%}", ha="center", va="center", fontsize=7.5, color="white" if dark else "black")
            left += mass[:, k]
        outside = 1 - left
        if (outside > 1e-9).any():
            ax.barh(y, outside, left=left, color="#dddddd", edgecolor="white", lw=0.6, label="outside the edges", height=0.7)
        ax.set_yticks(y, [d.id for d in dists])
        for tick, d in zip(ax.get_yticklabels(), dists):
            tick.set_color(colors[d.id])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"fraction of {unit_text(unit, 'noun')}s")
        ax.grid(False)
        legend_inside(fig, [_band_handle(c) for c in ax.containers], 1, "outside right upper", f"CE band ({unit_text(unit, 'nats')})")
        fig.suptitle(title or "Mass in CE bands")
    return fig


def _band_handle(container):
    from matplotlib.patches import Patch

    return Patch(facecolor=container.patches[0].get_facecolor(), edgecolor="white", label=container.get_label())
