"""Commands of pictures and reports: `plot`, `report`.

Each selects checkpoints, makes one core call (:func:`pctce_cli.plot.save_plot`,
:func:`pctce_cli.report.save_report`) and exits: 0 ok, 2 bad input (including
"plotting needs matplotlib").
"""

# No ``from __future__ import annotations``: Typer reads the annotations at definition time.
from pathlib import Path
from typing import Annotated

import typer

from pctce_cli.cli.common import (
    OPTIONS,
    Value,
    AllowMixedOpt,
    CheckpointOpt,
    DirsArg,
    EdgesOpt,
    GroupOpt,
    HigherOpt,
    MetaOpt,
    PercentilesOpt,
    PositionEdgesOpt,
    SetOpt,
    SubsetOpt,
    TaskOpt,
    UnitOpt,
    Unit,
    choices,
    select_checkpoints,
    subsets_of,
)
from pctce_cli.parse import parse_edges, parse_percentiles, parse_summary_list
from pctce_cli.plot import KINDS
from pctce_cli.stats.summaries import DEFAULT_CONCORDANCE_SET

Kind = choices("Kind", KINDS)


PlotByOpt = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="ecdf, shape, bands: one panel (bands: one bar per checkpoint) per subset of this field; "
        "position: bucket targets by 'position' (the default) or 'ctx' (docs/definitions.md#position-in-the-context).",
        show_default=False,
    ),
]
PlotValueOpt = Annotated[Value, typer.Option("--value", help="ce; kl: ecdf (also --by FIELD, --unit word) and trajectory of the KL from the reference model of pctce score --reference; dp: ecdf of the change in the target's probability against it (docs/kl.md).")]


# Long by its Typer option declarations (they are the --help); the body parses, makes one core call, renders.
def plot(
    kind: Annotated[
        Kind,
        typer.Argument(
            help="ecdf: CE distributions; trajectory: summaries against step; fan: p10…p99 against step, a panel per run; "
            "band-trajectory: mass in CE bands against step; concord: concordance heatmap; "
            "agreement: correlation with --task per percentile; shape: percentile profiles; bands: mass in CE bands; "
            "position: CE percentiles against position in the document.",
            show_default=False,
        ),
    ],
    dirs: DirsArg = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Image to write: .png, .svg, or .html (the SVG in a self-contained page).", show_default=False),
    ] = None,
    checkpoint: CheckpointOpt = None,
    group: GroupOpt = None,
    meta: MetaOpt = None,
    summaries: Annotated[
        str | None,
        typer.Option(
            "--summaries",
            help="trajectory: summaries, one panel each (default mean,p50,p95); concord: the matrix's summaries "
            "(default mean,p50,p90,p95,p99).",
            show_default=False,
        ),
    ] = None,
    vs: Annotated[
        str | None,
        typer.Option(help="Reference checkpoint id: a horizontal line on trajectories, and the crossings below it.", show_default=False),
    ] = None,
    task: TaskOpt = None,
    higher_is_better: HigherOpt = True,
    edges: EdgesOpt = None,
    dpi: Annotated[int, typer.Option(help="Resolution of .png output.")] = 150,
    by: PlotByOpt = None,
    position_edges: PositionEdgesOpt = None,
    subset: SubsetOpt = None,
    unit: UnitOpt = Unit.token,
    allow_mixed: AllowMixedOpt = False,
    value: PlotValueOpt = Value.ce,
):
    """Draw CE distributions, trajectories, concordance, task agreement, shape or CE bands to an image."""
    from pctce_cli import render
    from pctce_cli.analysis.position import resolve_positions
    from pctce_cli.errors import UsageError
    from pctce_cli.plot import save_plot

    if out is None:
        raise UsageError("give the image to write with --out FILE (.png, .svg or .html)")
    cks = select_checkpoints(dirs, checkpoint, group, meta, allow_mixed, unit)
    positions = resolve_positions(by, position_edges, unit.value)
    notes: list[str] = []
    path = save_plot(
        kind.value,
        cks,
        out,
        dpi=dpi,
        summaries=summaries,
        vs=vs,
        task=task,
        higher_is_better=higher_is_better,
        edges=parse_edges(edges) if edges else None,
        subsets=subsets_of(cks, None if positions else by, subset),
        notes=notes,
        unit=unit.value,
        positions=positions,
        value=value.value,
    )
    for n in notes:
        render.warn(n)
    typer.echo(f"Wrote {path}")


# Long by its Typer option declarations (they are the --help); the body parses, makes one core call, renders.
def report(
    dirs: DirsArg = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Report file to write (report.html; with --markdown e.g. report.md).", show_default=False),
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Write Markdown with the plots as PNG files beside it (for PR comments).")
    ] = False,
    checkpoint: CheckpointOpt = None,
    group: GroupOpt = None,
    meta: MetaOpt = None,
    percentiles: PercentilesOpt = None,
    set_: SetOpt = None,
    vs: Annotated[
        str | None,
        typer.Option(help="Reference checkpoint id: differences to it, crossings below it, and a line on the trajectory plot.", show_default=False),
    ] = None,
    task: TaskOpt = None,
    higher_is_better: HigherOpt = True,
    edges: EdgesOpt = None,
    tail_top: Annotated[int, typer.Option(help="Highest-CE targets listed per tail checkpoint (0: no tail examples).")] = 10,
    tail_checkpoint: Annotated[
        list[str] | None,
        typer.Option(help="Checkpoints (id globs) whose tail is shown (default: the one with the lowest mean CE).", show_default=False),
    ] = None,
    context: Annotated[int, typer.Option(help="Decoded tokens of context before each tail target.")] = 20,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="The subset field of the Subsets section (default: every stored subset field); 'position' or 'ctx': "
            "the position section always shown, by that dimension (docs/position.md).",
            show_default=False,
        ),
    ] = None,
    position_edges: PositionEdgesOpt = None,
    subset: Annotated[
        list[str] | None,
        typer.Option("--subset", help="Report only on the documents of this subset value (repeatable; FIELD=VALUE names the field).", show_default=False),
    ] = None,
    unit: UnitOpt = Unit.token,
    allow_mixed: AllowMixedOpt = False,
):
    """One self-contained HTML (or Markdown) report: inputs, summaries, concordance, selection, plots, tail."""
    from pctce_cli import render
    from pctce_cli.errors import UsageError
    from pctce_cli.analysis.position import resolve_positions
    from pctce_cli.report import ReportOptions, save_report

    if out is None:
        raise UsageError("give the report file to write with --out FILE (e.g. report.html)")
    cks = select_checkpoints(dirs, checkpoint, group, meta, allow_mixed, unit)
    positions = resolve_positions(by, position_edges, unit.value)
    options = ReportOptions(
        percentiles=parse_percentiles(percentiles),
        set_=parse_summary_list(set_, DEFAULT_CONCORDANCE_SET, "--set"),
        vs=vs,
        task=task,
        higher_is_better=higher_is_better,
        edges=parse_edges(edges),
        tail_top=tail_top,
        tail_checkpoints=tail_checkpoint or [],
        context=context,
        subsets=subsets_of(cks, None if positions else by, subset),
        unit=unit.value,
        positions=positions,
        words=OPTIONS,
    )
    written, warnings = save_report(cks, out, options, markdown=markdown)
    for w in warnings:
        render.warn(w)
    typer.echo(f"Wrote {written[0]}" + (f" and {len(written) - 1} image(s) beside it" if len(written) > 1 else ""))
