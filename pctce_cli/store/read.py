"""Reading a store: the checkpoints it holds and one checkpoint's arrays, verified as they are read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pctce_cli.store.layout import DIVERGENCE_COLUMNS, MANIFEST, RUN_STATE, damaged, lock_is_held, partition_dir, read_json, require_store
from pctce_cli.store.manifest import Manifest, check_labels_record, check_manifest, read_manifest


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
    manifest: Manifest
    weight: np.ndarray | None = None  # per-row weight (paired byte runs, docs/definitions.md#words-and-bytes); None: each row counts once
    kl: np.ndarray | None = None  # divergence from the reference model (store.layout.DIVERGENCE_COLUMNS), when read
    dp: np.ndarray | None = None
    same_top1: np.ndarray | None = None


def list_checkpoints(root: str | Path, include_incomplete: bool = False) -> list[Manifest]:
    """Manifests of the checkpoints in a store, ordered by step (when known), then name.

    A partition being scored or left by an interrupted run (it has ``_run.json``,
    or the store's lock is held) is not complete and is skipped. A partition with
    neither a manifest nor run state is damaged: an error, never silently absent.

    Args:
        root: Score directory.
        include_incomplete: Also list unfinished partitions, as a
            :class:`Manifest` with only an id (``m["complete"]`` is False).

    Raises:
        StoreError: ``root`` is missing or not a score directory, or a partition
            is damaged (the message names the file and what to do).
    """
    root = Path(root)
    require_store(root)
    out = []
    writing = None
    for part in sorted(root.glob("checkpoint=*")):
        ck_id = part.name.split("=", 1)[1]
        man = part / MANIFEST
        if man.is_file():
            out.append(check_manifest(read_json(man, root), man, root, ck_id))
            continue
        if writing is None:
            writing = lock_is_held(root)
        if not (writing or (part / RUN_STATE).is_file()):
            raise damaged(root, f"{man} is missing (the partition is neither complete nor being scored)")
        if include_incomplete:
            out.append(Manifest(ck_id, other={"complete": False, "step": None}))
    out.sort(key=lambda m: (m.step is None, m.step or 0, m.id))
    return out


def incomplete_checkpoints(root: str | Path) -> list[str]:
    """Ids of the partitions of a store still being scored or left by an interrupted run (no manifest yet)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name.split("=", 1)[1] for p in root.glob("checkpoint=*") if p.is_dir() and not (p / MANIFEST).is_file())


def incomplete_notes(roots) -> list[str]:
    """A note per unfinished checkpoint of the stores ``roots``, which complete-only listings leave out."""
    return [
        f"Note: checkpoint '{ck}' in {root} is incomplete (its scoring was interrupted, or is still running) and is left out; "
        "rerun the pctce score command that wrote it to finish it (finished shards are kept)."
        for root in dict.fromkeys(map(str, roots))
        for ck in incomplete_checkpoints(root)
    ]


def incomplete_match(pattern: str, roots) -> str | None:
    """The message for a ``--checkpoint`` glob that matches only unfinished checkpoints (``None`` when it matches none)."""
    import fnmatch

    for root in dict.fromkeys(map(str, roots)):
        hit = [ck for ck in incomplete_checkpoints(root) if fnmatch.fnmatchcase(ck, pattern)]
        if hit:
            return (
                f"--checkpoint '{pattern}' matches only '{hit[0]}' in {root}, which is incomplete (its scoring was "
                "interrupted, or is still running); rerun the pctce score command that wrote it to finish it"
            )
    return None


def read_shard(path: Path, sha256: str | None, rows: int, root: str | Path, columns=None):
    """One shard file as a pyarrow Table, after checking its bytes, pages and row count.

    The file is read once into memory: its SHA-256 is compared with the
    manifest's, then Parquet decodes from that buffer with page checksums on.
    With ``sha256=None`` (a file verified moments ago) only the wanted columns
    are read from disk, pages still checked.

    Raises:
        StoreError: the file is missing, does not match its checksum, is not
            Parquet, or has another row count than the manifest records.
    """
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    source = path
    if sha256 is not None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise damaged(root, f"{path} is missing") from None
        except OSError as e:
            raise damaged(root, f"{path}: cannot read ({e.strerror})") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise damaged(root, f"{path} does not match its checksum in the manifest")
        source = pa.BufferReader(data)
    try:
        # ParquetFile.read, not read_table: read_table runs Arrow's dataset scanner, whose background
        # tasks can outlive the call; a process that exits just after (an error found in another
        # shard) then aborts in Arrow's thread-pool teardown ("terminate called without an active
        # exception", about 1 run in 40). This reader finishes its work before it returns.
        with pq.ParquetFile(source, pre_buffer=False, page_checksum_verification=True) as pf:
            table = pf.read(columns=columns)
    except FileNotFoundError:
        raise damaged(root, f"{path} is missing") from None
    except (pa.ArrowException, OSError, ValueError) as e:
        raise damaged(root, f"{path} cannot be read as Parquet ({str(e).splitlines()[0][:120]})") from None
    if table.num_rows != rows:
        raise damaged(root, f"{path} has {table.num_rows} rows, the manifest records {rows}")
    return table


def column_numpy(column) -> np.ndarray:
    """An Arrow column (array or chunked array) as a numpy array, read-only when it is one chunk.

    A numeric column without nulls is viewed through its data buffer; that is
    what ``to_numpy`` returns too, but ``to_numpy`` imports pandas on its first
    call (0.15-0.2 s of a scoring run that otherwise never needs pandas).
    Anything else (booleans, strings, nulls) goes through ``to_numpy``.
    """
    import pyarrow as pa

    if column.null_count or not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        return column.to_numpy()
    dtype = np.dtype(column.type.to_pandas_dtype())
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [np.frombuffer(c.buffers()[1], dtype, len(c), c.offset * dtype.itemsize) for c in chunks if len(c)]
    if not parts:
        return np.zeros(0, dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def check_values(paths: list[Path], rows: list[int], root, ce: np.ndarray | None, rank: np.ndarray | None, first_row: int = 0) -> None:
    """CE must be finite and ≥ 0 and rank ≥ 0: anything else is damage, never a number to summarize.

    ``ce`` and ``rank`` are the shards' rows concatenated; ``paths`` and ``rows``
    name the shards so that the message points at the file and its row
    (``first_row``: the file row of the arrays' first element, when streaming).
    """
    bad = None
    if ce is not None and ce.size and not (np.isfinite(ce).all() and ce.min() >= 0):
        i = int(np.flatnonzero(~(np.isfinite(ce) & (ce >= 0)))[0])
        bad = i, f"ce = {float(ce[i])!r}, expected a finite value >= 0"
    elif rank is not None and rank.size and rank.min() < 0:
        i = int(np.flatnonzero(rank < 0)[0])
        bad = i, f"rank = {int(rank[i])}, expected >= 0"
    if bad is not None:
        i, what = bad
        k = int(np.searchsorted(np.cumsum(rows), i, side="right"))
        raise damaged(root, f"{paths[k]}: row {first_row + i - sum(rows[:k])}: {what}")


def load_scores(
    root: str | Path, checkpoint_id: str, columns=("doc", "pos", "token", "ce", "rank"), documents: bool = True
) -> Scores:
    """Read one checkpoint's targets (as numpy arrays), documents and manifest, verified.

    Only the shards listed in the manifest are read, so a reader never sees a
    partial or foreign file; each is checked against its SHA-256, its Parquet
    page checksums and its row count, and CE and rank values are validated.

    Args:
        root: Score directory.
        checkpoint_id: Partition name (``checkpoint=<id>``).
        columns: Token columns to read (others come back empty).
        documents: read the per-document table (and labels); ``False`` leaves
            ``docs`` None and spares converting it to pandas.

    Raises:
        StoreError: the store, the checkpoint or a shard is missing or damaged.
    """
    import pyarrow as pa

    manifest = read_manifest(root, checkpoint_id)
    part = partition_dir(root, checkpoint_id)
    tok_tables, tok_paths = [], []
    for rec in manifest.shards:
        tokens_path = part / rec["tokens_file"]
        tok_tables.append(read_shard(tokens_path, rec["tokens_sha256"], rec["rows"], root, list(columns)))
        tok_paths.append(tokens_path)
    toks = pa.concat_tables(tok_tables) if tok_tables else None
    docs = _docs_table(root, part, manifest) if documents else None

    def col(name, dtype):
        if toks is None or name not in columns:
            return np.zeros(0, dtype)
        return column_numpy(toks.column(name)).astype(dtype, copy=False)

    ce, rank = col("ce", np.float32), col("rank", np.int32)
    check_values(tok_paths, [r["rows"] for r in manifest.shards], root, ce if "ce" in columns else None, rank if "rank" in columns else None)
    if "ce" in columns:
        for path, rec, ce_k in zip(tok_paths, manifest.shards, np.split(ce, np.cumsum([r["rows"] for r in manifest.shards])[:-1])):
            check_ce_sum(path, rec, ce_k, root)
    div = {name: col(name, np.dtype(dtype)) for name, dtype in DIVERGENCE_COLUMNS.items() if name in columns}
    if div:
        check_divergence(tok_paths, [r["rows"] for r in manifest.shards], root, div, manifest.shards)
    return Scores(
        checkpoint=checkpoint_id,
        doc=col("doc", np.int64),
        pos=col("pos", np.int32),
        token=col("token", np.int32),
        ce=ce,
        rank=rank,
        docs=docs,
        manifest=manifest,
        **div,
    )


def check_divergence(paths: list[Path], rows: list[int], root, arrays: Mapping, records=None, first_row: int = 0) -> None:
    """Divergence columns must hold what the scorer writes: kl finite and ≥ 0, dp in [-1, 1], same_top1 0 or 1; kl adds up to each record's ``kl_sum``.

    ``arrays`` maps some of ``kl``, ``dp``, ``same_top1`` to the shards' rows
    concatenated (``paths``, ``rows`` name the shards, as in :func:`check_values`; ``first_row``: the
    row of the first value within its shard, for a batch of a streamed shard).
    """
    tests = {
        "kl": (lambda x: np.isfinite(x) & (x >= 0), "a finite value >= 0"),
        "dp": (lambda x: np.isfinite(x) & (np.abs(x) <= 1), "a value in [-1, 1]"),
        "same_top1": (lambda x: (x == 0) | (x == 1), "0 or 1"),
    }
    for name, x in arrays.items():
        ok = tests[name][0](x)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            k = int(np.searchsorted(np.cumsum(rows), i, side="right"))
            raise damaged(root, f"{paths[k]}: row {first_row + i - sum(rows[:k])}: {name} = {x[i].item()!r}, expected {tests[name][1]}")
    if "kl" in arrays and records is not None:
        for path, rec, kl_k in zip(paths, records, np.split(arrays["kl"], np.cumsum(rows)[:-1])):
            want = rec.get("kl_sum")
            got = float(kl_k.astype(np.float64).sum())
            if want is not None and not abs(got - want) <= 1e-12 * max(abs(want), 1.0):
                raise damaged(root, f"{path}: its KL values add up to {got!r}, the manifest records kl_sum {want!r}")


def check_ce_sum(path: Path, rec: Mapping, ce: np.ndarray, root) -> None:
    """A shard's CE must add up to the manifest's ``ce_sum`` (a shard rewritten with a new SHA-256 still fails here).

    The writer summed the same float32 values, in the same order, in float64,
    so the sums agree to rounding; the tolerance (1e-12 of the sum) allows a
    different summation order and is far below any changed value's effect.
    """
    want = rec.get("ce_sum")
    if want is None:  # shard records of the first stores had no sum
        return
    got = float(ce.astype(np.float64).sum())
    if not abs(got - want) <= 1e-12 * max(abs(want), 1.0):
        raise damaged(root, f"{path}: its CE values add up to {got!r}, the manifest records ce_sum {want!r}")


def _docs_table(root, part: Path, manifest: Manifest):
    import pyarrow as pa

    tables = [read_shard(part / rec["docs_file"], rec["docs_sha256"], rec["documents"], root) for rec in manifest.shards]
    try:
        docs = pa.concat_tables(tables, promote_options="default").to_pandas() if tables else None
    except pa.ArrowException as e:
        raise damaged(root, f"{part / '_docs'}: the document tables do not fit together ({str(e)[:120]})") from None
    labels = read_labels(root, manifest, part)
    if labels is not None and docs is not None:
        # subset labels are columns of the per-document table (docs/definitions.md#subsets), kept in their own file
        docs = docs.merge(labels, on="doc", how="left", validate="one_to_one")
    return docs


def read_labels(root: str | Path, manifest: Mapping, part: Path):
    """The labels file of a partition as a DataFrame (``doc`` + one column per field), verified; None without labels.

    Raises:
        StoreError: the file is missing or does not match its checksum.
    """
    rec = manifest.labels if isinstance(manifest, Manifest) else manifest.get("labels")
    if rec is None:
        return None
    check_labels_record(rec, part / MANIFEST, root)
    table = read_shard(part / rec["file"], rec["sha256"], rec["documents"], root)
    missing = [f for f in ["doc", *rec["fields"]] if f not in table.column_names]
    if missing:
        raise damaged(root, f"{part / rec['file']}: no column '{missing[0]}' (the manifest lists it)")
    return table.to_pandas()


def load_docs(root: str | Path, checkpoint_id: str):
    """One checkpoint's per-document table (a DataFrame, verified), without reading its token shards.

    Raises:
        StoreError: the checkpoint or a document table is missing or damaged.
    """
    return _docs_table(root, partition_dir(root, checkpoint_id), read_manifest(root, checkpoint_id))


READ_AHEAD = 2  # shards read ahead while one is summarized (2 cores: reading is about half the work)


def iter_token_batches(root: str | Path, checkpoint_id: str, columns=("ce",), batch_rows: int = 1 << 20, verify: bool = True, check=None):
    """Stream one checkpoint's token columns, a batch at a time, in bounded memory.

    Each shard is read and checked whole (its bytes against the manifest's
    SHA-256 when ``verify``, its Parquet pages always), then decoded
    ``batch_rows`` rows at a time. The next shard is read on a second thread
    while the caller works on this one (:data:`READ_AHEAD` shards ahead, on as
    many threads: hashing and Parquet decoding release the GIL), so reading and
    computing overlap; memory holds at most ``READ_AHEAD + 1`` shards. Row counts and values are checked as in
    :func:`load_scores`. With ``verify=False`` (a second pass over shards just
    verified) only the wanted columns are read from disk. ``check(path, arrays,
    first_row)``, when given, checks each batch's other columns (and raises).

    Yields:
        dicts of column name → numpy array, one per batch.

    Raises:
        StoreError: a missing or damaged shard (named).
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    manifest = read_manifest(root, checkpoint_id)
    part = partition_dir(root, checkpoint_id)
    todo = deque(manifest.shards)
    pool = ThreadPoolExecutor(READ_AHEAD)
    ahead = deque()
    try:
        ahead.extend(pool.submit(_read_tokens, root, part, todo.popleft(), columns, verify) for _ in range(min(READ_AHEAD, len(todo))))
        while ahead:
            path, table = ahead.popleft().result()
            if todo:
                ahead.append(pool.submit(_read_tokens, root, part, todo.popleft(), columns, verify))
            seen = 0
            for batch in table.to_batches(max_chunksize=batch_rows):
                arrays = {name: batch.column(name).to_numpy() for name in columns}
                check_values([path], [batch.num_rows], root, arrays.get("ce"), arrays.get("rank"), first_row=seen)
                if check is not None:
                    check(path, arrays, seen)
                seen += batch.num_rows
                yield arrays
    finally:
        # an error (here or in the caller), or a caller that stops early: the readers still
        # running are finished before anything leaves, so no thread outlives its reader
        for f in ahead:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _read_tokens(root, part: Path, rec: dict, columns, verify: bool):
    """One token shard's wanted columns as a Table, checked (:func:`read_shard`; checksum when ``verify``)."""
    path = part / rec["tokens_file"]
    table = read_shard(path, rec["tokens_sha256"] if verify else None, rec["rows"], root, list(columns))
    if verify and "ce" in columns:
        ce = table.column("ce").to_numpy()
        check_values([path], [len(ce)], root, ce, None)  # the named bad value first, then the sum
        check_ce_sum(path, rec, ce, root)
    return path, table
