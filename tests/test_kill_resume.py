"""kill -9 at every stage of a multi-checkpoint `pctce score`, then the same command again (issue 14 item 4).

The process is killed with SIGKILL at a named point of the store writer
(``PCTCE_FAULT``, see ``store.write.fault_point``): before a shard, while a
shard file is still a temporary, between a shard's two files, after a shard's
record, just before and just after a manifest (that is, between checkpoints).
Rerunning the command must finish the store with exactly the rows of an
uninterrupted run: none lost, none doubled, the same bits (the same
computation repeated on the same machine is exact).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from pctce_cli.store import list_checkpoints, load_scores
from pctce_cli.store.write import FAULT_POINTS


def score(run_dir, data, out, fault=None):
    env = {k: v for k, v in os.environ.items() if k != "PCTCE_FAULT"}
    env.update(OMP_NUM_THREADS="1", **({"PCTCE_FAULT": fault} if fault else {}))
    cmd = [sys.executable, "-m", "pctce_cli", "score", str(run_dir), "--data", str(data), "--out", str(out),
           "--shard-targets", "40", "--quiet", "--format", "json"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def reference(tiny_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("kill")
    data = base / "val.txt"
    from tests.conftest import TEXTS

    data.write_text("\n\n".join(TEXTS * 2), encoding="utf-8")
    res = score(tiny_run, data, base / "ref")
    assert res.returncode == 0, res.stderr
    return data, base / "ref"


def rows(out):
    got = {}
    for m in list_checkpoints(out):
        s = load_scores(out, m["id"])
        got[m["id"]] = (s.doc, s.pos, s.token, s.ce, s.rank)
    return got


@pytest.mark.slow
@pytest.mark.parametrize("fault", [f"{p}:{n}" for p in FAULT_POINTS for n in (1, 2)])
def test_a_killed_run_resumes_to_the_same_rows(tiny_run, reference, tmp_path, fault):
    data, ref = reference
    out = tmp_path / "out"
    killed = score(tiny_run, data, out, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = score(tiny_run, data, out)
    assert again.returncode == 0, again.stderr
    want, got = rows(ref), rows(out)
    assert list(got) == list(want) and len(got) == 3
    for ck in want:
        doc, pos = got[ck][0], got[ck][1]
        assert len(np.unique(doc * 10_000 + pos)) == len(doc)  # no target doubled
        for a, b in zip(got[ck], want[ck]):
            np.testing.assert_array_equal(a, b)  # none lost, same bits
    assert not list(out.rglob("*.tmp")), "a temporary file was left behind after the finishing run"
