"""The size above which a checkpoint's summaries stream (docs/streaming.md): ``$PCTCE_STREAM_ABOVE`` targets.

Its own module so that every streamed path (summary, units, divergence,
position) reads the one bound without importing the command cores.
"""

from __future__ import annotations

import os

from pctce_cli.errors import UsageError

# Above this many targets a checkpoint is summarized by streaming its shards twice
# (stats.streaming: exact percentiles, memory bounded by one shard) instead of
# loading its columns (~16 bytes a target): 50M targets is about 0.8 GB loaded.
STREAM_ABOVE = 50_000_000


def stream_above() -> int:
    """Targets above which summaries stream: ``$PCTCE_STREAM_ABOVE``, else :data:`STREAM_ABOVE`."""
    env = os.environ.get("PCTCE_STREAM_ABOVE")
    if not env:
        return STREAM_ABOVE
    try:
        return max(0, int(env))
    except ValueError:
        raise UsageError(f"PCTCE_STREAM_ABOVE must be a whole number of targets, got '{env}'") from None
