"""Running the CLI in tests: ``run`` (a CliRunner result) and ``run_json`` (the parsed ``--format json`` output)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pctce_cli.cli import app

runner = CliRunner()


def run(*args):
    """``pctce ARGS…`` in-process (arguments may be paths or numbers)."""
    return runner.invoke(app, [str(a) for a in args])


def run_json(*args):
    """``pctce ARGS… --format json``, which must succeed, parsed."""
    r = run(*args, "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)
