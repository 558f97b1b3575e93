"""Core of `pctce compare`: a paired analysis of two checkpoints scored on the same targets.

Both checkpoints must hold the same targets (same data, tokenizer and target
selection: the manifests' ``data``, ``tokenizer`` and ``documents`` fingerprints
agree, and the stored doc/pos/token arrays are identical). Then every summary
is compared as Δ = candidate − baseline with a paired document-level bootstrap
interval (docs/definitions.md#summaries-of-one-checkpoint): each replicate resamples the same documents for both.

With ``--by FIELD`` the comparison is made per subset of the validation data
(docs/definitions.md#subsets): each subset's Δ and interval come from a paired bootstrap over that
subset's documents only; ``--subset VALUE`` compares only those documents.

Checkpoint arguments (``DIR``, ``DIR:ID`` or an id in ``--store DIR``) and the
comparability rule come from :mod:`pctce_cli.catalog`; this module adds the
row-by-row alignment check that `gate` and `tail` share. No torch import here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pctce_cli.analysis.divergence_pairs import RENAMED, WORDINGS, compare_names, load_divergence_pair, notes_of
from pctce_cli.analysis.report import Report
from pctce_cli.analysis.position import position_pairs, resolve_positions
from pctce_cli.analysis.subsets import NO_SUBSETS, Subsets, doc_labels, no_targets, resolve_subsets, split_scores
from pctce_cli.catalog import Checkpoint, check_pairable, label_pair, resolve_ref, settings_notes
from pctce_cli.fmt import signed
from pctce_cli.errors import MixedInputError, StoreError, UsageError
from pctce_cli.stats.bootstrap import paired_bpb
from pctce_cli.stats.defaults import DEFAULT_PERCENTILES
from pctce_cli.stats.summaries import summary_columns
from pctce_cli.store import Scores
from pctce_cli.units import TOKEN, Unit, Values, as_values, unit_named
from pctce_cli.values import CE, value_named


# ---------------------------------------------------------------- pairing


def load_pair(a: Checkpoint, b: Checkpoint, a_name: str, b_name: str, unit: str | Unit = TOKEN, base: Values | None = None, columns=("doc", "pos", "token", "ce", "rank")) -> tuple[Values, Values]:
    """Check the manifests (:func:`pctce_cli.catalog.check_pairable`), then load both checkpoints' values paired in ``unit``.

    Args:
        base: ``a``'s values when already loaded (the gate reads its baseline once).
        columns: The token columns read (tokens only).

    Raises:
        MixedInputError: the manifests or the loaded rows do not pair (:meth:`pctce_cli.units.Unit.pair`).
        UsageError: words or bytes of a checkpoint without byte spans.
    """
    unit = unit_named(unit)
    check_pairable(a, b, a_name, b_name, unit.name)
    return unit.pair(a, b, a_name, b_name, base=base, columns=columns)


# ---------------------------------------------------------------- statistics


def significant(lo: float, hi: float) -> bool:
    """An interval excludes zero."""
    return bool((lo > 0 or hi < 0) and not (math.isnan(lo) or math.isnan(hi)))


def _interval_text(lo: float, hi: float) -> str:
    return f"[{signed(lo)}, {signed(hi)}]"


def verdict(stats: dict, ci: float, words: tuple[str, str] = ("worse", "better")) -> list[str]:
    """Plain-language reading of a paired comparison, from mean and median (p50) and their intervals.

    Returns the verdict line, then (when some other summary changed
    significantly) a line naming those changes. ``words``: how a positive and a negative Δ read.

    Examples:
        >>> s = {"mean": {"delta": 0.05, "lo": 0.03, "hi": 0.07}, "p50": {"delta": -0.03, "lo": -0.04, "hi": -0.02}}
        >>> verdict(s, 0.95)[0]
        'Verdict: mean worse by +0.05, median better by −0.03: the distribution is being reshaped — decide by what your task depends on.'
    """
    m, p = stats["mean"], stats.get("p50")
    level = f"{ci:.0%}"
    sm = significant(m["lo"], m["hi"])
    word = lambda d: words[0] if d > 0 else words[1]  # noqa: E731
    if p is None:
        if sm:
            line = f"candidate {word(m['delta'])}: mean {signed(m['delta'])} {_interval_text(m['lo'], m['hi'])}"
        else:
            line = f"no significant change: mean {signed(m['delta'])} {_interval_text(m['lo'], m['hi'])} (the {level} interval includes 0)"
    else:
        sp = significant(p["lo"], p["hi"])
        dm, dp = m["delta"], p["delta"]
        if (sm or sp) and dm * dp < 0:
            line = (
                f"mean {word(dm)} by {signed(dm)}, median {word(dp)} by {signed(dp)}: "
                "the distribution is being reshaped — decide by what your task depends on"
            )
        elif sm and sp:
            line = (
                f"candidate {word(dm)}: mean {signed(dm)} {_interval_text(m['lo'], m['hi'])}, "
                f"median {signed(dp)} {_interval_text(p['lo'], p['hi'])} (both {level} intervals exclude 0)"
            )
        elif not sm and not sp:
            line = (
                f"no significant change: mean {signed(dm)} {_interval_text(m['lo'], m['hi'])}, "
                f"median {signed(dp)} {_interval_text(p['lo'], p['hi'])} (both {level} intervals include 0)"
            )
        else:
            (sname, s), (oname, o) = (("mean", m), ("median", p)) if sm else (("median", p), ("mean", m))
            line = (
                f"candidate {word(s['delta'])} on the {sname}: {signed(s['delta'])} {_interval_text(s['lo'], s['hi'])}; "
                f"the {oname} change {signed(o['delta'])} {_interval_text(o['lo'], o['hi'])} is within noise"
            )
    lines = [f"Verdict: {line}."]
    others = [
        f"{name} {signed(v['delta'])}"
        for name, v in stats.items()
        if name not in ("mean", "p50") and significant(v["lo"], v["hi"])
    ]
    if others:
        lines.append(f"Also changed beyond noise ({level} interval excludes 0): " + ", ".join(others) + ".")
    return lines


@dataclass
class Comparison:
    """Everything `pctce compare` reports."""

    baseline: str
    candidate: str
    stats: dict  # summary -> {delta, lo, hi, a, b}
    targets: dict  # n, down, up, unchanged (fractions)
    docs: list[dict]  # one row per document: doc, targets, nll_a, nll_b, d_nll, mean_a, mean_b, d_mean
    ci: float
    n_boot: int
    seed: int
    method: str
    notes: list[str] = field(default_factory=list)
    unit: str = "token"  # what a row is: a target, or a word or byte (docs/definitions.md#words-and-bytes)
    value: str = "ce"  # what a row's value is: CE, or the divergence from a reference model (kl, dp)

    @property
    def noun(self) -> str:
        """``target``, ``word`` or ``byte``: what the counts and per-row means are of."""
        return unit_named(self.unit).noun


def compare_scores(
    sa: Values | Scores,
    sb: Values | Scores,
    baseline: str,
    candidate: str,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    unit: str = "token",
    value: str = "ce",
) -> Comparison:
    """Paired comparison of two aligned checkpoints (``sa`` baseline, ``sb`` candidate).

    (Long the comparison's statistics computed in the order the result lists them.)

    Summaries: mean, the percentiles (p50 always included, for the verdict),
    iqr and bits-per-byte, each as Δ = candidate − baseline with a paired
    document-level bootstrap interval.

    With ``sa.weight`` (paired byte runs, :meth:`pctce_cli.units.ByteUnit.align`)
    row ``i`` counts ``weight[i]`` times in every summary and fraction, and
    the per-document table counts bytes. :class:`pctce_cli.store.Scores` are
    read as token values. ``value`` ``kl``/``dp``: mean, percentiles, max and same_top1 (``rank`` = 1 − same_top1) of it.
    """
    from pctce_cli.stats.bootstrap import paired_bootstrap
    from pctce_cli.stats.summaries import doc_sums

    if not 0 < ci < 1:
        raise UsageError(f"ci must be between 0 and 1 (e.g. 0.95), got {ci}", param="ci")
    if n_boot < 1:
        raise UsageError(f"n_boot must be at least 1, got {n_boot}", param="n_boot")
    sa, sb = as_values(sa), as_values(sb)
    if len(sa.value) == 0:
        raise StoreError(f"'{baseline}' holds no targets")
    kind = value_named(value)
    qs = sorted(set(float(q) for q in percentiles) | {50.0})
    w = sa.weight  # paired byte runs; other rows count once
    ranks = {} if kind is CE or sa.rank is None else {"rank_a": sa.rank, "rank_b": sb.rank}  # same_top1 (tokens)
    names = summary_columns(qs, "iqr") if kind is CE else [n for n in compare_names(kind, qs) if n != "top1" or ranks]
    res = paired_bootstrap(sa.value, sb.value, sa.doc, names, n_boot=n_boot, ci=ci, seed=seed, weights=w, **ranks)
    stats = {RENAMED.get(n, n) if kind is not CE else n: {k: float(res[n][k]) for k in ("delta", "lo", "hi", "a", "b")} for n in names}

    def mass(ce):  # what a row adds to its document's summed CE
        return ce if w is None else ce.astype(np.float64) * w

    ids, nll_a, count = doc_sums(mass(sa.value), sa.doc)
    _, nll_b, _ = doc_sums(mass(sb.value), sb.doc)
    if w is not None:
        count = np.rint(doc_sums(w.astype(np.float64), sa.doc)[1]).astype(np.int64)
    if kind is CE and sa.docs is not None and "n_bytes" in sa.docs.columns:
        n_bytes = sa.docs.drop_duplicates("doc").set_index("doc")["n_bytes"].reindex(ids).to_numpy(dtype=np.float64)
        if not np.isnan(n_bytes).any():
            stats["bpb"] = paired_bpb(nll_a, nll_b, n_bytes, n_boot, ci, seed)

    d = sb.value.astype(np.float64) - sa.value.astype(np.float64)
    wt = np.ones(len(d), np.int64) if w is None else w
    n = int(wt.sum())
    targets = {
        "targets": n,
        "down": float(wt[d < 0].sum() / n),
        "up": float(wt[d > 0].sum() / n),
        "unchanged": float(wt[d == 0].sum() / n),
    }
    docs = _doc_rows_of(ids, count, nll_a, nll_b)
    cmp = Comparison(baseline, candidate, stats, targets, docs, ci, n_boot, seed, res.method, unit=unit, value=kind.column)
    cmp.notes = verdict(stats, ci, (WORDINGS[kind.column].up, WORDINGS[kind.column].down))
    return cmp


def _doc_rows_of(ids, count, nll_a, nll_b) -> list[dict]:
    """One row per document: its rows (targets, words or bytes), Δ summed CE, Δ mean and both means."""
    return [
        {
            "doc": int(i),
            "targets": int(c),
            "Δ nll": float(nb - na),
            "Δ mean": float((nb - na) / c),
            "mean baseline": float(na / c),
            "mean candidate": float(nb / c),
        }
        for i, c, na, nb in zip(ids, count, nll_a, nll_b)
    ]


def _doc_rows(rows: list[dict], noun: str, summed: str = "Δ nll") -> list[dict]:
    """Document rows with their count column named by what was counted (``targets``, ``words``, ``bytes``) and the Δ sum by ``summed``."""
    if noun == "target" and summed == "Δ nll":
        return rows
    names = {"targets": f"{noun}s", "Δ nll": summed}
    return [{names.get(k, k): v for k, v in r.items()} for r in rows]


def top_documents(docs: list[dict], key: str, top: int) -> list[dict]:
    """The ``top`` documents with the largest |``key``| (ties: smaller document id first)."""
    return sorted(docs, key=lambda r: (-abs(r[key]), r["doc"]))[:top]


def comparison_report(c: Comparison, top: int = 10) -> Report:
    """Tables and reading lines of a :class:`Comparison`."""
    report = Report()
    rows = []
    for name, v in c.stats.items():  # Δp: no Δ%, a change relative to a signed value near 0 (−196 %) says nothing
        rel = v["delta"] / abs(v["a"]) if v["a"] and c.value != "dp" else math.nan
        rows.append(
            {
                "summary": name,
                "baseline": v["a"],
                "candidate": v["b"],
                "Δ": v["delta"],
                "Δ%": 100.0 * rel,
                "lo": v["lo"],
                "hi": v["hi"],
                "significant": significant(v["lo"], v["hi"]),
            }
        )
    w = WORDINGS[c.value]
    report.add(f"{c.candidate} − {c.baseline} {w.head}", rows)
    t, noun = c.targets, c.noun
    report.add(
        f"{noun.capitalize()}s whose {w.label} went down / up / stayed (fractions)",
        [{f"{noun}s": t["targets"], "down": t["down"], "up": t["up"], "unchanged": t["unchanged"]}],
    )
    if top > 0:
        report.add(f"Documents that moved most by {w.sum_title}", _doc_rows(top_documents(c.docs, "Δ nll", top), noun, w.sum_key))
        report.add(f"Documents that moved most by {w.mean_title.format(noun=noun)}", _doc_rows(top_documents(c.docs, "Δ mean", top), noun, w.sum_key))
    report.notes += c.notes
    report.notes.append(
        f"Intervals: {c.ci:.0%} paired document-level bootstrap of Δ, {c.n_boot} resamples, seed {c.seed}, "
        f"method {c.method}; 'significant' = the interval excludes 0."
    )
    return report


def subset_pairs(sa: Values, sb: Values, a_name: str, b_name: str, subsets: Subsets) -> tuple[list[tuple[str | None, Values, Values]], list[str]]:
    """Split two aligned checkpoints into the same subsets: ``[(label, baseline view, candidate view)]`` and notes.

    Subsets are sets of documents, so the aligned rows of both checkpoints
    split identically (by the baseline's labels; the candidate's, scored on the
    same data, must agree). Each view holds only that subset's targets and
    documents, so a paired bootstrap on it resamples only that subset's documents.

    Raises:
        UsageError: a ``--subset`` value no document has, or no kept subset has targets.
        MixedInputError: the two checkpoints label the documents differently.
    """
    if not subsets.active:
        return [(None, sa, sb)], []
    la, lb = doc_labels(sa.docs, subsets.field), doc_labels(sb.docs, subsets.field)
    if len(la) != len(lb) or not np.array_equal(la.astype(str), lb.astype(str)):
        raise MixedInputError(
            f"cannot pair '{a_name}' with '{b_name}' by {subsets.field}: their documents carry different {subsets.field} labels; "
            f"label both with the same 'pctce score … --subset-field {subsets.field}'"
        )
    parts, notes = split_scores(a_name, sa.doc, sa.docs, subsets)
    if not parts or all(p.runs is not None and not len(p.runs) for p in parts):
        raise no_targets(subsets)
    return [(p.label, sa.take(p), sb.take(p)) for p in parts], notes


def direction(stats: dict) -> str:
    """One word for a comparison, from mean and median: ``better``, ``worse``, ``reshaped`` or ``no significant change``.

    Examples:
        >>> direction({"mean": {"delta": -0.1, "lo": -0.2, "hi": -0.05}, "p50": {"delta": -0.01, "lo": -0.02, "hi": 0.01}})
        'better'
    """
    moved = [v for k, v in stats.items() if k in ("mean", "p50")]
    sig = [v["delta"] for v in moved if significant(v["lo"], v["hi"])]
    deltas = [v["delta"] for v in moved]
    if not sig:
        return "no significant change"
    if min(deltas) < 0 < max(deltas):
        return "reshaped"
    return "worse" if sig[0] > 0 else "better"


MOVED = WORDINGS["ce"].moved


def subset_report(comps: list[tuple[str, Comparison]], field: str, top: int = 10, notes: Sequence[str] = ()) -> Report:
    """`pctce compare --by FIELD`: Δ of every summary per subset (one table with a ``subset`` column) and readings.

    Each subset's intervals come from a paired bootstrap over that subset's documents (docs/definitions.md#subsets).
    """
    report = Report(notes=list(notes))
    c0 = comps[0][1]
    w = WORDINGS[c0.value]
    rows, verdicts, docs = [], [], []
    for label, c in comps:
        for row in comparison_report(c, top=0).sections[0][1]:
            rows.append({"subset": label, **row})
        m, p = c.stats["mean"], c.stats.get("p50", c.stats["mean"])
        verdicts.append(
            {
                "subset": label,
                f"{c.noun}s": c.targets["targets"],
                "documents": len(c.docs),
                "Δ mean": m["delta"],
                "mean lo": m["lo"],
                "mean hi": m["hi"],
                "Δ p50": p["delta"],
                "p50 lo": p["lo"],
                "p50 hi": p["hi"],
                "candidate": w.moved.get(direction(c.stats), direction(c.stats)).split(" (")[0],
            }
        )
        docs += [{"subset": label, **d} for d in c.docs]
    report.add(f"{c0.candidate} − {c0.baseline} by {field} {w.head}", rows)
    report.add(f"Verdict by {field} (mean and median, {c0.ci:.0%} paired intervals)", verdicts)
    if top > 0:
        noun = c0.noun
        report.add(f"Documents that moved most by {w.sum_title}, with their {field}", _doc_rows(top_documents(docs, "Δ nll", top), noun, w.sum_key))
        report.add(f"Documents that moved most by {w.mean_title.format(noun=noun)}, with their {field}", _doc_rows(top_documents(docs, "Δ mean", top), noun, w.sum_key))
    by_word: dict[str, list[str]] = {}
    for v in verdicts:
        by_word.setdefault(v["candidate"], []).append(v["subset"])
    for word in ("worse", "better", "reshaped"):
        if word in by_word:
            report.notes.append(f"{c0.candidate} is {w.moved[word]} than {c0.baseline} on {field} = {', '.join(by_word[word])}.")
    if "no significant change" in by_word:
        report.notes.append(f"No significant change on {field} = {', '.join(by_word['no significant change'])}.")
    for label, c in comps:
        report.notes.append(f"{field} = {label}: " + c.notes[0].removeprefix("Verdict: "))
    report.notes.append(
        f"Intervals: {c0.ci:.0%} paired document-level bootstrap of Δ within each subset (only that subset's documents are "
        f"resampled), {c0.n_boot} resamples, seed {c0.seed}, method {c0.method}; 'significant' = the interval excludes 0."
    )
    return report


def run_compare(
    baseline: str,
    candidate: str,
    store: str | Path | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    top: int = 10,
    by: str | None = None,
    subset: Sequence[str] = (),
    unit: str = "token",
    position_edges: str | Sequence[int] | None = None,
    value: str = "ce",
) -> Report:
    """`pctce compare`: resolve both arguments, check they pair, compare, and build the report.

    Args:
        by: ``--by FIELD``: one paired comparison per subset of FIELD (docs/definitions.md#subsets).
        subset: ``--subset VALUE``: compare only the documents of these subsets.
        unit: ``word``: pair words, not tokens (docs/definitions.md#words-and-bytes), so two tokenizers of
            the same data compare word by word; ``byte``: pair bytes (each
            byte's value the CE of its token spread over the token's bytes).
        value: ``kl`` or ``dp``: pair the two checkpoints' divergence from the reference model both were scored
            against (refused when their references differ; docs/definitions.md#divergence-from-a-reference-model).
    """
    if top < 0:
        raise UsageError(f"top must be >= 0, got {top}", param="top")
    a = resolve_ref(baseline, store, "BASELINE")
    b = resolve_ref(candidate, store, "CANDIDATE")
    a_name, b_name = label_pair(a, b)
    if a.root == b.root and a.partition == b.partition:
        raise UsageError(f"BASELINE and CANDIDATE are the same checkpoint ('{a_name}')")
    positions = resolve_positions(by, position_edges, unit)  # --by position|ctx: token buckets (docs/definitions.md#position-in-the-context)
    if positions is not None:
        by = None
    subsets = resolve_subsets([a, b], by, subset) if (by or subset) else NO_SUBSETS
    kind = value_named(value)
    if kind is CE:
        sa, sb = load_pair(a, b, a_name, b_name, unit, columns=("doc", "pos", "token", "ce"))
    else:
        sa, sb = load_divergence_pair(a, b, a_name, b_name, kind, unit)
    pairs, notes = subset_pairs(sa, sb, a_name, b_name, subsets)
    if positions is not None:
        pairs, notes = position_pairs(pairs[0][1], pairs[0][2], positions, a_name), notes + [positions.note()]
    comps = [(label, compare_scores(va, vb, a_name, b_name, percentiles, ci, n_boot, seed, unit, kind.column)) for label, va, vb in pairs]
    if positions is not None:
        report = subset_report(comps, positions.dim, top, notes)
    elif subsets.split:
        report = subset_report(comps, subsets.field, top, notes)
    else:
        report = comparison_report(comps[0][1], top)
        if subsets.active:
            report.sections[0] = (report.sections[0][0] + f", subset {subsets.describe()}", report.sections[0][1])
            report.notes = notes + report.notes + [f"Only documents of subset {subsets.describe()} ({len(pairs[0][1].docs)} documents)."]
    report.notes += settings_notes(a, b, a_name, b_name)
    report.notes += UNIT_NOTES.get(unit, []) if kind is CE else notes_of(a, kind, unit)
    return report


UNIT_NOTES = {
    "word": ["Unit: words (docs/definitions.md#words-and-bytes). Each value is a word's CE, the sum of its tokens' CE; 'targets' counts words."],
    "byte": [
        "Unit: bytes (docs/definitions.md#words-and-bytes). Each byte's value is the CE of the token covering it divided by that token's bytes; bytes are "
        "paired across the two tokenizations (runs of bytes covered by one token of each, weighted by their length); "
        "'targets' counts bytes, and the document table's 'targets' too."
    ],
}
