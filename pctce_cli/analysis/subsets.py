"""Subsets of the validation data in analysis commands (docs/definitions.md#subsets): ``--by FIELD`` and ``--subset VALUE``.

A subset field labels documents: a data field given to ``pctce score
--subset-field`` (or ``--subset-from-file``), or ``correct`` (the greedy answer
matched, from ``--task-accuracy``). ``--by`` splits every analysis by the
field's values; ``--subset`` keeps only the documents with the given values.
Every target belongs to its document's subset, so a subset's arrays are its
documents' runs of rows (:func:`pctce_cli.stats.subsets.subset_runs`), read
once per checkpoint with the pooled ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats.subsets import subset_runs, take
from pctce_cli.store import check_labels_named, label_fields

CORRECT = "correct"  # the outcome subset: values correct / incorrect (greedy substring match)
CORRECT_COLUMN = "substring_match"
MAX_SUBSETS = 50  # a table per subset beyond this is a wall: the largest are kept, and a note says so


@dataclass(frozen=True)
class Subsets:
    """What ``--by``/``--subset`` ask for.

    Attributes:
        field: The subset field (None: no subsets, the pooled data).
        split: ``--by``: one result per subset value.
        keep: ``--subset`` values: only these documents are analysed.
    """

    field: str | None = None
    split: bool = False
    keep: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Whether anything is split or filtered."""
        return self.field is not None

    def describe(self) -> str:
        """``subset domain = code, math`` for titles; empty when inactive."""
        if not self.keep:
            return ""
        return f"{self.field} = {', '.join(self.keep)}"


NO_SUBSETS = Subsets()


def subset_fields(ck) -> list[str]:
    """The subset fields of one checkpoint: its stored labels, plus ``correct`` after ``--task-accuracy``."""
    fields = label_fields(ck.manifest)
    if ck.manifest.settings.get("task_accuracy"):
        fields.append(CORRECT)
    return fields


def resolve_subsets(cks: Sequence, by: str | None = None, keep: Sequence[str] = ()) -> Subsets:
    """Check ``--by``/``--subset`` against the checkpoints' stored subsets.

    ``--subset`` values name the field as ``FIELD=VALUE``, or take it from
    ``--by``, or from the only subset field the checkpoints have.

    Raises:
        UsageError: an unknown field, a field some checkpoints lack, or values
            whose field is ambiguous (each message names the option, the
            subsets there are and how to add one).
    """
    keep = list(keep or ())
    if by is None and not keep:
        return NO_SUBSETS
    have = [set(subset_fields(c)) for c in cks]
    common = sorted(set.intersection(*have)) if have else []
    named = {v.split("=", 1)[0] for v in keep if "=" in v and v.split("=", 1)[0] in set.union(*have, set())}
    if len(named) > 1 or (by is not None and named and named != {by}):
        raise UsageError(f"subset: values name different fields ({', '.join(sorted(named | ({by} if by else set())))}); use one field", param="subset")
    field = by or (named.pop() if named else None)
    if field is None:
        if len(common) != 1:
            listed = f"the checkpoints have subsets {', '.join(common)}" if common else "the checkpoints have no subsets"
            raise UsageError(f"subset {keep[0]}: name the subset field with by FIELD or subset FIELD=VALUE ({listed})", param=("subset", "by", "subset"))
        field = common[0]
    values = tuple(dict.fromkeys(v.split("=", 1)[1] if v.startswith(f"{field}=") else v for v in keep))
    option = "--by" if by is not None else "--subset"
    lacking = [c.id for c, h in zip(cks, have) if field not in h]
    if lacking:
        check_labels_named(cks, f"{option} {field}", field)
        known = sorted(set.union(*have)) if have else []
        add = (
            "score with --task-accuracy"
            if field == CORRECT
            else f"add it with 'pctce score … --subset-field {field}' (the scores are re-used, nothing is re-scored)"
        )
        where = (
            f"no checkpoint has a subset '{field}'"
            if len(lacking) == len(cks)
            else f"{', '.join(lacking[:5])} {'has' if len(lacking) == 1 else 'have'} no subset '{field}'"
        )
        raise UsageError(f"{option} {field}: {where} (subsets: {', '.join(known) or 'none'}); {add}")
    return Subsets(field=field, split=by is not None, keep=values)


@dataclass
class Part:
    """One subset of one checkpoint's targets: its label, its rows (runs) and its documents."""

    label: str | None  # None: all kept documents together
    runs: np.ndarray | None  # [start, end) row ranges; None: every row
    docs: object  # the per-document table of the subset's documents

    def take(self, values):
        """``values`` (a per-target array) restricted to this part's rows."""
        if values is None:
            return None
        return values if self.runs is None else take(values, self.runs)


def no_targets(subsets: Subsets) -> UsageError:
    """The error for ``--subset`` values whose documents have no scored targets (raised by the caller)."""
    kept = ", ".join(subsets.keep)
    return UsageError(f"subset {kept}: the documents of {subsets.field} = {kept} have no scored targets", param="subset")


def doc_labels(docs, field: str) -> np.ndarray:
    """One label per row of the per-document table (``correct`` from the stored substring match)."""
    if field == CORRECT:
        if CORRECT_COLUMN not in docs:
            raise UsageError("by correct: the store has no per-document correctness; score with --task-accuracy", param="by")  # the remedy is an option of pctce score
        ok = np.asarray(docs[CORRECT_COLUMN], dtype=bool)
        return np.where(ok, "correct", "incorrect").astype(object)
    return np.asarray(docs[field], dtype=object)


def stored_values(ck, field: str) -> list[str]:
    """Every value of a stored subset field, documents without targets included (they have no per-document row)."""
    from pctce_cli.store import partition_dir, read_labels

    if field == CORRECT:
        return []
    labels = read_labels(ck.root, ck.manifest, partition_dir(ck.root, ck.partition))
    return sorted(set(labels[field].astype(str))) if labels is not None and field in labels else []


def split_scores(ck_id: str, doc: np.ndarray, docs, subsets: Subsets, known: Sequence[str] = ()) -> tuple[list[Part], list[str]]:
    """Split one checkpoint's targets (by their document ids ``doc``) as ``subsets`` asks.

    Args:
        known: Values of the field that documents without targets have
            (:func:`stored_values`), so that a subset left with no targets
            is reported rather than silently absent.

    Returns:
        ``(parts, notes)``: one :class:`Part` per subset (``--by``; at most
        :data:`MAX_SUBSETS`, largest by documents), or one part of the kept
        documents; notes say what was left out and why.

    Raises:
        UsageError: a ``--subset`` value that matches no document.
    """
    if not subsets.active:
        return [Part(None, None, docs)], []
    labels = doc_labels(docs, subsets.field)
    names, counts = np.unique(labels.astype(str), return_counts=True)
    extra = sorted(set(known) - set(names.tolist()))
    names, counts = np.r_[names, np.array(extra, dtype=names.dtype if names.size else object)].astype(str), np.r_[counts, np.zeros(len(extra), int)]
    notes: list[str] = []
    for v in subsets.keep:
        if v not in set(names.tolist()):
            shown = ", ".join(names[:12].tolist()) + (" …" if names.size > 12 else "")
            raise UsageError(f"subset {v}: no document of {ck_id} has {subsets.field} = {v} (values: {shown})", param="subset")
    wanted = list(subsets.keep) if subsets.keep else sorted(names.tolist())
    if subsets.split and len(wanted) > MAX_SUBSETS:
        order = sorted(range(names.size), key=lambda k: (-counts[k], names[k]))
        keep_names = {names[k] for k in order[:MAX_SUBSETS]}
        notes.append(
            f"{len(wanted):,} subsets of '{subsets.field}': the tables show the {MAX_SUBSETS} with the most documents; "
            "choose others with --subset VALUE"
        )
        wanted = [w for w in wanted if w in keep_names]
    runs = subset_runs(doc, np.asarray(docs["doc"]), labels)
    empty = [w for w in wanted if w not in runs]
    if empty:
        notes.append(f"subset{'s' if len(empty) > 1 else ''} {', '.join(empty[:8])} of '{subsets.field}' {'have' if len(empty) > 1 else 'has'} no scored targets: left out")
    wanted = [w for w in wanted if w in runs]
    if not subsets.split and not wanted:
        raise UsageError(f"subset {', '.join(subsets.keep)}: no scored targets in {ck_id} (its documents have none left after masking)", param="subset")
    mask_of = {w: labels.astype(str) == w for w in wanted}
    if subsets.split:
        parts = [Part(w, runs[w], docs[mask_of[w]].reset_index(drop=True)) for w in wanted]
    else:
        kept = np.concatenate([runs[w] for w in wanted]) if wanted else np.zeros((0, 2), np.int64)
        kept = kept[np.argsort(kept[:, 0], kind="stable")]  # stored order
        mask = np.logical_or.reduce([mask_of[w] for w in wanted]) if wanted else np.zeros(len(labels), bool)
        parts = [Part(None, kept, docs[mask].reset_index(drop=True))]
    return parts, notes
