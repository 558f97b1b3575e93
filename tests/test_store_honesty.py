"""The manifest is not trusted blindly (issue 23): its checksum, its schema version, the stored sums."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pctce_cli.cli import app
from pctce_cli.store import MANIFEST, SCHEMA_VERSION, Manifest, load_scores, partition_dir, read_manifest, verify_store
from pctce_cli.store.manifest import canonical_sha256
from pctce_cli.testing import reseal
from tests.test_store_integrity import advice, one_line, shard, write_checkpoint

from .cli import run


@pytest.fixture()
def store(tmp_path):
    root = tmp_path / "scores"
    write_checkpoint(root, "base", 0)
    write_checkpoint(root, "cand", 11)  # step 1200
    return root


def manifest_path(root, ck="cand"):
    return partition_dir(root, ck) / MANIFEST


def test_a_new_manifest_carries_the_checksum_of_its_content(store):
    obj = json.loads(manifest_path(store).read_text())
    assert obj["schema_version"] == SCHEMA_VERSION == 2
    assert obj["checksum"] == canonical_sha256(obj)
    m = read_manifest(store, "cand")
    assert isinstance(m, Manifest) and m.step == 1200 and m["step"] == 1200
    assert m.to_json() == obj  # the JSON round-trips exactly


def test_a_flipped_bit_in_the_manifest_is_caught_on_read_and_by_verify(store):
    path = manifest_path(store)
    text = path.read_text()
    assert '"step": 1200' in text
    path.write_text(text.replace('"step": 1200', '"step": 1208'))  # 0x30 -> 0x38: one bit
    fault = f"{path} does not match its checksum (its content was changed after it was written)"
    for args in (["summary", str(store)], ["gate", str(store), "--baseline", "base", "--rule", "mean:+0.01"]):
        res = run(*args)
        assert res.exit_code == 2 and one_line(res.output) == f"Error: {fault}; {advice(store)}"
    ok, problems, _ = verify_store(store)
    assert ok == ["base"] and [(p.checkpoint, p.message) for p in problems] == [("cand", fault)]
    res = run("verify", str(store), "--format", "csv")
    assert res.exit_code == 1 and f"cand,damaged,{fault}" in res.output


@pytest.mark.parametrize("where", range(0, 4000, 97))
def test_every_single_bit_flip_in_the_manifest_is_caught(store, where):
    path = manifest_path(store)
    data = bytearray(path.read_bytes())
    k = where % len(data)
    data[k] ^= 1 << (where % 7)
    path.write_bytes(bytes(data))
    res = run("summary", str(store))
    assert res.exit_code == 2 and "Traceback" not in res.output and str(path) in one_line(res.output)


def test_a_manifest_without_a_checksum_still_reads(store):
    # stores written before the checksum: schema_version 1, no checksum
    path = manifest_path(store)
    obj = json.loads(path.read_text())
    del obj["checksum"]
    obj["schema_version"] = 1
    path.write_text(json.dumps(obj, indent=2, sort_keys=True))
    assert read_manifest(store, "cand").step == 1200
    assert verify_store(store) == (["base", "cand"], [], [])


def test_a_version_2_manifest_without_its_checksum_is_damaged(store):
    path = manifest_path(store)
    obj = json.loads(path.read_text())
    del obj["checksum"]
    path.write_text(json.dumps(obj))
    res = run("summary", str(store))
    assert res.exit_code == 2 and one_line(res.output) == f"Error: {path} has no checksum (schema_version 2 records one); {advice(store)}"


def test_an_unknown_schema_version_is_refused_by_name(store):
    path = manifest_path(store)
    obj = json.loads(path.read_text())
    obj["schema_version"] = 99
    path.write_text(json.dumps(obj))
    res = run("summary", str(store))
    assert res.exit_code == 2 and one_line(res.output) == (
        f"Error: {path}: schema_version 99 is newer than this pctce reads (up to 2); upgrade pctce to read this store"
    )


def test_a_manifest_without_schema_version_is_not_read_as_version_1(store):
    # pctce has written schema_version since its first store: a manifest without one was edited or damaged
    path = manifest_path(store)
    obj = json.loads(path.read_text())
    del obj["schema_version"], obj["checksum"]
    path.write_text(json.dumps(obj))
    res = run("summary", str(store))
    assert res.exit_code == 2 and one_line(res.output) == (
        f"Error: {path} has no schema_version (every pctce manifest records one); {advice(store)}"
    )


def _rewrite_ce(path, scale):
    table = pq.read_table(path)
    ce = table.column("ce").to_numpy() * np.float32(scale)
    table = table.set_column(table.column_names.index("ce"), "ce", pa.array(ce.astype(np.float32)))
    pq.write_table(table, path, compression="zstd", write_page_checksum=True)
    return ce.astype(np.float32)


def _lie_about_values(store, scale):
    """Scale shard 0's CE and recompute its SHA-256 (and the manifest's checksum), not its ce_sum: (path, new sum, recorded sum)."""
    from pctce_cli.store.layout import sha256_file

    path = shard(store)
    want = read_manifest(store, "cand").shards[0]["ce_sum"]
    ce = _rewrite_ce(path, scale)
    part = partition_dir(store, "cand")
    obj = json.loads((part / MANIFEST).read_text())
    obj["shards"][0]["tokens_sha256"] = sha256_file(path)
    Manifest.from_json(obj).write(part)
    return path, float(ce.astype(np.float64).sum()), want


def test_changed_values_with_a_recomputed_sha256_fail_on_ce_sum(store):
    path, got, want = _lie_about_values(store, 1.001)
    fault = f"{path}: its CE values add up to {got!r}, the manifest records ce_sum {want!r}"
    for args in (["summary", str(store)], ["gate", str(store), "--baseline", "base", "--rule", "mean:+0.01"]):
        res = run(*args)
        assert res.exit_code == 2 and one_line(res.output) == f"Error: {fault}; {advice(store)}"
    ok, problems, _ = verify_store(store)
    assert [(p.checkpoint, p.message) for p in problems] == [("cand", fault)]


def test_changed_values_fail_on_ce_sum_when_streamed(store, monkeypatch):
    monkeypatch.setenv("PCTCE_STREAM_ABOVE", "10")
    path, got, want = _lie_about_values(store, 0.5)
    res = run("summary", str(store))
    assert res.exit_code == 2 and one_line(res.output) == f"Error: {path}: its CE values add up to {got!r}, the manifest records ce_sum {want!r}; {advice(store)}"


def test_a_wrong_documents_total_is_damage(store):
    path = manifest_path(store)
    obj = json.loads(path.read_text())
    obj["documents"] += 1
    Manifest.from_json(obj).write(path.parent)  # a valid checksum: only the sum is wrong
    res = run("summary", str(store))
    assert res.exit_code == 2 and one_line(res.output) == (
        f"Error: {path}: 'documents' should be the sum of the shards' documents (40), found 41; {advice(store)}"
    )


def test_reseal_keeps_a_deliberately_edited_store_self_consistent(store):
    _rewrite_ce(shard(store), 2.0)
    reseal(partition_dir(store, "cand"))
    assert verify_store(store) == (["base", "cand"], [], [])
    assert len(load_scores(store, "cand").ce) > 0


# ---------------------------------------------------------------- files the store does not own


def test_verify_lists_every_file_the_store_does_not_own(store):
    import shutil

    part = partition_dir(store, "cand")
    stray = part / "part-00000 (copy).parquet"
    shutil.copy(shard(store), stray)  # the documented glob DIR/*/*.parquet would read it twice
    (part / "_labels").mkdir(exist_ok=True)
    second = part / "_labels" / "labels-0123456789abcdef.parquet"
    second.write_bytes(b"x")
    weird = store / "checkpoint=x"
    weird.write_text("not a partition")
    ok, problems, incomplete = verify_store(store)
    assert ok == ["base", "cand"] and incomplete == []
    assert [(p.checkpoint, p.kind, p.message.split(": ")[0]) for p in problems] == [
        ("", "foreign", str(weird)),
        ("cand", "foreign", str(second)),
        ("cand", "foreign", str(stray)),
    ]
    assert problems[2].message == (
        f"{stray}: a file the store does not own (not named by the manifest; a glob such as DIR/*/*.parquet would read it): "
        "move it out of the store"
    )
    res = run("verify", str(store), "--format", "csv")
    assert res.exit_code == 1 and f"cand,foreign,{stray}: a file the store does not own" in res.output
    assert res.output.count(",foreign,") == 3


def test_an_orphan_labels_file_is_reported_and_by_says_the_store_is_inconsistent(tmp_path):
    from pctce_cli.store import write_labels

    root = tmp_path / "scores"
    write_checkpoint(root, "base", 0)
    write_labels(root, "base", {"domain": ["a", "b"] * 20}, list(range(40)))
    path = manifest_path(root, "base")
    obj = json.loads(path.read_text())
    labels_file = partition_dir(root, "base") / obj.pop("labels")["file"]
    Manifest.from_json(obj).write(path.parent)  # the labels section removed, its file left behind
    ok, problems, _ = verify_store(root)
    assert ok == ["base"] and [(p.kind, p.message.split(": ")[0]) for p in problems] == [("foreign", str(labels_file))]
    res = run("summary", str(root), "--by", "domain")
    assert res.exit_code == 2 and one_line(res.output) == (
        f"Error: --by domain: checkpoint 'base' in {root} has a labels file its manifest does not name ({labels_file}): "
        f"the store is inconsistent (an interrupted labelling, or an edited manifest); run 'pctce verify {root}', "
        "then add the labels again with 'pctce score … --subset-field domain'"
    )


def test_verify_names_the_damaged_file_in_full_at_80_columns(tmp_path):
    root = tmp_path / ("a-rather-long-directory-name-as-ci-runners-have-" * 2) / "scores"
    write_checkpoint(root, "base", 0)
    write_checkpoint(root, "cand", 1)
    path = shard(root)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    res = CliRunner().invoke(app, ["verify", str(root)], terminal_width=80, env={"COLUMNS": "80"})
    assert res.exit_code == 1
    assert "…" not in res.output.replace("score … --force", "")
    want = f"cand: {path} does not match its checksum in the manifest"
    assert "".join(want.split()) in "".join(res.output.split())  # wrapped and folded, but whole


# ---------------------------------------------------------------- an interrupted checkpoint


def test_summary_says_an_interrupted_checkpoint_is_incomplete(store):
    from pctce_cli.store import RUN_STATE

    part = partition_dir(store, "cand")
    manifest_path(store).unlink()  # killed before its manifest: the run state is left, resumable
    (part / RUN_STATE).write_text(json.dumps({"identity": {}}))
    res = run("summary", str(store))
    assert res.exit_code == 0, res.output
    assert (
        f"Note: checkpoint 'cand' in {store} is incomplete (its scoring was interrupted, or is still running) and is left out; "
        "rerun the pctce score command that wrote it to finish it (finished shards are kept)."
    ) in one_line(res.output)
    res = run("summary", str(store), "-c", "cand")
    assert res.exit_code == 2 and one_line(res.output) == (
        f"Error: --checkpoint 'cand' matches only 'cand' in {store}, which is incomplete (its scoring was interrupted, "
        "or is still running); rerun the pctce score command that wrote it to finish it"
    )


# ---------------------------------------------------------------- read-ahead and errors


def _gate_in_a_subprocess(store, env):
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "pctce_cli", "gate", str(store), "--baseline", "base", "--candidate", "cand", "--rule", "mean:+0.01"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=120,
    )


@pytest.mark.slow
def test_a_damaged_shard_read_ahead_never_aborts_the_process(tmp_path):
    """1 run in 40 used to end with SIGABRT: the error left while read-ahead threads still ran. 40 runs, every one clean."""
    import os

    root = tmp_path / "scores"
    write_checkpoint(root, "base", 0, n_docs=400, n_shards=6)
    write_checkpoint(root, "cand", 1, n_docs=400, n_shards=6)
    path = shard(root, k=2)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x08  # a bit flip in the middle of a shard
    path.write_bytes(bytes(data))
    env = {"PCTCE_STREAM_ABOVE": "10", "PYTHONPATH": os.pathsep.join([str(__import__("pathlib").Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    want = f"Error: {path} does not match its checksum in the manifest; {advice(root)}"
    for _ in range(40):
        res = _gate_in_a_subprocess(root, env)
        assert res.returncode == 2 and one_line(res.stderr) == want, (res.returncode, res.stderr[-500:])


def test_a_reader_stopped_early_leaves_no_thread_behind(tmp_path):
    import threading

    from pctce_cli.store import iter_token_batches

    root = tmp_path / "scores"
    write_checkpoint(root, "base", 0, n_docs=200, n_shards=5)
    before = threading.active_count()
    batches = iter_token_batches(root, "base", ("ce",), batch_rows=8)
    next(batches)
    batches.close()  # a caller that stops (or fails) between batches
    assert threading.active_count() == before
