"""Gate evaluation: rules applied to paired-bootstrap results, candidates ranked, :func:`run_gate`.

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

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pctce_cli.errors import PolicyError, StoreError, UsageError
from pctce_cli.gate.policy import REQUIRE, Policy, Rule, load_policy, parse_rule_option
from pctce_cli.units import Unit, Values, unit_named

if TYPE_CHECKING:
    from pctce_cli.catalog import Checkpoint

EPS = 1e-12


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
    field: str | None = None  # the subset field, when the rule is checked on one subset
    subset: str | None = None  # the subset value; None: every (kept) document
    targets: int | None = None  # the subset's targets (0: nothing to judge, the rule fails)

    @property
    def where(self) -> str:
        """``domain=code`` for a subset check, else empty."""
        return f"{self.field}={self.subset}" if self.subset is not None else ""

    @property
    def name(self) -> str:
        """The summary, and the subset it is checked on: ``p95`` or ``p95 on domain=code``."""
        return self.rule.summary + self.rule.where_text(" at ") + (f" on {self.where}" if self.where else "")

    @property
    def label(self) -> str:
        """The rule's label and its subset: ``p95 Δ ≤ +3% on domain=code`` (one JUnit test case each)."""
        return self.rule.label() + (f" on {self.where}" if self.where else "")

    @property
    def status(self) -> str:
        if self.passed:
            return "pass (not significant)" if self.over_limit else "pass"
        return "FAIL (undefined)" if math.isnan(self.delta) else "FAIL"

    def explain(self, baseline_id: str) -> str:
        """One sentence: what moved, by how much, against which limit.

        Args:
            baseline_id: The baseline checkpoint's id, named in the sentence.
        """
        if self.targets == 0:
            return f"{self.name} is undefined: the subset has no scored targets"
        if math.isnan(self.delta):
            return f"{self.name} is undefined (NaN) for the candidate or the baseline '{baseline_id}'"
        if self.rule.absolute:  # a threshold on the divergence from the reference (gate/absolute.py)
            return f"{self.rule.label().rsplit(' ', 2)[0]} = {self.candidate:.4f}, limit {self.rule.limit_text()}; interval [{self.lo + self.baseline:.4f}, {self.hi + self.baseline:.4f}]"
        # the word follows the change itself (a p50 that fell is "fell by 0.40", never "rose by -0.40")
        word = "rose" if self.delta > 0 else "fell" if self.delta < 0 else "did not move,"
        return (
            f"{self.name} {word} by {abs(self.delta):.4f} ({abs(100 * self.rel):.2f}%) vs '{baseline_id}' "
            f"({self.baseline:.4f} → {self.candidate:.4f}); limit {self.rule.limit_text()}"
            f"{' if significant' if self.rule.significant else ''}; interval of Δ [{self.lo:+.4f}, {self.hi:+.4f}]"
        )


def evaluate_rule(rule: Rule, stat: dict, field: str | None = None, subset: str | None = None, targets: int | None = None) -> RuleResult:
    """Apply one rule to a paired-bootstrap entry ``{delta, lo, hi, a, b}``.

    Args:
        rule: The rule.
        stat: The paired bootstrap's entry for ``rule.summary``: ``a``
            (baseline), ``b`` (candidate), ``delta`` = b − a and its interval
            ``lo``, ``hi``.
        field, subset, targets: The subset the rule was checked on (None: every document).

    Returns:
        The :class:`RuleResult`; a NaN Δ fails the rule.

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
        return RuleResult(rule, a, b, delta, lo, hi, regression, rel, True, False, False, field, subset, targets)
    if rule.max_increase is not None:
        over = regression > rule.max_increase + EPS
    else:
        over = rel > rule.max_increase_rel + EPS
    passed = not over or (rule.significant and not sig)
    return RuleResult(rule, a, b, delta, lo, hi, regression, rel, over, bool(sig), passed, field, subset, targets)


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
    subset_field: str | None = None  # the field of the subset checks (None: no subsets)
    subsets: list[dict] = field(default_factory=list)  # the gated subsets: subset, targets, documents (baseline)
    keep: tuple[str, ...] = ()  # --subset: only these documents were gated

    @property
    def passed(self) -> bool:
        ok = [c.passed for c in self.candidates]
        return all(ok) if self.require == "all" else any(ok)


def rank_candidates(cands: list[CandidateResult]) -> list[CandidateResult]:
    """Order by number of failed rules, then Σ relative regressions, then id; set ``rank`` (1 = best).

    Args:
        cands: The candidates' results (their ``rank`` is set in place).

    Returns:
        A new list, best first.
    """
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
    from pctce_cli.catalog import listing, select_by_globs

    others = [c for c in cks if c is not base]
    out = others
    if patterns:
        out = select_by_globs(
            others,
            patterns,
            lambda p: StoreError(f"candidates '{p}' matches no checkpoint other than the baseline (have: {listing(others) or 'none'})", param="candidates"),
            partition=True,
        )
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
    by: str | None = None,
    subset: Sequence[str] = (),
    unit: str | None = None,
) -> GateResult:
    """`pctce gate`: evaluate every candidate against the baseline under the policy.

    (Long by this docstring: the body is the stages :func:`merge_settings`, :func:`load_baseline`,
    pairing each candidate, :func:`paired_stats` and :func:`check_rules`.)
    Options override the policy file's settings; ``--rule`` options are added
    to the file's rules. Defaults: ci 0.95, 1000 resamples, seed 0, require all.
    A rule with a ``subset`` is checked on that subset's targets only (``*``:
    on each subset), with a paired bootstrap over that subset's documents
    (:mod:`pctce_cli.gate.subsets`); each partition is read once.

    Args:
        dirs: Score directories holding the baseline and the candidates.
        policy: Policy TOML file (see docs/gate.md).
        baseline: Baseline checkpoint id (or partition name).
        candidates: Globs over checkpoint ids; default every other checkpoint.
        rules: ``--rule`` options, added to the policy's rules.
        ci: Interval level.
        n_boot: Bootstrap resamples.
        seed: Bootstrap seed.
        require: ``all`` (every candidate must pass) or ``any``.
        by: ``--by FIELD``: rules without a subset are checked on every subset of FIELD.
        subset: ``--subset VALUE``: gate only the documents of these subsets.
        unit: ``word`` or ``byte``: pair words or bytes (docs/definitions.md#words-and-bytes), so candidates with
            another tokenizer can be gated (default: the policy's ``unit``, else ``token``).

    Returns:
        The :class:`GateResult`, candidates ranked.

    Raises:
        PolicyError: malformed policy or ``--rule``, or a rule's subset the store lacks.
        StoreError, MixedInputError, UsageError: bad stores or selection.
    """
    from pctce_cli.catalog import identical_notes, resolve_checkpoints, settings_notes
    from pctce_cli.compare import load_pair
    from pctce_cli.gate.position import add_position_checks
    from pctce_cli.gate.subsets import make_plan, resolve_field

    pol = load_policy(policy) if policy is not None else Policy()
    st = merge_settings(pol, rules, baseline, ci, n_boot, seed, require, unit)
    cks = resolve_checkpoints(list(dirs), allow_mixed=True)
    if not st.rules:  # thresholds on each candidate's divergence from its reference only (gate/absolute.py)
        return _absolute_gate(cks, st, list(candidates) or pol.candidates, policy)
    base = _find_baseline(cks, st.baseline)
    chosen = _select_candidates(cks, base, list(candidates) or pol.candidates)
    fld = resolve_field([base, *chosen], st.rules, pol.subset_field, pol_where(pol), by, subset)
    sa = load_baseline(base, st)
    plan = make_plan(st.rules, fld, by, subset, sa.doc, sa.docs, base.id)
    add_position_checks(plan, sa, base.id, st.unit)  # rules on a position range (docs/definitions.md#position-in-the-context)
    plan.table = subsets_table(plan, sa, st.unit)
    results, methods, notes = [], set(), list(plan.notes) + identical_notes([base, *chosen])
    for c in chosen:
        notes += settings_notes(base, c)
        xa, sb = load_pair(base, c, base.id, c.id, st.unit, base=sa, columns=st.columns)
        xplan = plan if xa is sa else make_plan(st.rules, fld, by, subset, xa.doc, xa.docs, base.id)  # bytes: rows depend on the candidate
        stats, sizes = paired_stats(xa, sb, xplan, st)
        methods |= {res.method for res in stats.values() if res is not None}
        results.append(CandidateResult(c.id, check_rules(plan, stats, sizes) + _absolute_results(c, st)))
        del sb
    if plan.keep:
        notes.append(f"Only documents of subset {plan.field} = {', '.join(plan.keep)} were gated (--subset).")
    notes += UNIT_NOTES.get(st.unit.name, [])
    return GateResult(
        base.id, st.rules + st.absolute, rank_candidates(results), st.ci, st.n_boot, st.seed, "/".join(sorted(methods)), st.require,
        str(policy) if policy is not None else None, notes, plan.field, plan.table, plan.keep,
    )


UNIT_NOTES = {
    "word": ["Unit: words (docs/definitions.md#words-and-bytes): every rule was checked on word CE (the sum of each word's tokens' CE), words paired across checkpoints."],
    "byte": ["Unit: bytes (docs/definitions.md#words-and-bytes): every rule was checked on per-byte CE (each token's CE spread over its bytes), bytes paired across checkpoints."],
}


@dataclass
class GateSettings:
    """The gate's settings once the options are merged over the policy file's (:func:`merge_settings`)."""

    rules: list[Rule]
    baseline: str
    ci: float
    n_boot: int
    seed: int
    require: str
    unit: Unit
    absolute: list = field(default_factory=list)  # thresholds on the divergence from a reference (gate/absolute.py)

    @property
    def summaries(self) -> list[str]:
        """Every summary a rule checks, once, in rule order."""
        return list(dict.fromkeys(r.summary for r in self.rules))

    @property
    def needs_rank(self) -> bool:
        """A ``top1`` rule: the targets' ranks are read."""
        return "top1" in self.summaries

    @property
    def columns(self) -> tuple[str, ...]:
        """The token columns read (tokens only)."""
        return ("doc", "pos", "token", "ce") + (("rank",) if self.needs_rank else ())


def _pick(option, policy_value, default):
    return option if option is not None else (policy_value if policy_value is not None else default)


def merge_settings(
    pol: Policy, rules: Sequence[str] = (), baseline: str | None = None, ci: float | None = None, n_boot: int | None = None,
    seed: int | None = None, require: str | None = None, unit: str | None = None,
) -> GateSettings:
    """Options over the policy's settings over the defaults (ci 0.95, 1000 resamples, seed 0, require all, unit token), checked.

    Raises:
        PolicyError: no rule at all, or a ``top1`` rule in words or bytes.
        UsageError: no baseline, or a setting out of range.
    """
    all_rules = list(pol.rules) + [parse_rule_option(s) for s in rules]
    if not all_rules:
        raise PolicyError("no gate rules: pass rules (e.g. rules p95:+3%) or a policy file with rule tables", param=("no gate rules", "rules", "rules", "policy"))
    absolute, all_rules = [r for r in all_rules if r.absolute], [r for r in all_rules if not r.absolute]  # limits (gate/absolute.py): no baseline
    base_id = baseline or pol.baseline or ("" if not all_rules else None)
    if base_id is None:
        raise UsageError("no baseline: pass baseline ID or set baseline = \"ID\" in the policy file", param=("no baseline", "baseline"))
    ci, n_boot, seed = _pick(ci, pol.ci, 0.95), _pick(n_boot, pol.n_boot, 1000), _pick(seed, pol.seed, 0)
    require = require or pol.require or "all"
    if not 0 < ci < 1:
        raise UsageError(f"ci must be between 0 and 1 (e.g. 0.95), got {ci}", param="ci")
    if n_boot < 1:
        raise UsageError(f"n_boot must be at least 1, got {n_boot}", param="n_boot")
    if require not in REQUIRE:
        raise UsageError(f"require must be 'all' or 'any', got {require!r}", param="require")
    st = GateSettings(all_rules, base_id, ci, n_boot, seed, require, unit_named(unit or pol.unit or "token"), absolute)
    if st.needs_rank and st.unit.refuses:
        raise PolicyError("a top1 rule needs token ranks: gate it with unit = \"token\"")
    return st


def load_baseline(base: Checkpoint, st: GateSettings) -> Values:
    """The baseline's values in the gate's unit, read once for every candidate.

    Raises:
        StoreError: the baseline holds no targets.
    """
    sa = st.unit.load(base, st.columns)
    if len(sa.value) == 0:
        raise StoreError(f"baseline '{base.id}' holds no targets")
    return sa


def subsets_table(plan, sa: Values, unit: Unit) -> list[dict]:
    """The subsets table counts what the rules are checked on: the baseline's targets, words or bytes."""
    return [
        {"subset": r["subset"], unit.plural: r["targets"] if sa.weight is None else int(plan.rows(sa.weight, r["subset"]).sum()), "documents": r["documents"]}
        for r in plan.table
    ]


def paired_stats(xa: Values, sb: Values, plan, st: GateSettings) -> tuple[dict, dict]:
    """One paired bootstrap per subset a rule is checked on, over that subset's documents only.

    Returns:
        ``(stats, sizes)``: subset → the bootstrap result (None for a subset
        with nothing to judge), and subset → its targets, words or bytes.
    """
    from pctce_cli.stats.bootstrap import paired_bootstrap

    groups: dict = {}  # subset -> summaries checked on it
    for chk in plan.checks:
        groups.setdefault(chk.subset, []).append(chk.rule.summary)
    stats, sizes = {}, {}
    for sub, wanted in groups.items():
        ce_a = plan.rows(xa.value, sub)
        weights = plan.rows(xa.weight, sub) if xa.weight is not None else None
        sizes[sub] = len(ce_a) if weights is None else int(weights.sum())
        if not len(ce_a):
            stats[sub] = None
            continue
        stats[sub] = paired_bootstrap(
            ce_a, plan.rows(sb.value, sub), plan.rows(xa.doc, sub), list(dict.fromkeys(wanted)), n_boot=st.n_boot, ci=st.ci, seed=st.seed,
            rank_a=plan.rows(xa.rank, sub) if st.needs_rank else None, rank_b=plan.rows(sb.rank, sub) if st.needs_rank else None,
            weights=weights,
        )
    return stats, sizes


def check_rules(plan, stats: dict, sizes: dict) -> list[RuleResult]:
    """Every check of the plan evaluated on its subset's bootstrap result (NaN where the subset had nothing)."""
    checked = []
    for chk in plan.checks:
        res = stats[chk.subset]
        stat = res[chk.rule.summary] if res is not None else dict.fromkeys(("a", "b", "delta", "lo", "hi"), math.nan)
        ranged = chk.rule.position is not None  # its rows are a position range, named by the rule itself
        size = sizes[chk.subset] if plan.active or ranged else None
        checked.append(evaluate_rule(chk.rule, stat, plan.field if chk.subset is not None and not ranged else None, None if ranged else chk.subset, size))
    return checked


def _absolute_results(ck, st: GateSettings) -> list[RuleResult]:
    """The absolute rules evaluated on one candidate (:func:`pctce_cli.gate.absolute.absolute_stats`)."""
    from pctce_cli.gate.absolute import absolute_stats

    return [evaluate_rule(r, stat) for r, stat in zip(st.absolute, absolute_stats(ck, st.absolute, st.ci, st.n_boot, st.seed))] if st.absolute else []


def _absolute_gate(cks: list, st: GateSettings, patterns: Sequence[str], policy) -> GateResult:
    """A gate of absolute rules only: each candidate (every checkpoint, or those matching ``patterns``) against the limits, no baseline."""
    import fnmatch

    if not (chosen := [c for c in cks if not patterns or any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]):
        raise UsageError(f"no checkpoint matches --candidate {', '.join(patterns)}")
    results = [CandidateResult(c.id, _absolute_results(c, st)) for c in chosen]
    return GateResult(st.baseline or "its reference", st.absolute, rank_candidates(results), st.ci, st.n_boot, st.seed, "exact", st.require, str(policy) if policy is not None else None, [])


def pol_where(pol: Policy) -> str:
    """Where the policy's ``subset_field`` is written, for messages."""
    return pol.subset_field_at or str(pol.source or "policy")
