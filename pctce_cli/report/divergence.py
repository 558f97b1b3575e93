"""The report's KL section: the divergence from a reference model, when the store holds it (``pctce score --reference``).

Figures first (the KL percentiles over training when the checkpoints have
steps; the ECDF of KL and its tail), then the KL summary table on demand, as
the other sections. Each checkpoint's ``doc``, ``kl`` and ``same_top1`` columns
are read once; a store scored without a reference gives no section at all, so
the report of a CE-only store is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pctce_cli import plot
from pctce_cli.analysis.divergence import DIVERGENCE_PERCENTILES, divergence_row
from pctce_cli.report.doc import Finding, Notes, Section, Table, Text
from pctce_cli.report.story import on_demand
from pctce_cli.units import unit_named
from pctce_cli.values import KL

SECTION = ("divergence", "Divergence from the reference (KL)")


@dataclass
class KLMeasured:
    """What the KL section needs, from one read of each checkpoint scored with a reference.

    Attributes:
        cks: The checkpoints that hold divergence columns.
        rows: Their KL summary rows (mean, p50 … p99.9, max, same_top1), as ``pctce summary --value kl``.
        dists: Their :class:`~pctce_cli.plot.divergence.KLDistribution` (for the ECDF).
        reference: The reference model's path(s), for the section's introduction.
        short: The same by the last two parts of each path (``teacher/checkpoint-1200``), for the finding.
        left_out: Ids of the selected checkpoints scored without a reference.
    """

    cks: list
    rows: list[dict] = field(default_factory=list)
    dists: list = field(default_factory=list)
    reference: str = ""
    short: str = ""
    left_out: list[str] = field(default_factory=list)


def measure_divergence(cks) -> KLMeasured | None:
    """The KL of every selected checkpoint that was scored with a reference (None when none was)."""
    from pctce_cli.plot.divergence import kl_distribution, reference_names
    from pctce_cli.store import load_scores

    with_ref = [c for c in cks if getattr(c.manifest, "reference", None) is not None]
    if not with_ref:
        return None
    refs = sorted({str((c.manifest.reference or {}).get("path", "?")) for c in with_ref})
    m = KLMeasured(with_ref, reference=", ".join(refs), short=", ".join(reference_names(with_ref)), left_out=[c.id for c in cks if c not in with_ref])
    for c in with_ref:
        s = load_scores(c.root, c.partition, columns=("doc", "kl", "same_top1"))
        r = divergence_row(s.kl, s.doc, s.same_top1, DIVERGENCE_PERCENTILES)
        n = r.pop("n")
        m.rows.append({"checkpoint": c.id, "step": c.step, "group": c.group, "tokens": n, "documents": int(len(s.docs)) if s.docs is not None else 0, **r})
        if n:
            m.dists.append(kl_distribution(c.id, s.kl))
    return m


def divergence_findings(kl: KLMeasured | None) -> list[Finding]:
    """The KL reading (:func:`pctce_cli.report.findings.kl_finding`), or nothing without divergence."""
    from pctce_cli.report.findings import kl_finding

    from pctce_cli.plot.divergence import reference_names

    if kl is None:
        return []
    # checkpoints scored against different references are ranked only among their own reference's
    groups: dict[str, list] = {}
    for c, row in zip(kl.cks, kl.rows):
        groups.setdefault(str((c.manifest.reference or {}).get("path", "?")), []).append((c, row))
    found = [kl_finding([r for _, r in g], reference_names([c for c, _ in g])[0]) for _, g in sorted(groups.items())]
    return [f for f in found if f is not None]


def divergence_sections(kl: KLMeasured | None, plots, colors, runs, scored: str, subset: str = "") -> list[Section]:
    """The KL section (none without divergence): the trajectory of KL percentiles, the ECDF and its tail, the table on demand.

    Args:
        kl: From :func:`measure_divergence`.
        plots: The report's renderer (``image(name, caption, make)``).
        colors, runs: Checkpoint and run colors, checkpoint → run.
        scored: What was scored, for titles.
        subset: The report's ``--subset`` (described), which this section does not apply: it says so.
    """
    from pctce_cli.plot.divergence import KL_TRAJECTORY, divergence_title, kl_ecdf_figure, kl_label

    if kl is None:
        return []
    sec = Section(*SECTION)
    sec.blocks.append(
        Text(
            f"How far each checkpoint's predictions are from the reference model {kl.reference}: per-target KL(p_ref ‖ p_model) over the "
            "full vocabulary in nats, 0 where the two agree (docs/definitions.md#divergence-from-a-reference-model; docs/kl.md). "
            "The tail is what a distilled or quantized model is judged by: how often a target moves far from the reference."
            + (f" Every document, not only subset {subset}: for the subset's KL, pctce summary DIR --value kl --subset VALUE "
               "and pctce plot ecdf DIR --value kl --subset VALUE." if subset else "")
        )
    )
    scored_kl = plot.what_was_scored(kl.cks) if kl.left_out else scored
    stepped = [runs.get(c.id) or c.id for c in kl.cks if c.step is not None]
    if any(stepped.count(r) > 1 for r in stepped):  # a line needs two steps of one run
        title = divergence_title("trajectory", kl.cks, scored_kl)
        make = lambda: plot.trajectory_figure(kl.rows, list(KL_TRAJECTORY), runs, None, colors, title, labels=kl_label, ncols=2)  # noqa: E731
        _add(sec, plots.image("kl-trajectory", "KL percentiles p50, p90, p99 and p99.9 over training, one line per run", make))
    else:
        sec.blocks.append(Text("No KL trajectory: no run has two checkpoints with a training step."))
    drawn, note = plot.overlaid(kl.cks, "The KL ECDF")
    ids = {c.id for c in drawn}
    dists = [d for d in kl.dists if d.id in ids]
    if dists:
        title = divergence_title("ecdf", kl.cks, scored_kl)
        caption = "KL distributions: ECDF on a log KL axis (◆ mean, ● median) and the tail, the fraction of targets with KL ≥ x on log-log axes (■ p99, ▲ p99.9)"
        _add(sec, plots.image("kl-ecdf", caption, lambda: kl_ecdf_figure(dists, colors, title)))
    if note:
        sec.blocks.append(Text(note.replace("--checkpoint GLOB", "pctce plot ecdf DIR --value kl --checkpoint GLOB") + "."))
    notes = [f"Not scored with a reference, so not in this section: {', '.join(kl.left_out)} (pctce score CHECKPOINT --reference REF --force)."] if kl.left_out else []
    notes.append("same_top1: the fraction of targets where both models pick the same top token. Intervals: pctce summary DIR --value kl --ci 0.95.")
    _add(sec, on_demand("KL table", [Table(unit_named("token").title(None, KL), kl.rows), Notes(notes)]))
    return [sec]


def _add(sec: Section, block) -> None:
    if block is not None:
        sec.blocks.append(block)


__all__ = ["KLMeasured", "SECTION", "divergence_findings", "divergence_sections", "measure_divergence"]
