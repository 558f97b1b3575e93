"""The test helpers' own rules (tests/helpers.py)."""

from __future__ import annotations

import pytest

from .helpers import assert_close_tree, assert_same_text_close_numbers


def test_demo_comparison_tolerates_round_off_only():
    """The README check's own rules: a last-digit flip passes; a real change, a new word or a lost line fails."""
    line = "│ topk5.checkpoint-1200 │ distilled │ 6.3776 │ 3.967e-04 │ 20.3954 │"
    assert_same_text_close_numbers([line], [line.replace("20.3954", "20.3953").replace("3.967e-04", "3.968e-04")])
    for changed in (line.replace("20.3954", "20.3994"), line.replace("distilled", "controls"), line.replace("1200", "1201")):
        with pytest.raises(AssertionError):
            assert_same_text_close_numbers([line], [changed])
    with pytest.raises(AssertionError):
        assert_same_text_close_numbers([line, line], [line])


def test_close_trees_are_equal_in_structure_and_close_in_floats():
    assert_close_tree({"a": [1.0, "x", 2, None]}, {"a": [1.0 + 1e-7, "x", 2, None]}, rel=1e-6)
    for other in ({"a": [1.1, "x", 2, None]}, {"a": [1.0, "y", 2, None]}, {"a": [1.0, "x", 3, None]}, {"b": [1.0, "x", 2, None]}, {"a": [1.0]}):
        with pytest.raises(AssertionError):
            assert_close_tree({"a": [1.0, "x", 2, None]}, other, rel=1e-6)
