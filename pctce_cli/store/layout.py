"""Store layout: names, the lock, checksums, and reading a store JSON file that may be damaged."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import socket
from pathlib import Path

from pctce_cli.errors import DamagedStoreError, StoreError

MANIFEST = "_manifest.json"
RUN_STATE = "_run.json"
LOCK = ".pctce-lock"
TOKEN_COLUMNS = {"doc": "int64", "pos": "int32", "token": "int32", "ce": "float32", "rank": "int32"}
# Token columns written when the tokenizer gives offsets (docs/definitions.md#words-and-bytes): a target's byte-span length and its
# word's index within the document (-1: none). Stores written before them, or with a slow tokenizer, lack
# them; the manifest's "units" says which (see pctce_cli.store.units).
UNIT_COLUMNS = {"nbytes": "int32", "word": "int32"}
# Token columns written when a run scores against a reference model (docs/definitions.md#divergence-from-a-reference-model from a
# reference model): KL(p_ref ‖ p_cand) in nats, the change in the target's probability, top-1 agreement (0/1).
# Stores scored without --reference lack them; the manifest's "reference" names the model they were taken against.
DIVERGENCE_COLUMNS = {"kl": "float32", "dp": "float32", "same_top1": "int8"}

# a partition's subset labels (store.labels): in a subdirectory, as _docs/, because DuckDB's
# OUT/*/*.parquet glob does not skip _-prefixed files and would mix them with token rows
LABELS_FILE = re.compile(r"^_labels/labels-[0-9a-f]{16}\.parquet$")


def partition_dir(root: str | Path, checkpoint_id: str) -> Path:
    """``root/checkpoint=<id>``."""
    return Path(root) / f"checkpoint={checkpoint_id}"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def damaged(root: str | Path, what: str) -> DamagedStoreError:
    """The one message for a damaged partition: what is wrong, then what to do."""
    return DamagedStoreError(
        f"{what}; the store is damaged: run 'pctce verify {root}' to list every damaged file, "
        "then re-score the checkpoint with 'pctce score … --force'",
        what,
    )


def require_store(root: Path) -> None:
    """Raise :class:`StoreError` unless ``root`` is a directory holding ``checkpoint=*`` partitions."""
    if not root.exists():
        raise StoreError(f"score directory not found: {root}")
    if not root.is_dir() or not any(root.glob("checkpoint=*")):
        raise StoreError(f"{root} is not a pctce score directory (no checkpoint=* partitions)")


def read_json(path: Path, root: str | Path) -> dict:
    """A store JSON file as a dict, or a :func:`damaged` error naming it."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise damaged(root, f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise damaged(root, f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except OSError as e:
        raise StoreError(f"{path}: cannot read ({e.strerror})") from None
    if not isinstance(obj, dict):
        raise damaged(root, f"{path} holds a JSON {type(obj).__name__}, expected an object")
    return obj


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

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fh = open(self.root / LOCK, "a+", encoding="utf-8")
        except OSError as e:
            raise StoreError(f"{self.root}: cannot create the score directory ({e.strerror})") from None
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


def lock_is_held(root: str | Path) -> bool:
    """Whether a pctce run is writing ``root`` now (its lock is taken)."""
    import fcntl

    path = Path(root) / LOCK
    if not path.is_file():
        return False
    try:
        with open(path, encoding="utf-8") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except OSError:
        return False
    return False
