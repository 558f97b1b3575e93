"""The distillation students against their teacher: per-token KL from the teacher (``pctce score --reference``).

The shipped students were distilled from the shipped teacher with the full KL
or with its top-K logits only (sample_data/distill, docs/sample-data.md). Their
final checkpoints are scored against the teacher's final checkpoint, and the KL
summaries read as llama.cpp's report is: a top-K student, which never saw the
teacher's tail, may match it in the bulk and diverge in the tail. What the
numbers show is reported as they come, tuned to nothing. ``pctce demo`` runs
:func:`kl_job` beside its other scoring jobs (four small students with the
teacher, a few seconds) and shows :func:`kl_part`.
"""

from __future__ import annotations

from pathlib import Path

from pctce_cli.analysis.divergence import divergence_summary
from pctce_cli.analysis.report import Report
from pctce_cli.catalog import resolve_checkpoints
from pctce_cli.demo.common import DemoPart
from pctce_cli.fmt import short

STUDENTS = ("fullkl", "topk40", "topk15", "topk5")
TITLE = "Distillation: the students' KL from the teacher"
# the KL table's columns in the demo (llama.cpp's KLD report: mean, median, upper tail, same top token)
COLUMNS = ("mean", "p50", "p90", "p99", "p99.9", "max", "same_top1")


def _final(run: Path) -> Path:
    """The checkpoint of a run directory with the highest step."""
    return max((p for p in run.iterdir() if p.name.startswith("checkpoint-")), key=lambda p: int(p.name.split("-")[1]))


def distill_kl(sample: Path, out: Path, reporter=None, force: bool = False) -> Report:
    """Score the students' final checkpoints against the teacher's and summarize their KL, with a reading.

    Args:
        sample: The sample_data directory.
        out: A score directory for these scores (its own: they carry a reference).
        reporter: Progress hooks of :func:`pctce_cli.scoring.run.score_checkpoints`.
        force: Rescore.

    Raises:
        ScoringError: a student failed to score.
    """
    from pctce_cli.errors import ScoringError
    from pctce_cli.scoring.run import score_checkpoints

    paths, options = kl_job(sample, out, force)
    failed = [r.message for r in score_checkpoints(paths, options, reporter) if r.status == "failed"]
    if failed:
        raise ScoringError(f"{len(failed)} student(s) failed; first: {failed[0]}")
    report = divergence_summary(resolve_checkpoints([out]), "kl")
    report.notes += tail_reading(report.sections[0][1])
    return report


def kl_job(sample: Path, out: Path, force: bool = False) -> tuple[list[Path], object]:
    """The scoring job of the students' final checkpoints against the teacher's: ``(checkpoint paths, ScoreOptions)``."""
    from pctce_cli.scoring.options import ScoreOptions

    distill = Path(sample) / "distill"
    options = ScoreOptions(data=[str(distill / "val.jsonl")], out=Path(out), reference=str(_final(distill / "teacher")), force=force)
    return [_final(distill / s) for s in STUDENTS], options


def kl_part(out: Path) -> DemoPart:
    """The demo's KL heading: each student's KL summaries (the columns of llama.cpp's report, one row per student, K falling) and their reading."""
    cks = resolve_checkpoints([out])
    report = divergence_summary(cks, "kl")
    title, rows = report.sections[0]
    order = {s: k for k, s in enumerate(STUDENTS)}
    rows = sorted(rows, key=lambda r: order.get(r["checkpoint"].split(".")[0], len(order)))
    ref = Path(str(cks[0].manifest.reference.get("path", "?")))
    steps = sorted({r["step"] for r in rows if r["step"] is not None})
    report.sections = [(title, [{"student": r["checkpoint"].split(".")[0], **{k: r[k] for k in COLUMNS}} for r in rows])]
    report.notes = [
        f"KL(p_teacher ‖ p_student) per target in nats, over the full vocabulary, of each student's final checkpoint (step {', '.join(map(str, steps))}) "
        f"from the teacher's ({ref.parent.name}/{ref.name}) on distill/val.jsonl; same_top1: the fraction of targets where both pick the same top token "
        "(docs/kl.md).",
        "p99.9 / p50 (how heavy the tail is relative to the median): "
        + ", ".join(f"{r['checkpoint'].split('.')[0]} ×{r['p99.9'] / r['p50']:.1f}" if r["p50"] > 0 else f"{r['checkpoint'].split('.')[0]} ∞" for r in rows)
        + ".",
    ] + tail_reading(rows)[len(rows) :]  # the comparisons (each student's own line repeats the table)
    return DemoPart(TITLE, report)


def tail_reading(rows: list[dict]) -> list[str]:
    """How heavy each student's KL tail is: p99.9 / p50, and whether top-K students' tails are heavier than full-KL's.

    Example:
        >>> tail_reading([{"checkpoint": "fullkl.c", "p50": 0.1, "p99.9": 0.5, "mean": 0.12}, {"checkpoint": "topk5.c", "p50": 0.1, "p99.9": 2.0, "mean": 0.2}])[-1]
        'Every top-K student has a heavier KL tail (p99.9 / p50) than the full-KL student (×5.0): topk5.c (×20.0).'
    """
    ratio = {r["checkpoint"]: r["p99.9"] / r["p50"] if r["p50"] > 0 else float("inf") for r in rows}
    lines = [f"{ck}: mean KL {short(r['mean'])} nats, p50 {short(r['p50'])}, p99.9 {short(r['p99.9'])} (p99.9 / p50 ×{ratio[ck]:.1f})." for ck, r in ((r["checkpoint"], r) for r in rows)]
    full = [ck for ck in ratio if ck.startswith("fullkl")]
    topk = [ck for ck in ratio if ck.startswith("topk")]
    if full and topk:
        f, by = ratio[full[0]], {r["checkpoint"]: r for r in rows}
        above = [ck for ck in topk if by[ck]["p50"] > by[full[0]]["p50"] and by[ck]["p99.9"] > by[full[0]]["p99.9"]]
        lines.append(f"{_which(above, topk)} top-K student{_s(above, topk)} has a higher KL than the full-KL student at both p50 and p99.9.")
        heavier = [ck for ck in topk if ratio[ck] > f]
        if not heavier:
            lines.append(f"No top-K student has a heavier KL tail (p99.9 / p50) than the full-KL student (×{f:.1f}): relative to their median, their tails are lighter.")
        else:
            lines.append(
                f"{_which(heavier, topk)} top-K student{_s(heavier, topk)} has a heavier KL tail (p99.9 / p50) than the full-KL student (×{f:.1f}): "
                + ", ".join(f"{ck} (×{ratio[ck]:.1f})" for ck in heavier)
                + "."
            )
    return lines


def _which(some: list, of: list) -> str:
    return "Every" if len(some) == len(of) else "No" if not some else f"{len(some)} of {len(of)}"


def _s(some: list, of: list) -> str:
    # "1 of 2 top-K students has", "Every top-K student has", "No top-K student has"
    return "s" if len(of) > 1 and 0 < len(some) < len(of) else ""


__all__ = ["COLUMNS", "STUDENTS", "TITLE", "distill_kl", "kl_job", "kl_part", "tail_reading"]
