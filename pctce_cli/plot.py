"""Core of `pctce plot`: pictures of per-token CE distributions, one matplotlib Figure per kind.

Kinds (:data:`KINDS`):

* ``ecdf`` — overlaid ECDFs and histograms of CE (log CE axis), mean and median marked;
* ``trajectory`` — summaries against training step per run, a reference line, crossings marked;
* ``concord`` — concordance matrix C(s, s') as a heatmap, one panel per group;
* ``agreement`` — correlation of each percentile with a task metric, mean as a reference line;
* ``shape`` — standardized percentile profiles z_q;
* ``bands`` — stacked mass in CE bands.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas
(no pyplot, no display, no global backend switch) under pinned rcParams
(matplotlib's defaults plus :data:`STYLE`), so the user's matplotlibrc does not
change the picture and the same input gives byte-identical files. matplotlib is
an optional extra, imported inside functions; when it is missing,
:func:`require_matplotlib` raises a :class:`UsageError` with the install hint.

Core functions return a Figure; writing happens only in :func:`save_figure`
(temporary name, then rename).
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import math
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pctce_cli.errors import DataError, UsageError

KINDS = ("ecdf", "trajectory", "concord", "agreement", "shape", "bands")
OUTPUT_SUFFIXES = (".png", ".svg", ".html")
INSTALL_HINT = "plotting needs matplotlib: pip install 'pctce[plot]'"

# tab10, then ten saturated colors chosen to differ from it (navy, olive, teal,
# maroon, magenta, violet, slate, goldenrod, indigo, coral), used only when a
# selection has more than 10 names; no pale colors, so lines stay visible on white
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#000075", "#808000", "#469990", "#800000", "#f032e6",
    "#911eb4", "#2f4f4f", "#daa520", "#4b0082", "#ff6f61",
)  # fmt: skip
REFERENCE_COLOR = "#000000"

# CE below this is drawn at it on log axes (CE can be exactly 0 in float32)
CE_FLOOR = 1e-6
# fixed log-spaced histogram bins, 10 per decade from 1e-6 to 100 nats: one pass
# per checkpoint, and every checkpoint shares the bins
BINS_PER_DECADE = 10
HIST_EDGES = np.logspace(-6, 2, 8 * BINS_PER_DECADE + 1)

STYLE = {
    "svg.hashsalt": "pctce",  # clip-path and marker ids do not depend on a random salt
    "svg.fonttype": "path",  # glyphs as paths: the file does not depend on installed fonts
    "font.family": "DejaVu Sans",  # shipped with matplotlib
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "figure.titlesize": 12,
    "savefig.facecolor": "white",
}


# ---------------------------------------------------------------- matplotlib


def require_matplotlib():
    """Import matplotlib or explain how to install it.

    Returns:
        The ``matplotlib`` module.

    Raises:
        UsageError: matplotlib is not installed (exit code 2, with the install hint).
    """
    try:
        import matplotlib
        import matplotlib.figure  # noqa: F401
        from matplotlib.backends import backend_agg  # noqa: F401
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return matplotlib


@contextlib.contextmanager
def style():
    """Pinned rcParams: matplotlib's defaults plus :data:`STYLE`, restored afterwards."""
    mpl = require_matplotlib()
    with mpl.rc_context():
        mpl.rcdefaults()
        mpl.rcParams.update(STYLE)
        yield


def new_figure(width: float, height: float):
    """A constrained-layout Figure on the Agg canvas (call inside :func:`style`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# ---------------------------------------------------------------- colors and titles


def color_map(names: Sequence[str]) -> dict[str, str]:
    """A deterministic palette entry per checkpoint id or run name.

    Each name prefers the tab10 slot given by a checksum of the name, so the
    same name gets the same color in every plot and report over the same
    selection (and usually over other selections too). Names are placed in
    sorted order; a name whose slot is taken moves to the next free tab10
    slot, and once all ten are taken to the second ten colors of
    :data:`PALETTE` in the same way. Beyond 20 names colors repeat.

    Examples:
        >>> color_map(["base", "cand"]) == color_map(["cand", "base"])
        True
        >>> len(set(color_map([f"ck{i}" for i in range(10)]).values()))
        10
    """
    taken: set[int] = set()
    out = {}
    for k in sorted(set(map(str, names))):
        h = zlib.crc32(k.encode("utf-8"))
        for first in (0, 10):
            free = [first + (h + j) % 10 for j in range(10) if first + (h + j) % 10 not in taken]
            if free:
                slot = free[0]
                break
        else:
            slot = h % len(PALETTE)
        taken.add(slot)
        out[k] = PALETTE[slot]
    return out


def checkpoint_colors(cks) -> dict[str, str]:
    """One color map over every checkpoint id and run/group name of a selection."""
    names = [c.id for c in cks] + [r for r in (run_of(c) for c in cks) if r is not None]
    return color_map(names)


def run_of(ck) -> str | None:
    """The run (trajectory) a checkpoint belongs to: its group, else its run directory."""
    return ck.group or ck.run


def data_names(cks) -> str:
    """Short names of the scored data files, e.g. ``val.jsonl`` (``+2 more`` past three)."""
    names: list[str] = []
    for c in cks:
        for f in (c.manifest.get("data") or {}).get("files") or []:
            name = Path(str(f)).name
            if name not in names:
                names.append(name)
    if not names:
        return "unrecorded data"
    return ", ".join(names[:3]) + (f" +{len(names) - 3} more" if len(names) > 3 else "")


def what_was_scored(cks) -> str:
    """``"4 checkpoints on val.jsonl (answer-only CE)"`` for titles."""
    n = len(cks)
    what = f"{cks[0].id}" if n == 1 else f"{n} checkpoints"
    settings = (cks[0].manifest.get("settings") or {}) if cks else {}
    kind = " (answer-only CE)" if settings.get("completion_field") else ""
    return f"{what} on {data_names(cks)}{kind}"


# ---------------------------------------------------------------- distributions


@dataclass
class Distribution:
    """What the distribution plots need of one checkpoint's CE (read once).

    Attributes:
        id: Checkpoint id.
        n: Number of targets.
        mean: Mean CE (nats).
        p50: Median CE.
        cdf_at_mean: Fraction of targets with CE ≤ mean.
        ecdf_ce: CE at evenly spaced ranks (downsampled ECDF).
        ecdf: ECDF at ``ecdf_ce``.
        hist: Fraction of targets per :data:`HIST_EDGES` bin (out-of-range CE clipped in).
        low: 1st percentile of the positive CE values (where the log axis may start).
        profile: Standardized percentile profile z_5 … z_95 (NaN when IQR = 0).
        bands: Mass in each CE band of ``edges``.
    """

    id: str
    n: int
    mean: float
    p50: float
    cdf_at_mean: float
    ecdf_ce: np.ndarray
    ecdf: np.ndarray
    hist: np.ndarray
    low: float
    profile: np.ndarray
    bands: np.ndarray


def distribution(ck_id: str, ce, edges: Sequence[float] | None = None, n_points: int = 400) -> Distribution:
    """Summarize one CE array for the distribution plots.

    Examples:
        >>> d = distribution("a", np.array([0.5, 1.0, 2.0, 4.0]), edges=[0, 1, float("inf")])
        >>> d.n, d.mean, d.p50, d.bands.tolist()
        (4, 1.875, 1.5, [0.25, 0.75])
    """
    from pctce_cli.stats.shape import band_mass, ecdf_points, profile
    from pctce_cli.stats.summaries import DEFAULT_EDGES, percentiles

    ce = np.asarray(ce)
    if ce.size == 0:
        raise DataError(f"'{ck_id}' holds no targets; nothing to plot")
    ce64 = ce.astype(np.float64)
    mean = float(ce64.mean())
    pts = ecdf_points(ce, n_points)
    counts, _ = np.histogram(np.clip(ce64, HIST_EDGES[0], HIST_EDGES[-1]), HIST_EDGES)
    return Distribution(
        id=ck_id,
        n=int(ce.size),
        mean=mean,
        p50=float(percentiles(ce, [50])[0]),
        cdf_at_mean=float(np.count_nonzero(ce64 <= mean)) / ce.size,
        ecdf_ce=pts["ce"].to_numpy(),
        ecdf=pts["cdf"].to_numpy(),
        hist=counts / ce.size,
        low=float(np.percentile(ce64[ce64 > 0], 1)) if (ce64 > 0).any() else CE_FLOOR,
        profile=profile(ce),
        bands=band_mass(ce, DEFAULT_EDGES if edges is None else edges),
    )


def distributions(cks, edges: Sequence[float] | None = None) -> list[Distribution]:
    """:func:`distribution` of every checkpoint, reading only its ``ce`` column, one at a time."""
    from pctce_cli.store import load_scores

    return [distribution(c.id, load_scores(c.root, c.partition, columns=("ce",)).ce, edges) for c in cks]


# ---------------------------------------------------------------- figures


def _legend_below(fig, handles, ncols: int | None = None) -> None:
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=ncols or min(len(handles), 4))


def ecdf_figure(dists: Sequence[Distribution], colors: Mapping[str, str] | None = None, title: str = "") -> object:
    """Overlaid ECDFs (left) and histograms (right) of CE on a log axis, mean and median marked.

    Args:
        dists: One :class:`Distribution` per checkpoint.
        colors: Checkpoint id → color (default :func:`color_map`).
        title: Figure title.

    Returns:
        A Figure with two Axes; each holds one labeled series per checkpoint
        (a line on the ECDF, a step patch on the histogram); the mean is a
        diamond (ECDF) / dashed line (histogram), the median a circle / dotted line.
    """
    from matplotlib.lines import Line2D

    colors = colors or color_map([d.id for d in dists])
    # the log axis starts at the power of 10 below the lowest checkpoint's 1st
    # percentile of positive CE; CE below it (exact zeros included) is drawn at it
    decade = math.floor(math.log10(max(CE_FLOOR, min(d.low for d in dists))))
    k0 = min((decade - round(math.log10(CE_FLOOR))) * BINS_PER_DECADE, len(HIST_EDGES) - 2)
    lo = HIST_EDGES[k0]
    hists = [np.concatenate([[d.hist[: k0 + 1].sum()], d.hist[k0 + 1 :]]) for d in dists]
    used = np.flatnonzero(np.sum(hists, axis=0) > 0)
    hi = HIST_EDGES[k0 + used[-1] + 1] if used.size else HIST_EDGES[-1]
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
            ax_hist.stairs(h, HIST_EDGES[k0:], color=c, lw=1.5, label=d.id)
            ax_hist.axvline(max(d.mean, lo), color=c, ls="--", lw=1.0, label="_mark")
            ax_hist.axvline(max(d.p50, lo), color=c, ls=":", lw=1.2, label="_mark")
        floor_note = f"; CE < {lo:g} drawn at {lo:g}" if clipped else ""
        for ax in (ax_cdf, ax_hist):
            ax.set_xscale("log")
            ax.set_xlim(lo, hi)
            ax.set_xlabel(f"per-token CE (nats, log scale{floor_note})")
        ax_cdf.set_ylim(0, 1.005)
        ax_cdf.set_ylabel("fraction of targets with CE ≤ x")
        ax_cdf.set_title("Empirical CDF")
        ax_hist.set_ylabel(f"fraction of targets per bin ({BINS_PER_DECADE} bins per decade)")
        ax_hist.set_ylim(bottom=0)
        ax_hist.set_title("Histogram")
        handles = [Line2D([], [], color=colors[d.id], lw=2, label=d.id) for d in dists]
        handles += [
            Line2D([], [], color="grey", marker="D", ls="--", mec="black", mew=0.6, label="mean"),
            Line2D([], [], color="grey", marker="o", ls=":", mec="black", mew=0.6, label="median"),
        ]
        _legend_below(fig, handles, ncols=min(len(handles), 6))
        fig.suptitle(title or "CE distribution")
    return fig


def trajectory_figure(
    rows: Sequence[Mapping],
    summaries: Sequence[str],
    runs: Mapping[str, str | None],
    vs: str | None = None,
    colors: Mapping[str, str] | None = None,
    title: str = "",
) -> object:
    """Summaries against training step, one line per run and one panel per summary.

    Args:
        rows: One dict per checkpoint with ``checkpoint``, ``step`` and each summary.
        summaries: Summary columns to draw (one panel each).
        runs: Checkpoint id → run name (None: not part of a run).
        vs: Reference checkpoint, drawn as a black dashed horizontal line;
            the first step at which a run's summary drops below it (after
            starting above) is circled and labeled, as in ``pctce summary --vs``.
        colors: Run/checkpoint name → color.
        title: Figure title.

    Returns:
        A Figure with one Axes per summary; on each, one labeled line per run,
        a dotted line per step-less checkpoint and the reference line.

    Raises:
        UsageError: no checkpoint has a step, ``vs`` is unknown, or a summary is missing.
    """
    from matplotlib.lines import Line2D

    ids = [r["checkpoint"] for r in rows]
    if vs is not None and vs not in ids:
        raise UsageError(f"--vs '{vs}' is not among the selected checkpoints ({', '.join(ids[:8])})")
    for s in summaries:
        if any(s not in r for r in rows):
            raise UsageError(f"--summaries: no summary '{s}' for the selected checkpoints")
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
    colors = colors or color_map(list(by_run) + [r["checkpoint"] for r in flat])
    ref = rows[ids.index(vs)] if vs is not None else None
    n = len(summaries)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    with style():
        fig = new_figure(4.2 * ncols + 0.6, 3.4 * nrows + 0.8)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        crossed = False
        for ax, s in zip(axes, summaries):
            for run, items in by_run.items():
                steps = [r["step"] for r in items]
                vals = [r[s] for r in items]
                ax.plot(steps, vals, marker="o", ms=4, lw=1.6, color=colors[run], label=run)
                if ref is not None:
                    below = [k for k, v in enumerate(vals) if v < ref[s]]
                    if below and below[0] > 0:
                        k = below[0]
                        crossed = True
                        ax.plot([steps[k]], [vals[k]], marker="o", ms=13, mfc="none", mec=colors[run], mew=2, ls="none", label="_mark")
                        ax.annotate(f"step {steps[k]:,}", (steps[k], vals[k]), xytext=(6, -14), textcoords="offset points", fontsize=8, color=colors[run])
            for r in flat:
                ax.axhline(r[s], color=colors[r["checkpoint"]], ls=":", lw=1.4, label=r["checkpoint"])
            if ref is not None:
                ax.axhline(ref[s], color=REFERENCE_COLOR, ls="--", lw=1.2, label=f"{vs} (reference)")
            ax.set_title(s)
            ax.set_xlabel("training step")
            ax.set_ylabel(summary_label(s))
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


def summary_label(name: str) -> str:
    """Axis label of a summary, with its unit.

    Examples:
        >>> summary_label("p95"), summary_label("z95"), summary_label("top1")
        ('p95 of per-token CE (nats)', 'z95 = (p95 − p50) / IQR', 'top-1 accuracy (fraction of targets)')
    """
    from pctce_cli.stats.summaries import parse_summary_name

    p = parse_summary_name(name)
    if p.kind == "z":
        return f"{p.name} = (p{p.name[1:]} − p50) / IQR"
    if p.kind == "ppl":
        return "perplexity exp(mean CE)"
    if p.kind == "top1":
        return "top-1 accuracy (fraction of targets)"
    return f"{p.name} of per-token CE (nats)"


def table_groups(table, minimum: int = 2) -> list[tuple[str, object]]:
    """``("all", table)`` and one ``(name, rows)`` per named group with at least ``minimum`` checkpoints."""
    out = [("all", table)]
    if "group" in table.columns:
        for g in table["group"].dropna().unique().tolist():
            sub = table[table["group"] == g]
            if len(sub) >= minimum:
                out.append((str(g), sub.reset_index(drop=True)))
    return out


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


def agreement_figure(table, task: str, higher_is_better: bool = True, title: str = "") -> object:
    """Correlation of each CE percentile with a task metric, the mean's as reference lines.

    Args:
        table: One row per checkpoint with ``checkpoint``, ``group``, ``mean``,
            ``p5`` … ``p95``, ``p99`` and the task column.
        task: Task-metric column.
        higher_is_better: Direction of the task metric (stated in the caption).
        title: Figure title.

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
        fig = new_figure(4.6 * ncols + 0.4, 3.4 * nrows + 1.1)
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
            ax.set_xlabel("percentile of per-token CE")
            ax.set_title(f"{gname} ({int(part['n'].max())} checkpoints)")
        axes[0].set_ylabel(f"correlation with {task}")
        for ax in axes[n:]:
            ax.set_visible(False)
        better = "higher" if higher_is_better else "lower"
        handles = [
            Line2D([], [], color=PALETTE[0], marker="o", ms=4, lw=1.6, label="Spearman ρ"),
            Line2D([], [], color=PALETTE[1], marker="s", ms=3.5, lw=1.2, ls="--", label="Pearson r"),
            Line2D([], [], color=PALETTE[0], lw=1.0, alpha=0.6, label="mean CE: ρ"),
            Line2D([], [], color=PALETTE[1], lw=1.0, ls="--", alpha=0.6, label="mean CE: r"),
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
    with style():
        fig = new_figure(8, 4.6 + 0.25 * math.ceil(len(dists) / 4))
        ax = fig.subplots()
        for d in dists:
            label = d.id + (" (IQR = 0: no profile)" if np.isnan(d.profile).all() else "")
            ax.plot(PROFILE_LEVELS, d.profile, marker="o", ms=3, lw=1.6, color=colors[d.id], label=label)
        ax.axhline(0, color="black", lw=0.6, label="_zero")
        ax.set_xticks(PROFILE_LEVELS[1::2], [f"p{q}" for q in PROFILE_LEVELS[1::2]])
        ax.set_xlabel("percentile q of per-token CE")
        ax.set_ylabel("z_q = (p_q − p50) / IQR")
        ax.set_title("Same shape → same line, whatever the scale; a higher right end = a heavier tail", fontsize=9)
        _legend_below(fig, [h for h in ax.get_lines() if not h.get_label().startswith("_")])
        fig.suptitle(title or "Standardized percentile profiles")
    return fig


def bands_figure(dists: Sequence[Distribution], edges: Sequence[float] | None = None, colors: Mapping[str, str] | None = None, title: str = "") -> object:
    """Stacked horizontal bars: the fraction of each checkpoint's targets in each CE band.

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
        ax.set_xlabel("fraction of targets")
        ax.grid(False)
        fig.legend(title="CE band (nats)", loc="outside right upper")
        fig.suptitle(title or "Mass in CE bands")
    return fig


# ---------------------------------------------------------------- one call per kind


def trajectory_rows(cks, names: Sequence[str]) -> list[dict]:
    """Per-checkpoint rows (``checkpoint``, ``step`` and every summary in ``names``)."""
    from pctce_cli import analysis
    from pctce_cli.stats.summaries import parse_summary_name

    parsed = [parse_summary_name(n) for n in names]
    qs = sorted({p.q for p in parsed if p.kind in ("p", "z")} | ({50.0} if any(p.kind == "z" for p in parsed) else set()))
    rows = analysis.summary_rows(cks, qs)
    for r in rows:
        for p in parsed:
            if p.kind == "z" and p.name not in r:
                iqr = r["iqr"]
                r[p.name] = (r[analysis.pname(p.q)] - r["p50"]) / iqr if iqr > 0 else math.nan
    return rows


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
) -> object:
    """The Figure of one plot ``kind`` for the selected checkpoints.

    Args:
        kind: One of :data:`KINDS`.
        cks: Checkpoints from :func:`pctce_cli.analysis.resolve_checkpoints`.
        summaries: ``trajectory``: summaries to draw (default mean, p50, p95);
            ``concord``: rows/columns of the matrix (default mean, p50, p90, p95, p99).
        vs: ``trajectory``: reference checkpoint id.
        task: ``agreement``: task-metric column (from ``--meta``).
        higher_is_better: Direction of the task metric.
        edges: ``bands``: CE band edges (default SPEC §2's).
        colors: Name → color (default :func:`checkpoint_colors` of ``cks``).

    Raises:
        UsageError: unknown kind, a missing option, or too few checkpoints.
    """
    from pctce_cli import analysis

    if kind not in KINDS:
        raise UsageError(f"unknown plot kind '{kind}' (expected one of: {', '.join(KINDS)})")
    require_matplotlib()
    if not cks:
        raise UsageError("no checkpoints selected")
    colors = colors or checkpoint_colors(cks)
    scored = what_was_scored(cks)
    if kind in ("ecdf", "shape", "bands"):
        dists = distributions(cks, edges)
        if kind == "ecdf":
            return ecdf_figure(dists, colors, f"CE distribution of {scored}")
        if kind == "shape":
            return shape_figure(dists, colors, f"Standardized percentile profiles of {scored}")
        return bands_figure(dists, edges, colors, f"Mass in CE bands of {scored}")
    if kind == "trajectory":
        names = analysis.parse_summary_list(summaries, ["mean", "p50", "p95"], "--summaries")
        runs = {c.id: run_of(c) for c in cks}
        return trajectory_figure(trajectory_rows(cks, names), names, runs, vs, colors, f"Summaries over training of {scored}")
    if kind == "concord":
        names = analysis.parse_summary_list(summaries, ["mean", "p50", "p90", "p95", "p99"], "--summaries")
        if len(cks) < 2:
            raise UsageError(f"concordance needs at least 2 checkpoints, got {len(cks)}")
        table = analysis.summaries_table(cks, None, list(dict.fromkeys([*names, "mean", "p50", "p95"])), meta_columns=False)
        return concord_figure(table, names, ["mean", "p50", "p95"], f"Concordance of summaries across {scored}")
    # agreement
    if task is None:
        raise UsageError("plot agreement needs --task COL (a task-metric column of --meta)")
    from pctce_cli.stats.selection import AGREEMENT_PERCENTILES

    table = analysis.summaries_table(cks, None, ["mean", *[f"p{q}" for q in AGREEMENT_PERCENTILES]])
    col = analysis.resolve_task(table, task)
    return agreement_figure(table, col, higher_is_better, f"Agreement of CE summaries with {task} across {scored}")


# ---------------------------------------------------------------- writing


def figure_bytes(fig, fmt: str, dpi: int = 150) -> bytes:
    """Render a Figure to ``png`` or ``svg`` bytes, deterministically.

    SVG: fixed ``svg.hashsalt``, no metadata (no date, no creator); PNG: no
    ``Software`` entry (matplotlib writes no date into PNGs).
    """
    buf = io.BytesIO()
    with style():
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
    """
    text = svg.decode("utf-8") if isinstance(svg, bytes) else svg
    text = text[text.index("<svg") :]
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text, count=3)


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,…`` for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


PAGE_STYLE = (
    "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;"
    "padding:0 1em;color:#222;line-height:1.45}"
    "svg,img{max-width:100%;height:auto}"
)


def html_page(title: str, body: str, extra_style: str = "") -> str:
    """A minimal self-contained HTML page (``title`` is escaped, ``body`` is HTML)."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{html.escape(title)}</title>\n"
        f"<style>{PAGE_STYLE}{extra_style}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def check_output(out: str | Path) -> str:
    """The output format named by ``--out``'s suffix: ``png``, ``svg`` or ``html``.

    Examples:
        >>> check_output("ecdf.SVG")
        'svg'
    """
    suffix = Path(out).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise UsageError(f"--out {out}: expected a .png, .svg or .html file, got '{suffix or 'no suffix'}'")
    return suffix[1:]


def save_figure(fig, out: str | Path, title: str = "", dpi: int = 150) -> Path:
    """Write a Figure to ``out`` (.png, .svg, or .html = the SVG inlined in a page), atomically."""
    fmt = check_output(out)
    if fmt == "html":
        svg = inline_svg(figure_bytes(fig, "svg"))
        page = html_page(title or Path(out).stem, f"<figure>\n{svg}\n</figure>")
        return write_atomic(out, page.encode("utf-8"))
    return write_atomic(out, figure_bytes(fig, fmt, dpi))


def save_plot(kind: str, cks, out: str | Path, dpi: int = 150, **options) -> Path:
    """`pctce plot`: check ``out`` and matplotlib, draw ``kind`` (:func:`plot_figure`), write the file."""
    check_output(out)
    if dpi < 10:
        raise UsageError(f"--dpi must be at least 10, got {dpi}")
    require_matplotlib()
    fig = plot_figure(kind, cks, **options)
    return save_figure(fig, out, f"pctce plot {kind}: {what_was_scored(cks)}", dpi)
