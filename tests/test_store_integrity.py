"""A store that cannot lie (issue 14): damaged files are errors naming the file, never numbers or "already scored".

The fault probe, kept as tests: random single-bit flips in a shard, truncated
shards, garbled and emptied manifests, a deleted manifest, out-of-range values
written with a valid checksum, and `pctce verify`.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pctce_cli.errors import DamagedStoreError, StoreError
from pctce_cli.store import (
    MANIFEST,
    RUN_STATE,
    finish_partition,
    list_checkpoints,
    load_scores,
    partition_dir,
    partition_state,
    start_partition,
    verify_store,
    write_shard,
)

from .cli import run

IDENTITY = {"weights": "w", "tokenizer": "t", "data": "d", "documents": "x", "settings": {"prefix": "bos"}}


def write_checkpoint(root: Path, ck: str, seed: int, n_docs: int = 40, n_shards: int = 2, ce=None) -> None:
    """A synthetic partition written by the store's own writer (what `pctce score` writes, minus the model)."""
    lengths = np.random.default_rng(1000).integers(5, 30, n_docs)  # the same documents in every checkpoint
    rng = np.random.default_rng(seed)
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    pos = np.concatenate([np.arange(n, dtype=np.int32) for n in lengths])
    values = rng.gamma(2.0, 1.5, len(doc)).astype(np.float32) if ce is None else np.asarray(ce, np.float32)
    rank = rng.integers(0, 50, len(doc)).astype(np.int32)
    part = start_partition(root, ck, IDENTITY | {"weights": f"w{seed}"}, fresh=True)
    bounds = np.linspace(0, n_docs, n_shards + 1).astype(int)
    for k in range(n_shards):
        rows = (doc >= bounds[k]) & (doc < bounds[k + 1])
        ids = np.arange(bounds[k], bounds[k + 1], dtype=np.int64)
        scored = SimpleNamespace(
            doc=doc[rows], pos=pos[rows], token=pos[rows] % 97, ce=values[rows], rank=rank[rows],
            doc_table={"doc": ids, "n_targets": lengths[ids].astype(np.int64), "n_bytes": lengths[ids] * 4, "n_words": lengths[ids]},
            seconds=0.0,
        )
        write_shard(part, k, 0, scored)
    manifest = {"id": ck, "step": 100 * (seed + 1), "identity": IDENTITY | {"weights": f"w{seed}"},
                "fingerprints": {"data": "d", "tokenizer": "t", "documents": "x", "weights": f"w{seed}"},
                "settings": {"prefix": "bos"}}
    finish_partition(part, manifest, n_shards)


@pytest.fixture()
def store(tmp_path):
    root = tmp_path / "scores"
    write_checkpoint(root, "base", 0)
    write_checkpoint(root, "cand", 1)
    return root


def shard(root: Path, ck: str = "cand", k: int = 0) -> Path:
    return partition_dir(root, ck) / f"part-{k:05d}.parquet"


def one_line(output: str) -> str:
    assert "Traceback" not in output
    return " ".join(output.split())


def advice(root) -> str:
    return f"the store is damaged: run 'pctce verify {root}' to list every damaged file, then re-score the checkpoint with 'pctce score … --force'"


def test_an_intact_store_reads_and_verifies(store):
    s = load_scores(store, "cand")
    assert s.ce.min() >= 0 and len(s.ce) == s.manifest["targets"]
    assert verify_store(store) == (["base", "cand"], [], [])
    res = run("verify", str(store), "--format", "json")
    assert res.exit_code == 0, res.output
    assert [r["status"] for r in json.loads(res.output)[f"Verified {store}"]] == ["ok", "ok"]


@pytest.mark.slow
def test_twenty_random_bit_flips_are_all_detected(store):
    """Every single-bit flip anywhere in a shard: exit 2 naming the file, and gate never passes."""
    path = shard(store)
    original = path.read_bytes()
    intact = run("gate", str(store), "--baseline", "base", "--rule", "mean:+0.01")
    assert intact.exit_code in (0, 1) and "Error" not in intact.output  # the gate itself works on this store
    rng = random.Random(20261201)
    for _ in range(20):
        bit = rng.randrange(len(original) * 8)
        damaged = bytearray(original)
        damaged[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(damaged))
        with pytest.raises(DamagedStoreError, match="does not match its checksum"):
            load_scores(store, "cand")
        res = run("summary", str(store), "--format", "json")
        assert res.exit_code == 2 and one_line(res.output) == f"Error: {path} does not match its checksum in the manifest; {advice(store)}"
        res = run("gate", str(store), "--baseline", "base", "--rule", "mean:+0.01")
        assert res.exit_code == 2 and one_line(res.output) == f"Error: {path} does not match its checksum in the manifest; {advice(store)}"
    path.write_bytes(original)
    assert len(load_scores(store, "cand").ce) > 0


def test_a_truncated_shard_is_named(store):
    path = shard(store, k=1)
    path.write_bytes(path.read_bytes()[:100])
    res = run("summary", str(store))
    assert res.exit_code == 2 and one_line(res.output) == f"Error: {path} does not match its checksum in the manifest; {advice(store)}"
    ok, problems, incomplete = verify_store(store)
    assert ok == ["base"] and [p.checkpoint for p in problems] == ["cand"] and incomplete == []
    res = run("verify", str(store), "--format", "csv")
    assert res.exit_code == 1 and f"cand,damaged,{path} does not match its checksum in the manifest" in res.output


@pytest.mark.parametrize(
    "text, fault",
    [
        ("{", " is not valid JSON (line 1, column 2: Expecting property name enclosed in double quotes)"),
        ("{}", ": 'id' should be 'cand' (the partition's name), found 'nothing'"),
        ("[1, 2]", " holds a JSON list, expected an object"),
        ('{"id": "cand", "shards": "x"}', ": 'shards' should be a list of shard records, found 'x'"),
    ],
)
def test_a_garbled_manifest_is_named(store, text, fault):
    man = partition_dir(store, "cand") / MANIFEST
    man.write_text(text)
    for args in (["summary", str(store)], ["gate", str(store), "--baseline", "base", "--rule", "mean:+0.01"]):
        res = run(*args)
        assert res.exit_code == 2 and one_line(res.output) == f"Error: {man}{fault}; {advice(store)}"


def test_a_manifest_cannot_point_outside_its_partition(store):
    man = partition_dir(store, "cand") / MANIFEST
    m = json.loads(man.read_text())
    m["shards"][0]["tokens_file"] = "../checkpoint=base/part-00000.parquet"
    man.write_text(json.dumps(m))
    with pytest.raises(DamagedStoreError, match=r"shards\[0\].tokens_file should name a part-NNNNN.parquet file"):
        load_scores(store, "cand")


def test_a_deleted_manifest_is_an_error_not_an_absence(store):
    man = partition_dir(store, "cand") / MANIFEST
    man.unlink()
    res = run("summary", str(store))
    assert res.exit_code == 2
    assert one_line(res.output) == f"Error: {man} is missing (the partition is neither complete nor being scored); {advice(store)}"
    # an interrupted run (its run state is there) is resumable, not damaged: skipped, and verify says so
    (partition_dir(store, "cand") / RUN_STATE).write_text(json.dumps({"identity": IDENTITY}))
    assert [m["id"] for m in list_checkpoints(store)] == ["base"]
    assert verify_store(store) == (["base"], [], ["cand"])


@pytest.mark.parametrize("bad, what", [(-0.5, "ce = -0.5, expected a finite value >= 0"), (math.nan, "ce = nan, expected a finite value >= 0"), (math.inf, "ce = inf, expected a finite value >= 0")])
def test_impossible_values_with_valid_checksums_are_refused(tmp_path, bad, what):
    n = int(np.random.default_rng(1000).integers(5, 30, 40).sum())  # write_checkpoint's documents
    ce = np.full(n, 1.0, np.float32)
    ce[n - 3] = bad
    write_checkpoint(tmp_path, "x", 3, ce=ce)
    with pytest.raises(DamagedStoreError) as e:
        load_scores(tmp_path, "x")
    assert e.value.what.endswith(what) and "part-00001.parquet: row " in e.value.what


def test_rescoring_never_calls_a_damaged_partition_done(store):
    m = json.loads((partition_dir(store, "cand") / MANIFEST).read_text())
    assert partition_state(store, "cand", m["identity"])[0] == "done"
    path = shard(store, k=1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedStoreError, match="does not match its checksum"):
        partition_state(store, "cand", m["identity"])
    # garbled run state of an unfinished partition is only a lost resume hint
    (partition_dir(store, "base") / MANIFEST).unlink()
    (partition_dir(store, "base") / RUN_STATE).write_text("{garbled")
    assert partition_state(store, "base", IDENTITY) == ("new", {})


def test_verify_names_unknown_checkpoints_and_non_stores(store, tmp_path):
    res = run("verify", str(store), "-c", "nope")
    assert res.exit_code == 2 and one_line(res.output) == f"Error: no checkpoint 'nope' in {store}"
    res = run("verify", str(tmp_path / "none"))
    assert res.exit_code == 2 and one_line(res.output) == f"Error: score directory not found: {tmp_path / 'none'}"
    with pytest.raises(StoreError):
        verify_store(tmp_path)


def test_streaming_reads_the_same_rows_and_catches_the_same_damage(store):
    from pctce_cli.store.read import iter_token_batches

    batches = list(iter_token_batches(store, "cand", ("ce", "rank"), batch_rows=64))
    s = load_scores(store, "cand")
    assert np.array_equal(np.concatenate([b["ce"] for b in batches]), s.ce)
    assert np.array_equal(np.concatenate([b["rank"] for b in batches]), s.rank)
    path = shard(store, k=1)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedStoreError, match="does not match its checksum"):
        list(iter_token_batches(store, "cand"))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint32", "uint64"])
def test_a_wrapped_numpy_column_writes_the_same_parquet_bytes_as_pyarrows_conversion(dtype):
    import io

    from pctce_cli.store.write import arrow_column

    values = (np.arange(2_000) % 97).astype(dtype)[::-1]  # a reversed view: not contiguous in memory order
    files = []
    for arr in (arrow_column(values), pa.array(values)):
        buf = io.BytesIO()
        pq.write_table(pa.table({"x": arr}), buf, compression="zstd", write_page_checksum=True)
        files.append(buf.getvalue())
    assert files[0] == files[1]
    assert arrow_column(values).equals(pa.array(values))


def test_arrow_column_leaves_what_it_cannot_wrap_to_pyarrow():
    from pctce_cli.store.write import arrow_column

    assert arrow_column(np.array([True, False, True])).equals(pa.array([True, False, True]))
    assert arrow_column(["a", "b"]).equals(pa.array(["a", "b"]))
    assert arrow_column(np.arange(6).reshape(2, 3)[:, 0]).equals(pa.array([0, 3]))  # strided 1-d


@pytest.mark.parametrize(
    "column",
    [
        pa.chunked_array([pa.array(np.arange(5, dtype=np.float32)), pa.array(np.arange(3, dtype=np.float32))]),
        pa.chunked_array([pa.array(np.arange(7, dtype=np.int64))]).slice(2, 4),
        pa.array(np.arange(9, dtype=np.int32)).slice(3),
        pa.chunked_array([pa.array([], pa.int16()), pa.array(np.arange(3, dtype=np.int16))]),
        pa.chunked_array([], pa.float64()),
        pa.chunked_array([pa.array([True, False])]),
        pa.chunked_array([pa.array([1.5, None])]),
    ],
    ids=["two-chunks", "sliced-chunked", "sliced-array", "empty-chunk", "no-chunks", "bool", "nulls"],
)
def test_column_numpy_equals_to_numpy(column):
    from pctce_cli.store.read import column_numpy

    got, want = column_numpy(column), column.to_numpy()
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
