"""CLI commands for release decisions: `compare`, `gate`, `tail` (registered on the main app)."""

from __future__ import annotations


def register(app) -> None:
    """Add this module's commands to the Typer ``app``."""
