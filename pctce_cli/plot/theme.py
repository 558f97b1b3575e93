"""The look of every plot: pinned matplotlib style, the Agg canvas, colors per name, titles and axis labels.

matplotlib is an optional extra, imported inside functions only (analysis
commands start without it); when it is missing :func:`require_matplotlib`
raises a :class:`~pctce_cli.errors.UsageError` with the install hint.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Sequence
from pathlib import Path

from pctce_cli.errors import UsageError
from pctce_cli.units import unit_named

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
    """One color map over every checkpoint id and run/group name of a selection.

    Args:
        cks: Checkpoints from :func:`pctce_cli.analysis.resolve_checkpoints`.

    Returns:
        Name → color, from :func:`color_map`.
    """
    names = [c.id for c in cks] + [r for r in (run_of(c) for c in cks) if r is not None]
    return color_map(names)


def run_of(ck) -> str | None:
    """The run (trajectory) a checkpoint belongs to: its group, else its run directory."""
    return ck.group or ck.run


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
