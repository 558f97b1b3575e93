"""Error-entropy decomposition of mean CE (docs/definitions.md#decomposition).

Targets are grouped by their exact rank e (0 = the model's top choice):

    p_e     = n_e / N
    log Q_e = mean of ln p(target) over rank-e targets = −(mean ce of rank e)
    C       = Σ_e Q_e,   q_e = Q_e / C
    EE      = −Σ_e p_e ln p_e          (error entropy)
    SA      = Σ_e p_e ln(p_e / q_e)    (self-alignment, a KL divergence ≥ 0)
    CONF    = ln C                     (confidence)

    mean CE = EE + SA − CONF  (exact: the ln p_e and ln C terms cancel)

Everything is in float64; ln C is a log-sum-exp over the log Q_e, because
Q_e = exp(−mean ce) underflows for the high ranks of a confident model.
"""

from __future__ import annotations

import math

import numpy as np

from pctce_cli.stats.checks import as_ce, as_int_array

__all__ = ["decompose"]

# Ranks are vocabulary positions; above this, group with np.unique instead of
# a bincount array indexed by rank.
_MAX_BINCOUNT_RANK = 1 << 24


def _by_rank(ce: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Count and float64 CE sum of each rank present."""
    if int(rank.max()) < _MAX_BINCOUNT_RANK:
        counts = np.bincount(rank)
        sums = np.bincount(rank, weights=ce)
        present = counts > 0
        return counts[present], sums[present]
    _, inv, counts = np.unique(rank, return_inverse=True, return_counts=True)
    return counts, np.bincount(inv, weights=ce)


def decompose(ce, rank) -> dict[str, float]:
    """Split mean CE into error entropy, self-alignment and confidence.

    Args:
        ce: 1-D array of finite CE values (nats).
        rank: 1-D int array (≥ 0), rank of each target, same length.

    Returns:
        dict with ``n``, ``n_ranks`` (distinct ranks), ``mean``, ``ee``,
        ``sa``, ``conf`` and ``residual`` = mean − (ee + sa − conf), which is
        float round-off only. With no targets every value but the counts is NaN.

    Raises:
        UsageError: non-finite ``ce``, negative or non-integer ``rank``,
            lengths differing.

    Example:
        >>> d = decompose([0.1, 0.2, 2.0, 3.0], [0, 0, 1, 5])
        >>> round(d["mean"], 6), round(d["ee"] + d["sa"] - d["conf"], 6), d["n_ranks"]
        (1.325, 1.325, 3)
    """
    from scipy.special import logsumexp

    arr = as_ce(ce)
    r = as_int_array(rank, "rank", n=arr.shape[0], nonnegative=True)
    n = arr.shape[0]
    if n == 0:
        nan = math.nan
        return {"n": 0, "n_ranks": 0, "mean": nan, "ee": nan, "sa": nan, "conf": nan, "residual": nan}
    counts, sums = _by_rank(arr, r)
    p = counts / n
    log_p = np.log(p)
    log_q_unnorm = -sums / counts  # log Q_e
    conf = float(logsumexp(log_q_unnorm))  # ln C
    log_q = log_q_unnorm - conf
    ee = float(-np.sum(p * log_p))
    sa = float(np.sum(p * (log_p - log_q)))
    mean = float(np.sum(arr, dtype=np.float64) / n)
    return {
        "n": int(n),
        "n_ranks": int(counts.size),
        "mean": mean,
        "ee": ee,
        "sa": sa,
        "conf": conf,
        "residual": mean - (ee + sa - conf),
    }
