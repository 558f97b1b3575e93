"""The Python API: score an in-memory model, and the statistics as plain functions.

:func:`score_model` runs the scoring engine of ``pctce score`` on a model you
hold in memory (no save, no load) and returns a :class:`ScoreResult`: the
per-target arrays, the per-document table and ``.summary()``. With the same
options it gives the same numbers as ``pctce score`` on the saved checkpoint:
the same tokenization, windows, shards, batches and output-layer path, through
the same loop (:mod:`pctce_cli.scoring.loop`).
``ScoreResult.to_store`` writes a partition that ``pctce summary``/``concord``/
``select`` read beside partitions written by ``pctce score``.

This module is the public surface only; the implementation lives in
:mod:`pctce_cli.scoring` (``validation``, ``memory``, ``result``). The
statistics of :mod:`pctce_cli.stats` are re-exported here (``summarize``,
``concordance``, ``bootstrap_ci``, ``select``, ``decompose``, …), and the
training-time tools load from here on first access (``PercentileCE``,
``PercentileCECallback``). Importing this module, even with ``*``, does not
import torch; :func:`score_model` does when called.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pctce_cli import stats as _stats
from pctce_cli.stats import *  # noqa: F401,F403  (every statistic is part of this API)
from pctce_cli.scoring.options import (  # torch-free modules: torch is imported inside their functions
    DEFAULT_ACCURACY_MARGIN,
    DEFAULT_BATCH_TOKENS,
    DEFAULT_SHARD_TARGETS,
    ReadOptions,
    takes_read_options,
)
from pctce_cli.scoring.memory import model_fingerprint, scoring_settings
from pctce_cli.scoring.partition import conflict_message  # noqa: F401  (importable here as before)
from pctce_cli.scoring.result import ScoreResult, summary_from_store, write_partition  # noqa: F401  (importable here as before)
from pctce_cli.scoring.loop import ScoredPart
from pctce_cli.scoring.validation import ValidationData, as_records, prepare_data, records_fingerprint, tokenize_data


@takes_read_options  # text_field, prompt_field, completion_field, messages_field, split_on, prefix
def score_model(
    model,
    tokenizer,
    data,
    *,
    read: ReadOptions,
    max_length: int | None = None,
    stride: int | None = None,
    batch_tokens: int | None = DEFAULT_BATCH_TOKENS,
    shard_targets: int = DEFAULT_SHARD_TARGETS,
    task_accuracy: bool = False,
    accuracy_margin: int = DEFAULT_ACCURACY_MARGIN,
    distributed: bool = False,
    weights_fingerprint: str | None = None,
    progress: Callable[[int], None] | None = None,
    reference=None,
    reference_fingerprint: str | None = None,
) -> ScoreResult:
    """Score an in-memory causal LM with the engine of ``pctce score``.

    (Long by its documented arguments; the body is a few lines.)

    The model is scored where it lives (its device and dtype), in eval mode
    (its training mode is restored afterwards), under ``torch.inference_mode``.
    Options mean what the options of ``pctce score`` of the same name mean;
    with them equal, and the model in the dtype ``pctce score`` loads it in
    (float32 on CPU), the numbers equal those of ``pctce score`` on the saved
    checkpoint. (Over 60 lines for its docstring: the public API documents
    every argument here; the body is a few lines.)

    Args:
        model: A transformers causal LM (or a PEFT model, or either wrapped
            in ``DistributedDataParallel``).
        tokenizer: Its tokenizer.
        data: A path, a list of paths, a list of texts, a list of
            :class:`~pctce_cli.data.Record`, or a :class:`ValidationData`
            (its reading settings then win over the keyword arguments).
        text_field, prompt_field, completion_field, messages_field, split_on,
            prefix: How data is read (:class:`~pctce_cli.scoring.options.ReadOptions`).
        max_length: Window length (default: the model's context length).
        stride: Window stride (default: half the window).
        batch_tokens: Token budget per forward pass (None: 2048 on CPU, 16384 on an accelerator).
        shard_targets: Targets per shard; shards are the unit of batching,
            of distribution over ranks and of the store's files.
        task_accuracy: Prompt/completion data: also greedy-decode each prompt
            (``exact_match``/``substring_match`` per document).
        accuracy_margin: With ``task_accuracy``: tokens generated beyond the completion's length.
        distributed: When a ``torch.distributed`` process group is
            initialized, every rank calls this with the same arguments, scores
            a share of the shards, and every rank returns the full result
            (gathered with ``all_gather_object``). Ignored without a group.
        weights_fingerprint: Identity of the weights recorded in the result
            (default: :func:`model_fingerprint`).
        progress: Called with the number of targets scored after each batch.
        reference: A reference model in memory (``pctce score --reference``): on the same batches,
            each target also gets ``kl`` = KL(p_ref ‖ p_model), ``dp`` and ``same_top1``
            (docs/definitions.md#divergence-from-a-reference-model). It must read ``tokenizer``'s ids,
            have the model's vocabulary and live on the model's device; it is scored in eval mode.
        reference_fingerprint: Identity of the reference's weights (default: :func:`model_fingerprint`).

    Returns:
        A :class:`ScoreResult`.

    Raises:
        UsageError, DataError: bad options or data (messages name the parameter).
        ScoringError: non-finite CE or out of memory (one message on every rank).
    """
    from pctce_cli.scoring.memory import score_in_memory

    started = time.perf_counter()
    vd = data if isinstance(data, ValidationData) else prepare_data(tokenizer, data, **vars(read))
    scoring = dict(max_length=max_length, stride=stride, batch_tokens=batch_tokens, shard_targets=shard_targets)
    return score_in_memory(
        model, tokenizer, vd, distributed=distributed, weights_fingerprint=weights_fingerprint, progress=progress,
        started=started, task_accuracy=task_accuracy, accuracy_margin=accuracy_margin, reference=reference,
        reference_fingerprint=reference_fingerprint, **scoring,
    )


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
