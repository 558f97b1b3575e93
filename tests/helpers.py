"""Building test inputs without a model, the one home for it: synthetic stores, read-counting spies, close-number comparators."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from pctce_cli.store import finish_partition, start_partition, write_shard

SETTINGS = {
    "prefix": "auto",
    "text_field": "text",
    "prompt_field": None,
    "completion_field": None,
    "messages_field": "messages",
    "split_on": "none",
    "max_length": 64,
    "stride": 32,
}


def make_store(root, ck_id, ce, doc, *, token=None, rank=None, n_bytes=None, step=None, fingerprints=None, settings=None, shards=1):
    """Write a synthetic but complete pctce store partition from numpy arrays.

    ``doc`` must be sorted (the store's order); ``pos`` counts targets within each document.
    Returns the score directory.
    """
    root = Path(root)
    ce = np.asarray(ce, dtype=np.float32)
    doc = np.asarray(doc, dtype=np.int64)
    ids, starts, counts = np.unique(doc, return_index=True, return_counts=True)
    pos = (np.arange(len(doc)) - np.repeat(starts, counts)).astype(np.int32)
    token = np.asarray(token if token is not None else (doc * 7 + pos) % 300, dtype=np.int32)
    rank = np.asarray(rank if rank is not None else np.zeros(len(ce)), dtype=np.int32)
    n_bytes = np.asarray(n_bytes if n_bytes is not None else 4 * counts, dtype=np.int64)
    fp = {"data": "d" * 64, "tokenizer": "t" * 64, "documents": "x" * 64, "weights": f"w-{ck_id}"}
    fp.update(fingerprints or {})
    part = start_partition(root, ck_id, {"weights": fp["weights"]}, fresh=True)
    doc_groups = np.array_split(np.arange(len(ids)), shards)
    for k, g in enumerate(doc_groups):
        sel = np.isin(doc, ids[g])
        scored = SimpleNamespace(
            doc=doc[sel], pos=pos[sel], token=token[sel], ce=ce[sel], rank=rank[sel],
            doc_table={"doc": ids[g], "n_targets": counts[g], "n_bytes": n_bytes[g], "n_words": counts[g]},
            seconds=0.0,
        )
        write_shard(part, k, 0, scored)
    manifest = {
        "id": ck_id,
        "step": step,
        "path": f"/checkpoints/{ck_id}",
        "tokenizer_path": "/checkpoints/tokenizer",
        "fingerprints": fp,
        "settings": {**SETTINGS, **(settings or {})},
        "data": {"files": ["/data/val.jsonl"]},
    }
    finish_partition(part, manifest, shards)
    return root


def docs_of(n_docs, per_doc):
    """Sorted document ids: ``n_docs`` documents of ``per_doc`` targets each."""
    return np.repeat(np.arange(n_docs), per_doc)


def count_shard_reads(monkeypatch, *modules) -> dict[str, int]:
    """Count ``read_shard`` calls by path, in each module given (default ``pctce_cli.store.read``).

    Returns the dict the spies fill: path → number of reads. A module that
    imported ``read_shard`` by name (``store.units``) needs its own spy.
    """
    from pctce_cli.store import read

    reads: dict[str, int] = {}

    def counting(real):
        def f(path, *args, **kw):
            reads[str(path)] = reads.get(str(path), 0) + 1
            return real(path, *args, **kw)

        return f

    for module in modules or (read,):
        monkeypatch.setattr(module, "read_shard", counting(module.read_shard))
    return reads
