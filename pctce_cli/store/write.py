"""Writing a partition: run identity, resume, atomic shards with checksums, the manifest last."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

import numpy as np

from pctce_cli import atomic
from pctce_cli.errors import StoreError
from pctce_cli.store.layout import MANIFEST, RUN_STATE, damaged, partition_dir, read_json, sha256_file
from pctce_cli.store.manifest import Manifest, check_manifest


FAULT_ENV = "PCTCE_FAULT"
FAULT_POINTS = ("shard-start", "shard-file-tmp", "shard-tokens-written", "shard-recorded", "manifest-before", "manifest-written")
_fault_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Fault injection for the crash tests: kill this process with SIGKILL (as ``kill -9`` would) at a named point.

    With ``PCTCE_FAULT=NAME`` or ``NAME:N`` in the environment, the N-th time
    (default the first) this process reaches point ``NAME`` of
    :data:`FAULT_POINTS`, it dies on the spot: no cleanup, no ``finally``. The
    tests then rerun the same command and check that no row was lost or doubled.
    Without the variable this is one dictionary lookup.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _fault_hits[name] = _fault_hits.get(name, 0) + 1
    if _fault_hits[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON (indented, sorted keys) to a hidden temporary file, fsync, then rename over ``path``."""
    atomic.write_json(path, obj)


def arrow_column(values):
    """A pyarrow array of ``values``; a 1-d numeric numpy array is wrapped without pyarrow's conversion.

    The wrapped array equals ``pa.array(values)`` (same type, no nulls, the same
    bytes in a Parquet file), but pyarrow's conversion imports pandas on its
    first call (0.15-0.2 s of a scoring run that never uses pandas otherwise).
    """
    import pyarrow as pa

    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iuf" and values.dtype.isnative:
        values = np.ascontiguousarray(values)
        return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])
    return pa.array(values)


def _write_parquet_atomic(path: Path, columns: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({k: arrow_column(v) for k, v in columns.items()})
    with atomic.replacing(path) as tmp:
        # page checksums (CRC32) let any Parquet reader that verifies them catch a damaged page
        pq.write_table(table, tmp, compression="zstd", write_page_checksum=True)
        fault_point("shard-file-tmp")


def partition_state(root: str | Path, checkpoint_id: str, identity: dict) -> tuple[str, Manifest | dict]:
    """Decide what to do with a checkpoint's partition before scoring it.

    Args:
        root: Score directory.
        checkpoint_id: Partition name.
        identity: Fingerprints and result-relevant settings of this run.

    Returns:
        ``("done", manifest)`` when a complete partition has the same identity,
        or the same but for the byte spans and words it was written before
        (:func:`without_units`), and every shard still matches its checksum;
        ``("conflict", manifest)`` when a complete partition has another identity;
        ``("resume", {shard: record})`` for an unfinished partition of the same identity
        (only shards whose files still match their checksums);
        ``("new", {})`` otherwise (an unfinished partition of another identity, or
        with unreadable run state, is discarded).

    Raises:
        StoreError: the partition's manifest or one of its shard files is damaged
            (never reported as "done": re-scoring it needs ``--force``).
    """
    part = partition_dir(root, checkpoint_id)
    man = part / MANIFEST
    if man.is_file():
        manifest = check_manifest(read_json(man, root), man, root, checkpoint_id)
        if not same_scores(manifest.identity, identity):
            return "conflict", manifest
        for rec in manifest.shards:
            for key in ("tokens", "docs"):
                f = part / rec[f"{key}_file"]
                if not f.is_file():
                    raise damaged(root, f"{f} is missing")
                if sha256_file(f) != rec[f"{key}_sha256"]:
                    raise damaged(root, f"{f} does not match its checksum in the manifest")
        return "done", manifest
    run = part / RUN_STATE
    try:
        same = run.is_file() and read_json(run, root).get("identity") == identity
    except StoreError:
        same = False  # run state is only a resume hint: unreadable means start this partition afresh
    if same:
        return "resume", completed_shards(part)
    return "new", {}


def same_scores(stored: dict | None, identity: dict) -> bool:
    """Whether a complete partition of identity ``stored`` holds the numbers a run of ``identity`` would write.

    The shard size only cuts the same rows into files: a partition scored
    with ``--shard-targets 1000`` is the one a run with the default would
    write (adding ``--subset-field`` to it must not need the size repeated).
    A partition written before byte spans and words is kept too
    (:func:`without_units`). Resuming an unfinished partition still needs the
    same shard size (its shards are the plan's).

    >>> same_scores({"data": "d", "settings": {"shard_targets": 1000}}, {"data": "d", "settings": {"shard_targets": 2**20}})
    True
    """
    if stored is None:
        return False
    if "reference" not in identity:  # scored against a reference: the same CE, and its divergence columns besides
        stored = {k: v for k, v in stored.items() if k != "reference"}
    ours = _without_shard_size(identity)
    return _without_shard_size(stored) in (ours, _without_shard_size(without_units(identity)))


def _without_shard_size(identity: dict) -> dict:
    if "settings" not in identity:
        return identity
    return {**identity, "settings": {k: v for k, v in identity["settings"].items() if k != "shard_targets"}}


def without_units(identity: dict) -> dict:
    """``identity`` as a run that stores no byte spans and words would have it (no ``units`` setting).

    A complete partition written before pctce stored them holds the same
    numbers: it is kept ("done"), never silently re-scored; ``--force``
    re-scores it with them. An unfinished one is not resumed (its shards lack
    the columns): it starts afresh.

    >>> without_units({"data": "d", "settings": {"stride": 8, "units": "spec8-v1"}})
    {'data': 'd', 'settings': {'stride': 8}}
    """
    settings = {k: v for k, v in identity.get("settings", {}).items() if k != "units"}
    return {**identity, "settings": settings} if "settings" in identity else identity


def identity_difference(old: dict, new: dict) -> str:
    """What differs between two run identities, for a user: "weights, max_length 64 → 32".

    Examples:
        >>> identity_difference({"data": "a", "settings": {"stride": 8}}, {"data": "b", "settings": {"stride": 4}})
        'data, stride 8 → 4'
    """
    what = [k for k in ("weights", "tokenizer", "data", "documents") if old.get(k) != new.get(k)]
    if old.get("reference") != new.get("reference"):  # --reference (docs/definitions.md#divergence-from-a-reference-model)
        what.append(f"reference model ({str(old.get('reference') or 'none')[:12]} → {str(new.get('reference') or 'none')[:12]})")
    old_s, new_s = old.get("settings", {}), new.get("settings", {})
    what += [f"{k} {old_s.get(k)!r} → {new_s.get(k)!r}" for k in sorted(new_s) if old_s.get(k) != new_s.get(k)]
    return ", ".join(what) or "settings"


def completed_shards(part: Path) -> dict[int, dict]:
    """Shard records of ``part`` whose files exist and match their checksums (others are re-scored)."""
    out = {}
    for rec_path in sorted((part / "_shards").glob("*.json")):
        try:
            rec = read_json(rec_path, part.parent)
            files = [part / rec["tokens_file"], part / rec["docs_file"]]
            sums = [rec["tokens_sha256"], rec["docs_sha256"]]
            shard = int(rec["shard"])
        except (StoreError, KeyError, TypeError, ValueError):
            continue  # a damaged record only means that shard is scored again
        if all(f.is_file() for f in files) and [sha256_file(f) for f in files] == sums:
            out[shard] = rec
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
    # temporaries of a killed run (the caller holds the store's lock, so no live writer owns them)
    for stale in [*part.glob(".*.tmp"), *part.glob("*/.*.tmp")]:
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
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
    fault_point("shard-start")
    tokens_file = f"part-{shard:05d}.parquet"
    docs_file = f"_docs/part-{shard:05d}.parquet"
    columns = {"doc": scored.doc, "pos": scored.pos, "token": scored.token, "ce": scored.ce, "rank": scored.rank}
    if getattr(scored, "nbytes", None) is not None:  # byte spans and words (docs/definitions.md#words-and-bytes), when the tokenizer has offsets
        columns.update(nbytes=scored.nbytes, word=scored.word)
    if getattr(scored, "kl", None) is not None:  # divergence from a reference model (docs/definitions.md#divergence-from-a-reference-model)
        columns.update(kl=scored.kl, dp=scored.dp, same_top1=scored.same_top1)
    _write_parquet_atomic(part / tokens_file, columns)
    fault_point("shard-tokens-written")
    _write_parquet_atomic(part / docs_file, {**scored.doc_table, **(extra_doc_columns or {})})
    ce64 = scored.ce.astype(np.float64)
    rec = {
        "shard": shard,
        "rank": rank,
        "tokens_file": tokens_file,
        "docs_file": docs_file,
        "tokens_sha256": sha256_file(part / tokens_file),
        "docs_sha256": sha256_file(part / docs_file),
        "rows": int(len(scored.ce)),
        "documents": int(len(scored.doc_table["doc"])),
        "ce_sum": float(ce64.sum()),
        **({} if getattr(scored, "nbytes", None) is None else {"empty_span_targets": int(np.count_nonzero(scored.nbytes == 0))}),
        **({} if getattr(scored, "kl", None) is None else {"kl_sum": float(scored.kl.astype(np.float64).sum())}),
        "seconds": round(float(scored.seconds), 4),
    }
    write_json_atomic(part / "_shards" / f"{shard:05d}.json", rec)
    fault_point("shard-recorded")
    return rec


def finish_partition(part: Path, manifest: Manifest | dict, n_shards: int) -> Manifest:
    """Check every shard is recorded, then write the manifest (the completion mark).

    ``manifest`` is everything but the shard records and their totals (a
    :class:`Manifest`, or its JSON object); the manifest written is returned.
    """
    shards = completed_shards(part)
    missing = sorted(set(range(n_shards)) - set(shards))
    if missing:
        raise StoreError(f"{part}: shards {missing[:5]} are missing; rerun the same command to finish them")
    if not isinstance(manifest, Manifest):
        manifest = Manifest.from_json(manifest)
    manifest = manifest.with_shards([shards[k] for k in range(n_shards)])
    fault_point("manifest-before")
    manifest.write(part)
    fault_point("manifest-written")
    with contextlib.suppress(FileNotFoundError):
        (part / RUN_STATE).unlink()
    return manifest
