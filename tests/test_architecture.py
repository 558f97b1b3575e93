"""The layers of docs/architecture.md hold: import-linter's contracts, no import cycles, small modules."""

from __future__ import annotations

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
