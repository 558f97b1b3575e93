"""Gate rules on a position range (docs/definitions.md#position-in-the-context): ``p50@pos>=4096:+1%`` or ``position = ">=4096"``.

A rule with a range is checked on the baseline's targets whose ``pos`` (or
``ctx``) is in ``[lo, hi)``, paired row by row with the candidate's, with a
paired bootstrap over the documents those targets belong to. The range's rows
join the plan beside the subsets' (:class:`pctce_cli.gate.subsets.Plan`), so
every partition is still read once.
"""

from __future__ import annotations

import numpy as np

from pctce_cli.errors import PolicyError
from pctce_cli.gate.subsets import Check, Plan
from pctce_cli.stats.position import range_text


def add_position_checks(plan: Plan, sa, base_id: str, unit) -> None:
    """Replace each position rule's checks by one check on its range's rows (within the kept documents).

    Raises:
        PolicyError: a position rule in words or bytes, or ``ctx`` of a store scored with prompts.
    """
    rules = [c.rule for c in plan.checks if c.rule.position is not None]
    if not rules:
        return
    if unit.name != "token":
        raise PolicyError(f"{rules[0].source}: a rule on a position range needs token rows: gate it with unit = \"token\"")
    plan.checks = [c for c in plan.checks if c.rule.position is None]
    kept = np.zeros(len(sa.value), bool)
    runs = plan.runs.get(None)
    if runs is None:
        kept[:] = True
    else:
        for a, b in runs.tolist():
            kept[a:b] = True
    ctx = None
    for r in dict.fromkeys(rules):
        dim, lo, hi = r.position
        if dim == "ctx" and ctx is None:
            from pctce_cli.analysis.position import contexts

            try:
                ctx = contexts(sa.doc, sa.index, sa.manifest, base_id, sa.docs)
            except Exception as e:  # a usage error of the store's data: worded for the rule
                raise PolicyError(f"{r.source}: {e}") from None
        values = sa.index if dim == "pos" else ctx
        inside = kept & (values >= lo) & ((values < hi) if hi is not None else True)
        key = range_text(dim, lo, hi)
        if not inside.any():  # no candidate could ever be checked on it: the policy is wrong, not the release
            seen = values[kept]
            span = f"its {dim} runs {int(seen.min())}–{int(seen.max())}" if seen.size else "it has no targets"
            raise PolicyError(f"{r.source}: no target of '{base_id}' lies at {key} ({span}); a rule on a range no target reaches cannot be checked: change the range")
        plan.runs[key] = _runs(inside)
        plan.checks.append(Check(r, key))


def _runs(mask: np.ndarray) -> np.ndarray:
    """The ``[start, end)`` runs of True in ``mask``, as :func:`pctce_cli.stats.subsets.take` reads them."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1).astype(np.int64)
