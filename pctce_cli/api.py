"""The Python API: score an in-memory model, and the statistics as plain functions.

:func:`score_model` runs the scoring engine of ``pctce score`` on a model you
hold in memory (no save, no load) and returns a :class:`ScoreResult`: the
per-target arrays, the per-document table and ``.summary()``. With the same
options it gives the same numbers as ``pctce score`` on the saved checkpoint:
the same tokenization, windows, shards, batches and output-layer path.
``ScoreResult.to_store`` writes a partition that ``pctce summary``/``concord``/
``select`` read beside partitions written by ``pctce score``.

The statistics of :mod:`pctce_cli.stats` are re-exported here (``summarize``,
``concordance``, ``bootstrap_ci``, ``select``, ``decompose``, …), and the
training-time tools load from here on first access (``PercentileCE``,
``PercentileCECallback``). Importing this module, even with ``*``, does not
import torch; :func:`score_model` does when called.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from pctce_cli.data import FORMATS, Document, Record, data_fingerprint, documents_fingerprint, read_records, tokenize_records
from pctce_cli.errors import PctceError, ScoringError, StoreError, UsageError
from pctce_cli import stats as _stats
from pctce_cli.stats import *  # noqa: F401,F403  (every statistic is part of this API)
from pctce_cli.scoring.run import (  # torch-free module: torch is imported inside its functions
    DEFAULT_BATCH_TOKENS,
    DEFAULT_SHARD_TARGETS,
    ScoreOptions,
    resolve_batch_tokens,
    identity_settings,
    plan_shards,
    validate_options,
)

# Tensors up to this size are hashed whole by model_fingerprint; larger ones by sampled blocks.
_FULL_HASH_BYTES = 256 * 1024 * 1024
_BLOCK = 1024 * 1024
_SAMPLED_BLOCKS = 64
_IN_MEMORY = "<in-memory>"


# ---------------------------------------------------------------- validation data


@dataclass
class ValidationData:
    """Validation data read and tokenized once, ready to score again and again.

    Made by :func:`prepare_data`; :func:`score_model` accepts it as ``data``
    (its reading settings then win over the keyword arguments), which is what
    the training callback does at every evaluation.
    """

    records: list[Record]
    documents: list[Document]
    skipped: int
    files: list[str]  # resolved data files; empty for texts or Records given in memory
    options: ScoreOptions  # the reading and target-selection settings
    fingerprints: dict  # tokenizer, data, documents

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def n_targets(self) -> int:
        """Number of scored targets over every document."""
        return int(sum(int(d.targets.sum()) for d in self.documents))


def _looks_like_file(s: str) -> bool:
    return "\n" not in s and len(s) < 4096 and Path(s).suffix.lower() in FORMATS


def as_records(data, **read_kw) -> tuple[list[Record], list[str]]:
    """Turn any accepted ``data`` into records and the data files they came from.

    Accepted: a path (``str`` or ``os.PathLike``); a list of paths; a list of
    texts (one plain-text document each); a list of :class:`Record`. A list of
    strings is read as paths when every string ends in a data-file suffix
    (``.txt``, ``.jsonl``, ``.json``, ``.parquet``, ``.csv``) and holds no
    newline, otherwise as texts.

    Returns:
        ``(records, files)``; ``files`` is empty for texts and records.

    Raises:
        UsageError: empty or mixed lists, or field options given with texts.
        DataError: from :func:`pctce_cli.data.read_records`.

    Examples:
        >>> recs, files = as_records(["first text", "second text"])
        >>> [(r.index, r.source, r.text) for r in recs], files
        ([(0, 'text 1', 'first text'), (1, 'text 2', 'second text')], [])
    """
    if isinstance(data, (str, os.PathLike)):
        return read_records(data, **read_kw), [str(data)]
    if isinstance(data, Record):
        data = [data]
    try:
        items = list(data)
    except TypeError:
        raise UsageError(
            f"data must be a path, a list of paths, a list of texts or a list of Records, got {type(data).__name__}"
        ) from None
    if not items:
        raise UsageError("data is empty: give a data file, a list of files, texts or Records")
    if all(isinstance(x, Record) for x in items):
        indices = [r.index for r in items]
        if len(set(indices)) != len(indices):
            raise UsageError("Records must have distinct index values (the document ids of the store)")
        return items, []
    if all(isinstance(x, os.PathLike) for x in items) or (
        all(isinstance(x, str) for x in items) and all(_looks_like_file(x) for x in items)
    ):
        paths = [str(x) for x in items]
        return read_records(paths, **read_kw), paths
    if all(isinstance(x, str) for x in items):
        if read_kw.get("prompt_field") or read_kw.get("completion_field"):
            raise UsageError(
                "prompt_field/completion_field name fields of data files; for prompt/completion pairs "
                "in memory pass Records with prompt and completion"
            )
        return [Record(index=i, source=f"text {i + 1}", text=t) for i, t in enumerate(items)], []
    kinds = sorted({type(x).__name__ for x in items})
    raise UsageError(f"data mixes {', '.join(kinds)}; give paths, texts or Records, one kind per list")


def records_fingerprint(records: Sequence[Record]) -> str:
    """SHA-256 over the content of in-memory records (index, mode fields), in order."""
    h = hashlib.sha256()
    for r in records:
        row = [r.index, r.text, r.prompt, r.completion, r.messages]
        h.update(json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def prepare_data(
    tokenizer,
    data,
    *,
    text_field: str = "text",
    prompt_field: str | None = None,
    completion_field: str | None = None,
    messages_field: str = "messages",
    split_on: str = "none",
    prefix: str = "auto",
) -> ValidationData:
    """Read and tokenize validation data as ``pctce score`` does.

    Args:
        tokenizer: A Hugging Face tokenizer (the model's).
        data: A path, a list of paths, a list of texts or a list of
            :class:`~pctce_cli.data.Record` (see :func:`as_records`).
        text_field, prompt_field, completion_field, messages_field, split_on,
            prefix: As the options of ``pctce score`` (``--text-field`` …).

    Returns:
        A :class:`ValidationData` with the documents and their fingerprints:
        the data fingerprint is the one ``pctce score`` records for files, and
        a hash of the records' content for texts and Records.

    Raises:
        UsageError, DataError: bad options or data.
    """
    read_kw = dict(
        text_field=text_field,
        prompt_field=prompt_field,
        completion_field=completion_field,
        messages_field=messages_field,
        split_on=split_on,
    )
    options = ScoreOptions(data=[_IN_MEMORY], out=Path("."), prefix=prefix, **read_kw)
    validate_options(options)
    records, files = as_records(data, **read_kw)
    options.data = files or [_IN_MEMORY]
    return tokenize_data(tokenizer, records, files, options)


def tokenize_data(tokenizer, records: list[Record], files: list[str], options: ScoreOptions) -> ValidationData:
    """Tokenize records already read (from ``files``, or in memory) with ``options``' settings."""
    from pctce_cli.scoring.hf import tokenizer_fingerprint

    prefix = options.prefix
    name = getattr(tokenizer, "name_or_path", "") or "the tokenizer"
    documents, skipped = tokenize_records(records, tokenizer, prefix=prefix, tokenizer_name=str(name))
    fingerprints = {
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "data": data_fingerprint(files) if files else records_fingerprint(records),
        "documents": documents_fingerprint(documents),
    }
    return ValidationData(
        records, documents, skipped, [str(Path(p).resolve()) for p in files], options, fingerprints
    )


# ---------------------------------------------------------------- the result


@dataclass
class ScoredPart:
    """One shard of a result: which shard, which rank scored it, its rows and extra document columns."""

    shard: int
    rank: int
    scored: Any  # engine.ScoredShard
    extra: dict | None = None


@dataclass
class ScoreResult:
    """Per-target scores of one model on one validation set, in memory.

    Attributes:
        doc, pos, token, ce, rank: One entry per scored target, sorted by
            document then position (``ce`` float32 nats, ``rank`` int32), as
            :func:`pctce_cli.store.load_scores` returns them from a store.
        docs: The per-document table (``doc``, ``n_targets``, ``n_bytes``,
            ``n_words``; ``exact_match``/``substring_match`` with task accuracy).
        identity: Fingerprints (weights, tokenizer, data, documents) and the
            settings that determine the numbers; a store partition with the
            same identity holds the same numbers.
        info: Everything else a store manifest records (data, engine, timing).
    """

    doc: np.ndarray
    pos: np.ndarray
    token: np.ndarray
    ce: np.ndarray
    rank: np.ndarray
    docs: Any  # pandas.DataFrame
    identity: dict
    info: dict
    parts: list[ScoredPart] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return int(len(self.ce))

    def summary(
        self,
        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
        ci: float | None = None,
        n_boot: int = 1000,
        seed: int = 0,
        ci_summaries: Sequence[str] | None = None,
    ) -> dict:
        """The row ``pctce summary`` prints for this checkpoint.

        ``targets``, ``documents``, ``mean``, ``ppl``, one ``pXX`` per level,
        ``iqr``, ``z95``, ``top1``, ``bpb``, ``byte_ppl``, ``word_ppl`` (and
        ``acc_exact_match``/``acc_substring_match`` with task accuracy); with
        ``ci`` also ``<summary>_lo``/``<summary>_hi`` document-level bootstrap
        bounds, as ``pctce summary --ci``.
        """
        from pctce_cli.analysis import pname

        row: dict = {}
        summ = summarize(self.ce, self.rank, percentiles=percentiles)
        row["targets"] = int(summ.pop("n"))
        row["documents"] = int(len(self.docs))
        row.update(summ)
        ids, nll, _ = doc_sums(self.ce, self.doc)
        table = self.docs.set_index("doc").reindex(ids)
        norm = doc_normalized(nll, table["n_bytes"].to_numpy(), table["n_words"].to_numpy())
        norm.pop("n_docs")
        row.update(norm)
        for col in ("exact_match", "substring_match"):
            if col in self.docs.columns:
                row[f"acc_{col}"] = float(self.docs[col].mean())
        if ci is not None:
            names = list(ci_summaries or ["mean"] + [pname(q) for q in percentiles])
            res = bootstrap_ci(self.ce, self.doc, names, n_boot=n_boot, ci=ci, seed=seed, rank=self.rank)
            for name in names:
                row[f"{name}_lo"], row[f"{name}_hi"] = res[name]
        return row

    def manifest(self, checkpoint: str, step: int | None = None, path: str | None = None, **extra) -> dict:
        """The manifest :meth:`to_store` writes (before the store adds shard records and totals)."""
        return {
            "id": checkpoint,
            "path": path,
            "step": step,
            "kind": self.info.get("kind", "model"),
            "base_model": None,
            "tokenizer_path": self.info.get("tokenizer_path"),
            "identity": self.identity,
            "fingerprints": {
                "weights": self.identity["weights"],
                "tokenizer": self.identity["tokenizer"],
                "data": self.identity["data"],
                "documents": self.identity["documents"],
                "method": "sha256; weights: the in-memory state dict, tensors over 256 MiB by 64 sampled 1 MiB "
                "blocks; data given in memory: its records' content",
            },
            "settings": {**self.identity["settings"], **self.info["settings"]},
            "data": self.info["data"],
            "engine": self.info["engine"],
            "versions": self.info["versions"],
            "world_size": self.info["world_size"],
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": self.info["wall_seconds"],
            "source": "pctce_cli.api.score_model",
            **extra,
        }

    def to_store(
        self,
        out: str | Path,
        checkpoint: str,
        *,
        step: int | None = None,
        path: str | Path | None = None,
        force: bool = False,
        **manifest_extra,
    ) -> str:
        """Write these scores as the partition ``checkpoint=<checkpoint>`` of the store ``out``.

        The partition has the layout, shards and manifest of one written by
        ``pctce score``, so every analysis command reads it. Shards are written
        under the store's lock, to temporary names renamed when complete.

        Args:
            out: Score directory (created if missing).
            checkpoint: Partition name; characters outside ``[A-Za-z0-9._-]``
                become ``_`` (as ``pctce score`` names checkpoints).
            step: Training step recorded in the manifest (orders checkpoints).
            path: Checkpoint path recorded in the manifest (``pctce summary
                --vs`` names a run by the parent directory of this path).
            force: Replace a complete partition made with another identity.
            **manifest_extra: More keys for the manifest.

        Returns:
            ``"written"``, or ``"skipped"`` when a complete partition with the
            same identity (weights, tokenizer, data, documents, settings) exists.

        Raises:
            StoreError: the store is locked by another run, or holds this
                checkpoint made with another identity (and not ``force``).
        """
        from pctce_cli.checkpoints import safe_id
        from pctce_cli.store import StoreLock

        checkpoint = safe_id(checkpoint)
        with StoreLock(out):
            return write_partition(self, out, checkpoint, step=step, path=path, force=force, **manifest_extra)


def write_partition(result: ScoreResult, out, checkpoint: str, *, step=None, path=None, force=False, **extra) -> str:
    """:meth:`ScoreResult.to_store` without taking the lock (the caller holds it)."""
    from pctce_cli.store import finish_partition, partition_state, start_partition, write_shard

    state, info = partition_state(out, checkpoint, result.identity)
    if state == "done" and not force:
        return "skipped"
    if state == "conflict" and not force:
        raise StoreError(conflict_message(checkpoint, info, result.identity, out))
    part = start_partition(out, checkpoint, result.identity, fresh=True)
    for p in sorted(result.parts, key=lambda p: p.shard):
        write_shard(part, p.shard, p.rank, p.scored, p.extra)
    manifest = result.manifest(checkpoint, step, None if path is None else str(path), **extra)
    finish_partition(part, manifest, len(result.parts))
    return "written"


def conflict_message(checkpoint: str, manifest: dict, identity: dict, out) -> str:
    """Why a stored partition of ``checkpoint`` is not the one ``identity`` would write."""
    from pctce_cli.store import identity_difference

    return (
        f"{checkpoint}: {out} already holds scores of it made with different "
        f"{identity_difference(manifest.get('identity', {}), identity)}; pass force=True to overwrite or choose another store"
    )


# ---------------------------------------------------------------- scoring


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


def _unwrap(model):
    import torch

    while isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        model = model.module
    return model


def _process_group(distributed: bool):
    """``(dist, rank, world)`` of an initialized process group, or ``(None, 0, 1)``."""
    if not distributed:
        return None, 0, 1
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None, 0, 1
    return dist, dist.get_rank(), dist.get_world_size()


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
    """
    from pctce_cli.scoring import hf

    kw = {f.name: getattr(data.options, f.name) for f in fields(ScoreOptions)}
    kw.update(scoring)
    options = ScoreOptions(**kw)
    validate_options(options)
    ctx = hf.model_context_length(model)
    max_length = options.max_length or ctx
    if max_length is None:
        raise UsageError("the model's config states no context length; pass max_length")
    if ctx is not None and max_length > ctx:
        raise UsageError(f"max_length {max_length} exceeds the model's context ({ctx} tokens)")
    stride = options.stride or max(1, max_length // 2)
    dtype = next(model.parameters()).dtype
    settings = identity_settings(options, max_length, stride, str(dtype).removeprefix("torch."))
    return options, max_length, stride, settings


def score_model(
    model,
    tokenizer,
    data,
    *,
    text_field: str = "text",
    prompt_field: str | None = None,
    completion_field: str | None = None,
    messages_field: str = "messages",
    split_on: str = "none",
    prefix: str = "auto",
    max_length: int | None = None,
    stride: int | None = None,
    batch_tokens: int | None = DEFAULT_BATCH_TOKENS,
    shard_targets: int = DEFAULT_SHARD_TARGETS,
    task_accuracy: bool = False,
    accuracy_margin: int = 8,
    distributed: bool = False,
    weights_fingerprint: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScoreResult:
    """Score an in-memory causal LM with the engine of ``pctce score``.

    The model is scored where it lives (its device and dtype), in eval mode
    (its training mode is restored afterwards), under ``torch.inference_mode``.
    Options mean what the options of ``pctce score`` of the same name mean;
    with them equal, and the model in the dtype ``pctce score`` loads it in
    (float32 on CPU), the numbers equal those of ``pctce score`` on the saved
    checkpoint.

    Args:
        model: A transformers causal LM (or a PEFT model, or either wrapped
            in ``DistributedDataParallel``).
        tokenizer: Its tokenizer.
        data: A path, a list of paths, a list of texts, a list of
            :class:`~pctce_cli.data.Record`, or a :class:`ValidationData`.
        max_length: Window length (default: the model's context length).
        stride: Window stride (default: half the window).
        batch_tokens: Token budget per forward pass (None: 2048 on CPU, 16384 on an accelerator).
        shard_targets: Targets per shard; shards are the unit of batching,
            of distribution over ranks and of the store's files.
        task_accuracy: Prompt/completion data: also greedy-decode each prompt
            (``exact_match``/``substring_match`` per document).
        distributed: When a ``torch.distributed`` process group is
            initialized, every rank calls this with the same arguments, scores
            a share of the shards, and every rank returns the full result
            (gathered with ``all_gather_object``). Ignored without a group.
        weights_fingerprint: Identity of the weights recorded in the result
            (default: :func:`model_fingerprint`).
        progress: Called with the number of targets scored after each batch.

    Returns:
        A :class:`ScoreResult`.

    Raises:
        UsageError, DataError: bad options or data.
        ScoringError: non-finite CE or out of memory (one message on every rank).
    """
    import torch

    from pctce_cli.scoring import hf
    from pctce_cli.scoring.engine import score_documents
    from pctce_cli.scoring.run import _pad_id, _versions

    t_start = time.perf_counter()
    if isinstance(data, ValidationData):
        vd = data
    else:
        vd = prepare_data(
            tokenizer,
            data,
            text_field=text_field,
            prompt_field=prompt_field,
            completion_field=completion_field,
            messages_field=messages_field,
            split_on=split_on,
            prefix=prefix,
        )
    model = _unwrap(model)
    options, max_length, stride, settings = scoring_settings(
        model,
        vd,
        max_length=max_length,
        stride=stride,
        batch_tokens=batch_tokens,
        shard_targets=shard_targets,
        task_accuracy=task_accuracy,
        accuracy_margin=accuracy_margin,
    )

    dist, rank, world = _process_group(distributed)
    shards = plan_shards(vd.documents, options.shard_targets)
    mine = [k for k in range(len(shards)) if k % world == rank]
    adapter = hf.HFAdapter(model)
    pad_id = _pad_id(model)
    was_training = model.training
    parts: list[ScoredPart] = []
    error: str | None = None
    model.eval()
    try:
        for k in mine:
            docs_k = [vd.documents[i] for i in shards[k]]
            scored = score_documents(
                adapter,
                docs_k,
                max_length=max_length,
                stride=stride,
                batch_tokens=resolve_batch_tokens(options.batch_tokens, adapter.device),
                pad_id=pad_id,
                progress=progress,
                label="model",
            )
            extra = None
            if options.task_accuracy:
                from pctce_cli.scoring.generate import task_accuracy as _task_accuracy

                with torch.inference_mode():
                    extra = _task_accuracy(model, tokenizer, docs_k, vd.records, margin=options.accuracy_margin)
            parts.append(ScoredPart(k, rank, scored, extra))
    except PctceError as e:
        if dist is None:
            raise
        error = str(e)
    except Exception as e:
        if dist is None:
            raise
        error = f"rank {rank}: {type(e).__name__}: {e}"
    finally:
        model.train(was_training)
    if dist is not None:
        gathered: list = [None] * world
        dist.all_gather_object(gathered, (error, parts))
        errors = [e for e, _ in gathered if e]
        if errors:
            raise ScoringError(errors[0])
        parts = sorted((p for _, ps in gathered for p in ps), key=lambda p: p.shard)

    weights = weights_fingerprint if weights_fingerprint is not None else model_fingerprint(model)
    identity = {"weights": weights, **vd.fingerprints, "settings": settings}
    info = {
        "kind": "adapter" if hasattr(model, "peft_config") else "model",
        "tokenizer_path": getattr(tokenizer, "name_or_path", None) or None,
        "settings": {
            "batch_tokens": resolve_batch_tokens(options.batch_tokens, adapter.device),
            "device": str(adapter.device),
            "trust_remote_code": False,
        },
        "data": {
            "files": vd.files,
            "in_memory": not vd.files,
            "records": len(vd.records),
            "documents": len(vd.documents),
            "skipped_documents": vd.skipped,
        },
        "engine": {
            "chunked_output_layer": bool(adapter.fast) if adapter.fast is not None else None,
            "output_layer_check_max_abs_diff": adapter.check_max_abs_diff,
        },
        "versions": _versions(),
        "world_size": world,
        "wall_seconds": round(time.perf_counter() - t_start, 3),
    }
    return _result(parts, identity, info)


def _result(parts: list[ScoredPart], identity: dict, info: dict) -> ScoreResult:
    import pandas as pd

    def cat(name, dtype):
        arrays = [getattr(p.scored, name) for p in parts]
        return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)

    tables = [pd.DataFrame({**p.scored.doc_table, **(p.extra or {})}) for p in parts]
    docs = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        {"doc": [], "n_targets": [], "n_bytes": [], "n_words": []}
    )
    return ScoreResult(
        doc=cat("doc", np.int64),
        pos=cat("pos", np.int32),
        token=cat("token", np.int32),
        ce=cat("ce", np.float32),
        rank=cat("rank", np.int32),
        docs=docs,
        identity=identity,
        info=info,
        parts=parts,
    )


def summary_from_store(root: str | Path, checkpoint: str, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> dict:
    """The ``pctce summary`` row of one stored checkpoint, without checkpoint/step/group columns."""
    from pctce_cli.analysis import Checkpoint, checkpoint_summary
    from pctce_cli.store import read_manifest

    manifest = read_manifest(root, checkpoint)
    row = checkpoint_summary(Checkpoint(checkpoint, Path(root), manifest, manifest.get("step"), checkpoint), percentiles)
    for key in ("checkpoint", "step", "group"):
        row.pop(key, None)
    return row


__all__ = [
    "ScoreResult",
    "ScoredPart",
    "ValidationData",
    "as_records",
    "model_fingerprint",
    "prepare_data",
    "records_fingerprint",
    "score_model",
    "scoring_settings",
    "summary_from_store",
    "tokenize_data",
]
__all__ += list(_stats.__all__)  # every statistic is re-exported as is
# Also here, imported on first access (torch, transformers): PercentileCE, PercentileCECallback.


def __getattr__(name: str):
    if name == "PercentileCE":
        from pctce_cli.accumulator import PercentileCE

        return PercentileCE
    if name == "PercentileCECallback":
        from pctce_cli.callback import PercentileCECallback

        return PercentileCECallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
