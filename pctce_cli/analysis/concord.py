"""Core of `pctce concord`: concordance matrices, Kendall τ, C_S per group, and a reading."""

from __future__ import annotations

from collections.abc import Sequence

from pctce_cli import fmt
from pctce_cli.analysis.report import Report, reading, table_groups
from pctce_cli.analysis.subsets import NO_SUBSETS, Subsets
from pctce_cli.errors import UsageError
from pctce_cli.stats.defaults import CONCORDANCE_AGREE, CONCORDANCE_DISAGREE


def check_levels(agree: float, disagree: float) -> None:
    """Refuse agreement levels outside [0, 1] (each named alone) or a ``disagree`` above ``agree``."""
    for name, level in (("agree", agree), ("disagree", disagree)):
        if not 0 <= level <= 1:
            raise UsageError(f"{name} must be in [0, 1], got {level}", param=name)
    if disagree > agree:
        raise UsageError(f"disagree ({disagree}) must be ≤ agree ({agree}), both in [0, 1]", param=("disagree", "agree"))


def concord_report(
    table,
    summaries: Sequence[str],
    set_: Sequence[str],
    agree: float = CONCORDANCE_AGREE,
    disagree: float = CONCORDANCE_DISAGREE,
    pairs: bool = False,
    subsets: Subsets = NO_SUBSETS,
    notes: Sequence[str] = (),
    value: str = "ce",
) -> Report:
    """`pctce concord`: concordance matrix, Kendall τ and C_S, over all and per group.

    (Long one table per grouping (all, groups, subsets) built from the same rows.)

    Args:
        subsets: With ``split`` (``--by``), ``table`` has a row per checkpoint and
            subset (a ``subset`` column) and the report is :func:`subset_concord_report`.
        notes: Notes of reading the table (subsets left out), put first.
        value: What the table's summaries are of (``ce``, or ``kl``: :func:`pctce_cli.analysis.divergence_pairs.divergence_table`), as the reading names it.
    """
    from pctce_cli.values import value_named

    check_levels(agree, disagree)
    if subsets.split:
        return subset_concord_report(table, set_, agree, disagree, subsets.field, notes)
    from pctce_cli.stats.concordance import (
        concordance,
        concordance_matrix,
        discordant_pairs,
        kendall_tau_matrix,
        tied_pairs_matrix,
    )

    report = Report(notes=list(notes))
    if subsets.active:
        report.notes.append(f"Only documents of subset {subsets.describe()}.")
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
            f"{reading(r['C_S'], agree, disagree, value_named(value).label)}."
        )
    return report


OPPOSED_SHOWN = 20  # pair rows listed; the note gives the total


def subset_concord_report(table, set_: Sequence[str], agree: float, disagree: float, field: str, notes: Sequence[str] = ()) -> Report:
    """`pctce concord --by FIELD`: C(mean, s) and C_S per subset (and group), and the pairs subsets rank oppositely.

    Per-subset concordance is docs/definitions.md#concordance on per-subset summaries (docs/definitions.md#subsets). A pair is
    opposed on a summary when one subset ranks it one way and another subset
    the other way.
    """
    from pctce_cli.stats.concordance import concordance
    from pctce_cli.stats.subsets import opposed_pairs

    report = Report(notes=list(notes))
    others = [s for s in set_ if s != "mean"]
    rows = []
    labels = list(dict.fromkeys(table["subset"].tolist()))
    for label in labels:
        for gname, sub in table_groups(table[table["subset"] == label].reset_index(drop=True)):
            row = {"subset": label, "group": gname, "checkpoints": len(sub)}
            for s in others:
                row[f"C(mean, {s})"] = concordance(sub[["mean", s]], ["mean", s]).c if "mean" in sub.columns else float("nan")
            res = concordance(sub[list(set_)], list(set_))
            row.update({"pairs": res.n_pairs, "tied": res.n_tied, "C_S": res.c, "reading": reading(res.c, agree, disagree).split(":")[0]})
            rows.append(row)
    report.add(f"Concordance by {field}: S = {{{', '.join(set_)}}}", rows)
    alls = [r for r in rows if r["group"] == "all"]
    low = [r["subset"] for r in alls if r["C_S"] <= disagree]
    high = [r["subset"] for r in alls if r["C_S"] >= agree]
    if low:
        report.notes.append(f"Summaries disagree (C_S ≤ {fmt.short(disagree)}) on {field} = {', '.join(low)}: there the choice of summary changes which checkpoint wins.")
    if high:
        report.notes.append(f"Summaries agree (C_S ≥ {fmt.short(agree)}) on {field} = {', '.join(high)}.")
    wide = table.pivot_table(index="subset", columns="checkpoint", values=list(set_), aggfunc="first")
    cks = list(dict.fromkeys(table["checkpoint"].tolist()))
    opposed = []
    for s in set_:
        m = wide[s].reindex(index=labels, columns=cks).to_numpy()
        for a, b, la, lb, margin in opposed_pairs(m, cks, labels):
            opposed.append({"summary": s, "a": a, "b": b, "a lower on": ", ".join(la), "b lower on": ", ".join(lb), "margin": margin})
    opposed.sort(key=lambda r: -r["margin"])  # the sharpest flips first
    report.add(f"Checkpoint pairs that one {field} ranks one way and another the other way (margin: the smaller of the two largest gaps, nats)", opposed[:OPPOSED_SHOWN])
    if opposed:
        first = opposed[0]
        more = f" (the table shows the first {OPPOSED_SHOWN})" if len(opposed) > OPPOSED_SHOWN else ""
        report.notes.append(
            f"{len(opposed)} (summary, pair) rankings flip between subsets{more}; the sharpest: by {first['summary']}, "
            f"{first['a']} is lower on {first['a lower on']} but {first['b']} is lower on {first['b lower on']} "
            f"(by at least {fmt.short(first['margin'])} nats each way). A pooled number hides this."
        )
    else:
        report.notes.append(f"Every subset of {field} ranks every checkpoint pair the same way on {', '.join(set_)}.")
    return report
