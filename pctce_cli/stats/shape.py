"""Shape of a CE distribution: band masses, percentile profiles, ECDF (docs/definitions.md#summaries-of-one-checkpoint).

* Band mass: fraction of targets with ce in each half-open band
  ``[e_k, e_{k+1})``. The denominator is all targets, so masses sum to 1
  exactly when the edges span the data (the default edges 0 … ∞ span every
  CE, which is ≥ 0); targets outside the edges are in no band.
* Percentile profile: ``z_q = (p_q − p50) / iqr`` for q = 5, 10, …, 95; all
  NaN when the IQR is 0. Shape distance = Euclidean distance of profiles
  (NaN when either profile is NaN).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats.checks import as_ce
from pctce_cli.stats.defaults import DEFAULT_EDGES, PROFILE_LEVELS
from pctce_cli.stats.order import percentiles

if TYPE_CHECKING:  # pandas costs ~0.5 s to import; load it when used
    import pandas as pd

__all__ = [
    "PROFILE_LEVELS",
    "band_mass",
    "band_labels",
    "profile",
    "profile_distance",
    "profile_distances",
    "group_distance_summary",
    "ecdf_points",
]

def _check_edges(edges) -> np.ndarray:
    try:
        e = np.asarray(edges, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"edges must be numbers, got {edges!r}") from None
    if e.ndim != 1 or e.size < 2:
        raise UsageError(f"edges must list at least 2 band edges, got {edges!r}")
    if np.isnan(e).any() or not (np.diff(e) > 0).all():
        raise UsageError(f"edges must be strictly increasing numbers, got {list(map(float, e))}")
    return e


def band_mass(ce, edges: Sequence[float] = DEFAULT_EDGES, weights=None) -> np.ndarray:
    """Fraction of targets in each band ``[edges[k], edges[k+1])``.

    Args:
        ce: 1-D array of finite CE values.
        edges: strictly increasing band edges; the last may be ``inf``.
        weights: optional non-negative integer weight of each value (a byte
            distribution: each value stands for that many bytes).

    Returns:
        float64 array of ``len(edges) − 1`` fractions of all targets (NaN
        for every band when ``ce`` is empty).

    Example:
        >>> band_mass([0.0, 0.05, 0.3, 2.0], edges=[0, 0.1, 1, float("inf")]).tolist()
        [0.5, 0.25, 0.25]
        >>> band_mass([0.05, 2.0], edges=[0, 0.1, float("inf")], weights=[3, 1]).tolist()
        [0.75, 0.25]
    """
    arr = as_ce(ce)
    e = _check_edges(edges)
    n_bands = e.size - 1
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    total = arr.size if w is None else float(w.sum())
    if arr.size == 0 or total == 0:
        return np.full(n_bands, np.nan)
    band = np.searchsorted(e, arr, side="right") - 1  # band k holds e[k] <= ce < e[k+1]
    inside = (band >= 0) & (band < n_bands)
    counts = np.bincount(band[inside], weights=None if w is None else w[inside], minlength=n_bands)
    return counts.astype(np.float64) / total


def band_labels(edges: Sequence[float] = DEFAULT_EDGES) -> list[str]:
    """Human-readable band names, e.g. ``[0, 0.1)``, ``[10, inf)``.

    Example:
        >>> band_labels([0, 0.5, float("inf")])
        ['[0, 0.5)', '[0.5, inf)']
    """
    e = _check_edges(edges)

    def fmt(x: float) -> str:
        return "inf" if x == math.inf else "-inf" if x == -math.inf else np.format_float_positional(x, trim="-")

    return [f"[{fmt(a)}, {fmt(b)})" for a, b in zip(e[:-1], e[1:])]


def profile(ce, weights=None) -> np.ndarray:
    """Standardized percentile profile ``z_q`` for q = 5, 10, …, 95 (one percentile pass).

    With ``weights`` (integers), the percentiles are those of the multiset in
    which each value occurs that many times (the byte distribution).

    Example:
        >>> profile(list(range(101)))[[0, 9, 18]].tolist()
        [-0.9, 0.0, 0.9]
    """
    if weights is None:
        p = percentiles(ce, PROFILE_LEVELS)  # includes 25, 50, 75
    else:
        from pctce_cli.stats.units import weighted_percentiles

        p = weighted_percentiles(ce, weights, PROFILE_LEVELS)
    p25, p50, p75 = (p[PROFILE_LEVELS.index(q)] for q in (25, 50, 75))
    iqr = p75 - p25
    if not iqr > 0:
        return np.full(len(PROFILE_LEVELS), np.nan)
    return (p - p50) / iqr


def _as_profile(p, what: str) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 1:
        raise UsageError(f"{what} must be a 1-D profile, got shape {arr.shape}")
    return arr


def profile_distance(p1, p2) -> float:
    """Euclidean distance between two profiles (NaN if either has a NaN).

    Example:
        >>> profile_distance([0.0, 1.0], [3.0, 5.0])
        5.0
    """
    a, b = _as_profile(p1, "p1"), _as_profile(p2, "p2")
    if a.shape != b.shape:
        raise UsageError(f"profiles must have the same length, got {a.size} and {b.size}")
    return float(np.sqrt(np.sum((a - b) ** 2)))


def profile_distances(profiles) -> pd.DataFrame:
    """Pairwise profile distances.

    Args:
        profiles: DataFrame with one row per checkpoint (index = name) and one
            column per level, or a mapping name → profile.

    Returns:
        Symmetric DataFrame (checkpoint × checkpoint), zero diagonal
        (NaN rows for NaN profiles).

    Example:
        >>> profile_distances({"a": [0.0, 0.0], "b": [3.0, 4.0]}).values.tolist()
        [[0.0, 5.0], [5.0, 0.0]]
    """
    import pandas as pd

    if isinstance(profiles, pd.DataFrame):
        names, x = profiles.index.tolist(), profiles.to_numpy(dtype=np.float64)
    elif isinstance(profiles, Mapping):
        names = list(profiles)
        rows = [_as_profile(profiles[k], f"profile {k!r}") for k in names]
        if len({r.size for r in rows}) > 1:
            raise UsageError("profiles must all have the same length")
        x = np.vstack(rows) if rows else np.zeros((0, 0))
    else:
        raise UsageError(f"profiles must be a DataFrame or a mapping name → profile, got {type(profiles).__name__}")
    diff = x[:, None, :] - x[None, :, :]  # (M, M, Q)
    dist = np.sqrt(np.sum(diff**2, axis=-1))
    return pd.DataFrame(dist, index=names, columns=names)


def group_distance_summary(distances: pd.DataFrame, groups) -> pd.DataFrame:
    """Mean profile distance within each group and between each pair of groups.

    Args:
        distances: square DataFrame from :func:`profile_distances`.
        groups: mapping checkpoint → group, or a sequence aligned with the rows.

    Returns:
        DataFrame with columns ``group_a``, ``group_b`` (equal for
        within-group rows), ``n_pairs`` (pairs with a finite distance) and
        ``mean_distance``; groups in order of first appearance.

    Example:
        >>> d = profile_distances({"a": [0.0], "b": [1.0], "c": [5.0]})
        >>> group_distance_summary(d, {"a": "x", "b": "x", "c": "y"}).values.tolist()
        [['x', 'x', 1, 1.0], ['x', 'y', 2, 4.5], ['y', 'y', 0, nan]]
    """
    import pandas as pd

    names = distances.index.tolist()
    if isinstance(groups, Mapping):
        missing = [n for n in names if n not in groups]
        if missing:
            raise UsageError(f"groups has no group for checkpoint(s) {', '.join(map(str, missing))}")
        labels = np.asarray([groups[n] for n in names], dtype=object)
    else:
        labels = np.asarray(list(groups), dtype=object)
        if labels.shape != (len(names),):
            raise UsageError(f"groups must have one entry per checkpoint ({len(names)}), got {labels.shape[0]}")
    d = distances.to_numpy(dtype=np.float64)
    order = list(pd.unique(labels))
    upper = np.triu(np.ones(d.shape, dtype=bool), k=1)
    rows = []
    for ia, ga in enumerate(order):
        for gb in order[ia:]:
            sel = np.outer(labels == ga, labels == gb)
            if ga == gb:
                sel &= upper
            vals = d[sel]
            vals = vals[np.isfinite(vals)]
            rows.append((ga, gb, int(vals.size), float(vals.mean()) if vals.size else math.nan))
    return pd.DataFrame(rows, columns=["group_a", "group_b", "n_pairs", "mean_distance"])


def ecdf_points(ce, n_points: int = 200, weights=None) -> pd.DataFrame:
    """A downsampled empirical CDF for plotting, evenly spaced in probability.

    Takes the order statistics at ``n_points`` evenly spaced ranks (first
    and last included) and the exact ECDF there, ``#(ce ≤ x) / N``;
    repeated points (ties) are dropped.

    With ``weights`` (non-negative integers) the ECDF is that of the multiset in
    which ``ce[i]`` occurs ``weights[i]`` times (the byte distribution), found
    from cumulative weights without expanding it: the result equals
    ``ecdf_points(np.repeat(ce, weights), n_points)`` exactly.

    Example:
        >>> ecdf_points([3.0, 1.0, 2.0, 4.0], n_points=3).values.tolist()
        [[1.0, 0.25], [3.0, 0.75], [4.0, 1.0]]
        >>> ecdf_points([1.0, 3.0], n_points=3, weights=[3, 1]).values.tolist()
        [[1.0, 0.75], [3.0, 1.0]]
    """
    import pandas as pd

    arr = as_ce(ce)
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 2:
        raise UsageError(f"n_points must be an integer >= 2, got {n_points!r}")
    if weights is None:
        x = np.sort(arr)
        total = x.size
        cum = None
    else:
        w = np.asarray(weights)
        if w.shape != arr.shape or (w.size and (not np.issubdtype(w.dtype, np.integer) or w.min() < 0)):
            raise UsageError("weights must be non-negative integers, one per value")
        order = np.argsort(arr, kind="stable")
        x, cum = arr[order], np.cumsum(w[order].astype(np.int64))
        total = int(cum[-1]) if cum.size else 0
    if total == 0:
        return pd.DataFrame({"ce": np.zeros(0), "cdf": np.zeros(0)})
    ranks = np.unique(np.round(np.linspace(0, total - 1, n_points)).astype(np.int64))
    if cum is None:
        at = x[ranks]
        below = np.searchsorted(x, at, side="right")
    else:
        # the k-th smallest expanded value is the first value whose cumulative weight exceeds k;
        # #(values <= x) is the cumulative weight of the last value <= x
        at = x[np.searchsorted(cum, ranks, side="right")]
        below = cum[np.searchsorted(x, at, side="right") - 1]
    out = pd.DataFrame({"ce": at.astype(np.float64), "cdf": below / total}).drop_duplicates(ignore_index=True)
    return out
