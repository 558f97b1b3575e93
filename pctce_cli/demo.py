"""`pctce demo`: score the shipped sample checkpoints and show what pctce is for.

The demo scores the two miniature studies in ``sample_data/`` (top-K
distillation and fine-tuning on fictional facts, see docs/sample-data.md) into a
score directory, then reads them back with the analysis core and returns a few
compact reports, each with a plain-language reading computed from the numbers.
Re-running reuses the scores already in the directory.

Nothing here prints: the CLI renders the returned parts.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pctce_cli.analysis.report import Report, reading
from pctce_cli.analysis.select import select_report
from pctce_cli.analysis.summary import summaries_table
from pctce_cli.catalog import resolve_checkpoints
from pctce_cli.fmt import short
from pctce_cli.errors import DataError, ScoringError

SUMMARIES = ["mean", "p50", "p90", "p95", "p99"]
CONCORDANCE_SET = ["mean", "p50", "p95"]
# what the demo needs from a sample-data directory (written by scripts/make_sample_data.py)
REQUIRED = ("meta.csv", "distill/val.jsonl", "finetune/test.jsonl", "finetune/facts")
TASK = "acc_substring_match"  # the build script's accuracy: the answer occurs in the greedy output
SUBSET = "genre"  # the distillation validation set's subset field: comedy, history, tragedy, poem


@dataclass
class DemoPart:
    """One heading of the demo: its tables and readings."""

    title: str
    report: Report


@dataclass
class DemoResult:
    """What :func:`run_demo` did and found."""

    out: Path
    sample_data: Path
    scored: int = 0
    reused: int = 0
    seconds: float = 0.0
    parts: list[DemoPart] = field(default_factory=list)
    next_commands: list[str] = field(default_factory=list)


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
        path = Path(__file__).resolve().parent.parent / "sample_data"
        if not path.is_dir():
            raise DataError(
                f"no sample data at {path}; pass --sample-data DIR (the sample_data/ directory of a pctce checkout)"
            )
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"--sample-data {path}: no such directory")
    missing = [r for r in REQUIRED if not (path / r).exists()]
    if missing:
        raise DataError(
            f"--sample-data {path}: missing {', '.join(missing)} "
            "(expected the output of scripts/make_sample_data.py)"
        )
    return path


def run_demo(sample_data: str | Path | None, out: str | Path | None, reporter=None, force: bool = False) -> DemoResult:
    """Score the sample checkpoints (reusing earlier scores) and build the demo's reports.

    Args:
        sample_data: The ``sample_data/`` directory (None: :func:`find_sample_data`).
        out: Score directory (None: :func:`default_out`); the distillation study
            goes to ``out/distill``, the fine-tuning study to ``out/finetune``.
        reporter: Progress hooks of :func:`pctce_cli.scoring.run.score_checkpoints`.
        force: Rescore checkpoints already in ``out``.

    Raises:
        DataError: the sample data is missing or incomplete.
        ScoringError: a sample checkpoint failed to score.
    """
    from pctce_cli.scoring.options import ScoreOptions
    from pctce_cli.scoring.run import score_checkpoints

    t0 = time.perf_counter()
    sample = find_sample_data(sample_data)
    out = Path(out) if out is not None else default_out()
    result = DemoResult(out=out, sample_data=sample)
    distill_runs = sorted(p for p in (sample / "distill").iterdir() if p.is_dir())
    jobs = [
        (distill_runs, ScoreOptions(data=[str(sample / "distill" / "val.jsonl")], out=out / "distill", force=force, subset_fields=(SUBSET,))),
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
    failed = []
    for paths, options in jobs:
        for r in score_checkpoints(paths, options, reporter):
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
    result.parts += finetune_parts(out / "finetune", meta)
    d, f, meta = _shown(out / "distill"), _shown(out / "finetune"), _shown(meta)
    pctce, report = program(), _shown(out / "demo-distill.html")  # the report goes beside the scores, not into a checkout
    result.next_commands = [
        f"{pctce} concord {d} --meta {meta} --pairs",
        f"{pctce} summary {d} -c 'teacher.*' -c 'topk15.*' --ci 0.95 --vs teacher.checkpoint-1200",
        f"{pctce} compare --store {d} teacher.checkpoint-1200 topk15.checkpoint-1200",
        f"{pctce} report {d} --meta {meta} --out {report}",
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


def _table(store: Path, meta: Path):
    cks = resolve_checkpoints([store], meta=meta)
    table = summaries_table(cks, None, SUMMARIES)
    if "run" not in table.columns:  # checkpoints missing from meta.csv: fall back to the run directory
        table["run"] = [c.run for c in cks]
    return table


def _rows(table, columns) -> list[dict]:
    return table[[c for c in columns if c in table.columns]].to_dict(orient="records")


def _pair_concordance(sub, a: str, b: str) -> float:
    from pctce_cli.stats.concordance import concordance

    return concordance(sub[[a, b]], [a, b]).c


def concordance_rows(groups: list[tuple[str, object]]) -> list[dict]:
    """C(mean, p50), C(mean, p95) and C_S over {mean, p50, p95} for each named sub-table."""
    from pctce_cli.stats.concordance import concordance

    rows = []
    for name, sub in groups:
        res = concordance(sub[CONCORDANCE_SET], CONCORDANCE_SET)
        rows.append(
            {
                "checkpoints": name,
                "n": len(sub),
                "C(mean,p50)": _pair_concordance(sub, "mean", "p50"),
                "C(mean,p95)": _pair_concordance(sub, "mean", "p95"),
                "C_S": res.c,
            }
        )
    return rows


def distillation_parts(store: Path, meta: Path) -> list[DemoPart]:
    """Summary, concordance and selection of the distillation miniature, and its genres, with readings."""
    from pctce_cli.analysis.subsets import Subsets

    t = _table(store, meta)
    cks = resolve_checkpoints([store], meta=meta)
    by = summaries_table(cks, None, SUMMARIES, subsets=Subsets(SUBSET, split=True))
    by["run"] = by["checkpoint"].map(dict(zip(t["checkpoint"], t["run"])))
    return distillation_parts_from_table(t) + [subset_part_from_table(t, by)]


def subset_part_from_table(t, by) -> DemoPart:
    """The distillation study by genre: do the mean/median split and the concordance hold in every genre?

    Args:
        t: The pooled table (one row per checkpoint: ``checkpoint, run, group, step`` + SUMMARIES).
        by: The same per genre (a ``subset`` column).
    """
    family_ids = set(t.loc[(t["group"] == "distilled") | (t["run"] == "teacher"), "checkpoint"])
    control_ids = set(t.loc[t["group"] == "controls", "checkpoint"])
    last = t["step"] == t.groupby("run")["step"].transform("max")
    fam_final = t[last & t["checkpoint"].isin(family_ids)]
    a = fam_final.loc[fam_final["mean"].idxmin(), "checkpoint"]  # the mean's pick (pooled)
    b = fam_final.loc[fam_final["p50"].idxmin(), "checkpoint"]  # the median's pick (pooled)
    picks, rows, split, not_split = [], [], [], []
    for genre, sub in by.groupby("subset", sort=True):
        ra, rb = sub[sub["checkpoint"] == a].iloc[0], sub[sub["checkpoint"] == b].iloc[0]
        fam, ctl = sub[sub["checkpoint"].isin(family_ids)], sub[sub["checkpoint"].isin(control_ids)]
        picks += [{SUBSET: genre, "documents": int(r["documents"]), "checkpoint": r["checkpoint"], "mean": r["mean"], "p50": r["p50"]} for r in (ra, rb)]
        rows.append({SUBSET: genre, "documents": int(ra["documents"]), "family": _pair_concordance(fam, "mean", "p50"), "controls": _pair_concordance(ctl, "mean", "p50")})
        (split if rb["p50"] < ra["p50"] and rb["mean"] > ra["mean"] else not_split).append(genre)
    report = Report()
    report.add(f"The pooled mean's and median's picks, by {SUBSET} (pctce summary --by {SUBSET})", picks)
    report.add(f"C(mean, p50) within each {SUBSET} (pctce concord --by {SUBSET})", rows)
    if a == b:
        report.notes.append(f"Mean and median pick the same checkpoint ({a}), so there is no split to look for by {SUBSET}.")
    elif not not_split:
        report.notes.append(f"In every {SUBSET} ({', '.join(split)}) {b} has the lower median and {a} the lower mean: the split is not one {SUBSET}'s doing.")
    else:
        report.notes.append(f"{b} has the lower median and {a} the lower mean in {', '.join(split) or 'no ' + SUBSET}, but not in {', '.join(not_split)}.")
    for col, who in (("controls", "controls"), ("family", "distillation family")):
        lo, hi = min(rows, key=lambda r: r[col]), max(rows, key=lambda r: r[col])
        report.notes.append(f"{who}: C(mean, p50) ranges from {short(lo[col])} ({lo[SUBSET]}, {lo['documents']} documents) to {short(hi[col])} ({hi[SUBSET]}).")
    hardest = by.loc[by.groupby("checkpoint")["mean"].idxmax(), "subset"]
    common = hardest.mode().iloc[0]
    share = float((hardest == common).mean())
    how_many = f"every one of the {hardest.size}" if share == 1 else f"{share:.0%} of the {hardest.size}"
    report.notes.append(f"{common} is the {SUBSET} with the highest mean CE for {how_many} checkpoints.")
    return DemoPart(f"Distillation miniature: by {SUBSET}", report)


def distillation_parts_from_table(t) -> list[DemoPart]:
    """:func:`distillation_parts` on a table of summaries (``checkpoint, run, group, step`` + SUMMARIES)."""
    family = t[(t["group"] == "distilled") | (t["run"] == "teacher")].reset_index(drop=True)
    controls = t[t["group"] == "controls"].reset_index(drop=True)
    last = t["step"] == t.groupby("run")["step"].transform("max")
    final = t[last].sort_values("mean").reset_index(drop=True)
    fam_final = final[final["checkpoint"].isin(family["checkpoint"])]

    summary = Report()
    summary.add("Final checkpoints, per-token CE in nats (sorted by mean)", _rows(final, ["checkpoint", "group", "mean", "p50", "p95", "p99"]))
    by_mean = fam_final.loc[fam_final["mean"].idxmin()]
    by_p50 = fam_final.loc[fam_final["p50"].idxmin()]
    if by_mean["checkpoint"] != by_p50["checkpoint"]:
        summary.notes.append(
            f"In the distillation family (teacher + KL students) the lowest mean CE is {by_mean['checkpoint']} "
            f"({short(by_mean['mean'])}), but the lowest median is {by_p50['checkpoint']} "
            f"(p50 {short(by_p50['p50'])} vs {short(by_mean['p50'])}) whose mean is {short(by_p50['mean'])}: "
            "mean and median pick different checkpoints."
        )
    else:
        summary.notes.append(f"Mean and median both pick {by_mean['checkpoint']} in the distillation family.")
    lo, hi = fam_final.loc[fam_final["p95"].idxmin()], fam_final.loc[fam_final["p95"].idxmax()]
    p50_span = fam_final["p50"].max() - fam_final["p50"].min()
    summary.notes.append(
        f"Across the family's final checkpoints p50 spans {short(p50_span, 2)} nats while p95 spans "
        f"{short(hi['p95'] - lo['p95'], 2)}: from {short(lo['p95'], 2)} ({lo['checkpoint']}) to {short(hi['p95'], 2)} ({hi['checkpoint']})."
    )
    split = []
    for run, sub in family.groupby("run", sort=False):
        sub = sub.sort_values("step")
        if len(sub) >= 2 and sub["mean"].iloc[-1] > sub["mean"].iloc[0] and sub["p50"].iloc[-1] < sub["p50"].iloc[0]:
            split.append(f"{run} (mean {short(sub['mean'].iloc[0])} → {short(sub['mean'].iloc[-1])}, p50 {short(sub['p50'].iloc[0])} → {short(sub['p50'].iloc[-1])})")
    if split:
        summary.notes.append("Training longer makes mean CE worse and median CE better in " + "; ".join(split) + ".")

    concord = Report()
    groups = [
        ("distillation family (teacher + students)", family),
        ("controls (teacher + from-scratch runs)", controls),
        ("all", t),
    ]
    rows = concordance_rows(groups)
    concord.add("Concordance across checkpoints (all steps): 1 = every pair ranked alike", rows)
    for r in rows[:2]:
        concord.notes.append(f"{r['checkpoints']}: C(mean, p50) = {short(r['C(mean,p50)'])}, C_S = {short(r['C_S'])} — {reading(r['C_S'], 0.8, 0.6)}.")

    select = select_report(family, SUMMARIES)
    picks = select.sections[0][1]
    chosen = {p["rule"].removeprefix("best by "): p["checkpoint"] for p in picks}
    select.sections = [("Distillation family: the checkpoint each rule picks", [{"rule": p["rule"], "checkpoint": p["checkpoint"], **{s: p[s] for s in SUMMARIES}} for p in picks])]
    distinct = sorted(set(chosen.values()), key=list(chosen.values()).index)
    if len(distinct) > 1:
        select.notes.append(
            "Rules disagree: " + "; ".join(f"{', '.join(k for k, v in chosen.items() if v == c)} → {c}" for c in distinct) + "."
        )
    else:
        select.notes.append(f"Every rule picks {distinct[0]}.")
    select.notes.append(
        "These checkpoints have no task metric, so the demo cannot say which rule is right; "
        "with a task metric (`select --task`) pctce reports each rule's regret."
    )
    return [
        DemoPart("Distillation miniature: summaries", summary),
        DemoPart("Distillation miniature: concordance", concord),
        DemoPart("Distillation miniature: selection", select),
    ]


def finetune_parts(store: Path, meta: Path) -> list[DemoPart]:
    """Per-epoch summaries with task accuracy, concordance and selection by accuracy."""
    t = _table(store, meta)
    t["accuracy"] = t[TASK]
    return finetune_parts_from_table(t)


def _change(a: float, b: float) -> str:
    """``a → b`` as a relative change in words: ``falls 84% (3.599 → 0.568)``."""
    if a == 0:
        return f"goes {short(a)} → {short(b)}"
    rel = (b - a) / abs(a)
    verb = "falls" if rel < 0 else "rises"
    return f"{verb} {abs(rel):.0%} ({short(a)} → {short(b)})"


def finetune_parts_from_table(t) -> list[DemoPart]:
    """:func:`finetune_parts` on a table of summaries (``checkpoint, step, accuracy`` + SUMMARIES).

    Every reading is computed from the table: which epoch each summary and accuracy
    pick, whether mean CE rises after its best epoch (the paper's late-epoch effect)
    and what accuracy and the median do meanwhile, how the bulk (p50) and the tail (p95)
    move over training, and each selection rule's regret in accuracy.
    """
    t = t.sort_values("step").reset_index(drop=True)

    summary = Report()
    summary.add("Held-out answers: per-token CE (nats) and greedy accuracy per epoch", _rows(t.rename(columns={"step": "epoch"}), ["checkpoint", "epoch", "mean", "p50", "p95", "p99", "accuracy"]))
    first, last = t.iloc[0], t.iloc[-1]
    by_mean, by_p50, by_acc = t.loc[t["mean"].idxmin()], t.loc[t["p50"].idxmin()], t.loc[t["accuracy"].idxmax()]
    summary.notes.append(
        f"From {first['checkpoint']} to {last['checkpoint']}: mean CE {_change(first['mean'], last['mean'])}, "
        f"p50 {_change(first['p50'], last['p50'])}, p95 {_change(first['p95'], last['p95'])}; "
        f"accuracy goes {short(first['accuracy'])} → {short(last['accuracy'])}."
    )
    picks = f"Lowest mean CE: {by_mean['checkpoint']}; lowest p50: {by_p50['checkpoint']}; highest accuracy: {by_acc['checkpoint']} ({short(by_acc['accuracy'])})"
    if by_mean["checkpoint"] == by_acc["checkpoint"]:
        summary.notes.append(picks + " — mean CE and accuracy pick the same epoch.")
    else:
        summary.notes.append(picks + f" — mean CE's best epoch is not the most accurate one (accuracy {short(by_mean['accuracy'])} there).")
    if by_mean["checkpoint"] == last["checkpoint"]:
        summary.notes.append("Mean CE is lowest at the last epoch: this run shows no late rise of mean CE.")
    else:
        after = t[t["step"] >= by_mean["step"]]
        summary.notes.append(
            f"Mean CE is lowest at {by_mean['checkpoint']} and then {_change(by_mean['mean'], last['mean'])} by {last['checkpoint']}, "
            f"while accuracy goes {short(by_mean['accuracy'])} → {short(last['accuracy'])} "
            f"(range {short(after['accuracy'].min())}–{short(after['accuracy'].max())}) and p50 {_change(by_mean['p50'], last['p50'])}."
        )
    if by_acc["checkpoint"] == last["checkpoint"]:
        summary.notes.append(
            "Accuracy is highest at the last epoch: training never passes an accuracy peak, "
            "the phase in which the paper sees mean CE rise (docs/sample-data.md)."
        )
    else:
        summary.notes.append(
            f"Accuracy peaks at {by_acc['checkpoint']} ({short(by_acc['accuracy'])}) and is {short(last['accuracy'])} at {last['checkpoint']}."
        )

    concord = Report()
    rows = concordance_rows([("fine-tuning epochs", t)])
    concord.add("Concordance across epochs", rows)
    concord.notes.append(
        f"C(mean, p50) = {short(rows[0]['C(mean,p50)'])}, C(mean, p95) = {short(rows[0]['C(mean,p95)'])}, "
        f"C_S = {short(rows[0]['C_S'])} — {reading(rows[0]['C_S'], 0.8, 0.6)}."
    )

    select = select_report(t, SUMMARIES, task="accuracy")
    picks = select.sections[0][1]
    select.sections = [("Fine-tuning: the epoch each rule picks, and its regret in accuracy", [{k: p.get(k) for k in ("rule", "checkpoint", "mean", "p50", "p95", "task", "regret")} for p in picks])]
    ce_rules = [p for p in picks if p["rule"] != "best by task" and not math.isnan(p.get("regret", math.nan))]
    chosen = list(dict.fromkeys(p["checkpoint"] for p in ce_rules))
    if len(chosen) > 1:
        select.notes.append(
            "Rules disagree: "
            + "; ".join(
                f"{', '.join(p['rule'] for p in ce_rules if p['checkpoint'] == c)} → {c} (regret {short(next(p['regret'] for p in ce_rules if p['checkpoint'] == c))})"
                for c in chosen
            )
            + "."
        )
    regrets = [p["regret"] for p in ce_rules]
    if not regrets:
        select.notes.append("No CE rule has a regret: the epochs have no accuracy.")
    elif max(regrets) == 0:
        select.notes.append("Every CE rule picks an epoch with the best accuracy (regret 0).")
    elif min(regrets) == max(regrets):
        select.notes.append(f"Every CE rule picks {chosen[0]}, losing {short(regrets[0])} accuracy against the best epoch.")
    else:
        worst = max(ce_rules, key=lambda p: p["regret"])
        best = min(ce_rules, key=lambda p: p["regret"])
        zero = [p["rule"] for p in ce_rules if p["regret"] == 0]
        select.notes.append(
            f"The worst CE rule here is {worst['rule']}: it picks {worst['checkpoint']}, losing {short(worst['regret'])} accuracy "
            "against the best epoch; "
            + (f"{', '.join(zero)} pick{'s' if len(zero) == 1 else ''} a most accurate epoch (regret 0)." if zero
               else f"the best is {best['rule']} (regret {short(best['regret'])}).")
        )
    return [
        DemoPart("Fine-tuning miniature: summaries and accuracy", summary),
        DemoPart("Fine-tuning miniature: concordance", concord),
        DemoPart("Fine-tuning miniature: selection by task accuracy", select),
    ]
