"""What every command shares: option types, choice enums built from the core's constants, error handling, rendering.

Commands import from here and from the core, never from each other or from the
package ``__init__`` (which assembles the app): the CLI imports downward only.
"""

# No ``from __future__ import annotations``: Typer reads the annotations of the
# commands at definition time.
import functools
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from pctce_cli.errors import PctceError, option_message
from pctce_cli.render import FORMATS
from pctce_cli.scoring.options import DEVICES, DTYPE_NAMES, PREFIXES, SCORE_OPTIONS, SPLIT_ON
from pctce_cli.stats.units import UNITS
from pctce_cli.values import VALUE_KINDS


def choices(name: str, values) -> type[Enum]:
    """A ``str`` Enum whose members are the core's allowed values (Typer shows them as the choices)."""
    return Enum(name, [(v.replace("-", "_"), v) for v in values], type=str)


Format = choices("Format", FORMATS)
Prefix = choices("Prefix", PREFIXES)
SplitOn = choices("SplitOn", SPLIT_ON)
Device = choices("Device", DEVICES)
DType = choices("DType", DTYPE_NAMES)
Unit = choices("Unit", UNITS)
Value = choices("Value", tuple(VALUE_KINDS))  # --value: ce, kl, dp (docs/kl.md)


# parameter (as the core names it in an error) -> option of the commands: how the CLI words a core's error.
# One table for every command (a parameter has the same option wherever it appears); pctce score's own
# settings come from scoring.options.SCORE_OPTIONS.
OPTIONS = {
    **SCORE_OPTIONS,
    "agree": "--agree",
    "baseline": "--baseline",
    "by": "--by",
    "candidates": "--candidate",
    "ci": "--ci",
    "context": "--context",
    "decode=False": "--no-decode",
    "device": "--device",
    "disagree": "--disagree",
    "dpi": "--dpi",
    "dtype": "--dtype",
    "edges": "--edges",
    "group": "--group",
    "groups": "--group",
    "markdown": "--markdown",
    "meta": "--meta",
    "n_boot": "--bootstrap",
    "patterns": "--checkpoint",
    "percentile": "--percentile",
    "percentiles": "--percentiles",
    "policy": "--policy",
    "position_edges": "--position-edges",
    "require": "--require",
    "rule": "--rule",
    "rules": "--rule",
    "sample_data": "--sample-data",
    "set_": "--set",
    "subset": "--subset",
    "summaries": "--summaries",
    "summaries_file": "--summaries",
    "tail_checkpoint": "--tail-checkpoint",
    "tail_checkpoints": "--tail-checkpoint",
    "tail_top": "--tail-top",
    "task": "--task",
    "tokenizer": "--tokenizer",
    "top": "--top",
    "unit": "--unit",
    "value": "--value",
    "vs": "--vs",
}


def cli_message(error: BaseException) -> str:
    """The text of a core's error in the words of the command line (its parameters as options, :data:`OPTIONS`)."""
    return option_message(error, OPTIONS)


def handles_errors(fn):
    """Turn the core's PctceError into ``Error: <message>`` (parameters worded as options) and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from pctce_cli import render

        try:
            return fn(*args, **kwargs)
        except PctceError as e:
            render.error(cli_message(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            render.error("interrupted; finished shards are kept and the same command resumes")
            raise typer.Exit(130) from None

    return wrapper


def emit_report(report, fmt, output: Path | None) -> None:
    """Render an analysis :class:`~pctce_cli.analysis.report.Report` in ``--format`` to the terminal or ``--output``."""
    from pctce_cli import render

    render.emit(report.sections, fmt.value, output, report.notes)


DirsArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Score directories written by pctce score.", show_default=False),
]
CheckpointOpt = Annotated[
    list[str] | None,
    typer.Option("--checkpoint", "-c", help="Select checkpoints by id glob (repeatable).", show_default=False),
]
GroupOpt = Annotated[
    list[str] | None,
    typer.Option("--group", "-g", help="Define a group (family): NAME=GLOB on checkpoint ids (repeatable).", show_default=False),
]
MetaOpt = Annotated[
    Path | None,
    typer.Option(help="CSV/JSON with a 'checkpoint' column plus 'group' and task-metric columns.", show_default=False),
]
PercentilesOpt = Annotated[
    str | None,
    typer.Option(help="Percentiles to report, e.g. 10,25,50,75,90,95,99 (default 50,90,95,99).", show_default=False),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", help="Write to this file instead of the terminal.", show_default=False)]
AllowMixedOpt = Annotated[
    bool, typer.Option("--allow-mixed", help="Compare checkpoints scored on different data or tokenizers anyway.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
SetOpt = Annotated[str | None, typer.Option("--set", help="The summary set S for C_S (default mean,p50,p95).", show_default=False)]
StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", "-s", help="Score directory in which bare checkpoint ids are looked up.", show_default=False),
]
TaskOpt = Annotated[
    str | None,
    typer.Option(help="Task-metric column of --meta (or 'accuracy' from score --task-accuracy) to correlate with.", show_default=False),
]
HigherOpt = Annotated[bool, typer.Option("--higher-is-better/--lower-is-better", help="Direction of the task metric.")]
ByOpt = Annotated[
    str | None,
    typer.Option("--by", help="Split by a subset field (pctce score --subset-field, 'file', or 'correct' after --task-accuracy).", show_default=False),
]
ByPositionOpt = Annotated[
    str | None,
    typer.Option("--by", help="Split by a subset field (pctce score --subset-field, 'file', or 'correct' after --task-accuracy), or bucket targets by 'position' or 'ctx' (docs/definitions.md#position-in-the-context).", show_default=False),
]
SubsetOpt = Annotated[
    list[str] | None,
    typer.Option("--subset", help="Keep only documents of this subset value (repeatable; FIELD=VALUE names the field).", show_default=False),
]
PositionEdgesOpt = Annotated[
    str | None,
    typer.Option("--position-edges", help="With --by position or --by ctx: bucket edges in tokens, e.g. 1024,4096 (default powers of two: 0, 1, 2-3, 4-7, ...).", show_default=False),
]
UnitOpt = Annotated[
    Unit,
    typer.Option("--unit", help="Distribution unit: token, or word/byte (docs/definitions.md#words-and-bytes: comparable across tokenizers on the same data)."),
]
EdgesOpt = Annotated[str | None, typer.Option(help="CE band edges for bands, e.g. 0,0.1,0.5,1.5,5,10,inf.", show_default=False)]


def select_checkpoints(dirs, checkpoint, group=None, meta=None, allow_mixed=False, unit=None):
    """The checkpoints the selection options name (:func:`pctce_cli.catalog.resolve_checkpoints`)."""
    from pctce_cli.catalog import resolve_checkpoints

    return resolve_checkpoints(dirs or [], checkpoint or [], group or [], meta, allow_mixed, unit.value if unit is not None else "token")


def subsets_of(cks, by, subset):
    """What ``--by``/``--subset`` ask for, checked against the checkpoints (:func:`pctce_cli.analysis.subsets.resolve_subsets`)."""
    from pctce_cli.analysis.subsets import NO_SUBSETS, resolve_subsets

    return resolve_subsets(cks, by, subset or ()) if cks is not None else NO_SUBSETS
