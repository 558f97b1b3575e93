"""The one set of default levels and summary sets of the ``stats`` package.

Every stats module (and, through the re-exports of :mod:`pctce_cli.stats`,
the CLI and the API) takes its defaults from here.
"""

from __future__ import annotations

import math

__all__ = [
    "DEFAULT_PERCENTILES",
    "DEFAULT_SUMMARIES",
    "DEFAULT_CONCORDANCE_SET",
    "DEFAULT_EDGES",
    "AGREEMENT_PERCENTILES",
    "PROFILE_LEVELS",
    "CONCORDANCE_AGREE",
    "CONCORDANCE_DISAGREE",
    "TRAJECTORY_SUMMARIES",
    "LN2",
]

DEFAULT_PERCENTILES: tuple[float, ...] = (50, 90, 95, 99)
"""Levels reported as ``pXX`` by :func:`~pctce_cli.stats.summaries.summarize`."""

DEFAULT_SUMMARIES: tuple[str, ...] = ("mean", "p50", "p90", "p95", "p99")
"""Summaries given bootstrap intervals and compared by the selection rules."""

DEFAULT_CONCORDANCE_SET: tuple[str, ...] = ("mean", "p50", "p95")
"""The set S of :func:`~pctce_cli.stats.concordance.concordance`."""

CONCORDANCE_AGREE: float = 0.8
"""C_S at or above this reads as "the summaries agree" (mean CE is a safe selector)."""

CONCORDANCE_DISAGREE: float = 0.6
"""C_S at or below this reads as "the summaries disagree" (the distribution is being reshaped)."""

TRAJECTORY_SUMMARIES: tuple[str, ...] = ("mean", "p50", "p95")
"""Summaries a trajectory over training draws by default."""

DEFAULT_EDGES: tuple[float, ...] = (0, 0.1, 0.5, 1.5, 5, 10, math.inf)
"""Band edges of :func:`~pctce_cli.stats.shape.band_mass` (they span every CE ≥ 0)."""

AGREEMENT_PERCENTILES: tuple[int, ...] = tuple(range(5, 100, 5)) + (99,)
"""Percentile levels correlated with a task metric: 5, 10, …, 95 and 99."""

PROFILE_LEVELS: tuple[int, ...] = tuple(range(5, 100, 5))
"""Levels of the standardized percentile profile: 5, 10, …, 95."""

LN2 = math.log(2.0)
"""ln 2: nats per bit (bits-per-byte = nats per byte / ln 2)."""
