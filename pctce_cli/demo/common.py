"""What the demo's parts share: the summaries shown, the part type, and reading the summaries table of a store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pctce_cli.analysis.report import Report
from pctce_cli.analysis.summary import summaries_table
from pctce_cli.catalog import resolve_checkpoints
from pctce_cli.stats.defaults import DEFAULT_CONCORDANCE_SET, DEFAULT_SUMMARIES

SUMMARIES = list(DEFAULT_SUMMARIES)
CONCORDANCE_SET = list(DEFAULT_CONCORDANCE_SET)
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
