"""The layers of docs/architecture.md hold: import-linter's contracts, no import cycles, small modules."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pctce_cli"
MAX_LINES = 450  # a module past this mixes concerns: split it along its seams


def test_import_contracts_hold():
    """The contracts in pyproject.toml: layers top to bottom, pure statistics, acyclic siblings."""
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


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
