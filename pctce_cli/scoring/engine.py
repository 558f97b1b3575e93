"""The scoring engine: windows, token-budget batches, per-token CE and rank.

The engine knows nothing about transformers. It asks a *model adapter* for the
logits at chosen positions, a chunk of positions at a time, and turns each
chunk into ``ce`` and ``rank`` so that memory for the loss stays at
``chunk × vocab`` whatever the batch size. It yields arrays and writes nothing.

Adapter contract (see :class:`ModelAdapter`)::

    adapter.logits_chunks(input_ids (B, T), attention_mask (B, T), rows (N,), cols (N,))
        -> iterator of float32 tensors (C_k, V) with sum(C_k) == N, in order:
           the logits predicting the token after position (rows[n], cols[n]).

The engine reads each chunk before asking for the next one and never writes to
it, so an adapter may yield views of one reused buffer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from pctce_cli.data import Document
from pctce_cli.errors import ScoringError, UsageError
from pctce_cli.scoring.divergence import divergence, paired_chunks


class ModelAdapter(Protocol):
    """What the engine needs from a model."""

    vocab_size: int
    device: torch.device

    def logits_chunks(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
    ) -> Iterator[torch.Tensor]:
        """Yield float32 logits ``(C, V)`` for the positions ``(rows, cols)``, in order.

        A chunk need only stay valid until the next one is requested.
        """
        ...


@dataclass(frozen=True)
class Window:
    """A slice ``[start, end)`` of one document scored for targets in ``[score_from, end)``."""

    doc: int  # position of the document in the list given to the engine
    start: int
    end: int
    score_from: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass
class ScoredShard:
    """Per-target and per-document results for a set of documents, sorted by (doc, pos)."""

    doc: np.ndarray  # int64 (N,) document index (Document.index)
    pos: np.ndarray  # int32 (N,) position of the target in the document's own tokens
    token: np.ndarray  # int32 (N,) target token id
    ce: np.ndarray  # float32 (N,) nats
    rank: np.ndarray  # int32 (N,) logits strictly greater than the target's
    doc_table: dict  # column name -> array, one row per document
    seconds: float = 0.0
    nbytes: np.ndarray | None = None  # int32 (N,) bytes of the target's span (docs/definitions.md#words-and-bytes); None: no offsets
    word: np.ndarray | None = None  # int32 (N,) word index within its document, -1 for none
    kl: np.ndarray | None = None  # float32 (N,) KL(p_ref ‖ p_cand), nats (docs/definitions.md#divergence-from-a-reference-model); None: no reference
    dp: np.ndarray | None = None  # float32 (N,) p_cand(target) − p_ref(target)
    same_top1: np.ndarray | None = None  # int8 (N,) 1 where both argmaxes agree


def plan_windows(documents: Sequence[Document], max_length: int, stride: int) -> list[Window]:
    """Cut every document into strided sliding windows (docs/definitions.md#per-token-cross-entropy-and-rank).

    The first window is ``[0, min(L, T))``; each next one ends ``stride`` tokens
    later and starts ``L`` tokens before its end, scoring only the targets the
    previous windows did not reach, so every target is scored exactly once with at
    least ``L - stride`` tokens of context (except near the start). A window of L
    tokens predicts at most L - 1 of them, so a stride of L acts as L - 1. Windows
    that contain no target (long prompts before a short answer) are dropped.

    Args:
        documents: Tokenized documents.
        max_length: Window length ``L`` (tokens, including context).
        stride: How far each window moves; ``1 <= stride <= max_length``.

    Returns:
        Windows, in document order.

    Examples:
        >>> from pctce_cli.data import Document
        >>> d = Document(0, np.arange(10), np.r_[False, np.ones(9, bool)], 1, 0, 0, "x")
        >>> [(w.start, w.end, w.score_from) for w in plan_windows([d], 4, 2)]
        [(0, 4, 1), (2, 6, 4), (4, 8, 6), (6, 10, 8)]
    """
    if max_length < 2:
        raise UsageError(f"max_length must be at least 2, got {max_length}", param="max_length")
    if not 1 <= stride <= max_length:
        raise UsageError(f"stride must be between 1 and max_length ({max_length}), got {stride}", param=("stride", "max_length"))
    step = min(stride, max_length - 1)  # the first token of a window is context only
    windows = []
    for k, d in enumerate(documents):
        n = len(d.input_ids)
        # cumulative target counts make "any target in [a, b)" O(1)
        csum = np.concatenate([[0], np.cumsum(d.targets, dtype=np.int64)])
        end = min(max_length, n)
        scored_until = 1  # position 0 is never a target: nothing precedes it
        while True:
            start = max(0, end - max_length)
            if csum[end] - csum[scored_until] > 0:
                windows.append(Window(k, start, end, scored_until))
            scored_until = end
            if end >= n:
                break
            end = min(end + step, n)
    return windows


def plan_batches(windows: Sequence[Window], batch_tokens: int) -> list[list[Window]]:
    """Group windows, longest first, so that ``batch_size × longest <= batch_tokens``.

    Sorting by length keeps padding low; a window longer than the budget goes alone.

    Examples:
        >>> ws = [Window(i, 0, n, 1) for i, n in enumerate([3, 8, 5, 8])]
        >>> [[w.length for w in b] for b in plan_batches(ws, 16)]
        [[8, 8], [5, 3]]
    """
    if batch_tokens < 1:
        raise UsageError(f"batch_tokens must be positive, got {batch_tokens}", param="batch_tokens")
    order = sorted(windows, key=lambda w: (-w.length, w.doc, w.start))
    batches: list[list[Window]] = []
    current: list[Window] = []
    for w in order:
        # the first window of a batch is its longest, so it sets the padded width
        width = current[0].length if current else w.length
        if current and (len(current) + 1) * width > batch_tokens:
            batches.append(current)
            current = []
        current.append(w)
    if current:
        batches.append(current)
    return batches


# On CPU, ce_and_rank works through a chunk of logits a block of rows at a time,
# about this many floats (2 MiB, and as much scratch), so that its passes
# (compare, max, subtract, exp, sums) read the cache instead of main memory.
# 2**19 was the fastest of 2**16 … 2**20 for vocabularies of 8k to 150k.
BLOCK_ELEMENTS = 1 << 19
# counts of logits above the target are summed as float32 ones, exact below 2**24
_MAX_FLOAT_COUNT = 1 << 24


def ce_and_rank(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row cross-entropy and rank of the target.

    Args:
        logits: ``(C, V)`` float32. Not modified.
        targets: ``(C,)`` int64 token ids.

    Returns:
        ``ce`` (C,) float32 nats and ``rank`` (C,) int32: the number of entries
        whose logit is strictly greater than the target's.

    Examples:
        >>> ce, rank = ce_and_rank(torch.zeros(2, 4), torch.tensor([0, 3]))
        >>> [round(float(c), 6) for c in ce], rank.tolist()
        ([1.386294, 1.386294], [0, 0])
    """
    if (
        logits.device.type != "cpu"
        or logits.dtype != torch.float32
        or logits.dim() != 2
        or logits.shape[1] >= _MAX_FLOAT_COUNT
        or logits.requires_grad
    ):
        return _ce_and_rank_whole(logits, targets)
    return _ce_and_rank_blocked(logits, targets)


def _ce_and_rank_whole(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`ce_and_rank` in whole-tensor operations (CUDA, MPS, other dtypes)."""
    target_logit = logits.gather(1, targets[:, None])  # (C, 1)
    rank = (logits > target_logit).sum(dim=-1)  # (C,)
    # logsumexp by hand with one temporary, exponentiated in place (torch.logsumexp
    # makes the same passes with more temporaries)
    top = logits.amax(dim=-1, keepdim=True)  # (C, 1)
    lse = (logits - top).exp_().sum(dim=-1).log_() + top[:, 0]  # (C,)
    ce = lse - target_logit[:, 0]
    return ce.float(), rank.to(torch.int32)


def _ce_and_rank_blocked(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`ce_and_rank` for float32 on CPU, a cache-sized block of rows at a time.

    The same operations as :func:`_ce_and_rank_whole`, row by row, so the values
    are the same bits: logsumexp as ``log(sum(exp(x - max))) + max`` with the
    sums over whole rows, and the rank as a count of ``x > target``. The
    differences: every pass over a block reads it from the cache, one scratch
    block is reused for the temporaries (no allocation per pass), and the
    comparison writes float32 ones and zeros, whose sum is exact below 2**24 and
    several times faster than a comparison to bool and an integer sum.
    """
    c, v = logits.shape
    target_logit = logits.gather(1, targets[:, None])  # (C, 1)
    top = logits.new_empty(c, 1)
    sum_exp = logits.new_empty(c)
    above = logits.new_empty(c)  # counts, as float32
    step = max(2, BLOCK_ELEMENTS // max(v, 1))
    scratch = logits.new_empty(min(c, step + 1), v)
    s = 0
    while s < c:
        e = min(s + step, c)
        if c - e == 1:
            # never leave a block of one row: torch splits the sum of a single long
            # row between threads, which would round differently from other rows
            e = c
        x, buf = logits[s:e], scratch[: e - s]  # (b, V)
        torch.sum(torch.gt(x, target_logit[s:e], out=buf), dim=-1, out=above[s:e])
        torch.amax(x, dim=-1, keepdim=True, out=top[s:e])
        torch.sum(torch.sub(x, top[s:e], out=buf).exp_(), dim=-1, out=sum_exp[s:e])
        s = e
    ce = sum_exp.log_().add_(top[:, 0]).sub_(target_logit[:, 0])
    return ce, above.to(torch.int32)


def _batch_tensors(batch: Sequence[Window], documents: Sequence[Document], pad_id: int):
    width = max(w.length for w in batch)
    ids = np.full((len(batch), width), pad_id, dtype=np.int64)  # (B, T), right-padded
    mask = np.zeros((len(batch), width), dtype=np.int64)
    rows, cols, tgt_pos, tgt_doc = [], [], [], []
    for b, w in enumerate(batch):
        d = documents[w.doc]
        ids[b, : w.length] = d.input_ids[w.start : w.end]
        mask[b, : w.length] = 1
        pos = np.flatnonzero(d.targets[w.score_from : w.end]) + w.score_from  # absolute target positions
        rows.append(np.full(len(pos), b))
        cols.append(pos - w.start - 1)  # the logit at i-1 predicts token i
        tgt_pos.append(pos)
        tgt_doc.append(np.full(len(pos), w.doc))
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    tgt_pos, tgt_doc = np.concatenate(tgt_pos), np.concatenate(tgt_doc)
    targets = ids[rows, cols + 1]
    return ids, mask, rows, cols, targets, tgt_doc, tgt_pos


def _non_finite_advice(adapter) -> str:
    """What to do about NaN/inf CE: a precision fix only helps below float32."""
    dtype = getattr(adapter, "dtype", None)
    if dtype in (torch.float32, torch.float64):
        return (
            f"the model gives NaN or infinite logits in {str(dtype).removeprefix('torch.')}, so a higher precision "
            "cannot help: its weights may hold non-finite values (check the checkpoint)"
        )
    where = f"in {str(dtype).removeprefix('torch.')}" if dtype is not None else "in this dtype"
    return f"the model overflows {where}, rescore with --dtype float32"


def score_documents(
    adapter: ModelAdapter,
    documents: Sequence[Document],
    *,
    max_length: int,
    stride: int,
    batch_tokens: int,
    pad_id: int = 0,
    progress: Callable[[int], None] | None = None,
    label: str = "checkpoint",
    units: bool = True,
    reference: ModelAdapter | None = None,
) -> ScoredShard:
    """Score every target of ``documents`` with ``adapter``.

    Args:
        adapter: The model, behind the adapter contract.
        documents: Tokenized documents with target masks.
        max_length: Window length.
        stride: Window stride.
        batch_tokens: Token budget per forward pass (batch size × padded length).
        pad_id: Token id used for padding (masked out; any valid id works).
        progress: Called with the number of targets scored after each batch.
        label: Checkpoint name used in error messages.
        units: Carry the documents' byte spans and words to the rows (when
            every document has them; a run decides once for all its shards).
        reference: A reference model on the same batches: adds ``kl``, ``dp``
            and ``same_top1`` (:mod:`pctce_cli.scoring.divergence`).

    Returns:
        A :class:`ScoredShard` sorted by document then position.

    Raises:
        ScoringError: non-finite CE (suggests float32) or out of memory (suggests
            a smaller ``--batch-tokens``).
    """
    t0 = time.perf_counter()
    windows = plan_windows(documents, max_length, stride)
    doc_offsets = np.array([d.offset for d in documents], dtype=np.int64)
    parts = []
    for batch in plan_batches(windows, batch_tokens):
        tgt_doc, tgt_pos, targets, ce, rank, div = _score_batch(adapter, batch, documents, pad_id, batch_tokens, label, reference)
        parts.append((tgt_doc, tgt_pos - doc_offsets[tgt_doc], targets, ce, rank, *div))
        if progress is not None:
            progress(len(ce))
    return _assemble(parts, documents, units, t0)


def _score_batch(adapter: ModelAdapter, batch, documents: Sequence[Document], pad_id: int, batch_tokens: int, label: str, reference=None):
    """One forward pass: ``(target doc, target position, target token, CE, rank, divergence)`` of a batch of windows.

    ``divergence`` is ``(kl, dp, same_top1)`` against ``reference`` (its chunks
    paired with the candidate's), ``()`` without one.

    Raises:
        ScoringError: out of memory, or a non-finite CE (named with its document).
    """
    ids, mask, rows, cols, targets, tgt_doc, tgt_pos = _batch_tensors(batch, documents, pad_id)
    dev = adapter.device
    ids_t = torch.from_numpy(ids).to(dev)
    mask_t = torch.from_numpy(mask).to(dev)
    rows_t = torch.from_numpy(rows).to(dev)
    cols_t = torch.from_numpy(cols).to(dev)
    targets_t = torch.from_numpy(targets).to(dev)
    ce_parts, rank_parts, div_parts, done = [], [], [], 0
    try:
        with torch.inference_mode():
            chunks = adapter.logits_chunks(ids_t, mask_t, rows_t, cols_t)  # (C, V)
            if reference is not None:
                chunks = paired_chunks(chunks, reference.logits_chunks(ids_t, mask_t, rows_t, cols_t))
            for logits in chunks:
                logits, ref = logits if reference is not None else (logits, None)
                c = logits.shape[0]
                ce, rank = ce_and_rank(logits, targets_t[done : done + c])
                ce_parts.append(ce.cpu())
                rank_parts.append(rank.cpu())
                if ref is not None:
                    div_parts.append([x.cpu() for x in divergence(ref, logits, targets_t[done : done + c])])
                done += c
    except torch.OutOfMemoryError:
        raise ScoringError(
            f"{label}: out of memory with --batch-tokens {batch_tokens} "
            f"(longest window {batch[0].length} tokens); try a smaller --batch-tokens"
        ) from None
    except RuntimeError as e:
        if "out of memory" in str(e).lower() or "can't allocate memory" in str(e).lower():
            raise ScoringError(
                f"{label}: out of memory with --batch-tokens {batch_tokens}; "
                "try a smaller --batch-tokens"
            ) from None
        raise
    ce = torch.cat(ce_parts).numpy()
    if not np.isfinite(ce).all():
        bad = int(np.flatnonzero(~np.isfinite(ce))[0])
        doc = documents[int(tgt_doc[bad])]
        raise ScoringError(f"{label}: non-finite CE at document {doc.index} ({doc.source}); {_non_finite_advice(adapter)}")
    div = tuple(torch.cat(x).numpy() for x in zip(*div_parts)) if reference is not None else ()
    return tgt_doc, tgt_pos, targets, ce, torch.cat(rank_parts).numpy(), div


def _assemble(parts: list, documents: Sequence[Document], units: bool, t0: float) -> ScoredShard:
    """The batches' rows sorted by (document, position), with the per-document table (timed from ``t0``)."""
    if parts:
        doc_k, pos, token, ce, rank, *div = (np.concatenate(x) for x in zip(*parts))
    else:
        doc_k = pos = token = rank = np.zeros(0, np.int64)
        ce, div = np.zeros(0, np.float32), []
    order = np.lexsort((pos, doc_k))
    doc_index = np.array([d.index for d in documents], dtype=np.int64)
    doc_table = {
        "doc": doc_index,
        "n_targets": np.array([int(d.targets.sum()) for d in documents], dtype=np.int64),
        "n_bytes": np.array([d.n_bytes for d in documents], dtype=np.int64),
        "n_words": np.array([d.n_words for d in documents], dtype=np.int64),
        # ctx needs them beside pos (docs/definitions.md#position-in-the-context): input tokens (prompt, turns, prefix) and the prefix's offset
        "n_input": np.array([len(d.input_ids) for d in documents], dtype=np.int64),
        "prefix_offset": np.array([d.offset for d in documents], dtype=np.int64),
    }
    nbytes, word = _units(documents, doc_table, len(order)) if units else (None, None)
    return ScoredShard(
        doc=doc_index[doc_k[order]],
        pos=pos[order].astype(np.int32),
        token=token[order].astype(np.int32),
        ce=ce[order].astype(np.float32),
        rank=rank[order].astype(np.int32),
        doc_table=doc_table,
        seconds=time.perf_counter() - t0,
        nbytes=nbytes,
        word=word,
        **({"kl": div[0][order], "dp": div[1][order], "same_top1": div[2][order].astype(np.int8)} if div else {}),
    )


def _units(documents: Sequence[Document], doc_table: dict, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-target byte counts and words in (doc, pos) order, and ``n_empty`` per document; ``None`` without offsets.

    Every target is scored exactly once and rows are sorted by document (in the
    order given) then position, so they are the documents' per-target arrays
    concatenated.
    """
    if not documents or any(d.nbytes is None for d in documents):
        return None, None
    nbytes = np.concatenate([d.nbytes for d in documents]).astype(np.int32, copy=False)
    word = np.concatenate([d.word for d in documents]).astype(np.int32, copy=False)
    if nbytes.size != n:
        raise ScoringError(f"{nbytes.size} byte spans for {n} scored targets: the documents' units do not match their targets")
    doc_table["n_empty"] = np.array([int(np.count_nonzero(d.nbytes == 0)) for d in documents], dtype=np.int64)
    return nbytes, word


class UniformAdapter:
    """A mock model whose logits are all equal: every ce is ln V and every rank 0.

    Lets the engine be tested with an analytic answer and no transformers.
    """

    def __init__(self, vocab_size: int, chunk: int = 7):
        self.vocab_size = vocab_size
        self.device = torch.device("cpu")
        self.chunk = chunk  # small on purpose, to exercise chunk boundaries

    def logits_chunks(self, input_ids, attention_mask, rows, cols):
        for s in range(0, len(rows), self.chunk):
            yield torch.zeros(len(rows[s : s + self.chunk]), self.vocab_size)


def chunk_rows(vocab_size: int, chunk_elements: int) -> int:
    """Positions per logit chunk so that one chunk holds about ``chunk_elements`` floats."""
    return max(1, chunk_elements // max(1, vocab_size))


__all__ = [
    "ModelAdapter",
    "Window",
    "ScoredShard",
    "plan_windows",
    "plan_batches",
    "ce_and_rank",
    "score_documents",
    "UniformAdapter",
    "chunk_rows",
]
