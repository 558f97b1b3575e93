"""Gate policies: :class:`Rule`, :class:`Policy`, policy TOML files and ``--rule`` options.

Every error is a :class:`~pctce_cli.errors.PolicyError` written for the user:
for a policy file it starts with ``FILE:LINE:`` and names the key (and the
rule number, from 1); for an option it quotes the ``--rule`` text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from pctce_cli.errors import PolicyError, UsageError
from pctce_cli.gate.limits import ABSOLUTE, limit_number, parse_limit
from pctce_cli.stats.units import UNITS

EXPECTED_SUMMARIES = "mean, ppl, iqr, top1, pXX or zXX"
TOP_KEYS = ("baseline", "candidate", "ci", "bootstrap", "seed", "require", "subset_field", "unit", "rule")
RULE_KEYS = ("summary", "max_increase", "max_increase_rel", "significant", "subset", "position", "ctx")
DIVERGENCE_RULE_KEYS = ("value", "at_most", "at_least")  # a limit on the divergence from a reference (parse_absolute_rule)
RULE_SYNTAX = "SUMMARY[@SUBSET]:+LIMIT[%][:significant], e.g. p50:+0.01, p95:+3%:significant or p95@code:+3%"
RANGE_SYNTAX = '">=A", "<B" or ">=A,<B" (tokens), e.g. ">=4096"'  # a rule on a position range (docs/definitions.md#position-in-the-context)
REQUIRE = ("all", "any")


# ---------------------------------------------------------------- rules and policy


@dataclass(frozen=True)
class Rule:
    """One gate rule: the largest allowed regression of one summary."""

    summary: str
    max_increase: float | None = None  # nats (absolute)
    max_increase_rel: float | None = None  # fraction of |baseline value|
    significant: bool = False
    source: str = ""  # where it was written: "gate.toml:7" or "--rule p50:+0.01"
    subset: str | None = None  # as written: "code", "domain=code", "*" (every subset) or "domain=*"; None: every document
    position: tuple | None = field(default=None, repr=False)  # ("pos" or "ctx", lo, hi or None): only targets in [lo, hi)
    # an absolute rule on a candidate's divergence from its reference model (docs/kl.md): ``p99 kl <= 0.05``
    value: str = field(default="ce", repr=False)
    at_most: float | None = field(default=None, repr=False)
    at_least: float | None = field(default=None, repr=False)

    @property
    def absolute(self) -> bool:
        """A threshold on the candidate's own value (no baseline): ``p99 kl <= 0.05``, ``same_top1 >= 0.98``."""
        return self.at_most is not None or self.at_least is not None

    @property
    def higher_is_better(self) -> bool:
        return self.summary == "top1" or self.at_least is not None

    def limit_text(self) -> str:
        """``+0.01`` (nats) or ``+3%``; for top1 ``−0.01`` / ``−3%``; for an absolute rule ``≤ 0.05`` / ``≥ 0.98``."""
        if self.absolute:
            return f"≤ {self.at_most:g}" if self.at_most is not None else f"≥ {self.at_least:g}"
        sign = "−" if self.higher_is_better else "+"
        if self.max_increase is not None:
            return f"{sign}{self.max_increase:g}"
        return f"{sign}{100 * self.max_increase_rel:g}%"

    def label(self) -> str:
        """E.g. ``p95 Δ ≤ +3% (if significant)``, ``top1 Δ ≥ −0.01``, ``p99 kl ≤ 0.05``."""
        if self.absolute:
            return f"{self.summary}{'' if self.summary == 'same_top1' else ' ' + self.value} {self.limit_text()}"
        op = "≥" if self.higher_is_better else "≤"
        in_nats = self.summary in ("mean", "iqr") or self.summary.startswith("p") and self.summary != "ppl"
        unit = " nats" if self.max_increase is not None and in_nats else ""
        return f"{self.summary} Δ {op} {self.limit_text()}{unit}" + (" (if significant)" if self.significant else "") + self.where_text(" at ")

    def where_text(self, before: str = "") -> str:
        """The position range a rule is checked on (``pos ≥ 4096``), after ``before``; empty without one."""
        from pctce_cli.stats.position import range_text

        return before + range_text(*self.position) if self.position else ""


@dataclass
class Policy:
    """A parsed policy: rules plus the optional settings a policy file may carry."""

    rules: list[Rule] = field(default_factory=list)
    baseline: str | None = None
    candidates: list[str] = field(default_factory=list)
    ci: float | None = None
    n_boot: int | None = None
    seed: int | None = None
    require: str | None = None
    subset_field: str | None = None  # the field a rule's bare subset value belongs to
    subset_field_at: str | None = None  # where it is written: "gate.toml:3"
    unit: str | None = None  # "token", "word" or "byte"; None: token (or --unit)
    source: str | None = None


def canonical_summary(name: str) -> str | None:
    """Canonical summary name (``p050`` → ``p50``), or None when ``name`` is not a gate summary.

    Args:
        name: A summary name as a user wrote it.

    Returns:
        The canonical name, or None when ``name`` names no summary.

    Examples:
        >>> canonical_summary("p050"), canonical_summary("p101")
        ('p50', None)
    """
    from pctce_cli.stats.summaries import parse_summary_name

    try:
        return parse_summary_name(name).name
    except UsageError:
        return None


# TOML type names for messages, most specific first (a bool is also an int)
_TOML_TYPES = ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"), (list, "array"), (dict, "table"))


def _toml_type(v) -> str:
    return next((name for t, name in _TOML_TYPES if isinstance(v, t)), "date/time")


def _got(v) -> str:
    return f"got {_toml_type(v)} {v!r}" if isinstance(v, (str, bool, int, float)) else f"got {_toml_type(v)}"


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_KEY_RE = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*=""")
_RULE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]")
_HEADER = re.compile(r"""^\s*\[\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))?""")


def key_lines(text: str) -> dict:
    """Line numbers (1-based) of the keys of a policy file, found in its text.

    tomllib reports no positions for valid documents, so semantic errors
    locate their key here. Keys: ``("top", key)``, ``("rule", k)`` for the
    k-th (0-based) ``[[rule]]`` header and ``("rule", k, key)`` for its keys.

    Args:
        text: The policy file's text.

    Returns:
        Key tuple → first line it appears on.

    Examples:
        >>> key_lines('baseline = "a"\\n[[rule]]\\nsummary = "p50"\\n')
        {('top', 'baseline'): 1, ('rule', 0): 2, ('rule', 0, 'summary'): 3}
    """
    out: dict = {}
    section: tuple = ("top",)
    n_rules = 0
    in_string = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        if _RULE_HEADER.match(line):
            section = ("rule", n_rules)
            out[section] = lineno
            n_rules += 1
            continue
        m = _HEADER.match(line)
        if m:
            section = ("other", lineno)
            name = next((g for g in m.groups() if g is not None), None)
            if name is not None:
                out.setdefault(("top", name), lineno)
            continue
        m = _KEY_RE.match(line)
        if m:
            key = next(g for g in m.groups() if g is not None)
            out.setdefault((*section, key), lineno)
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                in_string = quote
                break
    return out


def _syntax_error(path: str, e: Exception) -> PolicyError:
    text = str(e)
    m = re.match(r"^(.*) \(at line (\d+), column (\d+)\)$", text)
    if m:
        return PolicyError(f"{path}:{m.group(2)}: invalid TOML: {m.group(1)} (column {m.group(3)})")
    m = re.match(r"^(.*) \(at end of document\)$", text)
    if m:
        return PolicyError(f"{path}: invalid TOML: {m.group(1)} at the end of the file")
    return PolicyError(f"{path}: invalid TOML: {text}")


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy TOML file.

    Args:
        path: The policy file.

    Returns:
        The parsed :class:`Policy` (``source`` = ``path`` as given).

    Raises:
        PolicyError: the file is missing or malformed; the message starts with
            ``FILE:LINE:`` and names the key (and the rule number, from 1).
    """
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise PolicyError("reading a policy file needs Python 3.11+ or the 'tomli' package (pip install tomli)", param="policy") from None

    p = Path(path)
    where = str(path)
    if p.is_dir():
        raise PolicyError(f"policy {where} is a directory: expected a policy file (TOML)", param="policy")
    if not p.is_file():
        raise PolicyError(f"policy file not found: {where}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"{where}: not UTF-8 text") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _syntax_error(where, e) from None
    return parse_policy(doc, key_lines(text), where)


def _count(v, least: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


# the policy's plain settings: key -> (Policy attribute, check, what is expected)
_SETTINGS = {
    "baseline": ("baseline", lambda v: isinstance(v, str) and bool(v), 'a checkpoint id string, e.g. baseline = "release-1.3"'),
    "ci": ("ci", lambda v: _is_number(v) and 0 < v < 1, "a number between 0 and 1, e.g. ci = 0.95"),
    "bootstrap": ("n_boot", lambda v: _count(v, 1), "a positive integer, e.g. bootstrap = 1000"),
    "seed": ("seed", lambda v: _count(v, 0), "a non-negative integer"),
    "require": ("require", lambda v: v in REQUIRE, '"all" or "any"'),
    # what the gate pairs: tokens, or words or bytes across tokenizers (docs/definitions.md#words-and-bytes)
    "unit": ("unit", lambda v: v in UNITS, '"token", "word" or "byte" (words and bytes pair across tokenizers)'),
}


def parse_policy(doc: dict, lines: dict, where: str) -> Policy:
    """Validate a parsed policy document.

    Args:
        doc: The document as tomllib parsed it.
        lines: Key positions from :func:`key_lines`, for ``FILE:LINE:`` prefixes.
        where: The file name used in messages and as ``Policy.source``.

    Returns:
        The validated :class:`Policy`.

    Raises:
        PolicyError: an unknown key or a value of the wrong type or range.
    """

    def at(key: tuple) -> str:
        line = lines.get(key)
        if line is None and len(key) == 3:
            line = lines.get(key[:2])
        if line is None and key[0] == "rule":
            line = lines.get(("top", "rule"))
        return f"{where}:{line}" if line else where

    pol = Policy(source=where)
    for key, v in doc.items():
        loc = at(("top", key))
        if key not in TOP_KEYS:
            raise PolicyError(f"{loc}: unknown key '{key}' (expected {', '.join(TOP_KEYS)})")
        if key in _SETTINGS:
            attr, ok, expected = _SETTINGS[key]
            if not ok(v):
                raise PolicyError(f"{loc}: {key} must be {expected} ({_got(v)})")
            setattr(pol, attr, float(v) if key == "ci" else v)
        elif key == "candidate":
            items = [v] if isinstance(v, str) else v
            if not isinstance(items, list) or not items or not all(isinstance(x, str) and x for x in items):
                raise PolicyError(f"{loc}: candidate must be a glob or an array of globs, e.g. candidate = [\"run-b.*\"] ({_got(v)})")
            pol.candidates = list(items)
        elif key == "subset_field":
            if not isinstance(v, str) or not v or "=" in v:
                raise PolicyError(f"{loc}: subset_field must name a subset field, e.g. subset_field = \"domain\" ({_got(v)})")
            pol.subset_field, pol.subset_field_at = v, loc
        elif key == "rule":
            if not isinstance(v, list) or not all(isinstance(r, dict) for r in v):
                raise PolicyError(f"{loc}: 'rule' must be an array of tables: write each rule under a [[ rule ]] header")
            pol.rules = [_parse_rule(r, k, at, where) for k, r in enumerate(v)]
    return pol


def _parse_rule(r: dict, k: int, at, where: str) -> Rule:
    n = k + 1
    for key in r:
        if key not in RULE_KEYS + DIVERGENCE_RULE_KEYS:
            raise PolicyError(f"{at(('rule', k, key))}: rule {n}: unknown key '{key}' (expected {', '.join(RULE_KEYS)})")
    if any(key in r for key in ("value", "at_most", "at_least")):  # a threshold on the divergence from a reference
        line = at(("rule", k))
        ops = [(key, r[key]) for key in ("at_most", "at_least") if key in r]
        if len(ops) != 1 or not _is_number(ops[0][1]) or "summary" not in r or not isinstance(r["summary"], str) or r.get("value", "kl") not in ("kl", "dp"):
            raise PolicyError(f"{line}: rule {n}: a divergence rule is summary = \"p99\", value = \"kl\" or \"dp\" and one of at_most or at_least (a number), e.g. at_most = 0.05")
        op = "<=" if ops[0][0] == "at_most" else ">="
        return Rule(**parse_limit(f"{r['summary']} {r.get('value', 'kl')} {op} {ops[0][1]}", line if line != where else f"{where} rule {n}"))
    if "summary" not in r:
        raise PolicyError(f"{at(('rule', k))}: rule {n}: missing key 'summary' (e.g. summary = \"p95\")")
    name = r["summary"]
    loc = at(("rule", k, "summary"))
    if not isinstance(name, str):
        raise PolicyError(f"{loc}: rule {n}: summary must be a string, e.g. summary = \"p95\" ({_got(name)})")
    canon = canonical_summary(name)
    if canon is None:
        raise PolicyError(f"{loc}: rule {n}: unknown summary '{name}' (expected {EXPECTED_SUMMARIES})")
    limits = {}
    for key, unit in (("max_increase", "nats, e.g. 0.01"), ("max_increase_rel", "a fraction, e.g. 0.03 for 3%")):
        if key in r:
            v = r[key]
            loc = at(("rule", k, key))
            if not _is_number(v) or not math.isfinite(v):
                raise PolicyError(f"{loc}: rule {n}: {key} must be a number ({unit}), {_got(v)}")
            if v < 0:
                raise PolicyError(f"{loc}: rule {n}: {key} must be >= 0 (the largest allowed regression), got {v!r}")
            limits[key] = float(v)
    if len(limits) == 2:
        raise PolicyError(
            f"{at(('rule', k, 'max_increase_rel'))}: rule {n}: give either max_increase (nats) or "
            "max_increase_rel (fraction), not both"
        )
    if not limits:
        raise PolicyError(
            f"{at(('rule', k))}: rule {n}: no limit: give max_increase (nats, e.g. 0.01) "
            "or max_increase_rel (fraction, e.g. 0.03)"
        )
    sig = r.get("significant", False)
    if not isinstance(sig, bool):
        raise PolicyError(f"{at(('rule', k, 'significant'))}: rule {n}: significant must be true or false ({_got(sig)})")
    sub = r.get("subset")
    if sub is not None and (not isinstance(sub, str) or not sub.strip() or sub.strip().endswith("=")):
        raise PolicyError(
            f"{at(('rule', k, 'subset'))}: rule {n}: subset must be a subset value, FIELD=VALUE or \"*\" (every subset), "
            f"e.g. subset = \"code\" ({_got(sub)})"
        )
    line = at(("rule", k))
    source = line if line != where else f"{where} rule {n}"
    rng = _rule_range(r, k, n, at, sub)
    return Rule(canon, limits.get("max_increase"), limits.get("max_increase_rel"), sig, source, sub.strip() if sub else None, rng)


def _rule_range(r: dict, k: int, n: int, at, sub) -> tuple | None:
    """A rule's ``position``/``ctx`` key as ``(dim, lo, hi)`` (docs/definitions.md#position-in-the-context), checked."""
    from pctce_cli.stats.position import position_range

    keys = [key for key in ("position", "ctx") if key in r]
    if not keys:
        return None
    if len(keys) == 2 or sub is not None:
        raise PolicyError(f"{at(('rule', k, keys[-1]))}: rule {n}: a rule is checked on one position range or one subset: give one of position, ctx and subset")
    v = r[keys[0]]
    try:
        lo, hi = position_range(v) if isinstance(v, str) else position_range("")
    except ValueError:
        raise PolicyError(f"{at(('rule', k, keys[0]))}: rule {n}: {keys[0]} must be {RANGE_SYNTAX} ({_got(v)})") from None
    return ("pos" if keys[0] == "position" else "ctx", lo, hi)


def parse_rule_option(spec: str) -> Rule:
    """Parse a ``--rule`` option: ``SUMMARY[@SUBSET]:+LIMIT[%][:significant]``.

    ``LIMIT`` is the largest allowed regression: nats, or a percentage of the
    baseline value with ``%``. The ``+`` is optional. ``@SUBSET`` gates one
    subset (``p95@code``, ``p95@domain=code``) or each subset (``p95@*``).

    Args:
        spec: The option's text, e.g. ``p95:+3%:significant``.

    Returns:
        The :class:`Rule`, with ``source`` = ``--rule SPEC``.

    Raises:
        PolicyError: the text does not follow the syntax, names an unknown
            summary or flag, or gives a negative or non-finite limit.

    Examples:
        >>> parse_rule_option("p50:+0.01")
        Rule(summary='p50', max_increase=0.01, max_increase_rel=None, significant=False, source='--rule p50:+0.01', subset=None)
        >>> r = parse_rule_option("p95@code:+3%:significant")
        >>> r.max_increase_rel, r.significant, r.subset
        (0.03, True, 'code')
    """
    if ABSOLUTE.match(spec):  # a limit on the divergence from a reference: p99 kl <= 0.05
        return Rule(**parse_limit(spec))
    parts = [s.strip() for s in spec.split(":")]
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise PolicyError(f"rule '{spec}': expected {RULE_SYNTAX}", param="rule")
    name, limit = parts[0], parts[1]
    name, at_sign, sub = name.partition("@")
    name, sub = name.strip(), sub.strip()
    if at_sign and (not sub or sub.endswith("=")):
        raise PolicyError(f"rule '{spec}': name the subset after '@', e.g. p95@code:+3% or p95@*:+3% (every subset)", param="rule")
    canon = canonical_summary(name)
    if canon is None:
        raise PolicyError(f"rule '{spec}': unknown summary '{name}' (expected {EXPECTED_SUMMARIES})", param="rule")
    rng = None
    if sub[:3] in ("pos", "ctx") and sub[3:4] in (">", "<"):  # p50@pos>=4096: a position range, not a subset
        from pctce_cli.stats.position import position_range

        try:
            rng, sub = (sub[:3], *position_range(sub[3:])), ""
        except ValueError:
            raise PolicyError(f"rule '{spec}': a position range is pos or ctx then >=A, <B or >=A,<B (tokens), e.g. p50@pos>=4096:+1%", param="rule") from None
    sig = False
    if len(parts) == 3:
        if parts[2] != "significant":
            raise PolicyError(f"rule '{spec}': unknown flag '{parts[2]}' (the only flag is 'significant')", param="rule")
        sig = True
    rel = limit.endswith("%")
    number = limit[:-1].strip() if rel else limit
    value = limit_number(number, limit, f"rule '{spec}'", RULE_SYNTAX)
    if value < 0:
        raise PolicyError(f"rule '{spec}': the limit must be >= 0 (the largest allowed regression), got {limit}", param="rule")
    if rel:
        return Rule(canon, None, value / 100.0, sig, f"--rule {spec}", sub or None, rng)
    return Rule(canon, value, None, sig, f"--rule {spec}", sub or None, rng)

