"""How the report tells its story: a one-sentence header, findings first, figures before tables, tables on demand.

Tables that would run wider than a screen are pivoted (one row per checkpoint,
one column per subset) or drawn (a square matrix as a heatmap, its numbers in
a :class:`~pctce_cli.report.doc.Details`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from pctce_cli import plot
from pctce_cli.report.doc import Details, Finding, Findings, Section, Table, Text

MAX_PIVOT_COLUMNS = 10  # subsets shown as columns of a pivot; past it, the largest


def header(cks, runs) -> str:
    """One sentence: what was scored (checkpoints, runs, steps, data, tokenizer), identical values said once.

    Examples:
        >>> from types import SimpleNamespace as N
        >>> m = N(data_files=["/d/val.jsonl"], targets=100, documents=4, tokenizer_path="/t/tok")
        >>> cks = [N(id=f"r.{s}", step=s, manifest=m) for s in (10, 20)]
        >>> header(cks, {"r.10": "r", "r.20": "r"})
        '2 checkpoints of 1 run (steps 10–20) scored on val.jsonl (100 targets in 4 documents each), one tokenizer (tok).'
    """
    from pctce_cli.plot import data_names

    n_runs = len({r for r in runs.values() if r is not None})
    steps = [c.step for c in cks if c.step is not None]
    what = f"{len(cks)} checkpoint{'s' if len(cks) != 1 else ''}"
    if n_runs:
        what += f" of {n_runs} run{'s' if n_runs != 1 else ''}"
    if steps:
        what += f" (steps {min(steps):,}–{max(steps):,})" if min(steps) != max(steps) else f" (step {steps[0]:,})"
    targets = {c.manifest.targets for c in cks}
    docs = {c.manifest.documents for c in cks}
    size = ""
    if len(targets) == 1 and len(docs) == 1 and None not in targets | docs:
        size = f" ({next(iter(targets)):,} targets in {next(iter(docs)):,} documents{' each' if len(cks) > 1 else ''})"
    # one tokenizer saved with every checkpoint has many paths but one fingerprint: named once
    fps = {(getattr(c.manifest, "fingerprints", None) or {}).get("tokenizer") or str(c.manifest.tokenizer_path) for c in cks if c.manifest.tokenizer_path}
    toks = sorted({Path(str(c.manifest.tokenizer_path)).name for c in cks if c.manifest.tokenizer_path})
    tok = ""
    if len(fps) == 1:
        tok = f", one tokenizer ({toks[0]})" if len(toks) == 1 else f", one tokenizer (fingerprint {str(next(iter(fps)))[:12]})"
    elif fps:
        tok = f", {len(fps)} tokenizers"
    return f"{what} scored on {data_names(cks)}{size}{tok}."


def findings_section(findings: Sequence[Finding]) -> Section:
    """The Findings section: each reading with its number and a link to its figure."""
    sec = Section("findings", "Findings")
    if findings:
        sec.blocks.append(Findings(list(findings)))
    else:
        sec.blocks.append(Text("No reading applies to a single checkpoint: the sections below describe it."))
    return sec


def on_demand(title: str, blocks: list) -> Details | None:
    """Tables and notes behind a ``<details>`` (none when there are no blocks)."""
    return Details(title, blocks) if blocks else None


def pivot(rows: list[dict], value: str, title: str, columns: str = "subset") -> Table:
    """Per-subset numbers pivoted: one row per checkpoint, one column per subset (the largest :data:`MAX_PIVOT_COLUMNS`).

    Examples:
        >>> t = pivot([{"checkpoint": "a", "subset": "x", "mean": 1.0, "targets": 5}, {"checkpoint": "a", "subset": "y", "mean": 2.0, "targets": 3}], "mean", "mean by s")
        >>> t.rows
        [{'checkpoint': 'a', 'x': 1.0, 'y': 2.0}]
    """
    size: dict[str, float] = {}
    for r in rows:
        size[str(r[columns])] = size.get(str(r[columns]), 0) + (r.get("targets") or r.get("words") or 1)
    keep = sorted(size, key=lambda k: (-size[k], k))[:MAX_PIVOT_COLUMNS]
    keep = [k for k in sorted(size) if k in keep]
    out: dict[str, dict] = {}
    for r in rows:
        key = str(r[columns])
        if key in keep:
            out.setdefault(r["checkpoint"], {"checkpoint": r["checkpoint"]})[key] = r.get(value)
    left = len(size) - len(keep)
    return Table(title + (f" (the {len(keep)} largest of {len(size)} subsets)" if left else ""), list(out.values()))


def is_square(t: Table) -> bool:
    """Whether a table is a square matrix: one row per label, one numeric column per label (profile distances)."""
    if len(t.rows) < 2:
        return False
    first = next(iter(t.rows[0]))
    labels = [r[first] for r in t.rows]
    return all(list(r)[1:] == labels for r in t.rows)


def matrix_blocks(t: Table, plots, name: str) -> list:
    """A square matrix as a heatmap (when plots are drawn), its numbers on demand."""
    from pctce_cli import plot

    first = next(iter(t.rows[0]))
    labels = [str(r[first]) for r in t.rows]
    values = [[math.nan if r[k] is None else r[k] for k in list(r)[1:]] for r in t.rows]
    img = plots.image(name, t.title + " (heatmap; the numbers are in the table below it)", lambda: plot.matrix_figure(labels, values, t.title, "distance"))
    return [b for b in (img, Details(t.title + ": the numbers", [t])) if b is not None]


def _short(fp) -> str | None:
    return str(fp)[:12] if fp else None


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, (list, tuple)):
            out[f"{prefix}{k}"] = ", ".join(map(str, v))
        else:
            out[f"{prefix}{k}"] = v
    return out


def scored_section(cks) -> Section:
    """Checkpoints, data and tokenizer, scoring settings and versions, from the manifests."""
    sec = Section("scored", "What was scored")
    sec.blocks.append(Text(f"{plot.what_was_scored(cks)}; settings as recorded in each checkpoint's manifest."))
    shown = len(sec.blocks)
    rows = []
    for c in cks:
        m = c.manifest
        rows.append(
            {
                "checkpoint": c.id,
                "step": c.step,
                "group": c.group,
                "run": c.run,
                "kind": m.kind,
                "targets": m.targets,
                "documents": m.documents,
                "path": m.path,
                "weights": _short(m.fingerprints.get("weights")),
                "scored": m.created,
            }
        )
    sec.blocks.append(Table("Checkpoints", rows))
    inputs: dict[tuple, dict] = {}
    for c in cks:
        m = c.manifest
        fp = m.fingerprints
        data = m.data
        files = ", ".join(map(str, data.get("files") or [])) or None
        key = (files, fp.get("data"), fp.get("tokenizer"), m.tokenizer_path)
        row = inputs.setdefault(
            key,
            {
                "data files": files,
                "records": data.get("records"),
                "documents": data.get("documents"),
                "skipped documents": data.get("skipped_documents"),
                "data fingerprint": _short(fp.get("data")),
                "tokenizer": m.tokenizer_path,
                "tokenizer fingerprint": _short(fp.get("tokenizer")),
                "checkpoints": 0,
            },
        )
        row["checkpoints"] += 1
    sec.blocks.append(Table("Data and tokenizer", list(inputs.values())))
    flat = [(c.id, {**_flat(c.manifest.settings), **_flat(c.manifest.versions, "version of ")}) for c in cks]
    keys = list(dict.fromkeys(k for _, f in flat for k in f))
    settings = []
    for k in keys:
        values = [f.get(k) for _, f in flat]
        if all(v == values[0] for v in values):
            settings.append({"setting": k, "value": values[0]})
        else:
            settings.append({"setting": k, "value": "; ".join(f"{cid}: {v}" for (cid, _), v in zip(flat, values))})
    sec.blocks.append(Table("Scoring settings and software versions", settings))
    data = sec.blocks[shown + 1]
    sec.blocks[shown:] = [data, Details(f"Checkpoints ({len(cks)})", [sec.blocks[shown]]), Details("Scoring settings and software versions", [sec.blocks[shown + 2]])]
    return sec
