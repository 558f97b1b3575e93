"""`pctce score` as a library call: checkpoints × validation data → a score directory.

Orchestrates discovery, tokenization, the engine and the store. Reports progress
through a :class:`Reporter` (the CLI draws Rich progress bars with it) and never
prints. Under ``torchrun`` each rank scores a disjoint share of the shards; rank 0
holds the lock, decides what to skip or resume, and writes the manifest once
every rank has finished.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pctce_cli import __version__
from pctce_cli.checkpoints import CheckpointSpec, discover, weights_fingerprint
from pctce_cli.data import data_fingerprint, documents_fingerprint, read_records, tokenize_records
from pctce_cli.errors import PctceError, ScoringError, StoreError, UsageError
from pctce_cli.store import (
    StoreLock,
    finish_partition,
    identity_difference,
    partition_state,
    start_partition,
    write_shard,
)

DEFAULT_BATCH_TOKENS = None  # auto: see resolve_batch_tokens
# Token budgets per forward pass when none is given. On CPU smaller batches keep
# activations in cache: 2048 ran 1.46x and 1.21x as fast as 16384 on GPT-2s of 13M
# and 39M parameters, the fastest budget on both (docs/benchmarks.md); accelerators
# want large batches.
CPU_BATCH_TOKENS = 2048
ACCELERATOR_BATCH_TOKENS = 16384
DEFAULT_SHARD_TARGETS = 1 << 20


@dataclass
class ScoreOptions:
    """Every setting of a scoring run (the CLI options of ``pctce score``)."""

    data: list
    out: Path
    text_field: str = "text"
    prompt_field: str | None = None
    completion_field: str | None = None
    messages_field: str = "messages"
    split_on: str = "none"
    prefix: str = "auto"
    max_length: int | None = None
    stride: int | None = None
    batch_tokens: int | None = DEFAULT_BATCH_TOKENS  # None: resolve_batch_tokens
    shard_targets: int = DEFAULT_SHARD_TARGETS
    device: str = "auto"
    dtype: str = "auto"
    tokenizer: str | None = None
    base_model: str | None = None
    trust_remote_code: bool = False
    force: bool = False
    task_accuracy: bool = False
    accuracy_margin: int = 8


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


# ---------------------------------------------------------------- distributed


class _Dist:
    """torch.distributed when launched by torchrun (WORLD_SIZE > 1), else a single process."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self._dist = None
        self._owned = False
        if self.world > 1:
            import torch
            import torch.distributed as dist

            if not dist.is_initialized():
                backend = "nccl" if torch.cuda.is_available() else "gloo"
                dist.init_process_group(backend=backend)
                self._owned = True
            self._dist = dist

    def close(self, finished: bool = True) -> None:
        """Tear down the process group if this run created it.

        Args:
            finished: every rank got here in step. Then wait for the others, so no
                rank tears down gloo while another is still in a collective. On an
                error path a rank may be alone, and waiting would hang until the
                collective timeout; tearing down at once makes the others fail fast.
        """
        if self._dist is not None and self._owned:
            if finished:
                self._dist.barrier()
            # a process that exits with a live gloo group can abort at exit
            # ("terminate called without an active exception"), so never leave one
            self._dist.destroy_process_group()
            self._dist, self._owned = None, False

    def broadcast(self, obj):
        if self._dist is None:
            return obj
        box = [obj]
        self._dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        if self._dist is None:
            return [obj]
        out = [None] * self.world
        self._dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self._dist is not None:
            self._dist.barrier()


# ---------------------------------------------------------------- helpers


def plan_shards(documents, shard_targets: int) -> list[list[int]]:
    """Split documents (in order) into shards of about ``shard_targets`` targets.

    The plan depends only on the data and the setting, never on the number of
    processes, so a run resumed with another ``--nproc-per-node`` still knows which
    shards are done.

    Examples:
        >>> from types import SimpleNamespace as D
        >>> docs = [D(targets=np.ones(n, bool)) for n in (3, 3, 5, 1)]
        >>> plan_shards(docs, 6)
        [[0, 1], [2, 3]]
    """
    if shard_targets < 1:
        raise UsageError(f"--shard-targets must be positive, got {shard_targets}")
    shards, current, count = [], [], 0
    for k, d in enumerate(documents):
        current.append(k)
        count += int(d.targets.sum())
        if count >= shard_targets:
            shards.append(current)
            current, count = [], 0
    if current:
        shards.append(current)
    return shards


def validate_options(options: ScoreOptions) -> None:
    """Refuse option values that cannot work, before anything is loaded."""
    if not options.data:
        raise UsageError("--data is required: give at least one validation file")
    if options.max_length is not None and options.max_length < 2:
        raise UsageError(f"--max-length must be at least 2, got {options.max_length}")
    if options.stride is not None and options.stride < 1:
        raise UsageError(f"--stride must be at least 1, got {options.stride}")
    if options.stride is not None and options.max_length is not None and options.stride > options.max_length:
        raise UsageError(f"--stride ({options.stride}) cannot exceed --max-length ({options.max_length})")
    if options.batch_tokens is not None and options.batch_tokens < 1:
        raise UsageError(f"--batch-tokens must be positive, got {options.batch_tokens}")
    if options.shard_targets < 1:
        raise UsageError(f"--shard-targets must be positive, got {options.shard_targets}")
    if options.prefix not in ("auto", "bos", "eos", "none"):
        raise UsageError(f"--prefix must be auto, bos, eos or none, got '{options.prefix}'")
    if options.split_on not in ("none", "blank-lines"):
        raise UsageError(f"--split-on must be none or blank-lines, got '{options.split_on}'")
    if bool(options.prompt_field) != bool(options.completion_field):
        raise UsageError("--prompt-field and --completion-field go together: give both or neither")
    if options.task_accuracy and not options.completion_field:
        raise UsageError("--task-accuracy needs prompt/completion data: give --prompt-field and --completion-field")
    if options.accuracy_margin < 0:
        raise UsageError(f"--accuracy-margin must be >= 0, got {options.accuracy_margin}")
    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")


def _versions() -> dict:
    import torch
    import transformers

    v = {
        "pctce": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    try:
        import peft

        v["peft"] = peft.__version__
    except ImportError:
        pass
    return v


def _summary_numbers(ce: np.ndarray) -> tuple[float, float, float]:
    if len(ce) == 0:
        return float("nan"), float("nan"), float("nan")
    from pctce_cli.stats.summaries import percentiles

    p50, p95 = percentiles(ce, [50, 95])
    return float(ce.astype(np.float64).mean()), float(p50), float(p95)


def resolve_batch_tokens(batch_tokens: int | None, device) -> int:
    """The token budget per forward pass: ``batch_tokens``, or the default for ``device``'s type."""
    if batch_tokens is not None:
        return batch_tokens
    return CPU_BATCH_TOKENS if str(getattr(device, "type", device)) == "cpu" else ACCELERATOR_BATCH_TOKENS


def identity_settings(options: ScoreOptions, max_length: int, stride: int, dtype_name: str) -> dict:
    """The settings that determine a partition's numbers (its identity, beside the fingerprints).

    Shared with :func:`pctce_cli.api.score_model`, so partitions written from an
    in-memory model carry exactly the settings ``pctce score`` records.
    """
    return {
        "max_length": max_length,
        "stride": stride,
        "prefix": options.prefix,
        "text_field": options.text_field,
        "prompt_field": options.prompt_field,
        "completion_field": options.completion_field,
        "messages_field": options.messages_field,
        "split_on": options.split_on,
        "dtype": dtype_name,
        "shard_targets": options.shard_targets,
        "task_accuracy": options.task_accuracy,
        "accuracy_margin": options.accuracy_margin if options.task_accuracy else None,
    }


# ---------------------------------------------------------------- the run


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
            that stops the whole run before a checkpoint is scored.
    """
    reporter = reporter or Reporter()
    validate_options(options)
    dist = _Dist()
    finished = False
    try:
        results = _score_all(paths, options, reporter, dist)
        finished = True
        return results
    finally:
        dist.close(finished)


def _score_all(paths, options: ScoreOptions, reporter: Reporter, dist: _Dist) -> list[CheckpointResult]:
    """:func:`score_checkpoints` inside its process group."""
    import torch

    from pctce_cli.scoring import hf

    specs = discover(paths, base_model=options.base_model)
    records = read_records(
        options.data,
        text_field=options.text_field,
        prompt_field=options.prompt_field,
        completion_field=options.completion_field,
        messages_field=options.messages_field,
        split_on=options.split_on,
    )
    data_fp = data_fingerprint(options.data)
    device = hf.resolve_device(options.device)
    if device.type == "cuda" and dist.world > 1:
        device = torch.device(f"cuda:{dist.local_rank}")
    dtype = hf.resolve_dtype(options.dtype, device)
    dtype_name = str(dtype).removeprefix("torch.")
    cache = hf.ModelCache(device, dtype, options.trust_remote_code)
    tokenized: dict[str, tuple] = {}  # tokenizer fingerprint -> (documents, skipped, documents_fp)

    lock = StoreLock(options.out)
    if dist.rank == 0:
        try:
            lock.acquire()
            lock_error = None
        except StoreError as e:
            lock_error = str(e)
    else:
        lock_error = None
    lock_error = dist.broadcast(lock_error)
    if lock_error:
        raise StoreError(lock_error)

    results = []
    try:
        for spec in specs:
            results.append(_score_one(spec, options, records, data_fp, device, dtype_name, cache, tokenized, dist, reporter))
            reporter.checkpoint_finished(results[-1])
    finally:
        cache.release()
        lock.release()
    return results


def _score_one(spec, options, records, data_fp, device, dtype_name, cache, tokenized, dist, reporter):
    from pctce_cli.scoring import hf
    from pctce_cli.scoring.engine import score_documents

    t_start = time.perf_counter()
    result = CheckpointResult(spec.id, str(spec.path), "failed")
    try:
        tokenizer = hf.load_tokenizer(spec, options.tokenizer, options.trust_remote_code)
        tok_fp = hf.tokenizer_fingerprint(tokenizer)
        if tok_fp not in tokenized:
            documents, skipped = tokenize_records(
                records, tokenizer, prefix=options.prefix, tokenizer_name=str(hf.tokenizer_dir(spec, options.tokenizer))
            )
            tokenized[tok_fp] = (documents, skipped, documents_fingerprint(documents))
        documents, skipped, docs_fp = tokenized[tok_fp]
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
    stride = options.stride or max(1, max_length // 2)
    identity = {
        "weights": weights_fp,
        "tokenizer": tok_fp,
        "data": data_fp,
        "documents": docs_fp,
        "settings": identity_settings(options, max_length, stride, dtype_name),
    }
    shards = plan_shards(documents, options.shard_targets)

    # rank 0 decides; every rank follows
    decision = None
    if dist.rank == 0:
        state, info = partition_state(options.out, spec.id, identity)
        if options.force:
            state, info = "new", {}
        if state == "conflict":
            decision = ("conflict", _conflict_message(spec, info, identity, options.out))
        elif state == "done":
            decision = ("done", info)
        else:
            start_partition(options.out, spec.id, identity, fresh=(state == "new"))
            decision = ("run", sorted(info))
    decision = dist.broadcast(decision)
    kind, info = decision
    if kind == "conflict":
        result.message = info
        return result
    if kind == "done":
        result.status, result.manifest = "skipped", info
        result.message = "already scored with identical fingerprints and settings (--force to redo)"
        _fill_numbers(result, options.out, spec.id)
        return result

    done_shards = set(info)
    mine = [k for k in range(len(shards)) if k not in done_shards and k % dist.world == dist.rank]
    error = None
    adapter = None
    try:
        total = sum(int(documents[i].targets.sum()) for sh in shards for i in sh)
        done = sum(int(documents[i].targets.sum()) for k in done_shards for i in shards[k])
        if mine:
            model = cache.load(spec)
            adapter = hf.HFAdapter(model)
        reporter.checkpoint_started(spec, total, done)
        if mine:
            ctx = hf.model_context_length(model)
            if ctx is not None and max_length > ctx:
                raise UsageError(f"--max-length {max_length} exceeds the context of {spec.id} ({ctx} tokens)")
            pad_id = _pad_id(model)
            part = Path(options.out) / f"checkpoint={spec.id}"
            for k in mine:
                docs_k = [documents[i] for i in shards[k]]
                scored = score_documents(
                    adapter,
                    docs_k,
                    max_length=max_length,
                    stride=stride,
                    batch_tokens=resolve_batch_tokens(options.batch_tokens, device),
                    pad_id=pad_id,
                    progress=reporter.advance,
                    label=spec.id,
                )
                extra = None
                if options.task_accuracy:
                    from pctce_cli.scoring.generate import task_accuracy

                    extra = task_accuracy(model, tokenizer, docs_k, records, margin=options.accuracy_margin)
                write_shard(part, k, dist.rank, scored, extra)
    except PctceError as e:
        error = str(e)
    errors = [e for e in dist.gather(error) if e]
    if errors:
        result.message = errors[0]
        return result

    if dist.rank == 0:
        wall = time.perf_counter() - t_start
        manifest = {
            "id": spec.id,
            "path": str(spec.path.resolve()),
            "step": spec.step,
            "kind": spec.kind,
            "base_model": str(spec.base_model.resolve()) if spec.base_model else None,
            "tokenizer_path": str(hf.tokenizer_dir(spec, options.tokenizer).resolve()),
            "identity": identity,
            "fingerprints": {
                "weights": weights_fp,
                "tokenizer": tok_fp,
                "data": data_fp,
                "documents": docs_fp,
                "method": "sha256; weight files over 256 MiB by 64 sampled 1 MiB blocks",
            },
            "settings": {
                **identity["settings"],
                "batch_tokens": resolve_batch_tokens(options.batch_tokens, device),
                "device": str(device),
                "trust_remote_code": options.trust_remote_code,
            },
            "data": {
                "files": [str(Path(p).resolve()) for p in options.data],
                "records": len(records),
                "documents": len(documents),
                "skipped_documents": skipped,
            },
            "engine": {
                "chunked_output_layer": bool(adapter.fast) if adapter is not None else None,
                "output_layer_check_max_abs_diff": adapter.check_max_abs_diff if adapter is not None else None,
            },
            "versions": _versions(),
            "world_size": dist.world,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(wall, 3),
        }
        try:
            manifest = finish_partition(Path(options.out) / f"checkpoint={spec.id}", manifest, len(shards))
            finish_error = None
        except PctceError as e:
            finish_error = str(e)
    else:
        manifest, finish_error = None, None
    finish_error = dist.broadcast(finish_error)
    if finish_error:
        result.message = finish_error
        return result
    result.status = "scored"
    result.manifest = manifest or {}
    result.seconds = time.perf_counter() - t_start
    if dist.rank == 0:
        _fill_numbers(result, options.out, spec.id)
    return result


def _fill_numbers(result: CheckpointResult, out, checkpoint_id: str) -> None:
    from pctce_cli.store import load_scores

    s = load_scores(out, checkpoint_id, columns=("ce",))
    result.targets = len(s.ce)
    result.mean, result.p50, result.p95 = _summary_numbers(s.ce)
    result.manifest = s.manifest
    if result.status == "skipped":
        result.seconds = 0.0


def _config_context(spec: CheckpointSpec) -> int | None:
    import json

    path = (spec.base_model if spec.kind == "adapter" else spec.path) / "config.json"
    try:
        cfg = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    cfg = cfg.get("text_config", cfg)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx"):
        v = cfg.get(key)
        if isinstance(v, int) and v > 0:
            return v
    return None


def _pad_id(model) -> int:
    cfg = model.config
    for key in ("pad_token_id", "eos_token_id", "bos_token_id"):
        v = getattr(cfg, key, None)
        if isinstance(v, list):
            v = v[0] if v else None
        if isinstance(v, int) and v >= 0:
            return v
    return 0


def _conflict_message(spec, manifest: dict, identity: dict, out) -> str:
    return (
        f"{spec.id}: {out} already holds scores of it made with different "
        f"{identity_difference(manifest.get('identity', {}), identity)}; use --force to overwrite or choose another --out"
    )


__all__ = ["ScoreOptions", "CheckpointResult", "Reporter", "score_checkpoints", "plan_shards", "ScoringError"]
