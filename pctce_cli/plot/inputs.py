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
from pctce_cli.units import unit_named

# CE below this is drawn at it on log axes (CE can be exactly 0 in float32)
CE_FLOOR = 1e-6
# fixed log-spaced histogram bins, 10 per decade from 1e-6 to 100 nats: one pass
# per checkpoint, and every checkpoint shares the bins
BINS_PER_DECADE = 10
HIST_EDGES = np.logspace(-6, 2, 8 * BINS_PER_DECADE + 1)
# a word's CE is the sum of its tokens' (a long identifier or URL is many tokens):
# its bins go on to 10^4 nats so that such words are not all piled into the last bin
WORD_HIST_EDGES = np.logspace(-6, 4, 10 * BINS_PER_DECADE + 1)


def hist_edges(unit: str = "token") -> np.ndarray:
    """The histogram bin edges of a unit's distribution (:data:`HIST_EDGES`, words :data:`WORD_HIST_EDGES`)."""
    return WORD_HIST_EDGES if unit_named(unit).sums_tokens else HIST_EDGES


@dataclass
class Distribution:
    """What the distribution plots need of one checkpoint's CE (read once), in tokens, words or bytes.

    Attributes:
        id: Checkpoint id.
        n: Number of values: targets, words or bytes.
        mean: Mean CE (nats per target, word or byte).
        p50: Median CE.
        cdf_at_mean: Fraction of values with CE ≤ mean.
        ecdf_ce: CE at evenly spaced ranks (downsampled ECDF).
        ecdf: ECDF at ``ecdf_ce``.
        hist: Fraction of values per :func:`hist_edges` bin (out-of-range CE clipped in).
        low: 1st percentile of the positive CE values (where the log axis may start).
        profile: Standardized percentile profile z_5 … z_95 (NaN when IQR = 0).
        bands: Mass in each CE band of ``edges``.
        unit: ``token``, ``word`` or ``byte`` (docs/definitions.md#words-and-bytes); bytes are weighted,
            every statistic above is over the bytes, each token's CE spread evenly over its bytes.
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
    unit: str = "token"

    @property
    def hist_edges(self) -> np.ndarray:
        """The edges of :attr:`hist`'s bins."""
        return hist_edges(self.unit)


def distribution(ck_id: str, ce, edges: Sequence[float] | None = None, n_points: int = 400, weights=None, unit: str = "token") -> Distribution:
    """Summarize one CE array for the distribution plots.

    (Long by its documented arguments; the body is about 35 lines.)

    Args:
        ck_id: Checkpoint id (for the result and messages).
        ce: Per-target CE, or a unit's values (word CEs; per-byte values ``ce / nbytes``).
        edges: CE band edges (default docs/definitions.md#summaries-of-one-checkpoint:).
        n_points: Points of the downsampled ECDF.
        weights: Integer weight of each value (bytes: ``nbytes``): every
            statistic is that of the multiset in which value ``i`` occurs
            ``weights[i]`` times, computed from the (value, weight) pairs
            without expanding them (equal to ``distribution(np.repeat(ce, weights))``).
        unit: What the values are (``token``, ``word``, ``byte``): labels and histogram bins.

    Returns:
        The :class:`Distribution`.

    Raises:
        DataError: ``ce`` is empty (or its weights sum to 0).

    Examples:
        >>> d = distribution("a", np.array([0.5, 1.0, 2.0, 4.0]), edges=[0, 1, float("inf")])
        >>> d.n, d.mean, d.p50, d.bands.tolist()
        (4, 1.875, 1.5, [0.25, 0.75])
        >>> b = distribution("a", np.array([0.5, 2.0]), edges=[0, 1, float("inf")], weights=np.array([3, 1]), unit="byte")
        >>> b.n, b.mean, b.p50, b.bands.tolist()
        (4, 0.875, 0.5, [0.75, 0.25])
    """
    from pctce_cli.stats.shape import band_mass, ecdf_points, profile
    from pctce_cli.stats.summaries import DEFAULT_EDGES, percentiles
    from pctce_cli.stats.units import weighted_percentiles

    ce = np.asarray(ce)
    w = None if weights is None else np.asarray(weights).astype(np.int64, copy=False)
    n = int(ce.size if w is None else w.sum())
    if n == 0:
        raise DataError(f"'{ck_id}' holds no {unit_named(unit).plural}; nothing to plot")
    ce64 = ce.astype(np.float64)
    weight = np.ones(ce.size, np.int64) if w is None else w
    mean = float(ce64.mean()) if w is None else float(np.dot(ce64, w) / n)
    pts = ecdf_points(ce64, n_points, w)
    edges_h = hist_edges(unit)
    counts, _ = np.histogram(np.clip(ce64, edges_h[0], edges_h[-1]), edges_h, weights=w)
    positive = ce64 > 0
    if not (weight[positive] > 0).any():
        low = CE_FLOOR
    elif w is None:
        low = float(np.percentile(ce64[positive], 1))
    else:
        low = float(weighted_percentiles(ce64[positive], w[positive], [1])[0])
    return Distribution(
        id=ck_id,
        n=n,
        mean=mean,
        p50=float((percentiles(ce, [50]) if w is None else weighted_percentiles(ce64, w, [50]))[0]),
        cdf_at_mean=float(weight[ce64 <= mean].sum()) / n,
        ecdf_ce=pts["ce"].to_numpy(),
        ecdf=pts["cdf"].to_numpy(),
        hist=counts / n,
        low=low,
        profile=profile(ce64 if w is not None else ce, w),
        bands=band_mass(ce, DEFAULT_EDGES if edges is None else edges, w),
        unit=unit,
    )


def unit_distribution(ck_id: str, u, edges: Sequence[float] | None = None, unit: str = "token", part=None) -> Distribution:
    """:func:`distribution` of one checkpoint's loaded arrays in ``unit`` (a subset's rows with ``part``).

    Args:
        ck_id: Checkpoint id.
        u: :class:`pctce_cli.store.Scores` (tokens; ``ce`` is enough) or
            :class:`pctce_cli.store.UnitScores` (words and bytes).
        edges: CE band edges.
        unit: ``token``, ``word`` (word CEs) or ``byte`` (``ce / nbytes`` weighted by ``nbytes``).
        part: A :class:`pctce_cli.analysis.subsets.Part`: only its rows.
    """
    take = part.take if part is not None else (lambda x: x)
    unit = unit_named(unit)
    if not unit.spans:
        return distribution(ck_id, take(u.ce), edges)
    values, weights = unit.distribution(take(u.ce), take(u.doc), take(u.word), take(u.nbytes))
    return distribution(ck_id, values, edges, weights=weights, unit=unit.name)


def load_unit_scores(ck, unit: str = "token", columns: Sequence[str] = ("ce",)):
    """One checkpoint's arrays for ``unit``: ``columns`` of its tokens, or its words and bytes (:func:`pctce_cli.store.load_units`).

    Raises:
        UsageError: words or bytes of a checkpoint without byte spans (the message says why and what to do).
    """
    return unit_named(unit).load_arrays(ck, columns)


def distributions(cks, edges: Sequence[float] | None = None, unit: str = "token") -> list[Distribution]:
    """:func:`distribution` of every checkpoint in ``unit``, one at a time, reading only the columns it needs.

    Args:
        cks: Checkpoints from :func:`pctce_cli.analysis.resolve_checkpoints`.
        edges: CE band edges (default docs/definitions.md#summaries-of-one-checkpoint:).
        unit: ``token`` (the ``ce`` column), ``word`` or ``byte`` (docs/definitions.md#words-and-bytes).

    Returns:
        One :class:`Distribution` per checkpoint, in order.

    Raises:
        UsageError: words or bytes of a checkpoint without byte spans.
    """
    return [unit_distribution(c.id, load_unit_scores(c, unit), edges, unit) for c in cks]


MAX_OVERLAID = 12  # distributions overlaid in one figure; past it, each run's last checkpoint


def overlaid(cks, kind: str = "the figure") -> tuple[list, str | None]:
    """The checkpoints a distribution figure overlays: all up to :data:`MAX_OVERLAID`, else each run's last one.

    More than about a dozen ECDFs, histograms or profiles on one axes are
    unreadable; the last checkpoint of each run (:func:`~pctce_cli.plot.theme.runs_of`;
    a checkpoint outside any run is its own) is what a reader compares first.

    Args:
        cks: The selected checkpoints.
        kind: What is drawn, for the note (``ecdf``).

    Returns:
        ``(checkpoints drawn, in selection order; a note saying what was left out and how to choose others, or None)``.
    """
    from pctce_cli.plot.theme import runs_of

    if len(cks) <= MAX_OVERLAID:
        return list(cks), None
    runs = runs_of(cks)
    last: dict[str, object] = {}
    for c in cks:
        key = runs[c.id] or c.id
        if key not in last or (c.step if c.step is not None else -1) >= (last[key].step if last[key].step is not None else -1):
            last[key] = c
    keep = {c.id for c in last.values()}
    drawn = [c for c in cks if c.id in keep]
    note = (
        f"{kind}: {len(cks)} checkpoints are too many to overlay; it shows each run's last checkpoint "
        f"({len(drawn)} of {len(cks)}); choose others with --checkpoint GLOB"
    )
    return drawn, note


def overlaid_titled(cks, kind: str, notes: list | None) -> tuple[list, str]:
    """:func:`overlaid`, its note added to ``notes``, and what the figure's title adds when checkpoints were left out.

    Returns:
        ``(checkpoints drawn, "\\n(each run's last checkpoint: 15 of 60)" or "")``.
    """
    drawn, note = overlaid(cks, kind)
    if note and notes is not None:
        notes.append(note)
    return drawn, f"\n(each run's last checkpoint: {len(drawn)} of {len(cks)})" if note else ""


def trajectory_rows(cks, names: Sequence[str], subsets=None, notes: list[str] | None = None, unit: str = "token") -> list[dict]:
    """Per-checkpoint rows (``checkpoint``, ``step`` and every summary in ``names``).

    Args:
        cks: The selected checkpoints.
        names: Canonical summary names; ``zXX`` values are derived from the percentiles.
        subsets: ``--subset``: summaries of the kept documents only
            (:class:`pctce_cli.analysis.subsets.Subsets`; default every document).
        notes: Where notes on the subsets go.
        unit: Summaries of the ``token``, ``word`` or ``byte`` distribution (docs/definitions.md#words-and-bytes).

    Returns:
        One dict per checkpoint, for :func:`~pctce_cli.plot.figures.trajectory_figure`.
    """
    from pctce_cli.analysis.summary import summary_rows
    from pctce_cli.stats.summaries import parse_summary_name, percentile_name

    parsed = [parse_summary_name(n) for n in names]
    qs = sorted({p.q for p in parsed if p.kind in ("p", "z")} | ({50.0} if any(p.kind == "z" for p in parsed) else set()))
    rows = summary_rows(cks, qs, unit=unit, **({"subsets": subsets, "notes": notes} if subsets is not None else {}))
    for r in rows:
        for p in parsed:
            if p.kind == "z" and p.name not in r:
                iqr = r["iqr"]
                r[p.name] = (r[percentile_name(p.q)] - r["p50"]) / iqr if iqr > 0 else math.nan
    return rows
