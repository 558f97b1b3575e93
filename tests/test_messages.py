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
