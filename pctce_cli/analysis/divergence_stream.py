"""`pctce summary --value kl|dp` of checkpoints too large for memory: :func:`~pctce_cli.analysis.divergence.divergence_rows`' rows in two passes.

Above ``PCTCE_STREAM_ABOVE`` targets the divergence columns are read a batch at
a time, one :class:`~pctce_cli.stats.streaming.StreamingSummary` per subset
(:class:`~pctce_cli.stats.streaming_parts.PartSummaries`; Δp with an order key
for negative values): the mean, the percentiles (p99.9 too), the maximum (the
100th percentile) and ``same_top1`` (the ``top1`` of ranks ``1 − same``)
equal the in-memory numbers exactly (the mean to float64 round-off). In
words a word's KL is the sum of its tokens' (the same float64 sums as in memory).

With ``--ci`` (KL in tokens or words, Δp) the intervals come from the
bounded-memory document bootstrap
(:class:`~pctce_cli.stats.streaming_bootstrap.StreamingBootstrap`: mean,
percentiles, same_top1; Δp with the signed order key; pass 2 with the probe of
:func:`~pctce_cli.analysis.summary_stream.pass_two`) and, for the maximum,
from each document's maximum
(:func:`~pctce_cli.stats.streaming_parts.max_replicates`): the in-memory
replicates, the same resampled documents.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from pctce_cli.analysis.subsets import NO_SUBSETS, Subsets
from pctce_cli.analysis.summary_stream import pass_two, stream_parts
from pctce_cli.analysis.units_stream import collect_into, drop_empty
from pctce_cli.stats.summaries import percentile_name

BATCH_ROWS = 1 << 20  # targets decoded at a time (tests make it tiny so words straddle batches)
RENAME = {"p100": "max", "top1": "same_top1"}  # as divergence_row names them


def streamed_divergence_rows(
    ck, kind, percentiles: Sequence[float], unit, subsets: Subsets = NO_SUBSETS, ci: float | None = None, n_boot: int = 1000, seed: int = 0
) -> tuple[list[dict], list[str]]:
    """One checkpoint's ``--value kl|dp`` rows (one, or one per subset) in bounded memory: ``divergence_rows``' columns and numbers.

    (Long two passes over the shards with their set-up between them, kept in one place so the order of the passes stays visible.)

    Args:
        ck: The checkpoint (catalog entry), checked by the caller (``kind.check``).
        kind: The value (:data:`~pctce_cli.values.KL` or ``DP``).
        percentiles: Levels reported as ``pXX`` (the maximum is added).
        unit: The :class:`~pctce_cli.units.Unit` (token, or word for KL).
        subsets, ci, n_boot, seed: As ``divergence_rows``.

    Raises:
        UsageError: a ``--subset`` value with no scored targets.
        StoreError: a missing or damaged shard, or divergence values out of range (named).
    """
    from pctce_cli.stats.streaming import BITS
    from pctce_cli.stats.streaming_parts import DocMax, PartSummaries, max_replicates
    from pctce_cli.stats.streaming_subsets import SUBSET_BITS, lookup_codes
    from pctce_cli.store import load_docs

    signed, words = kind.column == "dp", unit.spans
    docs = load_docs(ck.root, ck.partition)
    parts, notes, codes = stream_parts(ck, docs, subsets)
    k = len(parts)
    levels = list(dict.fromkeys([float(q) for q in percentiles] + [100.0]))
    # the in-memory row's names, in its order (a p100 asked for is the max): summaries' keys, then renamed
    shown = list(dict.fromkeys(["mean", *(percentile_name(q) for q in levels)] + ([] if words else ["top1"])))
    boot = doc_max = None
    if ci is not None:
        from pctce_cli.stats.streaming_bootstrap import StreamingBootstrap

        names = [n for n in shown if n != "p100"]  # the maximum: from each document's maximum
        boot, doc_max = StreamingBootstrap(codes, names, n_boot=n_boot, ci=ci, seed=seed, signed=signed), DocMax(codes.size)
    # the bootstrap plans its windows on these histograms: they share its bits (one subset alone: the finer pooled ones)
    summaries = PartSummaries(k, levels, bits=boot.bits if boot is not None else BITS if k == 1 else SUBSET_BITS, signed=signed)
    targets = np.zeros(k, np.int64)
    for values, rank, doc, n_targets in _values(ck, kind, words, first=True):
        code = lookup_codes(codes, doc)
        summaries.update(code, values, rank=rank)
        targets += n_targets(codes, k)
        if boot is not None:
            boot.update(doc, values, rank)
            doc_max.update(doc, values)
    summaries.plan()
    reps = pass_two(ck, summaries.counts, collect_into(summaries, codes), boot, lambda: ((d, v, None) for v, _, d, _ in _values(ck, kind, words, first=False)))
    rows = []
    for i, part in drop_empty(ck, parts, targets, subsets, notes):
        summ = summaries.parts[i].compute()
        row = {"checkpoint": ck.id, "step": ck.step, "group": ck.group, **({"subset": part.label} if subsets.split else {})}
        row[unit.plural] = int(summ["n"])
        row["documents"] = len(part.docs) if part.docs is not None else 0
        row.update({RENAME.get(n, n): summ[n] for n in shown})
        if boot is not None and summ["n"]:
            ids = np.flatnonzero((codes == i) & (boot.n > 0))
            reps[i]["p100"] = max_replicates(doc_max.max[ids], n_boot, seed)
            for name, (lo, hi) in boot.intervals({n: reps[i][n] for n in shown}).items():
                row[f"{RENAME.get(name, name)}_lo"], row[f"{RENAME.get(name, name)}_hi"] = lo, hi
        rows.append(row)
    return rows, [f"{ck.id}: {n}" for n in notes]


def _values(ck, kind, words: bool, first: bool) -> Iterator:
    """``(values, ranks 1 − same or None, documents, targets per part)`` of the divergence, a batch at a time.

    The first pass reads every shard verified, with ``same_top1``, and checks
    the divergence columns as :func:`~pctce_cli.store.read.check_divergence`
    does (ranges, and each shard's KL against the manifest's ``kl_sum``);
    ``targets per part`` is a function of ``(codes, k)``.
    """
    from pctce_cli.stats.streaming import stream_word_ce
    from pctce_cli.stats.streaming_subsets import lookup_codes
    from pctce_cli.store import iter_token_batches, iter_unit_batches

    col = kind.column
    check = _DivergenceCheck(ck) if first else None
    if words:
        batches = iter_unit_batches(ck.root, ck.partition, "word", ("doc", col, "word"), BATCH_ROWS, verify=first, check_more=check)
    else:
        batches = iter_token_batches(ck.root, ck.partition, ("doc", col, "same_top1") if first else ("doc", col), BATCH_ROWS, verify=first, check=check)
    held: list = []

    def per_part(doc):
        return lambda codes, k: np.bincount(c[c >= 0], minlength=k) if (c := lookup_codes(codes, doc)).size else np.zeros(k, np.int64)

    if words:
        def tee():
            for b in batches:
                held.append(b["doc"])
                yield b[col], b["doc"], b["word"]

        for values, doc in stream_word_ce(tee(), with_doc=True):
            seen = np.concatenate(held) if held else np.zeros(0, np.int64)
            held.clear()
            yield values, None, doc, per_part(seen)
    else:
        for b in batches:
            yield b[col], (1 - b["same_top1"].astype(np.int64)) if first else None, b["doc"], per_part(b["doc"])
    if check is not None:
        check.finish()


class _DivergenceCheck:
    """Per batch, the divergence columns' ranges; per shard, its KL sum against the manifest's ``kl_sum``."""

    def __init__(self, ck):
        self.ck, self.by_file = ck, {rec["tokens_file"]: rec for rec in ck.manifest.shards}
        self.path, self.sum = None, 0.0

    def __call__(self, path, arrays, first_row) -> None:
        from pctce_cli.store.read import check_divergence

        div = {n: arrays[n] for n in ("kl", "dp", "same_top1") if n in arrays}
        if div:
            check_divergence([path], [len(next(iter(div.values())))], self.ck.root, div, first_row=first_row)
        if "kl" not in div:  # the manifest sums KL only (a shard's Δp has no recorded sum)
            return
        if path != self.path:
            self.finish()
            self.path, self.sum = path, 0.0
        self.sum += float(div["kl"].astype(np.float64).sum())

    def finish(self) -> None:
        """Check the last shard's KL sum."""
        if self.path is None:
            return
        rec = self.by_file.get(self.path.name)
        want = None if rec is None else rec.get("kl_sum")
        if want is not None and not abs(self.sum - want) <= 1e-12 * max(abs(want), 1.0):
            from pctce_cli.store.layout import damaged

            raise damaged(self.ck.root, f"{self.path}: its KL values add up to {self.sum!r}, the manifest records kl_sum {want!r}")
        self.path = None


__all__ = ["streamed_divergence_rows"]
