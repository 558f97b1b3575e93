"""`pctce plot ecdf|trajectory --value kl`: pictures of the per-target KL from a reference model.

KL (docs/definitions.md#divergence-from-a-reference-model) spans many decades
and has exact zeros (a target where both models agree to float precision), and
what a distillation or quantization study asks of it is its tail: how often a
target moves far from the reference. So the ECDF is drawn on a log KL axis
beside its complement, the fraction of targets with KL ≥ x on log-log axes,
which shows the tail down to one target in n (where p99 and p99.9 are read off).
KL below :data:`KL_FLOOR` (exact zeros included) cannot sit on a log axis: it is
drawn at the axis' left edge, and the axis label says at what value and how many
targets that is.

The trajectory draws KL percentiles (default p50, p90, p99, p99.9) against
training step, one line per run, with the CE trajectory's builder.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pctce_cli.errors import DataError, UsageError
from pctce_cli.plot.theme import color_map, legend_inside, new_figure, style
from pctce_cli.values import value_named

# KL below this (nats; exact zeros included) is drawn at it on the log axis: float32 KL under it is rounding
KL_FLOOR = 1e-6
DIVERGENCE_KINDS = ("ecdf", "trajectory")  # the kinds drawn with --value kl
KL_TRAJECTORY = ("p50", "p90", "p99", "p99.9")
_POINTS = 300  # points of each curve: evenly spaced ranks (the ECDF) and log-spaced tail fractions


@dataclass
class KLDistribution:
    """What the KL plot needs of one checkpoint's per-target KL (read once).

    Attributes:
        id: Checkpoint id.
        n: Number of targets.
        mean, p50, p99, p999: Mean, median, 99th and 99.9th percentile (type 7) of KL, nats.
        low: 1st percentile of the positive KL values (where the log axis may start; :data:`KL_FLOOR` when none is positive).
        x: KL at the curves' points, ascending.
        cdf: Fraction of targets with KL ≤ ``x``.
        tail: Fraction of targets with KL ≥ ``x`` (at least 1/n).
        unit: ``token`` (each target's KL) or ``word`` (a word's KL, the sum of its tokens').
    """

    id: str
    n: int
    mean: float
    p50: float
    p99: float
    p999: float
    low: float
    x: np.ndarray
    cdf: np.ndarray
    tail: np.ndarray
    unit: str = "token"

    def below(self, floor: float) -> float:
        """Fraction of targets with KL < ``floor`` (read off the curve points, exact at a point's value)."""
        k = int(np.searchsorted(self.x, floor, side="left"))  # x[k - 1] < floor <= x[k]
        return 0.0 if k == 0 else float(self.cdf[k - 1])


def kl_distribution(ck_id: str, kl, unit: str = "token") -> KLDistribution:
    """Summarize one per-target (or, with ``unit="word"``, per-word) KL array for :func:`kl_ecdf_figure`.

    Raises:
        DataError: ``kl`` is empty.

    Example:
        >>> d = kl_distribution("a", np.array([0.0, 0.0, 0.1, 0.2, 4.0]))
        >>> d.n, round(d.mean, 2), d.p50, float(d.x[-1]), float(d.tail[-1]), d.below(1e-6)
        (5, 0.86, 0.1, 4.0, 0.2, 0.4)
    """
    from pctce_cli.stats.summaries import percentiles

    v = np.sort(np.asarray(kl, dtype=np.float64))
    n = v.size
    if n == 0:
        raise DataError(f"'{ck_id}' holds no targets; nothing to plot")
    # dense in the bulk (even ranks) and in the tail (ranks n - n·s for log-spaced s down to 1/n)
    idx = np.unique(np.concatenate([np.linspace(0, n - 1, _POINTS), n - np.logspace(0, math.log10(n), _POINTS)]).round().astype(np.int64).clip(0, n - 1))
    x = np.unique(v[idx])
    cdf = np.searchsorted(v, x, side="right") / n
    tail = (n - np.searchsorted(v, x, side="left")) / n
    pos = v[v > 0]
    p50, p99, p999 = (float(p) for p in percentiles(v, [50, 99, 99.9]))
    return KLDistribution(ck_id, n, float(v.mean()), p50, p99, p999, float(np.percentile(pos, 1)) if pos.size else KL_FLOOR, x, cdf, tail, unit)


def kl_distributions(cks, unit: str = "token") -> list[KLDistribution]:
    """:func:`kl_distribution` of every checkpoint, one at a time, reading only its ``kl`` column (and ``doc`` and words for ``word``)."""
    from pctce_cli.store import load_scores

    if unit == "token":
        return [kl_distribution(c.id, load_scores(c.root, c.partition, columns=("kl",)).kl) for c in cks]
    out = []
    for c in cks:
        s = load_scores(c.root, c.partition, columns=("doc", "kl"))
        out.append(kl_distribution(c.id, word_kl(c, s.kl, s.doc), unit))
    return out


def word_kl(ck, kl, doc, part=None) -> np.ndarray:
    """A word's KL, the sum of its tokens' (docs/definitions.md#divergence-from-a-reference-model), from one checkpoint's
    per-target ``kl`` and ``doc``; of one subset's rows with ``part`` (:class:`pctce_cli.analysis.subsets.Part`)."""
    from pctce_cli.stats.units import word_ce
    from pctce_cli.store import load_units

    words = load_units(ck.root, ck.partition, "word").word
    if part is not None:
        kl, doc, words = part.take(kl), part.take(doc), part.take(words)
    return word_ce(kl, doc, words)[0]


def unit_words(unit: str) -> tuple[str, str]:
    """``("per-token", "targets")`` or ``("per-word", "words")``: how a KL axis names its values."""
    return ("per-word", "words") if unit == "word" else ("per-token", "targets")


def kl_axis(dists: Sequence[KLDistribution]) -> tuple[float, float, str]:
    """``(left edge, right edge, a note on the KL drawn at the left edge or "")`` of the log KL axis shared by ``dists``.

    The left edge is the power of 10 below the lowest checkpoint's 1st percentile of positive KL (at least
    :data:`KL_FLOOR`); KL below it is drawn at it, and the note says how much of a checkpoint's that is (at most).
    """
    lo = 10.0 ** math.floor(math.log10(max(KL_FLOOR, min(d.low for d in dists))))
    hi = max(float(d.x[-1]) for d in dists)
    hi = 10.0 ** math.ceil(math.log10(hi)) if hi > lo else lo * 10
    share = max(d.below(lo) for d in dists)
    shown = f"up to {share:.1%}" if share >= 0.0005 else "under 0.05%"  # never "up to 0.0%" for a few targets
    note = f"KL < {lo:g} (exact zeros too)\ndrawn at {lo:g}: {shown}" if share > 0 else ""
    return lo, hi, note


def kl_ecdf_figure(dists: Sequence[KLDistribution], colors: Mapping[str, str] | None = None, title: str = "") -> object:
    """The ECDF of KL (left, log x) and its tail, the fraction of targets with KL ≥ x (right, log-log), per checkpoint.

    Returns:
        A Figure with two Axes; each holds one labeled line per checkpoint; on the ECDF the mean is a diamond and
        the median a circle, on the tail p99 a square and p99.9 a triangle, with dotted guides at 1 % and 0.1 %.
    """
    from matplotlib.lines import Line2D

    colors = colors or color_map([d.id for d in dists])
    lo, hi, note = kl_axis(dists)
    n_min = min(d.n for d in dists)
    per, plural = unit_words(dists[0].unit)
    with style():
        fig = new_figure(11, 4.4 + 0.25 * math.ceil(len(dists) / 4))
        ax_cdf, ax_tail = fig.subplots(1, 2)
        for d in dists:
            c = colors[d.id]
            x = np.maximum(d.x, lo)
            ax_cdf.plot(np.concatenate([[lo], x]), np.concatenate([[0.0], d.cdf]), drawstyle="steps-post", color=c, lw=1.6, label=d.id)
            ax_tail.plot(x, d.tail, drawstyle="steps-pre", color=c, lw=1.6, label=d.id)
            marks = dict(ls="none", color=c, mec="black", mew=0.6, ms=7, label="_mark", zorder=3)
            ax_cdf.plot([max(d.mean, lo)], [float(np.interp(d.mean, d.x, d.cdf))], marker="D", **marks)
            ax_cdf.plot([max(d.p50, lo)], [0.5], marker="o", **marks)
            ax_tail.plot([max(d.p99, lo)], [0.01], marker="s", **marks)
            if d.n >= 1000:  # p99.9 of fewer targets is an interpolation between the last few
                ax_tail.plot([max(d.p999, lo)], [0.001], marker="^", **marks)
        for y, name in ((0.01, "p99"), (0.001, "p99.9")):
            if y >= 1 / n_min:
                ax_tail.axhline(y, color="grey", ls=":", lw=0.9, label="_guide")
                ax_tail.annotate(name, (lo, y), xytext=(3, 2), textcoords="offset points", fontsize=8, color="grey")
        for ax in (ax_cdf, ax_tail):
            ax.set_xscale("log")
            ax.set_xlim(lo, hi)
            ax.set_xlabel(f"{per} KL(p_ref ‖ p_model) (nats, log scale)")
        if note:  # inside the ECDF, above the jump it explains
            ax_cdf.text(0.02, 0.97, note, transform=ax_cdf.transAxes, va="top", fontsize=8, color="dimgrey")
        ax_cdf.set_ylim(0, 1.005)
        ax_cdf.set_ylabel(f"fraction of {plural} with KL ≤ x")
        ax_cdf.set_title("Empirical CDF")
        ax_tail.set_yscale("log")
        ax_tail.set_ylim(0.5 / max(d.n for d in dists), 1.5)
        ax_tail.set_ylabel(f"fraction of {plural} with KL ≥ x")
        ax_tail.set_title("Tail (log-log): where p99 and p99.9 lie")
        handles = [Line2D([], [], color=colors[d.id], lw=2, label=d.id) for d in dists]
        mark = dict(color="grey", ls="none", mec="black", mew=0.6)
        marked = (("D", "mean"), ("o", "median"), ("s", "p99")) + ((("^", "p99.9"),) if any(d.n >= 1000 for d in dists) else ())
        handles += [Line2D([], [], marker=m, label=s, **mark) for m, s in marked]
        legend_inside(fig, handles, min(len(handles), 6))
        fig.suptitle(title or "KL distribution")
    return fig


def kl_summary_names(text: str | Sequence[str] | None) -> list[str]:
    """``--summaries`` of a KL trajectory: canonical names among mean, pXX, max and same_top1 (default :data:`KL_TRAJECTORY`).

    Raises:
        UsageError: a name that is not a KL summary.

    Example:
        >>> kl_summary_names("p50, p99.90,same_top1"), kl_summary_names("p100,max,p50")
        (['p50', 'p99.9', 'same_top1'], ['max', 'p50'])
    """
    from pctce_cli.stats.summaries import parse_summary_name

    if not text:
        return list(KL_TRAJECTORY)
    out = []
    for name in (s.strip() for s in (text.split(",") if isinstance(text, str) else text)):
        if not name:
            continue
        if name not in ("mean", "max", "same_top1"):
            try:
                p = parse_summary_name(name)
            except UsageError:
                p = None
            if p is None or p.kind != "p":
                raise UsageError(f"summaries: '{name}' is not a KL summary (mean, pXX, max, same_top1)", param="summaries")
            name = "max" if p.q == 100 else p.name  # p100 is the max (docs/kl.md), which the rows hold as 'max'
        if name not in out:  # a summary named twice is one panel
            out.append(name)
    return out


def kl_trajectory_rows(cks, names: Sequence[str], subsets=None, unit: str = "token") -> list[dict]:
    """One row per checkpoint: ``checkpoint``, ``step``, ``group`` and every KL summary (mean, the ``pXX`` of ``names``, max, same_top1).

    ``subsets``: ``--subset`` (:class:`pctce_cli.analysis.subsets.Subsets` without ``split``): of the kept documents only.
    """
    from pctce_cli.analysis.divergence import divergence_rows
    from pctce_cli.stats.summaries import parse_summary_name

    levels = sorted({parse_summary_name(n).q for n in names if n not in ("mean", "max", "same_top1")})
    kw = {"subsets": subsets} if subsets is not None and subsets.active else {}
    return [divergence_rows(c, "kl", levels, unit=unit, **kw)[0][0] for c in cks]


def kl_label(name: str, unit: str = "token") -> str:
    """Axis label of a KL summary.

    Examples:
        >>> kl_label("p99.9"), kl_label("same_top1"), kl_label("p50", "word")
        ('p99.9 of per-token KL (nats)', 'same top token (fraction of targets)', 'p50 of per-word KL (nats)')
    """
    return "same top token (fraction of targets)" if name == "same_top1" else f"{name} of {unit_words(unit)[0]} KL (nats)"


def reference_phrase(cks) -> str:
    """``the reference teacher/checkpoint-1200``, or ``2 different references (not comparable with each other)``, for titles."""
    refs = reference_names(cks)
    return f"the reference {refs[0]}" if len(refs) == 1 else f"{len(refs)} different references (not comparable with each other)"


def reference_names(cks) -> list[str]:
    """The references the checkpoints were scored against, each by the last two parts of its path (``teacher/checkpoint-1200``)."""
    from pathlib import PurePath

    def name(c) -> str:
        p = PurePath(str((getattr(c.manifest, "reference", None) or {}).get("path", "?")))
        return "/".join(part for part in p.parts[-2:] if part != p.anchor)  # /other: 'other', not '//other'

    return sorted({name(c) for c in cks})


def divergence_title(kind: str, cks, scored: str, by: str | None = None, unit: str = "token") -> str:
    """``KL distribution of 4 checkpoints on val.jsonl`` (``KL tail by domain …`` with ``by``, ``KL per word …`` with ``unit``) and, below, the reference (``teacher/checkpoint-1200``)."""
    ref = reference_phrase(cks)
    what = "percentiles over training" if kind == "trajectory" else f"tail by {by}" if by else "distribution"
    what = ("KL per word " if unit == "word" else "KL ") + what
    return f"{what} of {scored}\nKL(p_ref ‖ p_model) from {ref}"


def check_divergence_plot(kind: str, value: str, cks, unit: str, subsets: bool) -> None:
    """Refuse ``--value`` for a kind without a KL form, a unit other than token, ``--by`` on the trajectory, or a store without divergence.

    ``subsets``: ``--by`` (one panel per subset, the ecdf's only); ``--subset`` alone draws either kind on the kept documents.

    Raises:
        UsageError: named, with what to do.
    """
    from pctce_cli.units import unit_named

    kind_v = value_named(value)
    if kind_v.column == "dp":  # signed: one picture, the ECDF (pctce_cli.plot.delta_p)
        if kind != "ecdf":
            raise UsageError(f"plot {kind} with value dp: Δp is drawn as ecdf; summarize it over training with pctce summary value dp", param=("value", "value"))
        if subsets:
            raise UsageError(
                "plot ecdf with value dp and by: panels are drawn for KL only; keep one with subset VALUE, or summarize Δp with summary value dp by FIELD",
                param=("value", "by", "subset", "value", "by"),
            )
    elif kind_v.column != "kl":
        raise UsageError(f"plot value {value}: only ce, kl and dp are drawn", param="value")
    elif kind not in DIVERGENCE_KINDS:
        raise UsageError(f"plot {kind} with value kl: KL is drawn as {' and '.join(DIVERGENCE_KINDS)}", param="value")
    elif subsets and kind != "ecdf":
        raise UsageError(
            f"plot {kind} with value kl and by: one panel per subset is drawn on the KL ecdf only; draw them with plot ecdf "
            "value kl by FIELD, keep one with subset VALUE, or summarize them with summary value kl by FIELD",
            param=("value", "by", "value", "by", "subset", "value", "by"),
        )
    u = unit_named(unit)  # KL per word, the sum of its tokens' (bytes: refused by the value itself)
    for c in cks:
        kind_v.check(c, u)


def divergence_plot(kind: str, value: str, cks, *, summaries=None, vs=None, colors=None, runs=None, title: str = "", notes=None, subsets=None, unit: str = "token") -> object:
    """The Figure of ``plot ecdf|trajectory --value kl`` (checked by :func:`check_divergence_plot` first).

    ``ecdf`` overlays at most :data:`~pctce_cli.plot.inputs.MAX_OVERLAID` checkpoints (past it each run's last one, said in ``notes``);
    ``subsets`` (``--subset``, :class:`pctce_cli.analysis.subsets.Subsets`) keeps the trajectory to those documents
    (the ecdf of subsets: :func:`pctce_cli.plot.divergence_panels.kl_subset_figure`).
    """
    from pctce_cli.plot.figures import trajectory_figure
    from pctce_cli.plot.inputs import overlaid_titled

    if kind == "ecdf":
        drawn, more = overlaid_titled(cks, "plot ecdf", notes)
        return kl_ecdf_figure(kl_distributions(drawn, unit), colors, (title or "KL distribution") + more)
    names = kl_summary_names(summaries)
    rows = kl_trajectory_rows(cks, names, subsets, unit)
    label = functools.partial(kl_label, unit=unit)
    return trajectory_figure(rows, names, runs or {}, vs, colors, title or "KL percentiles over training", labels=label, ncols=2 if len(names) == 4 else None)


__all__ = [
    "DIVERGENCE_KINDS",
    "KLDistribution",
    "KL_FLOOR",
    "KL_TRAJECTORY",
    "check_divergence_plot",
    "divergence_plot",
    "divergence_title",
    "reference_names",
    "kl_axis",
    "kl_distribution",
    "kl_distributions",
    "kl_ecdf_figure",
    "kl_label",
    "kl_summary_names",
    "kl_trajectory_rows",
]
