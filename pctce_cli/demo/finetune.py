"""The fine-tuning miniature's parts of the demo: per-epoch summaries and accuracy, concordance, selection, with readings."""

from __future__ import annotations

import math
from pathlib import Path

from pctce_cli.analysis.report import Report, reading
from pctce_cli.analysis.select import select_report
from pctce_cli.demo.common import SUMMARIES, TASK, DemoPart, _rows, _table, concordance_rows
from pctce_cli.fmt import short
from pctce_cli.stats.defaults import CONCORDANCE_AGREE, CONCORDANCE_DISAGREE


def finetune_parts(store: Path, meta: Path) -> list[DemoPart]:
    """Per-epoch summaries with task accuracy, concordance, selection by accuracy, and the correct/incorrect split."""
    from pctce_cli.analysis.subsets import CORRECT, Subsets
    from pctce_cli.analysis.summary import correct_rows, summaries_table
    from pctce_cli.catalog import resolve_checkpoints

    t = _table(store, meta)
    t["accuracy"] = t[TASK]
    cks = resolve_checkpoints([store], meta=meta)
    split = correct_rows(summaries_table(cks, None, ["mean"], subsets=Subsets(CORRECT, split=True)).to_dict(orient="records"))
    return finetune_parts_from_table(t) + [correct_part_from_rows(split)]


def correct_part_from_rows(rows: list[dict]) -> DemoPart:
    """The paper's Table 6: mean CE of correctly and incorrectly answered held-out pairs per epoch, with readings.

    Args:
        rows: ``summary --by correct``'s Table 6 rows (``checkpoint, step, accuracy,
            mean_correct, mean_incorrect, ratio``).
    """
    rows = sorted(rows, key=lambda r: r["step"])
    report = Report()
    report.add(
        "Mean CE of held-out answers, by greedy correctness (paper Table 6; pctce summary --by correct)",
        [{"checkpoint": r["checkpoint"], "epoch": r["step"], "accuracy": r["accuracy"], "mean correct": r["mean_correct"], "mean incorrect": r["mean_incorrect"], "ratio": r["ratio"]} for r in rows],
    )
    ratios = [r["ratio"] for r in rows if not math.isnan(r["ratio"])]
    if ratios:
        lo, hi = min(ratios), max(ratios)
        report.notes.append(f"Incorrectly answered pairs carry {short(lo)}–{short(hi)}× the mean answer CE of correctly answered ones, over the {len(ratios)} epochs with both.")
    for key, who in (("mean_correct", "correct"), ("mean_incorrect", "incorrect")):
        vals = [(r["step"], r[key]) for r in rows if not math.isnan(r[key])]
        if len(vals) < 2:
            continue
        best = min(vals, key=lambda v: v[1])
        last = vals[-1]
        if last[0] == best[0]:
            report.notes.append(f"Mean CE of the {who} answers is lowest at the last epoch ({short(best[1])}): no late rise there.")
        else:
            report.notes.append(f"Mean CE of the {who} answers is lowest at epoch {best[0]} ({short(best[1])}) and {_change(best[1], last[1])} by epoch {last[0]}.")
    return DemoPart("Fine-tuning miniature: correct vs incorrect answers", report)


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
    return [
        DemoPart("Fine-tuning miniature: summaries and accuracy", _summary_part(t)),
        DemoPart("Fine-tuning miniature: concordance", _concord_part(t)),
        DemoPart("Fine-tuning miniature: selection by task accuracy", _select_part(t)),
    ]


def _summary_part(t) -> Report:
    """The summaries and accuracy per epoch, with what the best epochs of each say."""
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
    return summary


def _concord_part(t) -> Report:
    """The concordance of the summaries across epochs."""
    concord = Report()
    rows = concordance_rows([("fine-tuning epochs", t)])
    concord.add("Concordance across epochs", rows)
    concord.notes.append(
        f"C(mean, p50) = {short(rows[0]['C(mean,p50)'])}, C(mean, p95) = {short(rows[0]['C(mean,p95)'])}, "
        f"C_S = {short(rows[0]['C_S'])} — {reading(rows[0]['C_S'], CONCORDANCE_AGREE, CONCORDANCE_DISAGREE)}."
    )
    return concord


def _select_part(t) -> Report:
    """The epoch each selection rule picks and its regret in accuracy."""
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
    return select
