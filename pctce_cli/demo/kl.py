"""The distillation students against their teacher: per-token KL from the teacher (``pctce score --reference``).

The shipped students were distilled from the shipped teacher with the full KL
or with its top-K logits only (sample_data/distill, docs/sample-data.md). Their
final checkpoints are scored against the teacher's final checkpoint, and the KL
summaries read as llama.cpp's report is: a top-K student, which never saw the
teacher's tail, may match it in the bulk and diverge in the tail. What the
numbers show is reported as they come, tuned to nothing. Not part of
``pctce demo`` yet (it adds a scoring of four small students, a few seconds).
"""

from __future__ import annotations

from pathlib import Path

from pctce_cli.analysis.divergence import divergence_summary
from pctce_cli.analysis.report import Report
from pctce_cli.catalog import resolve_checkpoints
from pctce_cli.fmt import short

STUDENTS = ("fullkl", "topk40", "topk15", "topk5")


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
    from pctce_cli.scoring.options import ScoreOptions
    from pctce_cli.scoring.run import score_checkpoints

    distill = Path(sample) / "distill"
    options = ScoreOptions(data=[str(distill / "val.jsonl")], out=Path(out), reference=str(_final(distill / "teacher")), force=force)
    failed = [r.message for r in score_checkpoints([_final(distill / s) for s in STUDENTS], options, reporter) if r.status == "failed"]
    if failed:
        raise ScoringError(f"{len(failed)} student(s) failed; first: {failed[0]}")
    report = divergence_summary(resolve_checkpoints([out]), "kl")
    report.notes += tail_reading(report.sections[0][1])
    return report


def tail_reading(rows: list[dict]) -> list[str]:
    """How heavy each student's KL tail is: p99.9 / p50, and whether top-K students' tails are heavier than full-KL's.

    Example:
        >>> tail_reading([{"checkpoint": "fullkl.c", "p50": 0.1, "p99.9": 0.5, "mean": 0.12}, {"checkpoint": "topk5.c", "p50": 0.1, "p99.9": 2.0, "mean": 0.2}])[-1]
        'Every top-K student has a heavier KL tail (p99.9 / p50) than the full-KL student (×5.000): topk5.c (×20.000).'
    """
    ratio = {r["checkpoint"]: r["p99.9"] / r["p50"] if r["p50"] > 0 else float("inf") for r in rows}
    lines = [f"{ck}: mean KL {short(r['mean'])} nats, p50 {short(r['p50'])}, p99.9 {short(r['p99.9'])} (p99.9 / p50 ×{short(ratio[ck])})." for ck, r in ((r["checkpoint"], r) for r in rows)]
    full = [ck for ck in ratio if ck.startswith("fullkl")]
    topk = [ck for ck in ratio if ck.startswith("topk")]
    if full and topk:
        f = ratio[full[0]]
        heavier = [ck for ck in topk if ratio[ck] > f]
        which = "Every" if len(heavier) == len(topk) else f"{len(heavier)} of {len(topk)}"
        lines.append(
            f"{which} top-K student{'s' if len(topk) > 1 and which != 'Every' else ''} has a heavier KL tail (p99.9 / p50) than the full-KL student (×{short(f)}): "
            + (", ".join(f"{ck} (×{short(ratio[ck])})" for ck in heavier) or "none")
            + "."
        )
    return lines


__all__ = ["STUDENTS", "distill_kl", "tail_reading"]
