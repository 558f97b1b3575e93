"""Word and byte summaries (docs/definitions.md#words-and-bytes) of checkpoints too large for memory: two passes over the shards.

The row is :func:`pctce_cli.analysis.units.unit_rows`' row, computed one batch
at a time (:class:`pctce_cli.stats.streaming.StreamingSummary`):

* words: each batch's complete word CEs (:func:`~pctce_cli.stats.streaming.stream_word_ce`
  holds back a word that straddles two batches), the same float64 sums as in memory;
* bytes: each batch's ``(ce / nbytes, nbytes)`` pairs, weighted in the histogram,
  with Σ CE / Σ bytes as the mean.

Counts and percentiles equal the in-memory row exactly; the mean and the
per-document bpb, byte_ppl and word_ppl are summed per batch in float64 (equal
to round-off). Memory holds a few shards, the histogram and the kept values.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from pctce_cli.analysis.units import unit_row
from pctce_cli.units import Unit, unit_named

BATCH_ROWS = 1 << 20  # targets decoded at a time (a module constant: tests make it tiny so words straddle batches)


def streamed_unit_row(ck, percentiles: Sequence[float], unit: str | Unit, batch_rows: int | None = None) -> dict:
    """One checkpoint's summary row in words or bytes, in bounded memory (``unit_rows``' columns and numbers).

    Args:
        ck: the checkpoint (catalog entry).
        percentiles: levels reported as ``pXX``.
        unit: ``word`` or ``byte``.
        batch_rows: targets decoded at a time (default :data:`BATCH_ROWS`).

    Raises:
        UsageError: the partition holds no byte spans and words.
        StoreError: a missing or damaged shard (named).
    """
    from pctce_cli.stats.streaming import DocSums, StreamingSummary
    from pctce_cli.store import load_docs

    unit = unit_named(unit)
    batch_rows = batch_rows or BATCH_ROWS
    docs = load_docs(ck.root, ck.partition)
    sums = DocSums(int(np.max(docs["doc"])) + 1 if docs is not None and len(docs) else 0)
    tally = {"targets": 0, "empty": 0}

    def count(batch: dict) -> None:  # pass 1 only: targets, empty spans, per-document sums
        tally["targets"] += int(batch["ce"].size)
        tally["empty"] += int(np.count_nonzero(unit.empty(batch.get("word"), batch.get("nbytes"))))
        if docs is not None:
            sums.update(batch["doc"], batch["ce"])

    summary = StreamingSummary(percentiles)
    for values, weights, total in _unit_values(ck, unit, batch_rows, count):
        summary.update(values, weights=weights, total=total)
    summary.plan()
    for values, weights, _ in _unit_values(ck, unit, batch_rows):
        summary.collect(values, weights=weights)
    has_sums = docs is not None and tally["targets"] > 0  # as in memory: no bpb columns without targets
    return unit_row(ck, unit, summary.compute(), tally["targets"], tally["empty"], docs, sums.compute() if has_sums else None)


def _unit_values(ck, unit: Unit, batch_rows: int, count=None) -> Iterator[tuple[np.ndarray, np.ndarray | None, float | None]]:
    """``(values, weights, mean numerator)`` of the unit's distribution, a batch at a time.

    With ``count`` (the first pass) every shard is verified and each batch is
    passed to it; without (the second pass) only the columns the values need are read.
    """
    from pctce_cli.store import iter_unit_batches

    columns = unit.stream_columns(first_pass=count is not None)
    batches = iter_unit_batches(ck.root, ck.partition, unit.name, columns, batch_rows, verify=count is not None)
    if count is not None:
        batches = _tee(batches, count)
    yield from unit.stream_values(batches)


def _tee(batches, count):
    for b in batches:
        count(b)
        yield b
