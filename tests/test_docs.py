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


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (lower case, punctuation dropped, spaces → hyphens)."""
    anchors, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        if not fenced and re.match(r"#{1,6} ", line):
            anchors.add(re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-"))
    return anchors


def test_links_to_sections_of_the_docs_point_at_headings():
    """Every ``[…](page.md#anchor)`` in README.md and docs/ names a heading of that page (definitions.md's above all)."""
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target, anchor in re.findall(r"\]\(([^)\s#]*\.md)?#([^)\s]+)\)", page.read_text(encoding="utf-8")):
            linked = page.parent / target if target else page
            if anchor not in heading_anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target}#{anchor}")
    assert broken == []
