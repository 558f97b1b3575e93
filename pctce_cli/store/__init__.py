"""The per-token store (docs/definitions.md#per-token-store): hive-partitioned Parquet, manifests, lock, readers, verification.

Layout of a score directory ``DIR``::

    DIR/.pctce-lock                         held (flock) by the run writing DIR
    DIR/checkpoint=<id>/part-00000.parquet  one row per target: doc, pos, token, ce, rank
                                            (+ nbytes, word: byte span and word, docs/definitions.md#words-and-bytes)
    DIR/checkpoint=<id>/_docs/part-00000.parquet   one row per document
    DIR/checkpoint=<id>/_shards/00000.json  completion record of a shard (checksums)
    DIR/checkpoint=<id>/_run.json           identity of the run in progress (for resume)
    DIR/checkpoint=<id>/_manifest.json      written last: the partition is complete (store.manifest)
    DIR/checkpoint=<id>/_labels/labels-<hash>.parquet  subset labels of the documents (optional, docs/definitions.md#subsets)

Names starting with ``_`` or ``.`` are skipped by pyarrow, DuckDB globs such as
``DIR/*/*.parquet`` and Spark, so readers of the dataset see only token rows.
Everything is written to a hidden temporary name and renamed when complete.

A store cannot lie: every read checks each shard file against the SHA-256 in
the manifest, Parquet page checksums, the row counts and the values (CE finite
and ≥ 0, rank ≥ 0); a damaged partition is an error naming the file and what to
do, never silently absent or "already scored". This package imports no torch.
"""

from pctce_cli.store.layout import (
    LOCK,
    MANIFEST,
    RUN_STATE,
    TOKEN_COLUMNS,
    UNIT_COLUMNS,
    DIVERGENCE_COLUMNS,
    StoreLock,
    partition_dir,
)
from pctce_cli.store.manifest import SCHEMA_VERSION, Manifest, read_manifest
from pctce_cli.store.labels import check_labels_named, label_fields, unnamed_labels, write_labels
from pctce_cli.store.read import (
    Scores,
    incomplete_checkpoints,
    incomplete_match,
    incomplete_notes,
    iter_token_batches,
    list_checkpoints,
    load_docs,
    load_scores,
    read_labels,
)
from pctce_cli.store.units import UnitScores, iter_unit_batches, load_units, require_units, units_unavailable
from pctce_cli.store.verify import Problem, identical_in_store, identical_weights, verify_partition, verify_store, weight_groups
from pctce_cli.store.write import (
    completed_shards,
    finish_partition,
    identity_difference,
    partition_state,
    start_partition,
    write_json_atomic,
    write_shard,
)

__all__ = [
    "LOCK",
    "MANIFEST",
    "Manifest",
    "RUN_STATE",
    "SCHEMA_VERSION",
    "TOKEN_COLUMNS",
    "UNIT_COLUMNS",
    "DIVERGENCE_COLUMNS",
    "UnitScores",
    "Problem",
    "Scores",
    "StoreLock",
    "check_labels_named",
    "completed_shards",
    "finish_partition",
    "identity_difference",
    "incomplete_checkpoints",
    "incomplete_match",
    "incomplete_notes",
    "label_fields",
    "list_checkpoints",
    "iter_token_batches",
    "identical_in_store",
    "identical_weights",
    "iter_unit_batches",
    "load_docs",
    "load_scores",
    "load_units",
    "partition_dir",
    "partition_state",
    "read_labels",
    "read_manifest",
    "require_units",
    "start_partition",
    "units_unavailable",
    "unnamed_labels",
    "verify_partition",
    "verify_store",
    "write_json_atomic",
    "write_labels",
    "weight_groups",
    "write_shard",
]
