"""Reading the byte spans and words of a partition (docs/definitions.md#words-and-bytes): whether it holds them, and the arrays.

Partitions scored with a fast tokenizer hold two more token columns,
``nbytes`` and ``word`` (:data:`pctce_cli.store.layout.UNIT_COLUMNS`), and
their manifest says so (``units.available``). Partitions scored with a slow
tokenizer, or before pctce recorded them, do not: asking them for words or
bytes is an error naming the checkpoint and the reason (the tokenizer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.store.layout import damaged, partition_dir
from pctce_cli.store.manifest import Manifest, read_manifest
from pctce_cli.store.read import check_ce_sum, check_values, column_numpy, read_shard


@dataclass
class UnitScores:
    """One checkpoint's per-target CE with byte counts and word indices, sorted by (doc, pos)."""

    checkpoint: str
    doc: np.ndarray  # int64 (N,)
    ce: np.ndarray  # float32 (N,)
    nbytes: np.ndarray  # int32 (N,), 0 for an empty span
    word: np.ndarray  # int32 (N,), -1 for a target in no word
    docs: object  # pandas.DataFrame, one row per document (n_empty among its columns)
    manifest: Manifest


def units_unavailable(manifest: Manifest | dict) -> str | None:
    """Why a partition holds no byte spans and words, or ``None`` when it does.

    Example:
        >>> units_unavailable({"units": {"available": True, "rule": "spec8-v1"}}) is None
        True
        >>> units_unavailable({"id": "a"})
        'it was scored before pctce recorded byte spans and words'
    """
    units = manifest.units if isinstance(manifest, Manifest) else manifest.get("units")
    if isinstance(units, dict) and units.get("available") is True:
        return None
    if isinstance(units, dict) and units.get("reason"):
        return str(units["reason"])
    return "it was scored before pctce recorded byte spans and words"


def require_units(manifest: Manifest, unit: str, root: str | Path) -> None:
    """Raise :class:`UsageError` unless the partition of ``manifest`` holds the byte spans and words that ``unit`` (``word`` or ``byte``) needs.

    Only units made from the spans ask (:attr:`pctce_cli.units.Unit.spans`); tokens are always available.
    """
    reason = units_unavailable(manifest)
    if reason is not None:
        if "slow tokenizer" in reason:
            remedy = "re-score it with a fast tokenizer (--tokenizer)"
        elif "chat template" in reason:
            remedy = "score chat data with a template that renders the messages verbatim"
        else:  # scored before spans were recorded, or with them turned off: scoring again records them
            remedy = f"re-score it with 'pctce score … --out {root} --force'"
        raise UsageError(
            f"--unit {unit}: checkpoint '{manifest.id}' in {root} has no byte spans and words "
            f"({reason}); {remedy}, or use --unit token",
            param="unit",
        )


def load_units(root: str | Path, checkpoint_id: str, unit: str = "word") -> UnitScores:
    """Read one checkpoint's ``doc``, ``ce``, ``nbytes`` and ``word`` columns, verified as :func:`load_scores` does.

    Args:
        root: Score directory.
        checkpoint_id: Partition name.
        unit: The unit asked for (``word`` or ``byte``), for the error message.

    Raises:
        UsageError: the partition holds no byte spans (:func:`require_units`).
        StoreError: the store, the checkpoint or a shard is missing or damaged.
    """
    import pyarrow as pa

    from pctce_cli.store.read import load_docs

    manifest = read_manifest(root, checkpoint_id)
    require_units(manifest, unit, root)
    part = partition_dir(root, checkpoint_id)
    columns = ["doc", "ce", "nbytes", "word"]
    tables, paths = [], []
    for rec in manifest.shards:
        path = part / rec["tokens_file"]
        tables.append(read_shard(path, rec["tokens_sha256"], rec["rows"], root, columns))
        paths.append(path)
    toks = pa.concat_tables(tables) if tables else None

    def col(name, dtype):
        return np.zeros(0, dtype) if toks is None else column_numpy(toks.column(name)).astype(dtype, copy=False)

    ce, nbytes, word = col("ce", np.float32), col("nbytes", np.int32), col("word", np.int32)
    rows = [r["rows"] for r in manifest.shards]
    check_values(paths, rows, root, ce, None)
    for path, rec, ce_k in zip(paths, manifest.shards, np.split(ce, np.cumsum(rows)[:-1])):
        check_ce_sum(path, rec, ce_k, root)
    for name, arr, low in (("nbytes", nbytes, 0), ("word", word, -1)):
        if arr.size and arr.min() < low:
            i = int(np.flatnonzero(arr < low)[0])
            k = int(np.searchsorted(np.cumsum(rows), i, side="right"))
            raise damaged(root, f"{paths[k]}: row {i - sum(rows[:k])}: {name} = {int(arr[i])}, expected >= {low}")
    return UnitScores(checkpoint_id, col("doc", np.int64), ce, nbytes, word, load_docs(root, checkpoint_id), manifest)


def iter_unit_batches(root: str | Path, checkpoint_id: str, unit: str, columns=("doc", "ce", "nbytes", "word"), batch_rows: int = 1 << 20, verify: bool = True, check_more=None):
    """Stream one checkpoint's unit columns a batch at a time (:func:`~pctce_cli.store.read.iter_token_batches`), verified as :func:`load_units` does.

    ``check_more(path, arrays, first_row)``, when given, checks each batch's other columns too.

    Raises:
        UsageError: the partition holds no byte spans (:func:`require_units`), at once.
        StoreError: a missing or damaged shard, or an ``nbytes`` < 0 or ``word`` < -1 (named with its file and row).
    """
    from pctce_cli.store.read import iter_token_batches

    require_units(read_manifest(root, checkpoint_id), unit, root)

    def check(path, arrays, first_row):
        for name, low in (("nbytes", 0), ("word", -1)):
            arr = arrays.get(name)
            if arr is not None and arr.size and arr.min() < low:
                i = int(np.flatnonzero(arr < low)[0])
                raise damaged(root, f"{path}: row {first_row + i}: {name} = {int(arr[i])}, expected >= {low}")
        if check_more is not None:  # the caller's checks of its other columns (the divergence's)
            check_more(path, arrays, first_row)

    return iter_token_batches(root, checkpoint_id, columns, batch_rows, verify, check=check)


__all__ = ["UnitScores", "iter_unit_batches", "load_units", "require_units", "units_unavailable"]
