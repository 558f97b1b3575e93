"""The per-token store (SPEC §6): hive-partitioned Parquet, manifests, lock, readers.

Layout of a score directory ``DIR``::

    DIR/.pctce-lock                         held (flock) by the run writing DIR
    DIR/checkpoint=<id>/part-00000.parquet  one row per target: doc, pos, token, ce, rank
    DIR/checkpoint=<id>/_docs/part-00000.parquet   one row per document
    DIR/checkpoint=<id>/_shards/00000.json  completion record of a shard (checksums)
    DIR/checkpoint=<id>/_run.json           identity of the run in progress (for resume)
    DIR/checkpoint=<id>/_manifest.json      written last: the partition is complete

Names starting with ``_`` or ``.`` are skipped by pyarrow, DuckDB globs such as
``DIR/*/*.parquet`` and Spark, so readers of the dataset see only token rows.
Everything is written to a hidden temporary name and renamed when complete.
This module imports no torch.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fnmatch
import hashlib
import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pctce_cli.errors import StoreError

SCHEMA_VERSION = 1
MANIFEST = "_manifest.json"
RUN_STATE = "_run.json"
LOCK = ".pctce-lock"
TOKEN_COLUMNS = {"doc": "int64", "pos": "int32", "token": "int32", "ce": "float32", "rank": "int32"}


def partition_dir(root: str | Path, checkpoint_id: str) -> Path:
    """``root/checkpoint=<id>``."""
    return Path(root) / f"checkpoint={checkpoint_id}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON to a hidden temporary file, fsync, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_parquet_atomic(path: Path, columns: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------- lock


class StoreLock:
    """An exclusive advisory lock on a score directory, released when the process ends.

    ``flock`` is released by the kernel when its holder dies, so a killed run never
    leaves a stale lock behind.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._fh = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StoreError` naming the holder."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK
        fh = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise StoreError(
                f"{self.root} is being written by another pctce run ({holder}); "
                "wait for it to finish or choose another --out"
            ) from None
        fh.seek(0)
        fh.truncate()
        started = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}, started {started}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fh is not None:
            import fcntl

            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


# ---------------------------------------------------------------- writing


def partition_state(root: str | Path, checkpoint_id: str, identity: dict) -> tuple[str, dict]:
    """Decide what to do with a checkpoint's partition before scoring it.

    Args:
        root: Score directory.
        checkpoint_id: Partition name.
        identity: Fingerprints and result-relevant settings of this run.

    Returns:
        ``("done", manifest)`` when a complete partition has the same identity;
        ``("conflict", manifest)`` when a complete partition has another identity;
        ``("resume", {shard: record})`` for an unfinished partition of the same identity
        (only shards whose files still match their checksums);
        ``("new", {})`` otherwise (an unfinished partition of another identity is discarded).
    """
    part = partition_dir(root, checkpoint_id)
    man = part / MANIFEST
    if man.is_file():
        manifest = json.loads(man.read_text())
        return ("done" if manifest.get("identity") == identity else "conflict"), manifest
    run = part / RUN_STATE
    if run.is_file() and json.loads(run.read_text()).get("identity") == identity:
        return "resume", completed_shards(part)
    return "new", {}


def identity_difference(old: dict, new: dict) -> str:
    """What differs between two run identities, for a user: "weights, max_length 64 → 32".

    Examples:
        >>> identity_difference({"data": "a", "settings": {"stride": 8}}, {"data": "b", "settings": {"stride": 4}})
        'data, stride 8 → 4'
    """
    what = [k for k in ("weights", "tokenizer", "data", "documents") if old.get(k) != new.get(k)]
    old_s, new_s = old.get("settings", {}), new.get("settings", {})
    what += [f"{k} {old_s.get(k)!r} → {new_s.get(k)!r}" for k in sorted(new_s) if old_s.get(k) != new_s.get(k)]
    return ", ".join(what) or "settings"


def completed_shards(part: Path) -> dict[int, dict]:
    """Shard records of ``part`` whose files exist and match their checksums."""
    out = {}
    for rec_path in sorted((part / "_shards").glob("*.json")):
        try:
            rec = json.loads(rec_path.read_text())
        except (json.JSONDecodeError, OSError):
            continue
        files = [part / rec["tokens_file"], part / rec["docs_file"]]
        if all(f.is_file() for f in files) and [_sha256(f) for f in files] == [
            rec["tokens_sha256"],
            rec["docs_sha256"],
        ]:
            out[int(rec["shard"])] = rec
    return out


def start_partition(root: str | Path, checkpoint_id: str, identity: dict, fresh: bool) -> Path:
    """Create (or, when ``fresh``, wipe and recreate) a partition and record the run identity."""
    part = partition_dir(root, checkpoint_id)
    if fresh and part.exists():
        # the manifest goes first, so an interrupted wipe never looks complete
        with contextlib.suppress(FileNotFoundError):
            (part / MANIFEST).unlink()
        shutil.rmtree(part)
    (part / "_shards").mkdir(parents=True, exist_ok=True)
    (part / "_docs").mkdir(exist_ok=True)
    write_json_atomic(part / RUN_STATE, {"identity": identity})
    return part


def write_shard(part: Path, shard: int, rank: int, scored, extra_doc_columns: dict | None = None) -> dict:
    """Write one shard's token rows and document rows atomically, then its record.

    Args:
        part: Partition directory.
        shard: Shard number (deterministic over the data, independent of ranks).
        rank: Process rank that scored it (recorded only).
        scored: A ``ScoredShard`` from the engine.
        extra_doc_columns: More per-document columns (e.g. task accuracy).

    Returns:
        The shard record, also written to ``_shards/<shard>.json``.
    """
    tokens_file = f"part-{shard:05d}.parquet"
    docs_file = f"_docs/part-{shard:05d}.parquet"
    _write_parquet_atomic(
        part / tokens_file,
        {"doc": scored.doc, "pos": scored.pos, "token": scored.token, "ce": scored.ce, "rank": scored.rank},
    )
    _write_parquet_atomic(part / docs_file, {**scored.doc_table, **(extra_doc_columns or {})})
    ce64 = scored.ce.astype(np.float64)
    rec = {
        "shard": shard,
        "rank": rank,
        "tokens_file": tokens_file,
        "docs_file": docs_file,
        "tokens_sha256": _sha256(part / tokens_file),
        "docs_sha256": _sha256(part / docs_file),
        "rows": int(len(scored.ce)),
        "documents": int(len(scored.doc_table["doc"])),
        "ce_sum": float(ce64.sum()),
        "seconds": round(float(scored.seconds), 4),
    }
    write_json_atomic(part / "_shards" / f"{shard:05d}.json", rec)
    return rec


def finish_partition(part: Path, manifest: dict, n_shards: int) -> dict:
    """Check every shard is recorded, then write the manifest (the completion mark)."""
    shards = completed_shards(part)
    missing = sorted(set(range(n_shards)) - set(shards))
    if missing:
        raise StoreError(f"{part}: shards {missing[:5]} are missing; rerun the same command to finish them")
    records = [shards[k] for k in range(n_shards)]
    manifest = dict(manifest)
    manifest["schema_version"] = SCHEMA_VERSION
    manifest["shards"] = records
    manifest["targets"] = int(sum(r["rows"] for r in records))
    manifest["documents"] = int(sum(r["documents"] for r in records))
    manifest["scoring_seconds"] = round(sum(r["seconds"] for r in records), 4)
    write_json_atomic(part / MANIFEST, manifest)
    with contextlib.suppress(FileNotFoundError):
        (part / RUN_STATE).unlink()
    return manifest


# ---------------------------------------------------------------- reading


@dataclass
class Scores:
    """One checkpoint's per-target arrays, per-document table and manifest."""

    checkpoint: str
    doc: np.ndarray
    pos: np.ndarray
    token: np.ndarray
    ce: np.ndarray
    rank: np.ndarray
    docs: "object"  # pandas.DataFrame, one row per document
    manifest: dict


def _require_store(root: Path) -> None:
    if not root.exists():
        raise StoreError(f"score directory not found: {root}")
    if not root.is_dir() or not any(root.glob("checkpoint=*")):
        raise StoreError(f"{root} is not a pctce score directory (no checkpoint=* partitions)")


def list_checkpoints(root: str | Path, include_incomplete: bool = False) -> list[dict]:
    """Manifests of the checkpoints in a store, ordered by step (when known), then name.

    Args:
        root: Score directory.
        include_incomplete: Also list partitions without a manifest, as
            ``{"id": ..., "complete": False}``.

    Raises:
        StoreError: ``root`` is missing or not a score directory.
    """
    root = Path(root)
    _require_store(root)
    out = []
    for part in sorted(root.glob("checkpoint=*")):
        man = part / MANIFEST
        if man.is_file():
            m = json.loads(man.read_text())
            m["complete"] = True
            out.append(m)
        elif include_incomplete:
            out.append({"id": part.name.split("=", 1)[1], "complete": False, "step": None})
    out.sort(key=lambda m: (m.get("step") is None, m.get("step") or 0, m["id"]))
    return out


def match_checkpoints(manifests: list[dict], patterns) -> list[dict]:
    """Keep the manifests whose id matches any glob in ``patterns`` (all when none)."""
    if not patterns:
        return manifests
    out = [m for m in manifests if any(fnmatch.fnmatchcase(m["id"], p) for p in patterns)]
    for p in patterns:
        if not any(fnmatch.fnmatchcase(m["id"], p) for m in manifests):
            names = ", ".join(m["id"] for m in manifests[:8]) + (" …" if len(manifests) > 8 else "")
            raise StoreError(f"--checkpoint '{p}' matches no checkpoint (have: {names})")
    return out


def read_manifest(root: str | Path, checkpoint_id: str) -> dict:
    """The manifest of a complete partition."""
    root = Path(root)
    _require_store(root)
    man = partition_dir(root, checkpoint_id) / MANIFEST
    if not man.is_file():
        if partition_dir(root, checkpoint_id).exists():
            raise StoreError(f"checkpoint '{checkpoint_id}' in {root} is incomplete; rerun pctce score to finish it")
        raise StoreError(f"no checkpoint '{checkpoint_id}' in {root}")
    return json.loads(man.read_text())


def load_scores(root: str | Path, checkpoint_id: str, columns=("doc", "pos", "token", "ce", "rank")) -> Scores:
    """Read one checkpoint's targets (as numpy arrays), documents and manifest.

    Only the shards listed in the manifest are read, so a reader never sees a
    partial or foreign file (:func:`verify_partition` also checks their checksums).

    Args:
        root: Score directory.
        checkpoint_id: Partition name (``checkpoint=<id>``).
        columns: Token columns to read (others come back empty).

    Raises:
        StoreError: the store, the checkpoint or a shard is missing or damaged.
    """
    import pyarrow.parquet as pq

    manifest = read_manifest(root, checkpoint_id)
    part = partition_dir(root, checkpoint_id)
    tok_tables, doc_tables = [], []
    for rec in manifest["shards"]:
        for key in ("tokens", "docs"):
            f = part / rec[f"{key}_file"]
            if not f.is_file():
                raise StoreError(f"{f} is missing; rescore with pctce score --force")
        tok_tables.append(pq.read_table(part / rec["tokens_file"], columns=list(columns)))
        doc_tables.append(pq.read_table(part / rec["docs_file"]))
    import pyarrow as pa

    toks = pa.concat_tables(tok_tables) if tok_tables else None
    docs = pa.concat_tables(doc_tables, promote_options="default").to_pandas() if doc_tables else None

    def col(name, dtype):
        if toks is None or name not in columns:
            return np.zeros(0, dtype)
        return toks.column(name).to_numpy().astype(dtype, copy=False)

    return Scores(
        checkpoint=checkpoint_id,
        doc=col("doc", np.int64),
        pos=col("pos", np.int32),
        token=col("token", np.int32),
        ce=col("ce", np.float32),
        rank=col("rank", np.int32),
        docs=docs,
        manifest=manifest,
    )


def verify_partition(root: str | Path, checkpoint_id: str) -> None:
    """Recompute every shard checksum of a partition against its manifest."""
    manifest = read_manifest(root, checkpoint_id)
    part = partition_dir(root, checkpoint_id)
    for rec in manifest["shards"]:
        for key in ("tokens", "docs"):
            f = part / rec[f"{key}_file"]
            if not f.is_file() or _sha256(f) != rec[f"{key}_sha256"]:
                raise StoreError(f"{f} does not match its checksum in the manifest; rescore with --force")
