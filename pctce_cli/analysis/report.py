"""What an analysis command returns: titled tables and plain-language lines (rendered by the CLI)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Report:
    """What an analysis command prints: titled tables and plain-language lines."""

    sections: list[tuple[str, list[dict]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, title: str, rows) -> None:
        """Append a table (a list of dicts or a DataFrame)."""
        if hasattr(rows, "to_dict"):
            rows = rows.to_dict(orient="records")
        self.sections.append((title, list(rows)))


def reading(c: float, agree: float, disagree: float, label: str = "CE") -> str:
    """Plain-language reading of a concordance value (docs/definitions.md#concordance); ``label``: the value ranked (CE, KL).

    Examples:
        >>> reading(0.9, 0.8, 0.6)
        'summaries agree: they tell one story, mean CE is a safe selector'
    """
    if math.isnan(c):
        return "undefined (fewer than 2 checkpoints)"
    if c >= agree:
        return f"summaries agree: they tell one story, mean {label} is a safe selector"
    if c <= disagree:
        return "summaries disagree: the distribution is being reshaped, the choice of summary changes which checkpoint wins"
    return "summaries partly agree: check which summary your task depends on"


def table_groups(table, minimum: int = 2) -> list[tuple[str, object]]:
    """``("all", table)`` and one ``(name, sub-table)`` per named group with at least ``minimum`` checkpoints.

    Args:
        table: One row per checkpoint, with an optional ``group`` column.
        minimum: Smallest group that gets its own entry.

    Returns:
        ``(name, rows)`` pairs, "all" first, groups in order of appearance.
    """
    out = [("all", table)]
    if "group" in table.columns:
        for g in table["group"].dropna().unique().tolist():
            sub = table[table["group"] == g]
            if len(sub) >= minimum:
                out.append((str(g), sub.reset_index(drop=True)))
    return out
