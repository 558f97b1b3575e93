"""Small synthetic stores (no model) for the streamed ``--by``/``--subset``/``--ci`` tests: shards written directly."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

SETTINGS = {
    "prefix": "auto", "text_field": "text", "prompt_field": None, "completion_field": None, "messages_field": "messages",
    "split_on": "none", "max_length": 2048, "stride": 1024, "units": "spec8-v1",
}  # fmt: skip


def write_store(root: Path, n_targets: int, n_docs: int, n_shards: int = 3, seed: int = 0, labels: int = 4, ck: str = "ck-a", tied: bool = False, units: bool = False) -> dict:
    """One checkpoint of ``n_targets`` targets in ``n_docs`` documents (lengths long-tailed), with a ``domain`` field.

    Documents differ in difficulty (so the bootstrap is clustered); with ``tied``
    CE takes few distinct values (many equal order statistics); with ``units`` the
    manifest says byte spans and words are stored (each target a word of one byte). Returns the arrays.
    """
    from pctce_cli.store import finish_partition, start_partition, write_labels, write_shard

    rng = np.random.default_rng(seed)
    w = rng.lognormal(0.0, 1.0, n_docs)
    counts = 1 + rng.multinomial(n_targets - n_docs, w / w.sum())
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), counts)
    ce = rng.lognormal(0.0, 1.0, n_targets) * rng.lognormal(0.0, 0.4, n_docs)[doc]
    if tied:
        ce = np.round(ce, 1)
    ce = ce.astype(np.float32)
    rank = rng.geometric(np.clip(np.exp(-ce.astype(np.float64)), 1e-3, 1.0)).astype(np.int32) - 1
    cum = np.r_[0, np.cumsum(counts)]
    doc_cuts = np.r_[0, np.sort(rng.choice(np.arange(1, n_docs), n_shards - 1, replace=False)), n_docs]
    part = start_partition(root, ck, {"weights": f"w-{seed}"}, fresh=True)
    for k in range(n_shards):
        da, db = int(doc_cuts[k]), int(doc_cuts[k + 1])
        a, b = int(cum[da]), int(cum[db])
        scored = SimpleNamespace(
            doc=doc[a:b], pos=np.zeros(b - a, np.int32), token=np.zeros(b - a, np.int32), ce=ce[a:b], rank=rank[a:b],
            nbytes=np.ones(b - a, np.int32), word=np.arange(b - a, dtype=np.int32),
            doc_table={"doc": np.arange(da, db, dtype=np.int64), "n_targets": counts[da:db].astype(np.int64),
                       "n_bytes": 4 * counts[da:db].astype(np.int64), "n_words": counts[da:db].astype(np.int64),
                       "n_empty": np.zeros(db - da, np.int64)},
            seconds=0.0,
        )  # fmt: skip
        write_shard(part, k, 0, scored)
    fp = {"data": "d" * 64, "tokenizer": "t" * 64, "documents": "x" * 64, "weights": f"w-{seed}"}
    manifest = {"id": ck, "step": 100, "path": f"/ck/{ck}", "tokenizer_path": "/tok", "fingerprints": fp, "settings": SETTINGS,
                "data": {"files": ["/data/val.jsonl"]}, "units": {"available": True, "rule": SETTINGS["units"]} if units else {"available": False, "reason": "synthetic"}}  # fmt: skip
    finish_partition(part, manifest, n_shards)
    domain = [f"d{k}" for k in rng.choice(labels, n_docs, p=rng.dirichlet(np.full(labels, 2.0)))]
    write_labels(root, ck, {"domain": domain}, range(n_docs))
    return {"doc": doc, "ce": ce, "rank": rank, "domain": np.asarray(domain)}
