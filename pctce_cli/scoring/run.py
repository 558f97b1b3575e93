"""`pctce score` as a library call: checkpoints × validation data → a store.

Each checkpoint goes through four stages (:func:`_score_one`): prepare
(tokenize, fingerprint, window, identity), decide (rank 0: skip, resume,
conflict), score (every rank its shards, through the one loop of
:mod:`pctce_cli.scoring.loop` into a :class:`StoreSink`) and finish (rank 0:
the manifest). The loop's names are re-exported here.

Progress is reported through a :class:`Reporter` (the CLI draws Rich progress
bars with it); nothing is printed. Under ``torchrun`` each rank scores a
disjoint share of the shards; rank 0 holds the lock, decides what to skip or
resume, and writes the manifest once every rank has finished.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pctce_cli.checkpoints import CheckpointSpec, Fingerprints, discover, read_config, weights_fingerprint
from pctce_cli.data import data_fingerprint, documents_fingerprint, read_records, tokenize_records, units_status
from pctce_cli.distributed import ProcessGroup
from pctce_cli.errors import PctceError, ScoringError, StoreError, UsageError, option_message
from pctce_cli.scoring.options import (
    SCORE_OPTIONS,
    ScoreOptions,
    identity_settings,
    plan_shards,
    resolve_batch_tokens,
    validate_cli_options,
)
from pctce_cli.scoring.loop import (
    MemorySink,
    ScoredPart,
    ShardScorer,
    StoreSink,
    collect,
    first_error,
    my_shards,
    pad_id_of,
    score_shards,
)
from pctce_cli.scoring.reference import Reference
from pctce_cli.scoring.startup import paused_gc
from pctce_cli.scoring.partition import CLI_REMEDY, add_labels, build_manifest, conflict_message, engine_info, moved_note, open_partition
from pctce_cli.scoring.partition import versions as _versions
from pctce_cli.store import Manifest, StoreLock, finish_partition, partition_dir, weight_groups


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
    manifest: Manifest | None = None
    notes: list = field(default_factory=list)  # for the user beside the row: a moved branch, identical weights


class Reporter:
    """Progress hooks; the default does nothing."""

    def checkpoint_started(self, spec: CheckpointSpec, total_targets: int, done_targets: int) -> None:
        """Scoring of ``spec`` begins (``done_targets`` were resumed from disk)."""

    def advance(self, n_targets: int) -> None:
        """``n_targets`` more targets were scored."""

    def checkpoint_finished(self, result: CheckpointResult) -> None:
        """``spec`` is scored, skipped or failed."""


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
    with paused_gc(freeze_imports=True):  # torch and transformers: imported once, alive until the process ends
        import torch

        from pctce_cli.scoring import hf

    specs = discover(paths, base_model=options.base_model)
    fingerprints = Fingerprints(specs)  # hashed in the background from now on, a checkpoint ahead
    if specs:
        fingerprints.start(specs[0])
    labels = {"subset_fields": options.subset_fields, "subset_from_file": options.subset_from_file}
    records = read_records(options.data, **options.read.record_kwargs(), **labels)
    data_fp = data_fingerprint(options.data)
    device = hf.resolve_device(options.device)
    if device.type == "cuda" and group.world > 1:
        device = torch.device(f"cuda:{group.local_rank}")
    dtype = hf.resolve_dtype(options.dtype, device)
    dtype_name = str(dtype).removeprefix("torch.")
    cache = hf.ModelCache(device, dtype, options.trust_remote_code)

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

    env = Env(options, records, data_fp, device, dtype_name, cache, {}, group, reporter, fingerprints=fingerprints)
    results = []
    try:
        if options.reference:  # loaded when first needed, then resident for every checkpoint
            env.reference = Reference.open(options.reference, options.tokenizer, hf.ModelCache(device, dtype, options.trust_remote_code), options.trust_remote_code)
        for spec in specs:
            results.append(_score_one(spec, env))
            reporter.checkpoint_finished(results[-1])
    finally:
        fingerprints.close()
        cache.release()
        if env.reference is not None:
            env.reference.release()
        lock.release()
    _note_identical(results, specs, env.weights)
    return results


def _note_identical(results: list[CheckpointResult], specs: Sequence[CheckpointSpec], weights: dict) -> None:
    """Name, in the result of each checkpoint concerned, the checkpoints that share one weights fingerprint."""
    commits = {s.id: (s.extra.get("hub") or {}).get("commit") for s in specs}
    for names, note in weight_groups([(s.id, weights.get(s.id), commits[s.id]) for s in specs]):
        for r in results:
            if r.id in names:
                r.notes.append(note)


@dataclass
class Prepared:
    """A checkpoint ready to score: its tokenized documents, window, identity and shards (:func:`_prepare`)."""

    spec: CheckpointSpec
    tokenizer: Any
    documents: Sequence
    skipped: int
    units: dict
    max_length: int
    stride: int
    identity: dict
    shards: list[list[int]]

    def targets(self, shards: Sequence[int]) -> int:
        """Targets in the given shards."""
        return sum(int(self.documents[i].targets.sum()) for k in shards for i in self.shards[k])


@dataclass
class Env:
    """What every checkpoint of one ``pctce score`` run shares."""

    options: ScoreOptions
    records: Sequence
    data_fp: str
    device: Any
    dtype_name: str
    cache: Any  # hf.ModelCache
    tokenized: dict  # tokenizer fingerprint -> (documents, skipped, documents_fp, units)
    group: ProcessGroup
    reporter: Reporter
    weights: dict = field(default_factory=dict)  # checkpoint id -> weights fingerprint, for identical_weights
    reference: Reference | None = None  # --reference: the model every candidate's divergence is taken from
    fingerprints: Fingerprints | None = None  # background hashing (None: hash when needed)


def _score_one(spec: CheckpointSpec, env: Env) -> CheckpointResult:
    """One checkpoint: prepare → decide (rank 0) → score (every rank) → finish (rank 0); a failure is the result's message."""
    t_start = time.perf_counter()
    result = CheckpointResult(spec.id, str(spec.path), "failed")
    try:
        prep = _prepare(spec, env)
    except PctceError as e:
        result.message = _cli_words(e)
        return result
    decision = _decide(prep, env)
    if decision.kind == "conflict":
        result.message = conflict_message(spec.id, decision.manifest, prep.identity, env.options.out, CLI_REMEDY)
        return result
    if decision.kind == "done":
        return _skipped(result, prep, decision, env)
    scorer, error = collect(env.group, lambda: _score_mine(prep, decision.done_shards, env), words=_cli_words)
    if error is None:
        error = env.group.broadcast(_finish(prep, scorer, env, t_start) if env.group.rank == 0 else None)
    if error:
        result.message = error
        return result
    result.status = "scored"
    result.notes += [n for n in (decision.note and f"{spec.id}: {decision.note}", *spec.extra.get("notes", [])) if n]
    result.seconds = time.perf_counter() - t_start
    if env.group.rank == 0:
        _fill_numbers(result, env.options.out, spec.id)
    return result


def _prepare(spec: CheckpointSpec, env: Env) -> Prepared:
    """Tokenize (once per tokenizer), fingerprint the weights, fix the window and the identity.

    Raises:
        PctceError: the tokenizer, the weights or the window settings (named).
    """
    from pctce_cli.scoring import hf

    options = env.options
    tokenizer = hf.load_tokenizer(spec, options.tokenizer, options.trust_remote_code)
    tok_fp = hf.tokenizer_fingerprint(tokenizer)
    if tok_fp not in env.tokenized:
        name = str(hf.tokenizer_dir(spec, options.tokenizer))
        documents, skipped = tokenize_records(
            env.records, tokenizer, prefix=options.prefix, tokenizer_name=name, units=options.units, special_tokens=options.special_tokens
        )
        units = units_status(documents, tokenizer, name, options.units)
        env.tokenized[tok_fp] = (documents, skipped, documents_fingerprint(documents), units)
    documents, skipped, docs_fp, units = env.tokenized[tok_fp]
    weights_fp = env.weights[spec.id] = env.fingerprints.get(spec) if env.fingerprints else weights_fingerprint(spec)
    # The window must be known before loading (to skip finished checkpoints
    # without loading them), so the context length comes from config.json.
    max_length = options.max_length or _config_context(spec)
    if max_length is None:
        raise UsageError(f"{spec.path}: config.json states no context length", remedy="pass max_length", remedy_param="max_length")
    _check_batch_budget(spec, options.batch_tokens, documents, max_length)
    stride = options.stride or max(1, max_length // 2)
    identity = {
        "weights": weights_fp,
        "tokenizer": tok_fp,
        "data": env.data_fp,
        "documents": docs_fp,
        "settings": identity_settings(options, max_length, stride, env.dtype_name, units.get("rule")),
    }
    if env.reference is not None:  # the reference's weights are part of the numbers (docs/definitions.md#divergence-from-a-reference-model)
        identity["reference"] = env.reference.check(spec, tok_fp)
    shards = plan_shards(documents, options.shard_targets)
    return Prepared(spec, tokenizer, documents, skipped, units, max_length, stride, identity, shards)


def _check_batch_budget(spec: CheckpointSpec, batch_tokens: int | None, documents: Sequence, max_length: int) -> None:
    """Refuse a ``--batch-tokens`` below the longest window the data needs: min(longest document, ``max_length``).

    A forward pass holds at least one whole window, so a smaller budget only
    makes every batch a single window (``--batch-tokens 1`` ran 7x slower).
    The model's configured context is not the window: a long-context model
    on short documents scores within a small budget.
    """
    if batch_tokens is None:
        return
    window = min(max((len(d.input_ids) for d in documents), default=0), max_length)
    if batch_tokens < window:
        raise UsageError(
            f"{spec.path}: --batch-tokens {batch_tokens} is smaller than the longest window of {window} tokens; "
            f"use at least {window} (or leave it out)"
        )


def _decide(prep: Prepared, env: Env):
    """Rank 0 decides what to do with the partition (and starts it); every rank gets the same decision.

    A Hub revision is keyed by its commit: when the branch has moved since it was
    scored, the partition is scored again (with a note) rather than kept or refused.
    """
    decision = None
    if env.group.rank == 0:
        moved = moved_note(env.options.out, prep.spec)
        decision = open_partition(env.options.out, prep.spec.id, prep.identity, force=env.options.force or moved is not None, resume=True)
        decision.note = moved
    return env.group.broadcast(decision)


def _skipped(result: CheckpointResult, prep: Prepared, decision, env: Env) -> CheckpointResult:
    """A complete partition with this identity: keep it (adding the records' subset labels), report its numbers."""
    result.status, result.manifest = "skipped", decision.manifest
    result.message = "already scored with identical fingerprints and settings (--force to redo)"
    if prep.units["available"] and "units" not in decision.manifest.identity_settings:
        result.message = "already scored, before pctce recorded byte spans and words (--force to re-score with them)"
    if env.group.rank == 0:
        result.message += add_labels(env.options.out, prep.spec.id, env.records)
    _fill_numbers(result, env.options.out, prep.spec.id)
    return result


def _cli_words(error: PctceError) -> str:
    """An error of a checkpoint in the words of `pctce score` (its parameters as options)."""
    return option_message(error, SCORE_OPTIONS)


def _score_mine(prep: Prepared, done_shards: Sequence[int], env: Env) -> ShardScorer | None:
    """Score this rank's shards into the partition; the scorer (``None`` when this rank has none)."""
    from pctce_cli.scoring import hf

    spec, options = prep.spec, env.options
    mine = my_shards(len(prep.shards), env.group, done_shards)
    model = env.cache.load(spec) if mine else None
    env.reporter.checkpoint_started(spec, prep.targets(range(len(prep.shards))), prep.targets(done_shards))
    if not mine:
        return None
    ctx = hf.model_context_length(model)
    if ctx is not None and prep.max_length > ctx:
        raise UsageError(f"max_length {prep.max_length} exceeds the context of {spec.id} ({ctx} tokens)", param="max_length")
    adapter = hf.HFAdapter(model)
    scorer = ShardScorer(
        adapter, model, prep.tokenizer, prep.documents, env.records, prep.shards, prep.max_length, prep.stride,
        batch_tokens=resolve_batch_tokens(options.batch_tokens, env.device),
        pad_id=pad_id_of(model),
        task_accuracy=options.task_accuracy,
        accuracy_margin=options.accuracy_margin,
        label=spec.id,
        progress=env.reporter.advance,
        units=prep.units["available"],
        reference=env.reference.adapter(spec, adapter, prep.max_length) if env.reference is not None else None,
    )
    score_shards(scorer, mine, StoreSink(partition_dir(options.out, spec.id)), env.group.rank)
    return scorer


def _finish(prep: Prepared, scorer: ShardScorer | None, env: Env, t_start: float) -> str | None:
    """Rank 0: write the manifest once every shard is recorded, then the subset labels; the error message, if any."""
    from pctce_cli.scoring import hf

    spec, options = prep.spec, env.options
    manifest = build_manifest(
        checkpoint=spec.id,
        path=str(spec.path.resolve()),
        step=spec.step,
        kind=spec.kind,
        base_model=str(spec.base_model.resolve()) if spec.base_model else None,
        tokenizer_path=str(hf.tokenizer_dir(spec, options.tokenizer).resolve()),
        identity=prep.identity,
        method="sha256; weight files over 256 MiB by 64 sampled 1 MiB blocks",
        run_settings={
            "batch_tokens": resolve_batch_tokens(options.batch_tokens, env.device),
            "device": str(env.device),
            "trust_remote_code": options.trust_remote_code,
        },
        data={
            "files": [str(Path(p).resolve()) for p in options.data],
            "records": len(env.records),
            "documents": len(prep.documents),
            "skipped_documents": prep.skipped,
        },
        engine=engine_info(scorer.adapter if scorer is not None else None),
        versions=_versions(),
        world_size=env.group.world,
        wall_seconds=round(time.perf_counter() - t_start, 3),
        units=prep.units,
        **{k: spec.extra[k] for k in ("hub", "base_hub") if spec.extra.get(k)},
        **({"reference": env.reference.manifest()} if env.reference is not None else {}),
    )
    try:
        finish_partition(partition_dir(options.out, spec.id), manifest, len(prep.shards))
        add_labels(options.out, spec.id, env.records)
    except PctceError as e:
        return _cli_words(e)
    return None


def _summary_numbers(ce: np.ndarray) -> tuple[float, float, float]:
    if len(ce) == 0:
        return float("nan"), float("nan"), float("nan")
    from pctce_cli.stats.summaries import percentiles

    p50, p95 = percentiles(ce, [50, 95])
    return float(ce.astype(np.float64).mean()), float(p50), float(p95)


def _fill_numbers(result: CheckpointResult, out, checkpoint_id: str) -> None:
    from pctce_cli.store import load_scores

    s = load_scores(out, checkpoint_id, columns=("ce",), documents=False)  # the run's table needs only CE
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
