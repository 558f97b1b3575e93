"""CLI commands of pictures and reports: `plot`, `report` (registered on the main app).

Each command parses its options, selects checkpoints, makes one core call
(:func:`pctce_cli.plot.save_plot`, :func:`pctce_cli.report.save_report`) and
exits: 0 ok, 2 bad input (including "plotting needs matplotlib").
"""

# No ``from __future__ import annotations``: the option types below are local to
# register(), so annotations must be evaluated when the commands are defined.
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class Kind(str, Enum):
    ecdf = "ecdf"
    trajectory = "trajectory"
    concord = "concord"
    agreement = "agreement"
    shape = "shape"
    bands = "bands"


def register(app) -> None:
    """Add this module's commands to the Typer ``app``."""
    from pctce_cli.cli import AllowMixedOpt, CheckpointOpt, DirsArg, GroupOpt, MetaOpt, PercentilesOpt, handles_errors

    VsOpt = Annotated[
        str | None,
        typer.Option(help="Reference checkpoint id: a horizontal line on trajectories, and the crossings below it.", show_default=False),
    ]
    TaskOpt = Annotated[
        str | None,
        typer.Option(help="Task-metric column of --meta (or 'accuracy' from score --task-accuracy) to correlate with.", show_default=False),
    ]
    HigherOpt = Annotated[bool, typer.Option("--higher-is-better/--lower-is-better", help="Direction of the task metric.")]
    EdgesOpt = Annotated[
        str | None, typer.Option(help="CE band edges for bands, e.g. 0,0.1,0.5,1.5,5,10,inf.", show_default=False)
    ]

    @app.command(no_args_is_help=True)
    @handles_errors
    def plot(
        kind: Annotated[
            Kind,
            typer.Argument(
                help="ecdf: CE distributions; trajectory: summaries against step; concord: concordance heatmap; "
                "agreement: correlation with --task per percentile; shape: percentile profiles; bands: mass in CE bands.",
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
        vs: VsOpt = None,
        task: TaskOpt = None,
        higher_is_better: HigherOpt = True,
        edges: EdgesOpt = None,
        dpi: Annotated[int, typer.Option(help="Resolution of .png output.")] = 150,
        allow_mixed: AllowMixedOpt = False,
    ):
        """Draw CE distributions, trajectories, concordance, task agreement, shape or CE bands to an image."""
        from pctce_cli import analysis
        from pctce_cli.errors import UsageError
        from pctce_cli.plot import save_plot

        if out is None:
            raise UsageError("give the image to write with --out FILE (.png, .svg or .html)")
        cks = analysis.resolve_checkpoints(dirs or [], checkpoint or [], group or [], meta, allow_mixed)
        path = save_plot(
            kind.value,
            cks,
            out,
            dpi=dpi,
            summaries=summaries,
            vs=vs,
            task=task,
            higher_is_better=higher_is_better,
            edges=analysis.parse_edges(edges) if edges else None,
        )
        typer.echo(f"Wrote {path}")

    @app.command(no_args_is_help=True)
    @handles_errors
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
        set_: Annotated[str | None, typer.Option("--set", help="The summary set S for C_S (default mean,p50,p95).", show_default=False)] = None,
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
        allow_mixed: AllowMixedOpt = False,
    ):
        """One self-contained HTML (or Markdown) report: inputs, summaries, concordance, selection, plots, tail."""
        from pctce_cli import analysis, render
        from pctce_cli.errors import UsageError
        from pctce_cli.report import ReportOptions, save_report

        if out is None:
            raise UsageError("give the report file to write with --out FILE (e.g. report.html)")
        cks = analysis.resolve_checkpoints(dirs or [], checkpoint or [], group or [], meta, allow_mixed)
        options = ReportOptions(
            percentiles=analysis.parse_percentiles(percentiles),
            set_=analysis.parse_summary_list(set_, ["mean", "p50", "p95"], "--set"),
            vs=vs,
            task=task,
            higher_is_better=higher_is_better,
            edges=analysis.parse_edges(edges),
            tail_top=tail_top,
            tail_checkpoints=tail_checkpoint or [],
            context=context,
        )
        written, warnings = save_report(cks, out, options, markdown=markdown)
        for w in warnings:
            render.warn(w)
        typer.echo(f"Wrote {written[0]}" + (f" and {len(written) - 1} image(s) beside it" if len(written) > 1 else ""))
