"""pctce: evaluate language-model checkpoints by the distribution of their per-token cross-entropy.

The public Python API is importable from here without importing torch::

    from pctce_cli import load_scores, list_checkpoints, summarize, concordance

The scoring and training-time tools (``score_model``, ``PercentileCE``,
``PercentileCECallback``) import torch/transformers when first used.
"""

__version__ = "0.1.0"

from pctce_cli.errors import PctceError  # noqa: E402
from pctce_cli.store import Scores, list_checkpoints, load_scores, read_manifest  # noqa: E402

# name -> module that defines it; imported on first access (PEP 562) so `import pctce_cli` stays torch-free
_LAZY = {
    "score_model": "pctce_cli.api",
    "prepare_data": "pctce_cli.api",
    "ScoreResult": "pctce_cli.api",
    "ValidationData": "pctce_cli.api",
    "PercentileCE": "pctce_cli.accumulator",
    "PercentileCECallback": "pctce_cli.callback",
    **{
        name: "pctce_cli.stats"
        for name in (
            "summarize",
            "summary_value",
            "summary_values",
            "percentiles",
            "concordance",
            "concordance_matrix",
            "kendall_tau",
            "kendall_tau_matrix",
            "tied_pairs_matrix",
            "discordant_pairs",
            "bootstrap_ci",
            "multi_bootstrap_ci",
            "paired_bootstrap",
            "select",
            "agreement",
            "best_summary",
            "band_mass",
            "profile",
            "profile_distance",
            "profile_distances",
            "ecdf_points",
            "decompose",
            "doc_sums",
            "doc_normalized",
        )
    },
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pctce_cli' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


# `from pctce_cli import *` stays torch-free: the torch-based training tools are not in it
__all__ = [
    "__version__",
    "PctceError",
    "Scores",
    "list_checkpoints",
    "load_scores",
    "read_manifest",
    *(name for name, module in _LAZY.items() if module not in ("pctce_cli.accumulator", "pctce_cli.callback")),
]
