"""Limits on a candidate's divergence from its reference model, as written: ``p99 kl <= 0.05``, ``same_top1 >= 0.98``.

The text of a ``--rule`` (or a policy rule's ``summary``, ``value`` and
``at_most``/``at_least``) becomes the fields of a :class:`pctce_cli.gate.policy.Rule`;
:mod:`pctce_cli.gate.absolute` evaluates them (docs/kl.md). Also the one reader
of a rule's numeric limit.
"""

from __future__ import annotations

import math
import re

from pctce_cli.errors import PolicyError, UsageError

ABSOLUTE_SYNTAX = "SUMMARY kl|dp <= LIMIT or same_top1 >= LIMIT (SUMMARY: mean, max or pXX), e.g. 'p99 kl <= 0.05'"
ABSOLUTE = re.compile(r"^\s*([A-Za-z0-9_.]+)(?:\s+(kl|dp))?\s*(<=|>=)\s*(\S+)\s*$")


def parse_limit(spec: str, source: str | None = None) -> dict:
    """The :class:`~pctce_cli.gate.policy.Rule` fields of a limit on the divergence from a reference.

    The candidate must have been scored with ``pctce score --reference``; the
    rule needs no baseline. A value exactly at the limit passes.

    Args:
        spec: ``SUMMARY kl|dp <= LIMIT`` or ``same_top1 >= LIMIT`` (``<=`` and ``>=`` both allowed).
        source: Where it was written (a policy file's line); None: a ``--rule`` option.

    Raises:
        PolicyError: the text does not follow :data:`ABSOLUTE_SYNTAX`.

    Examples:
        >>> parse_limit("p99 kl <= 0.05")
        {'summary': 'p99', 'max_increase': 0.0, 'source': '--rule p99 kl <= 0.05', 'value': 'kl', 'at_most': 0.05}
        >>> parse_limit("same_top1 >= 0.98")["at_least"]
        0.98
    """
    from pctce_cli.stats.summaries import parse_summary_name

    where, param = (source, None) if source else (f"rule '{spec}'", "rule")  # the CLI words "rule" as --rule
    m = ABSOLUTE.match(spec)
    if not m:
        raise PolicyError(f"{where}: expected {ABSOLUTE_SYNTAX}", param=param)
    name, value, op, limit = m.groups()
    try:
        canon = name if name in ("max", "same_top1") else parse_summary_name(name).name
    except UsageError:
        canon = None
    if canon is None or not (canon in ("mean", "max", "same_top1") or re.fullmatch(r"p[0-9.]+", canon)) or (canon == "same_top1") != (value is None):
        raise PolicyError(f"{where}: expected {ABSOLUTE_SYNTAX}", param=param)
    number = limit_number(limit, limit, where, ABSOLUTE_SYNTAX, param)
    _check_range(canon, value or "kl", number, where, param)
    bound = {"at_most": number} if op == "<=" else {"at_least": number}
    return {"summary": canon, "max_increase": 0.0, "source": source or f"--rule {spec}", "value": value or "kl", **bound}


# what each limited quantity can be: a limit outside it passes always or never, a typo rather than a policy
RANGES = {"same_top1": (0.0, 1.0, "a fraction of targets"), "kl": (0.0, math.inf, "KL is never negative"), "dp": (-1.0, 1.0, "a difference of two probabilities")}


def _check_range(summary: str, value: str, number: float, where: str, param: str | None) -> None:
    """Refuse a limit outside the range of what it limits (``same_top1`` in [0, 1], KL ≥ 0, Δp in [−1, 1])."""
    name = "same_top1" if summary == "same_top1" else value
    lo, hi, why = RANGES[name]
    if not lo <= number <= hi:
        bounds = f"at least {lo:g}" if math.isinf(hi) else f"between {lo:g} and {hi:g}"
        raise PolicyError(f"{where}: a {name} limit must be {bounds} ({why}), got {number:g}", param=param)


def limit_number(number: str, limit: str, where: str, syntax: str, param: str | None = "rule") -> float:
    """The finite number ``number`` (the text of ``limit`` without its ``%``), or a :class:`PolicyError` naming ``where`` (``param``: the option it came from)."""
    try:
        value = float(number)
    except ValueError:
        raise PolicyError(f"{where}: limit '{limit}' is not a number (expected {syntax})", param=param) from None
    if not math.isfinite(value):
        raise PolicyError(f"{where}: limit '{limit}' is not a finite number", param=param)
    return value


__all__ = ["ABSOLUTE", "ABSOLUTE_SYNTAX", "limit_number", "parse_limit"]
