"""What the figures are drawn from: one :class:`Distribution` per checkpoint, summary rows, groups.

Each checkpoint's store is read once, column by column, and reduced to the
few arrays the pictures need, so the figure builders never touch a store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pctce_cli.errors import DataError

# CE below this is drawn at it on log axes (CE can be exactly 0 in float32)
CE_FLOOR = 1e-6
# fixed log-spaced histogram bins, 10 per decade from 1e-6 to 100 nats: one pass
# per checkpoint, and every checkpoint shares the bins
BINS_PER_DECADE = 10
HIST_EDGES = np.logspace(-6, 2, 8 * BINS_PER_DECADE + 1)


@dataclass
class Distribution:
    """What the distribution plots need of one checkpoint's CE (read once).

    Attributes:
        id: Checkpoint id.
        n: Number of targets.
        mean: Mean CE (nats).
        p50: Median CE.
        cdf_at_mean: Fraction of targets with CE ≤ mean.
        ecdf_ce: CE at evenly spaced ranks (downsampled ECDF).
        ecdf: ECDF at ``ecdf_ce``.
        hist: Fraction of targets per :data:`HIST_EDGES` bin (out-of-range CE clipped in).
        low: 1st percentile of the positive CE values (where the log axis may start).
        profile: Standardized percentile profile z_5 … z_95 (NaN when IQR = 0).
        bands: Mass in each CE band of ``edges``.
    """

    id: str
    n: int
    mean: float
    p50: float
    cdf_at_mean: float
    ecdf_ce: np.ndarray
    ecdf: np.ndarray
    hist: np.ndarray
    low: float
    profile: np.ndarray
    bands: np.ndarray


def distribution(ck_id: str, ce, edges: Sequence[float] | None = None, n_points: int = 400) -> Distribution:
    """Summarize one CE array for the distribution plots.

    Args:
        ck_id: Checkpoint id (for the result and messages).
        ce: Per-target CE.
        edges: CE band edges (default SPEC §2's).
        n_points: Points of the downsampled ECDF.

    Returns:
        The :class:`Distribution`.

    Raises:
        DataError: ``ce`` is empty.

    Examples:
        >>> d = distribution("a", np.array([0.5, 1.0, 2.0, 4.0]), edges=[0, 1, float("inf")])
        >>> d.n, d.mean, d.p50, d.bands.tolist()
        (4, 1.875, 1.5, [0.25, 0.75])
    """
    from pctce_cli.stats.shape import band_mass, ecdf_points, profile
    from pctce_cli.stats.summaries import DEFAULT_EDGES, percentiles

    ce = np.asarray(ce)
    if ce.size == 0:
        raise DataError(f"'{ck_id}' holds no targets; nothing to plot")
    ce64 = ce.astype(np.float64)
    mean = float(ce64.mean())
    pts = ecdf_points(ce, n_points)
    counts, _ = np.histogram(np.clip(ce64, HIST_EDGES[0], HIST_EDGES[-1]), HIST_EDGES)
    return Distribution(
        id=ck_id,
        n=int(ce.size),
        mean=mean,
        p50=float(percentiles(ce, [50])[0]),
        cdf_at_mean=float(np.count_nonzero(ce64 <= mean)) / ce.size,
        ecdf_ce=pts["ce"].to_numpy(),
        ecdf=pts["cdf"].to_numpy(),
        hist=counts / ce.size,
        low=float(np.percentile(ce64[ce64 > 0], 1)) if (ce64 > 0).any() else CE_FLOOR,
        profile=profile(ce),
        bands=band_mass(ce, DEFAULT_EDGES if edges is None else edges),
    )


def distributions(cks, edges: Sequence[float] | None = None) -> list[Distribution]:
    """:func:`distribution` of every checkpoint, reading only its ``ce`` column, one at a time.

    Args:
        cks: Checkpoints from :func:`pctce_cli.analysis.resolve_checkpoints`.
        edges: CE band edges (default SPEC §2's).

    Returns:
        One :class:`Distribution` per checkpoint, in order.
    """
    from pctce_cli.store import load_scores

    return [distribution(c.id, load_scores(c.root, c.partition, columns=("ce",)).ce, edges) for c in cks]


def trajectory_rows(cks, names: Sequence[str], subsets=None, notes: list[str] | None = None) -> list[dict]:
    """Per-checkpoint rows (``checkpoint``, ``step`` and every summary in ``names``).

    Args:
        cks: The selected checkpoints.
        names: Canonical summary names; ``zXX`` values are derived from the percentiles.
        subsets: ``--subset``: summaries of the kept documents only
            (:class:`pctce_cli.analysis.subsets.Subsets`; default every document).
        notes: Where notes on the subsets go.

    Returns:
        One dict per checkpoint, for :func:`~pctce_cli.plot.figures.trajectory_figure`.
    """
    from pctce_cli.analysis.summary import summary_rows
    from pctce_cli.stats.summaries import parse_summary_name, percentile_name

    parsed = [parse_summary_name(n) for n in names]
    qs = sorted({p.q for p in parsed if p.kind in ("p", "z")} | ({50.0} if any(p.kind == "z" for p in parsed) else set()))
    rows = summary_rows(cks, qs, **({"subsets": subsets, "notes": notes} if subsets is not None else {}))
    for r in rows:
        for p in parsed:
            if p.kind == "z" and p.name not in r:
                iqr = r["iqr"]
                r[p.name] = (r[percentile_name(p.q)] - r["p50"]) / iqr if iqr > 0 else math.nan
    return rows
