"""The one scoring loop: a model's shards scored in order, each handed to a sink.

Every scoring path goes through :func:`score_shards`: a :class:`ShardScorer`
(the engine's inputs for one model) scores this rank's shards and hands each to
a sink. ``pctce score`` (:func:`pctce_cli.scoring.run.score_checkpoints`) gives
a :class:`StoreSink` (each shard written atomically to the store as it
finishes, so a killed run resumes); :func:`pctce_cli.api.score_model` and the
training callback give a :class:`MemorySink` and may later write the parts with
the same :class:`StoreSink` (``ScoreResult.to_store``). In-memory or store is a
sink, not a second loop. :func:`collect` runs one stage on every rank and
agrees on its error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pctce_cli.distributed import ProcessGroup
from pctce_cli.errors import PctceError
from pctce_cli.store import write_shard


@dataclass
class ScoredPart:
    """One shard of a result: which shard, which rank scored it, its rows and extra document columns."""

    shard: int
    rank: int
    scored: Any  # engine.ScoredShard
    extra: dict | None = None


class MemorySink:
    """Keeps the scored parts (``score_model``, the callback)."""

    def __init__(self):
        self.parts: list[ScoredPart] = []

    def put(self, part: ScoredPart) -> None:
        """Keep ``part``."""
        self.parts.append(part)


class StoreSink:
    """Writes each part to a started partition as a shard (atomically: temporary name, then rename)."""

    def __init__(self, part: Path):
        self.part = Path(part)

    def put(self, part: ScoredPart) -> None:
        """Write ``part`` as shard ``part.shard`` of the partition."""
        write_shard(self.part, part.shard, part.rank, part.scored, part.extra)


@dataclass
class ShardScorer:
    """The engine's inputs for one model on one tokenized data set: scores any of its shards."""

    adapter: Any  # hf.HFAdapter
    model: Any
    tokenizer: Any
    documents: Sequence
    records: Sequence
    shards: list[list[int]]
    max_length: int
    stride: int
    batch_tokens: int
    pad_id: int
    task_accuracy: bool = False
    accuracy_margin: int = 8
    label: str = "model"
    progress: Callable[[int], None] | None = None
    units: bool = False  # byte spans and words to the shards (every document has them: data.units_status)
    reference: Any = None  # the reference model's adapter: kl, dp and same_top1 beside ce (docs/definitions.md#divergence-from-a-reference-model)

    def score(self, k: int, rank: int) -> ScoredPart:
        """Score shard ``k`` (and, with task accuracy, greedy-decode its prompts)."""
        from pctce_cli.scoring.engine import score_documents

        docs_k = [self.documents[i] for i in self.shards[k]]
        scored = score_documents(
            self.adapter,
            docs_k,
            max_length=self.max_length,
            stride=self.stride,
            batch_tokens=self.batch_tokens,
            pad_id=self.pad_id,
            progress=self.progress,
            label=self.label,
            units=self.units,
            reference=self.reference,
        )
        if self.reference is not None and scored.kl is None:  # a shard without targets still has the columns
            import numpy as np

            scored.kl, scored.dp, scored.same_top1 = np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.int8)
        extra = None
        if self.task_accuracy:
            from pctce_cli.scoring.generate import task_accuracy

            extra = task_accuracy(self.model, self.tokenizer, docs_k, self.records, margin=self.accuracy_margin)
        return ScoredPart(k, rank, scored, extra)


def my_shards(n_shards: int, group: ProcessGroup, done: Sequence[int] = ()) -> list[int]:
    """The shards this rank scores: round-robin over ranks, skipping ``done`` ones."""
    skip = set(done)
    return [k for k in range(n_shards) if k not in skip and k % group.world == group.rank]


def score_shards(scorer: ShardScorer, todo: Sequence[int], sink, rank: int = 0) -> None:
    """Score the shards ``todo`` in order and hand each to ``sink`` as soon as it is done."""
    for k in todo:
        sink.put(scorer.score(k, rank))


def collect(group: ProcessGroup, work: Callable[[], Any], catch: tuple = (), words: Callable[[PctceError], str] = str) -> tuple[Any, str | None]:
    """Run ``work`` on this rank: its value here, and the first rank's error message, the same on every rank (a collective).

    A :class:`PctceError` is reported by its message (``words``: worded for the caller,
    e.g. with its parameters as a command's options); exceptions of the types in
    ``catch`` as ``rank <r>: <Type>: <message>``; anything else propagates.
    """
    value, error = None, None
    try:
        value = work()
    except PctceError as e:
        error = words(e)
    except catch as e:
        error = f"rank {group.rank}: {type(e).__name__}: {e}"
    errors = [e for e in group.gather(error) if e]
    return value, (errors[0] if errors else None)


def first_error(group: ProcessGroup, work: Callable[[], None], catch: tuple = ()) -> str | None:
    """Run ``work`` on this rank; the first rank's error message, the same on every rank (:func:`collect`)."""
    return collect(group, work, catch)[1]


def pad_id_of(model) -> int:
    """The id batches are padded with: the config's pad, else eos, else bos token id, else 0."""
    cfg = model.config
    for key in ("pad_token_id", "eos_token_id", "bos_token_id"):
        v = getattr(cfg, key, None)
        if isinstance(v, list):
            v = v[0] if v else None
        if isinstance(v, int) and v >= 0:
            return v
    return 0


__all__ = ["MemorySink", "ScoredPart", "ShardScorer", "StoreSink", "collect", "first_error", "my_shards", "pad_id_of", "score_shards"]
