"""CLI commands of pictures and reports: `plot`, `report` (registered on the main app)."""

from __future__ import annotations


def register(app) -> None:
    """Add this module's commands to the Typer ``app``."""
