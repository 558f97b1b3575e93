"""`PercentileCECallback`: percentile CE and concordance at every evaluation of a transformers Trainer.

At each evaluation (``on_evaluate``) the callback scores the model in memory on
its own validation set, as :func:`pctce_cli.api.score_model` does (the engine
and shard loop of ``pctce score``; nothing is saved or loaded), then

- adds ``eval_pctce/mean``, ``eval_pctce/p50`` … to the evaluation's metrics
  (so ``metric_for_best_model="pctce/p50"`` works) and logs them with
  ``trainer.log``, so every ``report_to`` integration receives them;
- optionally appends the per-token rows to a pctce store as the partition
  ``checkpoint=<run>.step-<global_step>``, which ``pctce summary``,
  ``pctce concord`` and ``pctce select`` read after training;
- warns (Python ``logging``) once the concordance of mean and median over the
  evaluations so far drops below a threshold.

The Trainer logs an evaluation's metrics *before* it calls ``on_evaluate``, and
callbacks are not given the trainer, so the callback logs through a trainer
reference: pass ``trainer=`` or call :meth:`PercentileCECallback.attach`.
Without one, the values still land in the metrics ``trainer.evaluate()``
returns and in ``state.log_history``, but integrations do not see them.

Units: the logged values are per token. The callback scores the text, so the
partitions it stores carry byte spans and words (docs/definitions.md#words-and-bytes) when the tokenizer is
a fast one (:func:`pctce_cli.store.load_units` reads them); the accumulator
:class:`~pctce_cli.accumulator.PercentileCE` keeps tokens only (it sees logits
and labels, never the text), so it has no word or byte units.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

from transformers import TrainerCallback

from pctce_cli.distributed import ProcessGroup, unwrap
from pctce_cli.errors import PctceError, ScoringError, UsageError
from pctce_cli.scoring.memory import model_fingerprint, score_in_memory, scoring_settings
from pctce_cli.scoring.options import DEFAULT_BATCH_TOKENS, DEFAULT_SHARD_TARGETS, ReadOptions, takes_read_options
from pctce_cli.scoring.partition import conflict_message
from pctce_cli.scoring.result import summary_from_store, write_partition
from pctce_cli.scoring.validation import ValidationData, read_data, tokenize_data
from pctce_cli.stats.summaries import DEFAULT_CONCORDANCE_SET, DEFAULT_PERCENTILES, check_qs, percentile_name

logger = logging.getLogger(__name__)


class PercentileCECallback(TrainerCallback):
    """Score the model on a validation set at every evaluation; log percentiles and concordance.

    Args:
        data: Validation data: a path, a list of paths (any format ``pctce score
            --data`` reads), a list of texts or a list of Records.
        tokenizer: The model's tokenizer (default: the Trainer's ``processing_class``).
        trainer: The Trainer, to log through (or call :meth:`attach` later).
        store_dir: A pctce score directory to append each evaluation's per-token
            rows to (partition ``<run>.step-<global_step>``). Only rank 0 writes.
        run_name: Name of the run in partition names (default: ``args.run_name``
            when set, else the name of ``args.output_dir``).
        percentiles: Percentile levels logged as ``pXX`` (default 50, 90, 95, 99).
        concordance_threshold: Warn when C(mean, p50) or C(mean, p50, p95) over
            the evaluations so far drops below this (default 0.6, docs/definitions.md#concordance).
        metric_prefix: Prefix of the logged keys (default ``eval_pctce/``).
        overwrite: Replace a stored partition of the same name made with other
            weights, data or settings (default: keep it and warn).
        text_field, prompt_field, completion_field, messages_field, split_on, prefix,
            max_length, stride, batch_tokens, shard_targets: As in ``pctce score``.

    Examples:
        >>> cb = PercentileCECallback(["a validation text", "another one"])  # doctest: +SKIP
        >>> trainer = Trainer(model, args, train_dataset=ds, eval_dataset=ev, processing_class=tok)  # doctest: +SKIP
        >>> cb.attach(trainer)  # doctest: +SKIP
        >>> trainer.train()  # doctest: +SKIP
    """

    @takes_read_options
    def __init__(
        self,
        data,
        tokenizer=None,
        *,
        trainer=None,
        store_dir: str | Path | None = None,
        run_name: str | None = None,
        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
        concordance_threshold: float = 0.6,
        metric_prefix: str = "eval_pctce/",
        overwrite: bool = False,
        read: ReadOptions,  # text_field=, prompt_field=, … (takes_read_options)
        max_length: int | None = None,
        stride: int | None = None,
        batch_tokens: int | None = DEFAULT_BATCH_TOKENS,
        shard_targets: int = DEFAULT_SHARD_TARGETS,
    ):
        if not 0 <= concordance_threshold <= 1:
            raise UsageError(f"concordance_threshold must be in [0, 1], got {concordance_threshold}")
        # validate and read the data now, so a bad option or file fails before training starts
        self._records, self._files, self._options = read_data(
            data,
            read,
            out=store_dir if store_dir is not None else ".",
            max_length=max_length,
            stride=stride,
            batch_tokens=batch_tokens,
            shard_targets=shard_targets,
        )
        self.tokenizer = tokenizer
        self._trainer = trainer
        self.store_dir = Path(store_dir) if store_dir is not None else None
        self.run_name = run_name
        self.percentiles = [float(q) for q in check_qs(percentiles)]
        self.concordance_threshold = concordance_threshold
        self.metric_prefix = metric_prefix
        self.overwrite = overwrite
        self._data: ValidationData | None = None
        self._history: dict[int, dict] = {}  # global step -> summaries of that evaluation
        self._logged: dict[int, dict] = {}  # global step -> the prefixed values logged for it
        self._warned = False
        self._warned_no_trainer = False

    # ------------------------------------------------------------ wiring

    def attach(self, trainer) -> PercentileCECallback:
        """Log through ``trainer`` (and add this callback to it if it is not there yet)."""
        self._trainer = trainer
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)
        return self

    @property
    def history(self):
        """One row per evaluation so far: step, checkpoint name and the logged summaries (a DataFrame)."""
        import pandas as pd

        rows = [{"step": step, **values} for step, values in sorted(self._history.items())]
        return pd.DataFrame(rows)

    def _tokenizer(self, kwargs):
        tok = self.tokenizer if self.tokenizer is not None else kwargs.get("processing_class")
        if tok is not None and not callable(getattr(tok, "encode", None)):
            tok = getattr(tok, "tokenizer", tok)  # a multimodal processor wraps its tokenizer
        if tok is None:
            raise UsageError(
                "PercentileCECallback needs the model's tokenizer: pass tokenizer=..., "
                "or give the Trainer processing_class=tokenizer"
            )
        return tok

    def _validation(self, kwargs) -> ValidationData:
        if self._data is None:
            self._data = tokenize_data(self._tokenizer(kwargs), self._records, self._files, self._options)
        return self._data

    def _run(self, args) -> str:
        from pctce_cli.checkpoints import safe_id

        name = self.run_name
        if not name and args.run_name and args.run_name != args.output_dir:
            name = args.run_name
        if not name:
            name = Path(args.output_dir or "run").name
        return safe_id(name)

    # ------------------------------------------------------------ events

    def on_train_begin(self, args, state, control, **kwargs):
        """Tokenize the validation data (errors surface now) and recover earlier evaluations of a resumed run."""
        self._validation(kwargs)
        names = self._logged_names()
        for entry in state.log_history or []:
            step = entry.get("step")
            if f"{self.metric_prefix}mean" in entry and step is not None and int(step) not in self._history:
                values = {"checkpoint": f"{self._run(args)}.step-{int(step)}"}
                values.update({k: entry[f"{self.metric_prefix}{k}"] for k in names if f"{self.metric_prefix}{k}" in entry})
                self._history[int(step)] = values

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        """Score the model, log its summaries, store its rows, check concordance."""
        step = int(state.global_step)
        if step in self._logged:  # another eval dataset, or evaluate() again at the same step
            if metrics is not None:
                metrics.update(self._logged[step])
            return
        if model is None:
            raise UsageError("PercentileCECallback.on_evaluate needs the model (the Trainer passes it)")
        summary = self._score(args, state, model, kwargs)
        values = {"checkpoint": summary.pop("_checkpoint")}
        values.update({k: summary[k] for k in self._logged_names() if k in summary})
        self._history[step] = values
        logs = {f"{self.metric_prefix}{k}": float(v) for k, v in values.items() if k != "checkpoint"}
        logs.update(self._concordance(state))
        logs = {k: v for k, v in logs.items() if not math.isnan(v)}
        self._logged[step] = logs
        if metrics is not None:
            metrics.update(logs)
        if self._trainer is not None:
            self._trainer.log(dict(logs))
        else:
            state.log_history.append({**logs, "step": step})
            if not self._warned_no_trainer and state.is_world_process_zero:
                logger.warning(
                    "PercentileCECallback has no trainer to log through: its values are in the evaluation "
                    "metrics and state.log_history, but report_to integrations do not receive them; "
                    "create it with trainer=... or call callback.attach(trainer)"
                )
                self._warned_no_trainer = True

    # ------------------------------------------------------------ work

    def _logged_names(self) -> list[str]:
        return ["mean"] + [percentile_name(q) for q in self.percentiles] + ["iqr", "z95", "top1"]

    def _score(self, args, state, model, kwargs) -> dict:
        """Summaries of this evaluation (the same on every rank); stores the rows on rank 0."""
        data = self._validation(kwargs)
        tokenizer = self._tokenizer(kwargs)
        model = unwrap(model)
        group = ProcessGroup.current()
        rank = group.rank
        checkpoint = f"{self._run(args)}.step-{state.global_step}"
        scoring = dict(
            max_length=self._options.max_length,
            stride=self._options.stride,
            batch_tokens=self._options.batch_tokens,
            shard_targets=self._options.shard_targets,
        )

        _, _, _, settings = scoring_settings(model, data, **scoring)  # bad options fail on every rank alike

        # rank 0 decides whether the store already holds this evaluation (a resumed run)
        decision, weights, summary = "score", "", None
        if rank == 0 and self.store_dir is not None:
            try:
                decision, weights, summary = self._decide(model, data, checkpoint, settings)
            except Exception as e:  # never leave the other ranks waiting in the broadcast
                logger.warning("pctce: cannot check %s in %s (%s); scoring without storing", checkpoint, self.store_dir, e)
                decision, weights, summary = "score", "", None
        decision, weights, summary = group.broadcast((decision, weights, summary))

        if decision != "load":
            result = score_in_memory(
                model, tokenizer, data, distributed=True, weights_fingerprint=weights or "not fingerprinted", **scoring
            )
            error = None
            if rank == 0:
                try:
                    summary = result.summary(self.percentiles)
                except Exception as e:  # never leave the other ranks waiting in the broadcast
                    error = f"{type(e).__name__}: {e}"
                if error is None and decision in ("write", "replace"):
                    self._store(result, args, state, checkpoint, force=decision == "replace")
            summary, error = group.broadcast((summary, error))
            if error:
                raise ScoringError(f"PercentileCECallback at step {state.global_step}: {error}")
        summary["_checkpoint"] = checkpoint
        return summary

    def _decide(self, model, data, checkpoint, settings) -> tuple[str, str, dict | None]:
        """``("load", fp, summary)`` for a complete identical partition, else ``("write"|"replace"|"score", fp, None)``."""
        from pctce_cli.store import partition_state

        weights = model_fingerprint(model)
        identity = {"weights": weights, **data.fingerprints, "settings": settings}
        try:
            state, info = partition_state(self.store_dir, checkpoint, identity)
        except (OSError, ValueError) as e:  # an unreadable manifest: score, and store if we can
            logger.warning("pctce: cannot read the partition %s in %s (%s); scoring again", checkpoint, self.store_dir, e)
            return "replace", weights, None
        if state == "done":
            try:
                return "load", weights, summary_from_store(self.store_dir, checkpoint, self.percentiles)
            except PctceError as e:
                logger.warning("pctce: %s; scoring %s again", e, checkpoint)
                return "replace", weights, None
        if state == "conflict":
            if self.overwrite:
                return "replace", weights, None
            logger.warning(
                "pctce: %s; keeping the stored partition (pass overwrite=True to replace it)",
                conflict_message(checkpoint, info, identity, self.store_dir),
            )
            return "score", weights, None
        return "write", weights, None

    def _store(self, result, args, state, checkpoint: str, force: bool) -> None:
        from pctce_cli.store import StoreLock

        path = Path(args.output_dir or ".").resolve() / f"checkpoint-{state.global_step}"
        try:
            with StoreLock(self.store_dir):
                write_partition(
                    result,
                    self.store_dir,
                    checkpoint,
                    step=int(state.global_step),
                    path=str(path),
                    force=force,
                    source="pctce_cli.callback.PercentileCECallback",
                    run=self._run(args),
                    epoch=state.epoch,
                )
        except (PctceError, OSError) as e:  # a locked or full store must not stop training
            logger.warning("pctce: evaluation at step %s not stored: %s", state.global_step, e)

    def _concordance(self, state) -> dict:
        """C(mean, p50) and C_S over the evaluations so far; warns once they drop below the threshold."""
        import pandas as pd

        from pctce_cli.stats.concordance import concordance

        set_ = list(DEFAULT_CONCORDANCE_SET)
        rows = [{"checkpoint": v.get("checkpoint", str(s)), "step": s, **v} for s, v in sorted(self._history.items())]
        rows = [r for r in rows if all(isinstance(r.get(k), (int, float)) for k in set_)]
        if len(rows) < 2:
            return {}
        table = pd.DataFrame(rows)
        c_mp = concordance(table, ["mean", "p50"]).c
        c_s = concordance(table, set_).c
        low = min(c_mp, c_s) < self.concordance_threshold
        if low and not self._warned:
            if state.is_world_process_zero:
                by_mean = int(table.loc[table["mean"].idxmin(), "step"])
                by_p50 = int(table.loc[table["p50"].idxmin(), "step"])
                logger.warning(
                    "pctce: over %d evaluations C(mean, p50) = %.3f and C(%s) = %.3f, below %.2f: "
                    "mean and median now disagree about which step is best (mean: step %d, p50: step %d); "
                    "pick checkpoints by the summary your task follows (pctce concord / pctce select)",
                    len(table),
                    c_mp,
                    ", ".join(set_),
                    c_s,
                    self.concordance_threshold,
                    by_mean,
                    by_p50,
                )
            self._warned = True
        elif not low:
            self._warned = False  # warn again if it drops once more
        return {
            f"{self.metric_prefix}concordance_mean_p50": float(c_mp),
            f"{self.metric_prefix}concordance_{'_'.join(set_)}": float(c_s),
        }


__all__ = ["PercentileCECallback"]
