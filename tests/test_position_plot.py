"""`pctce plot position` (docs/definitions.md#position-in-the-context): one median line per checkpoint, at the buckets' numbers."""

from __future__ import annotations

import numpy as np
import pytest

from pctce_cli.stats.summaries import summarize

from .cli import run
from .test_position_cli import store

pytest.importorskip("matplotlib")


def test_plot_position_draws_each_checkpoints_bucket_medians(tmp_path):
    from pctce_cli.catalog import resolve_checkpoints
    from pctce_cli.plot import plot_figure

    root, doc, pos, ce_a, _ = store(tmp_path, seed=0, ck="ck-a")
    ce_b = store(tmp_path, seed=1, ck="ck-b")[3]
    fig = plot_figure("position", resolve_checkpoints([root], []))
    [ax] = fig.axes
    lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    assert sorted(lines) == ["ck-a", "ck-b"]
    lo = np.array([0, 1, 2, 4, 8, 16, 32, 64, 128])
    k = np.searchsorted(lo, pos, side="right") - 1
    for name, ce in (("ck-a", ce_a), ("ck-b", ce_b)):
        want = [summarize(ce[k == b], percentiles=[50])["p50"] for b in range(len(lo))]
        assert lines[name].get_ydata().tolist() == want
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2–3", "4–7", "8–15", "16–31", "32–63", "64–127", "128–255"]
    assert ax.get_xscale() == "log"


def test_plot_position_cli_writes_the_file_and_refuses_a_subset_split(tmp_path):
    root = store(tmp_path)[0]
    r = run("plot", "position", root, "--out", tmp_path / "p.svg")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "p.svg").read_bytes().startswith(b"<?xml")
    r = run("plot", "position", root, "--out", tmp_path / "p.png", "--by", "domain")
    assert r.exit_code == 2


def test_plot_position_by_ctx_draws_the_context_buckets(tmp_path):
    """--by ctx: the lines are the medians of the ctx buckets (capped by the 64-token window), and the axis says so."""
    from pctce_cli.analysis.position import resolve_positions
    from pctce_cli.catalog import resolve_checkpoints
    from pctce_cli.plot import plot_figure
    from pctce_cli.stats.position import context_lengths

    root, doc, pos, ce, _ = store(tmp_path)
    fig = plot_figure("position", resolve_checkpoints([root], []), positions=resolve_positions("ctx", None))
    [ax] = fig.axes
    [line] = [ln for ln in ax.get_lines() if ln.get_label() == "ck-a"]
    ctx = context_lengths(doc, pos, 64, 32)
    lo = np.array([0, 1, 2, 4, 8, 16, 32])
    k = np.searchsorted(lo, ctx, side="right") - 1
    assert line.get_ydata().tolist() == [summarize(ce[k == b], percentiles=[50])["p50"] for b in np.unique(k)]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2–3", "4–7", "8–15", "16–31", "32–63"]
    assert ax.get_xlabel() == "context length (bucket, log scale)"


def test_plot_by_position_or_ctx_is_for_plot_position(tmp_path):
    root = store(tmp_path)[0]
    r = run("plot", "position", root, "--by", "ctx", "--position-edges", "16,48", "--out", tmp_path / "p.svg")
    assert r.exit_code == 0, r.output
    r = run("plot", "ecdf", root, "--by", "ctx", "--out", tmp_path / "e.png")
    assert r.exit_code == 2
    assert r.stderr.strip() == "Error: plot ecdf --by ctx: only plot position buckets targets (use plot position)"
