"""`pctce plot ecdf --value dp`: the ECDF of Δp, the change in the target's probability against the reference.

Δp = p_model(target) − p_ref(target) (docs/definitions.md#divergence-from-a-reference-model) is signed and
lies in [−1, 1]; most targets move by far less than 0.01 and a few by nearly 1 either way. So the ECDF is
drawn on a symmetric log axis: linear within ±:data:`LINEAR_WITHIN` of 0 (where float noise lies), logarithmic
beyond, out to ±1 on both sides. The share left of 0 is the share of targets the candidate gives less
probability than the reference does; the curve's left tail is where probability was lost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pctce_cli.errors import DataError
from pctce_cli.plot.divergence import reference_phrase
from pctce_cli.plot.inputs import overlaid_titled
from pctce_cli.plot.theme import color_map, legend_inside, new_figure, style

LINEAR_WITHIN = 1e-4  # |Δp| below this is drawn on a linear stretch around 0
_POINTS = 300  # points per curve: evenly spaced ranks, and log-spaced ranks into each tail


@dataclass
class DeltaPDistribution:
    """What the Δp plot needs of one checkpoint's per-target Δp.

    Attributes:
        id: Checkpoint id.
        n: Number of targets.
        mean, p50: Mean and median (type 7) of Δp.
        below: Fraction of targets with Δp < 0 (less probability on the target than the reference).
        x: Δp at the curve's points, ascending.
        cdf: Fraction of targets with Δp ≤ ``x``.
    """

    id: str
    n: int
    mean: float
    p50: float
    below: float
    x: np.ndarray
    cdf: np.ndarray


def dp_plot(cks, subsets, colors: Mapping[str, str], scored: str, notes: list) -> object:
    """``plot ecdf --value dp`` (checked by :func:`~pctce_cli.plot.divergence.check_divergence_plot`): at most
    MAX_OVERLAID checkpoints (past it each run's last one, said in ``notes``), of the kept documents with ``--subset``.

    Raises:
        UsageError: no drawn checkpoint has targets in the kept documents.
    """
    from pctce_cli.analysis.subsets import no_targets

    drawn, more = overlaid_titled(cks, "plot ecdf", notes)
    dists = dp_distributions(drawn, subsets)
    if not dists:
        raise no_targets(subsets)
    return dp_ecdf_figure(dists, colors, f"Δp distribution of {scored}\nΔp = p_model(target) − p_ref(target) against {reference_phrase(cks)}{more}")


def dp_distribution(ck_id: str, dp, keep=None) -> DeltaPDistribution:
    """Summarize one per-target Δp array (of the rows ``keep`` picks, a :class:`~pctce_cli.analysis.subsets.Part`) for :func:`dp_ecdf_figure`.

    Raises:
        DataError: no targets.

    Example:
        >>> d = dp_distribution("a", np.array([-0.5, -0.01, 0.0, 0.0, 0.2]))
        >>> d.n, d.p50, d.below, float(d.x[0]), float(d.cdf[-1])
        (5, 0.0, 0.4, -0.5, 1.0)
    """
    from pctce_cli.stats.summaries import percentiles

    v = np.sort(np.asarray(dp if keep is None else keep.take(dp), dtype=np.float64))
    n = v.size
    if n == 0:
        raise DataError(f"'{ck_id}' holds no targets; nothing to plot")
    ends = np.logspace(0, math.log10(n), _POINTS)  # 1 … n: dense near both ends, where the tails are
    idx = np.unique(np.concatenate([np.linspace(0, n - 1, _POINTS), ends - 1, n - ends]).round().astype(np.int64).clip(0, n - 1))
    x = np.unique(v[idx])
    cdf = np.searchsorted(v, x, side="right") / n
    return DeltaPDistribution(ck_id, n, float(v.mean()), float(percentiles(v, [50])[0]), float(np.searchsorted(v, 0.0, side="left") / n), x, cdf)


def dp_distributions(cks, keep=None) -> list[DeltaPDistribution]:
    """:func:`dp_distribution` of every checkpoint, one at a time; ``keep``: a ``--subset`` (:class:`~pctce_cli.analysis.subsets.Subsets`)."""
    from pctce_cli.analysis.subsets import split_scores
    from pctce_cli.store import load_scores

    out = []
    for c in cks:
        s = load_scores(c.root, c.partition, columns=("doc", "dp"))
        part = split_scores(c.id, s.doc, s.docs, keep)[0][0] if keep is not None and keep.active else None
        try:
            out.append(dp_distribution(c.id, s.dp, part))
        except DataError:  # none of its targets in the kept documents
            continue
    return out


def dp_ecdf_figure(dists: Sequence[DeltaPDistribution], colors: Mapping[str, str] | None = None, title: str = "") -> object:
    """The ECDF of Δp per checkpoint on a symmetric log axis from −1 to 1, the mean a diamond and the median a circle.

    Returns:
        A Figure with one Axes holding one labeled line per checkpoint and a vertical line at 0.
    """
    from matplotlib.lines import Line2D

    colors = colors or color_map([d.id for d in dists])
    with style():
        fig = new_figure(9, 4.8 + 0.25 * math.ceil(len(dists) / 4))
        ax = fig.subplots()
        for d in dists:
            c = colors[d.id]
            ax.plot(np.concatenate([[-1.0], d.x]), np.concatenate([[0.0], d.cdf]), drawstyle="steps-post", color=c, lw=1.6, label=d.id)
            marks = dict(ls="none", color=c, mec="black", mew=0.6, ms=7, label="_mark", zorder=3)
            ax.plot([d.mean], [float(np.interp(d.mean, d.x, d.cdf))], marker="D", **marks)
            ax.plot([d.p50], [0.5], marker="o", **marks)
        ax.axvline(0, color="black", lw=0.8, label="_zero")
        ax.set_xscale("symlog", linthresh=LINEAR_WITHIN)
        ax.set_xlim(-1, 1)
        ax.set_ylim(0, 1.005)
        ax.set_xlabel(f"per-token Δp = p_model(target) − p_ref(target) (symmetric log scale, linear within ±{LINEAR_WITHIN:g})")
        ax.set_ylabel("fraction of targets with Δp ≤ x")
        ax.text(0.02, 0.97, "← less probability on the target\n     than the reference", transform=ax.transAxes, va="top", fontsize=8, color="dimgrey")
        ax.text(0.98, 0.03, "more probability →", transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="dimgrey")
        handles = [Line2D([], [], color=colors[d.id], lw=2, label=d.id) for d in dists]
        mark = dict(color="grey", ls="none", mec="black", mew=0.6)
        handles += [Line2D([], [], marker=m, label=s, **mark) for m, s in (("D", "mean"), ("o", "median"))]
        legend_inside(fig, handles, min(len(handles), 6))
        fig.suptitle(title or "Δp distribution")
    return fig
