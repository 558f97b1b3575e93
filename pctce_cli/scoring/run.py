"""The one scoring loop, and `pctce score` as a library call: checkpoints × validation data → a store.

Every scoring path goes through :func:`score_shards`: a :class:`ShardScorer`
(the engine's inputs for one model) scores this rank's shards and hands each to
a sink. ``pctce score`` (:func:`score_checkpoints`) gives a :class:`StoreSink`
(each shard written atomically to the store as it finishes, so a killed run
resumes); :func:`pctce_cli.api.score_model` and the training callback give a
:class:`MemorySink` and may later write the parts with the same
:class:`StoreSink` (``ScoreResult.to_store``). In-memory or store is a sink,
not a second loop.

Progress is reported through a :class:`Reporter` (the CLI draws Rich progress
bars with it); nothing is printed. Under ``torchrun`` each rank scores a
disjoint share of the shards; rank 0 holds the lock, decides what to skip or
resume, and writes the manifest once every rank has finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pctce_cli.checkpoints import CheckpointSpec, discover, read_config, weights_fingerprint
from pctce_cli.data import data_fingerprint, documents_fingerprint, read_records, tokenize_records, units_status
from pctce_cli.distributed import ProcessGroup
from pctce_cli.errors import PctceError, ScoringError, StoreError, UsageError
from pctce_cli.scoring.options import (
    ScoreOptions,
    identity_settings,
    plan_shards,
    resolve_batch_tokens,
    validate_cli_options,
)
from pctce_cli.scoring.partition import CLI_REMEDY, add_labels, build_manifest, conflict_message, engine_info, open_partition
from pctce_cli.scoring.partition import versions as _versions
from pctce_cli.store import StoreLock, finish_partition, partition_dir, write_shard


@dataclass
class CheckpointResult:
    """What happened to one checkpoint."""

    id: str
    path: str
    status: str  # "scored", "skipped" (already complete), "failed"
    message: str = ""
    targets: int = 0
    mean: float = float("nan")
    p50: float = float("nan")
    p95: float = float("nan")
    seconds: float = 0.0
    manifest: dict = field(default_factory=dict)


class Reporter:
    """Progress hooks; the default does nothing."""

    def checkpoint_started(self, spec: CheckpointSpec, total_targets: int, done_targets: int) -> None:
        """Scoring of ``spec`` begins (``done_targets`` were resumed from disk)."""

    def advance(self, n_targets: int) -> None:
        """``n_targets`` more targets were scored."""

    def checkpoint_finished(self, result: CheckpointResult) -> None:
        """``spec`` is scored, skipped or failed."""


# ---------------------------------------------------------------- the one loop


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
        )
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


def first_error(group: ProcessGroup, work: Callable[[], None], catch: tuple = ()) -> str | None:
    """Run ``work`` on this rank; the first rank's error message, the same on every rank (a collective).

    A :class:`PctceError` is reported by its message; exceptions of the types in
    ``catch`` as ``rank <r>: <Type>: <message>``; anything else propagates.
    """
    error = None
    try:
        work()
    except PctceError as e:
        error = str(e)
    except catch as e:
        error = f"rank {group.rank}: {type(e).__name__}: {e}"
    errors = [e for e in group.gather(error) if e]
    return errors[0] if errors else None


# ---------------------------------------------------------------- pctce score


def score_checkpoints(paths, options: ScoreOptions, reporter: Reporter | None = None) -> list[CheckpointResult]:
    """Score every checkpoint under ``paths`` on ``options.data`` into ``options.out``.

    One failing checkpoint is reported in its result and the others still run.

    Args:
        paths: Checkpoint directories or run directories.
        options: The run's settings.
        reporter: Progress hooks.

    Returns:
        One result per checkpoint, in order.

    Raises:
        PctceError: bad options, data or paths, or the store is locked — anything
            that stops the whole run before a checkpoint is scored. Option errors
            are worded with the options of ``pctce score`` (``--batch-tokens …``).
    """
    reporter = reporter or Reporter()
    validate_cli_options(options)
    group = ProcessGroup.launch()
    finished = False
    try:
        results = _score_all(paths, options, reporter, group)
        finished = True
        return results
    finally:
        group.close(finished)


def _score_all(paths, options: ScoreOptions, reporter: Reporter, group: ProcessGroup) -> list[CheckpointResult]:
    """:func:`score_checkpoints` inside its process group."""
    import torch

    from pctce_cli.scoring import hf

    specs = discover(paths, base_model=options.base_model)
    labels = {"subset_fields": options.subset_fields, "subset_from_file": options.subset_from_file}
    records = read_records(options.data, **options.read.record_kwargs(), **labels)
    data_fp = data_fingerprint(options.data)
    device = hf.resolve_device(options.device)
    if device.type == "cuda" and group.world > 1:
        device = torch.device(f"cuda:{group.local_rank}")
    dtype = hf.resolve_dtype(options.dtype, device)
    dtype_name = str(dtype).removeprefix("torch.")
    cache = hf.ModelCache(device, dtype, options.trust_remote_code)
    tokenized: dict[str, tuple] = {}  # tokenizer fingerprint -> (documents, skipped, documents_fp, units)

    lock = StoreLock(options.out)
    lock_error = None
    if group.rank == 0:
        try:
            lock.acquire()
        except StoreError as e:
            lock_error = str(e)
    lock_error = group.broadcast(lock_error)
    if lock_error:
        raise StoreError(lock_error)

    results = []
    try:
        for spec in specs:
            results.append(_score_one(spec, options, records, data_fp, device, dtype_name, cache, tokenized, group, reporter))
            reporter.checkpoint_finished(results[-1])
    finally:
        cache.release()
        lock.release()
    return results


def _score_one(spec, options, records, data_fp, device, dtype_name, cache, tokenized, group, reporter):
    from pctce_cli.scoring import hf

    t_start = time.perf_counter()
    result = CheckpointResult(spec.id, str(spec.path), "failed")
    try:
        tokenizer = hf.load_tokenizer(spec, options.tokenizer, options.trust_remote_code)
        tok_fp = hf.tokenizer_fingerprint(tokenizer)
        if tok_fp not in tokenized:
            name = str(hf.tokenizer_dir(spec, options.tokenizer))
            documents, skipped = tokenize_records(records, tokenizer, prefix=options.prefix, tokenizer_name=name, units=options.units, special_tokens=options.special_tokens)
            units = units_status(documents, tokenizer, name, options.units)
            tokenized[tok_fp] = (documents, skipped, documents_fingerprint(documents), units)
        documents, skipped, docs_fp, units = tokenized[tok_fp]
        weights_fp = weights_fingerprint(spec)
    except PctceError as e:
        result.message = str(e)
        return result

    # The window must be known before loading (to skip finished checkpoints
    # without loading them), so the context length comes from config.json.
    max_length = options.max_length or _config_context(spec)
    if max_length is None:
        result.message = f"{spec.path}: config.json states no context length; pass --max-length"
        return result
    if options.batch_tokens is not None and options.batch_tokens < max_length:
        # a forward pass holds at least one whole window, so a smaller budget only
        # makes every batch a single window (--batch-tokens 1 ran 7x slower)
        result.message = (
            f"{spec.path}: --batch-tokens {options.batch_tokens} is smaller than one window of {max_length} tokens; "
            f"use at least {max_length} (or leave it out: 2048 on CPU, 16384 on GPU)"
        )
        return result
    stride = options.stride or max(1, max_length // 2)
    identity = {
        "weights": weights_fp,
        "tokenizer": tok_fp,
        "data": data_fp,
        "documents": docs_fp,
        "settings": identity_settings(options, max_length, stride, dtype_name, units.get("rule")),
    }
    shards = plan_shards(documents, options.shard_targets)

    # rank 0 decides; every rank follows
    decision = None
    if group.rank == 0:
        decision = open_partition(options.out, spec.id, identity, force=options.force, resume=True)
    decision = group.broadcast(decision)
    if decision.kind == "conflict":
        result.message = conflict_message(spec.id, decision.manifest, identity, options.out, CLI_REMEDY)
        return result
    if decision.kind == "done":
        result.status, result.manifest = "skipped", decision.manifest
        result.message = "already scored with identical fingerprints and settings (--force to redo)"
        if units["available"] and "units" not in decision.manifest.get("identity", {}).get("settings", {}):
            result.message = "already scored, before pctce recorded byte spans and words (--force to re-score with them)"
        if group.rank == 0:
            result.message += add_labels(options.out, spec.id, records)
        _fill_numbers(result, options.out, spec.id)
        return result

    done_shards = decision.done_shards
    mine = my_shards(len(shards), group, done_shards)
    scorer = None

    def work() -> None:
        nonlocal scorer
        total = sum(int(documents[i].targets.sum()) for sh in shards for i in sh)
        done = sum(int(documents[i].targets.sum()) for k in done_shards for i in shards[k])
        model = cache.load(spec) if mine else None
        adapter = hf.HFAdapter(model) if mine else None
        reporter.checkpoint_started(spec, total, done)
        if not mine:
            return
        ctx = hf.model_context_length(model)
        if ctx is not None and max_length > ctx:
            raise UsageError(f"--max-length {max_length} exceeds the context of {spec.id} ({ctx} tokens)")
        scorer = ShardScorer(
            adapter, model, tokenizer, documents, records, shards, max_length, stride,
            batch_tokens=resolve_batch_tokens(options.batch_tokens, device),
            pad_id=pad_id_of(model),
            task_accuracy=options.task_accuracy,
            accuracy_margin=options.accuracy_margin,
            label=spec.id,
            progress=reporter.advance,
            units=units["available"],
        )
        score_shards(scorer, mine, StoreSink(partition_dir(options.out, spec.id)), group.rank)

    error = first_error(group, work)
    if error:
        result.message = error
        return result

    manifest, finish_error = None, None
    if group.rank == 0:
        manifest = build_manifest(
            checkpoint=spec.id,
            path=str(spec.path.resolve()),
            step=spec.step,
            kind=spec.kind,
            base_model=str(spec.base_model.resolve()) if spec.base_model else None,
            tokenizer_path=str(hf.tokenizer_dir(spec, options.tokenizer).resolve()),
            identity=identity,
            method="sha256; weight files over 256 MiB by 64 sampled 1 MiB blocks",
            run_settings={
                "batch_tokens": resolve_batch_tokens(options.batch_tokens, device),
                "device": str(device),
                "trust_remote_code": options.trust_remote_code,
            },
            data={
                "files": [str(Path(p).resolve()) for p in options.data],
                "records": len(records),
                "documents": len(documents),
                "skipped_documents": skipped,
            },
            engine=engine_info(scorer.adapter if scorer is not None else None),
            versions=_versions(),
            world_size=group.world,
            wall_seconds=round(time.perf_counter() - t_start, 3),
            units=units,
        )
        try:
            manifest = finish_partition(partition_dir(options.out, spec.id), manifest, len(shards))
            add_labels(options.out, spec.id, records)
        except PctceError as e:
            finish_error = str(e)
    finish_error = group.broadcast(finish_error)
    if finish_error:
        result.message = finish_error
        return result
    result.status = "scored"
    result.manifest = manifest or {}
    result.seconds = time.perf_counter() - t_start
    if group.rank == 0:
        _fill_numbers(result, options.out, spec.id)
    return result


def _summary_numbers(ce: np.ndarray) -> tuple[float, float, float]:
    if len(ce) == 0:
        return float("nan"), float("nan"), float("nan")
    from pctce_cli.stats.summaries import percentiles

    p50, p95 = percentiles(ce, [50, 95])
    return float(ce.astype(np.float64).mean()), float(p50), float(p95)


def _fill_numbers(result: CheckpointResult, out, checkpoint_id: str) -> None:
    from pctce_cli.store import load_scores

    s = load_scores(out, checkpoint_id, columns=("ce",))
    result.targets = len(s.ce)
    result.mean, result.p50, result.p95 = _summary_numbers(s.ce)
    result.manifest = s.manifest
    if result.status == "skipped":
        result.seconds = 0.0


def _config_context(spec: CheckpointSpec) -> int | None:
    cfg = read_config(spec.base_model if spec.kind == "adapter" else spec.path)
    if cfg is None:
        return None
    cfg = cfg.get("text_config", cfg)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx"):
        v = cfg.get(key)
        if isinstance(v, int) and v > 0:
            return v
    return None


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


__all__ = [
    "CheckpointResult",
    "MemorySink",
    "Reporter",
    "ScoredPart",
    "ScoringError",
    "ShardScorer",
    "StoreSink",
    "first_error",
    "my_shards",
    "pad_id_of",
    "score_checkpoints",
    "score_shards",
]
