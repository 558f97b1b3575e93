"""`PercentileCE`: percentile cross-entropy for custom training and evaluation loops.

``update(logits, labels)`` turns a batch into per-token CE and rank, a chunk of
positions at a time (:func:`pctce_cli.scoring.engine.ce_and_rank`, the engine's
own function), and keeps them on the CPU (float32 CE, int32 rank: 8 bytes per
token). ``compute()`` gathers every rank's tokens and returns the docs/definitions.md#summaries-of-one-checkpoint
summaries. Percentiles are not mergeable from partial summaries, so the values
themselves are gathered, never per-rank summaries.

Tokens only: ``PercentileCE`` sees logits and labels, never the text, so it has
no byte spans and no words and cannot summarize per word or per byte (docs/definitions.md#words-and-bytes).
For those, score the text: :func:`pctce_cli.api.score_model` (then
``result.summary(unit="word")``), the callback, or ``pctce score``.

    metric = PercentileCE()
    for batch in loader:
        metric.update(model(**batch).logits, batch["labels"])
    metric.compute()   # {'n': ..., 'mean': ..., 'p50': ..., 'p95': ..., 'iqr': ..., 'z95': ..., 'top1': ...}
    metric.reset()
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pctce_cli.distributed import ProcessGroup
from pctce_cli.errors import UsageError
from pctce_cli.scoring.engine import ce_and_rank, chunk_rows
from pctce_cli.scoring.hf import CHUNK_ELEMENTS
from pctce_cli.stats.summaries import DEFAULT_PERCENTILES, check_qs, summarize


class PercentileCE:
    """Accumulate per-token CE and rank over batches; summarize them once.

    Args:
        percentiles: Levels reported as ``pXX`` (default 50, 90, 95, 99).
        ignore_index: Label value of positions that are not targets.
        shift: ``True`` (causal LMs): ``logits[:, :-1]`` predict ``labels[:, 1:]``,
            as ``model(input_ids, labels=labels).loss`` does. ``False``: logits and
            labels are already aligned (``logits[..., i, :]`` predicts ``labels[..., i]``).
        sync_on_compute: Under an initialized ``torch.distributed`` process group,
            ``compute()`` gathers every rank's tokens (a collective: call it on every
            rank). ``False`` summarizes this rank's tokens only.
        process_group: The group to gather over (default: the world).
        chunk_elements: Floats per logit chunk (bounds the float32 copy of the logits).

    Examples:
        >>> m = PercentileCE(percentiles=[50])
        >>> logits = torch.zeros(1, 3, 4)                  # (B, T, V): uniform over 4 tokens
        >>> m.update(logits, torch.tensor([[-100, 2, 1]]))  # targets: tokens 1 and 2
        >>> s = m.compute()
        >>> s["n"], round(s["p50"], 6), s["top1"]
        (2, 1.386294, 1.0)
    """

    def __init__(
        self,
        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
        *,
        ignore_index: int = -100,
        shift: bool = True,
        sync_on_compute: bool = True,
        process_group=None,
        chunk_elements: int = CHUNK_ELEMENTS,
    ):
        self.percentiles = [float(q) for q in check_qs(percentiles)]
        self.ignore_index = ignore_index
        self.shift = shift
        self.sync_on_compute = sync_on_compute
        self.process_group = process_group
        self.chunk_elements = chunk_elements
        self.reset()

    def reset(self) -> None:
        """Forget every token seen so far."""
        self._ce: list[torch.Tensor] = []
        self._rank: list[torch.Tensor] = []
        self._n = 0

    @property
    def n_local(self) -> int:
        """Targets accumulated on this rank."""
        return self._n

    @torch.no_grad()
    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch.

        Args:
            logits: ``(..., T, V)`` (any float dtype; each chunk is upcast to float32).
            labels: ``(..., T)`` token ids, ``ignore_index`` where nothing is scored.

        Raises:
            UsageError: shapes that do not match, or a label outside the vocabulary.
        """
        if not isinstance(logits, torch.Tensor) or not isinstance(labels, torch.Tensor):
            raise UsageError("PercentileCE.update(logits, labels) takes two tensors")
        logits = logits.detach()
        labels = labels.detach().to(logits.device)
        if logits.dim() < 2 or tuple(logits.shape[:-1]) != tuple(labels.shape):
            raise UsageError(
                f"logits (..., T, V) and labels (..., T) must match in their leading dimensions, "
                f"got logits {tuple(logits.shape)} and labels {tuple(labels.shape)}"
            )
        if self.shift:
            if logits.dim() < 3:
                raise UsageError(f"with shift=True logits must be (B, T, V), got {tuple(logits.shape)}")
            logits = logits[..., :-1, :]  # (B, T-1, V): position i predicts token i+1
            labels = labels[..., 1:]  # (B, T-1)
        vocab = logits.shape[-1]
        where = (labels != self.ignore_index).nonzero(as_tuple=True)  # index tensors, each (N,)
        targets = labels[where].long()  # (N,)
        if targets.numel() == 0:
            return
        lo, hi = int(targets.min()), int(targets.max())
        if lo < 0 or hi >= vocab:
            bad = lo if lo < 0 else hi
            raise UsageError(
                f"labels must be token ids in [0, {vocab}) or ignore_index ({self.ignore_index}), got {bad}"
            )
        step = chunk_rows(vocab, self.chunk_elements)
        for s in range(0, targets.numel(), step):
            idx = tuple(w[s : s + step] for w in where)
            chunk = logits[idx].float()  # (C, V): only this chunk is copied, never (N, V)
            ce, rank = ce_and_rank(chunk, targets[s : s + step])
            self._ce.append(ce.cpu())
            self._rank.append(rank.cpu())
        self._n += int(targets.numel())

    def local_values(self) -> tuple[np.ndarray, np.ndarray]:
        """This rank's ``ce`` (float32) and ``rank`` (int32), in update order."""
        if not self._ce:
            return np.zeros(0, np.float32), np.zeros(0, np.int32)
        return torch.cat(self._ce).numpy(), torch.cat(self._rank).numpy()

    def values(self) -> tuple[np.ndarray, np.ndarray]:
        """Every rank's ``ce`` and ``rank`` (rank 0's first), gathered when syncing.

        A collective under an initialized process group (unless
        ``sync_on_compute=False``): call it on every rank.
        """
        ce, rank = self.local_values()
        group = ProcessGroup.current(self.sync_on_compute)
        if not group.active:
            return ce, rank
        ce, rank = group.all_gather_ragged((ce, rank), (torch.float32, torch.int32), group=self.process_group)
        return ce, rank

    def compute(self) -> dict:
        """The docs/definitions.md#summaries-of-one-checkpoint summaries of every token seen (on every rank, when syncing).

        Returns:
            ``n``, ``mean``, ``ppl``, one ``pXX`` per level, ``iqr``, ``z95``,
            ``top1``; with no token, ``n`` is 0 and the rest NaN.
        """
        ce, rank = self.values()
        return summarize(ce, rank, percentiles=self.percentiles)


__all__ = ["PercentileCE"]
