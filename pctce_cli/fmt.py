"""The package's one home for turning numbers into text (tables, sentences, signed deltas).

Every formatter shares one rule for missing values (None and NaN print as
``—`` or ``n/a``) and infinities, so a number looks the same in a Rich table,
a gate message and a report.
"""

from __future__ import annotations

import html
import math
import re

# C0 and C1 control characters and DEL: in data they could drive the terminal (colours,
# window titles, cursor moves), so human-readable outputs show them escaped
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _infinite(v, plus: str = "") -> str | None:
    if isinstance(v, float) and math.isinf(v):
        return f"{plus}∞" if v > 0 else "-∞"
    return None


def printable(text: str) -> str:
    r"""``text`` with control characters shown as ``\xNN`` (newlines and tabs kept).

    Examples:
        >>> printable("red \x1b[31mtext\x1b[0m\a")
        'red \\x1b[31mtext\\x1b[0m\\x07'
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# characters XML 1.0 cannot hold at all, even escaped: C0 controls but tab/LF/CR,
# surrogates (a lone one from a "\ud800" escape in JSON) and the two non-characters
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def markdown_cell(text) -> str:
    r"""``text`` as one GitHub-flavoured Markdown table cell, shown as it is and able to do nothing else.

    Control characters show as ``\xNN``, line breaks as ``\n`` (a break would
    end the row), ``|`` is escaped (it would start a cell), and ``&``, ``<``,
    ``>`` become entities, so a label cannot inject HTML (a ``<script>``) into
    a page or a ``$GITHUB_STEP_SUMMARY``.

    Examples:
        >>> markdown_cell("a|b\n<script>\x1b")
        'a\\|b\\n&lt;script&gt;\\x1b'
    """
    return markdown_text(str(text).replace("\r", "\\r").replace("\n", "\\n")).replace("|", "\\|")


def markdown_text(text) -> str:
    r"""``text`` as Markdown prose (a note, a heading): control characters as ``\xNN``, HTML special characters as entities.

    Examples:
        >>> markdown_text("x < y & <b>z</b>")
        'x &lt; y &amp; &lt;b&gt;z&lt;/b&gt;'
    """
    return html.escape(printable(str(text)), quote=False)


def xml_text(text) -> str:
    r"""``text`` with the characters XML 1.0 cannot hold (C0 controls, lone surrogates) shown as ``\xNN`` / ``\uNNNN``.

    The XML writer still escapes ``&``, ``<``, ``>`` and quotes; this makes the
    rest storable, so the document stays well-formed.

    Examples:
        >>> xml_text("bell\x07 esc\x1b ok\ttab")
        'bell\\x07 esc\\x1b ok\ttab'
    """
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", str(text))


def plot_text(text: str) -> str:
    r"""``text`` as matplotlib should draw it literally: control characters as ``\xNN``, ``$`` escaped.

    A control character has no glyph (matplotlib warns, printing it raw to the
    terminal) and is not allowed in an SVG; a ``$`` would start mathtext (a
    single one is a parse error).

    Examples:
        >>> plot_text("cost $5\x1b[31m")
        'cost \\$5\\x1b[31m'
    """
    return xml_text(printable(str(text))).replace("$", r"\$")


def clean_figure_text(fig) -> None:
    """Pass every text of a matplotlib Figure through :func:`plot_text`, just before it is drawn.

    Labels reach a figure in many places (titles, legends, category ticks,
    annotations); cleaning them at the one point where figures are rendered
    covers all of them. Fixed tick labels are regenerated at draw time from the
    axis formatter, so its strings are cleaned too.
    """
    from matplotlib.text import Text

    for t in fig.findobj(Text):
        raw = t.get_text()
        if raw and not getattr(t, "_pctce_clean", False):
            t.set_text(plot_text(raw))
            t._pctce_clean = True
    from matplotlib.ticker import FixedFormatter, FuncFormatter

    for ax in fig.get_axes():
        for axis in (ax.xaxis, ax.yaxis):
            for f in (axis.get_major_formatter(), axis.get_minor_formatter()):
                if getattr(f, "_pctce_clean", False):
                    continue
                if isinstance(f, FixedFormatter):
                    f.seq = [plot_text(x) for x in f.seq]
                elif isinstance(f, FuncFormatter):  # set_ticks(…, labels) wraps the labels in one
                    f.func = lambda x, pos, func=f.func: plot_text(func(x, pos))
                f._pctce_clean = True


def number(v, digits: int = 4) -> str:
    """A table cell: integers with thousands separators, floats to ``digits`` places (scientific when tiny or huge).

    Examples:
        >>> number(3.14159), number(12345), number(2.5e-4), number(float("nan")), number(True)
        ('3.1416', '12,345', '2.500e-04', '—', 'yes')
    """
    if _missing(v):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        inf = _infinite(v)
        if inf:
            return inf
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}f}".rstrip("0").rstrip(".") if abs(v) >= 1000 else f"{v:.{digits}f}"
    return printable(str(v))


def short(v, digits: int = 3) -> str:
    """A number inside a sentence: fixed ``digits`` decimals, ``n/a`` when missing.

    Examples:
        >>> short(0.58123), short(None)
        ('0.581', 'n/a')
    """
    return "n/a" if _missing(v) else f"{v:.{digits}f}"


def signed(x, digits: int = 3) -> str:
    """``+0.05`` / ``−0.03`` (a true minus sign), ``digits`` significant figures.

    Examples:
        >>> signed(0.05), signed(-0.03), signed(0.0)
        ('+0.05', '−0.03', '+0')
    """
    if _missing(x):
        return "—"
    return ("+" if x >= 0 else "−") + f"{abs(x):.{digits}g}"


def spec(v, format_spec: str) -> str:
    """``format(v, format_spec)`` with the shared rules for missing values (``—``) and infinities (``+∞``/``−∞``).

    Examples:
        >>> spec(0.1234, "+.2f"), spec(float("inf"), "+.2f"), spec(None, ".3f")
        ('+0.12', '+∞', '—')
    """
    if _missing(v):
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "+∞" if v > 0 else "−∞"
    return format(v, format_spec)


def json_number(v):
    """A number for a JSON document: ``None`` (null) when missing, NaN or infinite, else ``v`` unchanged.

    Examples:
        >>> json_number(1.5), json_number(3), json_number(float("nan")), json_number(float("-inf")), json_number(None)
        (1.5, 3, None, None, None)
    """
    if _missing(v) or (isinstance(v, float) and math.isinf(v)):
        return None
    return v
