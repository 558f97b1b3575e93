"""Pure statistics over per-token CE arrays: no torch, no file I/O.

Summaries and document-level bootstrap intervals, concordance across
checkpoints, selection rules and task agreement, distribution shape, the
error-entropy decomposition and word and byte units, each as defined in
docs/definitions.md (one section each); the defaults in
:mod:`.defaults`, input checks in :mod:`.checks`, order statistics and type-7
percentiles in :mod:`.order`. Every function takes numpy arrays or pandas
DataFrames and returns plain values, dicts, DataFrames or small dataclasses;
bad input raises :class:`pctce_cli.errors.UsageError`.
"""

from pctce_cli.stats.bootstrap import (
    BootstrapCI,
    PairedBootstrap,
    bootstrap_ci,
    bootstrap_replicates,
    multi_bootstrap_ci,
    paired_bootstrap,
)
from pctce_cli.stats.concordance import (
    ConcordanceResult,
    concordance,
    concordance_matrix,
    discordant_pairs,
    kendall_tau,
    kendall_tau_matrix,
    tied_pairs_matrix,
)
from pctce_cli.stats.decompose import decompose
from pctce_cli.stats.defaults import (
    AGREEMENT_PERCENTILES,
    DEFAULT_CONCORDANCE_SET,
    DEFAULT_EDGES,
    DEFAULT_PERCENTILES,
    DEFAULT_SUMMARIES,
    PROFILE_LEVELS,
)
from pctce_cli.stats.selection import (
    agreement,
    agreement_summaries,
    best_summary,
    select,
)
from pctce_cli.stats.shape import (
    band_labels,
    band_mass,
    ecdf_points,
    group_distance_summary,
    profile,
    profile_distance,
    profile_distances,
)
from pctce_cli.stats.order import percentiles
from pctce_cli.stats.position import bucket_summaries, context_lengths, position_buckets
from pctce_cli.stats.units import UNITS, byte_distribution, byte_mean, byte_values, weighted_percentiles, word_ce, word_sums
from pctce_cli.stats.summaries import (
    SummaryName,
    doc_normalized,
    doc_sums,
    parse_summary_name,
    percentile_name,
    summarize,
    summary_value,
    summary_values,
)

__all__ = [
    "AGREEMENT_PERCENTILES",
    "BootstrapCI",
    "ConcordanceResult",
    "DEFAULT_CONCORDANCE_SET",
    "DEFAULT_EDGES",
    "DEFAULT_PERCENTILES",
    "DEFAULT_SUMMARIES",
    "PROFILE_LEVELS",
    "PairedBootstrap",
    "SummaryName",
    "UNITS",
    "agreement",
    "agreement_summaries",
    "band_labels",
    "band_mass",
    "best_summary",
    "byte_distribution",
    "byte_mean",
    "byte_values",
    "bootstrap_ci",
    "bootstrap_replicates",
    "bucket_summaries",
    "concordance",
    "concordance_matrix",
    "context_lengths",
    "decompose",
    "discordant_pairs",
    "doc_normalized",
    "doc_sums",
    "ecdf_points",
    "group_distance_summary",
    "kendall_tau",
    "kendall_tau_matrix",
    "multi_bootstrap_ci",
    "paired_bootstrap",
    "parse_summary_name",
    "percentile_name",
    "percentiles",
    "position_buckets",
    "profile",
    "profile_distance",
    "profile_distances",
    "select",
    "summarize",
    "summary_value",
    "summary_values",
    "tied_pairs_matrix",
    "weighted_percentiles",
    "word_ce",
    "word_sums",
]
