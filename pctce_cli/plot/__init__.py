"""Core of `pctce plot`: pictures of per-token CE distributions, one matplotlib Figure per kind.

Kinds (:data:`KINDS`):

* ``ecdf`` — overlaid ECDFs and histograms of CE (log CE axis), mean and median marked;
* ``trajectory`` — summaries against training step per run, a reference line, crossings marked;
* ``fan`` — p10 … p99 against training step, one panel per run (the bulk saturates, the tail moves);
* ``band-trajectory`` — mass in CE bands against training step, stacked, one panel per run;
* ``concord`` — concordance matrix C(s, s') as a heatmap, one panel per group;
* ``agreement`` — correlation of each percentile with a task metric, mean as a reference line;
* ``shape`` — standardized percentile profiles z_q;
* ``bands`` — stacked mass in CE bands.

``--unit word|byte`` (docs/definitions.md#words-and-bytes) draws every kind in that unit: the distribution
of word CEs, or of bytes (each token's CE spread evenly over its bytes, a
weighted distribution computed from (value, weight) pairs, never one row per
byte); axes and titles name the unit.

``--by FIELD`` draws ``ecdf`` and ``shape`` as small multiples (one panel per
subset, :mod:`~pctce_cli.plot.panels`) and ``bands`` with one bar per
checkpoint and subset; ``--subset VALUE`` keeps only those documents for every kind.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas
(no pyplot, no display, no global backend switch) under pinned rcParams
(matplotlib's defaults plus :data:`STYLE`), so the user's matplotlibrc does not
change the picture and the same input gives byte-identical files. matplotlib is
an optional extra, imported inside functions; when it is missing,
:func:`require_matplotlib` raises a :class:`UsageError` with the install hint.

Core functions return a Figure; writing happens only in :func:`save_figure`
(temporary name, then rename).

Modules:

* :mod:`~pctce_cli.plot.theme` — pinned style, Agg canvas, colors per name, titles and axis labels;
* :mod:`~pctce_cli.plot.inputs` — :class:`Distribution` and the rows the figures are drawn from;
* :mod:`~pctce_cli.plot.figures` — the figure builders, one per kind;
* :mod:`~pctce_cli.plot.training` — the fan and the band trajectory, one panel per run;
* :mod:`~pctce_cli.plot.panels` — small multiples by subset (docs/definitions.md#subsets);
* :mod:`~pctce_cli.plot.output` — :func:`plot_figure` dispatch, PNG/SVG bytes, HTML pages, writing files;
* :mod:`~pctce_cli.plot.divergence` — ``ecdf`` and ``trajectory`` of the KL from a reference model (``--value kl``).
"""

from pctce_cli.plot.figures import (
    agreement_figure,
    bands_figure,
    concord_figure,
    ecdf_figure,
    shape_figure,
    trajectory_figure,
)
from pctce_cli.plot.inputs import (
    BINS_PER_DECADE,
    CE_FLOOR,
    HIST_EDGES,
    WORD_HIST_EDGES,
    Distribution,
    distribution,
    distributions,
    hist_edges,
    MAX_OVERLAID,
    load_unit_scores,
    overlaid,
    trajectory_rows,
    unit_distribution,
)
from pctce_cli.analysis.report import table_groups
from pctce_cli.plot.matrix import matrix_figure
from pctce_cli.plot.training import FAN_PERCENTILES, MAX_RUN_PANELS, band_trajectory_figure, fan_figure
from pctce_cli.plot.panels import MAX_PANELS, cap_panels, flatten_panels, subset_distributions, subset_ecdf_figure, subset_shape_figure
from pctce_cli.plot.output import (
    BY_KINDS,
    KINDS,
    OUTPUT_SUFFIXES,
    PAGE_STYLE,
    check_output,
    figure_bytes,
    html_page,
    inline_svg,
    plot_figure,
    png_data_uri,
    save_figure,
    save_plot,
)
from pctce_cli.plot.theme import (
    INSTALL_HINT,
    PALETTE,
    REFERENCE_COLOR,
    STYLE,
    ce_axis,
    checkpoint_colors,
    color_map,
    data_names,
    new_figure,
    plot_title,
    require_matplotlib,
    lighter,
    legend_inside,
    run_colors,
    run_of,
    runs_of,
    style,
    summary_label,
    unit_text,
    what_was_scored,
)

__all__ = [
    "BINS_PER_DECADE",
    "FAN_PERCENTILES",
    "MAX_RUN_PANELS",
    "band_trajectory_figure",
    "fan_figure",
    "matrix_figure",
    "BY_KINDS",
    "CE_FLOOR",
    "HIST_EDGES",
    "INSTALL_HINT",
    "KINDS",
    "MAX_OVERLAID",
    "MAX_PANELS",
    "OUTPUT_SUFFIXES",
    "PAGE_STYLE",
    "PALETTE",
    "REFERENCE_COLOR",
    "STYLE",
    "WORD_HIST_EDGES",
    "Distribution",
    "agreement_figure",
    "bands_figure",
    "cap_panels",
    "ce_axis",
    "check_output",
    "checkpoint_colors",
    "color_map",
    "concord_figure",
    "data_names",
    "distribution",
    "distributions",
    "ecdf_figure",
    "figure_bytes",
    "flatten_panels",
    "hist_edges",
    "html_page",
    "inline_svg",
    "load_unit_scores",
    "new_figure",
    "overlaid",
    "plot_figure",
    "plot_title",
    "png_data_uri",
    "require_matplotlib",
    "legend_inside",
    "lighter",
    "run_colors",
    "run_of",
    "runs_of",
    "save_figure",
    "save_plot",
    "shape_figure",
    "style",
    "subset_distributions",
    "subset_ecdf_figure",
    "subset_shape_figure",
    "summary_label",
    "table_groups",
    "trajectory_figure",
    "trajectory_rows",
    "unit_distribution",
    "unit_text",
    "what_was_scored",
]
