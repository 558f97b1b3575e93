"""The report as one self-contained HTML page or as Markdown with PNGs beside it; writing it."""

from __future__ import annotations

import html
import math
from pathlib import Path

from pctce_cli import atomic, fmt, plot
from pctce_cli.errors import UsageError
from pctce_cli.report.build import build_report
from pctce_cli.report.doc import Details, Findings, Image, Notes, ReportDoc, ReportOptions, Table, Text

# ---------------------------------------------------------------- HTML


REPORT_STYLE = (
    "h1{font-size:1.5em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}"
    "nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1.2em}"
    ".table{overflow-x:auto;margin:1em 0}"
    "table{border-collapse:collapse;font-size:.85em;font-variant-numeric:tabular-nums}"
    "caption{text-align:left;font-weight:600;padding:.3em 0;white-space:nowrap}"
    "th,td{border-bottom:1px solid #e5e5e5;padding:.25em .6em;text-align:left;vertical-align:top}"
    "th{background:#f6f6f6;white-space:nowrap}td.num{text-align:right;white-space:nowrap}"
    "td.text{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;max-width:40em}"
    "figure{margin:1.5em 0}figcaption{color:#555;font-size:.9em}"
    ".notes li{margin:.2em 0}.intro{color:#444}"
    "body{max-width:1200px}section{max-width:100%}"
    ".findings{padding-left:1.2em}.findings li{margin:.45em 0;font-size:1.02em}.findings a{font-size:.85em;margin-left:.3em}"
    "details{margin:.8em 0;border:1px solid #e5e5e5;border-radius:4px;padding:.3em .8em}"
    "summary{cursor:pointer;color:#335;font-weight:600}"
    ".table{max-width:100%}td.text{word-break:break-word}"
    "nav{margin:.6em 0}h1+p.intro{margin-top:.2em}"
)

_TEXT_COLUMNS = ("context", "target", "path", "data files", "tokenizer", "value")


def _columns(rows: list[dict]) -> list[str]:
    """Every column in order of first appearance, less those empty in every row."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    return [c for c in cols if any(r.get(c) is not None and not (isinstance(r.get(c), float) and math.isnan(r.get(c))) for r in rows)] or cols


def _cell(v) -> str:
    return fmt.number(v)


def table_html(t: Table) -> str:
    """One table, every cell and header escaped; numbers right-aligned."""
    from pctce_cli.render import records

    rows = records(t.rows)
    cols = _columns(rows)
    out = [f'<div class="table"><table>\n<caption>{html.escape(t.title)}</caption>\n<thead><tr>']
    out += [f"<th>{html.escape(str(c))}</th>" for c in cols]
    out.append("</tr></thead>\n<tbody>\n")
    for r in rows:
        out.append("<tr>")
        for c in cols:
            v = r.get(c)
            cls = "num" if isinstance(v, (int, float)) and not isinstance(v, bool) else "text" if c in _TEXT_COLUMNS else ""
            out.append(f'<td class="{cls}">{html.escape(_cell(v))}</td>' if cls else f"<td>{html.escape(_cell(v))}</td>")
        out.append("</tr>\n")
    out.append("</tbody></table></div>")
    return "".join(out)


def block_html(b, figures: frozenset = frozenset()) -> str:
    """One block of a section as HTML (``figures``: the names of the report's images, the findings' links)."""
    if isinstance(b, Text):
        return f"<p>{html.escape(b.text)}</p>"
    if isinstance(b, Notes):
        return '<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in b.lines) + "</ul>" if b.lines else ""
    if isinstance(b, Table):
        return table_html(b)
    if isinstance(b, Findings):
        return '<ol class="findings">' + "".join(
            f"<li>{html.escape(f.text)}" + (f' <a href="#plot-{html.escape(f.figure)}">figure</a>' if f.figure in figures else "") + "</li>" for f in b.items
        ) + "</ol>"
    if isinstance(b, Details):
        return f"<details><summary>{html.escape(b.summary)}</summary>\n" + "\n".join(block_html(x, figures) for x in b.blocks) + "\n</details>"
    if isinstance(b, Image):
        return (
            f'<figure id="plot-{html.escape(b.name)}"><img alt="{html.escape(b.caption)}" src="{plot.png_data_uri(b.png)}">'
            f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
        )
    raise TypeError(f"unknown report block {type(b).__name__}")


def to_html(doc: ReportDoc) -> str:
    """The report as one self-contained HTML page (no external resource of any kind)."""
    body = [f"<h1>{html.escape(doc.title)}</h1>"]
    body += [f'<p class="intro">{html.escape(p)}</p>' for p in doc.intro]
    body.append("<nav><ul>" + "".join(f'<li><a href="#{s.id}">{html.escape(s.title)}</a></li>' for s in doc.sections) + "</ul></nav>")
    figures = frozenset(_images(doc))
    for s in doc.sections:
        body.append(f'<section id="{s.id}">\n<h2>{html.escape(s.title)}</h2>')
        body += [block_html(b, figures) for b in s.blocks]
        body.append("</section>")
    return plot.html_page(doc.title, "\n".join(body), REPORT_STYLE)


def _images(doc: ReportDoc) -> list[str]:
    """The names of every image of the report, in details too."""

    def walk(blocks):
        for b in blocks:
            if isinstance(b, Image):
                yield b.name
            elif isinstance(b, Details):
                yield from walk(b.blocks)

    return [n for s in doc.sections for n in walk(s.blocks)]


def html_report(cks, options: ReportOptions | None = None) -> str:
    """:func:`build_report` rendered by :func:`to_html`."""
    return to_html(build_report(cks, options))


# ---------------------------------------------------------------- Markdown


def _md_text(text: str) -> str:
    """Plain text safe in Markdown: control characters as ``\\xNN``, HTML special characters as entities."""
    return fmt.markdown_text(text)


def to_markdown(doc: ReportDoc, image_prefix: str) -> tuple[str, dict[str, bytes]]:
    """The report as Markdown, and its images as ``{file name: PNG bytes}``.

    Images are referenced by relative file names ``<image_prefix>-<plot>.png``,
    to be written beside the Markdown file.
    """
    lines = [f"# {_md_text(doc.title)}", ""]
    lines += [p for x in doc.intro for p in (_md_text(x), "")]
    images: dict[str, bytes] = {}
    figures = set(_images(doc))
    for s in doc.sections:
        lines += [f"## {_md_text(s.title)}", ""]
        lines += _md_blocks(s.blocks, image_prefix, images, figures)
    return "\n".join(lines), images


def _md_blocks(blocks, image_prefix: str, images: dict[str, bytes], figures: set[str]) -> list[str]:
    """Markdown lines of blocks; images are added to ``images``; details become ``<details>`` (GitHub renders them)."""
    from pctce_cli.render import markdown_table, records

    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Text):
            lines += [_md_text(b.text), ""]
        elif isinstance(b, Notes):
            if b.lines:
                lines += [f"- {_md_text(n)}" for n in b.lines] + [""]
        elif isinstance(b, Findings):
            lines += [f"{k}. {_md_text(f.text)}" + (f" (figure: {image_prefix}-{f.figure}.png)" if f.figure in figures else "") for k, f in enumerate(b.items, 1)] + [""]
        elif isinstance(b, Details):
            lines += ["<details>", f"<summary>{_md_text(b.summary)}</summary>", ""] + _md_blocks(b.blocks, image_prefix, images, figures) + ["</details>", ""]
        elif isinstance(b, Table):
            rows = records(b.rows)  # markdown_table escapes every cell
            lines += [f"**{_md_text(b.title)}**", "", markdown_table(rows, _columns(rows)).rstrip("\n"), ""]
        elif isinstance(b, Image):
            name = f"{image_prefix}-{b.name}.png"
            images[name] = b.png
            lines += [f"![{_md_text(b.caption)}]({name})", ""]
    return lines


# ---------------------------------------------------------------- writing


def save_report(cks, out: str | Path, options: ReportOptions | None = None, markdown: bool = False) -> tuple[list[Path], list[str]]:
    """`pctce report`: build the report and write it (HTML, or Markdown with PNGs beside it).

    Returns:
        The written paths (the report first) and warnings for the user.
    """
    out = Path(out)
    if options is not None and options.tail_top < 0:  # it would leave out the tail section without a word
        raise UsageError(f"tail_top must be 0 or more (0: no tail examples), got {options.tail_top}", param="tail_top")
    if not markdown and out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"out {out}: expected an .html file (or pass markdown for Markdown)", param=("out", "markdown"))
    doc = build_report(cks, options)
    if not markdown:
        return [atomic.write_output(out, to_html(doc), "--out")], doc.warnings
    text, images = to_markdown(doc, out.stem)
    written = [atomic.write_output(out.parent / name, png, "--out") for name, png in images.items()]
    return [atomic.write_output(out, text, "--out"), *written], doc.warnings
