"""`pctce verify`: check every partition of a store and list what is damaged, without stopping at the first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pctce_cli.errors import DamagedStoreError, StoreError
from pctce_cli.store.layout import LOCK, MANIFEST, RUN_STATE, lock_is_held, require_store
from pctce_cli.store.manifest import Manifest, read_manifest

# what a foreign file risks: the documented globs read every *.parquet of a partition
FOREIGN = "a file the store does not own (not named by the manifest; a glob such as DIR/*/*.parquet would read it): move it out of the store"


@dataclass(frozen=True)
class Problem:
    """One damaged partition, or one file the store does not own: its checkpoint id and the message naming the file.

    ``kind`` is ``"damaged"`` or ``"foreign"``; ``checkpoint`` is ``""`` for a
    file beside the partitions.
    """

    checkpoint: str
    message: str
    kind: str = "damaged"


def owned_files(manifest: Manifest) -> set[str]:
    """The files of a complete partition, relative to it: manifest, shards, shard records, labels."""
    owned = {MANIFEST}
    for rec in manifest.shards:
        owned |= {rec["tokens_file"], rec["docs_file"], f"_shards/{int(rec.get('shard', -1)):05d}.json"}
    if isinstance(manifest.labels, dict) and isinstance(manifest.labels.get("file"), str):
        owned.add(manifest.labels["file"])
    return owned


def foreign_files(root: Path, checkpoint_id: str, manifest: Manifest) -> list[Path]:
    """Files in a complete partition that its manifest does not own (hidden temporaries of a killed run excepted)."""
    part = root / f"checkpoint={checkpoint_id}"
    owned = owned_files(manifest)
    found = []
    for path in sorted(part.rglob("*")):
        rel = path.relative_to(part).as_posix()
        if path.is_dir() and rel in ("_docs", "_shards", "_labels"):
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            continue  # a killed run's temporary: readers skip it, the next run removes it
        if rel not in owned:
            found.append(path)
    return found


def stray_entries(root: Path) -> list[Path]:
    """Entries beside the partitions that are not the store's: anything but ``checkpoint=<id>`` directories and the lock."""
    return sorted(p for p in root.iterdir() if not (p.name == LOCK or (p.is_dir() and p.name.startswith("checkpoint="))))


def verify_partition(root: str | Path, checkpoint_id: str) -> None:
    """Check one complete partition: manifest fields, every shard's checksum, Parquet pages, row counts, values.

    Raises:
        StoreError: naming the first damaged file.
    """
    from pctce_cli.store.layout import DIVERGENCE_COLUMNS, TOKEN_COLUMNS
    from pctce_cli.store.read import load_scores

    divergence = tuple(DIVERGENCE_COLUMNS) if read_manifest(root, checkpoint_id).reference else ()  # scored with --reference
    s = load_scores(root, checkpoint_id, columns=(*TOKEN_COLUMNS, *divergence))
    check_geometry(root, checkpoint_id, s.doc, s.pos, s.docs)


def check_geometry(root, checkpoint_id: str, doc, pos, docs) -> None:
    """Every target must lie inside its document's recorded input (``1 <= pos + prefix_offset < n_input``), where
    the document table records them (docs/definitions.md#position-in-the-context; older stores do not: nothing to check).

    Raises:
        StoreError: naming the document tables and the first document that does not fit its rows.
    """
    import numpy as np

    from pctce_cli.store.layout import damaged, partition_dir

    if docs is None or not {"n_input", "prefix_offset"} <= set(docs.columns) or docs[["n_input", "prefix_offset"]].isna().any().any() or not len(doc):
        return
    ids = np.asarray(docs["doc"], dtype=np.int64)
    n_input = np.full(int(max(ids.max(), np.max(doc))) + 1, -1, np.int64)
    offset = np.zeros_like(n_input)
    n_input[ids] = docs["n_input"].to_numpy(np.int64)
    offset[ids] = docs["prefix_offset"].to_numpy(np.int64)
    i = np.asarray(pos, np.int64) + offset[doc]
    bad = (i < 1) | (i >= n_input[doc])
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise damaged(root, f"{partition_dir(root, checkpoint_id) / '_docs'}: document {int(doc[j])} records {int(n_input[doc[j]])} input tokens, but has a target at position {int(pos[j])}")


def identical_in_store(root: str | Path, ids) -> list[str]:
    """:func:`identical_weights` of the named complete partitions of a store (read from their manifests)."""
    manifests = [read_manifest(root, ck) for ck in ids]
    return identical_weights([(m.id, m.weights_fingerprint, (m.hub or {}).get("commit")) for m in manifests])


def verify_store(root: str | Path, checkpoints=None) -> tuple[list[str], list[Problem], list[str]]:
    """Verify every partition of a store (or those named).

    Args:
        root: Score directory.
        checkpoints: Checkpoint ids to check (default: every partition).

    Returns:
        ``(ok, problems, incomplete)``: ids that verified, one :class:`Problem`
        per damaged partition and per file the store does not own (a stray
        copy of a shard, a second labels file: :func:`foreign_files`), and ids
        still being scored or left by an interrupted run (resumable, not damaged).

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
    if not checkpoints:
        problems += [Problem("", f"{p}: {FOREIGN}", "foreign") for p in stray_entries(root)]
    writing = lock_is_held(root)
    for ck in ids:
        part = root / f"checkpoint={ck}"
        if not (part / MANIFEST).is_file() and ((part / RUN_STATE).is_file() or writing):
            incomplete.append(ck)
            continue
        try:
            manifest = read_manifest(root, ck)
            verify_partition(root, ck)
        except DamagedStoreError as e:
            problems.append(Problem(ck, e.what))
            continue
        ok.append(ck)
        problems += [Problem(ck, f"{p}: {FOREIGN}", "foreign") for p in foreign_files(root, ck, manifest)]
    return ok, problems, incomplete


def identical_weights(items) -> list[str]:
    """Notes naming the checkpoints that share one weights fingerprint (:func:`weight_groups`'s sentences)."""
    return [note for _, note in weight_groups(items)]


def weight_groups(items) -> list[tuple[list[str], str]]:
    """The groups of checkpoints that share one weights fingerprint, each with a sentence naming them.

    Published runs sometimes serve the same weights under several revisions (or swap
    shards); their numbers are then one model's twice, not two points of a trajectory.

    Args:
        items: ``(name, weights_fingerprint, commit_or_None)`` per checkpoint, in display order.

    Returns:
        ``(names, sentence)`` per group of two or more checkpoints with equal fingerprints,
        in the order of each group's first member; empty when all differ.

    Example:
        >>> identical_weights([("a", "f1", None), ("b", "f2", None), ("c", "f1", None)])
        ['a and c have identical weights (fingerprint f1)']
        >>> weight_groups([("s1", "ff", "c" * 40), ("s2", "ff", "d" * 40), ("s3", "ff", "e" * 40)])
        [(['s1', 's2', 's3'], 's1, s2 and s3 have identical weights (fingerprint ff; commits ccccccc, ddddddd and eeeeeee)')]
    """
    groups: dict[str, list[tuple[str, str | None]]] = {}
    for name, fp, commit in items:
        if fp:
            groups.setdefault(fp, []).append((name, commit))
    out = []
    for fp, members in groups.items():
        names = list(dict.fromkeys(n for n, _ in members))
        if len(names) < 2:
            continue
        commits = [c[:7] for _, c in members if c]
        how = f"fingerprint {fp[:8]}" + (f"; commits {_and(commits)}" if len(commits) == len(members) else "")
        out.append((names, f"{_and(names)} have identical weights ({how})"))
    return out


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
