"""The divergence summaries of one distribution (docs/definitions.md#divergence-from-a-reference-model): pure numpy.

The row ``pctce summary --value kl|dp`` prints, the gate's KL limits read and
:meth:`pctce_cli.scoring.result.ScoreResult.summary` returns with ``value="kl"``:
mean, the percentiles, max and ``same_top1``, with document-bootstrap bounds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pctce_cli.stats.summaries import percentile_name

# llama.cpp's KL divergence report: the median and the upper tail (max is reported beside them)
DIVERGENCE_PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def divergence_row(values: np.ndarray, doc: np.ndarray, same: np.ndarray | None, percentiles: Sequence[float], ci: float | None = None, n_boot: int = 1000, seed: int = 0) -> dict:
    """Mean, the percentiles, max and ``same_top1`` (a mean; omitted without ``same``) of one distribution, with bootstrap bounds.

    ``same_top1`` is the token summary ``top1`` of ranks ``1 - same`` (rank 0 where the argmaxes agree), so the
    bootstrap resamples it with the values, by document.

    Example:
        >>> divergence_row(np.array([0.0, 0.1, 0.3, 2.0]), np.array([0, 0, 1, 1]), np.array([1, 1, 1, 0]), [50])
        {'n': 4, 'mean': 0.6, 'p50': 0.2, 'max': 2.0, 'same_top1': 0.75}
    """
    from pctce_cli.stats.summaries import summary_values

    names = ["mean", *(percentile_name(q) for q in percentiles), "p100"] + (["top1"] if same is not None else [])
    rank = None if same is None else 1 - same.astype(np.int64)
    rename = {"p100": "max", "top1": "same_top1"}
    vals = summary_values(names, values, rank) if len(values) else {n: float("nan") for n in names}
    row = {"n": len(values), **{rename.get(k, k): v for k, v in vals.items()}}
    if ci is not None and len(values):
        from pctce_cli.stats.bootstrap import bootstrap_ci

        res = bootstrap_ci(values, doc, names, n_boot=n_boot, ci=ci, seed=seed, rank=rank)
        for name in names:
            row[f"{rename.get(name, name)}_lo"], row[f"{rename.get(name, name)}_hi"] = res[name]
    return row


__all__ = ["DIVERGENCE_PERCENTILES", "divergence_row"]
