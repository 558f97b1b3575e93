"""The report's findings: readings of these checkpoints' numbers, each a sentence with its number and the figure that shows it.

Every reading is computed from what the report has already measured (the
summary table, the subset rows, the tail checkpoint's arrays) with the
analysis cores (:mod:`pctce_cli.analysis.summary`, :mod:`pctce_cli.analysis.select`,
:mod:`pctce_cli.stats.concordance`); nothing here reads a store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from pctce_cli.fmt import short
from pctce_cli.report.doc import Finding


def _by(table, col: str, best=True):
    ok = table[table[col].notna()]
    return None if ok.empty else ok.loc[ok[col].idxmin() if best else ok[col].idxmax()]


def mean_median_finding(table, unit_ce: str) -> Finding | None:
    """Whether the lowest mean and the lowest median pick the same checkpoint."""
    a, b = _by(table, "mean"), _by(table, "p50")
    if a is None or b is None or len(table) < 2:
        return None
    if a["checkpoint"] == b["checkpoint"]:
        return Finding(f"Mean and median {unit_ce} pick the same checkpoint: {a['checkpoint']} (mean {short(a['mean'])}, p50 {short(a['p50'])}).", "ecdf")
    return Finding(
        f"Mean and median pick different checkpoints: the lowest mean {unit_ce} is {a['checkpoint']} ({short(a['mean'])}), "
        f"the lowest median {b['checkpoint']} (p50 {short(b['p50'])} against {short(a['p50'])}; its mean {short(b['mean'])}).",
        "ecdf",
    )


def concordance_findings(table, set_: Sequence[str], agree: float, disagree: float) -> list[Finding]:
    """C_S over all checkpoints and within each group, with its reading."""
    from pctce_cli.analysis.report import reading, table_groups
    from pctce_cli.stats.concordance import concordance

    if len(table) < 2:
        return []
    parts = []
    for name, sub in table_groups(table):
        c = concordance(sub[list(set_)], list(set_)).c
        if not math.isnan(c):
            parts.append((name, len(sub), c))
    if not parts:
        return []
    s = "{" + ", ".join(set_) + "}"
    (name, n, c), rest = parts[0], parts[1:]
    text = f"C_S over {s} is {short(c)} across all {n} checkpoints: {reading(c, agree, disagree)}."
    if rest:
        text += " Within groups: " + "; ".join(f"{g} {short(v)} ({k} checkpoints)" for g, k, v in rest) + "."
        lo = min(rest, key=lambda p: p[2])
        text += f" The summaries disagree most within {lo[0]}." if lo[2] < c else ""
    return [Finding(text, "concord")]


def _run_ends(table, runs: Mapping[str, str | None]) -> list[tuple[str, object, object]]:
    """``(run, first row, last row)`` of every run with at least two steps."""
    t = table[table["step"].notna()].copy() if "step" in table.columns else table.iloc[0:0]
    t["_run"] = t["checkpoint"].map(lambda i: runs.get(i))
    out = []
    for run, sub in t[t["_run"].notna()].groupby("_run", sort=True):
        sub = sub.sort_values("step")
        if len(sub) >= 2:
            out.append((str(run), sub.iloc[0], sub.iloc[-1]))
    return out


def mover_findings(table, runs: Mapping[str, str | None]) -> list[Finding]:
    """The largest movers between each run's first and last step, and the runs whose bulk and tail move apart."""
    ends = _run_ends(table, runs)
    if not ends:
        return []
    out = []
    for col, what in (("mean", "mean CE"), ("p95", "p95")):
        if col not in table.columns:
            continue
        delta = sorted(((b[col] - a[col], run, a, b) for run, a, b in ends), key=lambda x: x[0])
        d, run, a, b = delta[0]
        text = f"Between first and last step, {run}'s {what} fell most: {short(a[col])} → {short(b[col])} (steps {int(a['step']):,} → {int(b['step']):,})"
        d2, run2, a2, b2 = delta[-1]
        if d2 > 0:
            text += f"; {run2}'s rose most: {short(a2[col])} → {short(b2[col])}"
        out.append(Finding(text + ".", "trajectory"))
    if {"p50", "p99"} <= set(table.columns):
        apart = [run for run, a, b in ends if b["p50"] < a["p50"] and b["p99"] > a["p99"]]
        if apart:
            out.append(
                Finding(
                    f"In {len(apart)} of {len(ends)} runs the median fell while p99 rose between first and last step "
                    f"({', '.join(apart[:6])}{' …' if len(apart) > 6 else ''}): the bulk improves while the tail extends.",
                    "fan",
                )
            )
        else:
            out.append(Finding(f"In none of the {len(ends)} runs did p99 rise while the median fell: bulk and tail move together.", "fan"))
    return out


def crossing_findings(rows: list[dict], vs: str | None, runs: Mapping[str, str | None]) -> list[Finding]:
    """The step at which each run crosses below the reference (``--vs``)."""
    from pctce_cli.analysis.summary import crossings

    if vs is None:
        return []
    summaries = ["mean", "p50", "p95"]
    # one summary at a time, so that the runs that do cross (the news) are listed before those that never do
    crossed = [line for s in summaries for line in crossings(rows, vs, [s], dict(runs), crossed_only=True)]
    if not crossed:
        return [Finding(f"No run crosses below {vs} in mean, p50 or p95.", "trajectory")]
    return [Finding("; ".join(crossed[:6]) + (f" (and {len(crossed) - 6} more)" if len(crossed) > 6 else "") + "; no other run crosses below it in these summaries.", "trajectory")]


def selection_findings(table, summaries: Sequence[str], task: str | None, higher_is_better: bool) -> list[Finding]:
    """With a task metric: the checkpoint each rule picks and its regret; the best and worst rule."""
    from pctce_cli.analysis.select import select_report

    if task is None or len(table) < 2:
        return []
    rep = select_report(table, list(summaries), task, higher_is_better, None)
    picks = [r for r in rep.sections[0][1] if r.get("regret") is not None and not (isinstance(r.get("regret"), float) and math.isnan(r["regret"]))]
    if not picks:
        return []
    best = min(picks, key=lambda r: r["regret"])
    worst = max(picks, key=lambda r: r["regret"])
    text = f"Against {task}, {best['rule']} picks {best['checkpoint']} with regret {short(best['regret'])}"
    if worst["regret"] > best["regret"]:
        text += f"; {worst['rule']} picks {worst['checkpoint']} with regret {short(worst['regret'])}"
    return [Finding(text + ".", "agreement")]


def subset_findings(rows_by_field: Mapping[str, list[dict]], fields: Sequence[str]) -> list[Finding]:
    """Subsets that disagree: where the lowest mean CE is a different checkpoint in different subsets."""
    out = []
    for f in fields:
        rows = rows_by_field.get(f) or []
        picks: dict[str, list[str]] = {}
        by_subset: dict[str, list[dict]] = {}
        for r in rows:
            if r.get("mean") is not None and not math.isnan(r["mean"]):
                by_subset.setdefault(str(r["subset"]), []).append(r)
        for label, rs in sorted(by_subset.items()):
            picks.setdefault(min(rs, key=lambda r: r["mean"])["checkpoint"], []).append(label)
        if len(picks) > 1:
            said = "; ".join(f"{ck} in {', '.join(labels)}" for ck, labels in picks.items())
            out.append(Finding(f"Subsets of {f} disagree on the lowest mean CE: {said}.", f"subsets-{f}"))
        elif picks:
            ck = next(iter(picks))
            out.append(Finding(f"Every subset of {f} ({len(by_subset)}) has its lowest mean CE at {ck}.", f"subsets-{f}"))
    return out


def position_finding(ck_id: str, rows: Sequence[dict], min_targets: int, figure: str | None = None, share: float = 0.1, dim: str = "position") -> Finding | None:
    """How ``ck_id``'s median CE falls with position, read from its rows by position bucket with at least ``min_targets``
    targets: from the first bucket to its lowest, where it stops falling (later buckets lower it by less than ``share`` of
    that fall: :func:`pctce_cli.stats.position.where_it_stops_falling`), and whether it rises again by the last bucket.

    Examples:
        >>> def rows(*p50):
        ...     return [{"position": lab, "targets": 500, "p50": v} for lab, v in zip(["0", "1", "2–3", "4–7", "8–15"], p50)]
        >>> print(position_finding("a", rows(4.0, 3.0, 2.1, 2.0, 2.05), 100).text)
        a: median CE falls from 4.000 at position 0 to 2.000 at positions 4–7 and stops falling after positions 2–3; it stays there up to positions 8–15 ('stops falling': later buckets lower it by less than a tenth of that fall; buckets of at least 100 targets).
        >>> print(position_finding("a", rows(4.0, 3.0, 2.0, 3.0, 3.5), 100).text)
        a: median CE falls from 4.000 at position 0 to 2.000 at positions 2–3; it rises again to 3.500 at positions 8–15 (buckets of at least 100 targets).
        >>> print(position_finding("a", rows(4.0, 3.0, 2.7, 2.4, 2.0), 100).text)
        a: median CE falls from 4.000 at position 0 to 2.000 at positions 8–15 and is still falling at the last bucket: longer documents may lower it further (buckets of at least 100 targets).
    """
    from pctce_cli.stats.position import where_it_stops_falling

    kept = [r for r in rows if r.get("targets", 0) >= min_targets and r.get("p50") is not None and not math.isnan(r["p50"])]
    if len(kept) < 2:
        return None
    one, many = ("position", "positions") if dim == "position" else ("context length", "context lengths")
    where = lambda r: (f"{one} " if "–" not in r[dim] and "+" not in r[dim] else f"{many} ") + r[dim]  # noqa: E731
    lowest, stop = where_it_stops_falling([r["p50"] for r in kept], share)
    first, low, last = kept[0], kept[lowest], kept[-1]
    of = f" (buckets of at least {min_targets:,} targets)."
    if 0 < stop < lowest:
        of = f" ('stops falling': later buckets lower it by less than a tenth of that fall; buckets of at least {min_targets:,} targets)."
    if lowest == 0:
        return Finding(f"{ck_id}: median CE does not fall with {one}: {short(first['p50'])} at {where(first)}, {short(last['p50'])} at {where(last)}" + of, figure)
    text = f"{ck_id}: median CE falls from {short(first['p50'])} at {where(first)} to {short(low['p50'])} at {where(low)}"
    if stop == len(kept) - 1:
        return Finding(text + " and is still falling at the last bucket: longer documents may lower it further" + of, figure)
    text += f" and stops falling after {where(kept[stop])}" if stop < lowest else ""
    fall = first["p50"] - low["p50"]
    if last["p50"] - low["p50"] > share * fall:
        return Finding(text + f"; it rises again to {short(last['p50'])} at {where(last)}" + of, figure)
    if lowest < len(kept) - 1:
        text += f"; it stays there up to {where(last)}"
    return Finding(text + of, figure)


def tail_concentration(ce: np.ndarray, doc: np.ndarray, share: float = 0.01) -> dict:
    """How concentrated the tail is: the top ``share`` of targets by CE, their part of the total CE and how many documents hold them.

    Examples:
        >>> t = tail_concentration(np.array([0.1] * 99 + [10.0]), np.arange(100) // 10)
        >>> t["targets"], round(t["ce_share"], 3), t["documents"], t["of_documents"]
        (1, 0.503, 1, 10)
    """
    ce = np.asarray(ce, dtype=np.float64)
    k = max(1, int(math.ceil(share * ce.size)))
    idx = np.argpartition(-ce, k - 1)[:k]
    total = ce.sum()
    return {
        "targets": k,
        "ce_share": float(ce[idx].sum() / total) if total > 0 else math.nan,
        "documents": int(np.unique(doc[idx]).size),
        "of_documents": int(np.unique(doc).size),
    }


def tail_finding(ck_id: str, ce, doc) -> Finding:
    """One sentence on how concentrated ``ck_id``'s tail is."""
    t = tail_concentration(ce, doc)
    return Finding(
        f"The tail of {ck_id} is {'concentrated' if t['documents'] <= 0.2 * t['of_documents'] else 'spread'}: its top 1% of targets "
        f"({t['targets']:,}) carry {t['ce_share']:.0%} of its total CE and lie in {t['documents']:,} of {t['of_documents']:,} documents.",
        None,
    )


def kl_finding(rows: Sequence[Mapping], reference: str) -> Finding | None:
    """Which checkpoint is closest to the reference by mean KL, and how heavy its KL tail is (p99.9 / p50).

    With two checkpoints or more it names the farthest too, and the one whose tail is heaviest relative to its median.

    Example:
        >>> rows = [{"checkpoint": "a", "mean": 0.2, "p50": 0.1, "p99.9": 3.0, "same_top1": 0.9}, {"checkpoint": "b", "mean": 0.1, "p50": 0.05, "p99.9": 0.5, "same_top1": 0.95}]
        >>> print(kl_finding(rows, "t").text)
        Closest to the reference t by mean KL: b (0.100 nats; p50 0.050, p99.9 0.500 = ×10.0 its median; same top token on 95.0% of targets). Farthest: a (mean KL 0.200 nats). Heaviest KL tail relative to its median: a (p99.9 / p50 ×30.0).
    """
    ok = [r for r in rows if not math.isnan(r["mean"])]
    if not ok:
        return None

    def num(v) -> str:  # 3 decimals, but a KL of 1e30 nats in 3 significant digits, not 31 of them
        return f"{v:.3g}" if isinstance(v, (int, float)) and abs(v) >= 1e6 else short(v)

    def times(x: float) -> str:
        return f"{x:.1f}" if x < 1e6 else f"{x:.3g}"

    def ratio(r) -> float | None:  # a median of 0 (most targets agree to float precision) has no ratio
        return r["p99.9"] / r["p50"] if r["p50"] > 0 else None

    def tail(r) -> str:
        x = ratio(r)
        return f"p99.9 {num(r['p99.9'])} = ×{times(x)} its median" if x is not None else f"p99.9 {num(r['p99.9'])}; the median is 0, so no tail ratio"

    best = min(ok, key=lambda r: r["mean"])
    worst = max(ok, key=lambda r: r["mean"])
    if len(ok) > 1 and worst["mean"] == best["mean"]:
        return Finding(f"All {len(ok)} checkpoints are as close to the reference {reference} by mean KL: {num(best['mean'])} nats.", "kl-ecdf")
    text = (
        f"Closest to the reference {reference} by mean KL: {best['checkpoint']} ({num(best['mean'])} nats; p50 {num(best['p50'])}, "
        f"{tail(best)}; same top token on {best['same_top1']:.1%} of targets)."
    )
    if len(ok) > 1:
        text += f" Farthest: {worst['checkpoint']} (mean KL {num(worst['mean'])} nats)."
        ratios = [r for r in ok if ratio(r) is not None]
        if ratios:
            heavy = max(ratios, key=ratio)
            text += f" Heaviest KL tail relative to its median: {heavy['checkpoint']} (p99.9 / p50 ×{times(ratio(heavy))})."
    return Finding(text, "kl-ecdf")


def diverse_rows(rows: list[dict], top: int, per_doc: int = 2) -> list[dict]:
    """The first ``top`` tail rows with at most ``per_doc`` per document and each target token once, renumbered.

    Examples:
        >>> rows = [{"#": i + 1, "doc": d, "token": t} for i, (d, t) in enumerate([(0, 5), (0, 6), (0, 7), (1, 5), (2, 8)])]
        >>> [(r["#"], r["doc"], r["token"]) for r in diverse_rows(rows, 3)]
        [(1, 0, 5), (2, 0, 6), (3, 2, 8)]
    """
    out, docs, tokens = [], {}, set()
    for r in rows:
        d, t = r.get("doc"), r.get("token")
        if docs.get(d, 0) >= per_doc or t in tokens:
            continue
        docs[d] = docs.get(d, 0) + 1
        tokens.add(t)
        out.append({**r, "#": len(out) + 1})
        if len(out) == top:
            break
    return out
