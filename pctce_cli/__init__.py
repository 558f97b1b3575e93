"""pctce: evaluate language-model checkpoints by the distribution of their per-token cross-entropy.

The public Python API is importable from here without importing torch::

    from pctce_cli import load_scores, list_checkpoints
"""

__version__ = "0.1.0"

from pctce_cli.errors import PctceError  # noqa: E402
from pctce_cli.store import Scores, list_checkpoints, load_scores, read_manifest  # noqa: E402

__all__ = ["__version__", "PctceError", "Scores", "list_checkpoints", "load_scores", "read_manifest"]
