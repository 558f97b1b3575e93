"""``pctce summary --by/--subset/--ci`` of checkpoints too large for memory: the in-memory rows, streamed.

Above ``PCTCE_STREAM_ABOVE`` targets a checkpoint is read in two passes over
its shards, one batch at a time:

* subsets (docs/definitions.md#subsets): every target's subset is its document's label, looked up
  by document id; each subset has its own histogram
  (:class:`~pctce_cli.stats.streaming_subsets.SubsetSummaries`), so the
  percentiles are exact and equal to the in-memory ``--by`` rows;
* intervals (``--ci``): the document bootstrap of
  :mod:`pctce_cli.stats.streaming_bootstrap`, the same replicates as in memory
  (same seed, same resampled documents) computed from per-document sums and
  the targets near each percentile.

The rows have the columns and numbers of ``checkpoint_rows`` in memory:
percentiles, counts and top-1 exactly; means and per-document summaries to
float64 round-off (summed per batch). Memory holds a few shards, per-document
arrays (about 60 bytes a document) and the kept targets (docs/streaming.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from pctce_cli.analysis.subsets import NO_SUBSETS, Part, Subsets, split_scores, stored_values
from pctce_cli.stats.summaries import percentile_name

WIDEN = (1.0, 4.0, 16.0)  # window widths tried in turn when a replicate falls outside (stats.streaming_bootstrap)


def streamed_subset_rows(
    ck,
    percentiles: Sequence[float],
    subsets: Subsets = NO_SUBSETS,
    cols: Sequence[str] = ("doc", "ce", "rank"),
    ci: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci_summaries: Sequence[str] | None = None,
) -> tuple[list[dict], list[str]]:
    """One checkpoint's summary rows (one, or one per subset with ``subsets.split``) in bounded memory.

    (Long two passes over the shards with their set-up between them, kept in one place so the order of the passes stays visible.)

    Args:
        ck: The checkpoint (catalog entry).
        percentiles: Levels reported as ``pXX``.
        subsets: ``--by``/``--subset``.
        cols: The columns the in-memory row would read (``columns_for(only, ci)``):
            without ``rank`` top-1 is NaN; without ``doc`` there are no bpb,
            byte_ppl and word_ppl.
        ci, n_boot, seed, ci_summaries: The document bootstrap, as ``summary_row``.

    Returns:
        ``(rows, notes)`` as ``checkpoint_rows``; notes say which subsets were left out.

    Raises:
        UsageError: a ``--subset`` value with no document or no targets; a
            bootstrap whose windows would not fit in memory.
        StoreError: a missing or damaged shard (named).
    """
    from pctce_cli.errors import UsageError
    from pctce_cli.stats.streaming import DocSums
    from pctce_cli.stats.streaming_subsets import SubsetSummaries
    from pctce_cli.store import load_docs

    docs = load_docs(ck.root, ck.partition)
    parts, notes, codes = stream_parts(ck, docs, subsets)
    want_doc, want_rank = "doc" in cols and docs is not None, "rank" in cols or ci is not None
    sums = DocSums(codes.size if want_doc else 0)
    summaries = SubsetSummaries(len(parts), percentiles)
    boot = None
    if ci is not None:
        from pctce_cli.stats.streaming_bootstrap import StreamingBootstrap

        names = list(ci_summaries or ["mean"] + [percentile_name(q) for q in percentiles])
        boot = StreamingBootstrap(codes, names, n_boot=n_boot, ci=ci, seed=seed)
    _pass_one(ck, codes, want_rank, summaries, sums if want_doc else None, boot)
    summaries.plan()
    reps = _pass_two(ck, codes, summaries, boot)
    results = summaries.compute()
    empty = [p.label for p, r in zip(parts, results) if not r["n"]]
    if empty and subsets.split:
        notes.append(f"subset{'s' if len(empty) > 1 else ''} {', '.join(empty[:8])} of '{subsets.field}' {'have' if len(empty) > 1 else 'has'} no scored targets: left out")
    elif empty:
        raise UsageError(f"subset {', '.join(subsets.keep)}: no scored targets in {ck.id} (its documents have none left after masking)", param="subset")
    doc_ids, nll = sums.compute() if want_doc else (None, None)
    rows = []
    for i, (part, summ) in enumerate(zip(parts, results)):
        if not summ["n"]:
            continue
        if not want_rank:
            summ["top1"] = float("nan")
        row = _row(ck, part, summ, doc_ids, nll, subsets.split)
        if boot is not None:
            for name, (lo, hi) in boot.intervals(reps[i]).items():
                row[f"{name}_lo"], row[f"{name}_hi"] = lo, hi
            row["_ci_method"], row["_ci_error"] = "streamed", 0.0
        rows.append(row)
    return rows, [f"{ck.id}: {n}" for n in notes]


def stream_parts(ck, docs, subsets: Subsets) -> tuple[list[Part], list[str], np.ndarray]:
    """The parts ``subsets`` asks for (from the per-document table: no target read), their notes, and document id → part code."""
    from pctce_cli.stats.streaming_subsets import codes_by_document

    ids = np.asarray(docs["doc"], dtype=np.int64) if docs is not None else np.zeros(0, np.int64)
    if subsets.active:
        parts, notes = split_scores(ck.id, ids, docs, subsets, stored_values(ck, subsets.field))
    else:
        parts, notes = [Part(None, None, docs)], []
    codes = codes_by_document(ids, np.full(ids.size, -1), int(ids.max()) + 1 if ids.size else 0)
    for i, part in enumerate(parts):
        codes[np.asarray(part.docs["doc"], dtype=np.int64)] = i
    return parts, notes, codes


def _row(ck, part: Part, summ: dict, doc_ids, nll, split: bool) -> dict:
    """One part's row: ``assemble_row`` of its summaries, documents and their CE sums."""
    from pctce_cli.stats.row import assemble_row

    sums = None
    if doc_ids is not None:
        keep = np.isin(doc_ids, np.asarray(part.docs["doc"]))
        sums = (doc_ids[keep], nll[keep])
    row = {"checkpoint": ck.id, "step": ck.step, "group": ck.group}
    if split:
        row["subset"] = part.label
    row.update(assemble_row(summ, part.docs, sums))
    return row


def _pass_one(ck, codes: np.ndarray, want_rank: bool, summaries, sums, boot) -> None:
    """Pass 1 (verified): each subset's histogram, the per-document sums and the bootstrap's per-document statistics."""
    from pctce_cli.stats.streaming_subsets import lookup_codes
    from pctce_cli.store import iter_token_batches

    for batch in iter_token_batches(ck.root, ck.partition, ("doc", "ce", "rank") if want_rank else ("doc", "ce")):
        doc, ce, rank = batch["doc"], batch["ce"], batch.get("rank")
        summaries.update(lookup_codes(codes, doc), ce, rank)
        if sums is not None:
            sums.update(doc, ce)
        if boot is not None:
            boot.update(doc, ce, rank)


def _pass_two(ck, codes: np.ndarray, summaries, boot) -> list[dict] | None:
    """Pass 2 over the token batches (:func:`pass_two`): each subset's values near its percentiles, and the bootstrap's replicates."""
    from pctce_cli.stats.streaming_subsets import lookup_codes
    from pctce_cli.store import iter_token_batches

    def batches():
        return ((b["doc"], b["ce"], None) for b in iter_token_batches(ck.root, ck.partition, ("doc", "ce"), verify=False))  # verified by pass 1

    return pass_two(ck, [p.counts for p in summaries.parts], lambda doc, ce, _: summaries.collect(lookup_codes(codes, doc), ce), boot, batches)


def pass_two(ck, counts: Sequence[np.ndarray], collect: Callable, boot, batches: Callable[[], Iterator]) -> list[dict] | None:
    """Pass 2 of every streamed summary (tokens, words, bytes, KL, Δp): the values near each percentile, then the bootstrap's replicates.

    With a bootstrap, a probe pass first measures each replicate's actual spread
    (:meth:`~pctce_cli.stats.streaming_bootstrap.StreamingBootstrap.start_probe`)
    and the refined, narrower windows are collected; when a replicate falls
    outside them (``WindowMissed``), or the probe's histograms would not fit, the
    bound's windows are collected instead, widened in turn (:data:`WIDEN`).
    The summaries' own pass 2 (``collect``) rides along the first pass over the batches.

    Args:
        ck: The checkpoint (named in the error).
        counts: Each subset's histogram from pass 1 (the windows are planned on them).
        collect: ``collect(doc, values, weights)``: the summaries' pass 2 of one batch.
        boot: The :class:`~pctce_cli.stats.streaming_bootstrap.StreamingBootstrap`, or None.
        batches: ``batches()`` yields ``(doc, values, weights or None)`` anew at each call.

    Returns:
        Each subset's replicates (``boot.compute``), or None without a bootstrap.

    Raises:
        UsageError: a replicate outside even the widest window; windows over the bootstrap's cap.
    """
    from pctce_cli.stats.streaming_bootstrap import WindowMissed

    collected = False
    if boot is not None:
        boot.plan(counts, check=False)  # the bound's windows: where the probe looks
        if boot.start_probe(counts):
            for doc, values, weights in batches():  # the probe: narrower windows than the bound's (stats.streaming_bootstrap)
                collect(doc, values, weights)
                boot.probe(doc, values, weights)
            collected = True
            boot.refine()
            for doc, values, weights in batches():
                boot.collect(doc, values, weights)
            try:
                return boot.compute(len(counts))
            except WindowMissed:
                pass  # the bound's windows, widened in turn
    for widen in WIDEN:
        if boot is not None:
            boot.plan(counts, widen)
        for doc, values, weights in batches():
            if not collected:
                collect(doc, values, weights)
            if boot is not None:
                boot.collect(doc, values, weights)
        collected = True
        if boot is None:
            return None
        try:
            return boot.compute(len(counts))
        except WindowMissed as e:
            if widen == WIDEN[-1]:
                from pctce_cli.errors import UsageError

                raise UsageError(f"ci: '{ck.id}': the bounded-memory bootstrap found a replicate outside its widest window ({e})", param="ci", remedy="drop ci or raise PCTCE_STREAM_ABOVE", remedy_param="ci") from None
    return None


def streamed_row(ck, percentiles: Sequence[float], cols: Sequence[str] = ("doc", "ce", "rank")) -> dict:
    """:func:`checkpoint_row` in bounded memory: two passes over the shards, one shard in memory at a time.

    Percentiles, top-1 and the per-document sums are exact; the mean is summed
    per batch in float64 (equal to the in-memory mean to round-off). Intervals
    and subsets are streamed by :mod:`pctce_cli.analysis.summary_stream`.

    Raises:
        StoreError: a missing or damaged shard (named).
    """
    from pctce_cli.stats.row import assemble_row
    from pctce_cli.stats.streaming import DocSums, StreamingSummary
    from pctce_cli.store import iter_token_batches, load_docs

    docs = load_docs(ck.root, ck.partition)
    want_doc = "doc" in cols and docs is not None
    sums = DocSums(int(np.max(docs["doc"])) + 1 if want_doc and len(docs) else 0)
    summary = StreamingSummary(percentiles)
    for batch in iter_token_batches(ck.root, ck.partition, cols):
        summary.update(batch["ce"], batch.get("rank"))
        if want_doc:  # targets are stored sorted by document: sum each run of one document
            sums.update(batch["doc"], batch["ce"])
    summary.plan()
    for batch in iter_token_batches(ck.root, ck.partition, ("ce",), verify=False):  # verified by the first pass
        summary.collect(batch["ce"])
    row = {"checkpoint": ck.id, "step": ck.step, "group": ck.group}
    row.update(assemble_row(summary.compute(), docs, sums.compute() if want_doc else None))
    return row
