"""Subset labels of a partition's documents (docs/definitions.md#subsets): one small file beside the scores.

Labels describe the data, not the model: they never change a CE, so adding a
subset field to a scored partition must not re-score it. They live in their
own file, ``_labels/labels-<hash>.parquet`` (``doc`` plus one string column per subset
field), named in the manifest with its SHA-256; the token and document shards
are never rewritten. Adding fields writes a new labels file under its own
name, then the manifest (the one atomic commit point), then removes the old
file, so a crash at any moment leaves either the old labels or the new ones.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from pctce_cli import atomic
from pctce_cli.errors import StoreError
from pctce_cli.store.layout import partition_dir
from pctce_cli.store.manifest import Manifest, read_manifest
from pctce_cli.store.read import read_labels


def label_fields(manifest: Mapping) -> list[str]:
    """The subset fields a partition's labels file holds (none for stores written before subsets)."""
    if isinstance(manifest, Manifest):
        return manifest.label_fields
    rec = manifest.get("labels")
    return list(rec.get("fields", [])) if isinstance(rec, Mapping) else []


def unnamed_labels(root: str | Path, checkpoint_id: str, manifest: Manifest) -> list[Path]:
    """Labels files in a partition that its manifest does not name (an interrupted labelling, or an edited manifest)."""
    named = (manifest.labels or {}).get("file") if isinstance(manifest.labels, Mapping) else None
    part = partition_dir(root, checkpoint_id)
    return [p for p in sorted((part / "_labels").glob("labels-*.parquet")) if p.relative_to(part).as_posix() != named]


def check_labels_named(cks, option: str, field: str) -> None:
    """Before telling a user to add labels: a checkpoint whose labels file its manifest does not name is an inconsistent store.

    Args:
        cks: Checkpoints (``root``, ``partition``, ``manifest``, ``id``).
        option: The option asking, worded (``--by domain``).
        field: The subset field asked for.

    Raises:
        StoreError: naming the checkpoint and the file.
    """
    for c in cks:
        orphans = unnamed_labels(c.root, c.partition, c.manifest)
        if orphans and field not in c.manifest.label_fields:
            raise StoreError(
                f"{option}: checkpoint '{c.id}' in {c.root} has a labels file its manifest does not name ({orphans[0]}): "
                f"the store is inconsistent (an interrupted labelling, or an edited manifest); run 'pctce verify {c.root}', "
                f"then add the labels again with 'pctce score … --subset-field {field}'"
            )


def write_labels(root: str | Path, checkpoint_id: str, labels: Mapping[str, Sequence[str]], docs: Sequence[int]) -> bool:
    """Add subset label columns to a complete partition without touching its scores.

    Fields already in the partition keep their other columns; a field given
    again is replaced (it comes from the same data: the data fingerprint is
    part of the partition's identity).

    Args:
        root: Score directory (its lock held by the caller).
        checkpoint_id: A complete partition.
        labels: field → one label per entry of ``docs``.
        docs: document indices (the records' indices).

    Returns:
        Whether anything changed (False when the partition held these labels already).
    """
    import pandas as pd

    part = partition_dir(root, checkpoint_id)
    manifest = read_manifest(root, checkpoint_id)
    old = read_labels(root, manifest, part)
    new = pd.DataFrame({"doc": list(map(int, docs)), **{f: list(map(str, v)) for f, v in labels.items()}})
    if old is not None:
        keep = [c for c in old.columns if c != "doc" and c not in labels]
        new = old[["doc", *keep]].merge(new, on="doc", how="outer") if keep else new
    new = new.sort_values("doc", kind="stable").reset_index(drop=True)
    fields = sorted(c for c in new.columns if c != "doc")
    new = new[["doc", *fields]]
    if old is not None and list(old.columns) == list(new.columns) and old.equals(new):
        return False
    data = _parquet_bytes(new)
    sha = hashlib.sha256(data).hexdigest()
    name = f"_labels/labels-{sha[:16]}.parquet"
    (part / "_labels").mkdir(exist_ok=True)
    atomic.write_bytes(part / name, data)
    previous = (manifest.labels or {}).get("file")
    manifest.with_labels({"file": name, "sha256": sha, "fields": fields, "documents": int(len(new))}).write(part)
    if previous and previous != name:
        with contextlib.suppress(FileNotFoundError):
            (part / previous).unlink()
    return True


def _parquet_bytes(df) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({c: pa.array(df[c].tolist(), type=pa.int64() if c == "doc" else pa.string()) for c in df.columns})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_page_checksum=True)
    return buf.getvalue()
