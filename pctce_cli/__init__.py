"""pctce: evaluate language-model checkpoints by the distribution of their per-token cross-entropy.

The public Python API is importable from here without importing torch::

    from pctce_cli import load_scores, list_checkpoints, summarize, concordance

The scoring and training-time tools (``score_model``, ``PercentileCE``,
``PercentileCECallback``) import torch/transformers when first used.
"""

__version__ = "0.1.0"

from pctce_cli.errors import PctceError  # noqa: E402
from pctce_cli.stats import *  # noqa: E402,F401,F403  (every statistic, torch-free)
from pctce_cli.stats import __all__ as _STATISTICS  # noqa: E402
from pctce_cli.store import Scores, list_checkpoints, load_scores, read_manifest  # noqa: E402

# name -> module that defines it; imported on first access (PEP 562) so `import pctce_cli` stays torch-free
_LAZY = {
    "score_model": "pctce_cli.api",
    "prepare_data": "pctce_cli.api",
    "ScoreResult": "pctce_cli.api",
    "ValidationData": "pctce_cli.api",
    "PercentileCE": "pctce_cli.accumulator",
    "PercentileCECallback": "pctce_cli.callback",
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
    *_STATISTICS,
    *(name for name, module in _LAZY.items() if module not in ("pctce_cli.accumulator", "pctce_cli.callback")),
]
