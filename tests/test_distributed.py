"""`pctce score` under torchrun: 2 CPU processes (gloo) write disjoint shards of one partition."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pctce_cli.store import load_scores

from .conftest import TEXTS


@pytest.mark.slow
def test_two_ranks_score_disjoint_shards_that_equal_one_process(tiny_ckpt, tmp_path):
    data = tmp_path / "val.txt"
    data.write_text("\n\n".join(TEXTS * 2), encoding="utf-8")
    common = [str(tiny_ckpt), "--data", str(data), "--split-on", "blank-lines", "--shard-targets", "40", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "pctce_cli", "score"]
    r = subprocess.run(cmd + common + ["--out", str(tmp_path / "ddp")], capture_output=True, text=True, env=env, timeout=300)
    why = [line for line in r.stderr.splitlines() if any(k in line for k in ("Error", "error:", "terminate", "Abort", "gloo"))]
    assert r.returncode == 0, "\n".join(why[:20]) + "\n" + r.stderr[-1500:]
    r1 = subprocess.run([sys.executable, "-m", "pctce_cli", "score"] + common + ["--out", str(tmp_path / "one")], capture_output=True, text=True, env=env, timeout=300)
    assert r1.returncode == 0, r1.stderr[-2000:]
    ddp, one = load_scores(tmp_path / "ddp", "tiny"), load_scores(tmp_path / "one", "tiny")
    assert ddp.manifest["world_size"] == 2
    ranks = [s["rank"] for s in ddp.manifest["shards"]]
    assert set(ranks) == {0, 1}
    # one row per target, each scored by exactly one rank, equal to the single-process scores
    np.testing.assert_array_equal(ddp.doc, one.doc)
    np.testing.assert_array_equal(ddp.pos, one.pos)
    np.testing.assert_allclose(ddp.ce, one.ce, atol=1e-6)
    assert ddp.manifest["identity"] == one.manifest["identity"]


@pytest.mark.slow
def test_bad_input_under_torchrun_is_the_one_line_error_on_every_rank(tiny_ckpt, tmp_path):
    # both ranks fail before scoring; each tears down the group it made, without
    # waiting at a barrier, and exits 2 with the message (no abort, no hang)
    missing = tmp_path / "nope.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "pctce_cli", "score"]
    r = subprocess.run(
        cmd + [str(tiny_ckpt), "--data", str(missing), "--out", str(tmp_path / "out"), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode != 0
    assert r.stderr.count(f"Error: data file not found: {missing}") == 2, r.stderr[-2000:]
    assert "exitcode  : 2" in r.stderr
    assert "terminate called" not in r.stderr
    # the only traceback is torchrun's own report that a child failed
    assert not [line for line in r.stderr.splitlines() if line.strip().startswith("File") and "pctce_cli" in line]


def test_without_a_process_group_every_collective_is_the_identity():
    from pctce_cli.distributed import ProcessGroup

    for group in (ProcessGroup.single(), ProcessGroup.current(), ProcessGroup.launch()):
        assert not group.active and (group.rank, group.world) == (0, 1)
        assert group.broadcast({"a": 1}) == {"a": 1} and group.gather(3) == [3]
        ce, rank = group.all_gather_ragged((np.ones(2, np.float32), np.zeros(2, np.int32)), (None, None))
        assert ce.tolist() == [1.0, 1.0] and rank.tolist() == [0, 0]
        group.barrier()
        group.close()
