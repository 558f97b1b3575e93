"""Gate rules on subsets of the validation data (docs/definitions.md#subsets): which field, which subsets, which rows.

A rule may carry ``subset``: a value of the subset field (``"code"``), the
field and value (``"domain=code"``), or ``"*"`` (``"domain=*"``): one check
per subset. The field is the one ``--by``, ``--subset FIELD=VALUE``, the
policy's ``subset_field`` or a rule's ``FIELD=`` names (one field per gate
run), else the store's only subset field. ``--by FIELD`` gates every subset
for the rules that name none; ``--subset VALUE`` keeps only those documents
for every rule.

The plan is made from the baseline's arrays, already loaded: each subset is a
set of row runs (:func:`pctce_cli.stats.subsets.subset_runs`), so every
candidate's partition is read once whatever the number of subset rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pctce_cli.analysis.subsets import CORRECT, doc_labels, subset_fields
from pctce_cli.errors import PolicyError, UsageError
from pctce_cli.gate.policy import Rule
from pctce_cli.stats.subsets import subset_runs, take

EVERY = "*"
SHOWN = 50  # subsets listed in the tables (failures always); JSON and JUnit hold every check


@dataclass(frozen=True)
class Check:
    """One rule on one subset (``subset`` None: every kept document)."""

    rule: Rule
    subset: str | None = None


@dataclass
class Plan:
    """What the gate evaluates: checks in rule order, the rows of each subset, and the subsets table."""

    field: str | None
    keep: tuple[str, ...]
    checks: list[Check]
    runs: dict  # subset (None: every kept document) -> row runs, or None for every row
    table: list[dict] = field(default_factory=list)  # subset, targets, documents (the baseline's)
    notes: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.field is not None

    def rows(self, values: np.ndarray, subset: str | None) -> np.ndarray:
        """``values`` (a per-target array of the baseline's row order) restricted to ``subset``."""
        runs = self.runs.get(subset)
        return values if runs is None else take(values, runs)


def _field_of(text: str, known: set[str]) -> str | None:
    head, eq, _ = text.partition("=")
    return head if eq and head in known else None


def _value_of(text: str, fld: str) -> str:
    return text[len(fld) + 1 :] if text.startswith(f"{fld}=") else text


def _add_hint(fld: str) -> str:
    if fld == CORRECT:
        return "score with --task-accuracy"
    return f"add it with 'pctce score … --subset-field {fld}' (the scores are re-used, nothing is re-scored)"


def resolve_field(cks: Sequence, rules: Sequence[Rule], policy_field: str | None, policy_where: str, by: str | None, keep: Sequence[str]) -> str | None:
    """The one subset field of a gate run (None when no rule, ``--by`` or ``--subset`` asks for subsets).

    Raises:
        PolicyError: rules or the policy name a field the checkpoints lack, several fields, or a bare
            value when the store has several fields (each message names the rule or key).
        UsageError: the same for ``--by``/``--subset``.
    """
    wants = [r for r in rules if r.subset is not None]
    if by is None and not keep and not wants:
        return None
    have = [set(subset_fields(c)) for c in cks]
    known, common = set.union(*have), set.intersection(*have)
    claims: list[tuple[str, str]] = []  # (field, where it was named)
    if by is not None:
        claims.append((by, "--by"))
    claims += [(f, "--subset") for f in (_field_of(v, known) for v in keep) if f]
    if policy_field is not None:
        claims.append((policy_field, f"{policy_where}: subset_field"))
    claims += [(f, f"{r.source}: subset '{r.subset}'") for r in wants if (f := _field_of(r.subset, known))]
    for f, where in claims:
        lacking = [c.id for c, h in zip(cks, have) if f not in h]
        if lacking:
            err = UsageError if where.startswith("--") else PolicyError
            who = "no checkpoint has a" if len(lacking) == len(cks) else f"{', '.join(lacking[:5])} {'has' if len(lacking) == 1 else 'have'} no"
            raise err(f"{where}: {who} subset field '{f}' (subsets: {', '.join(sorted(known)) or 'none'}); {_add_hint(f)}")
    named = list(dict.fromkeys(f for f, _ in claims))
    if len(named) > 1:
        raise PolicyError(f"the gate names several subset fields ({', '.join(named)}): gate one field per run (write subset = \"FIELD=VALUE\" with one FIELD)")
    if named:
        return named[0]
    if len(common) == 1:
        return next(iter(common))
    listed = f"the store has subsets {', '.join(sorted(common))}" if common else f"the store has no subsets; {_add_hint('FIELD')}"
    if not wants:
        raise UsageError(f"subset {keep[0]}: name the subset field with subset FIELD=VALUE or by FIELD ({listed})", param=("subset", "subset", "by"))
    r = wants[0]
    raise PolicyError(f"{r.source}: subset '{r.subset}': name its field, subset = \"FIELD={r.subset}\" or subset_field = \"FIELD\" ({listed})")


def make_plan(rules: Sequence[Rule], fld: str | None, by: str | None, keep: Sequence[str], doc: np.ndarray, docs, base_id: str) -> Plan:
    """Expand the rules into checks and find each subset's rows in the baseline's (aligned) arrays.

    (Long one decision table from rules and --by/--subset to checks; its cases read best together.)

    Raises:
        UsageError: a ``--subset`` value no document has, or a rule's subset that ``--subset`` leaves out.
        PolicyError: a rule's subset value that no document has (the message lists the values there are).
    """
    if fld is None:
        return Plan(None, (), [Check(r) for r in rules], {None: None})
    labels = doc_labels(docs, fld).astype(str)
    names, counts = np.unique(labels, return_counts=True)
    n_docs = dict(zip(names.tolist(), counts.tolist()))
    runs = subset_runs(doc, np.asarray(docs["doc"]), labels)

    def values() -> str:
        return ", ".join(names[:12].tolist()) + (" …" if names.size > 12 else "")

    keep = tuple(dict.fromkeys(_value_of(v, fld) for v in keep))
    for v in keep:
        if v not in n_docs:
            raise UsageError(f"subset {v}: no document of '{base_id}' has {fld} = {v} (values: {values()})", param="subset")
    kept = list(keep) or names.tolist()
    plan = Plan(fld, keep, [], {})
    if keep:
        parts = [runs[v] for v in keep if v in runs]
        joined = np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
        plan.runs[None] = joined[np.argsort(joined[:, 0], kind="stable")]
    else:
        plan.runs[None] = None
    empty_noted = False
    for r in rules:
        sub = r.subset if r.subset is not None else (EVERY if by is not None else None)
        if sub is None:
            plan.checks.append(Check(r))
            continue
        value = _value_of(sub, fld)
        if value == EVERY:
            plan.checks += [Check(r, v) for v in kept if v in runs]
            empty = [v for v in kept if v not in runs]
            if empty and not empty_noted:
                empty_noted = True
                plan.notes.append(
                    f"subset{'s' if len(empty) > 1 else ''} {', '.join(empty[:8])}{' …' if len(empty) > 8 else ''} of '{fld}' "
                    f"{'have' if len(empty) > 1 else 'has'} no scored targets: not gated"
                )
            continue
        if value not in n_docs:
            raise PolicyError(f"{r.source}: subset '{sub}': no document of '{base_id}' has {fld} = {value} (values: {values()})")
        if keep and value not in keep:
            raise UsageError(f"{r.source}: subset '{sub}' is left out by subset {', '.join(keep)}", param=(f"subset '{sub}'", "subset"))
        plan.checks.append(Check(r, value))
    for c in plan.checks:
        if c.subset is not None and c.subset not in plan.runs:
            plan.runs[c.subset] = runs.get(c.subset, np.zeros((0, 2), np.int64))
    gated = list(dict.fromkeys(c.subset for c in plan.checks if c.subset is not None))
    for v in gated:
        r = plan.runs[v]
        plan.table.append({"subset": v, "targets": int((r[:, 1] - r[:, 0]).sum()) if len(r) else 0, "documents": n_docs[v]})
    if len(gated) > SHOWN:
        plan.notes.append(
            f"{len(gated):,} subsets of '{fld}' are gated, each one; the tables list failures and the first {SHOWN} subsets "
            "(--json and --junit hold every check)"
        )
    return plan
