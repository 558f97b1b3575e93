"""The look of every plot: pinned matplotlib style, the Agg canvas, colors per name, titles and axis labels.

matplotlib is an optional extra, imported inside functions only (analysis
commands start without it); when it is missing :func:`require_matplotlib`
raises a :class:`~pctce_cli.errors.UsageError` with the install hint.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from pctce_cli.errors import UsageError
from pctce_cli.units import unit_named
from pctce_cli.analysis.runs import run_of, runs_of  # noqa: F401 (re-exported: the plots' runs are the analyses' runs)

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
    """Pinned rcParams: matplotlib's defaults plus :data:`STYLE`, restored afterwards.

    Raises:
        UsageError: matplotlib is not installed.
    """
    mpl = require_matplotlib()
    with mpl.rc_context():
        mpl.rcdefaults()
        mpl.rcParams.update(STYLE)
        yield


def new_figure(width: float, height: float):
    """A constrained-layout Figure on the Agg canvas (call inside :func:`style`).

    Args:
        width: Width in inches.
        height: Height in inches.

    Returns:
        A :class:`matplotlib.figure.Figure` with an Agg canvas attached.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# ---------------------------------------------------------------- colors, titles and labels


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
    """One color per run and per checkpoint of a selection: no two runs share a color.

    Runs (:func:`runs_of`; a checkpoint outside any run is its own run) get
    :func:`run_colors`. A run's checkpoints get its color, lighter the earlier
    their step (the last one the run's own color), so overlaid distributions of
    one run are told apart and still read as one run.

    Args:
        cks: Checkpoints from :func:`pctce_cli.analysis.resolve_checkpoints`.

    Returns:
        Run name and checkpoint id → color.
    """
    runs = runs_of(cks)
    members: dict[str, list] = {}
    for c in cks:
        members.setdefault(runs[c.id] or c.id, []).append(c)
    groups = {name: cs[0].group for name, cs in members.items()}
    out = run_colors(list(members), groups)
    for name, cs in members.items():
        cs = sorted(cs, key=lambda c: (c.step is None, c.step or 0))
        for k, c in enumerate(cs):
            out.setdefault(c.id, lighter(out[name], 0.6 * (len(cs) - 1 - k) / max(len(cs) - 1, 1)))
    return out


# up to this many runs every run gets its own palette entry; beyond it, hue by group and lightness by run
DISTINCT_RUNS = 12


def run_colors(names: Sequence[str], groups: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """A color per run, never the same for two runs of one figure.

    Up to :data:`DISTINCT_RUNS` runs: :func:`color_map` (a fixed palette entry
    per name). Beyond: the runs of one group share a hue (one :func:`color_map`
    entry per group) and differ in lightness; without groups the hues of a
    continuous colormap, evenly spaced.

    Examples:
        >>> len(set(run_colors([f"r{i}" for i in range(15)]).values()))
        15
        >>> len(set(run_colors([f"r{i}" for i in range(30)], {f"r{i}": f"g{i % 3}" for i in range(30)}).values()))
        30
    """
    names = list(dict.fromkeys(map(str, names)))
    if len(names) <= DISTINCT_RUNS:
        return color_map(names)
    groups = groups or {}
    by_group: dict[str, list[str]] = {}
    for n in sorted(names):
        by_group.setdefault(str(groups.get(n) or ""), []).append(n)
    if len(by_group) < 2 or len(by_group) > 10:
        import matplotlib as mpl
        from matplotlib.colors import to_hex

        cmap = mpl.colormaps["turbo"]
        ordered = sorted(names)
        return {n: to_hex(cmap(0.05 + 0.9 * k / (len(ordered) - 1))) for k, n in enumerate(ordered)}
    hues = color_map(list(by_group))
    out = {}
    for g, ns in by_group.items():
        for k, n in enumerate(ns):
            # from the group's own color to 60 % of the way to white, evenly
            out[n] = lighter(hues[g], 0.6 * k / max(len(ns) - 1, 1))
    return out


def lighter(color: str, amount: float) -> str:
    """``color`` mixed with white: 0 keeps it, 1 is white.

    Examples:
        >>> lighter("#000000", 0.5), lighter("#1f77b4", 0)
        ('#808080', '#1f77b4')
    """
    from matplotlib.colors import to_hex, to_rgb

    return to_hex(tuple(c + (1 - c) * amount for c in to_rgb(color)))


LEGEND_LABEL = 48  # characters of a legend label; longer ones are cut with "…" so one entry never outgrows the figure


def legend_inside(fig, handles, ncols: int = 6, loc: str = "outside lower center", title: str | None = None):
    """A figure legend that lies inside the figure: fewer columns until it fits the width, the figure taller by its height.

    Constrained layout makes room for an ``outside`` legend by shrinking the
    axes, but a legend wider than the figure runs off both edges, and a tall one
    squeezes the axes to nothing; here the columns drop until the legend fits
    the width, and the figure grows by the legend's height so the axes keep theirs.

    Args:
        fig: The Figure (constrained layout).
        handles: Legend handles (labels longer than :data:`LEGEND_LABEL` are shortened).
        ncols: Most columns.
        loc: ``outside lower center`` (below the axes) or ``outside right upper``.
        title: Legend title.

    Returns:
        The legend, or None without handles.
    """
    if not handles:
        return None
    for h in handles:
        label = h.get_label()
        if len(label) > LEGEND_LABEL:
            h.set_label(label[: LEGEND_LABEL - 1] + "…")
    renderer = fig.canvas.get_renderer()
    width, height = fig.get_size_inches()
    ncols = max(1, min(ncols, len(handles)))
    while True:
        leg = fig.legend(handles=handles, loc=loc, ncols=ncols, title=title)
        box = leg.get_window_extent(renderer)
        if ncols == 1 or box.width <= 0.96 * fig.bbox.width:
            break
        leg.remove()
        ncols -= 1
    if loc.endswith("center"):
        fig.set_size_inches(width, height + box.height / fig.dpi)
    elif box.height > 0.9 * fig.bbox.height:
        fig.set_size_inches(width, box.height / fig.dpi + 0.6)
    return leg


def data_names(cks) -> str:
    """Short names of the scored data files, e.g. ``val.jsonl`` (``+2 more`` past three)."""
    names: list[str] = []
    for c in cks:
        for f in c.manifest.data_files:
            name = Path(str(f)).name
            if name not in names:
                names.append(name)
    if not names:
        return "unrecorded data"
    return ", ".join(names[:3]) + (f" +{len(names) - 3} more" if len(names) > 3 else "")


def what_was_scored(cks) -> str:
    """``"4 checkpoints on val.jsonl (answer-only CE)"`` for titles.

    Args:
        cks: The selected checkpoints (the first one's id when there is only one).

    Returns:
        What was scored, on which data, in a few words.
    """
    n = len(cks)
    what = f"{cks[0].id}" if n == 1 else f"{n} checkpoints"
    settings = cks[0].manifest.settings if cks else {}
    kind = " (answer-only CE)" if settings.get("completion_field") else ""
    return f"{what} on {data_names(cks)}{kind}"


def unit_text(unit: str, key: str) -> str:
    """How ``unit`` is named: ``ce`` (``CE``, ``per-word CE``; ``CE`` capitalized: ``Per-word CE``), ``per`` (``per-token CE``, ``CE per word``), ``noun`` (``target``, ``word``, ``byte``) or ``nats`` (``nats per byte``).

    Examples:
        >>> unit_text("token", "ce"), unit_text("word", "noun"), unit_text("byte", "nats")
        ('CE', 'word', 'nats per byte')
    """
    return unit_named(unit).labels[key]


def ce_axis(unit: str = "token", extra: str = "") -> str:
    """The label of a CE axis in ``unit``; ``extra`` goes inside the parentheses.

    Examples:
        >>> ce_axis("token", ", log scale"), ce_axis("word"), ce_axis("byte", ", log")
        ('per-token CE (nats, log scale)', 'CE per word (nats)', 'CE per byte (nats per byte, log)')
    """
    return unit_named(unit).labels["axis"].format(extra)


def plot_title(kind: str, unit: str, scored: str, by: str | None = None, task: str | None = None) -> str:
    """The title of a plot ``kind`` (``ecdf``, ``trajectory``, …) of ``scored`` (:func:`what_was_scored`) in ``unit``.

    Examples:
        >>> plot_title("ecdf", "token", "a on val.jsonl"), plot_title("bands", "word", "a on val.jsonl", by="domain")
        ('CE distribution of a on val.jsonl', 'Mass in per-word CE bands by domain of a on val.jsonl')
    """
    ce, big = unit_text(unit, "ce"), unit_text(unit, "CE")
    titled = unit_named(unit).titled
    which = f"{ce} " if titled else ""
    of = f" by {by} of {scored}" if by else f" of {scored}"
    titles = {
        "ecdf": f"{big} distribution{of}",
        "trajectory": (f"{big} summaries" if titled else "Summaries") + f" over training of {scored}",
        "fan": f"Percentiles of {ce} over training of {scored}",
        "band-trajectory": f"Mass in {ce} bands over training of {scored}",
        "concord": f"Concordance of {which}summaries across {scored}",
        "agreement": f"Agreement of {ce} summaries with {task} across {scored}",
        "shape": f"Standardized {which}percentile profiles{of}",
        "bands": f"Mass in {ce} bands{of}",
    }
    return titles[kind]


def summary_label(name: str, unit: str = "token") -> str:
    """Axis label of a summary, with its unit.

    Args:
        name: A summary name (``mean``, ``p95``, ``z95``, ``ppl``, ``top1`` …).
        unit: The distribution summarized: ``token``, ``word`` or ``byte``.

    Returns:
        The label.

    Examples:
        >>> summary_label("p95"), summary_label("z95"), summary_label("top1")
        ('p95 of per-token CE (nats)', 'z95 = (p95 − p50) / IQR', 'top-1 accuracy (fraction of targets)')
        >>> summary_label("mean", "byte"), summary_label("ppl", "word")
        ('mean of CE per byte (nats per byte)', 'perplexity exp(mean CE per word)')
    """
    from pctce_cli.stats.summaries import parse_summary_name

    p = parse_summary_name(name)
    if p.kind == "z":
        return f"{p.name} = (p{p.name[1:]} − p50) / IQR"
    if p.kind == "ppl":
        return "perplexity exp(mean CE" + (f" per {unit})" if unit_named(unit).titled else ")")
    if p.kind == "top1":
        return "top-1 accuracy (fraction of targets)"
    return f"{p.name} of {ce_axis(unit)}"
