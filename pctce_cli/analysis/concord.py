"""Core of `pctce concord`: concordance matrices, Kendall τ, C_S per group, and a reading."""

from __future__ import annotations

from collections.abc import Sequence

from pctce_cli import fmt
from pctce_cli.analysis.report import Report, reading, table_groups
from pctce_cli.errors import UsageError


def concord_report(
    table,
    summaries: Sequence[str],
    set_: Sequence[str],
    agree: float = 0.8,
    disagree: float = 0.6,
    pairs: bool = False,
) -> Report:
    """`pctce concord`: concordance matrix, Kendall τ and C_S, over all and per group."""
    from pctce_cli.stats.concordance import (
        concordance,
        concordance_matrix,
        discordant_pairs,
        kendall_tau_matrix,
        tied_pairs_matrix,
    )

    if not 0 <= disagree <= agree <= 1:
        raise UsageError(f"--disagree ({disagree}) must be ≤ --agree ({agree}), both in [0, 1]")
    report = Report()
    set_rows = []
    for gname, sub in table_groups(table):
        for title, fn in (
            ("Concordance C(s, s')", concordance_matrix),
            ("Kendall τ", kendall_tau_matrix),
            ("Tied pairs", tied_pairs_matrix),
        ):
            m = fn(sub, list(summaries))
            if fn is tied_pairs_matrix:
                m = m.astype(int)
            report.add(f"{title} — {gname} ({len(sub)} checkpoints)", m.reset_index())
        res = concordance(sub[list(set_)], list(set_))
        set_rows.append(
            {
                "group": gname,
                "checkpoints": len(sub),
                "pairs": res.n_pairs,
                "concordant": res.n_concordant,
                "tied": res.n_tied,
                "C_S": res.c,
            }
        )
        if pairs and "mean" in sub.columns and "p50" in sub.columns:
            dp = discordant_pairs(sub.set_index("checkpoint"), "mean", "p50")
            report.add(f"Pairs on which mean and median disagree — {gname}", dp)
    report.add(f"Concordance of S = {{{', '.join(set_)}}}", set_rows)
    for r in set_rows:
        report.notes.append(
            f"{r['group']}: C_S = {fmt.short(r['C_S'])} over {r['pairs']} pairs ({r['tied']} tied) — "
            f"{reading(r['C_S'], agree, disagree)}."
        )
    return report
