"""`pctce gate`: thresholds, policy errors with line numbers, exit codes, JUnit, Markdown golden file."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from pctce_cli.errors import PolicyError
from pctce_cli.gate import Rule, evaluate_rule, load_policy, parse_rule_option

from .cli import run
from .helpers import docs_of, make_store

GOLDEN = Path(__file__).parent / "golden"
STEP = 2.0**-10  # a regression "just above" the limit, exact in float32


def baseline_ce() -> np.ndarray:
    """128 targets in 8 documents, values exact in binary: mean 1.0, p50 1.0."""
    values = np.array([0.5] * 32 + [1.0] * 64 + [1.5] * 32)
    return np.random.default_rng(0).permutation(values)


@pytest.fixture()
def store(tmp_path):
    """base; at-limit = base + 0.25 exactly; over = base + 0.25 + 2^-10; noisy = a change within noise."""
    root = tmp_path / "scores"
    doc = docs_of(8, 16)
    a = baseline_ce()
    make_store(root, "base", a, doc, step=100)
    make_store(root, "at-limit", a + 0.25, doc, step=200)
    make_store(root, "over", a + 0.25 + STEP, doc, step=300)
    noise = np.random.default_rng(3).normal(0, 0.2, size=8)[doc]  # whole documents move: wide interval
    make_store(root, "noisy", a + noise - noise.mean() + 0.01, doc, step=400)
    return root


def gate_json(*args, env=None):
    r = run("gate", *args, "--bootstrap", "200", "-f", "json", env=env)
    obj = json.loads(r.stdout) if r.stdout.strip().startswith("{") else None
    return r, obj


def rule_rows(obj):
    return next(v for k, v in obj.items() if k.startswith("Rules"))


# ---------------------------------------------------------------- thresholds


def test_the_synthetic_deltas_are_exact(store):
    r, obj = gate_json(store, "--baseline", "base", "--candidate", "at-limit", "--rule", "mean:+1", "--rule", "p50:+1")
    rows = {row["rule"].split()[0]: row for row in rule_rows(obj)}
    assert rows["mean"]["Δ"] == 0.25 and rows["p50"]["Δ"] == 0.25
    assert rows["mean"]["baseline"] == 1.0 and rows["p50"]["baseline"] == 1.0
    assert rows["mean"]["lo"] == rows["mean"]["hi"] == 0.25


@pytest.mark.parametrize(
    "candidate, rule, code",
    [
        ("at-limit", "mean:+0.25", 0),  # a regression exactly at the limit passes
        ("over", "mean:+0.25", 1),  # 2^-10 above fails
        ("at-limit", "mean:+0.2499", 1),
        ("at-limit", "p50:0.25", 0),
        ("over", "p50:+0.25", 1),
        ("at-limit", "p50:+25%", 0),  # relative: 0.25 / 1.0 exactly at 25%
        ("over", "p50:+25%", 1),
        ("at-limit", "mean:+24.9%", 1),
        ("at-limit", "mean:+0.1:significant", 1),  # over the limit and the interval [0.25, 0.25] excludes 0
    ],
)
def test_rules_pass_and_fail_exactly_at_the_threshold(store, candidate, rule, code):
    r = run("gate", store, "--baseline", "base", "--candidate", candidate, "--rule", rule, "--bootstrap", "50")
    assert r.exit_code == code, (r.stdout, r.stderr)
    if code == 1:
        assert r.stderr.startswith(f"Error: release gate failed: {candidate} fails 1 of 1 rules (")
        assert "Release gate vs base" in r.stdout  # the report is printed before exiting 1


def test_policy_file_thresholds(store, tmp_path):
    pol = tmp_path / "gate.toml"
    pol.write_text('baseline = "base"\n\n[[rule]]\nsummary = "mean"\nmax_increase = 0.25\n\n[[rule]]\nsummary = "p50"\nmax_increase_rel = 0.25\n')
    assert run("gate", store, "--policy", pol, "--candidate", "at-limit", "--bootstrap", "50").exit_code == 0
    r = run("gate", store, "--policy", pol, "--candidate", "over", "--bootstrap", "50")
    assert r.exit_code == 1 and "over fails 2 of 2 rules" in r.stderr


def test_significant_rule_passes_when_the_interval_contains_zero(store):
    r, obj = gate_json(store, "--baseline", "base", "--candidate", "noisy", "--rule", "mean:+0:significant")
    assert r.exit_code == 0, r.stderr
    [row] = rule_rows(obj)
    assert row["Δ"] > 0 and row["lo"] < 0 < row["hi"]
    assert row["result"] == "pass (not significant)"
    r, obj = gate_json(store, "--baseline", "base", "--candidate", "noisy", "--rule", "mean:+0")
    assert r.exit_code == 1 and rule_rows(obj)[0]["result"] == "FAIL"


def test_evaluate_rule_directions():
    stat = {"delta": -0.02, "lo": -0.03, "hi": -0.01, "a": 0.5, "b": 0.48}
    top1 = evaluate_rule(Rule("top1", max_increase=0.01), stat)  # top1 fell by 0.02: a regression
    assert (top1.regression, top1.passed, top1.significant) == (0.02, False, True)
    assert evaluate_rule(Rule("top1", max_increase_rel=0.04), stat).passed
    assert evaluate_rule(Rule("p95", max_increase=0.0), stat).passed  # lower CE is never a regression
    nan = evaluate_rule(Rule("z95", max_increase=1.0), {"delta": float("nan"), "lo": 0.0, "hi": 0.0, "a": 1.0, "b": 1.0})
    assert not nan.passed and nan.status == "FAIL (undefined)"


def test_candidates_are_ranked_by_failures_then_relative_regression(store, tmp_path):
    r, obj = gate_json(store, "--baseline", "base", "--rule", "mean:+0.25", "--rule", "p50:+30%", "--json", tmp_path / "g.json")
    assert r.exit_code == 1
    ranking = next(v for k, v in obj.items() if k.endswith("ranking"))
    assert [row["candidate"] for row in ranking] == ["noisy", "at-limit", "over"]
    assert [row["failed rules"] for row in ranking] == ["0 / 2", "0 / 2", "1 / 2"]
    full = json.loads((tmp_path / "g.json").read_text())
    assert full["passed"] is False and full["baseline"] == "base"
    assert [c["rank"] for c in full["candidates"]] == [1, 2, 3]
    assert full["candidates"][2]["results"][0]["status"] == "FAIL"
    assert full["candidates"][1]["relative_regression_sum"] == 0.5
    r = run("gate", store, "--baseline", "base", "--rule", "mean:+0.25", "--require", "any", "--bootstrap", "20")
    assert r.exit_code == 0


# ---------------------------------------------------------------- exit code 2


def test_bad_input_exits_2_with_a_message(store, tmp_path):
    r = run("gate", tmp_path / "missing", "--baseline", "base", "--rule", "mean:+0.1")
    assert r.exit_code == 2 and r.stderr.strip() == f"Error: score directory not found: {tmp_path / 'missing'}"
    r = run("gate", store, "--baseline", "base", "--rule", "p101:+0.1")
    assert r.exit_code == 2
    assert r.stderr.strip() == "Error: --rule 'p101:+0.1': unknown summary 'p101' (expected mean, ppl, iqr, top1, pXX or zXX)"
    r = run("gate", store, "--baseline", "base", "--rule", "p95+3%")
    assert r.stderr.strip() == (
        "Error: --rule 'p95+3%': expected SUMMARY[@SUBSET]:+LIMIT[%][:significant], e.g. p50:+0.01, p95:+3%:significant or p95@code:+3%"
    )
    r = run("gate", store, "--baseline", "base", "--rule", "p95:+3x")
    assert r.exit_code == 2 and "Error: --rule 'p95:+3x': limit '+3x' is not a number" in r.stderr
    r = run("gate", store, "--baseline", "base", "--rule", "p95:+3%:sig")
    assert r.stderr.strip() == "Error: --rule 'p95:+3%:sig': unknown flag 'sig' (the only flag is 'significant')"
    r = run("gate", store, "--baseline", "nope", "--rule", "mean:+0.1")
    assert r.exit_code == 2
    assert r.stderr.strip() == "Error: baseline 'nope' is in none of the score directories (have: base, at-limit, over, noisy)"
    r = run("gate", store, "--rule", "mean:+0.1")
    assert r.exit_code == 2 and "Error: no baseline: pass --baseline ID" in r.stderr
    r = run("gate", store, "--baseline", "base")
    assert r.exit_code == 2 and "Error: no gate rules" in r.stderr
    r = run("gate", store, "--baseline", "base", "--candidate", "zzz*", "--rule", "mean:+0.1")
    assert r.exit_code == 2 and "Error: --candidate 'zzz*' matches no checkpoint" in r.stderr


def test_a_candidate_scored_on_other_data_exits_2(store, tmp_path):
    make_store(tmp_path / "other", "elsewhere", baseline_ce(), docs_of(8, 16), fingerprints={"data": "e" * 64})
    r = run("gate", store, tmp_path / "other", "--baseline", "base", "--candidate", "elsewhere", "--rule", "mean:+1")
    assert r.exit_code == 2
    assert r.stderr.strip().startswith("Error: cannot pair 'base' with 'elsewhere': they were scored on different validation data")


POLICY_ERRORS = [
    (
        'baseline = "base"\n\n[[rule]]\nsummary = "p50"\nmax_increase = 0.01\n\n[[rule]]\nsummary = "p101"\nmax_increase = 0.01\n',
        "{p}:8: rule 2: unknown summary 'p101' (expected mean, ppl, iqr, top1, pXX or zXX)",
    ),
    (
        'baseline = "base"\n[[rule]]\nsummary = "p50"\nmax_incr = 0.01\n',
        "{p}:4: rule 1: unknown key 'max_incr' (expected summary, max_increase, max_increase_rel, significant, subset, position, ctx)",
    ),
    (
        'baseline = "base"\nbaseine = "x"\n',
        "{p}:2: unknown key 'baseine' (expected baseline, candidate, ci, bootstrap, seed, require, subset_field, unit, rule)",
    ),
    (
        '[[rule]]\nsummary = "p95"\nmax_increase = "0.01"\n',
        "{p}:3: rule 1: max_increase must be a number (nats, e.g. 0.01), got string '0.01'",
    ),
    (
        '[[rule]]\nsummary = "p95"\nmax_increase = 0.01\nmax_increase_rel = 0.03\n',
        "{p}:4: rule 1: give either max_increase (nats) or max_increase_rel (fraction), not both",
    ),
    (
        '# release policy\n\n[[rule]]\nsummary = "p95"\nsignificant = true\n',
        "{p}:3: rule 1: no limit: give max_increase (nats, e.g. 0.01) or max_increase_rel (fraction, e.g. 0.03)",
    ),
    (
        '[[rule]]\nsummary = "p95"\nmax_increase = 0.01\n\n[[rule]]\nmax_increase = 0.01\n',
        "{p}:5: rule 2: missing key 'summary' (e.g. summary = \"p95\")",
    ),
    (
        '[[rule]]\nsummary = "p95"\nmax_increase_rel = -0.03\n',
        "{p}:3: rule 1: max_increase_rel must be >= 0 (the largest allowed regression), got -0.03",
    ),
    (
        '[[rule]]\nsummary = "p95"\nmax_increase = 0.01\nsignificant = "yes"\n',
        "{p}:4: rule 1: significant must be true or false (got string 'yes')",
    ),
    (
        '[[rule]]\nsummary = 95\nmax_increase = 0.01\n',
        "{p}:2: rule 1: summary must be a string, e.g. summary = \"p95\" (got integer 95)",
    ),
    (
        'baseline = "base"\n\n[rule]\nsummary = "p95"\n',
        "{p}:3: 'rule' must be an array of tables: write each rule under a [[ rule ]] header",
    ),
    (
        'baseline = "base"\n\n[[rule]]\nsummary = "p95"\nmax_increase = \n',
        "{p}:5: invalid TOML: Invalid value (column 16)",
    ),
    (
        'baseline = "base\n',
        "{p}:1: invalid TOML: Illegal character '\\n' (column 17)",
    ),
]


@pytest.mark.parametrize("text, message", POLICY_ERRORS)
def test_policy_errors_name_the_line_and_key(store, tmp_path, text, message):
    pol = tmp_path / "gate.toml"
    pol.write_text(text)
    r = run("gate", store, "--policy", pol, "--baseline", "base")
    assert r.exit_code == 2
    assert r.stderr.strip() == "Error: " + message.format(p=pol)


def test_policy_file_missing(tmp_path):
    with pytest.raises(PolicyError, match=r"^policy file not found: .*nope\.toml$"):
        load_policy(tmp_path / "nope.toml")


def test_policy_settings_and_options_combine(store, tmp_path):
    pol = tmp_path / "gate.toml"
    pol.write_text(
        'baseline = "base"\ncandidate = ["at-*"]\nci = 0.9\nbootstrap = 30\nseed = 5\n\n'
        '[[rule]]\nsummary = "p050"\nmax_increase = 0.25\n'
    )
    p = load_policy(pol)
    assert (p.baseline, p.candidates, p.ci, p.n_boot, p.seed) == ("base", ["at-*"], 0.9, 30, 5)
    assert p.rules == [Rule("p50", 0.25, None, False, f"{pol}:7")]
    r, obj = gate_json(store, "--policy", pol, "--rule", "mean:+0.2")  # an option rule is added
    assert r.exit_code == 1
    assert [row["rule"] for row in rule_rows(obj)] == ["p50 Δ ≤ +0.25 nats", "mean Δ ≤ +0.2 nats"]
    assert "Intervals: 90% paired document-level bootstrap, 200 resamples, seed 5" in obj["notes"][-1]  # --bootstrap overrides


def test_rule_option_syntax():
    assert parse_rule_option("p95:+3%:significant") == Rule("p95", None, 0.03, True, "--rule p95:+3%:significant")
    assert parse_rule_option("mean:0.01") == Rule("mean", 0.01, None, False, "--rule mean:0.01")
    assert parse_rule_option("top1:+1%").label() == "top1 Δ ≥ −1%"
    with pytest.raises(PolicyError, match="the limit must be >= 0"):
        parse_rule_option("p50:-0.01")


# ---------------------------------------------------------------- CI outputs


def test_junit_xml_has_one_testcase_per_rule_per_candidate(store, tmp_path):
    out = tmp_path / "ci" / "gate.xml"
    r = run("gate", store, "--baseline", "base", "--candidate", "at-limit", "--candidate", "over",
            "--rule", "mean:+0.25", "--rule", "p95:+3%:significant", "--bootstrap", "50", "--junit", out)
    assert r.exit_code == 1
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "4" and root.get("failures") == "3"
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 4
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == 3
    assert {(c.get("classname"), c.get("name")) for c in failures} == {
        ("pctce.gate.at-limit", "p95 Δ ≤ +3% (if significant)"),
        ("pctce.gate.over", "mean Δ ≤ +0.25 nats"),
        ("pctce.gate.over", "p95 Δ ≤ +3% (if significant)"),
    }
    for suite in root.findall("testsuite"):
        assert int(suite.get("tests")) == len(suite.findall("testcase"))
        assert int(suite.get("failures")) == len(suite.findall("testcase/failure"))
    msg = failures[0].find("failure").get("message")
    assert msg.startswith("p95 rose by 0.2500 (16.67%) vs 'base' (1.5000 → 1.7500); limit +3% if significant")


_NUMBER = re.compile(r"[-+−]?\d+\.(\d+)")


def assert_matches_golden(text: str, name: str) -> None:
    """Compare with tests/golden/<name>: text exactly, numbers within 2 units of their last printed digit.

    Set PCTCE_UPDATE_GOLDEN=1 to rewrite the golden file.
    """
    path = GOLDEN / name
    if os.environ.get("PCTCE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    want = path.read_text(encoding="utf-8")
    assert _NUMBER.sub("#", text) == _NUMBER.sub("#", want), "non-numeric text differs from " + str(path)
    got_n, want_n = list(_NUMBER.finditer(text)), list(_NUMBER.finditer(want))
    for g, w in zip(got_n, want_n):
        tol = 2 * 10 ** -len(w.group(1))
        gv, wv = (float(m.group(0).replace("−", "-")) for m in (g, w))
        assert abs(gv - wv) <= tol, f"{g.group(0)} vs golden {w.group(0)}"


def test_markdown_report_is_stable_and_goes_to_the_step_summary(store, tmp_path):
    md, summary = tmp_path / "gate.md", tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    r = run("gate", store, "--baseline", "base", "--candidate", "over", "--candidate", "noisy", "--candidate", "at-limit",
            "--rule", "mean:+0.25", "--rule", "p50:+5%:significant", "--rule", "p95:+20%",
            "--seed", "1", "--bootstrap", "200", "--markdown", md, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert r.exit_code == 1
    text = md.read_text()
    assert_matches_golden(text, "gate.md")
    assert summary.read_text() == "# earlier step\n" + text + "\n"


def test_step_summary_only_with_markdown(store, tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    r = run("gate", store, "--baseline", "base", "--candidate", "at-limit", "--rule", "mean:+0.25", "--bootstrap", "20",
            "--markdown", tmp_path / "gate.md")
    assert r.exit_code == 0 and (tmp_path / "gate.md").read_text().startswith("## pctce release gate: ✅ PASSED")
    summary = tmp_path / "summary.md"
    r = run("gate", store, "--baseline", "base", "--candidate", "at-limit", "--rule", "mean:+0.25", "--bootstrap", "20",
            env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert r.exit_code == 0 and not summary.exists()
    assert "Gate PASSED: 1 of 1 candidate(s) pass all 1 rule(s)." in " ".join(r.stdout.split())


def test_top1_regression_is_a_decrease(tmp_path):
    doc = docs_of(8, 16)
    ce = baseline_ce()
    rank_a = np.where(np.arange(128) % 2 == 0, 0, 3)  # top1 = 0.5
    rank_b = np.where(np.arange(128) % 8 < 3, 0, 3)  # top1 = 0.375
    make_store(tmp_path / "s", "base", ce, doc, rank=rank_a)
    make_store(tmp_path / "s", "cand", ce, doc, rank=rank_b)
    args = ("gate", tmp_path / "s", "--baseline", "base", "--bootstrap", "30")
    assert run(*args, "--rule", "top1:+0.125").exit_code == 0
    r = run(*args, "--rule", "top1:+0.12")
    assert r.exit_code == 1
    assert r.stderr.strip() == "Error: release gate failed: cand fails 1 of 1 rules (top1 -0.1250 (-25.00%) < −0.12)"
    assert run(*args, "--rule", "top1:+25%").exit_code == 0


def test_explanations_say_which_way_the_summary_moved():
    """A summary that improved reads "fell"/"rose" with a positive amount, never "rose by -0.40"."""
    p50 = evaluate_rule(Rule("p50", max_increase=0.01), {"delta": -0.4, "lo": -0.5, "hi": -0.3, "a": 2.0, "b": 1.6})
    assert p50.explain("base").startswith("p50 fell by 0.4000 (20.00%) vs 'base' (2.0000 → 1.6000)")
    top1 = evaluate_rule(Rule("top1", max_increase=0.01), {"delta": 0.0073, "lo": 0.001, "hi": 0.01, "a": 0.5, "b": 0.5073})
    assert top1.explain("base").startswith("top1 rose by 0.0073 (1.46%) vs 'base'")
    assert top1.passed and p50.passed
