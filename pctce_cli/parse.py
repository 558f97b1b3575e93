"""Option strings → the core's values (``--percentiles 50,95`` → ``[50.0, 95.0]``), with option-named errors.

Used by the CLI and by cores that accept the same strings (``plot --summaries``)."""

from __future__ import annotations

from collections.abc import Sequence

from pctce_cli.errors import UsageError
from pctce_cli.stats.summaries import DEFAULT_EDGES, DEFAULT_PERCENTILES, parse_summary_name


def parse_percentiles(text: str | Sequence[float] | None, default=DEFAULT_PERCENTILES) -> list[float]:
    """Parse ``--percentiles 10,25,50`` into numbers in [0, 100].

    Examples:
        >>> parse_percentiles("10, 50,99.9")
        [10.0, 50.0, 99.9]
    """
    if text is None or text == "":
        return [float(q) for q in default]
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        try:
            q = float(str(item).strip())
        except ValueError:
            raise UsageError(f"percentiles: '{str(item).strip()}' is not a number (expected e.g. 50,90,95,99)", param="percentiles") from None
        if not 0 <= q <= 100:
            raise UsageError(f"percentiles: {item} is outside [0, 100]", param="percentiles")
        out.append(q)
    return out


def parse_summary_list(text: str | Sequence[str] | None, default: Sequence[str], option: str) -> list[str]:
    """Parse ``--set mean,p50,p95`` into validated summary names.

    Examples:
        >>> parse_summary_list("mean, p50", ["mean"], "--set")
        ['mean', 'p50']
    """
    if text is None or text == "":
        return list(default)
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    out = []
    for s in items:
        try:
            out.append(parse_summary_name(s).name)
        except UsageError as e:
            raise UsageError(f"{option}: {e}", param=option) from None
    return out


def parse_edges(text: str | None) -> list[float]:
    """Parse ``--edges 0,0.1,0.5,inf`` (strictly increasing; default docs/definitions.md#summaries-of-one-checkpoint: bands).

    Examples:
        >>> parse_edges("0,1,inf")
        [0.0, 1.0, inf]
    """
    if not text:
        return list(DEFAULT_EDGES)
    try:
        out = [float(x) for x in text.split(",")]
    except ValueError:
        raise UsageError(f"edges: expected numbers separated by commas (e.g. 0,0.5,5,inf), got '{text}'", param="edges") from None
    if len(out) < 2 or any(b <= a for a, b in zip(out, out[1:])):
        raise UsageError(f"edges must be at least two strictly increasing numbers, got '{text}'", param="edges")
    return out
