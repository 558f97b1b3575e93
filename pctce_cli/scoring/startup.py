"""The fixed cost of a scoring process: importing torch and transformers, loading a model, exiting.

Outside the forward pass, a ``pctce score`` run spends most of its time importing
torch, transformers and a model's modules (about 2,800 modules, millions of
objects) and, at exit, tearing them down. Python's cyclic garbage collector
walks every tracked object on each full collection, and several full
collections fall inside those imports; the objects they create live until the
process ends, so walking them finds nothing to free. :func:`paused_gc` holds the
collector off while they are created (measured: about 0.5 s of CPU less per
run, docs/benchmarks.md). This module imports neither torch nor transformers.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Hold off cyclic garbage collection inside the block (imports, model loads); restore it after.

    Nothing is freed later than it would be: reference counting still frees
    objects at once, and the collector, enabled again on exit from the block
    as it was before, finds any cycle made meanwhile at its next run. Nested
    or concurrent blocks leave the collector as the outermost found it.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()

