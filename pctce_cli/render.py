"""Rendering: Rich tables and progress for people; JSON, CSV and Markdown for machines.

Nothing here computes a statistic: it formats what the core returns.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import threading
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from pctce_cli import atomic, fmt
from pctce_cli.fmt import printable

FORMATS = ("table", "json", "csv", "markdown")

stderr = Console(stderr=True)


def error(message: str) -> None:
    """Print a one-line error for a user mistake (no traceback)."""
    stderr.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True, emoji=False)


def warn(message: str) -> None:
    """Print a one-line warning."""
    stderr.print(f"[yellow]Warning:[/] {escape(message)}", highlight=False, soft_wrap=True, emoji=False)


def _clean(v):
    """JSON-safe value: NaN/inf become null, numpy scalars become Python numbers."""
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        v = v.item()
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


def records(rows: list[dict]) -> list[dict]:
    """Rows with JSON-safe values."""
    return [{k: _clean(v) for k, v in r.items()} for r in rows]


def fit_columns(rows: list[dict], width: int) -> list[list[str]]:
    """Split a wide table's columns into blocks that fit ``width``, repeating the first (key) column.

    Columns that are empty in every row are left out of the terminal view.

    Examples:
        >>> rows = [{"checkpoint": "a", "x": 1.0, "y": None, "z": 2.0}]
        >>> fit_columns(rows, 200)
        [['checkpoint', 'x', 'z']]
        >>> fit_columns(rows, 24)
        [['checkpoint', 'x'], ['checkpoint', 'z']]
    """
    if not rows:
        return [[]]
    columns = [c for c in rows[0] if any(r.get(c) is not None and not (isinstance(r.get(c), float) and math.isnan(r.get(c))) for r in rows)]
    if not columns:
        return [list(rows[0])]
    widths = {c: max(len(c), *(len(fmt.number(r.get(c))) for r in rows)) + 3 for c in columns}
    # the key repeated in every block: the first column, and the second too when
    # the first does not identify a row (e.g. candidate × rule)
    n_key = 1 if len({fmt.number(r.get(columns[0])) for r in rows}) == len(rows) or len(columns) < 3 else 2
    key, rest = columns[:n_key], columns[n_key:]
    key_width = sum(widths[c] for c in key) + 1
    blocks, current, used = [], list(key), key_width
    for c in rest:
        if len(current) > n_key and used + widths[c] > width:
            blocks.append(current)
            current, used = list(key), key_width
        current.append(c)
        used += widths[c]
    blocks.append(current)
    return blocks


def rich_table(rows: list[dict], columns: list[str] | None = None, title: str | None = None) -> Table:
    """A Rich table of ``rows`` (dicts), numbers right-aligned."""
    columns = columns or (list(rows[0]) if rows else [])
    table = Table(title=escape(title) if title else None, title_justify="left", header_style="bold")
    for c in columns:
        numeric = any(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows)
        table.add_column(escape(c), justify="right" if numeric else "left")
    for r in rows:
        table.add_row(*(escape(fmt.number(r.get(c))) for c in columns))
    return table


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table (``_none_`` for a table without rows, which Markdown cannot draw)."""
    columns = columns or (list(rows[0]) if rows else [])
    if not columns:
        return "_none_\n"
    lines = ["| " + " | ".join(fmt.markdown_cell(c) for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt.markdown_cell(fmt.number(r.get(c))) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict], columns: list[str] | None = None) -> str:
    """CSV with a header row; NaN as empty."""
    import csv

    columns = columns or (list(rows[0]) if rows else [])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in records(rows):
        w.writerow({c: _csv_cell(r.get(c)) for c in columns})
    return buf.getvalue()


def tables_csv(sections: list[tuple[str, list[dict]]]) -> str:
    """Named tables as one CSV: a single table as it is; several as one table whose first column names each row's table.

    One header and one kind of row per stream, so any CSV reader takes it whole.

    Examples:
        >>> print(tables_csv([("a", [{"x": 1}]), ("b", [{"y": 2}])]), end="")
        table,x,y
        a,1,
        b,,2
    """
    if len(sections) == 1:
        return csv_text(sections[0][1])
    rows = [{"table": name, **r} for name, table in sections for r in table]
    columns = ["table", *dict.fromkeys(k for _, table in sections for r in table for k in r)]
    return csv_text(rows, columns)


def _csv_cell(v):
    if v is None:
        return ""
    return printable(v) if isinstance(v, str) else v


def emit(sections: list[tuple[str, list[dict]]], fmt: str, output: str | Path | None = None, notes: list[str] | None = None, console: Console | None = None) -> None:
    """Write named tables in one of :data:`FORMATS` to ``output`` or the terminal.

    JSON is one object keyed by section name (plus ``notes``); CSV is one table
    (:func:`tables_csv`: with several sections, a first column ``table`` names
    each row's section); Markdown writes a heading per section.
    """
    notes = notes or []
    if fmt == "json":
        obj = {name: records(rows) for name, rows in sections}
        if notes:
            obj["notes"] = notes
        text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    elif fmt == "csv":
        text = tables_csv(sections)
    elif fmt == "markdown":
        parts = [f"### {name}\n\n{markdown_table(rows)}" for name, rows in sections]
        if notes:
            parts.append("\n".join(f"- {printable(n)}" for n in notes) + "\n")
        text = "\n".join(parts)
    else:
        with _terminal(output, console) as target:
            _print_sections(target, sections, notes)
        return
    _write(text, output)


@contextlib.contextmanager
def _terminal(output, console):
    """The console to draw tables on: ``output`` (a file, 160 columns) or the terminal."""
    if not output:
        yield console or Console()
        return
    buf = io.StringIO()
    yield Console(file=buf, width=160)
    atomic.write_output(output, buf.getvalue(), "--output")


def _print_sections(target: Console, sections, notes, marker: str = "") -> None:
    for name, rows in sections:
        if not rows:  # say so rather than drop the table: "no pairs disagree" is an answer
            target.print(f"{escape(name)}: none", highlight=False)
            continue
        for k, cols in enumerate(fit_columns(rows, target.width)):
            target.print(rich_table(rows, cols, title=name if k == 0 else None))
    for n in notes:
        target.print(marker + escape(printable(n)), highlight=False)


def _write(text: str, output) -> None:
    if output:
        atomic.write_output(output, text, "--output")
    else:
        sys.stdout.write(text)


def emit_parts(parts: list[tuple[str, list[tuple[str, list[dict]]], list[str]]], fmt: str, output: str | Path | None = None, header: list[str] | None = None, console: Console | None = None) -> None:
    """Write several titled reports (title, sections, notes) in one of :data:`FORMATS`.

    JSON is one object: ``{"header": [...], "parts": {title: {section: rows, "notes": [...]}}}``;
    Markdown gives each part a ``##`` heading; CSV is one table whose ``table`` column is ``part — section``;
    the table format draws a rule per part, the tables, then the notes as arrows.
    """
    header = header or []
    if fmt == "json":
        obj = {"header": header, "parts": {}}
        for title, sections, notes in parts:
            obj["parts"][title] = {name: records(rows) for name, rows in sections} | {"notes": notes}
        text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    elif fmt == "csv":
        text = tables_csv([(f"{title} — {name}", rows) for title, sections, _ in parts for name, rows in sections])
    elif fmt == "markdown":
        out = [f"{h}\n" for h in header]
        for title, sections, notes in parts:
            out.append(f"## {title}\n")
            out += [f"### {name}\n\n{markdown_table(rows)}" for name, rows in sections]
            if notes:
                out.append("\n".join(f"- {n}" for n in notes) + "\n")
        text = "\n".join(out)
    else:
        from rich.rule import Rule

        with _terminal(output, console) as target:
            for h in header:
                target.print(escape(h), highlight=False)
            for title, sections, notes in parts:
                target.print(Rule(f"[bold]{escape(title)}", align="left"))
                _print_sections(target, sections, notes, marker="[cyan]→[/] ")
        return
    _write(text, output)


class RichReporter:
    """Rich progress bar per checkpoint with targets/s (the scoring core's Reporter)."""

    def __init__(self, console: Console | None = None, enabled: bool = True, show_skips: bool = True):
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.show_skips = show_skips
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("targets"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled,
        )
        # the bar being drawn, its start time and resumed count: one set per thread, because the demo
        # relays each of its worker processes' events on a thread of its own (pctce_cli/demo/jobs.py)
        self._local = threading.local()

    task = property(lambda self: getattr(self._local, "task", None), lambda self, v: setattr(self._local, "task", v))
    _t0 = property(lambda self: getattr(self._local, "t0", None), lambda self, v: setattr(self._local, "t0", v))
    _done0 = property(lambda self: getattr(self._local, "done0", 0), lambda self, v: setattr(self._local, "done0", v))

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def checkpoint_started(self, spec, total_targets: int, done_targets: int) -> None:
        import time

        self.task = self.progress.add_task(spec.id, total=total_targets, completed=done_targets, rate="")
        self._t0, self._done0 = time.perf_counter(), done_targets

    def advance(self, n: int) -> None:
        import time

        if self.task is None:
            return
        self.progress.advance(self.task, n)
        done = self.progress.tasks[self.task].completed - self._done0
        rate = done / max(1e-9, time.perf_counter() - self._t0)
        self.progress.update(self.task, rate=f"{rate:,.0f} tok/s")

    def checkpoint_finished(self, result) -> None:
        if result.status == "skipped" and self.show_skips:
            self.progress.console.print(f"[dim]↷ {escape(result.id)}: {escape(result.message)}[/]", highlight=False)
        if self.task is not None:
            self.progress.update(self.task, visible=result.status == "scored")
        self.task = None
