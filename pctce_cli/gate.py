"""Release gate: a policy (largest allowed regression per summary) → a verdict per candidate.

Pure: reads stores and a policy file, returns a :class:`GateResult`, never
exits. The CLI renders it, writes the CI files with the writers at the end of
this module (:func:`write_json`, :func:`markdown_report`, :func:`write_junit`,
…) and exits 1 when the gate failed. See docs/gate.md for the policy syntax.

A rule on summary ``s`` compares candidate and baseline on the same targets:

* regression = s(candidate) − s(baseline) (for ``top1``, where higher is
  better, the decrease s(baseline) − s(candidate));
* ``max_increase`` (nats): the rule fails when regression > max_increase;
  ``max_increase_rel`` (fraction): fails when regression / |s(baseline)| >
  max_increase_rel. A regression exactly at the limit passes (compared with
  a 1e-12 tolerance for float64 round-off, far below float32 CE resolution);
* ``significant = true``: a regression over the limit counts only when the
  paired bootstrap interval of Δ excludes zero on the regression side.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pctce_cli.analysis import Checkpoint, Report
from pctce_cli.errors import PolicyError, StoreError, UsageError

EPS = 1e-12
EXPECTED_SUMMARIES = "mean, ppl, iqr, top1, pXX or zXX"
TOP_KEYS = ("baseline", "candidate", "ci", "bootstrap", "seed", "require", "rule")
RULE_KEYS = ("summary", "max_increase", "max_increase_rel", "significant")
RULE_SYNTAX = "SUMMARY:+LIMIT[%][:significant], e.g. p50:+0.01, p95:+3% or p95:+3%:significant"
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

    @property
    def higher_is_better(self) -> bool:
        return self.summary == "top1"

    def limit_text(self) -> str:
        """``+0.01`` (nats) or ``+3%``; for top1 ``−0.01`` / ``−3%``."""
        sign = "−" if self.higher_is_better else "+"
        if self.max_increase is not None:
            return f"{sign}{self.max_increase:g}"
        return f"{sign}{100 * self.max_increase_rel:g}%"

    def label(self) -> str:
        """E.g. ``p95 Δ ≤ +3% (if significant)``, ``top1 Δ ≥ −0.01``."""
        op = "≥" if self.higher_is_better else "≤"
        in_nats = self.summary in ("mean", "iqr") or self.summary.startswith("p") and self.summary != "ppl"
        unit = " nats" if self.max_increase is not None and in_nats else ""
        return f"{self.summary} Δ {op} {self.limit_text()}{unit}" + (" (if significant)" if self.significant else "")


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
    source: str | None = None


def canonical_summary(name: str) -> str | None:
    """Canonical summary name (``p050`` → ``p50``), or None when ``name`` is not a gate summary."""
    from pctce_cli.stats.summaries import parse_summary_name

    try:
        return parse_summary_name(name).name
    except UsageError:
        return None


def _toml_type(v) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "table"
    return "date/time"


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
            raise PolicyError("reading a --policy file needs Python 3.11+ or the 'tomli' package (pip install tomli)") from None

    p = Path(path)
    where = str(path)
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


def parse_policy(doc: dict, lines: dict, where: str) -> Policy:
    """Validate a parsed policy document (``lines`` from :func:`key_lines`, ``where`` names the file)."""

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
        if key == "baseline":
            if not isinstance(v, str) or not v:
                raise PolicyError(f"{loc}: baseline must be a checkpoint id string, e.g. baseline = \"release-1.3\" ({_got(v)})")
            pol.baseline = v
        elif key == "candidate":
            items = [v] if isinstance(v, str) else v
            if not isinstance(items, list) or not items or not all(isinstance(x, str) and x for x in items):
                raise PolicyError(f"{loc}: candidate must be a glob or an array of globs, e.g. candidate = [\"run-b.*\"] ({_got(v)})")
            pol.candidates = list(items)
        elif key == "ci":
            if not _is_number(v) or not 0 < v < 1:
                raise PolicyError(f"{loc}: ci must be a number between 0 and 1, e.g. ci = 0.95 ({_got(v)})")
            pol.ci = float(v)
        elif key == "bootstrap":
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PolicyError(f"{loc}: bootstrap must be a positive integer, e.g. bootstrap = 1000 ({_got(v)})")
            pol.n_boot = v
        elif key == "seed":
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise PolicyError(f"{loc}: seed must be a non-negative integer ({_got(v)})")
            pol.seed = v
        elif key == "require":
            if v not in REQUIRE:
                raise PolicyError(f"{loc}: require must be \"all\" or \"any\" ({_got(v)})")
            pol.require = v
        elif key == "rule":
            if not isinstance(v, list) or not all(isinstance(r, dict) for r in v):
                raise PolicyError(f"{loc}: 'rule' must be an array of tables: write each rule under a [[ rule ]] header")
            pol.rules = [_parse_rule(r, k, at, where) for k, r in enumerate(v)]
    return pol


def _parse_rule(r: dict, k: int, at, where: str) -> Rule:
    n = k + 1
    for key in r:
        if key not in RULE_KEYS:
            raise PolicyError(f"{at(('rule', k, key))}: rule {n}: unknown key '{key}' (expected {', '.join(RULE_KEYS)})")
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
    line = at(("rule", k))
    return Rule(canon, limits.get("max_increase"), limits.get("max_increase_rel"), sig, line if line != where else f"{where} rule {n}")


def parse_rule_option(spec: str) -> Rule:
    """Parse a ``--rule`` option: ``SUMMARY:+LIMIT[%][:significant]``.

    ``LIMIT`` is the largest allowed regression: nats, or a percentage of the
    baseline value with ``%``. The ``+`` is optional.

    Examples:
        >>> parse_rule_option("p50:+0.01")
        Rule(summary='p50', max_increase=0.01, max_increase_rel=None, significant=False, source='--rule p50:+0.01')
        >>> r = parse_rule_option("p95:+3%:significant")
        >>> r.max_increase_rel, r.significant
        (0.03, True)
    """
    parts = [s.strip() for s in spec.split(":")]
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise PolicyError(f"--rule '{spec}': expected {RULE_SYNTAX}")
    name, limit = parts[0], parts[1]
    canon = canonical_summary(name)
    if canon is None:
        raise PolicyError(f"--rule '{spec}': unknown summary '{name}' (expected {EXPECTED_SUMMARIES})")
    sig = False
    if len(parts) == 3:
        if parts[2] != "significant":
            raise PolicyError(f"--rule '{spec}': unknown flag '{parts[2]}' (the only flag is 'significant')")
        sig = True
    rel = limit.endswith("%")
    number = limit[:-1].strip() if rel else limit
    try:
        value = float(number)
    except ValueError:
        raise PolicyError(f"--rule '{spec}': limit '{limit}' is not a number (expected {RULE_SYNTAX})") from None
    if not math.isfinite(value):
        raise PolicyError(f"--rule '{spec}': limit '{limit}' is not a finite number")
    if value < 0:
        raise PolicyError(f"--rule '{spec}': the limit must be >= 0 (the largest allowed regression), got {limit}")
    if rel:
        return Rule(canon, None, value / 100.0, sig, f"--rule {spec}")
    return Rule(canon, value, None, sig, f"--rule {spec}")


# ---------------------------------------------------------------- evaluation


@dataclass
class RuleResult:
    """One rule evaluated on one candidate."""

    rule: Rule
    baseline: float
    candidate: float
    delta: float  # candidate − baseline
    lo: float  # interval of delta
    hi: float
    regression: float  # delta, or −delta for top1
    rel: float  # regression / |baseline|
    over_limit: bool
    significant: bool  # the interval excludes 0 on the regression side
    passed: bool

    @property
    def status(self) -> str:
        if self.passed:
            return "pass (not significant)" if self.over_limit else "pass"
        return "FAIL (undefined)" if math.isnan(self.delta) else "FAIL"

    def explain(self, baseline_id: str) -> str:
        """One sentence: what moved, by how much, against which limit."""
        if math.isnan(self.delta):
            return f"{self.rule.summary} is undefined (NaN) for the candidate or the baseline '{baseline_id}'"
        word = "fell" if self.rule.higher_is_better else "rose"
        return (
            f"{self.rule.summary} {word} by {self.regression:+.4f} ({100 * self.rel:+.2f}%) vs '{baseline_id}' "
            f"({self.baseline:.4f} → {self.candidate:.4f}); limit {self.rule.limit_text()}"
            f"{' if significant' if self.rule.significant else ''}; interval of Δ [{self.lo:+.4f}, {self.hi:+.4f}]"
        )


def evaluate_rule(rule: Rule, stat: dict) -> RuleResult:
    """Apply one rule to a paired-bootstrap entry ``{delta, lo, hi, a, b}``.

    Examples:
        >>> r = evaluate_rule(Rule("mean", max_increase=0.25), {"delta": 0.25, "lo": 0.2, "hi": 0.3, "a": 1.0, "b": 1.25})
        >>> r.passed, r.rel
        (True, 0.25)
    """
    a, b, delta, lo, hi = (float(stat[k]) for k in ("a", "b", "delta", "lo", "hi"))
    sign = -1.0 if rule.higher_is_better else 1.0
    regression = sign * delta
    if a != 0:
        rel = regression / abs(a)
    else:
        rel = math.inf if regression > 0 else (0.0 if regression == 0 else -math.inf)
    sig = (lo > 0) if not rule.higher_is_better else (hi < 0)
    if math.isnan(delta):
        return RuleResult(rule, a, b, delta, lo, hi, regression, rel, True, False, False)
    if rule.max_increase is not None:
        over = regression > rule.max_increase + EPS
    else:
        over = rel > rule.max_increase_rel + EPS
    passed = not over or (rule.significant and not sig)
    return RuleResult(rule, a, b, delta, lo, hi, regression, rel, over, bool(sig), passed)


@dataclass
class CandidateResult:
    """All rules on one candidate, and its place in the ranking."""

    id: str
    results: list[RuleResult]
    rank: int = 0

    @property
    def failed(self) -> int:
        return sum(not r.passed for r in self.results)

    @property
    def passed(self) -> bool:
        return self.failed == 0

    @property
    def rel_sum(self) -> float:
        """Σ of relative regressions over the rules (improvements count negative); NaN rules count as +inf."""
        return float(sum(math.inf if math.isnan(r.rel) else r.rel for r in self.results))


@dataclass
class GateResult:
    """A gate run: baseline, rules, settings and the ranked candidates."""

    baseline: str
    rules: list[Rule]
    candidates: list[CandidateResult]
    ci: float
    n_boot: int
    seed: int
    method: str
    require: str = "all"
    policy: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        ok = [c.passed for c in self.candidates]
        return all(ok) if self.require == "all" else any(ok)


def rank_candidates(cands: list[CandidateResult]) -> list[CandidateResult]:
    """Order by number of failed rules, then Σ relative regressions, then id; set ``rank`` (1 = best)."""
    out = sorted(cands, key=lambda c: (c.failed, c.rel_sum, c.id))
    for k, c in enumerate(out, start=1):
        c.rank = k
    return out


def _find_baseline(cks: list[Checkpoint], name: str) -> Checkpoint:
    hit = [c for c in cks if c.id == name] or [c for c in cks if c.partition == name]
    if len(hit) == 1:
        return hit[0]
    names = ", ".join(c.id for c in cks[:8]) + (" …" if len(cks) > 8 else "")
    if not hit:
        raise StoreError(f"baseline '{name}' is in none of the score directories (have: {names})")
    raise UsageError(f"baseline '{name}' is in several score directories; name it as one of: {', '.join(c.id for c in hit)}")


def _select_candidates(cks: list[Checkpoint], base: Checkpoint, patterns: Sequence[str]) -> list[Checkpoint]:
    import fnmatch

    others = [c for c in cks if c is not base]
    if not patterns:
        out = others
    else:
        out = []
        for p in patterns:
            hit = [c for c in others if fnmatch.fnmatchcase(c.id, p) or fnmatch.fnmatchcase(c.partition, p)]
            if not hit:
                names = ", ".join(c.id for c in others[:8]) + (" …" if len(others) > 8 else "")
                raise StoreError(f"--candidate '{p}' matches no checkpoint other than the baseline (have: {names or 'none'})")
            out += [c for c in hit if c not in out]
    if not out:
        raise UsageError(f"no candidate: the score directories hold only the baseline '{base.id}'; score a candidate first")
    return out


def run_gate(
    dirs: Sequence[str | Path],
    policy: str | Path | None = None,
    baseline: str | None = None,
    candidates: Sequence[str] = (),
    rules: Sequence[str] = (),
    ci: float | None = None,
    n_boot: int | None = None,
    seed: int | None = None,
    require: str | None = None,
) -> GateResult:
    """`pctce gate`: evaluate every candidate against the baseline under the policy.

    Options override the policy file's settings; ``--rule`` options are added
    to the file's rules. Defaults: ci 0.95, 1000 resamples, seed 0, require all.

    Raises:
        PolicyError: malformed policy or ``--rule``.
        StoreError, MixedInputError, UsageError: bad stores or selection.
    """
    from pctce_cli.analysis import resolve_checkpoints
    from pctce_cli.compare import check_aligned, check_pairable, settings_notes
    from pctce_cli.stats.bootstrap import paired_bootstrap
    from pctce_cli.store import load_scores

    pol = load_policy(policy) if policy is not None else Policy()
    all_rules = list(pol.rules) + [parse_rule_option(s) for s in rules]
    if not all_rules:
        raise PolicyError("no gate rules: pass --rule (e.g. --rule p95:+3%) or a --policy file with rule tables")
    base_id = baseline or pol.baseline
    if not base_id:
        raise UsageError("no baseline: pass --baseline ID or set baseline = \"ID\" in the policy file")
    ci = ci if ci is not None else (pol.ci if pol.ci is not None else 0.95)
    n_boot = n_boot if n_boot is not None else (pol.n_boot if pol.n_boot is not None else 1000)
    seed = seed if seed is not None else (pol.seed if pol.seed is not None else 0)
    require = require or pol.require or "all"
    if not 0 < ci < 1:
        raise UsageError(f"--ci must be between 0 and 1 (e.g. 0.95), got {ci}")
    if n_boot < 1:
        raise UsageError(f"--bootstrap must be at least 1, got {n_boot}")
    if require not in REQUIRE:
        raise UsageError(f"--require must be 'all' or 'any', got {require!r}")

    cks = resolve_checkpoints(list(dirs), allow_mixed=True)
    base = _find_baseline(cks, base_id)
    chosen = _select_candidates(cks, base, list(candidates) or pol.candidates)
    names = list(dict.fromkeys(r.summary for r in all_rules))
    columns = ("doc", "pos", "token", "ce") + (("rank",) if "top1" in names else ())
    sa = load_scores(base.root, base.partition, columns=columns)
    if len(sa.ce) == 0:
        raise StoreError(f"baseline '{base.id}' holds no targets")
    results, methods, notes = [], set(), []
    for c in chosen:
        check_pairable(base, c)
        notes += settings_notes(base, c)
        sb = load_scores(c.root, c.partition, columns=columns)
        check_aligned(sa, sb, base.id, c.id)
        needs_rank = "top1" in names
        res = paired_bootstrap(
            sa.ce, sb.ce, sa.doc, names, n_boot=n_boot, ci=ci, seed=seed,
            rank_a=sa.rank if needs_rank else None, rank_b=sb.rank if needs_rank else None,
        )
        methods.add(res.method)
        results.append(CandidateResult(c.id, [evaluate_rule(r, res[r.summary]) for r in all_rules]))
        del sb
    return GateResult(
        base.id, all_rules, rank_candidates(results), ci, n_boot, seed, "/".join(sorted(methods)), require,
        str(policy) if policy is not None else None, notes,
    )


def _short_failure(r: RuleResult) -> str:
    """``p95 +0.1234 (+4.10%) > +3%``; for top1 ``top1 -0.0200 (-4.00%) < −1%``."""
    if math.isnan(r.delta):
        return f"{r.rule.summary} undefined"
    if r.rule.higher_is_better:
        return f"{r.rule.summary} {r.delta:+.4f} ({-100 * r.rel:+.2f}%) < {r.rule.limit_text()}"
    return f"{r.rule.summary} {r.delta:+.4f} ({100 * r.rel:+.2f}%) > {r.rule.limit_text()}"


def failure_message(result: GateResult) -> str:
    """The one-line reason the gate failed (for ``Error: …``, exit code 1)."""
    parts = []
    for c in result.candidates:
        if c.failed:
            failed = ", ".join(_short_failure(r) for r in c.results if not r.passed)
            parts.append(f"{c.id} fails {c.failed} of {len(c.results)} rules ({failed})")
    head = "release gate failed" if result.require == "all" else "release gate failed: no candidate passes every rule"
    return f"{head}: " + "; ".join(parts)


# ---------------------------------------------------------------- reports and writers


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))) else v


def result_dict(result: GateResult) -> dict:
    """A JSON-ready description of the gate run (NaN and inf become null)."""
    return {
        "passed": result.passed,
        "baseline": result.baseline,
        "require": result.require,
        "policy": result.policy,
        "bootstrap": {"ci": result.ci, "resamples": result.n_boot, "seed": result.seed, "method": result.method},
        "notes": result.notes,
        "rules": [
            {
                "summary": r.summary,
                "max_increase": r.max_increase,
                "max_increase_rel": r.max_increase_rel,
                "significant": r.significant,
                "label": r.label(),
                "source": r.source,
            }
            for r in result.rules
        ],
        "candidates": [
            {
                "id": c.id,
                "rank": c.rank,
                "passed": c.passed,
                "failed_rules": c.failed,
                "relative_regression_sum": _num(c.rel_sum),
                "results": [
                    {
                        "rule": r.rule.label(),
                        "summary": r.rule.summary,
                        "baseline": _num(r.baseline),
                        "candidate": _num(r.candidate),
                        "delta": _num(r.delta),
                        "delta_rel": _num(r.rel if not r.rule.higher_is_better else -r.rel),
                        "lo": _num(r.lo),
                        "hi": _num(r.hi),
                        "over_limit": r.over_limit,
                        "significant": r.significant,
                        "passed": r.passed,
                        "status": r.status,
                    }
                    for r in c.results
                ],
            }
            for c in result.candidates
        ],
    }


def _f(v, fmt: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "+∞" if v > 0 else "−∞"
    return format(v, fmt)


def _pct(r: RuleResult) -> str:
    rel = -r.rel if r.rule.higher_is_better else r.rel  # relative Δ, in the summary's own direction
    return _f(100 * rel, "+.2f") + "%" if not math.isnan(rel) and not math.isinf(rel) else _f(rel, "+.2f")


def gate_report(result: GateResult) -> Report:
    """The terminal view: a ranking table and one row per candidate × rule."""
    report = Report()
    report.add(
        f"Release gate vs {result.baseline}: ranking",
        [
            {
                "rank": c.rank,
                "candidate": c.id,
                "result": "pass" if c.passed else "FAIL",
                "failed rules": f"{c.failed} / {len(c.results)}",
                "Σ rel. regression %": 100 * c.rel_sum,
            }
            for c in result.candidates
        ],
    )
    rows = []
    for c in result.candidates:
        for r in c.results:
            rows.append(
                {
                    "candidate": c.id,
                    "rule": r.rule.label(),
                    "baseline": r.baseline,
                    "value": r.candidate,
                    "Δ": r.delta,
                    "Δ%": 100 * (-r.rel if r.rule.higher_is_better else r.rel),
                    "lo": r.lo,
                    "hi": r.hi,
                    "result": r.status,
                }
            )
    report.add("Rules (Δ = candidate − baseline; lo/hi: bootstrap interval of Δ)", rows)
    n_pass = sum(c.passed for c in result.candidates)
    head = "PASSED" if result.passed else "FAILED"
    report.notes.append(
        f"Gate {head}: {n_pass} of {len(result.candidates)} candidate(s) pass all {len(result.rules)} rule(s)"
        + (" (require any)" if result.require == "any" else "")
        + "."
    )
    for c in result.candidates:
        for r in c.results:
            if not r.passed:
                report.notes.append(f"✗ {c.id}: {r.explain(result.baseline)}")
    report.notes += result.notes
    report.notes.append(_settings_line(result))
    return report


def _settings_line(result: GateResult) -> str:
    return (
        f"Intervals: {result.ci:.0%} paired document-level bootstrap, {result.n_boot} resamples, seed {result.seed}"
        + (f", method {result.method}" if result.method else "")
        + "; candidates ranked by failed rules, then by the sum of relative regressions."
    )


def markdown_report(result: GateResult) -> str:
    """A GitHub-flavoured Markdown report (stable: fixed number formats, ranked order)."""
    icon = lambda ok: "✅ pass" if ok else "❌ FAIL"  # noqa: E731
    lines = [
        f"## pctce release gate: {'✅ PASSED' if result.passed else '❌ FAILED'}",
        "",
        f"Baseline `{result.baseline}`; {len(result.candidates)} candidate(s); {len(result.rules)} rule(s)"
        + (f" from `{result.policy}`" if result.policy else "")
        + (" (passes when any candidate passes)" if result.require == "any" else "")
        + ".",
        "",
        "| rank | candidate | result | failed rules | Σ relative regression |",
        "|---:|---|---|---:|---:|",
    ]
    for c in result.candidates:
        lines.append(
            f"| {c.rank} | `{c.id}` | {icon(c.passed)} | {c.failed} / {len(c.results)} | {_f(100 * c.rel_sum, '+.2f')}% |"
        )
    level = f"{result.ci:.0%}"
    for c in result.candidates:
        lines += [
            "",
            f"### `{c.id}` vs `{result.baseline}`",
            "",
            f"| rule | baseline | candidate | Δ | Δ % | {level} interval of Δ | result |",
            "|---|---:|---:|---:|---:|---|---|",
        ]
        for r in c.results:
            status = icon(r.passed) + (" (not significant)" if r.passed and r.over_limit else "")
            lines.append(
                f"| {r.rule.label()} | {_f(r.baseline, '.4f')} | {_f(r.candidate, '.4f')} | {_f(r.delta, '+.4f')} "
                f"| {_pct(r)} | [{_f(r.lo, '+.4f')}, {_f(r.hi, '+.4f')}] | {status} |"
            )
    lines += [""] + [f"> {n}\n" for n in result.notes] + [_settings_line(result), ""]
    return "\n".join(lines)


def junit_xml(result: GateResult) -> str:
    """JUnit XML: one testsuite per candidate, one testcase per rule, failures as ``<failure>``."""
    import xml.etree.ElementTree as ET

    n_tests = sum(len(c.results) for c in result.candidates)
    n_fail = sum(c.failed for c in result.candidates)
    root = ET.Element("testsuites", name="pctce gate", tests=str(n_tests), failures=str(n_fail), errors="0", time="0")
    for c in result.candidates:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"pctce gate: {c.id} vs {result.baseline}",
            tests=str(len(c.results)),
            failures=str(c.failed),
            errors="0",
            skipped="0",
            time="0",
        )
        for r in c.results:
            case = ET.SubElement(suite, "testcase", classname=f"pctce.gate.{c.id}", name=r.rule.label(), time="0")
            if not r.passed:
                fail = ET.SubElement(case, "failure", message=r.explain(result.baseline), type="GateRuleFailed")
                fail.text = r.explain(result.baseline) + f" [{r.rule.source}]"
            else:
                out = ET.SubElement(case, "system-out")
                out.text = r.explain(result.baseline) + (" (not significant)" if r.over_limit else "")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _write_text(path: str | Path, text: str, option: str) -> None:
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write ({e.strerror})") from None


def write_json(result: GateResult, path: str | Path) -> None:
    """Write :func:`result_dict` as JSON."""
    _write_text(path, json.dumps(result_dict(result), indent=2, ensure_ascii=False) + "\n", "--json")


def write_markdown(result: GateResult, path: str | Path) -> None:
    """Write :func:`markdown_report`."""
    _write_text(path, markdown_report(result), "--markdown")


def write_junit(result: GateResult, path: str | Path) -> None:
    """Write :func:`junit_xml`."""
    _write_text(path, junit_xml(result), "--junit")


def append_step_summary(result: GateResult, path: str | Path) -> None:
    """Append the Markdown report to a GitHub Actions job summary (``$GITHUB_STEP_SUMMARY``)."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(markdown_report(result) + "\n")
    except OSError as e:
        raise UsageError(f"GITHUB_STEP_SUMMARY {path}: cannot append ({e.strerror})") from None


def write_outputs(
    result: GateResult,
    json_path: str | Path | None = None,
    markdown_path: str | Path | None = None,
    junit_path: str | Path | None = None,
    step_summary: str | None = None,
) -> None:
    """Write every requested CI file (and the GitHub step summary when its path is given)."""
    if json_path:
        write_json(result, json_path)
    if markdown_path:
        write_markdown(result, markdown_path)
    if junit_path:
        write_junit(result, junit_path)
    if step_summary:
        append_step_summary(result, step_summary)
