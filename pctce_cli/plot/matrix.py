"""A square numeric matrix (profile distances between checkpoints) as a heatmap, for the report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pctce_cli.plot.theme import new_figure, style


def matrix_figure(labels: Sequence[str], values, title: str = "", label: str = "") -> object:
    """A heatmap of a square matrix, one row and column per label; the numbers themselves go in a table.

    Args:
        labels: Row (and column) names, e.g. checkpoint ids.
        values: An ``n × n`` array.
        title: Figure title.
        label: Colorbar label.

    Returns:
        A Figure with one heatmap Axes and a colorbar; cells are annotated when there are at most 12 rows.
    """
    m = np.asarray(values, dtype=np.float64)
    n = len(labels)
    side = min(3.0 + 0.28 * n, 13.0)
    with style():
        fig = new_figure(side + 1.6, side)
        ax = fig.subplots()
        im = ax.imshow(m, cmap="viridis")
        short = [s if len(s) <= 32 else s[:31] + "…" for s in map(str, labels)]
        size = max(5.0, min(8.0, 200 / max(n, 1)))
        ax.set_xticks(range(n), short, rotation=90, fontsize=size)
        ax.set_yticks(range(n), short, fontsize=size)
        ax.grid(False)
        if n <= 12:
            for i in range(n):
                for j in range(n):
                    if not np.isnan(m[i, j]):
                        ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7, color="white" if m[i, j] < np.nanmean(m) else "black")
        fig.colorbar(im, ax=ax, shrink=0.8, label=label)
        fig.suptitle(title)
    return fig
