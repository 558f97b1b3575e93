"""Position in the context in analysis commands (docs/definitions.md#position-in-the-context): ``--by position`` and ``--by ctx``.

A token-level dimension beside the document-level subsets: a target's bucket
is fixed by its own ``pos`` (its index in its document) or ``ctx`` (the tokens
the model conditioned on, which the sliding window caps at ``max_length − 1``),
not by its document. ``ctx`` is derived from the stored ``pos``, the
partition's ``max_length`` and ``stride``, and each document's ``n_input`` and
``prefix_offset`` (:func:`pctce_cli.stats.position.recorded_context`; stores
scored before those columns: recovered from the rows of plain-text documents,
:func:`pctce_cli.stats.position.context_lengths`). Buckets are powers of two by default, or
``--position-edges``. Each bucket's row is the summary of its targets; its
bootstrap intervals resample the documents with targets in the bucket.
Checkpoints above ``PCTCE_STREAM_ABOVE`` targets are streamed in two passes
(:class:`~pctce_cli.stats.streaming_subsets.SubsetSummaries` with each target's
bucket as its code): the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pctce_cli.analysis.report import Report
from pctce_cli.errors import UsageError
from pctce_cli.units import TOKEN, unit_named
from pctce_cli.stats.position import RESCORE, bucket_index, bucket_label, check_extents, context_lengths, context_of, doc_extents, position_buckets, recorded_context

DIMENSIONS = ("position", "ctx")  # the --by values that bucket targets rather than split documents
WHAT = {"position": "pos, the target's index in its document", "ctx": "ctx, the tokens the model conditioned on for the target"}
GEOMETRY = ("n_input", "prefix_offset")  # the per-document columns ctx reads (recorded at scoring since issue 27)
STREAM_TOP = 2**31 - 1  # streamed default buckets reach the largest stored position (int32)


@dataclass(frozen=True)
class Positions:
    """What ``--by position|ctx`` and ``--position-edges`` ask for.

    Attributes:
        dim: ``position`` or ``ctx``.
        edges: User edges (None: powers of two).
    """

    dim: str
    edges: tuple[int, ...] | None = None

    def buckets(self, largest: int) -> np.ndarray:
        """The buckets' lower edges (:func:`pctce_cli.stats.position.position_buckets`)."""
        return position_buckets(largest, self.edges)

    def label(self, lo: np.ndarray, k: int) -> tuple[str, int, int | None]:
        """``(label, from, to)`` of bucket ``k``; user edges leave the last bucket open."""
        return bucket_label(lo, k, self.edges is not None)

    def note(self) -> str:
        """What the buckets are, for the notes."""
        kind = f"edges {', '.join(map(str, self.edges))} (the last bucket open)" if self.edges else "powers of two ({0}, {1}, [2, 4), [4, 8), …)"
        return f"Buckets of {WHAT[self.dim]} (docs/definitions.md#position-in-the-context): {kind}."


def resolve_positions(by: str | None, edges: str | Sequence[int] | None, unit: str = "token") -> Positions | None:
    """``--by position|ctx`` with ``--position-edges``, or None when ``--by`` names a subset field (or nothing).

    Raises:
        UsageError: ``--position-edges`` without ``--by position|ctx``, bad edges, or a unit other than tokens.
    """
    if by not in DIMENSIONS:
        if edges is not None:
            raise UsageError("position_edges needs by position or by ctx", param=("position_edges", "by", "by"))
        return None
    if unit_named(unit) is not TOKEN:
        raise UsageError(f"by {by} buckets targets: use it with unit token (a word or byte has no single position)", param=("by", "unit"))
    if isinstance(edges, str):
        items = [e.strip() for e in edges.split(",")]
        if any(not e for e in items) and any(items):  # '1,,2' or '1,2,': a typo, not a default
            raise UsageError(f"position_edges: expected whole numbers separated by commas (e.g. 1024,4096), got '{edges}'", param="position_edges")
        edges = [e for e in items if e]
    if edges is not None:
        position_buckets(0, edges)  # refuses bad edges, with the option named
        edges = tuple(int(float(e)) for e in edges)
    return Positions(by, edges)


def target_values(positions: Positions, doc, pos, manifest, ck_id: str, docs=None) -> np.ndarray:
    """Each target's ``pos``, or its ``ctx`` from ``pos``, the partition's window settings and ``docs`` (its per-document table).

    Raises:
        UsageError: ``ctx`` of a store whose documents' geometry was not recorded and cannot be recovered (prompts, chats).
    """
    if positions.dim == "position":
        return np.asarray(pos, dtype=np.int64)
    return contexts(doc, pos, manifest, ck_id, docs)


def contexts(doc, pos, manifest, ck_id: str, docs=None) -> np.ndarray:
    """Each target's ``ctx``: from its document's recorded ``n_input`` and ``prefix_offset`` when the store has them,
    else recovered from the rows of plain-text documents (:func:`pctce_cli.stats.position.context_lengths`).

    Raises:
        UsageError: an older store scored with prompts or chats (it needs a re-score).
    """
    max_length, stride = window_settings(manifest, ck_id, docs)
    lookup = geometry(docs)
    if lookup is None:
        return context_lengths(doc, pos, max_length, stride)
    n_input, offset = lookup
    d = np.asarray(doc, dtype=np.int64)
    return recorded_context(pos, n_input[d], offset[d], max_length, stride, d)


def geometry(docs) -> tuple[np.ndarray, np.ndarray] | None:
    """Document id → ``(n_input, prefix_offset)`` as two dense arrays, or None when the table does not record them
    for every document (stores scored before them, or a partition resumed across the change)."""
    if docs is None or not {GEOMETRY[0], GEOMETRY[1]} <= set(docs.columns) or not len(docs):
        return None
    cols = docs[list(GEOMETRY)]
    if cols.isna().any().any():
        return None
    ids = np.asarray(docs["doc"], dtype=np.int64)
    n_input, offset = np.zeros(int(ids.max()) + 1, np.int64), np.zeros(int(ids.max()) + 1, np.int64)
    n_input[ids] = np.asarray(cols[GEOMETRY[0]], dtype=np.int64)
    offset[ids] = np.asarray(cols[GEOMETRY[1]], dtype=np.int64)
    return n_input, offset


def window_settings(manifest, ck_id: str, docs=None) -> tuple[int, int]:
    """``(max_length, stride)`` of a partition, refusing ``ctx`` where neither the document table nor the stored rows determine it."""
    st = manifest.settings
    if (st.get("prompt_field") or st.get("completion_field")) and geometry(docs) is None:
        raise UsageError(
            f"by ctx: '{ck_id}' was scored with prompt_field or completion_field in an older pctce, so its context lengths are unknown (use by position)",
            param=("by", "prompt_field", "completion_field", "by"), remedy=RESCORE,
        )
    return int(st["max_length"]), int(st["stride"])


def bucket_rows(ck, ce, doc, values, rank, percentiles, positions: Positions, ci=None, n_boot=1000, seed=0) -> list[dict]:
    """One summary row per non-empty bucket of one checkpoint's targets (in memory), intervals resampling documents."""
    from pctce_cli.stats.row import summary_row

    lo = positions.buckets(int(values.max()) if len(values) else 0)
    k = bucket_index(values, lo)
    rows = []
    for b in np.unique(k).tolist():
        keep = k == b  # stored order: sorted by document, as the bootstrap expects
        d = doc[keep]
        row = summary_row(ce[keep], d if ci is not None else None, rank[keep] if rank is not None and rank.size else None, None, percentiles, ci=ci, n_boot=n_boot, seed=seed)
        row["documents"] = int(np.unique(d).size)
        rows.append(_head(ck, positions, lo, b) | row)
    return rows


def _head(ck, positions: Positions, lo: np.ndarray, b: int) -> dict:
    label, a, z = positions.label(lo, b)
    return {"checkpoint": ck.id, "step": ck.step, "group": ck.group, positions.dim: label, "from": a, "to": z}


def position_rows(ck, percentiles: Sequence[float], positions: Positions, subsets=None, ci: float | None = None, n_boot: int = 1000, seed: int = 0) -> tuple[list[dict], list[str]]:
    """One checkpoint's rows by bucket, streamed above ``PCTCE_STREAM_ABOVE`` targets; ``subsets`` (``--subset``) keeps documents first."""
    from pctce_cli.analysis.subsets import split_scores, stored_values
    from pctce_cli.analysis.summary import stream_above
    from pctce_cli.store import load_scores

    if ck.manifest.targets > stream_above():
        if ci is not None:
            raise UsageError(f"ci with by {positions.dim}: '{ck.id}' holds {ck.manifest.targets:,} targets, above the {stream_above():,} summarized in memory; drop ci (the summaries stay exact) or raise PCTCE_STREAM_ABOVE", param=("ci", "by", "ci"))
        return streamed_position_rows(ck, percentiles, positions, subsets), []
    s = load_scores(ck.root, ck.partition, columns=("doc", "pos", "ce", "rank"))
    values = target_values(positions, s.doc, s.pos, s.manifest, ck.id, s.docs)
    ce, doc, rank, notes = s.ce, s.doc, s.rank, []
    if subsets is not None and subsets.active:
        [part], notes = split_scores(ck.id, s.doc, s.docs, subsets, stored_values(ck, subsets.field))
        ce, doc, rank, values = part.take(ce), part.take(doc), part.take(rank), part.take(values)
    return bucket_rows(ck, ce, doc, values, rank, percentiles, positions, ci, n_boot, seed), [f"{ck.id}: {n}" for n in notes]


def streamed_position_rows(ck, percentiles: Sequence[float], positions: Positions, subsets=None) -> list[dict]:
    """:func:`position_rows` in bounded memory: each target's bucket is its code in a :class:`SubsetSummaries` (two passes, a third reading ``doc`` and ``pos`` first for ``ctx``)."""
    from pctce_cli.analysis.subsets import split_scores, stored_values
    from pctce_cli.stats.streaming_subsets import SubsetSummaries, lookup_codes
    from pctce_cli.store import iter_token_batches, load_docs

    lo = positions.buckets(STREAM_TOP)
    docs = load_docs(ck.root, ck.partition)
    ids = np.asarray(docs["doc"], dtype=np.int64)
    keep = np.ones(int(ids.max()) + 1 if ids.size else 0, dtype=np.int32)  # document id → kept (1) or not (-1)
    if subsets is not None and subsets.active:
        [part], _ = split_scores(ck.id, ids, docs, subsets, stored_values(ck, subsets.field))
        keep[:] = -1
        keep[np.asarray(part.docs["doc"], dtype=np.int64)] = 1
    values_of = _stream_values(ck, positions, keep.size, docs)
    summaries = SubsetSummaries(len(lo), percentiles)
    docs_in = _DocCounter(len(lo))
    for batch in iter_token_batches(ck.root, ck.partition, ("doc", "pos", "ce", "rank")):
        code = np.where(lookup_codes(keep, batch["doc"]) > 0, bucket_index(values_of(batch), lo), -1)
        summaries.update(code, batch["ce"], batch["rank"])
        docs_in.update(code, batch["doc"])
    summaries.plan()
    for batch in iter_token_batches(ck.root, ck.partition, ("doc", "pos", "ce"), verify=False):  # verified by pass 1
        summaries.collect(np.where(lookup_codes(keep, batch["doc"]) > 0, bucket_index(values_of(batch), lo), -1), batch["ce"])
    rows = []
    for b, summ in enumerate(summaries.compute()):
        if summ["n"]:
            rows.append(_head(ck, positions, lo, b) | {"targets": int(summ.pop("n")), "documents": int(docs_in.count[b])} | summ)
    return rows


class _DocCounter:
    """Documents with targets in each bucket, counted in one pass: a document's rows are one contiguous run of the
    stored order, so within a bucket a new document starts wherever the document id changes (memory: two numbers a bucket)."""

    def __init__(self, n: int):
        self.count = np.zeros(n, np.int64)
        self.last = np.full(n, -1, np.int64)  # the last document seen in each bucket, across batches

    def update(self, code: np.ndarray, doc: np.ndarray) -> None:
        inside = code >= 0
        c, d = code[inside], np.asarray(doc, dtype=np.int64)[inside]
        order = np.argsort(c, kind="stable")
        c, d = c[order], d[order]
        if not c.size:
            return
        first = np.r_[True, c[1:] != c[:-1]]
        prev = np.where(first, self.last[c], np.r_[-1, d[:-1]])
        np.add.at(self.count, c, (d != prev).astype(np.int64))
        self.last[c[np.r_[c[1:] != c[:-1], True]]] = d[np.r_[c[1:] != c[:-1], True]]


def _stream_values(ck, positions: Positions, n_ids: int, docs):
    """A function of a batch giving its targets' ``pos`` or ``ctx`` (for ctx without a recorded geometry, a first pass
    over ``doc`` and ``pos`` finds each plain-text document's extent)."""
    from pctce_cli.store import iter_token_batches

    if positions.dim == "position":
        return lambda batch: batch["pos"].astype(np.int64)
    max_length, stride = window_settings(ck.manifest, ck.id, docs)
    lookup = geometry(docs)
    if lookup is not None:
        n_input, offset = lookup
        return lambda batch: recorded_context(batch["pos"], n_input[batch["doc"]], offset[batch["doc"]], max_length, stride, batch["doc"])
    first = np.full(n_ids, np.iinfo(np.int64).max, np.int64)
    last = np.full(n_ids, -1, np.int64)
    count = np.zeros(n_ids, np.int64)
    for batch in iter_token_batches(ck.root, ck.partition, ("doc", "pos")):
        d, f, z, c = doc_extents(batch["doc"], batch["pos"])  # a document may span batches: merge its runs
        np.minimum.at(first, d, f)
        np.maximum.at(last, d, z)
        np.add.at(count, d, c)
    has = np.flatnonzero(count)
    check_extents(has, first[has], last[has], count[has])
    return lambda batch: context_of(batch["pos"], first[batch["doc"]], last[batch["doc"]], max_length, stride)


def position_summary_report(cks, percentiles: Sequence[float], positions: Positions, subsets=None, ci: float | None = None, n_boot: int = 1000, seed: int = 0, vs: str | None = None, value: str = "ce") -> Report:
    """`pctce summary --by position|ctx`: a row per checkpoint and bucket (docs/definitions.md#position-in-the-context).

    Raises:
        UsageError: ``value`` other than ce (the buckets summarize CE; KL by position is paired by ``pctce compare``).
    """
    from pctce_cli.analysis.summary import merge_notes
    from pctce_cli.catalog import identical_notes
    from pctce_cli.store import incomplete_notes

    if value != "ce":  # the rows are CE's: never print them under a KL heading the user asked for
        raise UsageError(
            f"value {value} with by {positions.dim}: the rows per {positions.dim} bucket are of CE only; for {'KL' if value == 'kl' else 'Δp'} "
            f"per bucket, compare two checkpoints ('pctce compare A B --value {value} --by {positions.dim}'); per subset, use by FIELD",
            param=("value", "by", "by"),
        )
    if ci is not None and not 0 < ci < 1:
        raise UsageError(f"ci must be between 0 and 1 (e.g. 0.95), got {ci}", param="ci")
    if vs is not None:
        raise UsageError(f"vs compares whole checkpoints: use it without by {positions.dim}", param=("vs", "by"))
    report = Report()
    rows, notes = [], []
    for ck in cks:
        r, n = position_rows(ck, percentiles, positions, subsets, ci, n_boot, seed)
        rows += r
        notes += n
    methods = sorted({r.pop("_ci_method") for r in rows if "_ci_method" in r})
    for r in rows:
        r.pop("_ci_error", None)
    extra = f", subset {subsets.describe()}" if subsets is not None and subsets.active else ""
    report.add(TOKEN.title(positions.dim) + extra, rows)
    report.notes += merge_notes(notes, len(cks)) + [positions.note() + " 'from' and 'to' bound each bucket [from, to)."]
    report.notes += incomplete_notes(sorted({str(c.root) for c in cks if c.root is not None})) + identical_notes(cks)
    if ci is not None:
        report.notes.append(
            f"Intervals: {ci:.0%} document-level bootstrap within each bucket (the documents with targets in the bucket are resampled), "
            f"{n_boot} resamples, seed {seed}, method {'/'.join(methods)}."
        )
    return report


def position_pairs(va, vb, positions: Positions, a_name: str) -> list[tuple[str, object, object]]:
    """Two aligned checkpoints' values (:class:`pctce_cli.units.Values`, tokens) cut into the same buckets: ``[(label, baseline view, candidate view)]``.

    The rows pair one to one, so the baseline's positions bucket both. A view
    keeps its rows' documents, so a paired bootstrap on it resamples the
    documents with targets in the bucket; it has no per-document table (bits
    per byte belong to whole documents, not to a bucket).
    """
    from dataclasses import replace

    values = target_values(positions, va.doc, va.index, va.manifest, a_name, va.docs)
    lo = positions.buckets(int(values.max()) if len(values) else 0)
    k = bucket_index(values, lo)
    out = []
    for b in np.unique(k).tolist():
        keep = k == b

        def cut(v):
            part = lambda x: x[keep] if x is not None and len(x) == len(keep) else x  # noqa: E731
            return replace(v, doc=v.doc[keep], index=v.index[keep], value=v.value[keep], docs=None, weight=part(v.weight), token=part(v.token), rank=part(v.rank))

        out.append((positions.label(lo, b)[0], cut(va), cut(vb)))
    return out
