"""Core of `pctce select`: the checkpoint each summary picks, its regret, and agreement with a task."""

from __future__ import annotations

from collections.abc import Sequence

from pctce_cli.analysis.report import Report
from pctce_cli.analysis.subsets import NO_SUBSETS, Subsets
from pctce_cli.errors import UsageError

# ``--task`` names that mean the accuracy stored by ``pctce score --task-accuracy``
TASK_ALIASES = {"accuracy": "acc_exact_match", "exact_match": "acc_exact_match", "substring_match": "acc_substring_match"}


def resolve_task(table, task: str | None) -> str | None:
    """Map a ``--task`` name to a numeric column (``accuracy`` → the stored exact-match accuracy)."""
    import pandas as pd

    if task is None:
        return None
    col = task if task in table.columns else TASK_ALIASES.get(task)
    if col is None or col not in table.columns:
        have = [c for c in table.columns if c not in ("checkpoint", "group", "step")]
        raise UsageError(f"task '{task}': no such column (have: {', '.join(map(str, have))})", param="task", remedy="add it with meta", remedy_param="meta")
    if not pd.api.types.is_numeric_dtype(table[col]):
        try:
            table[col] = pd.to_numeric(table[col])
        except (ValueError, TypeError):
            raise UsageError(f"task '{task}': column is not numeric", param="task") from None
    if table[col].isna().any():
        missing = table.loc[table[col].isna(), "checkpoint"].tolist()
        raise UsageError(f"task '{task}': no value for {', '.join(missing[:5])}", param="task")
    return col


def select_report(
    table,
    summaries: Sequence[str],
    task: str | None = None,
    higher_is_better: bool = True,
    agreement_summaries: Sequence[str] | None = None,
    subsets: Subsets = NO_SUBSETS,
    notes: Sequence[str] = (),
) -> Report:
    """`pctce select`: the checkpoint each rule picks, regret, and agreement with the task.

    Args:
        subsets: With ``split`` (``--by``), ``table`` has a row per checkpoint and
            subset; each subset gets its own picks and agreement (a ``subset``
            column), the task being the subset's own accuracy when it comes
            from ``--task-accuracy``.
        notes: Notes of reading the table, put first.
    """
    if subsets.split:
        report = Report(notes=list(notes))
        for label in dict.fromkeys(table["subset"].tolist()):
            sub = select_report(table[table["subset"] == label].drop(columns="subset").reset_index(drop=True), summaries, task, higher_is_better, agreement_summaries)
            for title, rows in sub.sections:
                report.sections.append((title, [{"subset": label, **r} for r in rows]))
        merged: dict[str, list] = {}
        for title, rows in report.sections:
            merged.setdefault(title, []).extend(rows)
        report.sections = [(f"{title}, by {subsets.field}", rows) for title, rows in merged.items()]
        return report
    return _select_pooled(table, summaries, task, higher_is_better, agreement_summaries, subsets, notes)


def _select_pooled(table, summaries, task, higher_is_better, agreement_summaries, subsets, notes) -> Report:
    from pctce_cli.stats.selection import agreement, select

    col = resolve_task(table, task)
    report = Report(notes=list(notes))
    if subsets.active:
        report.notes.append(f"Only documents of subset {subsets.describe()}.")
    picks = select(table.set_index("checkpoint") if "checkpoint" in table.columns else table, list(summaries), task=col, higher_is_better=higher_is_better)
    report.add("Selection rules (each picks the checkpoint minimizing its summary)", picks)
    report.notes += _tie_notes(table, summaries)
    if col is not None:
        cols = [s for s in (agreement_summaries or summaries) if s in table.columns]
        groups = table["group"] if "group" in table.columns and table["group"].notna().any() else None
        agr = agreement(table.set_index("checkpoint"), col, cols, groups=groups, higher_is_better=higher_is_better)
        report.add(f"Agreement of each summary with {task}", agr)
    return report


def _tie_notes(table, summaries: Sequence[str]) -> list[str]:
    """A note for rules whose lowest value is shared (KL 0 of checkpoints equal to the reference): the pick is then the first in table order."""
    names = table["checkpoint"].tolist() if "checkpoint" in table.columns else [str(i) for i in table.index]
    ties: dict[tuple, list[str]] = {}
    for s in summaries:
        if s not in table.columns:
            continue
        v = [x for x in table[s].to_numpy(dtype=float)]
        finite = [x for x in v if x == x]  # NaN rows are skipped by the rules
        tied = tuple(n for n, x in zip(names, v) if finite and x == min(finite))
        if len(tied) > 1:
            ties.setdefault(tied, []).append(s)
    out = []
    for tied, rules in ties.items():
        shown = ", ".join(tied[:5]) + (f" and {len(tied) - 5} more" if len(tied) > 5 else "")
        out.append(f"{len(tied)} checkpoints tie at the lowest {', '.join(rules)} ({shown}): best by {'each' if len(rules) > 1 else rules[0]} picks the first in table order, {tied[0]}.")
    return out
