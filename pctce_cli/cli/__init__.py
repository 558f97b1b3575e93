"""The `pctce` command line: each command parses options, calls one core function, renders.

No statistics and no file I/O here. The core raises :class:`PctceError`; only
this package turns it into a one-line ``Error: …`` and an exit code (0 ok,
1 gate failed, 2 bad input). One module per command family —
:mod:`.score` (score, verify, demo), :mod:`.analysis` (summary, concord,
select, shape, decompose), :mod:`.release` (compare, gate, tail),
:mod:`.visual` (plot, report) — over :mod:`.common` (options, enums, errors,
rendering) and :mod:`pctce_cli.parse` (option strings). Heavy libraries are imported
inside commands so that ``pctce --help`` and the analysis commands start fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pctce_cli import __version__
from pctce_cli.cli import analysis, release, score, visual
from pctce_cli.cli.common import handles_errors
from pctce_cli.errors import PctceError

app = typer.Typer(
    name="pctce",
    help="Evaluate language-model checkpoints by the [bold]distribution[/] of their per-token cross-entropy: "
    "percentiles, concordance, selection rules and release gates.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool):
    if value:
        typer.echo(f"pctce {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
):
    """Evaluate language-model checkpoints by the distribution of their per-token cross-entropy."""


# (command, shows help when run without arguments), in the order `pctce --help` lists them
COMMANDS = (
    (score.score, True),
    (analysis.summary, True),
    (analysis.concord, False),
    (analysis.select, False),
    (analysis.shape, True),
    (analysis.decompose, True),
    (score.verify, True),
    (score.demo, False),
    (release.compare, True),
    (release.gate, True),
    (release.tail, True),
    (visual.plot, True),
    (visual.report, True),
)
for _fn, _help in COMMANDS:
    app.command(no_args_is_help=_help)(handles_errors(_fn))


def main() -> None:
    """Console-script entry point."""
    from pctce_cli import render
    from pctce_cli.scoring.startup import allow_freezing
    from pctce_cli.threads import configure_threads

    try:
        configure_threads()  # before anything imports torch (pctce_cli/threads.py says why)
    except PctceError as e:
        render.error(str(e))
        raise SystemExit(e.exit_code) from None
    allow_freezing()  # this process is pctce's own (scoring/startup.py says why only here)
    try:
        app()
    finally:
        # The process ends here: the interpreter's teardown runs full collections over every object
        # left (torch and transformers: millions, ~1 s of CPU); frozen ones are not walked (docs/benchmarks.md)
        import gc

        gc.freeze()
