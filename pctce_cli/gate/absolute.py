"""Absolute gate rules: thresholds on a candidate's divergence from its reference model (``p99 kl <= 0.05``, ``same_top1 >= 0.98``).

A release of a quantized or distilled model is judged by how far it moved
from the model it replaces, which ``pctce score --reference`` stored with it
(docs/definitions.md#divergence-from-a-reference-model). Such a rule needs no baseline: each
candidate's own summary is compared with the limit. Its "baseline" in the
gate's tables is the limit, Δ the summary minus the limit, and the interval
of Δ the candidate's document-bootstrap interval minus the limit. A value at
the limit passes; the rule is never "not significant".
"""

from __future__ import annotations

from collections.abc import Sequence

from pctce_cli.analysis.divergence import divergence_row
from pctce_cli.gate.policy import Rule
from pctce_cli.units import TOKEN
from pctce_cli.values import value_named


def absolute_stats(ck, rules: Sequence[Rule], ci: float, n_boot: int, seed: int) -> list[dict]:
    """For each absolute rule, the entry :func:`pctce_cli.gate.evaluate.evaluate_rule` reads: ``{a, b, delta, lo, hi}``.

    ``a`` is the limit, ``b`` the candidate's summary, ``delta`` = b − a.

    Raises:
        UsageError: the candidate was scored without ``--reference`` (named, with what to do).
    """
    from pctce_cli.stats.summaries import parse_summary_name
    from pctce_cli.store import load_scores

    out = []
    cache: dict[str, dict] = {}
    for rule in rules:
        kind = value_named(rule.value)
        kind.check(ck, TOKEN)
        if kind.column not in cache:
            s = load_scores(ck.root, ck.partition, columns=("doc", kind.column, "same_top1"))
            levels = sorted({parse_summary_name(r.summary).q for r in rules if r.summary.startswith("p")})
            cache[kind.column] = divergence_row(getattr(s, kind.column), s.doc, s.same_top1, levels, ci, n_boot, seed)
        row = cache[kind.column]
        limit = rule.at_most if rule.at_most is not None else rule.at_least
        b, lo, hi = (row.get(f"{rule.summary}{suffix}", float("nan")) for suffix in ("", "_lo", "_hi"))
        out.append({"a": limit, "b": b, "delta": b - limit, "lo": lo - limit, "hi": hi - limit})
    return out


__all__ = ["absolute_stats"]
