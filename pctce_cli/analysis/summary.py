"""Core of `pctce summary`, and the per-checkpoint summary tables that concord and select read.

Each checkpoint's partition is read once (only the columns the requested
summaries need) and its row comes from :func:`pctce_cli.stats.row.summary_row`,
the row the Python API and the Trainer callback report too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pctce_cli.analysis.divergence import divergence_summary
from pctce_cli.analysis.report import Report
from pctce_cli.analysis.runs import runs_of
from pctce_cli.analysis.subsets import CORRECT, NO_SUBSETS, Subsets, split_scores, stored_values
from pctce_cli.analysis.units import unit_rows
from pctce_cli.analysis.stream_bound import STREAM_ABOVE, stream_above  # noqa: F401 (re-exported: position.py, tests)
from pctce_cli.analysis.summary_stream import streamed_row, streamed_subset_rows
from pctce_cli.analysis.units_stream import streamed_unit_rows
from pctce_cli.catalog import Checkpoint, identical_notes, read_table
from pctce_cli.errors import UsageError
from pctce_cli.stats.row import DOC_SUMMARIES, assemble_row, summary_row
from pctce_cli.stats.subsets import correct_ratio
from pctce_cli.stats.summaries import doc_sums, summarize, summary_columns
from pctce_cli.store import Scores, incomplete_notes, load_scores
from pctce_cli.units import unit_named


def columns_for(only: Sequence[str] | None, ci: float | None = None) -> tuple[str, ...]:
    """Store columns a summary row needs: ``rank`` only for top1, ``doc`` only for bpb/byte_ppl/word_ppl (or intervals)."""
    want = None if only is None or ci is not None else set(only)
    need_rank = want is None or "top1" in want
    need_doc = want is None or bool(want & DOC_SUMMARIES)
    return ("doc",) * need_doc + ("ce",) + ("rank",) * need_rank


def checkpoint_row(
    ck: Checkpoint,
    s: Scores,
    percentiles: Sequence[float],
    ci: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci_summaries: Sequence[str] | None = None,
    only: Sequence[str] | None = None,
) -> dict:
    """All docs/definitions.md#summaries-of-one-checkpoint summaries of one checkpoint from its loaded arrays.

    With ``only`` (summary names), summaries that need a column ``only`` does not
    need (see :func:`columns_for`) are left out, exactly as if it was not read.
    """
    cols = columns_for(only, ci)
    row = {"checkpoint": ck.id, "step": ck.step, "group": ck.group}
    row.update(
        summary_row(
            s.ce,
            s.doc if "doc" in cols else None,
            s.rank if "rank" in cols else None,
            s.docs,
            percentiles=percentiles,
            ci=ci,
            n_boot=n_boot,
            seed=seed,
            ci_summaries=ci_summaries,
        )
    )
    return row


def checkpoint_summary(ck: Checkpoint, percentiles: Sequence[float], ci: float | None = None, only: Sequence[str] | None = None, **kw) -> dict:
    """:func:`checkpoint_row` of one checkpoint, reading only the columns its summaries need.

    A checkpoint with more than :func:`stream_above` targets is streamed
    (:func:`streamed_row`) so that memory does not grow with its size.
    """
    return checkpoint_rows(ck, percentiles, ci=ci, only=only, **kw)[0][0]


def checkpoint_rows(
    ck: Checkpoint,
    percentiles: Sequence[float],
    subsets: Subsets = NO_SUBSETS,
    ci: float | None = None,
    only: Sequence[str] | None = None,
    unit: str = "token",
    **kw,
) -> tuple[list[dict], list[str]]:
    """One checkpoint's summary rows: one row, or one per subset (``subset`` column) with ``subsets.split``.

    (Long the streamed, unit and subset paths of one checkpoint side by side, so that one read serves each.)

    With ``unit`` ``word`` or ``byte`` the rows summarize that unit's
    distribution (:func:`pctce_cli.analysis.units.unit_rows`, docs/definitions.md#words-and-bytes), streamed
    above :func:`stream_above` targets (:func:`~pctce_cli.analysis.units_stream.streamed_unit_rows`, subsets and intervals too).

    The partition is read once; each subset's row is :func:`checkpoint_row` on
    that subset's targets and documents (docs/definitions.md#subsets), so its bootstrap resamples
    only that subset's documents.

    Returns:
        ``(rows, notes)``; notes say which subsets were left out and why.
    """
    if ck.manifest.targets > stream_above():
        if not unit_named(unit).spans and (subsets.active or ci is not None):
            return streamed_subset_rows(ck, percentiles, subsets, columns_for(only, ci), ci=ci, **kw)
        if not unit_named(unit).spans:
            return [streamed_row(ck, percentiles, columns_for(only))], []
        return streamed_unit_rows(ck, percentiles, unit, subsets, ci=ci, **kw)
    if unit_named(unit).spans:
        return unit_rows(ck, percentiles, unit, subsets, ci=ci, **kw)
    cols = columns_for(only, ci)
    if subsets.active and "doc" not in cols:
        cols = ("doc", *cols)
    s = load_scores(ck.root, ck.partition, columns=cols)
    if not subsets.active:
        return [checkpoint_row(ck, s, percentiles, ci=ci, only=only, **kw)], []
    parts, notes = split_scores(ck.id, s.doc, s.docs, subsets, stored_values(ck, subsets.field))
    # Without intervals a subset's row needs only its CE and ranks: the per-document sums
    # (for bpb and word_ppl) are summed once over all targets and looked up per subset,
    # instead of gathering every subset's document ids (the widest column).
    pooled_sums = doc_sums(s.ce, s.doc)[:2] if ci is None and "doc" in columns_for(only) and s.docs is not None else None
    rows = []
    for part in parts:
        if ci is None:
            summ = summarize(part.take(s.ce), part.take(s.rank) if "rank" in cols else None, percentiles=percentiles)
            sums = None
            if pooled_sums is not None:
                keep = np.isin(pooled_sums[0], np.asarray(part.docs["doc"]))
                sums = (pooled_sums[0][keep], pooled_sums[1][keep])
            row = {"checkpoint": ck.id, "step": ck.step, "group": ck.group, **assemble_row(summ, part.docs, sums)}
        else:
            view = Scores(ck.id, part.take(s.doc), s.pos[:0], s.token[:0], part.take(s.ce), part.take(s.rank) if s.rank.size else s.rank, part.docs, s.manifest)
            row = checkpoint_row(ck, view, percentiles, ci=ci, only=only, **kw)
        if subsets.split:
            row = {"checkpoint": row.pop("checkpoint"), "step": row.pop("step"), "group": row.pop("group"), "subset": part.label, **row}
        rows.append(row)
    return rows, [f"{ck.id}: {n}" for n in notes]



def analysis_workers() -> int:
    """Checkpoints summarized at once: ``$PCTCE_WORKERS``, else the number of cores (at most 4)."""
    env = os.environ.get("PCTCE_WORKERS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise UsageError(f"PCTCE_WORKERS must be a whole number, got '{env}'") from None
        if n < 1:
            raise UsageError(f"PCTCE_WORKERS must be at least 1, got {n}")
        return n
    return max(1, min(4, os.cpu_count() or 1))


def summary_rows(cks: Sequence[Checkpoint], percentiles, workers: int | None = None, subsets: Subsets = NO_SUBSETS, notes: list[str] | None = None, **kw) -> list[dict]:
    """:func:`checkpoint_rows` for every checkpoint, in order (one row each, or one per subset).

    Checkpoints are summarized by a few threads at once (:func:`analysis_workers`):
    Parquet reading and numpy's partition/sort release the GIL, so this uses the
    cores while memory stays bounded by that many checkpoints.

    Args:
        notes: Where the subset notes go (identical notes of several
            checkpoints are given once, without the checkpoint's name).
    """
    workers = min(len(cks), workers or analysis_workers())

    def one(c):
        return checkpoint_rows(c, percentiles, subsets=subsets, **kw)

    if workers <= 1:
        results = [one(c) for c in cks]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(one, cks))
    if notes is not None:
        notes += merge_notes([n for _, ns in results for n in ns], len(cks))
    return [r for rows, _ in results for r in rows]


def merge_notes(notes: list[str], n_checkpoints: int) -> list[str]:
    """Notes of the form ``ck: text``; a text every checkpoint shares is given once, without the names."""
    texts: dict[str, list[str]] = {}
    for n in notes:
        ck, _, text = n.partition(": ")
        texts.setdefault(text, []).append(ck)
    return [t if len(cks) == n_checkpoints else f"{', '.join(cks[:5])}: {t}" for t, cks in texts.items()]


def crossings(rows: list[dict], reference: str, summaries: Sequence[str], runs: dict[str, str | None], crossed_only: bool = False) -> list[str]:
    """For each run ordered by step, the first step at which a summary drops below the reference.

    With ``crossed_only`` the runs that never drop below it are left out.

    Examples:
        >>> rows = [{"checkpoint": "t", "p50": 1.0}, {"checkpoint": "s.1", "step": 1, "p50": 1.5},
        ...         {"checkpoint": "s.2", "step": 2, "p50": 0.9}]
        >>> crossings(rows, "t", ["p50"], {"s.1": "s", "s.2": "s", "t": None})
        ['p50 of run s crosses below t at step 2']
    """
    ref = next(r for r in rows if r["checkpoint"] == reference)
    by_run: dict[str, list[dict]] = {}
    for r in rows:
        run = runs.get(r["checkpoint"])
        if run is not None and r["checkpoint"] != reference and r.get("step") is not None:
            by_run.setdefault(run, []).append(r)
    lines = []
    for run, items in by_run.items():
        if len(items) < 2:
            continue
        items.sort(key=lambda r: r["step"])
        for s in summaries:
            below = [r for r in items if r.get(s) is not None and r[s] < ref[s]]
            if not below:
                if not crossed_only:
                    lines.append(f"{s} of run {run} never crosses below {reference}")
            elif below[0] is items[0]:
                lines.append(f"{s} of run {run} is below {reference} from its first step ({items[0]['step']})")
            else:
                lines.append(f"{s} of run {run} crosses below {reference} at step {below[0]['step']}")
    return lines


def summary_report(
    cks: Sequence[Checkpoint],
    percentiles: Sequence[float],
    ci: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    vs: str | None = None,
    rows: list[dict] | None = None,
    subsets: Subsets = NO_SUBSETS,
    unit: str = "token",
    value: str = "ce",
) -> Report:
    """`pctce summary`: per-checkpoint summaries, optional bootstrap intervals and a reference.

    (Long one branch per table the command can show (plain, --vs, --by, correct/incorrect), each a few lines.)

    Args:
        rows: The checkpoints' :func:`checkpoint_row` rows when the caller has
            already computed them (``pctce report`` reads each partition once).
        subsets: ``--by``: a row per checkpoint and subset, the pooled and
            macro-averaged means (docs/definitions.md#subsets) and, by ``correct``, the mean CE of
            correctly and incorrectly answered documents; ``--subset``: the
            summaries of the kept documents only.
    """
    if value != "ce":  # --value kl|dp: the divergence from a reference model
        return divergence_summary(cks, value, percentiles, unit, subsets, ci, n_boot, seed, vs)
    if ci is not None and not 0 < ci < 1:
        raise UsageError(f"ci must be between 0 and 1 (e.g. 0.95), got {ci}", param="ci")
    if vs is not None and subsets.split:
        raise UsageError("vs compares whole checkpoints: use it without by (or with subset)", param=("vs", "by", "subset"))
    report = Report()
    if rows is None:
        rows = summary_rows(cks, percentiles, ci=ci, n_boot=n_boot, seed=seed, subsets=subsets, notes=report.notes, unit=unit)
    methods = sorted({r.pop("_ci_method") for r in rows if "_ci_method" in r})
    errors = [r.pop("_ci_error") for r in rows if "_ci_error" in r]
    if subsets.split:
        report.add(unit_named(unit).title(subsets.field), rows)
        report.add(f"Pooled and macro-averaged mean CE over the subsets of {subsets.field}", macro_rows(rows))
        if subsets.field == CORRECT:
            report.add("Mean CE of correctly and incorrectly answered documents (paper Table 6)", correct_rows(rows))
    else:
        report.add(unit_named(unit).title() + (f", subset {subsets.describe()}" if subsets.active else ""), rows)
    report.notes += unit_named(unit).empty_note(rows)
    report.notes += incomplete_notes(sorted({str(c.root) for c in cks if c.root is not None})) + identical_notes(cks)
    if ci is not None:
        method = "/".join(methods)
        err = max(errors, default=0.0)
        report.notes.append(
            f"Intervals: {ci:.0%} document-level bootstrap, {n_boot} resamples, seed {seed}, method {method}"
            + (f" (percentile bounds within ±{err:.2g} nats of the exact resample)" if err else "")
            + "."
        )
    if vs is not None:
        ids = [r["checkpoint"] for r in rows]
        if vs not in ids:
            raise UsageError(f"vs '{vs}' is not among the selected checkpoints ({', '.join(ids[:8])})", param="vs")
        ref = rows[ids.index(vs)]
        names = summary_columns(percentiles, "iqr", "bpb")
        delta_rows = []
        for r in rows:
            d = {"checkpoint": r["checkpoint"], "step": r["step"]}
            for n in names:
                d[f"Δ{n}"] = r[n] - ref[n] if r.get(n) is not None and ref.get(n) is not None else math.nan
            delta_rows.append(d)
        report.add(f"Difference to {vs} (negative = lower CE than the reference)", delta_rows)
        # a run, not a group: a group's runs interleave their steps (docs/plots.md)
        report.notes += crossings(rows, vs, summary_columns(percentiles), runs_of(cks))
    return report


def macro_rows(rows: list[dict]) -> list[dict]:
    """Per checkpoint: subsets, targets, pooled mean (over the subsets' targets) and ``macro_mean`` (docs/definitions.md#subsets).

    Example:
        >>> macro_rows([{"checkpoint": "a", "step": 1, "subset": "x", "targets": 3, "mean": 1.0},
        ...             {"checkpoint": "a", "step": 1, "subset": "y", "targets": 1, "mean": 3.0}])
        [{'checkpoint': 'a', 'step': 1, 'subsets': 2, 'targets': 4, 'mean': 1.5, 'macro_mean': 2.0}]
    """
    from pctce_cli.stats.subsets import macro_mean

    out: dict[str, dict] = {}
    for r in rows:
        of = next((k for k in ("words", "bytes") if k in r), "targets")  # the values each mean is over
        o = out.setdefault(r["checkpoint"], {"checkpoint": r["checkpoint"], "step": r.get("step"), "_means": [], "_n": [], "_of": of})
        o["_means"].append(r["mean"])
        o["_n"].append(r[of])
    result = []
    for o in out.values():
        n, m, of = np.asarray(o.pop("_n"), dtype=np.float64), np.asarray(o.pop("_means"), dtype=np.float64), o.pop("_of")
        pooled = float(np.dot(n, m) / n.sum()) if n.sum() else math.nan
        result.append({**o, "subsets": int(m.size), of: int(n.sum()), "mean": pooled, "macro_mean": macro_mean(m)})
    return result


def correct_rows(rows: list[dict]) -> list[dict]:
    """The paper's Table 6 per checkpoint, from ``--by correct`` rows: mean CE correct, incorrect and their ratio.

    Example:
        >>> correct_rows([{"checkpoint": "e1", "step": 1, "subset": "correct", "documents": 3, "mean": 0.5},
        ...               {"checkpoint": "e1", "step": 1, "subset": "incorrect", "documents": 1, "mean": 2.0}])
        [{'checkpoint': 'e1', 'step': 1, 'accuracy': 0.75, 'mean_correct': 0.5, 'mean_incorrect': 2.0, 'ratio': 4.0}]
    """
    out: dict[str, dict] = {}
    for r in rows:
        o = out.setdefault(r["checkpoint"], {"checkpoint": r["checkpoint"], "step": r.get("step"), "correct": None, "incorrect": None})
        o[r["subset"]] = r
    result = []
    for o in out.values():
        c, i = o.pop("correct"), o.pop("incorrect")
        nc, ni = (c or {}).get("documents", 0), (i or {}).get("documents", 0)
        mc, mi = (c or {}).get("mean", math.nan), (i or {}).get("mean", math.nan)
        ratio = correct_ratio(mc, mi)
        result.append({**o, "accuracy": nc / (nc + ni) if nc + ni else math.nan, "mean_correct": mc, "mean_incorrect": mi, "ratio": ratio})
    return result


def table_percentiles(needed: Sequence[str]) -> list[float]:
    """Percentile levels a summaries table computes for ``needed`` (plus those iqr and z95 use)."""
    return sorted({float(n[1:]) for n in needed if n.startswith("p")} | {25.0, 50.0, 75.0, 95.0})


def rows_table(cks: Sequence[Checkpoint], rows: list[dict], meta_columns: bool = True):
    """A DataFrame of summary rows, with each checkpoint's ``--meta`` columns."""
    import pandas as pd

    df = pd.DataFrame(rows)
    if meta_columns:
        for c in cks:
            for k, v in c.meta.items():
                if k != "group":
                    df.loc[df["checkpoint"] == c.id, k] = v
    return df


def summaries_table(
    cks: Sequence[Checkpoint] | None,
    summaries_file: str | Path | None,
    needed: Sequence[str],
    meta_columns: bool = True,
    subsets: Subsets = NO_SUBSETS,
    notes: list[str] | None = None,
    unit: str = "token",
):
    """One row per checkpoint (and subset, with ``subsets.split``) with the ``needed`` summaries (and group, step, task columns).

    From score directories the summaries are computed; from ``--summaries FILE``
    (a CSV/JSON of precomputed summaries, e.g. a paper's table) they are read,
    and every needed summary must be a numeric column of the file.
    """
    import pandas as pd

    if summaries_file is not None:
        if subsets.active or unit_named(unit).spans:
            raise UsageError("by, subset and unit need score directories: summaries_file holds one row per checkpoint", param=("by", "subset", "unit", "summaries_file"))
        df = read_table(summaries_file, "summaries_file")
        missing = [s for s in needed if s not in df.columns]
        if missing:
            raise UsageError(
                f"{summaries_file}: no column for summary {', '.join(repr(m) for m in missing)} "
                f"(columns: {', '.join(map(str, df.columns))})"
            )
        for s in needed:
            if not pd.api.types.is_numeric_dtype(df[s]):
                raise UsageError(f"{summaries_file}: column '{s}' is not numeric")
        if "group" not in df.columns:
            df["group"] = None
        return df.reset_index(drop=True)
    unit_named(unit).check_summaries(needed, "summary")  # top1 has no word or byte form
    return rows_table(cks, summary_rows(cks, table_percentiles(needed), only=needed, subsets=subsets, notes=notes, unit=unit), meta_columns)
