"""`pctce demo`: score the shipped sample checkpoints and show what pctce is for.

The demo scores the two miniature studies in ``sample_data/`` (top-K
distillation and fine-tuning on fictional facts, see docs/sample-data.md), and the
teacher's recipe trained with a second tokenizer (``crosstok/``), into a score
directory, then reads them back with the analysis core and returns a few
compact reports, each with a plain-language reading computed from the numbers.
Re-running reuses the scores already in the directory.

Nothing here prints: the CLI renders the returned parts.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from pctce_cli.demo.common import REQUIRED, SUBSET, DemoPart, DemoResult
from pctce_cli.demo.crosstok import TITLE as CROSSTOK_TITLE
from pctce_cli.demo.crosstok import crosstok_part, crosstok_part_from_rows
from pctce_cli.demo.distill import distillation_parts, distillation_parts_from_table, subset_part_from_table
from pctce_cli.demo.finetune import correct_part_from_rows, finetune_parts, finetune_parts_from_table
from pctce_cli.demo.jobs import run_jobs
from pctce_cli.demo.kl import kl_job, kl_part
from pctce_cli.errors import DataError, ScoringError
from pctce_cli.threads import usable_cpus

__all__ = [
    "CROSSTOK_TITLE",
    "DemoPart",
    "DemoResult",
    "correct_part_from_rows",
    "crosstok_part_from_rows",
    "default_out",
    "distillation_parts_from_table",
    "find_sample_data",
    "finetune_parts_from_table",
    "program",
    "run_demo",
    "subset_part_from_table",
]


def default_out() -> Path:
    """The demo's score directory when ``--out`` is not given: ``$XDG_CACHE_HOME/pctce/demo``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pctce" / "demo"


def find_sample_data(path: str | Path | None = None) -> Path:
    """Locate the sample data: ``path``, ``$PCTCE_SAMPLE_DATA``, or ``sample_data/`` of this checkout.

    Raises:
        DataError: the directory is missing or lacks a file the demo needs.
    """
    if path is None:
        path = os.environ.get("PCTCE_SAMPLE_DATA")
    if path is None:
        # an editable install or a source checkout: sample_data/ sits next to the package
        path = Path(__file__).resolve().parents[2] / "sample_data"
        if not path.is_dir():
            raise DataError(
                f"no sample data at {path}; pass --sample-data DIR (the sample_data/ directory of a pctce checkout)"
            )
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"sample_data {path}: no such directory", param="sample_data")
    missing = [r for r in REQUIRED if not (path / r).exists()]
    if missing:
        raise DataError(
            f"--sample-data {path}: missing {', '.join(missing)} "
            "(expected the output of scripts/make_sample_data.py)"
        )
    return path


def run_demo(sample_data: str | Path | None, out: str | Path | None, reporter=None, force: bool = False) -> DemoResult:
    """Score the sample checkpoints (reusing earlier scores) and build the demo's reports.

    (Long the demo's script, read top to bottom in the order it prints.)

    Args:
        sample_data: The ``sample_data/`` directory (None: :func:`find_sample_data`).
        out: Score directory (None: :func:`default_out`); the distillation study
            goes to ``out/distill``, the fine-tuning study to ``out/finetune``, the
            runs with another tokenizer (``sample_data/crosstok/``, if present) to
            ``out/crosstok``, scored on the distillation study's validation data.
        reporter: Progress hooks of :func:`pctce_cli.scoring.run.score_checkpoints`.
        force: Rescore checkpoints already in ``out``.

    Raises:
        DataError: the sample data is missing or incomplete.
        ScoringError: a sample checkpoint failed to score.
    """
    from pctce_cli.scoring.options import ScoreOptions

    t0 = time.perf_counter()
    sample = find_sample_data(sample_data)
    out = Path(out) if out is not None else default_out()
    result = DemoResult(out=out, sample_data=sample)
    distill_runs = sorted(p for p in (sample / "distill").iterdir() if p.is_dir())
    crosstok_runs = sorted(p for p in (sample / "crosstok").iterdir() if p.is_dir()) if (sample / "crosstok").is_dir() else []
    val = ScoreOptions(data=[str(sample / "distill" / "val.jsonl")], out=out / "distill", force=force, subset_fields=(SUBSET,))
    jobs = [
        (distill_runs, val),
        (
            [sample / "finetune" / "facts"],
            ScoreOptions(
                data=[str(sample / "finetune" / "test.jsonl")],
                out=out / "finetune",
                prompt_field="prompt",
                completion_field="completion",
                task_accuracy=True,
                force=force,
            ),
        ),
    ]
    if crosstok_runs:  # the same data and options as the distillation study: word and byte units compare them
        jobs.append((crosstok_runs, replace(val, out=out / "crosstok")))
    jobs.append(kl_job(sample, out / "kl", force))  # the students against the teacher (--reference): their own store
    failed = []
    for job_results in run_jobs(jobs, reporter, workers=usable_cpus()):
        for r in job_results:
            if r.status == "failed":
                failed.append(r.message)
            elif r.status == "skipped":
                result.reused += 1
            else:
                result.scored += 1
    if failed:
        raise ScoringError(f"{len(failed)} sample checkpoint(s) failed; first: {failed[0]}")
    meta = sample / "meta.csv"
    result.parts += distillation_parts(out / "distill", meta)
    pair = []
    if crosstok_runs:
        result.parts.append(crosstok_part(out / "distill", out / "crosstok", meta))
        pair = [r["checkpoint"] for r in result.parts[-1].report.sections[0][1][:2]]  # the teacher, then the other tokenizer
    result.parts.append(kl_part(out / "kl"))
    result.parts += finetune_parts(out / "finetune", meta)
    d, f, c, meta = _shown(out / "distill"), _shown(out / "finetune"), _shown(out / "crosstok"), _shown(meta)
    k, kl_report = _shown(out / "kl"), _shown(out / "demo-kl.html")
    pctce, report = program(), _shown(out / "demo-distill.html")  # the report goes beside the scores, not into a checkout
    result.next_commands = [
        f"{pctce} concord {d} --meta {meta} --pairs",
        f"{pctce} summary {d} -c 'teacher.*' -c 'topk15.*' --ci 0.95 --vs teacher.checkpoint-1200",
        f"{pctce} compare --store {d} teacher.checkpoint-1200 topk15.checkpoint-1200",
        f"{pctce} report {d} --meta {meta} --vs teacher.checkpoint-1200 --out {report}",
        *([f"{pctce} compare {d}:{pair[0]} {c}:{pair[1]} --unit word"] if pair else []),
        f"{pctce} summary {k} --value kl --ci 0.95",
        f"{pctce} plot ecdf {k} --value kl --out {_shown(out / 'demo-kl.png')}",
        f"{pctce} report {k} --out {kl_report}",
        f"{pctce} select {f} --task substring_match",  # the accuracy the demo shows (`accuracy` is exact match)
    ]
    result.seconds = time.perf_counter() - t0
    return result


def program() -> str:
    """How to type pctce in this shell: ``pctce`` when it is on ``PATH``, else the console script's path.

    After the README's set-up (``.venv/bin/pip install …``) the virtualenv is not
    activated, so the suggested commands must name ``.venv/bin/pctce``.
    """
    script = Path(sys.executable).parent / "pctce"
    on_path = shutil.which("pctce")
    if not script.is_file() or (on_path and Path(on_path).resolve() == script.resolve()):
        return "pctce"
    return _shown(script)


def _shown(path: Path) -> str:
    """``path`` as a user would type it: relative to the working directory when inside it."""
    rel = os.path.relpath(Path(path).resolve(), Path.cwd())
    return str(path) if rel.startswith("..") else rel


# ---------------------------------------------------------------- readings
