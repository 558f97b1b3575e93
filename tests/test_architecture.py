"""The layers of docs/architecture.md hold: import-linter's contracts, no import cycles, small modules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pctce_cli"
MAX_LINES = 450  # a module past this mixes concerns: split it along its seams


def test_import_contracts_hold():
    """The contracts in pyproject.toml: layers top to bottom, pure statistics, acyclic siblings."""
    # in a child process: import-linter configures logging (it disables existing loggers),
    # which would silence the package's loggers for the tests that run after this one
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))"
    r = subprocess.run([sys.executable, "-c", code, str(ROOT / "pyproject.toml")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


def test_no_module_imports_itself_back():
    """No cycle between any two modules, counting imports inside functions (lazy imports too)."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("pctce_cli", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and graph.chain_exists(importer=imported, imported=module):
                cycles.append(f"{module} -> {imported} -> … -> {module}")
    assert cycles == []


def test_no_module_is_too_long():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def layer_entries(text: str) -> list[tuple[list[str], str]]:
    """The entries of docs/architecture.md's layer map: (names in the first 24 columns, the description).

    An entry starts at a line whose first 24 columns are not blank: its names
    (``stats/``, ``api.py``, ``gate/ plot/``) run up to two spaces, the description
    follows; the lines below it with those columns blank continue the description.
    """
    block = text.split("## The layers, top to bottom", 1)[1].split("```", 2)[1]
    entries: list[tuple[list[str], str]] = []
    for line in block.splitlines():
        if line[:24].strip():
            names, _, desc = line.strip().partition("  ")
            entries.append((names.split(), desc))
        elif entries and line.strip():
            entries[-1] = (entries[-1][0], entries[-1][1] + " " + line.strip())
    return entries


def test_every_module_is_named_in_the_architecture_map():
    """Each module of pctce_cli/ has its place in docs/architecture.md's layer map.

    A top-level module is named in the names column (``tail.py``); a package
    (``stats/``) too; a module of a package (``stats/units.py``) by its file name
    in the description of its package's entry (``stats/ … units.py …``).
    """
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    entries = layer_entries(text)
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) == 1:
            named = any(rel.name in names for names, _ in entries)
        else:
            package = "/".join(rel.parts[:-1]) + "/"
            pattern = re.compile(r"(?<![\w/])" + re.escape(rel.name) + r"\b")
            named = any(package in names and (rel.name == "__init__.py" or pattern.search(desc)) for names, desc in entries)
        if not named:
            missing.append(str(rel))
    assert missing == [], f"docs/architecture.md does not name {', '.join(missing)}: add each to its layer's line"
