"""Word and byte summaries (docs/definitions.md#words-and-bytes) of checkpoints too large for memory: two passes over the shards.

The rows are :func:`pctce_cli.analysis.units.unit_rows`' rows, computed one batch
at a time, one :class:`~pctce_cli.stats.streaming.StreamingSummary` per subset
(:class:`~pctce_cli.stats.streaming_parts.PartSummaries`; a value's subset is its document's label):

* words: each batch's complete word CEs and their documents
  (:func:`~pctce_cli.stats.streaming.stream_word_ce` holds back a word that
  straddles two batches), the same float64 sums as in memory;
* bytes: each batch's ``(ce / nbytes, nbytes)`` pairs, weighted in the histogram,
  with Σ CE / Σ bytes as the mean.

Counts and percentiles equal the in-memory rows exactly; the mean and the
per-document bpb, byte_ppl and word_ppl are summed per batch in float64 (equal
to round-off). Intervals (``--ci``) come from the bounded-memory
document bootstrap (:class:`~pctce_cli.stats.streaming_bootstrap.StreamingBootstrap`,
words in place of targets, or byte values with their weights; its windows narrowed by
the probe pass of :func:`~pctce_cli.analysis.summary_stream.pass_two`): the in-memory
replicates, the same resampled documents.
Memory holds a few shards, the histograms and the kept values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from pctce_cli.analysis.subsets import NO_SUBSETS, Part, Subsets
from pctce_cli.analysis.summary_stream import pass_two, stream_parts
from pctce_cli.analysis.units import unit_row
from pctce_cli.errors import UsageError
from pctce_cli.units import Unit, unit_named

BATCH_ROWS = 1 << 20  # targets decoded at a time (a module constant: tests make it tiny so words straddle batches)


def streamed_unit_row(ck, percentiles: Sequence[float], unit: str | Unit, batch_rows: int | None = None) -> dict:
    """One checkpoint's pooled summary row in words or bytes, in bounded memory (:func:`streamed_unit_rows`' one row)."""
    return streamed_unit_rows(ck, percentiles, unit, batch_rows=batch_rows)[0][0]


def streamed_unit_rows(
    ck,
    percentiles: Sequence[float],
    unit: str | Unit,
    subsets: Subsets = NO_SUBSETS,
    ci: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    batch_rows: int | None = None,
    **_,
) -> tuple[list[dict], list[str]]:
    """One checkpoint's rows in words or bytes (one, or one per subset with ``subsets.split``), in bounded memory.

    (Long two passes over the shards with their set-up between them, kept in one place so the order of the passes stays visible.)

    Args:
        ck: The checkpoint (catalog entry).
        percentiles: Levels reported as ``pXX``.
        unit: ``word`` or ``byte``.
        subsets: ``--by``/``--subset``.
        ci, n_boot, seed: The document bootstrap, as :func:`~pctce_cli.analysis.units.unit_rows`.
        batch_rows: Targets decoded at a time (default :data:`BATCH_ROWS`).

    Returns:
        ``(rows, notes)`` as ``unit_rows``; notes say which subsets were left out.

    Raises:
        UsageError: the partition holds no byte spans and words; a ``--subset``
            value with no scored targets.
        StoreError: a missing or damaged shard (named).
    """
    from pctce_cli.stats.streaming import BITS, DocSums
    from pctce_cli.stats.streaming_parts import PartSummaries
    from pctce_cli.stats.streaming_subsets import SUBSET_BITS, lookup_codes
    from pctce_cli.stats.summaries import summary_columns
    from pctce_cli.store import load_docs

    unit = unit_named(unit)
    docs = load_docs(ck.root, ck.partition)
    parts, notes, codes = stream_parts(ck, docs, subsets)
    k = len(parts)
    boot = None
    if ci is not None:
        from pctce_cli.stats.streaming_bootstrap import StreamingBootstrap

        boot = StreamingBootstrap(codes, summary_columns(percentiles), n_boot=n_boot, ci=ci, seed=seed)
    # the bootstrap plans its windows on these histograms: they share its bits (one subset alone: the finer pooled ones)
    summaries = PartSummaries(k, percentiles, bits=boot.bits if boot is not None else BITS if k == 1 else SUBSET_BITS)
    sums = DocSums(codes.size if docs is not None else 0)
    targets, empty = np.zeros(k, np.int64), np.zeros(k, np.int64)

    def count(batch: dict) -> None:  # pass 1 only: targets and empty spans per subset, per-document sums
        code = lookup_codes(codes, batch["doc"])
        inside = code >= 0
        targets[:] += np.bincount(code[inside], minlength=k)
        targets_empty = unit.empty(batch.get("word"), batch.get("nbytes"))[inside]
        empty[:] += np.bincount(code[inside][targets_empty], minlength=k)
        if docs is not None:
            sums.update(batch["doc"], batch["ce"])

    for values, weights, numerator, doc in _unit_values(ck, unit, batch_rows, count):
        summaries.update(lookup_codes(codes, doc), values, weights, numerator)
        if boot is not None:
            boot.update(doc, values, weights=weights)
    summaries.plan()

    def batches():  # pass 2: document ids only for subsets and the bootstrap
        return ((doc, v, w) for v, w, _, doc in _unit_values(ck, unit, batch_rows, docs_needed=subsets.active or boot is not None))

    reps = pass_two(ck, summaries.counts, collect_into(summaries, codes), boot, batches)
    parts = drop_empty(ck, parts, targets, subsets, notes)
    has_sums = docs is not None and targets.sum() > 0  # as in memory: no bpb columns without targets
    rows = _assemble_rows(ck, unit, parts, summaries, sums.compute() if has_sums else None, targets, empty, boot, reps, subsets.split)
    return rows, [f"{ck.id}: {n}" for n in notes]


def _assemble_rows(ck, unit: Unit, parts, summaries, doc_sums, targets, empty, boot, reps, split: bool) -> list[dict]:
    """The rows of :func:`streamed_unit_rows` from its two passes: one per kept subset, with its intervals."""
    rows = []
    for i, part in parts:
        part_sums = None
        if doc_sums is not None:
            keep = np.isin(doc_sums[0], np.asarray(part.docs["doc"]))
            part_sums = (doc_sums[0][keep], doc_sums[1][keep])
        summ = summaries.parts[i].compute()
        row = unit_row(ck, unit, summ, int(targets[i]), int(empty[i]), part.docs, part_sums, {"subset": part.label} if split else {})
        if boot is not None:
            for name, (lo, hi) in boot.intervals(reps[i]).items():
                row[f"{name}_lo"], row[f"{name}_hi"] = lo, hi
            row["_ci_method"], row["_ci_error"] = "streamed", 0.0
        rows.append(row)
    return rows


def drop_empty(ck, parts: list[Part], targets: np.ndarray, subsets: Subsets, notes: list[str]) -> list[tuple[int, Part]]:
    """``(code, part)`` of the parts with scored targets; the others are noted (``--by``) or refused (``--subset``)."""
    empty = [p.label for p, n in zip(parts, targets) if not n]
    if empty and subsets.split:
        notes.append(f"subset{'s' if len(empty) > 1 else ''} {', '.join(empty[:8])} of '{subsets.field}' {'have' if len(empty) > 1 else 'has'} no scored targets: left out")
    elif empty and subsets.active:
        raise UsageError(f"subset {', '.join(subsets.keep)}: no scored targets in {ck.id} (its documents have none left after masking)", param="subset")
    return [(i, p) for i, (p, n) in enumerate(zip(parts, targets)) if n or not subsets.active]


def collect_into(summaries, codes: np.ndarray) -> Callable:
    """:func:`~pctce_cli.analysis.summary_stream.pass_two`'s ``collect``: a batch's values into their documents' subsets' summaries (no documents: subset 0)."""
    from pctce_cli.stats.streaming_subsets import lookup_codes

    return lambda doc, values, weights: summaries.collect(np.zeros(np.shape(values), np.int32) if doc is None else lookup_codes(codes, doc), values, weights)


def _unit_values(ck, unit: Unit, batch_rows: int | None, count=None, docs_needed: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]]:
    """``(values, weights, mean numerator, document)`` of the unit's distribution, a batch at a time.

    With ``count`` (the first pass) every shard is verified and each batch is
    passed to it; without (the second pass) only the columns the values need are read
    (no document ids unless ``docs_needed``: then ``document`` is None).
    """
    from pctce_cli.stats.streaming import stream_word_ce
    from pctce_cli.stats.units import byte_values
    from pctce_cli.store import iter_unit_batches

    first = count is not None
    columns = ("doc", "ce", "word") if unit.name == "word" else ("doc", "ce", "nbytes") if first or docs_needed else ("ce", "nbytes")
    batches = iter_unit_batches(ck.root, ck.partition, unit.name, columns, batch_rows or BATCH_ROWS, verify=first)
    if first:
        batches = _tee(batches, count)
    if unit.name == "word":
        for values, doc in stream_word_ce(((b["ce"], b["doc"], b["word"]) for b in batches), with_doc=True):
            yield values, None, None, doc
        return
    for b in batches:
        keep = b["nbytes"] > 0
        values, weights = byte_values(b["ce"], b["nbytes"])
        yield values, weights, b["ce"][keep], b["doc"][keep] if "doc" in b else None  # mean: Σ CE / Σ bytes


def _tee(batches, count):
    for b in batches:
        count(b)
        yield b
