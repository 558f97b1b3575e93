"""Cores of `pctce shape` (mass in CE bands, standardized profiles) and `pctce decompose` (docs/definitions.md#decomposition)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pctce_cli.analysis.report import Report
from pctce_cli.analysis.subsets import NO_SUBSETS, Subsets, split_scores, stored_values
from pctce_cli.analysis.summary import merge_notes
from pctce_cli.catalog import Checkpoint
from pctce_cli.store import load_scores
from pctce_cli.units import unit_named


def shape_tables(cks: Sequence[Checkpoint], bands: Sequence[np.ndarray], profiles: Sequence[np.ndarray], edges: Sequence[float], unit: str = "token") -> Report:
    """The shape tables from each checkpoint's band masses and standardized profile (already computed)."""
    from pctce_cli.stats import shape

    labels = shape.band_labels(edges)
    report = Report()
    report.add(
        f"Mass in CE bands (fraction of {unit_named(unit).plural})",
        [{"checkpoint": c.id, "group": c.group, **dict(zip(labels, m.tolist()))} for c, m in zip(cks, bands)],
    )
    by_id = {c.id: p for c, p in zip(cks, profiles)}
    report.add(
        "Standardized percentile profile z_q = (p_q − p50) / iqr",
        [{"checkpoint": k, **{f"z{q}": float(v) for q, v in zip(shape.PROFILE_LEVELS, p)}} for k, p in by_id.items()],
    )
    dist = shape.profile_distances(by_id)
    report.add("Profile distances (Euclidean)", dist.reset_index().rename(columns={"index": "checkpoint"}))
    groups = {c.id: c.group for c in cks if c.group is not None}
    if groups:
        ids = list(groups)  # ungrouped checkpoints take no part in within/between means
        report.add("Mean profile distance within and between groups", shape.group_distance_summary(dist.loc[ids, ids], groups))
    return report


def shape_report(
    cks: Sequence[Checkpoint], edges: Sequence[float], ecdf: bool = False, ecdf_points: int = 200, subsets: Subsets = NO_SUBSETS, unit: str = "token"
) -> Report:
    """`pctce shape`: mass in CE bands, standardized profiles, profile distances, ECDF points.

    With ``subsets.split`` (``--by``) the bands, profiles and ECDF points are
    per checkpoint and subset (a ``subset`` column); with ``--subset`` they are
    over the kept documents.
    """
    import pandas as pd

    from pctce_cli.stats import shape

    u = unit_named(unit)
    bands, profiles, ecdfs, rows, notes = [], [], [], [], []
    for c in cks:
        s = u.load_arrays(c, ("doc", "ce") if subsets.active else ("ce",))
        parts, part_notes = split_scores(c.id, s.doc, s.docs, subsets, stored_values(c, subsets.field) if subsets.active else ())
        notes += [f"{c.id}: {n}" for n in part_notes]
        for part in parts:
            if u.spans:
                ce, weights = u.distribution(part.take(s.ce), part.take(s.doc), part.take(s.word), part.take(s.nbytes))
            else:
                ce, weights = part.take(s.ce), None
            rows.append((c, part.label))
            if ecdf:
                pts = shape.ecdf_points(ce, ecdf_points, weights)  # bytes: the weighted ECDF, never one row per byte
                if subsets.split:
                    pts.insert(0, "subset", part.label)
                pts.insert(0, "checkpoint", c.id)
                ecdfs.append(pts)
            else:
                bands.append(shape.band_mass(ce, edges, weights))
                profiles.append(shape.profile(ce, weights))
    notes = merge_notes(notes, len(cks))
    if subsets.active and not subsets.split:
        notes.append(f"Only documents of subset {subsets.describe()}.")
    if ecdf:
        report = Report(notes=notes)
        report.add("ECDF points", pd.concat(ecdfs, ignore_index=True))
        return report
    if not subsets.split:
        report = shape_tables(cks, bands, profiles, edges, unit)
        report.notes[:0] = notes
        return report
    labels = shape.band_labels(edges)
    report = Report(notes=notes)
    report.add(
        f"Mass in CE bands by {subsets.field} (fraction of {u.plural})",
        [{"checkpoint": c.id, "group": c.group, "subset": lab, **dict(zip(labels, m.tolist()))} for (c, lab), m in zip(rows, bands)],
    )
    report.add(
        f"Standardized percentile profile z_q = (p_q − p50) / iqr, by {subsets.field}",
        [{"checkpoint": c.id, "subset": lab, **{f"z{q}": float(v) for q, v in zip(shape.PROFILE_LEVELS, p)}} for (c, lab), p in zip(rows, profiles)],
    )
    return report


def decompose_report(cks: Sequence[Checkpoint]) -> Report:
    """`pctce decompose`: error-entropy, self-alignment, confidence (docs/definitions.md#decomposition) and the identity's residual."""
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
