"""Cores of the analysis commands: each builds a :class:`~pctce_cli.analysis.report.Report` from arrays.

One module per command family — :mod:`.summary` (`pctce summary`, and the
per-checkpoint tables the others read), :mod:`.concord`, :mod:`.select`,
:mod:`.shape` (`shape`, `decompose`) — over checkpoints chosen by
:mod:`pctce_cli.catalog` and statistics from :mod:`pctce_cli.stats`.
Nothing here prints or parses command-line strings; no torch import.
"""
