"""Gate rules on the divergence from a reference model: `p99 kl <= 0.05`, `same_top1 >= 0.98`, with exit codes."""

from __future__ import annotations

import numpy as np
import pytest

from pctce_cli.errors import PolicyError
from pctce_cli.gate.policy import parse_rule_option

from .cli import run, run_json
from .helpers import make_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(1)
    root = tmp_path_factory.mktemp("klgate") / "out"
    doc = np.repeat(np.arange(10), 40)
    n = doc.size
    quant = {"kl": rng.exponential(0.005, n), "dp": rng.normal(0, 0.01, n), "same_top1": (np.arange(n) % 100 != 0).astype(np.int8)}  # 99% agree
    topk = {"kl": rng.lognormal(-3, 1.5, n), "dp": rng.normal(0, 0.1, n).clip(-1, 1), "same_top1": (np.arange(n) % 10 != 0).astype(np.int8)}
    make_store(root, "base", rng.gamma(2, 1, n), doc)
    make_store(root, "quant", rng.gamma(2, 1, n), doc, divergence=quant)
    make_store(root, "topk", rng.gamma(2, 1, n), doc, divergence=topk)
    return root, quant, topk


def test_parse_rules():
    r = parse_rule_option("p99.9 kl <= 0.1")
    assert (r.summary, r.value, r.at_most, r.absolute) == ("p99.9", "kl", 0.1, True)
    r = parse_rule_option(" same_top1>=0.98 ")
    assert (r.summary, r.at_least, r.higher_is_better) == ("same_top1", 0.98, True)
    for bad in ("p99 kl <= x", "same_top1 kl >= 0.9", "iqr kl <= 1", "p99 <= 0.05"):
        with pytest.raises(PolicyError, match="expected SUMMARY kl|dp <= LIMIT|is not a number"):
            parse_rule_option(bad)


def test_thresholds_pass_and_fail_with_exit_codes(store):
    root, quant, topk = store
    ok = run("gate", root, "--candidate", "quant", "--rule", "p99 kl <= 0.05", "--rule", "same_top1 >= 0.98", "--format", "json")
    assert ok.exit_code == 0, ok.output
    bad = run("gate", root, "--candidate", "quant", "--candidate", "topk", "--rule", "p99 kl <= 0.05", "--rule", "same_top1 >= 0.98")
    assert bad.exit_code == 1
    p99 = np.percentile(topk["kl"].astype(np.float32).astype(np.float64), 99)
    assert bad.stderr.strip().startswith(f"Error: release gate failed: topk fails 2 of 2 rules (p99 kl = {p99:.4f}, limit ≤ 0.05")


def test_values_and_intervals(store):
    root, quant, _ = store
    got = run_json("gate", root, "--candidate", "quant", "--rule", "p99 kl <= 0.05", "--rule", "mean dp >= -0.01", "--bootstrap", "200")
    rows = next(v for k, v in got.items() if k.startswith("Rules"))
    kl = quant["kl"].astype(np.float32).astype(np.float64)
    assert rows[0]["value"] == pytest.approx(np.percentile(kl, 99), rel=1e-6) and rows[0]["baseline"] == 0.05
    assert rows[0]["lo"] + 0.05 <= rows[0]["value"] <= rows[0]["hi"] + 0.05
    assert rows[1]["value"] == pytest.approx(quant["dp"].astype(np.float32).astype(np.float64).mean(), abs=1e-9)


def test_a_candidate_without_kl_is_refused(store):
    r = run("gate", store[0], "--candidate", "base", "--rule", "p99 kl <= 0.05")
    assert r.exit_code == 2
    assert "--value kl: 'base' in " in r.stderr and "was scored without a reference model" in r.stderr


def test_mixed_with_a_paired_rule_and_a_policy_file(store, tmp_path):
    root = store[0]
    pol = tmp_path / "gate.toml"
    pol.write_text('baseline = "base"\n[[rule]]\nsummary = "p50"\nmax_increase = 10\n[[rule]]\nsummary = "p99"\nvalue = "kl"\nat_most = 0.05\n')
    assert run("gate", root, "--policy", pol, "--candidate", "quant").exit_code == 0
    assert run("gate", root, "--policy", pol, "--candidate", "topk").exit_code == 1
    pol.write_text('[[rule]]\nsummary = "p99"\nvalue = "kl"\nat_most = "x"\n')
    r = run("gate", root, "--policy", pol)
    assert r.exit_code == 2 and f"{pol}:1: rule 1: a divergence rule is summary" in r.stderr
