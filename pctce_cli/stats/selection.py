"""Selection rules and agreement with a task metric (docs/definitions.md#selection-rules-and-agreement).

Tables have one row per checkpoint (named by a ``checkpoint`` column, else
by the index) and one column per summary; the task metric is a column name
or a sequence aligned with the rows, and its direction is stated by
``higher_is_better``. Summaries are always lower-is-better.

Conventions:

* "best by s" picks the checkpoint with the smallest s; ties go to the first
  in table order; checkpoints whose s is NaN are skipped.
* regret = best task value − picked task value for a higher-is-better task,
  picked − best for a lower-is-better one, so regret ≥ 0 and 0 is ideal.
* agreement = the Spearman ρ between summary and task, sign-adjusted so that
  positive means "lower CE goes with a better task score": −ρ for a
  higher-is-better task, +ρ for a lower-is-better one. The best single
  summary of a group is the one with the highest agreement (Spearman,
  because selection only uses the ranking).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats.checks import summary_list
from pctce_cli.stats.concordance import checkpoint_names
from pctce_cli.stats.defaults import AGREEMENT_PERCENTILES, DEFAULT_SUMMARIES
from pctce_cli.stats.summaries import summary_columns

if TYPE_CHECKING:  # pandas costs ~0.5 s to import; load it when used
    import pandas as pd

__all__ = [
    "AGREEMENT_PERCENTILES",
    "agreement_summaries",
    "select",
    "agreement",
    "best_summary",
]

ALL_GROUP = "all"


def agreement_summaries() -> list[str]:
    """Default summaries correlated with a task: mean, p5, p10, …, p95, p99.

    Example:
        >>> s = agreement_summaries()
        >>> s[:3], s[-2:], len(s)
        (['mean', 'p5', 'p10'], ['p95', 'p99'], 21)
    """
    return summary_columns(AGREEMENT_PERCENTILES)


def _check_table(table) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise UsageError(f"table must be a DataFrame with one row per checkpoint, got {type(table).__name__}")
    return table


def _column(table: pd.DataFrame, values, what: str) -> tuple[str, np.ndarray]:
    """A per-checkpoint numeric column given by name or as a sequence."""
    if isinstance(values, str):
        if values not in table.columns:
            raise UsageError(f"{what} column {values!r} not found (columns: {', '.join(map(str, table.columns))})")
        name, raw = values, table[values]
    else:
        name, raw = what, values
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be numeric, one value per checkpoint") from None
    if arr.ndim != 1 or arr.shape[0] != len(table):
        raise UsageError(f"{what} must have one value per checkpoint ({len(table)}), got shape {arr.shape}")
    return name, arr


def _summaries(table: pd.DataFrame, summaries) -> list[str]:
    summaries = summary_list(summaries)
    missing = [s for s in summaries if s not in table.columns]
    if missing:
        raise UsageError(f"table has no column {', '.join(missing)} (columns: {', '.join(map(str, table.columns))})")
    return summaries


def _pick(values: np.ndarray, lowest: bool) -> int | None:
    """Index of the best value, first in order on ties, NaN skipped; None if all NaN."""
    if np.isnan(values).all():
        return None
    return int(np.nanargmin(values) if lowest else np.nanargmax(values))


def select(
    table: pd.DataFrame,
    summaries: Sequence[str] = DEFAULT_SUMMARIES,
    task=None,
    higher_is_better: bool = True,
) -> pd.DataFrame:
    """Compare selection rules "best by s": which checkpoint each picks and its regret.

    Args:
        table: one row per checkpoint, one column per summary.
        summaries: the rules to compare (each lower-is-better).
        task: task-metric column name, or values aligned with the rows.
        higher_is_better: direction of the task metric.

    Returns:
        DataFrame, one row per rule (plus ``best by task`` when a task is
        given): ``rule``, ``checkpoint``, the picked checkpoint's summaries,
        and with a task its ``task`` value and ``regret`` (≥ 0). A rule whose
        summary is NaN everywhere picks nothing (``checkpoint`` missing).

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"mean": [2.0, 1.0, 1.5], "p95": [5.0, 6.0, 4.0],
        ...                   "acc": [0.5, 0.6, 0.7]}, index=["a", "b", "c"])
        >>> select(t, ["mean", "p95"], task="acc")[["rule", "checkpoint", "regret"]].values.tolist()
        [['best by mean', 'b', 0.09999999999999998], ['best by p95', 'c', 0.0], ['best by task', 'c', 0.0]]
    """
    import pandas as pd

    table = _check_table(table)
    summaries = _summaries(table, summaries)
    names = checkpoint_names(table)
    values = table[summaries].to_numpy(dtype=np.float64)
    task_vals = None
    if task is not None:
        _, task_vals = _column(table, task, "task")
        best = _pick(task_vals, lowest=not higher_is_better)
        best_task = math.nan if best is None else task_vals[best]

    def row(rule: str, idx: int | None) -> dict:
        out = {"rule": rule, "checkpoint": None if idx is None else names[idx]}
        for k, s in enumerate(summaries):
            out[s] = math.nan if idx is None else float(values[idx, k])
        if task_vals is not None:
            picked = math.nan if idx is None else float(task_vals[idx])
            out["task"] = picked
            out["regret"] = (best_task - picked) if higher_is_better else (picked - best_task)
        return out

    rows = [row(f"best by {s}", _pick(values[:, k], lowest=True)) for k, s in enumerate(summaries)]
    if task_vals is not None:
        rows.append(row("best by task", best))
    return pd.DataFrame(rows)


def _groups(table: pd.DataFrame, groups) -> np.ndarray | None:

    if groups is None:
        return None
    if isinstance(groups, str):
        if groups not in table.columns:
            raise UsageError(f"groups column {groups!r} not found (columns: {', '.join(map(str, table.columns))})")
        return table[groups].to_numpy(dtype=object)
    if isinstance(groups, Mapping):
        names = checkpoint_names(table)
        missing = [n for n in names if n not in groups]
        if missing:
            raise UsageError(f"groups has no group for checkpoint(s) {', '.join(map(str, missing))}")
        return np.asarray([groups[n] for n in names], dtype=object)
    arr = np.asarray(list(groups), dtype=object)
    if arr.shape != (len(table),):
        raise UsageError(f"groups must have one entry per checkpoint ({len(table)}), got {arr.shape[0]}")
    return arr


def _correlate(x: np.ndarray, y: np.ndarray) -> tuple[int, float, float, float, float, str]:
    """(n, pearson r, p, spearman rho, p, note) over the pairs where both are known."""
    from scipy import stats

    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    n = int(x.size)
    nan = math.nan
    if n < 3:
        return n, nan, nan, nan, nan, "n < 3"
    if np.ptp(x) == 0:
        return n, nan, nan, nan, nan, "constant summary"
    if np.ptp(y) == 0:
        return n, nan, nan, nan, nan, "constant task"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pr = stats.pearsonr(x, y)
        sr = stats.spearmanr(x, y)
    note = "; ".join(sorted({str(w.message) for w in caught}))
    return n, float(pr.statistic), float(pr.pvalue), float(sr.statistic), float(sr.pvalue), note


def agreement(
    table: pd.DataFrame,
    task,
    summaries: Sequence[str] | None = None,
    groups=None,
    higher_is_better: bool = True,
) -> pd.DataFrame:
    """Correlation of each summary with a task metric, overall and per group.

    (Long by its documented arguments and example; the body is about 30 lines.)

    Args:
        table: one row per checkpoint, one column per summary.
        task: task-metric column name, or values aligned with the rows.
        summaries: columns to correlate; default: those of
            :func:`agreement_summaries` present in the table.
        groups: group (family) of each checkpoint: a column name, a mapping
            checkpoint → group, or a sequence aligned with the rows.
        higher_is_better: direction of the task metric.

    Returns:
        DataFrame with columns ``group`` ("all" first, then each group in
        order of first appearance), ``summary``, ``n``, ``pearson_r``,
        ``pearson_p``, ``spearman_rho``, ``spearman_p``, ``agreement``
        (sign-adjusted ρ, module docstring), ``best`` (the group's best
        single summary) and ``note`` (why a value is NaN: "n < 3",
        "constant summary", "constant task"; or scipy's warning text).
        Checkpoints with a NaN summary or task are left out of that
        correlation only; ``n`` counts the rest.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"mean": [3.0, 2.0, 1.0, 0.5], "p95": [1.0, 3.0, 2.0, 4.0],
        ...                   "acc": [0.1, 0.2, 0.3, 0.4]})
        >>> a = agreement(t, "acc", ["mean", "p95"])
        >>> a[["summary", "spearman_rho", "agreement", "best"]].round(3).values.tolist()
        [['mean', -1.0, 1.0, True], ['p95', 0.8, -0.8, False]]
    """
    import pandas as pd

    table = _check_table(table)
    if summaries is None:
        summaries = [s for s in agreement_summaries() if s in table.columns]
        if not summaries:
            raise UsageError(
                "table has none of the default agreement summaries (mean, p5, …, p95, p99); pass summaries="
            )
    summaries = _summaries(table, summaries)
    _, y = _column(table, task, "task")
    labels = _groups(table, groups)
    sign = -1.0 if higher_is_better else 1.0
    masks = [(ALL_GROUP, np.ones(len(table), dtype=bool))]
    if labels is not None:
        masks += [(g, labels == g) for g in pd.unique(labels)]
    rows = []
    for group, mask in masks:
        for s in summaries:
            x = table[s].to_numpy(dtype=np.float64)
            n, r, rp, rho, rhop, note = _correlate(x[mask], y[mask])
            rows.append((group, s, n, r, rp, rho, rhop, sign * rho, note))
    out = pd.DataFrame(
        rows,
        columns=["group", "summary", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p", "agreement", "note"],
    )
    out.insert(len(out.columns) - 1, "best", False)
    for _, idx in best_summary(out).iterrows():
        out.loc[idx["row"], "best"] = True
    return out


def best_summary(agreement_table: pd.DataFrame, by: str = "agreement") -> pd.DataFrame:
    """The best single summary of each group: highest ``by`` (ties → first listed).

    Groups where every value is NaN have no best summary and are omitted.

    Returns:
        DataFrame with columns ``group``, ``summary``, ``by`` value under its
        own name, and ``row`` (index of that row in ``agreement_table``).

    Example:
        >>> import pandas as pd
        >>> a = pd.DataFrame({"group": ["all", "all"], "summary": ["mean", "p50"],
        ...                   "agreement": [0.4, 0.9]})
        >>> best_summary(a)[["group", "summary"]].values.tolist()
        [['all', 'p50']]
    """
    import pandas as pd

    if by not in agreement_table.columns:
        raise UsageError(f"best_summary: column {by!r} not in the agreement table")
    rows = []
    for group in pd.unique(agreement_table["group"]):
        part = agreement_table[agreement_table["group"] == group]
        vals = part[by].to_numpy(dtype=np.float64)
        if np.isnan(vals).all():
            continue
        k = int(np.nanargmax(vals))
        rows.append((group, part["summary"].iloc[k], vals[k], part.index[k]))
    return pd.DataFrame(rows, columns=["group", "summary", by, "row"])
