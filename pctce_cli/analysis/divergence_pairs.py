"""`concord`, `select` and `compare` on ``--value kl|dp``: the divergence of several checkpoints from one reference model.

Divergences are compared only against the same reference: checkpoints scored
against different reference models (the manifests' ``reference`` fingerprints
differ) are refused, named (:func:`check_same_reference`). KL is "lower is
better" (closer to the reference), so `concord` and `select` read its summaries
as they read CE's; Δp is signed (a candidate may move either way from the
reference), so no summary of it orders checkpoints and both refuse it, while
`compare` pairs two candidates' Δp target by target (docs/definitions.md#divergence-from-a-reference-model).
No torch import here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pctce_cli.analysis.divergence import divergence_rows
from pctce_cli.analysis.subsets import NO_SUBSETS, Subsets
from pctce_cli.catalog import Checkpoint, check_pairable
from pctce_cli.errors import MixedInputError, UsageError
from pctce_cli.stats.summaries import parse_summary_name
from pctce_cli.units import TOKEN, Unit, Values, unit_named
from pctce_cli.values import DP, KL, ValueKind, value_named

DEFINITION = "docs/definitions.md#divergence-from-a-reference-model"


def reference_of(ck: Checkpoint) -> dict:
    """The manifest's ``reference`` of a checkpoint scored with one (``{}`` without)."""
    return getattr(ck.manifest, "reference", None) or {}


def _describe(ck: Checkpoint, name: str | None = None) -> str:
    ref = reference_of(ck)
    return f"'{name or ck.id}' against {ref.get('path', '?')} (fingerprint {str(ref.get('fingerprint', '?'))[:12]})"


def check_same_reference(cks: Sequence[Checkpoint], kind: ValueKind, why: str, names: Sequence[str] | None = None) -> None:
    """Refuse checkpoints whose divergence was taken from different reference models (their weights fingerprints differ).

    Args:
        why: What needs one reference, the message's last clause (``a paired comparison needs …``).
        names: How the message names each checkpoint (default: their ids).

    Raises:
        MixedInputError: naming the first checkpoint whose reference differs from the first's, and both references.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> ck = lambda i, fp: NS(id=i, manifest=NS(reference={"path": "/r" + fp, "fingerprint": fp * 16}))
        >>> check_same_reference([ck("a", "1"), ck("b", "2")], KL, "a paired comparison needs both divergences taken from the same reference model")
        Traceback (most recent call last):
        ...
        pctce_cli.errors.MixedInputError: value kl: 'a' was scored against /r1 (fingerprint 111111111111) and 'b' against /r2 (fingerprint 222222222222); a paired comparison needs both divergences taken from the same reference model; score both with the same reference
    """
    names = list(names) if names is not None else [c.id for c in cks]
    first = reference_of(cks[0]).get("fingerprint")
    for c, name in zip(cks[1:], names[1:]):
        if reference_of(c).get("fingerprint") != first:
            raise MixedInputError(
                f"value {kind.column}: {_describe(cks[0], names[0]).replace(' against', ' was scored against', 1)} and "
                f"{_describe(c, name)}; {why}",
                param="value", remedy=f"score {'both' if len(cks) == 2 else 'them'} with the same reference",
            )


# ---------------------------------------------------------------- concord and select


def refuse_signed(kind: ValueKind, command: str) -> None:
    """Refuse Δp where checkpoints are ranked by a summary (`concord`, `select`): its sign is no direction of better.

    Raises:
        UsageError: ``kind`` is :data:`DP`.
    """
    if kind is DP:
        raise UsageError(
            f"value dp with {command}: Δp is signed (a model can move the target's probability either way from the "
            "reference), so no summary of it ranks checkpoints by closeness to the reference; use value kl, or compare two "
            "checkpoints' Δp with compare",
            param=("value", "value"),
        )


def divergence_table(cks: Sequence[Checkpoint], value: str, needed: Sequence[str], command: str, option: str = "set", subsets: Subsets = NO_SUBSETS, notes: list[str] | None = None, unit: str = "token", meta_columns: bool = True):
    """The summaries table `concord` and `select` read, of KL instead of CE: one row per checkpoint (and subset).

    Columns ``mean`` and one ``pXX`` per level in ``needed`` (``p100`` is the max), plus ``max`` and ``same_top1``
    (tokens), the checkpoint's ``--meta`` columns, group and step. Lower is closer to the reference.

    Args:
        command: ``concord`` or ``select`` (named in refusals).
        option: The parameter that named a summary KL has no form of.

    Raises:
        UsageError: value dp; a summary other than mean and percentiles; a checkpoint without divergence columns.
        MixedInputError: checkpoints scored against different references.
    """
    from pctce_cli.analysis.summary import rows_table

    kind = value_named(value)
    refuse_signed(kind, command)
    for name in needed:
        if parse_summary_name(name).kind not in ("mean", "p"):
            raise UsageError(
                f"{option} {name} with value {kind.column}: a divergence is summarized by its mean and percentiles (pXX; p100 is the max); drop {name}",
                param=(option, "value"),
            )
    for ck in cks:
        kind.check(ck, unit_named(unit))
    check_same_reference(cks, kind, f"{command} ranks checkpoints by their divergence from one reference model")
    levels = sorted({parse_summary_name(n).q for n in needed if parse_summary_name(n).kind == "p"})
    rows: list[dict] = []
    for ck in cks:
        r, n = divergence_rows(ck, kind.column, levels, unit, subsets)
        rows += r
        if notes is not None:
            notes += n
    if rows and "p100" in needed:
        for r in rows:
            r["p100"] = r["max"]
    return rows_table(cks, rows, meta_columns)


def table_note(cks: Sequence[Checkpoint]) -> str:
    """The note `concord` and `select` print on a KL table: what is ranked, from which reference, which way."""
    refs = sorted({reference_of(c).get("path", "?") for c in cks})
    return (
        f"Summaries of KL(p_ref ‖ p_model) from the reference {', '.join(refs)}, in nats: lower is closer to the reference, "
        f"so each rule picks the checkpoint closest to it by that summary ({DEFINITION})."
    )


# ---------------------------------------------------------------- compare


def load_divergence_pair(a: Checkpoint, b: Checkpoint, a_name: str, b_name: str, kind: ValueKind, unit: str | Unit = TOKEN) -> tuple[Values, Values]:
    """Both checkpoints' ``kind`` values paired row by row (tokens, or words for KL), from the same reference.

    Token values carry ``rank`` = 1 − ``same_top1`` (rank 0 where both models' top tokens agree), so ``top1``
    of them is ``same_top1``.

    Raises:
        UsageError: a checkpoint without divergence columns, or a unit the value has no form in.
        MixedInputError: different references, or the manifests or rows do not pair.
    """
    u = unit_named(unit)
    for ck in (a, b):
        kind.check(ck, u)
    check_same_reference([a, b], kind, "a paired comparison needs both divergences taken from the same reference model", [a_name, b_name])
    check_pairable(a, b, a_name, b_name, u.name)
    return u.align(_values(a, kind, u), _values(b, kind, u), a_name, b_name)


def _values(ck: Checkpoint, kind: ValueKind, u: Unit) -> Values:
    """One checkpoint's divergence values in tokens, or in words (a word's KL: the sum of its tokens')."""
    from pctce_cli.store import load_scores, load_units

    s = load_scores(ck.root, ck.partition, columns=("doc", "pos", "token", kind.column, "same_top1"))
    values = getattr(s, kind.column)
    if not u.spans:
        return Values(u, ck.id, s.doc, s.pos, values, s.docs, s.manifest, token=s.token, rank=1 - s.same_top1.astype(np.int32))
    from pctce_cli.stats.units import word_ce

    value, doc, idx = word_ce(values, s.doc, load_units(ck.root, ck.partition, "word").word)[:3]
    return Values(u, ck.id, doc, idx.astype(np.int32), value, s.docs, s.manifest)


@dataclass(frozen=True)
class Wording:
    """How `compare` words the tables and verdicts of one value kind (CE's are the historical ones)."""

    head: str  # after "B − A" in the first table's title
    label: str  # CE, KL, Δp: "Targets whose CE went down …"
    sum_key: str  # the per-document Δ of the summed values, as a column of the document tables
    sum_title: str  # … and as the title of its table
    mean_title: str  # the per-document Δ of the mean, in a title ("{noun}": target, word)
    up: str  # a positive Δ of the mean or a percentile, in the verdict
    down: str
    moved: dict  # direction word → how a --by note says it ("worse" → "worse")


CE_WORDING = Wording(
    "(nats; bpb in bits/byte; negative = lower CE for the candidate)", "CE", "Δ nll", "Δ summed nll (nats)", "Δ mean CE per {noun} (nats)",
    "worse", "better", {"better": "better", "worse": "worse", "reshaped": "reshaped (mean and median move in opposite directions)"},
)
WORDINGS = {
    "ce": CE_WORDING,
    "kl": Wording(
        "(KL from the reference, nats; negative = closer to the reference for the candidate)", "KL", "Δ summed KL",
        "Δ summed KL (nats)", "Δ mean KL per {noun} (nats)", "further from the reference", "closer to the reference",
        {"better": "closer to the reference", "worse": "further from the reference", "reshaped": "reshaped (mean and median KL move in opposite directions)"},
    ),
    "dp": Wording(
        "(Δp of the target, a probability; positive = more probability on the targets for the candidate, relative to the reference)",
        "Δp", "Δ summed Δp", "Δ summed Δp", "Δ mean Δp per {noun}", "higher Δp", "lower Δp",
        {"better": "lower in Δp", "worse": "higher in Δp", "reshaped": "reshaped (mean and median Δp move in opposite directions)"},
    ),
}


def compare_names(kind: ValueKind, percentiles: Sequence[float]) -> list[str]:
    """The summaries `compare` pairs for a divergence: mean, the percentiles (p50 always), the max and top-1 agreement.

    Example:
        >>> compare_names(KL, [99.0])
        ['mean', 'p50', 'p99', 'p100', 'top1']
    """
    from pctce_cli.stats.summaries import summary_columns

    qs = sorted({float(q) for q in percentiles} | {50.0} - {100.0})
    return summary_columns(qs) + ["p100", "top1"]


RENAMED = {"p100": "max", "top1": "same_top1"}  # the divergence summaries under the names summary --value kl gives them


def notes_of(a: Checkpoint, kind: ValueKind, unit: str) -> list[str]:
    """What `compare --value kl|dp` says about its numbers: the reference, the direction, the unit."""
    ref = reference_of(a)
    what = "KL(p_ref ‖ p_model), nats" if kind is KL else "Δp = p_model(target) − p_ref(target)"
    out = [
        (
            f"Both scored against the reference {ref.get('path', '?')} (fingerprint {str(ref.get('fingerprint', '?'))[:12]}); "
            f"each value is {what}; Δ = candidate − baseline, target by target; same_top1: top-1 agreement with the reference ({DEFINITION})."
        )
    ]
    if unit_named(unit).spans:
        out.append("Unit: words (docs/definitions.md#words-and-bytes). Each value is a word's KL, the sum of its tokens' KL; 'targets' counts words.")
    if kind is DP:  # compare leaves Δ% out for it
        out.append("No Δ% for Δp: its values are signed and often near 0, so a change relative to the baseline says nothing; read Δ.")
    return out


__all__ = [
    "CE_WORDING", "RENAMED", "WORDINGS", "Wording", "check_same_reference", "compare_names", "divergence_table",
    "load_divergence_pair", "notes_of", "refuse_signed", "table_note",
]
