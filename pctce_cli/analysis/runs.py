"""Runs: which checkpoints of a store form one training trajectory (``--meta``'s ``run``, else the run directory).

A run is what a trajectory draws as one line and what ``--vs`` crossings follow
step by step. A group (``--group``, ``--meta``'s ``group``) gathers several runs
and is never one. Used by ``summary --vs``, the plots and the report.
"""

from __future__ import annotations

__all__ = ["run_of", "runs_of"]


def run_of(ck) -> str | None:
    """The run (trajectory) a checkpoint belongs to: ``--meta``'s ``run`` column, else its run directory; never its group.

    A group (``--group``, ``--meta``'s ``group``) gathers several runs; drawing it
    as one line zigzags through their steps.
    """
    r = (ck.meta or {}).get("run")
    if r is not None and not (isinstance(r, float) and r != r):
        return str(r)
    return ck.run or _id_run(ck.id)


def _id_run(ck_id: str) -> str | None:
    """The run named by a checkpoint id of pctce's form ``RUN.checkpoint-500`` (None for other ids).

    Stores that record no run directory (written from Python, or by other tools) still
    name their checkpoints this way; without it all their checkpoints would be one line.

    Examples:
        >>> _id_run("teacher.checkpoint-1200"), _id_run("final")
        ('teacher', None)
    """
    from pctce_cli.checkpoints import parse_step

    head, dot, tail = ck_id.rpartition(".")
    return head if dot and head and parse_step(tail) is not None else None


def runs_of(cks) -> dict[str, str | None]:
    """Checkpoint id → run name (:func:`run_of`; None for a checkpoint without a step).

    When two checkpoints of one run directory have the same step (stores that do
    not record their runs apart), the run is split by the run each id names
    (``RUN.checkpoint-500``, the most specific name a checkpoint carries); without
    one, by group; else each such checkpoint is drawn alone, never as a zigzag.
    """
    runs = {c.id: run_of(c) if c.step is not None else None for c in cks}
    steps: dict[str, list] = {}
    for c in cks:
        if runs[c.id] is not None:
            steps.setdefault(runs[c.id], []).append(c.step)
    shared = {r for r, s in steps.items() if len(s) != len(set(s))}
    for c in cks:
        if runs[c.id] in shared:
            # a run whose steps repeat is several runs: split it by the run its id names (RUN.checkpoint-500),
            # else by group, else draw each checkpoint alone — never a zigzag through the steps
            by_id = _id_run(c.id)
            runs[c.id] = by_id if by_id not in (None, runs[c.id]) else c.group if c.group is not None else c.id
    return runs
