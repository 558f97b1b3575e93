"""The scores of one in-memory scoring: :class:`ScoreResult`, its summary row and its partition.

``score_model`` and the training callback score into a
:class:`~pctce_cli.scoring.loop.MemorySink`; :func:`assemble` turns the parts
into a :class:`ScoreResult`. :meth:`ScoreResult.to_store` writes them with the
sink ``pctce score`` writes through and the partition decisions it takes
(:mod:`pctce_cli.scoring.partition`), so the partition is one ``pctce score``
could have written. The summary row is :func:`pctce_cli.stats.row.summary_row`,
the one ``pctce summary`` prints. Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pctce_cli.errors import StoreError, UsageError
from pctce_cli.scoring.partition import build_manifest, conflict_message, open_partition
from pctce_cli.scoring.loop import ScoredPart, StoreSink
from pctce_cli.stats.row import summary_row
from pctce_cli.stats.units import UNITS
from pctce_cli.stats.divergence import DIVERGENCE_PERCENTILES, divergence_row
from pctce_cli.store.layout import DIVERGENCE_COLUMNS, TOKEN_COLUMNS, UNIT_COLUMNS
from pctce_cli.stats.summaries import DEFAULT_PERCENTILES
from pctce_cli.units import UNIT_TYPES

# summary_row's bookkeeping of the bootstrap, which ScoreResult.summary has never returned
_CI_BOOKKEEPING = ("_ci_method", "_ci_error")


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
        info: Everything else a store manifest records (data, engine, timing,
            ``units``: whether byte spans and words were recorded, and why not).
        nbytes, word: Per target, its byte-span length and word index (docs/definitions.md#words-and-bytes;
            -1: in no word), or ``None`` when the tokenizer gives no offsets.
        kl, dp, same_top1: Per target, the divergence from the reference model
            (``score_model(reference=…)``; docs/definitions.md#divergence-from-a-reference-model), else ``None``.
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
    nbytes: np.ndarray | None = None
    word: np.ndarray | None = None
    kl: np.ndarray | None = None
    dp: np.ndarray | None = None
    same_top1: np.ndarray | None = None

    def __len__(self) -> int:
        return int(len(self.ce))

    def summary(self, percentiles: Sequence[float] | None = None, ci: float | None = None,
                n_boot: int = 1000, seed: int = 0, ci_summaries: Sequence[str] | None = None,
                unit: str = "token", value: str = "ce") -> dict:
        """The row ``pctce summary`` prints for this checkpoint.

        ``targets``, ``documents``, ``mean``, ``ppl``, one ``pXX`` per level,
        ``iqr``, ``z95``, ``top1``, ``bpb``, ``byte_ppl``, ``word_ppl`` (and
        ``acc_exact_match``/``acc_substring_match`` with task accuracy); with
        ``ci`` also ``<summary>_lo``/``<summary>_hi`` document-level bootstrap
        bounds, as ``pctce summary --ci``.

        With ``unit="word"`` or ``"byte"`` (docs/definitions.md#words-and-bytes): the summary of the word
        or byte distribution instead (:func:`pctce_cli.stats.summarize` with
        that unit: ``n`` words or bytes, ``mean``, ``ppl``, percentiles, ``iqr``,
        ``z95``), plus ``targets``, ``documents`` and ``empty_span_targets``.

        With ``value="kl"`` or ``"dp"`` (scores of ``score_model(reference=…)``): the row of
        ``pctce summary --value kl|dp`` (:meth:`divergence_summary`). ``percentiles`` default:
        50, 90, 95, 99 for CE; 50, 90, 95, 99, 99.9 for a divergence.

        Raises:
            UsageError: a word or byte unit for scores without byte spans (a
                slow tokenizer: the message names it), or ``ci`` with them.
        """
        if value != "ce":
            return self.divergence_summary(value, percentiles, ci, n_boot, seed, unit)
        percentiles = DEFAULT_PERCENTILES if percentiles is None else percentiles
        if unit not in UNITS:
            raise UsageError(f"unit must be one of {', '.join(UNITS)}; got {unit!r}", param="unit")
        if UNIT_TYPES[unit].spans:
            return self._unit_summary(unit, percentiles, ci)
        row = summary_row(
            self.ce, self.doc, self.rank, docs=self.docs, percentiles=percentiles,
            ci=ci, n_boot=n_boot, seed=seed, ci_summaries=ci_summaries,
        )
        for key in _CI_BOOKKEEPING:
            row.pop(key, None)
        return row

    def divergence_summary(self, value: str = "kl", percentiles: Sequence[float] | None = None, ci: float | None = None,
                           n_boot: int = 1000, seed: int = 0, unit: str = "token") -> dict:
        """The row ``pctce summary --value kl|dp`` prints: ``targets`` (or ``words``), ``documents``, ``mean``,
        the percentiles, ``max`` and ``same_top1`` (tokens), with ``ci`` document-bootstrap bounds.

        Raises:
            UsageError: scores without a reference model, an unknown value, or a unit the value has no form in.
        """
        from pctce_cli.values import value_named

        kind = value_named(value)
        if self.kl is None:
            raise UsageError(f"value {kind.column}: these scores were made without a reference model; pass reference to score_model", param=("value", "reference"))
        if unit not in ("token", "word") or (unit == "word" and not kind.word_sum):
            raise UsageError(f"value {kind.column} with unit {unit}: {kind.label} has no {unit} form; use unit token" + (" or word" if kind.word_sum else ""), param=("value", "unit", "unit"))
        values, doc, same = getattr(self, kind.column), self.doc, self.same_top1
        if unit == "word":  # a word's KL: the sum of its tokens' (docs/definitions.md#divergence-from-a-reference-model)
            from pctce_cli.stats.units import word_ce

            if self.word is None:
                raise UsageError("unit 'word' needs byte spans and words, which were not recorded", param="unit")
            values, doc = word_ce(values, doc, self.word)[:2]
            same = None
        row = divergence_row(values, doc, same, DIVERGENCE_PERCENTILES if percentiles is None else percentiles, ci, n_boot, seed)
        return {("words" if unit == "word" else "targets"): row.pop("n"), "documents": int(len(self.docs)), **row}

    def _unit_summary(self, unit: str, percentiles: Sequence[float], ci: float | None) -> dict:
        from pctce_cli.stats import summarize

        if self.nbytes is None or self.word is None:
            reason = self.info.get("units", {}).get("reason", "the scores hold no byte spans")
            raise UsageError(f"unit {unit!r} needs byte spans and words, which were not recorded: {reason}", param="unit")
        if ci is not None:
            raise UsageError(f"ci is computed in tokens only; leave it out with unit {unit!r}", param="ci")
        s = summarize(self.ce, None, percentiles, unit=unit, doc=self.doc, word=self.word, nbytes=self.nbytes)
        s.pop("top1", None)
        docs = int(len(self.docs))
        return {"targets": len(self), "documents": docs, **s, "empty_span_targets": int(np.count_nonzero(self.nbytes == 0))}

    def manifest(self, checkpoint: str, step: int | None = None, path: str | None = None, **extra) -> dict:
        """The manifest :meth:`to_store` writes (before the store adds shard records and totals)."""
        return build_manifest(
            checkpoint=checkpoint,
            path=path,
            step=step,
            kind=self.info.get("kind", "model"),
            base_model=None,
            tokenizer_path=self.info.get("tokenizer_path"),
            identity=self.identity,
            method="sha256; weights: the in-memory state dict, tensors over 256 MiB by 64 sampled 1 MiB "
            "blocks; data given in memory: its records' content",
            run_settings=self.info["settings"],
            data=self.info["data"],
            engine=self.info["engine"],
            versions=self.info["versions"],
            world_size=self.info["world_size"],
            wall_seconds=self.info["wall_seconds"],
            units=self.info.get("units"),
            **({"reference": self.info["reference"]} if "reference" in self.info else {}),
            **{"source": "pctce_cli.api.score_model", **extra},  # a caller may name itself the source
        )

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
    """:meth:`ScoreResult.to_store` without taking the lock (the caller holds it).

    Returns:
        ``"written"`` or ``"skipped"`` (see :meth:`ScoreResult.to_store`).

    Raises:
        StoreError: the store holds ``checkpoint`` made with another identity (and not ``force``).
    """
    from pctce_cli.store import finish_partition, partition_dir

    decision = open_partition(out, checkpoint, result.identity, force=force, resume=False)
    if decision.kind == "done":
        return "skipped"
    if decision.kind == "conflict":
        raise StoreError(conflict_message(checkpoint, decision.manifest, result.identity, out))
    sink = StoreSink(partition_dir(out, checkpoint))
    for p in sorted(result.parts, key=lambda p: p.shard):
        sink.put(p)
    manifest = result.manifest(checkpoint, step, None if path is None else str(path), **extra)
    finish_partition(sink.part, manifest, len(result.parts))
    return "written"


def assemble(parts: list[ScoredPart], identity: dict, info: dict) -> ScoreResult:
    """A :class:`ScoreResult` from every rank's parts, in shard order."""
    import pandas as pd

    parts = sorted(parts, key=lambda p: p.shard)

    def cat(name, dtype):
        arrays = [getattr(p.scored, name) for p in parts]
        return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)

    # the store's token columns, in the dtypes load_scores returns
    columns = {name: cat(name, np.dtype(dtype)) for name, dtype in TOKEN_COLUMNS.items()}
    # byte spans and words when every part has them (a run records them for all its shards or none)
    if parts and all(getattr(p.scored, "nbytes", None) is not None for p in parts):
        columns.update({name: cat(name, np.dtype(dtype)) for name, dtype in UNIT_COLUMNS.items()})
    # the divergence from a reference model when the parts were scored against one
    if parts and all(getattr(p.scored, "kl", None) is not None for p in parts):
        columns.update({name: cat(name, np.dtype(dtype)) for name, dtype in DIVERGENCE_COLUMNS.items()})

    tables = [pd.DataFrame({**p.scored.doc_table, **(p.extra or {})}) for p in parts]
    docs = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        {"doc": [], "n_targets": [], "n_bytes": [], "n_words": []}
    )
    return ScoreResult(**columns, docs=docs, identity=identity, info=info, parts=parts)


def summary_from_store(root: str | Path, checkpoint: str, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> dict:
    """The ``pctce summary`` row of one stored checkpoint, without checkpoint/step/group columns.

    Raises:
        StoreError: the store, the checkpoint or a shard is missing or damaged.
    """
    from pctce_cli.store import load_scores

    s = load_scores(root, checkpoint, columns=("doc", "ce", "rank"))
    return summary_row(s.ce, s.doc, s.rank, docs=s.docs, percentiles=percentiles)


__all__ = ["ScoreResult", "ScoredPart", "assemble", "summary_from_store", "write_partition"]
