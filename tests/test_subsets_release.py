"""Subsets (SPEC §7) in the release commands: compare, gate, report and plot with --by / --subset / policy subsets."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from pctce_cli.stats.bootstrap import paired_bootstrap
from pctce_cli.store import write_labels

from .cli import as_json, run, section
from .helpers import count_shard_reads, make_store

N_DOCS, PER_DOC = 12, 10
NAMES = ["mean", "p50", "p90", "p95", "p99", "iqr"]  # what compare computes at its default percentiles


def labelled_store(root, ces: dict, doc, labels: dict, field="domain"):
    """A store with one checkpoint per ``ces`` entry, its documents labelled ``labels[doc]`` in ``field``."""
    ids = np.unique(doc)
    for k, (ck, ce) in enumerate(ces.items()):
        make_store(root, ck, ce, doc, step=100 * (k + 1))
        write_labels(root, ck, {field: [labels[i] for i in ids]}, ids)
    return root


def domains(n=N_DOCS):
    return {i: ("code" if i % 3 == 0 else "prose") for i in range(n)}


@pytest.fixture()
def data():
    rng = np.random.default_rng(7)
    doc = np.repeat(np.arange(N_DOCS), PER_DOC)
    a = rng.gamma(1.5, 1.0, size=len(doc))
    code = np.isin(doc, [i for i, v in domains().items() if v == "code"])
    return doc, a, code


@pytest.fixture()
def store(tmp_path, data):
    """base; cand: code documents moved (varying), prose documents within noise; prose-only: only prose moved."""
    doc, a, code = data
    rng = np.random.default_rng(8)
    b = a * rng.lognormal(0.0, 0.01, size=len(a)) + np.where(code, 0.5, 0.0)
    prose_only = a + np.where(code, 0.0, 0.5)
    return labelled_store(tmp_path / "scores", {"base": a, "cand": b, "prose-only": prose_only}, doc, domains())


# ---------------------------------------------------------------- compare


def test_compare_by_subset_matches_numpy_on_the_filtered_arrays(store, data):
    doc, a, code = data
    from pctce_cli.store import load_scores

    b = load_scores(store, "cand").ce.astype(np.float64)
    a32 = load_scores(store, "base").ce.astype(np.float64)
    obj = as_json(run("compare", f"{store}:base", f"{store}:cand", "--by", "domain", "--bootstrap", "300", "--seed", "3", "-f", "json"))
    rows = section(obj, "cand − base by domain")
    assert {r["subset"] for r in rows} == {"code", "prose"}
    for label, mask in (("code", code), ("prose", ~code)):
        got = {r["summary"]: r for r in rows if r["subset"] == label}
        xa, xb, d = a32[mask], b[mask], doc[mask]
        assert got["mean"]["baseline"] == pytest.approx(xa.mean(), abs=1e-9)
        assert got["mean"]["candidate"] == pytest.approx(xb.mean(), abs=1e-9)
        for q in (50, 90, 95, 99):
            assert got[f"p{q}"]["baseline"] == pytest.approx(np.percentile(xa, q), abs=1e-6)
            assert got[f"p{q}"]["Δ"] == pytest.approx(np.percentile(xb, q) - np.percentile(xa, q), abs=1e-6)
        # the paired bootstrap of a subset resamples only that subset's documents: the stats function on the filtered arrays
        ref = paired_bootstrap(xa, xb, d, NAMES, n_boot=300, ci=0.95, seed=3)
        for name in NAMES:
            assert got[name]["lo"] == pytest.approx(ref[name]["lo"], abs=1e-9)
            assert got[name]["hi"] == pytest.approx(ref[name]["hi"], abs=1e-9)
    verdicts = {r["subset"]: r["candidate"] for r in section(obj, "Verdict by domain")}
    assert verdicts["code"] == "worse"
    assert any(n.startswith("cand is worse than base on domain = code") for n in obj["notes"])


def test_compare_subset_keeps_only_those_documents(store):
    by = as_json(run("compare", f"{store}:base", f"{store}:cand", "--by", "domain", "--top", "0", "-f", "json"))
    one = as_json(run("compare", f"{store}:base", f"{store}:cand", "--subset", "code", "--top", "0", "-f", "json"))
    rows = section(one, "cand − base (nats")
    assert section(one, "cand − base").__len__() == len(rows)
    code = {r["summary"]: r for r in section(by, "cand − base by domain") if r["subset"] == "code"}
    for r in rows:
        assert r["Δ"] == pytest.approx(code[r["summary"]]["Δ"], abs=1e-12)
        assert r["lo"] == pytest.approx(code[r["summary"]]["lo"], abs=1e-12)
    assert "Only documents of subset domain = code (4 documents)." in one["notes"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--by", "lang"], "--by lang: no checkpoint has a subset 'lang' (subsets: domain); add it with 'pctce score … --subset-field lang' (the scores are re-used, nothing is re-scored)"),
        (["--subset", "cod"], "--subset cod: no document of base has domain = cod (values: code, prose)"),
        (["--by", "correct"], "--by correct: no checkpoint has a subset 'correct' (subsets: domain); score with --task-accuracy"),
    ],
)
def test_compare_subset_errors_are_one_line_exit_2(store, args, message):
    r = run("compare", f"{store}:base", f"{store}:cand", *args)
    assert r.exit_code == 2
    assert r.stderr.strip() == f"Error: {message}"


@pytest.mark.slow
def test_thousands_of_labels_give_a_note_and_a_capped_table(tmp_path):
    n = 1200
    doc = np.repeat(np.arange(n), 2)
    a = np.random.default_rng(0).gamma(1.5, 1.0, size=len(doc))
    root = labelled_store(tmp_path / "s", {"base": a, "cand": a + 0.1}, doc, {i: f"u{i:05d}" for i in range(n)}, field="user")
    obj = as_json(run("compare", f"{root}:base", f"{root}:cand", "--by", "user", "--bootstrap", "20", "--top", "0", "-f", "json"))
    assert len(section(obj, "Verdict by user")) == 50
    assert any(n.startswith("1,200 subsets of 'user': the tables show the 50 with the most documents") for n in obj["notes"])
    # the gate checks every subset, and its tables stay readable
    r = run("gate", root, "--baseline", "base", "--rule", "mean@*:+1", "--bootstrap", "20", "--junit", tmp_path / "g.xml", "-f", "json")
    assert r.exit_code == 0, r.stderr
    obj = json.loads(r.stdout)
    assert len(section(obj, "Rules")) == 50 and len(section(obj, "Subsets of user")) == 50
    assert any("1,200 subsets of 'user' are gated, each one" in n for n in obj["notes"])
    assert len(ET.parse(tmp_path / "g.xml").getroot().findall(".//testcase")) == n


# ---------------------------------------------------------------- gate


def gate(store, *args, env=None):
    return run("gate", store, "--baseline", "base", "--bootstrap", "200", *args, env=env)


@pytest.mark.parametrize(
    "candidate, rule, code",
    [
        ("cand", "p95@code:+0.1", 1),  # the regressed subset fails
        ("cand", "p95@prose:+0.1", 0),  # another subset passes
        ("prose-only", "p95@code:+0.1", 0),  # only an ungated subset moved
        ("prose-only", "p95@prose:+0.1", 1),
        ("prose-only", "p95:+0.2", 1),  # the pooled rule sees it
        ("prose-only", "p95@*:+0.1", 1),
        ("cand", "p95@domain=code:+0.1", 1),
        ("cand", "p95@domain=prose:+0.1", 0),
    ],
)
def test_gate_exit_codes_per_subset(store, candidate, rule, code):
    r = gate(store, "--candidate", candidate, "--rule", rule)
    assert r.exit_code == code, r.stderr
    if code == 1:
        assert r.stderr.startswith(f"Error: release gate failed: {candidate} fails 1 of ")
        moved = "code" if candidate == "cand" else "prose"
        assert f"p95 on domain={moved} +" in r.stderr or "@" not in rule


def test_gate_failure_names_the_subset(store):
    r = gate(store, "--candidate", "cand", "--rule", "p95@code:+0.1")
    assert r.exit_code == 1
    assert "Error: release gate failed: cand fails 1 of 1 rule checks (p95 on domain=code +" in r.stderr
    assert "✗ cand: p95 on domain=code rose by " in r.stdout


def test_policy_subset_keys(store, tmp_path):
    pol = tmp_path / "gate.toml"
    pol.write_text(
        'baseline = "base"\ncandidate = ["cand"]\nsubset_field = "domain"\n\n'
        '[[rule]]\nsummary = "p95"\nmax_increase = 0.1\nsubset = "prose"\n\n'
        '[[rule]]\nsummary = "mean"\nmax_increase = 0.1\nsubset = "*"\n'
    )
    r = run("gate", store, "--policy", pol, "--bootstrap", "100", "-f", "json")
    assert r.exit_code == 1
    rows = section(json.loads(r.stdout), "Rules")
    assert [(x["rule"].split()[0], x["subset"], x["result"]) for x in rows] == [
        ("p95", "prose", "pass"),
        ("mean", "code", "FAIL"),
        ("mean", "prose", "pass"),
    ]


@pytest.mark.parametrize(
    "policy, message",
    [
        ('subset_field = "lang"\n[[rule]]\nsummary = "p95"\nmax_increase = 0.1\nsubset = "code"\n',
         "{p}:1: subset_field: no checkpoint has a subset field 'lang' (subsets: domain); add it with 'pctce score … --subset-field lang' (the scores are re-used, nothing is re-scored)"),
        ('[[rule]]\nsummary = "p95"\nmax_increase = 0.1\nsubset = "cod"\n',
         "{p}:1: subset 'cod': no document of 'base' has domain = cod (values: code, prose)"),
        ('[[rule]]\nsummary = "p95"\nmax_increase = 0.1\nsubset = 3\n',
         '{p}:4: rule 1: subset must be a subset value, FIELD=VALUE or "*" (every subset), e.g. subset = "code" (got integer 3)'),
    ],
)
def test_policy_subset_errors_exit_2(store, tmp_path, policy, message):
    pol = tmp_path / "gate.toml"
    pol.write_text(policy)
    r = run("gate", store, "--policy", pol, "--baseline", "base")
    assert r.exit_code == 2
    assert r.stderr.strip() == "Error: " + message.format(p=pol)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rule", "p95@:+1"], "--rule 'p95@:+1': name the subset after '@', e.g. p95@code:+3% or p95@*:+3% (every subset)"),
        (["--rule", "p95:+1", "--by", "lang"], "--by: no checkpoint has a subset field 'lang' (subsets: domain); add it with 'pctce score … --subset-field lang' (the scores are re-used, nothing is re-scored)"),
        (["--rule", "p95:+1", "--subset", "cod"], "--subset cod: no document of 'base' has domain = cod (values: code, prose)"),
        (["--rule", "p95@prose:+1", "--subset", "code"], "--rule p95@prose:+1: subset 'prose' is left out by --subset code"),
    ],
)
def test_gate_subset_option_errors(store, args, message):
    r = gate(store, *args)
    assert r.exit_code == 2
    assert r.stderr.strip() == "Error: " + message


def test_gate_by_and_subset_options(store):
    r = gate(store, "--candidate", "cand", "--rule", "p95:+0.1", "--by", "domain", "-f", "json")
    assert r.exit_code == 1
    assert [x["subset"] for x in section(json.loads(r.stdout), "Rules")] == ["code", "prose"]
    r = gate(store, "--candidate", "cand", "--rule", "p95:+0.1", "--subset", "prose", "-f", "json")
    assert r.exit_code == 0, r.stderr
    obj = json.loads(r.stdout)
    assert "Only documents of subset domain = prose were gated (--subset)." in obj["notes"]
    assert [x["subset"] for x in section(obj, "Rules")] == ["(all)"] and not any(k.startswith("Subsets of") for k in obj)


def test_gate_junit_has_a_case_per_rule_and_subset_and_markdown_a_subset_table(store, tmp_path):
    junit, md, js = tmp_path / "g.xml", tmp_path / "g.md", tmp_path / "g.json"
    r = gate(store, "--rule", "p95@*:+0.1", "--rule", "mean@code:+0.1", "--rule", "p50:+1", "--junit", junit, "--markdown", md, "--json", js)
    assert r.exit_code == 1
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert len(suites) == 2  # cand, prose-only
    for s in suites:
        names = [c.get("name") for c in s.findall("testcase")]
        assert names == ["p95 Δ ≤ +0.1 nats on domain=code", "p95 Δ ≤ +0.1 nats on domain=prose", "mean Δ ≤ +0.1 nats on domain=code", "p50 Δ ≤ +1 nats"]
    text = md.read_text(encoding="utf-8")
    assert "### Subsets of `domain`" in text
    assert "| subset | targets | documents | `prose-only` | `cand` |" in text or "| subset | targets | documents | `cand` | `prose-only` |" in text
    line = next(x for x in text.splitlines() if x.startswith("| code |"))
    assert line.startswith("| code | 40 | 4 |") and "❌ FAIL (p95, mean)" in line and "✅ pass (2 checks)" in line
    obj = json.loads(js.read_text())
    assert obj["subset_field"] == "domain"
    assert obj["subsets"] == [{"subset": "code", "targets": 40, "documents": 4}, {"subset": "prose", "targets": 80, "documents": 8}]


def test_gate_reads_each_partition_once_with_several_subset_rules(store, monkeypatch):
    reads = count_shard_reads(monkeypatch)
    r = gate(store, "--rule", "p95@*:+0.1", "--rule", "mean@code:+0.1", "--rule", "p50@prose:+1", "--rule", "mean:+1")
    assert r.exit_code == 1
    tokens = [k for k in reads if "part-" in k and "_docs" not in k]
    assert len(tokens) == 3 and set(reads.values()) == {1}


def test_gate_bootstrap_of_a_subset_resamples_only_its_documents(store, data):
    from pctce_cli.store import load_scores

    doc, _, code = data
    r = gate(store, "--candidate", "cand", "--rule", "mean@code:+1", "--rule", "p95@code:+1", "-f", "json")
    rows = section(json.loads(r.stdout), "Rules")
    a, b = load_scores(store, "base").ce, load_scores(store, "cand").ce
    ref = paired_bootstrap(a[code], b[code], doc[code], ["mean", "p95"], n_boot=200, ci=0.95, seed=0)
    for row in rows:
        s = row["rule"].split()[0]
        assert (row["lo"], row["hi"]) == (pytest.approx(ref[s]["lo"], abs=1e-9), pytest.approx(ref[s]["hi"], abs=1e-9))


# ---------------------------------------------------------------- report and plot


@pytest.fixture()
def gamma_store(tmp_path):
    """Three checkpoints whose CE spans decades, documents labelled code/prose."""
    rng = np.random.default_rng(2)
    doc = np.repeat(np.arange(N_DOCS), PER_DOC)
    base = rng.gamma(0.7, 1.5, size=len(doc)) + 1e-3
    ces = {f"ck{k}": base * s for k, s in enumerate((1.0, 0.9, 1.1))}
    return labelled_store(tmp_path / "g", ces, doc, domains())


@pytest.mark.slow
def test_report_has_a_subset_section_only_when_the_store_has_subsets(gamma_store, tmp_path, monkeypatch):
    reads = count_shard_reads(monkeypatch)
    out = tmp_path / "r.html"
    r = run("report", gamma_store, "--tail-top", "0", "--out", out)
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    assert '<section id="subsets">' in text and "<h2>Subsets</h2>" in text and 'href="#subsets"' in text
    assert "Per-token CE summaries by domain (nats)" in text and "Pooled and macro-averaged mean CE" in text
    assert 'id="plot-subsets-domain"' in text
    assert text.index('id="summaries"') < text.index('id="subsets"') < text.index('id="concordance"')
    assert reads and set(reads.values()) == {1}  # one read of each partition, subsets included

    plain = tmp_path / "plain"
    make_store(plain, "x", np.ones(20), np.repeat(np.arange(4), 5))
    make_store(plain, "y", np.full(20, 2.0), np.repeat(np.arange(4), 5))
    r = run("report", plain, "--tail-top", "0", "--out", tmp_path / "p.html")
    assert r.exit_code == 0, r.output
    assert 'id="subsets"' not in (tmp_path / "p.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_report_subset_keeps_only_those_documents(gamma_store, tmp_path):
    out = tmp_path / "r.md"
    r = run("report", gamma_store, "--subset", "code", "--tail-top", "0", "--markdown", "--out", out)
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    assert "Only documents of subset domain = code (--subset): every number is of those documents." in text
    summary = text[text.index("**Per-token CE summaries (nats)**") :].splitlines()[4]
    assert summary.startswith("| ck0 |") and "| 40 |" in summary  # the 4 code documents' 40 targets
    r = run("report", gamma_store, "--subset", "cod", "--out", tmp_path / "x.html")
    assert r.exit_code == 2
    assert r.stderr.strip() == "Error: --subset cod: no document of ck0 has domain = cod (values: code, prose)"


@pytest.mark.parametrize("kind", ["ecdf", "shape"])
def test_plot_by_draws_one_panel_per_subset(gamma_store, kind):
    from pctce_cli import plot
    from pctce_cli.analysis.subsets import resolve_subsets
    from pctce_cli.catalog import resolve_checkpoints

    cks = resolve_checkpoints([gamma_store])
    fig = plot.plot_figure(kind, cks, subsets=resolve_subsets(cks, "domain"))
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["domain = code (40 targets)", "domain = prose (80 targets)"]
    for ax in axes:
        assert [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")] == ["ck0", "ck1", "ck2"]


@pytest.mark.slow
def test_plot_by_and_subset_on_the_command_line(gamma_store, tmp_path):
    for kind in ("ecdf", "shape", "bands"):
        r = run("plot", kind, gamma_store, "--by", "domain", "--out", tmp_path / f"{kind}.png")
        assert r.exit_code == 0, r.output
        assert (tmp_path / f"{kind}.png").read_bytes().startswith(b"\x89PNG")
    r = run("plot", "ecdf", gamma_store, "--subset", "prose", "--out", tmp_path / "p.svg")
    assert r.exit_code == 0, r.output
    r = run("plot", "trajectory", gamma_store, "--by", "domain", "--out", tmp_path / "t.png")
    assert r.exit_code == 2
    assert r.stderr.strip() == "Error: plot trajectory --by: one panel per subset is drawn for ecdf, shape, bands; plot one subset with --subset VALUE"
    r = run("plot", "ecdf", gamma_store, "--by", "lang", "--out", tmp_path / "x.png")
    assert r.exit_code == 2
    assert r.stderr.strip().startswith("Error: --by lang: no checkpoint has a subset 'lang' (subsets: domain)")


@pytest.mark.slow
def test_plot_with_many_subsets_caps_the_panels_with_a_warning(tmp_path):
    n = 30
    doc = np.repeat(np.arange(n), 3 + np.arange(n) % 5)
    a = np.random.default_rng(0).gamma(1.5, 1.0, size=len(doc))
    root = labelled_store(tmp_path / "s", {"base": a}, doc, {i: f"u{i:03d}" for i in range(n)}, field="user")
    r = run("plot", "ecdf", root, "--by", "user", "--out", tmp_path / "u.png")
    assert r.exit_code == 0, r.output
    assert "Warning: 30 subsets of 'user': the figure shows the 12 with the most targets; choose others with --subset VALUE" in r.stderr
