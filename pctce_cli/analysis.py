"""Core of the analysis commands (`summary`, `concord`, `select`, `shape`, `decompose`).

Reads score directories (or a table of precomputed summaries), selects and
groups checkpoints, and calls the pure statistics in :mod:`pctce_cli.stats`.
Every command returns a :class:`Report` (named tables plus reading lines) that
the CLI renders. No torch import here.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pctce_cli.errors import MixedInputError, StoreError, UsageError
from pctce_cli.store import list_checkpoints, load_scores

AGREEMENT_PERCENTILES = tuple(range(5, 100, 5)) + (99,)
# summaries computed from per-document sums (they need the store's doc column)
DOC_SUMMARIES = frozenset({"bpb", "byte_ppl", "word_ppl"})


@dataclass
class Report:
    """What an analysis command prints: titled tables and plain-language lines."""

    sections: list[tuple[str, list[dict]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, title: str, rows) -> None:
        """Append a table (a list of dicts or a DataFrame)."""
        if hasattr(rows, "to_dict"):
            rows = rows.to_dict(orient="records")
        self.sections.append((title, list(rows)))


@dataclass
class Checkpoint:
    """A selected checkpoint: where its scores are, its manifest, group and metadata."""

    id: str
    root: Path | None
    manifest: dict
    step: int | None = None
    partition: str = ""  # the store's checkpoint id; ``id`` is qualified when two stores share it
    group: str | None = None
    run: str | None = None
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------- options


def parse_percentiles(text: str | Sequence[float] | None, default=(50, 90, 95, 99)) -> list[float]:
    """Parse ``--percentiles 10,25,50`` into numbers in [0, 100].

    Examples:
        >>> parse_percentiles("10, 50,99.9")
        [10.0, 50.0, 99.9]
    """
    if text is None or text == "":
        return [float(q) for q in default]
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        try:
            q = float(str(item).strip())
        except ValueError:
            raise UsageError(f"--percentiles: '{str(item).strip()}' is not a number (expected e.g. 50,90,95,99)") from None
        if not 0 <= q <= 100:
            raise UsageError(f"--percentiles: {item} is outside [0, 100]")
        out.append(q)
    return out


def pname(q: float) -> str:
    """Column name of a percentile: 50 → ``p50``, 99.9 → ``p99.9``."""
    return f"p{int(q)}" if float(q).is_integer() else f"p{q:g}"


def parse_summary_list(text: str | Sequence[str] | None, default: Sequence[str], option: str) -> list[str]:
    """Parse ``--set mean,p50,p95`` into validated summary names."""
    from pctce_cli.stats.summaries import parse_summary_name

    if text is None or text == "":
        return list(default)
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    out = []
    for s in items:
        try:
            out.append(parse_summary_name(s).name)
        except UsageError as e:
            raise UsageError(f"{option}: {e}") from None
    return out


def parse_groups(specs: Sequence[str]) -> list[tuple[str, str]]:
    """Parse repeated ``--group NAME=GLOB`` options."""
    out = []
    for spec in specs or ():
        name, sep, pattern = spec.partition("=")
        if not sep or not name.strip() or not pattern.strip():
            raise UsageError(f"--group '{spec}': expected NAME=GLOB, e.g. distill='*top*'")
        out.append((name.strip(), pattern.strip()))
    return out


def read_table(path: str | Path, option: str):
    """Read a CSV or JSON table (``--meta``, ``--summaries``) with a ``checkpoint`` column."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{option} file not found: {path}")
    try:
        if p.suffix.lower() == ".json":
            obj = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(obj, dict):
                lists = [v for v in obj.values() if isinstance(v, list)]
                obj = lists[0] if len(lists) == 1 else [dict(checkpoint=k, **v) for k, v in obj.items() if isinstance(v, dict)]
            df = pd.DataFrame(obj)
        elif p.suffix.lower() in (".csv", ".tsv"):
            df = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",", dtype={"checkpoint": str})
        else:
            raise UsageError(f"{path}: {option} must be .csv or .json, got '{p.suffix}'")
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read {option} table ({str(e).splitlines()[0]})") from None
    if "checkpoint" not in df.columns:
        raise UsageError(f"{path}: {option} table has no 'checkpoint' column (columns: {', '.join(map(str, df.columns))})")
    if df.empty:
        raise UsageError(f"{path}: {option} table has no rows")
    dup = df["checkpoint"][df["checkpoint"].duplicated()].tolist()
    if dup:
        raise UsageError(f"{path}: checkpoint '{dup[0]}' appears twice in the {option} table")
    df["checkpoint"] = df["checkpoint"].astype(str)
    return df


def _run_name(manifest: dict) -> str | None:
    if manifest.get("step") is None or not manifest.get("path"):
        return None
    return Path(manifest["path"]).parent.name or None


def resolve_checkpoints(
    dirs: Sequence[str | Path],
    patterns: Sequence[str] = (),
    groups: Sequence[str] = (),
    meta: str | Path | None = None,
    allow_mixed: bool = False,
) -> list[Checkpoint]:
    """Select checkpoints from score directories, ordered by step then name.

    Args:
        dirs: Score directories written by ``pctce score``.
        patterns: ``--checkpoint`` globs; every one must match something.
        groups: ``--group NAME=GLOB`` specs (first match wins).
        meta: ``--meta`` CSV/JSON: ``checkpoint`` plus ``group`` and task columns.
        allow_mixed: Accept checkpoints scored on different data or tokenizers.

    Raises:
        StoreError: a directory is not a store or a glob matches nothing.
        MixedInputError: checkpoints disagree on data or tokenizer.
    """
    if not dirs:
        raise UsageError("give at least one score directory")
    cks: list[Checkpoint] = []
    for d in dirs:
        ms = list_checkpoints(d)
        if not ms:
            raise StoreError(f"{d} holds no complete checkpoint (run pctce score to finish it)")
        cks += [Checkpoint(m["id"], Path(d), m, m.get("step"), m["id"], None, _run_name(m)) for m in ms]
    # the same checkpoint id in two stores (a baseline store and a candidate store,
    # say) is told apart by its directory: "<dir name>/<id>"
    counts: dict[str, int] = {}
    for c in cks:
        counts[c.id] = counts.get(c.id, 0) + 1
    for c in cks:
        if counts[c.id] > 1:
            c.id = f"{c.root.name}/{c.partition}"
    if len({c.id for c in cks}) < len(cks):
        raise StoreError("two score directories with the same name hold the same checkpoint id; rename one directory")
    if patterns:
        keep = []
        for p in patterns:
            hit = [c for c in cks if fnmatch.fnmatchcase(c.id, p)]
            if not hit:
                names = ", ".join(c.id for c in cks[:8]) + (" …" if len(cks) > 8 else "")
                raise StoreError(f"--checkpoint '{p}' matches no checkpoint (have: {names})")
            keep += [c for c in hit if c not in keep]
        cks = keep
    cks.sort(key=lambda c: (c.step is None, c.step or 0, c.id))
    _apply_groups(cks, groups, meta)
    if not allow_mixed:
        check_same_inputs(cks)
    return cks


def parse_edges(text: str | None) -> list[float]:
    """Parse ``--edges 0,0.1,0.5,inf`` (strictly increasing; default SPEC §2's bands).

    Examples:
        >>> parse_edges("0,1,inf")
        [0.0, 1.0, inf]
    """
    if not text:
        return [0, 0.1, 0.5, 1.5, 5, 10, math.inf]
    try:
        out = [float(x) for x in text.split(",")]
    except ValueError:
        raise UsageError(f"--edges: expected numbers separated by commas (e.g. 0,0.5,5,inf), got '{text}'") from None
    if len(out) < 2 or any(b <= a for a, b in zip(out, out[1:])):
        raise UsageError(f"--edges must be at least two strictly increasing numbers, got '{text}'")
    return out


def group_table(table, groups: Sequence[str], meta):
    """Assign groups (``--group``/``--meta``) and meta columns to a table of summaries."""
    specs = parse_groups(groups)
    if specs:
        table["group"] = [next((n for n, p in specs if fnmatch.fnmatchcase(c, p)), None) for c in table["checkpoint"]]
    if meta is not None:
        df = read_table(meta, "--meta")
        table = table.merge(df, on="checkpoint", how="left", suffixes=("", "_meta"))
        if "group_meta" in table.columns:
            table["group"] = table["group"].where(table["group"].notna(), table["group_meta"])
            table = table.drop(columns=["group_meta"])
    return table


def _apply_groups(cks: list[Checkpoint], groups: Sequence[str], meta) -> None:
    specs = parse_groups(groups)
    for c in cks:
        c.group = next((name for name, pat in specs if fnmatch.fnmatchcase(c.id, pat)), None)
    if meta is None:
        return
    df = read_table(meta, "--meta")
    rows = {r["checkpoint"]: r for r in df.to_dict(orient="records")}
    for c in cks:
        r = rows.get(c.id)
        if r is None:
            continue
        c.meta = {k: v for k, v in r.items() if k != "checkpoint"}
        g = r.get("group")
        if c.group is None and g is not None and not (isinstance(g, float) and math.isnan(g)):
            c.group = str(g)


_INPUT_SETTINGS = ("prefix", "text_field", "prompt_field", "completion_field", "messages_field", "split_on")


def check_same_inputs(cks: Sequence[Checkpoint]) -> None:
    """Refuse to compare checkpoints scored on different data, targets or tokenizers."""
    if len(cks) < 2:
        return
    ref = cks[0]
    for c in cks[1:]:
        fa, fb = ref.manifest.get("fingerprints", {}), c.manifest.get("fingerprints", {})
        reasons = []
        if fa.get("data") != fb.get("data"):
            reasons.append("different validation data")
        if fa.get("tokenizer") != fb.get("tokenizer"):
            reasons.append("different tokenizers")
        elif fa.get("data") == fb.get("data") and fa.get("documents") != fb.get("documents"):
            reasons.append("different tokenized targets")
        sa, sb = ref.manifest.get("settings", {}), c.manifest.get("settings", {})
        diff = [k for k in _INPUT_SETTINGS if sa.get(k) != sb.get(k)]
        if diff:
            reasons.append("different target selection (" + ", ".join(f"{k} {sa.get(k)!r} vs {sb.get(k)!r}" for k in diff) + ")")
        if reasons:
            raise MixedInputError(
                f"'{ref.id}' and '{c.id}' were scored on {' and '.join(reasons)}; "
                "their CE distributions are not comparable (pass --allow-mixed to compare anyway)"
            )


# ---------------------------------------------------------------- summaries


def checkpoint_summary(
    ck: Checkpoint,
    percentiles: Sequence[float],
    ci: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci_summaries: Sequence[str] | None = None,
    only: Sequence[str] | None = None,
) -> dict:
    """All SPEC §2 summaries of one checkpoint, read from its store partition.

    With ``only`` (summary names), the ``rank`` and ``doc`` columns are read only
    when a listed summary needs them (top1; bpb, byte_ppl, word_ppl), and the
    summaries that need an unread column are left out of the row.
    """
    from pctce_cli.stats.bootstrap import bootstrap_ci
    from pctce_cli.stats.summaries import doc_sums, doc_normalized, summarize

    want = None if only is None or ci is not None else set(only)
    need_rank = want is None or "top1" in want
    need_doc = want is None or bool(want & DOC_SUMMARIES)
    columns = ("doc",) * need_doc + ("ce",) + ("rank",) * need_rank
    s = load_scores(ck.root, ck.partition, columns=columns)
    row = {"checkpoint": ck.id, "step": ck.step, "group": ck.group}
    summ = summarize(s.ce, s.rank if need_rank else None, percentiles=percentiles)
    n = summ.pop("n")
    row.update({"targets": int(n), "documents": int(len(s.docs)) if s.docs is not None else 0})
    row.update(summ)
    if need_doc:
        ids, nll, _ = doc_sums(s.ce, s.doc)
        docs = s.docs.set_index("doc").reindex(ids)
        norm = doc_normalized(nll, docs["n_bytes"].to_numpy(), docs["n_words"].to_numpy())
        norm.pop("n_docs")
        row.update(norm)
    for col in ("exact_match", "substring_match"):
        if s.docs is not None and col in s.docs.columns:
            row[f"acc_{col}"] = float(s.docs[col].mean())
    if ci is not None:
        names = list(ci_summaries or ["mean"] + [pname(q) for q in percentiles])
        res = bootstrap_ci(s.ce, s.doc, names, n_boot=n_boot, ci=ci, seed=seed, rank=s.rank)
        for name in names:
            lo, hi = res[name]
            row[f"{name}_lo"], row[f"{name}_hi"] = lo, hi
        row["_ci_method"] = res.method
        row["_ci_error"] = max(res.max_abs_error.values()) if res.max_abs_error else 0.0
    return row


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


def summary_rows(cks: Sequence[Checkpoint], percentiles, workers: int | None = None, **kw) -> list[dict]:
    """:func:`checkpoint_summary` for every checkpoint, in order.

    Checkpoints are summarized by a few threads at once (:func:`analysis_workers`):
    Parquet reading and numpy's partition/sort release the GIL, so this uses the
    cores while memory stays bounded by that many checkpoints.
    """
    workers = min(len(cks), workers or analysis_workers())
    if workers <= 1:
        return [checkpoint_summary(c, percentiles, **kw) for c in cks]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda c: checkpoint_summary(c, percentiles, **kw), cks))


def crossings(rows: list[dict], reference: str, summaries: Sequence[str], runs: dict[str, str | None]) -> list[str]:
    """For each run ordered by step, the first step at which a summary drops below the reference.

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
) -> Report:
    """`pctce summary`: per-checkpoint summaries, optional bootstrap intervals and a reference."""
    if ci is not None and not 0 < ci < 1:
        raise UsageError(f"--ci must be between 0 and 1 (e.g. 0.95), got {ci}")
    rows = summary_rows(cks, percentiles, ci=ci, n_boot=n_boot, seed=seed)
    methods = sorted({r.pop("_ci_method") for r in rows if "_ci_method" in r})
    errors = [r.pop("_ci_error") for r in rows if "_ci_error" in r]
    report = Report()
    report.add("Per-token CE summaries (nats)", rows)
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
            raise UsageError(f"--vs '{vs}' is not among the selected checkpoints ({', '.join(ids[:8])})")
        ref = rows[ids.index(vs)]
        names = ["mean", *[pname(q) for q in percentiles], "iqr", "bpb"]
        delta_rows = []
        for r in rows:
            d = {"checkpoint": r["checkpoint"], "step": r["step"]}
            for n in names:
                d[f"Δ{n}"] = r[n] - ref[n] if r.get(n) is not None and ref.get(n) is not None else math.nan
            delta_rows.append(d)
        report.add(f"Difference to {vs} (negative = lower CE than the reference)", delta_rows)
        runs = {c.id: (c.group or c.run) for c in cks}
        report.notes += crossings(rows, vs, ["mean", *[pname(q) for q in percentiles]], runs)
    return report


# ---------------------------------------------------------------- tables of summaries


def summaries_table(
    cks: Sequence[Checkpoint] | None,
    summaries_file: str | Path | None,
    needed: Sequence[str],
    meta_columns: bool = True,
):
    """One row per checkpoint with the ``needed`` summaries (and group, step, task columns).

    From score directories the summaries are computed; from ``--summaries FILE``
    (a CSV/JSON of precomputed summaries, e.g. a paper's table) they are read,
    and every needed summary must be a numeric column of the file.
    """
    import pandas as pd

    if summaries_file is not None:
        df = read_table(summaries_file, "--summaries")
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
    qs = sorted({float(n[1:]) for n in needed if n.startswith("p")} | {25.0, 50.0, 75.0, 95.0})
    rows = summary_rows(cks, qs, only=needed)
    df = pd.DataFrame(rows)
    if meta_columns:
        for c in cks:
            for k, v in c.meta.items():
                if k != "group":
                    df.loc[df["checkpoint"] == c.id, k] = v
    return df


def _groups(table) -> list[tuple[str, object]]:
    """("all", table) and one (name, sub-table) per named group with ≥ 2 checkpoints."""
    out = [("all", table)]
    if "group" in table.columns:
        for g in [g for g in table["group"].dropna().unique().tolist()]:
            sub = table[table["group"] == g]
            if len(sub) >= 2:
                out.append((str(g), sub.reset_index(drop=True)))
    return out


def reading(c: float, agree: float, disagree: float) -> str:
    """Plain-language reading of a concordance value (SPEC §3)."""
    if math.isnan(c):
        return "undefined (fewer than 2 checkpoints)"
    if c >= agree:
        return "summaries agree: they tell one story, mean CE is a safe selector"
    if c <= disagree:
        return "summaries disagree: the distribution is being reshaped, the choice of summary changes which checkpoint wins"
    return "summaries partly agree: check which summary your task depends on"


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
    for gname, sub in _groups(table):
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
            f"{r['group']}: C_S = {fmt(r['C_S'])} over {r['pairs']} pairs ({r['tied']} tied) — "
            f"{reading(r['C_S'], agree, disagree)}."
        )
    return report


def fmt(v: float, digits: int = 3) -> str:
    """Short number for a sentence."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def resolve_task(table, task: str | None) -> str | None:
    """Map a ``--task`` name to a numeric column (``accuracy`` → the stored exact-match accuracy)."""
    import pandas as pd

    if task is None:
        return None
    aliases = {"accuracy": "acc_exact_match", "exact_match": "acc_exact_match", "substring_match": "acc_substring_match"}
    col = task if task in table.columns else aliases.get(task)
    if col is None or col not in table.columns:
        have = [c for c in table.columns if c not in ("checkpoint", "group", "step")]
        raise UsageError(f"--task '{task}': no such column (have: {', '.join(map(str, have))}); add it with --meta")
    if not pd.api.types.is_numeric_dtype(table[col]):
        try:
            table[col] = pd.to_numeric(table[col])
        except (ValueError, TypeError):
            raise UsageError(f"--task '{task}': column is not numeric") from None
    if table[col].isna().any():
        missing = table.loc[table[col].isna(), "checkpoint"].tolist()
        raise UsageError(f"--task '{task}': no value for {', '.join(missing[:5])}")
    return col


def select_report(
    table,
    summaries: Sequence[str],
    task: str | None = None,
    higher_is_better: bool = True,
    agreement_summaries: Sequence[str] | None = None,
) -> Report:
    """`pctce select`: the checkpoint each rule picks, regret, and agreement with the task."""
    from pctce_cli.stats.selection import agreement, select

    col = resolve_task(table, task)
    report = Report()
    picks = select(table.set_index("checkpoint") if "checkpoint" in table.columns else table, list(summaries), task=col, higher_is_better=higher_is_better)
    report.add("Selection rules (each picks the checkpoint minimizing its summary)", picks)
    if col is not None:
        cols = [s for s in (agreement_summaries or summaries) if s in table.columns]
        groups = table["group"] if "group" in table.columns and table["group"].notna().any() else None
        agr = agreement(table.set_index("checkpoint"), col, cols, groups=groups, higher_is_better=higher_is_better)
        report.add(f"Agreement of each summary with {task}", agr)
    return report


def shape_report(cks: Sequence[Checkpoint], edges: Sequence[float], ecdf: bool = False, ecdf_points: int = 200) -> Report:
    """`pctce shape`: mass in CE bands, standardized profiles, profile distances, ECDF points."""
    import pandas as pd

    from pctce_cli.stats import shape

    bands, profiles, ecdfs = [], {}, []
    for c in cks:
        s = load_scores(c.root, c.partition, columns=("ce",))
        mass = shape.band_mass(s.ce, edges)
        labels = shape.band_labels(edges)
        bands.append({"checkpoint": c.id, "group": c.group, **dict(zip(labels, mass.tolist()))})
        profiles[c.id] = shape.profile(s.ce)
        if ecdf:
            pts = shape.ecdf_points(s.ce, ecdf_points)
            pts.insert(0, "checkpoint", c.id)
            ecdfs.append(pts)
    report = Report()
    if ecdf:
        report.add("ECDF points", pd.concat(ecdfs, ignore_index=True))
        return report
    report.add("Mass in CE bands (fraction of targets)", bands)
    qs = list(range(5, 100, 5))
    report.add("Standardized percentile profile z_q = (p_q − p50) / iqr", [{"checkpoint": k, **{f"z{q}": float(v) for q, v in zip(qs, p)}} for k, p in profiles.items()])
    dist = shape.profile_distances(profiles)
    report.add("Profile distances (Euclidean)", dist.reset_index().rename(columns={"index": "checkpoint"}))
    groups = {c.id: c.group for c in cks if c.group is not None}
    if groups:
        ids = list(groups)  # ungrouped checkpoints take no part in within/between means
        report.add("Mean profile distance within and between groups", shape.group_distance_summary(dist.loc[ids, ids], groups))
    return report


def decompose_report(cks: Sequence[Checkpoint]) -> Report:
    """`pctce decompose`: error-entropy, self-alignment, confidence (SPEC §5) and the identity's residual."""
    from pctce_cli.stats.decompose import decompose

    rows = []
    for c in cks:
        s = load_scores(c.root, c.partition, columns=("ce", "rank"))
        d = decompose(s.ce, s.rank)
        rows.append({"checkpoint": c.id, "step": c.step, "mean": d["mean"], "EE": d["ee"], "SA": d["sa"], "CONF": d["conf"], "residual": d["residual"], "ranks": d["n_ranks"]})
    report = Report()
    report.add("Cross-entropy decomposition: mean CE = EE + SA − CONF", rows)
    worst = max((abs(r["residual"]) for r in rows), default=0.0)
    report.notes.append(f"Largest |mean − (EE + SA − CONF)| = {worst:.2e} nats (float64 round-off).")
    return report
