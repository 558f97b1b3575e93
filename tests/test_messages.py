"""Messages that blamed the wrong thing (issue 23): each with its exact text and exit code."""

from __future__ import annotations

import numpy as np
import pytest

from tests.cli import run
from tests.helpers import make_store


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(1)
    doc = np.repeat(np.arange(6), 5)
    for ck in ("a", "b", "c"):
        make_store(tmp_path / "s", ck, rng.gamma(2.0, 1.0, doc.size), doc)
    return tmp_path / "s"


def test_bootstrap_zero_names_the_option(store):
    r = run("summary", store, "--ci", "0.9", "--bootstrap", "0")
    assert (r.exit_code, r.stderr.strip()) == (2, "Error: --bootstrap must be a positive integer, got 0")


def test_agree_outside_zero_one_is_named_alone(store):
    r = run("concord", store, "--agree", "1.5")
    assert (r.exit_code, r.stderr.strip()) == (2, "Error: --agree must be in [0, 1], got 1.5")
    r = run("concord", store, "--disagree", "-0.1")
    assert (r.exit_code, r.stderr.strip()) == (2, "Error: --disagree must be in [0, 1], got -0.1")
    r = run("concord", store, "--agree", "0.5", "--disagree", "0.7")
    assert (r.exit_code, r.stderr.strip()) == (2, "Error: --disagree (0.7) must be ≤ --agree (0.5), both in [0, 1]")


def test_a_policy_directory_is_not_a_policy_file(store, tmp_path):
    r = run("gate", store, "--policy", tmp_path, "--baseline", "a", "--candidate", "b")
    assert (r.exit_code, r.stderr.strip()) == (2, f"Error: --policy {tmp_path} is a directory: expected a policy file (TOML)")


# Options that were silently ignored or wrongly refused (issue 23).


def test_a_group_glob_that_matches_nothing_is_an_error_as_c_is(store):
    r = run("summary", store, "-g", "x=zz*")
    assert (r.exit_code, r.stderr.strip()) == (2, "Error: --group 'x=zz*' matches no checkpoint (have: a, b, c)")
    # a glob that matches only checkpoints -c left out is fine: the selection narrowed it
    r = run("summary", store, "-c", "a", "-g", "first=a", "-g", "rest=[bc]", "--format", "json")
    assert r.exit_code == 0, r.output


def test_a_group_left_empty_by_an_earlier_overlapping_glob_is_named(store):
    r = run("summary", store, "-g", "all=*", "-g", "bs=b")
    assert (r.exit_code, r.stderr.strip()) == (
        2,
        "Error: --group 'bs=b' is empty: every checkpoint it matches (b) is in group 'all', whose glob comes first; "
        "make the globs disjoint or give 'bs' first",
    )
    r = run("summary", store, "-g", "bs=b", "-g", "all=*", "--format", "json")
    assert r.exit_code == 0, r.output
    rows = next(iter(__import__("json").loads(r.stdout).values()))
    assert {x["checkpoint"]: x["group"] for x in rows} == {"a": "all", "b": "bs", "c": "all"}


def test_the_same_score_directory_given_twice_is_read_once(store):
    import json

    once = json.loads(run("summary", store, "--format", "json").stdout)
    r = run("summary", store, store, f"{store}/", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == once


def test_gate_refuses_an_unwritable_output_before_it_gates(store, tmp_path):
    (tmp_path / "afile").write_text("x")
    for opt in ("--json", "--markdown", "--junit"):
        r = run("gate", store, "--baseline", "a", "--candidate", "b", "--rule", "mean:+50%", opt, tmp_path / "afile" / "out")
        assert (r.exit_code, r.stderr.strip()) == (2, f"Error: {opt} {tmp_path / 'afile' / 'out'}: cannot write ({tmp_path / 'afile'} is a file, not a directory)")
        assert r.stdout == ""  # refused before the verdict was printed
    r = run("gate", store, "--baseline", "a", "--candidate", "b", "--rule", "mean:+50%", "--json", tmp_path)
    assert (r.exit_code, r.stderr.strip()) == (2, f"Error: --json {tmp_path}: is a directory, expected a file path")
