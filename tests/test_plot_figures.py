"""Pictures checked like code: legends inside the figure, one line per run, no two runs sharing a color (1–60 checkpoints, 1–15 runs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from pctce_cli import plot  # noqa: E402
from pctce_cli.catalog import Checkpoint  # noqa: E402

SIZES = [(1, 1), (5, 5), (12, 4), (27, 9), (60, 15)]  # (checkpoints, runs)


def fake_checkpoints(n: int, runs: int, with_group: bool = True, long_names: bool = False) -> list[Checkpoint]:
    """``n`` checkpoints spread over ``runs`` runs (run directories), steps 100, 200, …; a ``group`` per two runs."""
    out = []
    for k in range(n):
        r = k % runs
        run = f"{'a-rather-long-run-name-' if long_names else ''}run{r}"
        step = 100 * (k // runs + 1)
        group = f"g{r // 2}" if with_group else None
        out.append(Checkpoint(f"{run}.checkpoint-{step}", None, None, step, f"{run}.checkpoint-{step}", group, run, {"group": group} if group else {}))
    return out


def fake_rows(cks) -> list[dict]:
    rows = []
    for k, c in enumerate(cks):
        scale = 1 + 0.1 * (k % 7) + 0.5 / c.step
        row = {"checkpoint": c.id, "step": c.step, "group": c.group, "mean": 2.0 * scale, "iqr": 1.0}
        for q in (5, *range(10, 100, 5), 99):
            row[f"p{q}"] = scale * (0.05 + q / 25)
        rows.append(row)
    return rows


def fake_dists(cks) -> list:
    rng = np.random.default_rng(0)
    base = rng.gamma(0.7, 1.5, size=600)
    return [plot.distribution(c.id, base * (1 + 0.05 * k)) for k, c in enumerate(cks)]


def legends(fig) -> list:
    return list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]


def assert_legends_inside(fig) -> None:
    fig.canvas.draw()
    box = fig.bbox
    legs = legends(fig)
    assert legs, "the figure has no legend"
    for leg in legs:
        e = leg.get_window_extent()
        assert e.x0 >= box.x0 - 0.5 and e.x1 <= box.x1 + 0.5 and e.y0 >= box.y0 - 0.5 and e.y1 <= box.y1 + 0.5, (tuple(e.extents), tuple(box.extents))


def labeled_lines(ax) -> list:
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def figures(cks) -> dict[str, object]:
    """Every kind's figure for the fake checkpoints (distribution kinds overlay what :func:`plot.overlaid` keeps)."""
    colors = plot.checkpoint_colors(cks)
    runs = plot.runs_of(cks)
    rows = fake_rows(cks)
    drawn, _ = plot.overlaid(cks)
    dists = fake_dists(cks)
    shown = [d for d in dists if d.id in {c.id for c in drawn}]
    table = pd.DataFrame(rows)
    table["acc"] = [0.9 - 0.01 * k for k in range(len(rows))]
    out = {
        "ecdf": plot.ecdf_figure(shown, colors),
        "shape": plot.shape_figure(shown, colors),
        "bands": plot.bands_figure(dists, None, colors),
        "trajectory": plot.trajectory_figure(rows, ["mean", "p50", "p95"], runs, None, colors),
        "fan": plot.fan_figure(rows, runs, colors),
        "band-trajectory": plot.band_trajectory_figure(dists, {c.id: c.step for c in cks}, runs, None, colors),
    }
    if len(cks) >= 3:
        out["agreement"] = plot.agreement_figure(table, "acc")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("n,runs", SIZES[:3])
def test_every_legend_lies_inside_its_figure(n, runs):
    for kind, fig in figures(fake_checkpoints(n, runs, long_names=True)).items():
        try:
            assert_legends_inside(fig)
        except AssertionError as e:
            raise AssertionError(f"{kind} at {n} checkpoints, {runs} runs: {e}") from None


@pytest.mark.slow
@pytest.mark.parametrize("n,runs", SIZES[3:])
def test_every_legend_lies_inside_its_figure_with_many_checkpoints(n, runs):
    test_every_legend_lies_inside_its_figure(n, runs)


@pytest.mark.parametrize("runs", [1, 2, 5, 9, 12, 13, 15])
@pytest.mark.parametrize("with_group", [True, False])
def test_a_trajectory_has_one_line_per_run_and_no_two_runs_share_a_color(runs, with_group):
    cks = fake_checkpoints(3 * runs, runs, with_group=with_group)
    fig = plot.trajectory_figure(fake_rows(cks), ["mean"], plot.runs_of(cks), None, plot.checkpoint_colors(cks))
    lines = labeled_lines(fig.axes[0])
    assert sorted(line.get_label() for line in lines) == sorted(f"run{r}" for r in range(runs))
    for line in lines:  # each line walks its own run's steps in order
        assert list(line.get_xdata()) == [100, 200, 300]
    assert len({line.get_color() for line in lines}) == runs


@pytest.mark.parametrize("n,runs", [(5, 5), (12, 4), (12, 12), (27, 9)])
def test_overlaid_distributions_never_share_a_color(n, runs):
    cks = fake_checkpoints(n, runs)
    drawn, note = plot.overlaid(cks)
    assert len(drawn) == (n if n <= 12 else runs)
    assert (note is None) == (n <= 12)
    if note:
        assert "each run's last checkpoint" in note and "--checkpoint GLOB" in note
        assert all(c.step == max(d.step for d in cks if d.run == c.run) for c in drawn)
    fig = plot.ecdf_figure([d for d in fake_dists(cks) if d.id in {c.id for c in drawn}], plot.checkpoint_colors(cks))
    colors = [line.get_color() for line in labeled_lines(fig.axes[0])]
    assert len(colors) == len(drawn) == len(set(colors))


def test_a_group_column_does_not_turn_groups_into_lines():
    """The demo's --meta has run and group columns: one line per run (9), never per group (2)."""
    cks = fake_checkpoints(27, 9)
    for c in cks:
        c.meta = {"run": c.run, "group": "distilled" if c.run < "run5" else "controls"}
        c.group = c.meta["group"]
        c.run = "checkpoints"  # the run directory says nothing: --meta's run column does
    runs = plot.runs_of(cks)
    assert len(set(runs.values())) == 9
    fig = plot.trajectory_figure(fake_rows(cks), ["mean"], runs, None, plot.checkpoint_colors(cks))
    assert len(labeled_lines(fig.axes[0])) == 9


def test_the_fan_has_a_panel_per_run_and_a_line_per_percentile():
    cks = fake_checkpoints(12, 4)
    fig = plot.fan_figure(fake_rows(cks), plot.runs_of(cks))
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == [f"run{r} (3 checkpoints)" for r in range(4)]
    assert [line.get_label() for line in labeled_lines(axes[0])] == [f"p{q}" for q in plot.FAN_PERCENTILES]
    assert list(labeled_lines(axes[0])[0].get_xdata()) == [100, 200, 300]
    assert axes[0].get_yscale() == "log"


def test_the_band_trajectory_stacks_every_band_per_run():
    cks = fake_checkpoints(6, 2)
    dists = fake_dists(cks)
    fig = plot.band_trajectory_figure(dists, {c.id: c.step for c in cks}, plot.runs_of(cks))
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    assert len(axes[0].collections) == len(dists[0].bands)  # one stacked area per band


def test_runs_without_run_directories_come_from_ids_never_one_zigzag():
    """A store that records no run directories (all paths in one folder): RUN.checkpoint-N ids name the runs."""
    from types import SimpleNamespace

    from pctce_cli.plot.theme import runs_of

    cks = [SimpleNamespace(id=f"run{r}.checkpoint-{s}", step=s, run="checkpoints", group=None, meta={}) for r in range(3) for s in (100, 200)]
    assert runs_of(cks) == {c.id: c.id.split(".")[0] for c in cks}
    odd = [SimpleNamespace(id=f"m{r}", step=100, run="checkpoints", group=None, meta={}) for r in range(2)]
    assert runs_of(odd) == {"m0": "m0", "m1": "m1"}  # same step twice, no name to go by: each alone
    none = [SimpleNamespace(id=f"r.checkpoint-{s}", step=s, run=None, group=None, meta={}) for s in (1, 2)]
    assert set(runs_of(none).values()) == {"r"}
