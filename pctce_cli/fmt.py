"""The package's one home for turning numbers into text (tables, sentences, signed deltas).

Every formatter shares one rule for missing values (None and NaN print as
``—`` or ``n/a``) and infinities, so a number looks the same in a Rich table,
a gate message and a report.
"""

from __future__ import annotations

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
