"""The demo's scoring jobs, run side by side in worker processes of one thread each.

Why: the sample checkpoints are GPT-2s of a few hundred thousand parameters,
too small for two threads to share one forward pass well (every operator is a
few microseconds of work, and waking the second thread costs about as much);
two processes of one thread, each scoring its own studies into its own store,
keep both cores busy. The scores are the same bits either way (on these
models one thread and two give identical stores), and each store is still
written by one process under its lock.

A worker is a fresh interpreter (``spawn``: torch's thread pools do not survive
a fork), started before this process imports torch; it sends its progress
events through a queue, and a thread here replays them on the caller's
reporter (:class:`pctce_cli.render.RichReporter` keeps one bar per thread).
"""

from __future__ import annotations

import pickle
import queue
import threading
from dataclasses import dataclass

from pctce_cli.errors import ScoringError

# a worker that sends nothing for this long is checked for being alive
_POLL_SECONDS = 0.5


@dataclass
class _Started:
    """What a reporter reads of a checkpoint that starts: its id."""

    id: str


@dataclass
class _Finished:
    """What a reporter and the demo read of a finished checkpoint."""

    id: str
    status: str
    message: str


def run_jobs(jobs: list, reporter, workers: int) -> list:
    """Run ``score_checkpoints(paths, options)`` for each ``(paths, options)`` job.

    Args:
        jobs: ``(checkpoint paths, ScoreOptions)`` pairs; each writes its own store.
        reporter: Progress hooks (``checkpoint_started``, ``advance``, ``checkpoint_finished``).
        workers: Worker processes; 1 (or a single job) runs the jobs here, in order.

    Returns:
        One list of results per job (``status`` and ``message`` of each checkpoint).

    Raises:
        PctceError: what a job raised (the first, in job order).
        ScoringError: a worker process died.
    """
    if workers <= 1 or len(jobs) <= 1:
        from pctce_cli.scoring.run import score_checkpoints

        return [score_checkpoints(paths, options, reporter) for paths, options in jobs]
    reporter = reporter or _Quiet()
    shares = _shares([len(paths) for paths, _ in jobs], workers)
    threads = max(1, _cpus() // len(shares))
    results: list = [None] * len(jobs)
    errors: list = [None] * len(jobs)
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    relays = []
    for share in shares:
        q = ctx.Queue()
        proc = ctx.Process(target=_worker, args=([jobs[j] for j in share], threads, q), daemon=True)
        proc.start()
        t = threading.Thread(target=_relay, args=(proc, q, share, reporter, results, errors), daemon=True)
        t.start()
        relays.append((proc, t))
    try:
        for _, t in relays:
            t.join()
    finally:
        for proc, _ in relays:
            if proc.is_alive():  # interrupted: do not leave workers scoring
                proc.terminate()
            proc.join()
    for e in errors:
        if e is not None:
            raise e
    return results


class _Quiet:
    """No progress (``run_demo`` without a reporter)."""

    def checkpoint_started(self, spec, total_targets: int, done_targets: int) -> None:
        """Nothing."""

    def advance(self, n_targets: int) -> None:
        """Nothing."""

    def checkpoint_finished(self, result) -> None:
        """Nothing."""


def _cpus() -> int:
    from pctce_cli.threads import usable_cpus

    return usable_cpus()


def _shares(costs: list[int], workers: int) -> list[list[int]]:
    """Job indices per worker: the costliest job first, each to the least loaded worker (empty workers dropped).

    Examples:
        >>> _shares([27, 12, 3], 2)
        [[0], [1, 2]]
    """
    loads = [0] * workers
    shares: list[list[int]] = [[] for _ in range(workers)]
    for j in sorted(range(len(costs)), key=lambda j: -costs[j]):
        w = loads.index(min(loads))
        shares[w].append(j)
        loads[w] += costs[j]
    return [sorted(s) for s in shares if s]


class _QueueReporter:
    """A worker's reporter: every event goes to the parent's queue."""

    def __init__(self, q):
        self.q = q

    def checkpoint_started(self, spec, total_targets: int, done_targets: int) -> None:
        self.q.put(("started", _Started(spec.id), total_targets, done_targets))

    def advance(self, n_targets: int) -> None:
        self.q.put(("advance", n_targets))

    def checkpoint_finished(self, result) -> None:
        self.q.put(("finished", _Finished(result.id, result.status, result.message)))


def _worker(jobs: list, threads: int, q) -> None:
    """A worker process: its jobs in order, then ``("done", results)`` or ``("error", exception)``."""
    from pctce_cli.threads import configure_threads

    configure_threads(threads)  # before torch is imported in this process
    from pctce_cli.scoring.run import score_checkpoints
    from pctce_cli.scoring.startup import allow_freezing

    allow_freezing()  # a process of pctce's own, as the command line's (scoring/startup.py)

    try:
        out = []
        for paths, options in jobs:
            rs = score_checkpoints(paths, options, _QueueReporter(q))
            out.append([_Finished(r.id, r.status, r.message) for r in rs])
        q.put(("done", out))
    except Exception as e:  # noqa: BLE001 — every error goes back to the parent, which raises it
        try:
            pickle.dumps(e)
        except Exception:  # noqa: BLE001
            e = ScoringError(str(e))
        q.put(("error", e))


def _relay(proc, q, share: list[int], reporter, results: list, errors: list) -> None:
    """Replay a worker's events on ``reporter`` until it is done; store its results or its error."""
    while True:
        try:
            event = q.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if not proc.is_alive() and q.empty():
                errors[share[0]] = ScoringError(f"a demo worker process ended without finishing (exit code {proc.exitcode})")
                return
            continue
        kind = event[0]
        if kind == "started":
            reporter.checkpoint_started(*event[1:])
        elif kind == "advance":
            reporter.advance(event[1])
        elif kind == "finished":
            reporter.checkpoint_finished(event[1])
        elif kind == "done":
            for j, rs in zip(share, event[1]):
                results[j] = rs
            return
        else:
            errors[share[0]] = event[1]
            return
