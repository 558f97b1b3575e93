"""Core of `pctce report`: one self-contained HTML (or Markdown) report over score directories.

:func:`build_report` gathers what the analysis commands compute — what was
scored, summaries, concordance and its reading, selection rules and task
agreement, shape, tail examples — plus the plots of :mod:`pctce_cli.plot` into
a :class:`ReportDoc`. :func:`to_html` turns it into one HTML string (images as
inline base64 PNG, styles inline, every piece of user text escaped, no network
resource); :func:`to_markdown` into Markdown plus PNG files to place beside it.
Writing happens only in :func:`save_report` (temporary name, then rename).
Each checkpoint's partition is read once: :mod:`.build` computes every
section's numbers from that one read.

Without matplotlib the report is still written, without plots, and says so.
No torch import here (transformers is imported only to decode tail examples).
"""

from pctce_cli.report.build import build_report
from pctce_cli.report.doc import SECTIONS, Details, Finding, Findings, Image, Notes, ReportDoc, ReportOptions, Section, Table, Text, walk
from pctce_cli.report.output import html_report, save_report, to_html, to_markdown

__all__ = [
    "SECTIONS",
    "Details",
    "Finding",
    "Findings",
    "Image",
    "Notes",
    "ReportDoc",
    "ReportOptions",
    "Section",
    "Table",
    "Text",
    "build_report",
    "html_report",
    "save_report",
    "to_html",
    "to_markdown",
    "walk",
]
