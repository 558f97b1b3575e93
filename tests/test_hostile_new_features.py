"""A hostile new user of KL, position/ctx and streamed units (issue 23's standard): one line, exit code 2, never a traceback."""

from __future__ import annotations

import numpy as np
import pytest

from .cli import run
from .helpers import make_store


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two checkpoints of 50 three-target documents."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("tiny") / "out"
    doc = np.repeat(np.arange(50), 3)
    for k, ck in enumerate(("a", "b")):
        make_store(root, ck, rng.gamma(2, 1, doc.size), doc, step=k + 1)
    return root


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ("99999999999999999999999", "Error: --position-edges: edges must be at most 2,147,483,647 (a position is a 32-bit integer), got 99999999999999999999999"),
        ("3000000000", "Error: --position-edges: edges must be at most 2,147,483,647 (a position is a 32-bit integer), got 3000000000"),
        ("1,,2", "Error: --position-edges: expected whole numbers separated by commas (e.g. 1024,4096), got '1,,2'"),
        ("1,2,", "Error: --position-edges: expected whole numbers separated by commas (e.g. 1024,4096), got '1,2,'"),
    ],
)
def test_malformed_position_edges_are_one_line(tiny, edges, message):
    # a huge edge was an OverflowError traceback (numpy int64); an empty item was silently dropped
    r = run("summary", tiny, "-c", "a", "--by", "position", "--position-edges", edges)
    assert r.exit_code == 2 and r.output.strip() == message, r.output
