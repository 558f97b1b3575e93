"""Fingerprints of validation files and of tokenized documents (what a store manifest records)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from pctce_cli.errors import DataError
from pctce_cli.data.records import Document, unreadable


# --------------------------------------------------------------------------- fingerprints


def data_fingerprint(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> str:
    """SHA-256 over each file's name and bytes, in the order given (streamed).

    Only the base name enters the hash, so moving the data directory keeps the
    fingerprint; renaming or reordering files changes it.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    h = hashlib.sha256()
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise DataError(f"data file not found: {path}")
        name = p.name.encode("utf-8")
        h.update(len(name).to_bytes(8, "little") + name + p.stat().st_size.to_bytes(8, "little"))
        try:
            with open(p, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except OSError as e:
            raise unreadable(path, e) from None
    return h.hexdigest()


def documents_fingerprint(documents: Iterable[Document]) -> str:
    """SHA-256 over every document's index, offset, input ids and target mask: what exactly was scored."""
    h = hashlib.sha256()
    for doc in documents:
        ids = np.ascontiguousarray(doc.input_ids, dtype="<i8")
        targets = np.ascontiguousarray(doc.targets, dtype=np.uint8)
        h.update(np.array([doc.index, doc.offset, len(ids)], dtype="<i8").tobytes())
        h.update(ids.tobytes())
        h.update(targets.tobytes())
    return h.hexdigest()
