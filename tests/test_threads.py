"""The CPU threading policy (pctce_cli/threads.py): what it sets, and what it leaves to the user."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pctce_cli.errors import UsageError
from pctce_cli.threads import cgroup_cpu_limit, configure_threads, usable_cpus


def cgroup(tmp_path, v2=None, v1=None):
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2)
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(v1[0])
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(v1[1])
    return tmp_path


@pytest.mark.parametrize(
    "v2, v1, expected",
    [
        ("200000 100000\n", None, 2),
        ("50000 100000\n", None, 1),  # half a CPU still needs one thread
        ("250000 100000\n", None, 3),
        ("max 100000\n", None, None),
        (None, ("150000\n", "100000\n"), 2),
        (None, ("-1\n", "100000\n"), None),
        ("garbage\n", None, None),
        (None, None, None),
    ],
)
def test_cgroup_quota(tmp_path, v2, v1, expected):
    assert cgroup_cpu_limit(cgroup(tmp_path, v2, v1)) == expected


def test_usable_cpus_is_capped_by_quota_and_affinity(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(cgroup(tmp_path, "100000 100000")) == 1
    assert usable_cpus(tmp_path / "no-cgroup-files") == affinity


def test_sets_passive_waiting_and_usable_cpus_when_the_user_has_not(tmp_path):
    env = {}
    changed = configure_threads(environ=env, root=cgroup(tmp_path, "100000 100000"))
    assert env == changed == {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}


def test_user_settings_win():
    env = {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3"}
    assert configure_threads(environ=env) == {}
    assert env == {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3"}
    env = {"OMP_NUM_THREADS": "3"}
    assert configure_threads(threads=2, environ=env) == {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "2"}
    env = {"PCTCE_THREAD_POLICY": "native"}
    assert configure_threads(environ=env) == {} and env == {"PCTCE_THREAD_POLICY": "native"}


def test_bad_values_are_clear_errors():
    with pytest.raises(UsageError, match=r"^threads must be at least 1, got 0$"):
        configure_threads(threads=0, environ={})
    with pytest.raises(UsageError, match=r"^OMP_NUM_THREADS must be a whole number of at least 1, got 'lots'$"):
        configure_threads(environ={"OMP_NUM_THREADS": "lots"})


def test_the_cli_applies_the_policy_before_torch_starts():
    """A fresh `pctce` process sees passive waiting in torch's OpenMP runtime's environment."""
    code = (
        "import os, sys; from pctce_cli.cli import main; "
        "sys.argv=['pctce','--version']\n"
        "try: main()\n"
        "except SystemExit: pass\n"
        "print(os.environ['OMP_WAIT_POLICY'], os.environ['OMP_NUM_THREADS'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "PCTCE_THREAD_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    assert out[-2:] == ["PASSIVE", str(usable_cpus())]


def test_a_bad_thread_variable_is_one_clear_line():
    env = dict(os.environ, OMP_NUM_THREADS="lots")
    res = subprocess.run([sys.executable, "-m", "pctce_cli", "--version"], capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert " ".join(res.stderr.split()) == "Error: OMP_NUM_THREADS must be a whole number of at least 1, got 'lots'"
