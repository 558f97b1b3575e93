"""Gate rules on a position range (docs/definitions.md#position-in-the-context): ``p50@pos>=64:+1%`` and ``position = ">=64"``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pctce_cli.gate import run_gate
from pctce_cli.gate.policy import parse_rule_option
from pctce_cli.errors import PolicyError
from pctce_cli.stats.bootstrap import paired_bootstrap
from pctce_cli.stats.position import context_lengths

from .cli import run
from .test_position_cli import store


@pytest.fixture()
def pair(tmp_path):
    root, doc, pos, ce_a, _ = store(tmp_path, seed=0, ck="ck-a")
    ce_b = ce_a.copy()
    ce_b[pos >= 64] *= np.float32(1.05)  # worse late in the documents only
    from .helpers import make_store

    make_store(root, "ck-b", ce_b, doc, shards=2)
    return root, doc, pos, ce_a, ce_b


def test_a_rule_on_late_positions_catches_what_the_pooled_rule_misses(pair):
    root, doc, pos, ce_a, ce_b = pair
    res = run_gate([root], baseline="ck-a", rules=["p50@pos>=64:+1%", "p50:+5%"], n_boot=200)
    [c] = res.candidates
    late, pooled = c.results[1], c.results[0]  # checks in rule order: pooled first (the plan's), then the ranges
    assert pooled.passed and not late.passed
    keep = pos >= 64
    want = paired_bootstrap(ce_a[keep], ce_b[keep], doc[keep], ["p50"], n_boot=200, ci=0.95, seed=0)["p50"]
    assert (late.baseline, late.candidate) == (want["a"], want["b"])
    assert (late.lo, late.hi) == (pytest.approx(want["lo"], abs=1e-12), pytest.approx(want["hi"], abs=1e-12))
    assert late.targets == keep.sum() and late.name == "p50 at pos ≥ 64" and late.label == "p50 Δ ≤ +1% at pos ≥ 64"


def test_a_policy_file_rule_on_ctx_and_the_cli_exit_code(pair, tmp_path):
    root, doc, pos, ce_a, ce_b = pair
    pol = tmp_path / "gate.toml"
    pol.write_text('baseline = "ck-a"\nbootstrap = 100\n[[rule]]\nsummary = "mean"\nmax_increase_rel = 0.01\nctx = ">=32"\n', encoding="utf-8")
    ctx = context_lengths(doc, pos, 64, 32)
    keep = ctx >= 32
    r = run("gate", root, "--policy", pol, "--json", tmp_path / "g.json")
    assert r.exit_code == 1
    assert "mean at ctx ≥ 32 rose by" in r.stdout
    [check] = json.loads((tmp_path / "g.json").read_text())["candidates"][0]["results"]
    want = paired_bootstrap(ce_a[keep], ce_b[keep], doc[keep], ["mean"], n_boot=100, seed=0)["mean"]
    assert (check["rule"], check["targets"], check["status"]) == ("mean Δ ≤ +1% at ctx ≥ 32", keep.sum(), "FAIL")
    assert check["delta"] == pytest.approx(want["delta"], rel=1e-12)
    assert (check["lo"], check["hi"]) == (pytest.approx(want["lo"], abs=1e-12), pytest.approx(want["hi"], abs=1e-12))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("p50@pos>=x:+1%", "rule 'p50@pos>=x:+1%': a position range is pos or ctx then >=A, <B or >=A,<B (tokens), e.g. p50@pos>=4096:+1%"),
        ("p50@pos>=8,<4:+1%", "rule 'p50@pos>=8,<4:+1%': a position range is pos or ctx then >=A, <B or >=A,<B (tokens), e.g. p50@pos>=4096:+1%"),
    ],
)
def test_bad_ranges_are_refused(spec, message):
    with pytest.raises(PolicyError) as e:
        parse_rule_option(spec)
    assert str(e.value) == message


def test_policy_range_errors_name_the_line(tmp_path):
    from pctce_cli.gate.policy import load_policy

    pol = tmp_path / "gate.toml"
    pol.write_text('[[rule]]\nsummary = "p50"\nmax_increase = 0.1\nposition = "4096"\n', encoding="utf-8")
    with pytest.raises(PolicyError) as e:
        load_policy(pol)
    assert str(e.value) == f"{pol}:4: rule 1: position must be \">=A\", \"<B\" or \">=A,<B\" (tokens), e.g. \">=4096\" (got string '4096')"
    pol.write_text('[[rule]]\nsummary = "p50"\nmax_increase = 0.1\nposition = ">=8"\nsubset = "code"\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="rule 1: a rule is checked on one position range or one subset"):
        load_policy(pol)


def test_the_rule_repr_and_label_without_a_range_are_unchanged():
    r = parse_rule_option("p50:+0.01")
    assert repr(r) == "Rule(summary='p50', max_increase=0.01, max_increase_rel=None, significant=False, source='--rule p50:+0.01', subset=None)"
    assert r.label() == "p50 Δ ≤ +0.01 nats"


def test_a_range_no_target_reaches_is_a_policy_error_naming_the_positions(pair):
    """A rule on positions the data never reaches could not pass for any candidate: exit 2 with the span, not a FAIL."""
    root, doc, pos, ce_a, ce_b = pair
    r = run("gate", root, "--baseline", "ck-a", "--rule", "p50@pos>=100000:+1%")
    assert r.exit_code == 2, r.output
    want = (
        f"--rule p50@pos>=100000:+1%: no target of 'ck-a' lies at pos ≥ 100000 (its pos runs {int(pos.min())}–{int(pos.max())}); "
        "a rule on a range no target reaches cannot be checked: change the range"
    )
    assert " ".join(r.output.split()) == f"Error: {want}"
