"""Scoring a model held in memory: the engine of ``pctce score`` without saving or loading.

:func:`score_in_memory` is what :func:`pctce_cli.api.score_model` and the
training callback run: the settings are resolved as ``pctce score`` resolves
them (:func:`scoring_settings`), this rank's shards go through the one loop
(:func:`pctce_cli.scoring.loop.score_shards`) into a
:class:`~pctce_cli.scoring.loop.MemorySink`, and every rank's parts are
gathered into one :class:`~pctce_cli.scoring.result.ScoreResult`. Torch is
imported inside the functions.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pctce_cli.distributed import ProcessGroup, unwrap
from pctce_cli.errors import ScoringError, UsageError
from pctce_cli.scoring.options import ScoreOptions, identity_settings, plan_shards, resolve_batch_tokens, validate_options
from pctce_cli.scoring.partition import engine_info, versions
from pctce_cli.scoring.result import ScoreResult, assemble
from pctce_cli.scoring.loop import MemorySink, ShardScorer, first_error, my_shards, pad_id_of, score_shards
from pctce_cli.scoring.validation import ValidationData

# Tensors up to this size are hashed whole by model_fingerprint; larger ones by sampled blocks.
_FULL_HASH_BYTES = 256 * 1024 * 1024
_BLOCK = 1024 * 1024
_SAMPLED_BLOCKS = 64


def model_fingerprint(model) -> str:
    """SHA-256 of a model's state dict: names, dtypes, shapes and bytes.

    Tensors over 256 MiB contribute their size and 64 evenly spaced 1 MiB
    blocks instead of every byte (the method ``pctce score`` uses for weight
    files), so a multi-GB model costs a fraction of a second on top of copying
    the smaller tensors to the CPU.
    """
    import torch

    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach()
        h.update(f"{name}\0{str(t.dtype).removeprefix('torch.')}\0{tuple(t.shape)}\0".encode())
        if t.numel() == 0:
            continue
        raw = t.contiguous().reshape(-1).view(torch.uint8)  # (bytes,)
        n = raw.numel()
        if n <= _FULL_HASH_BYTES:
            h.update(raw.cpu().numpy().tobytes())
            continue
        stride = (n - _BLOCK) // (_SAMPLED_BLOCKS - 1)
        for k in range(_SAMPLED_BLOCKS):
            h.update(raw[k * stride : k * stride + _BLOCK].cpu().numpy().tobytes())
    return h.hexdigest()


def scoring_settings(model, data: ValidationData, **scoring) -> tuple[ScoreOptions, int, int, dict]:
    """Resolve the options of one scoring of ``model`` on ``data``.

    Args:
        model: The (unwrapped) model: its context length and dtype enter the settings.
        data: Prepared validation data (its reading settings are kept).
        **scoring: ``max_length``, ``stride``, ``batch_tokens``, ``shard_targets``,
            ``task_accuracy``, ``accuracy_margin``.

    Returns:
        ``(options, max_length, stride, settings)``; ``settings`` are the identity
        settings a store manifest records (as ``pctce score`` records them).

    Raises:
        UsageError: a bad setting, naming the parameter.
    """
    from pctce_cli.scoring import hf

    options = data.options.replace(**scoring)
    validate_options(options)
    ctx = hf.model_context_length(model)
    max_length = options.max_length or ctx
    if max_length is None:
        raise UsageError("the model's config states no context length; pass max_length", param="max_length")
    if ctx is not None and max_length > ctx:
        raise UsageError(f"max_length {max_length} exceeds the model's context ({ctx} tokens)", param="max_length")
    stride = options.stride or max(1, max_length // 2)
    if stride > max_length:  # max_length came from the model: validate_options could not compare them
        raise UsageError(f"stride ({stride}) cannot exceed max_length ({max_length})", param=("stride", "max_length"))
    dtype = next(model.parameters()).dtype
    settings = identity_settings(options, max_length, stride, str(dtype).removeprefix("torch."), data.units.get("rule"))
    return options, max_length, stride, settings


def score_in_memory(
    model,
    tokenizer,
    vd: ValidationData,
    *,
    distributed: bool = False,
    weights_fingerprint: str | None = None,
    progress: Callable[[int], None] | None = None,
    started: float | None = None,
    reference=None,
    reference_fingerprint: str | None = None,
    **scoring,
) -> ScoreResult:
    """:func:`pctce_cli.api.score_model` on prepared data (see it for the arguments).

    ``started`` is the ``time.perf_counter()`` the recorded wall time counts from
    (default: now; ``score_model`` passes its start, so reading the data counts).

    Raises:
        UsageError: a bad setting, or a reference with another vocabulary. ScoringError: under a process
            group, any rank's failure (the same message on every rank).
    """
    from pctce_cli.scoring import hf

    t_start = time.perf_counter() if started is None else started

    model = unwrap(model)
    options, max_length, stride, settings = scoring_settings(model, vd, **scoring)
    group = ProcessGroup.current(distributed)
    shards = plan_shards(vd.documents, options.shard_targets)
    adapter = hf.HFAdapter(model)
    ref = None if reference is None else _reference_adapter(unwrap(reference), adapter, max_length)
    batch_tokens = resolve_batch_tokens(options.batch_tokens, adapter.device)
    scorer = ShardScorer(
        adapter, model, tokenizer, vd.documents, vd.records, shards, max_length, stride,
        batch_tokens=batch_tokens,
        pad_id=pad_id_of(model),
        task_accuracy=options.task_accuracy,
        accuracy_margin=options.accuracy_margin,
        label="model",
        progress=progress,
        units=vd.units["available"],
        reference=ref,
    )
    parts = _score_parts(scorer, model, group, None if ref is None else unwrap(reference))
    weights = weights_fingerprint if weights_fingerprint is not None else model_fingerprint(model)
    identity = {"weights": weights, **vd.fingerprints, "settings": settings}
    info = _info(model, tokenizer, vd, adapter, batch_tokens, group, t_start)
    if ref is not None:  # the reference's weights are part of the numbers, as for pctce score --reference
        ref_model = unwrap(reference)
        identity["reference"] = reference_fingerprint if reference_fingerprint is not None else model_fingerprint(ref_model)
        name = getattr(ref_model, "name_or_path", None) or getattr(getattr(ref_model, "config", None), "_name_or_path", None)
        info["reference"] = {"id": name or "reference", "path": name or "(in memory)", "fingerprint": identity["reference"], "kind": "model"}
    return assemble(parts, identity, info)


def _reference_adapter(reference, adapter, max_length: int):
    """The reference model's engine adapter, checked against the model's (same vocabulary, same device, a context that holds the windows).

    Raises:
        UsageError: the two output layers differ in size, the models live on different devices, or
            ``max_length`` exceeds the reference's context (it reads the same windows).
    """
    from pctce_cli.scoring import hf

    ref = hf.HFAdapter(reference)
    if ref.vocab_size != adapter.vocab_size:
        raise UsageError(f"reference: its output layer has {ref.vocab_size} entries, the model's {adapter.vocab_size}; KL needs the same vocabulary", param="reference")
    if ref.device != adapter.device:
        raise UsageError(f"reference: it is on {ref.device}, the model on {adapter.device}; put both on one device", param="reference")
    ctx = hf.model_context_length(reference)
    if ctx is not None and max_length > ctx:
        raise UsageError(f"reference: its context ({ctx} tokens) is shorter than the windows (max_length {max_length}), which it reads too; pass max_length {ctx} or less", param=("reference", "max_length", "max_length"))
    return ref


def _score_parts(scorer: ShardScorer, model, group: ProcessGroup, reference=None) -> list:
    """Score this rank's shards in eval mode (the model's and the reference's modes restored after); every rank's parts.

    Raises:
        ScoringError: under a process group, any rank's failure (the same message on every rank).
    """
    sink = MemorySink()
    mine = my_shards(len(scorer.shards), group)
    was_training, ref_training = model.training, reference is not None and reference.training
    model.eval()
    if reference is not None:
        reference.eval()
    try:
        if not group.active:
            score_shards(scorer, mine, sink, group.rank)  # alone, errors propagate as they are
        else:
            error = first_error(group, lambda: score_shards(scorer, mine, sink, group.rank), catch=(Exception,))
            if error:
                raise ScoringError(error)
    finally:
        model.train(was_training)
        if reference is not None:
            reference.train(ref_training)
    return [p for ps in group.gather(sink.parts) for p in ps]


def _info(model, tokenizer, vd: ValidationData, adapter, batch_tokens: int, group: ProcessGroup, t_start: float) -> dict:
    """What a store manifest records beside the identity: kind, tokenizer, run settings, data, engine, versions, timing."""
    return {
        "kind": "adapter" if hasattr(model, "peft_config") else "model",
        "tokenizer_path": getattr(tokenizer, "name_or_path", None) or None,
        "settings": {"batch_tokens": batch_tokens, "device": str(adapter.device), "trust_remote_code": False},
        "data": {
            "files": vd.files,
            "in_memory": not vd.files,
            "records": len(vd.records),
            "documents": len(vd.documents),
            "skipped_documents": vd.skipped,
        },
        "engine": engine_info(adapter),
        "units": vd.units,
        "versions": versions(),
        "world_size": group.world,
        "wall_seconds": round(time.perf_counter() - t_start, 3),
    }


__all__ = ["model_fingerprint", "score_in_memory", "scoring_settings"]
