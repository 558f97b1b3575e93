"""The README's commands, CI, and the CLI's help stay in step."""

from __future__ import annotations

import re
from pathlib import Path

from pctce_cli.cli import app

from .cli import run

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    return re.findall(r"```bash\n(python3 -m venv[^\n]*)\n```", (ROOT / "README.md").read_text())


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    demo, test = _readme_commands()
    assert "pytest" in test and "pytest" not in demo
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def test_every_command_and_option_has_help():
    import click
    import typer.main

    group = typer.main.get_command(app)
    assert group.commands
    for name, cmd in group.commands.items():
        assert cmd.help, f"command {name} has no help"
        for p in cmd.params:
            if isinstance(p, click.Option):
                assert p.help, f"{name} {p.opts} has no help"
            else:
                assert getattr(p, "help", None), f"{name} argument {p.name} has no help"
        r = run(name, "--help")
        assert r.exit_code == 0, (name, r.output)


def test_cli_reference_documents_every_command():
    import typer.main

    text = (ROOT / "docs" / "cli.md").read_text()
    for name in typer.main.get_command(app).commands:
        assert f"## `pctce {name}`" in text, f"docs/cli.md lacks pctce {name} (run scripts/gen_cli_docs.py)"
