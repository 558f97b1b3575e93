"""The distillation miniature's parts of the demo: summaries, concordance, selection and the genres, with readings."""

from __future__ import annotations

from pathlib import Path

from pctce_cli.analysis.report import Report, reading
from pctce_cli.analysis.select import select_report
from pctce_cli.analysis.summary import summaries_table
from pctce_cli.catalog import resolve_checkpoints
from pctce_cli.demo.common import SUBSET, SUMMARIES, DemoPart, _pair_concordance, _rows, _table, concordance_rows
from pctce_cli.fmt import short
from pctce_cli.stats.defaults import CONCORDANCE_AGREE, CONCORDANCE_DISAGREE


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
    """:func:`distillation_parts` on a table of summaries (``checkpoint, run, group, step`` + SUMMARIES).

    (Long the miniature's parts in the order the demo prints them, each a few lines of text from the table.)
    """
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
        concord.notes.append(f"{r['checkpoints']}: C(mean, p50) = {short(r['C(mean,p50)'])}, C_S = {short(r['C_S'])} — {reading(r['C_S'], CONCORDANCE_AGREE, CONCORDANCE_DISAGREE)}.")

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
