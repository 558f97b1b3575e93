"""Running the CLI in tests, the one home for it: every test file imports these instead of its own copies.

``run`` (a CliRunner result), ``run_json`` (the parsed ``--format json`` output of
a run that must succeed), ``as_json`` (the same for a result already in hand) and
``section`` (the one table of a JSON report whose title starts with a prefix).
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pctce_cli.cli import app

runner = CliRunner()


def run(*args, env=None):
    """``pctce ARGS…`` in-process (arguments may be paths or numbers; ``env`` adds environment variables)."""
    return runner.invoke(app, [str(a) for a in args], env=env)


def run_json(*args):
    """``pctce ARGS… --format json``, which must succeed, parsed."""
    return as_json(run(*args, "--format", "json"))


def as_json(r):
    """The parsed standard output of a CLI result that must have succeeded."""
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def section(obj, prefix):
    """The one entry of a JSON report whose key (a table title) starts with ``prefix``."""
    [key] = [k for k in obj if k.startswith(prefix)]
    return obj[key]
