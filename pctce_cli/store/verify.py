"""`pctce verify`: check every partition of a store and list what is damaged, without stopping at the first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pctce_cli.errors import DamagedStoreError, StoreError
from pctce_cli.store.layout import MANIFEST, RUN_STATE, lock_is_held, read_manifest, require_store


@dataclass(frozen=True)
class Problem:
    """One damaged partition: its checkpoint id and the message naming the file."""

    checkpoint: str
    message: str


def verify_partition(root: str | Path, checkpoint_id: str) -> None:
    """Check one complete partition: manifest fields, every shard's checksum, Parquet pages, row counts, values.

    Raises:
        StoreError: naming the first damaged file.
    """
    from pctce_cli.store.read import load_scores

    load_scores(root, checkpoint_id)


def verify_store(root: str | Path, checkpoints=None) -> tuple[list[str], list[Problem], list[str]]:
    """Verify every partition of a store (or those named).

    Args:
        root: Score directory.
        checkpoints: Checkpoint ids to check (default: every partition).

    Returns:
        ``(ok, problems, incomplete)``: ids that verified, one :class:`Problem`
        per damaged partition, and ids still being scored or left by an
        interrupted run (resumable, not damaged).

    Raises:
        StoreError: ``root`` is not a store, or a named checkpoint is absent.
    """
    root = Path(root)
    require_store(root)
    ids = sorted(p.name.split("=", 1)[1] for p in root.glob("checkpoint=*") if p.is_dir())
    if checkpoints:
        missing = [c for c in checkpoints if c not in ids]
        if missing:
            raise StoreError(f"no checkpoint '{missing[0]}' in {root}")
        ids = list(checkpoints)
    ok, problems, incomplete = [], [], []
    writing = lock_is_held(root)
    for ck in ids:
        part = root / f"checkpoint={ck}"
        if not (part / MANIFEST).is_file() and ((part / RUN_STATE).is_file() or writing):
            incomplete.append(ck)
            continue
        try:
            read_manifest(root, ck)
            verify_partition(root, ck)
        except DamagedStoreError as e:
            problems.append(Problem(ck, e.what))
        else:
            ok.append(ck)
    return ok, problems, incomplete
