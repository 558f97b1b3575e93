"""`pctce plot ecdf --value kl --by FIELD` and `--subset`: the KL from a reference model per subset.

With ``--subset`` the kept documents' targets are drawn as :func:`~pctce_cli.plot.divergence.kl_ecdf_figure`
draws every target. With ``--by`` each subset gets a panel of the KL tail, the fraction of targets with
KL ≥ x on log-log axes (the right half of the whole-data figure): what a distillation or quantization study
reads per domain is how far the tail reaches there, p99 and p99.9 marked on it. The panels share one log KL
axis (:func:`~pctce_cli.plot.divergence.kl_axis`), so a domain whose tail reaches further sits further right;
at most :data:`~pctce_cli.plot.panels.MAX_PANELS` panels, the subsets with the most targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from pctce_cli.analysis.subsets import Subsets, no_targets, split_scores
from pctce_cli.plot.divergence import KLDistribution, kl_axis, kl_distribution, kl_ecdf_figure, unit_words, word_kl
from pctce_cli.plot.inputs import overlaid_titled
from pctce_cli.plot.panels import _grid, _legend, cap_panels
from pctce_cli.plot.theme import color_map, style


def kl_subset_figure(cks, subsets: Subsets, colors: Mapping[str, str], title: str, notes: list, unit: str = "token") -> object:
    """``plot ecdf --value kl`` with ``--subset`` (the kept documents' ECDF and tail) or ``--by`` (a tail panel per subset, at most MAX_PANELS).

    Overlays at most :data:`~pctce_cli.plot.inputs.MAX_OVERLAID` checkpoints (past it each run's last one); what is
    left out is said in ``notes``.

    Raises:
        UsageError: the kept documents have no scored targets, or a ``--subset`` value matches no document.
    """
    drawn, more = overlaid_titled(cks, "plot ecdf", notes)
    title += more
    panels, ns = kl_subset_distributions(drawn, subsets, unit)
    if not panels:
        raise no_targets(subsets)
    if not subsets.split:
        notes += ns
        return kl_ecdf_figure(panels[0][1], colors, title)
    panels, capped = cap_panels(panels, subsets.field)
    notes += ns + capped
    return subset_kl_tail_figure(panels, subsets.field, colors, title)


def kl_subset_distributions(cks, subsets: Subsets, unit: str = "token") -> tuple[list[tuple[str | None, list[KLDistribution]]], list[str]]:
    """Each checkpoint's :class:`~pctce_cli.plot.divergence.KLDistribution` per subset (``--by``), or of the kept documents (``--subset``).

    With ``unit="word"`` of the subset's words (:func:`~pctce_cli.plot.divergence.word_kl`).

    Returns:
        ``(panels, notes)``: ``[(subset label, one distribution per checkpoint with targets there)]`` in label
        order (one ``(None, …)`` entry without ``--by``), and what was left out (:func:`~pctce_cli.analysis.subsets.split_scores`).

    Raises:
        UsageError: a ``--subset`` value that matches no document.
    """
    from pctce_cli.store import load_scores

    by_label: dict[str | None, list[KLDistribution]] = {}
    notes: list[str] = []
    for c in cks:
        s = load_scores(c.root, c.partition, columns=("doc", "kl"))
        parts, ns = split_scores(c.id, s.doc, s.docs, subsets)
        notes += [n for n in ns if n not in notes]
        for p in parts:
            kl = word_kl(c, s.kl, s.doc, p) if unit == "word" else p.take(s.kl)
            if kl.size:
                by_label.setdefault(p.label, []).append(kl_distribution(c.id, kl, unit))
    labels = sorted(by_label, key=lambda x: (x is not None, x))
    return [(k, by_label[k]) for k in labels], notes


def subset_kl_tail_figure(panels: Sequence[tuple[str, Sequence[KLDistribution]]], field: str, colors: Mapping[str, str] | None = None, title: str = "") -> object:
    """Small multiples of the KL tail, the fraction of targets with KL ≥ x (log-log), one panel per subset, one line per checkpoint.

    Returns:
        A Figure with one visible Axes per panel; each holds one labeled line per checkpoint, p99 as a square and
        p99.9 as a triangle (the latter with at least 1,000 targets), and dotted guides at 1 % and 0.1 % where
        the panel has the targets to reach them.
    """
    from matplotlib.lines import Line2D

    ids = list(dict.fromkeys(d.id for _, ds in panels for d in ds))
    colors = colors or color_map(ids)
    lo, hi, note = kl_axis([d for _, ds in panels for d in ds])
    n_max = max(d.n for _, ds in panels for d in ds)
    per, plural = unit_words(panels[0][1][0].unit)
    with style():
        fig, axes = _grid(len(panels), 3.6, 2.9)
        for ax, (label, ds) in zip(axes, panels):
            for d in ds:
                c = colors[d.id]
                ax.plot(np.maximum(d.x, lo), d.tail, drawstyle="steps-pre", color=c, lw=1.4, label=d.id)
                marks = dict(ls="none", color=c, mec="black", mew=0.5, ms=5, label="_mark", zorder=3)
                ax.plot([max(d.p99, lo)], [0.01], marker="s", **marks)
                if d.n >= 1000:  # p99.9 of fewer targets is an interpolation between the last few
                    ax.plot([max(d.p999, lo)], [0.001], marker="^", **marks)
            for y in (0.01, 0.001):
                if y >= 1 / min(d.n for d in ds):
                    ax.axhline(y, color="grey", ls=":", lw=0.8, label="_guide")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(lo, hi)
            ax.set_ylim(0.5 / n_max, 1.5)
            ax.set_title(f"{field} = {label} ({max(d.n for d in ds):,} {plural})", fontsize=9)
        for ax in axes[-min(len(axes), 4):]:
            ax.set_xlabel(f"{per} KL (nats, log)")
        axes[0].set_ylabel(f"fraction of {plural} with KL ≥ x")
        if note:  # bottom left, below the curves, which fall from the top left
            axes[0].text(0.03, 0.03, note, transform=axes[0].transAxes, va="bottom", fontsize=7, color="dimgrey")
        mark = dict(color="grey", ls="none", mec="black", mew=0.5)
        marked = (("s", "p99"), ("^", "p99.9")) if any(d.n >= 1000 for _, ds in panels for d in ds) else (("s", "p99"),)
        _legend(fig, ids, colors, [Line2D([], [], marker=m, label=s, **mark) for m, s in marked])
        fig.suptitle(title or f"KL tail by {field}")
    return fig
