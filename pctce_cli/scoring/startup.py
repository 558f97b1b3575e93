"""The fixed cost of a scoring process: importing torch and transformers, loading a model, exiting.

Outside the forward pass, a ``pctce score`` run spends most of its time importing
torch, transformers and a model's modules (about 2,800 modules, millions of
objects) and, at exit, tearing them down. Python's cyclic garbage collector
walks every tracked object on each full collection, and several full
collections fall inside those imports; the objects they create live until the
process ends, so walking them finds nothing to free. :func:`paused_gc` holds the
collector off while they are created (measured: about 0.5 s of CPU less per
run, docs/benchmarks.md) and, in the command line's process, freezes what the
imports made (``gc.freeze``): later collections, during the forward pass and the writing of
shards, then walk only the objects the run itself makes (each full collection
had walked all of torch and transformers: 0.3-0.4 s, three to four times a run).
This module imports neither torch nor transformers.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator


_FREEZING = False  # set by the command line's entry point (allow_freezing): never in a library caller's process


def allow_freezing() -> None:
    """Let :func:`paused_gc` freeze: called by ``pctce``'s ``main``, whose process is pctce's alone.

    ``gc.freeze`` moves every object tracked in the process, not only those the
    imports made; in a library caller's process (a notebook, a test runner) that
    would include its own objects, and a cycle among them that became garbage
    later would never be freed. So only the command line freezes.
    """
    global _FREEZING
    _FREEZING = True


@contextlib.contextmanager
def paused_gc(freeze_imports: bool = False) -> Iterator[None]:
    """Hold off cyclic garbage collection inside the block (imports, model loads); restore it after.

    Nothing is freed later than it would be: reference counting still frees
    objects at once, and the collector, enabled again on exit from the block
    as it was before, finds any cycle made meanwhile at its next run. Nested
    or concurrent blocks leave the collector as the outermost found it.

    Args:
        freeze_imports: when the block imported modules, and the process is the
            command line's (:func:`allow_freezing`), move every object tracked
            so far to the collector's permanent generation on exit
            (``gc.freeze``), so no later collection walks them again. Only for
            blocks that make nothing but imports and small objects: a frozen
            object is still freed by reference counting, but a frozen cycle
            never is (a model is loaded outside such a block).
    """
    was = gc.isenabled()
    modules = len(sys.modules)
    gc.disable()
    try:
        yield
    finally:
        if freeze_imports and _FREEZING and len(sys.modules) > modules:
            gc.freeze()
        if was:
            gc.enable()

