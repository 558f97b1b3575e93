"""Release gate: a policy (largest allowed regression per summary) → a verdict per candidate.

Pure: reads stores and a policy file, returns a :class:`GateResult`, never
exits. The CLI renders it, writes the CI files with the writers of
:mod:`pctce_cli.gate.outputs` (:func:`write_json`, :func:`markdown_report`,
:func:`write_junit`, …) and exits 1 when the gate failed. See docs/gate.md for
the policy syntax and :mod:`pctce_cli.gate.evaluate` for how a rule is judged.

Modules:

* :mod:`~pctce_cli.gate.policy` — :class:`Rule`, :class:`Policy`, policy TOML
  files (errors name ``FILE:LINE``), ``--rule`` options, summary names;
* :mod:`~pctce_cli.gate.subsets` — rules on subsets (docs/definitions.md#subsets): the subset
  field, ``subset = "*"`` expanded to one check per subset, each subset's rows;
* :mod:`~pctce_cli.gate.evaluate` — rule results, the ranking, baseline and
  candidate selection, :func:`run_gate`;
* :mod:`~pctce_cli.gate.outputs` — the terminal report, JSON, Markdown, JUnit
  XML, the failure message and the writers.
"""

from pctce_cli.gate.evaluate import (
    EPS,
    CandidateResult,
    GateResult,
    RuleResult,
    evaluate_rule,
    rank_candidates,
    run_gate,
)
from pctce_cli.gate.outputs import (
    append_step_summary,
    failure_message,
    gate_report,
    junit_xml,
    markdown_report,
    result_dict,
    write_json,
    write_junit,
    write_markdown,
    check_outputs,
    write_outputs,
)
from pctce_cli.gate.policy import (
    EXPECTED_SUMMARIES,
    REQUIRE,
    RULE_KEYS,
    RULE_SYNTAX,
    TOP_KEYS,
    Policy,
    Rule,
    canonical_summary,
    key_lines,
    load_policy,
    parse_policy,
    parse_rule_option,
)

__all__ = [
    "EPS",
    "EXPECTED_SUMMARIES",
    "REQUIRE",
    "RULE_KEYS",
    "RULE_SYNTAX",
    "TOP_KEYS",
    "CandidateResult",
    "GateResult",
    "Policy",
    "Rule",
    "RuleResult",
    "append_step_summary",
    "canonical_summary",
    "evaluate_rule",
    "failure_message",
    "gate_report",
    "junit_xml",
    "key_lines",
    "load_policy",
    "markdown_report",
    "parse_policy",
    "parse_rule_option",
    "rank_candidates",
    "result_dict",
    "run_gate",
    "write_json",
    "write_junit",
    "write_markdown",
    "check_outputs",
    "write_outputs",
]
