"""Gate outputs: the terminal report, JSON, Markdown, JUnit XML and the one-line failure message.

The file writers write atomically (:mod:`pctce_cli.atomic`); the GitHub step
summary is appended to. An unwritable path is a
:class:`~pctce_cli.errors.UsageError` naming the option. Numbers are formatted
by :mod:`pctce_cli.fmt`, in fixed formats so the Markdown report is stable.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pctce_cli import atomic, fmt
from pctce_cli.analysis.report import Report
from pctce_cli.errors import UsageError
from pctce_cli.gate.evaluate import CandidateResult, GateResult, RuleResult
from pctce_cli.gate.subsets import SHOWN


def _short_failure(r: RuleResult) -> str:
    """``p95 +0.1234 (+4.10%) > +3%``; for top1 ``top1 -0.0200 (-4.00%) < −1%``."""
    if math.isnan(r.delta):
        return f"{r.name} undefined" + (" (no targets)" if r.targets == 0 else "")
    if r.rule.absolute:  # a threshold on the divergence from the reference (gate/absolute.py)
        return f"{r.rule.label().rsplit(' ', 2)[0]} = {r.candidate:.4f}, limit {r.rule.limit_text()}"
    if r.rule.higher_is_better:
        return f"{r.name} {r.delta:+.4f} ({-100 * r.rel:+.2f}%) < {r.rule.limit_text()}"
    return f"{r.name} {r.delta:+.4f} ({100 * r.rel:+.2f}%) > {r.rule.limit_text()}"


def failure_message(result: GateResult) -> str:
    """The one-line reason the gate failed (for ``Error: …``, exit code 1).

    Args:
        result: The gate run.

    Returns:
        ``release gate failed: ID fails N of M rules (…)``, one part per failing candidate.
    """
    parts = []
    what = "rule checks" if result.subset_field else "rules"
    for c in result.candidates:
        if c.failed:
            bad = [_short_failure(r) for r in c.results if not r.passed]
            failed = ", ".join(bad[:SHOWN]) + (f", … {len(bad) - SHOWN} more" if len(bad) > SHOWN else "")
            parts.append(f"{c.id} fails {c.failed} of {len(c.results)} {what} ({failed})")
    head = "release gate failed" if result.require == "all" else "release gate failed: no candidate passes every rule"
    return f"{head}: " + "; ".join(parts)


def result_dict(result: GateResult) -> dict:
    """A JSON-ready description of the gate run (NaN and inf become null).

    (Long the JSON document's fields in the order they are written, one line each.)

    Args:
        result: The gate run.

    Returns:
        Settings, rules and the ranked candidates with every rule's result.
    """
    return {
        "passed": result.passed,
        "baseline": result.baseline,
        "require": result.require,
        "policy": result.policy,
        "bootstrap": {"ci": result.ci, "resamples": result.n_boot, "seed": result.seed, "method": result.method},
        "notes": result.notes,
        "subset_field": result.subset_field,
        "subset_kept": list(result.keep),
        "subsets": result.subsets,
        "rules": [
            {
                "summary": r.summary,
                "subset": r.subset,
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
                "relative_regression_sum": fmt.json_number(c.rel_sum),
                "results": [
                    {
                        "rule": r.label,
                        "summary": r.rule.summary,
                        "subset": r.subset,
                        "targets": r.targets,
                        "baseline": fmt.json_number(r.baseline),
                        "candidate": fmt.json_number(r.candidate),
                        "delta": fmt.json_number(r.delta),
                        "delta_rel": fmt.json_number(r.rel if not r.rule.higher_is_better else -r.rel),
                        "lo": fmt.json_number(r.lo),
                        "hi": fmt.json_number(r.hi),
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


def _pct(r: RuleResult) -> str:
    """Relative Δ in the summary's own direction: ``+4.10%``; ``—``, ``+∞`` or ``−∞`` (no ``%``) when not finite."""
    rel = -r.rel if r.rule.higher_is_better else r.rel
    return fmt.spec(100 * rel, "+.2f") + "%" if math.isfinite(rel) else fmt.spec(rel, "+.2f")


def gate_report(result: GateResult) -> Report:
    """The terminal view: a ranking table and one row per candidate × rule.

    Args:
        result: The gate run.

    Returns:
        A :class:`~pctce_cli.analysis.Report` with two tables and notes (verdict, failures, settings).
    """
    report = Report()
    report.add(
        f"Release gate vs {result.baseline}: ranking",
        [
            {
                "rank": c.rank,
                "candidate": c.id,
                "result": "pass" if c.passed else "FAIL",
                ("failed checks" if result.subset_field else "failed rules"): f"{c.failed} / {len(c.results)}",
                "Σ rel. regression %": 100 * c.rel_sum,
            }
            for c in result.candidates
        ],
    )
    rows = []
    for c in result.candidates:
        for r in shown_results(result, c):
            rows.append(
                {
                    "candidate": c.id,
                    "rule": r.rule.label(),
                    **({"subset": r.subset if r.subset is not None else "(all)"} if result.subset_field else {}),
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
    if result.subsets:
        report.add(f"Subsets of {result.subset_field}: baseline targets and documents, failed checks per candidate", subset_rows(result, plain=True))
    n_pass = sum(c.passed for c in result.candidates)
    head = "PASSED" if result.passed else "FAILED"
    report.notes.append(
        f"Gate {head}: {n_pass} of {len(result.candidates)} candidate(s) pass all {len(result.rules)} rule(s)"
        + (f" ({len(result.candidates[0].results)} checks; subsets of {result.subset_field})" if result.subset_field and result.candidates else "")
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


def shown_results(result: GateResult, c: CandidateResult) -> list[RuleResult]:
    """The checks a table lists: all of them, or with many subsets the failures and the first :data:`SHOWN` subsets."""
    if not result.subset_field or len(result.subsets) <= SHOWN:
        return list(c.results)
    first = {s["subset"] for s in result.subsets[:SHOWN]}
    return [r for r in c.results if not r.passed or r.subset is None or r.subset in first]


def subset_rows(result: GateResult, plain: bool = False) -> list[dict]:
    """One row per gated subset: its baseline targets and documents, and per candidate the checks that failed.

    Subsets with a failure come first when there are more than :data:`SHOWN`; at most that many rows.
    """
    icon = (lambda ok: "pass" if ok else "FAIL") if plain else (lambda ok: "✅ pass" if ok else "❌ FAIL")  # noqa: E731
    rows = []
    for s in result.subsets:
        row = dict(s)
        bad_any = False
        for c in result.candidates:
            mine = [r for r in c.results if r.subset == s["subset"]]
            bad = [r.rule.summary for r in mine if not r.passed]
            bad_any |= bool(bad)
            row[c.id] = icon(not bad) + (f" ({', '.join(bad)})" if bad else "" if plain else f" ({len(mine)} check{'s' if len(mine) != 1 else ''})")
        rows.append((not bad_any, row))
    if len(rows) > SHOWN:
        rows = sorted(rows, key=lambda t: t[0])  # stable: failures first, then the stored order
    return [r for _, r in rows[:SHOWN]]


def _settings_line(result: GateResult) -> str:
    return (
        f"Intervals: {result.ci:.0%} paired document-level bootstrap, {result.n_boot} resamples, seed {result.seed}"
        + (f", method {result.method}" if result.method else "")
        + "; candidates ranked by failed rules, then by the sum of relative regressions."
    )


def markdown_report(result: GateResult) -> str:
    """A GitHub-flavoured Markdown report (stable: fixed number formats, ranked order).

    Args:
        result: The gate run.

    Returns:
        The Markdown text (tests/golden/gate.md is one).
    """
    icon = lambda ok: "✅ pass" if ok else "❌ FAIL"  # noqa: E731
    lines = [
        f"## pctce release gate: {'✅ PASSED' if result.passed else '❌ FAILED'}",
        "",
        f"Baseline `{result.baseline}`; {len(result.candidates)} candidate(s); {len(result.rules)} rule(s)"
        + (f" from `{result.policy}`" if result.policy else "")
        + (" (passes when any candidate passes)" if result.require == "any" else "")
        + ".",
        "",
        f"| rank | candidate | result | failed {'checks' if result.subset_field else 'rules'} | Σ relative regression |",
        "|---:|---|---|---:|---:|",
    ]
    for c in result.candidates:
        lines.append(
            f"| {c.rank} | `{c.id}` | {icon(c.passed)} | {c.failed} / {len(c.results)} | {fmt.spec(100 * c.rel_sum, '+.2f')}% |"
        )
    level = f"{result.ci:.0%}"
    subsets = bool(result.subset_field)
    if result.subsets:
        ids = [c.id for c in result.candidates]
        kept = f" (only documents of {_md(result.subset_field)} = {', '.join(_md(k) for k in result.keep)})" if result.keep else ""
        lines += [
            "",
            f"### Subsets of `{result.subset_field}`{kept}",
            "",
            "| subset | targets | documents | " + " | ".join(f"`{i}`" for i in ids) + " |",
            "|---|---:|---:|" + "---|" * len(ids),
        ]
        for row in subset_rows(result):
            lines.append(f"| {_md(row['subset'])} | {row['targets']} | {row['documents']} | " + " | ".join(row[i] for i in ids) + " |")
    for c in result.candidates:
        lines += [
            "",
            f"### `{c.id}` vs `{result.baseline}`",
            "",
            f"| rule |{' subset |' if subsets else ''} baseline | candidate | Δ | Δ % | {level} interval of Δ | result |",
            f"|---|{'---|' if subsets else ''}---:|---:|---:|---:|---|---|",
        ]
        for r in shown_results(result, c):
            status = icon(r.passed) + (" (not significant)" if r.passed and r.over_limit else "")
            where = f" {_md(r.subset) if r.subset is not None else '(all)'} |" if subsets else ""
            lines.append(
                f"| {_md(r.rule.label())} |{where} {fmt.spec(r.baseline, '.4f')} | {fmt.spec(r.candidate, '.4f')} | {fmt.spec(r.delta, '+.4f')} "
                f"| {_pct(r)} | [{fmt.spec(r.lo, '+.4f')}, {fmt.spec(r.hi, '+.4f')}] | {status} |"
            )
    lines += [""] + [f"> {fmt.markdown_text(n)}\n" for n in result.notes] + [_settings_line(result), ""]
    return "\n".join(lines)


def _md(text) -> str:
    """A subset value in a Markdown table cell (pipes, line breaks, control characters and HTML escaped)."""
    return fmt.markdown_cell(text)


def junit_xml(result: GateResult) -> str:
    """JUnit XML: one testsuite per candidate, one testcase per rule (and subset), failures as ``<failure>``.

    Args:
        result: The gate run.

    Returns:
        The XML document, with its declaration.
    """
    import xml.etree.ElementTree as ET

    n_tests = sum(len(c.results) for c in result.candidates)
    n_fail = sum(c.failed for c in result.candidates)
    root = ET.Element("testsuites", name="pctce gate", tests=str(n_tests), failures=str(n_fail), errors="0", time="0")
    for c in result.candidates:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=fmt.xml_text(f"pctce gate: {c.id} vs {result.baseline}"),
            tests=str(len(c.results)),
            failures=str(c.failed),
            errors="0",
            skipped="0",
            time="0",
        )
        for r in c.results:
            # labels are data: fmt.xml_text keeps the document well-formed whatever they hold
            case = ET.SubElement(suite, "testcase", classname=fmt.xml_text(f"pctce.gate.{c.id}"), name=fmt.xml_text(r.label), time="0")
            if not r.passed:
                fail = ET.SubElement(case, "failure", message=fmt.xml_text(r.explain(result.baseline)), type="GateRuleFailed")
                fail.text = fmt.xml_text(r.explain(result.baseline) + f" [{r.rule.source}]")
            else:
                out = ET.SubElement(case, "system-out")
                out.text = fmt.xml_text(r.explain(result.baseline) + (" (not significant)" if r.over_limit else ""))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _write_text(path: str | Path, text: str, option: str) -> None:
    atomic.write_output(path, text, option)


def write_json(result: GateResult, path: str | Path) -> None:
    """Write :func:`result_dict` as JSON to ``path`` atomically (UsageError naming ``--json`` when it cannot be written)."""
    _write_text(path, json.dumps(result_dict(result), indent=2, ensure_ascii=False) + "\n", "--json")


def write_markdown(result: GateResult, path: str | Path) -> None:
    """Write :func:`markdown_report` to ``path`` atomically (UsageError naming ``--markdown`` when it cannot be written)."""
    _write_text(path, markdown_report(result), "--markdown")


def write_junit(result: GateResult, path: str | Path) -> None:
    """Write :func:`junit_xml` to ``path`` atomically (UsageError naming ``--junit`` when it cannot be written)."""
    _write_text(path, junit_xml(result), "--junit")


def append_step_summary(result: GateResult, path: str | Path) -> None:
    """Append the Markdown report to a GitHub Actions job summary (``$GITHUB_STEP_SUMMARY``).

    Args:
        result: The gate run.
        path: The summary file (appended to, not replaced).

    Raises:
        UsageError: the file cannot be appended to.
    """
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(markdown_report(result) + "\n")
    except OSError as e:
        raise UsageError(f"GITHUB_STEP_SUMMARY {path}: cannot append ({e.strerror})") from None


def check_outputs(json_path=None, markdown_path=None, junit_path=None) -> None:
    """Refuse unwritable ``--json``/``--markdown``/``--junit`` paths before the gate runs (not after its verdict).

    Raises:
        UsageError: naming the option and the path.
    """
    from pctce_cli.atomic import check_output

    for path, option in ((json_path, "--json"), (markdown_path, "--markdown"), (junit_path, "--junit")):
        if path is not None:
            check_output(path, option)


def write_outputs(
    result: GateResult,
    json_path: str | Path | None = None,
    markdown_path: str | Path | None = None,
    junit_path: str | Path | None = None,
    step_summary: str | None = None,
) -> None:
    """Write every requested CI file (and the GitHub step summary when its path is given).

    Args:
        result: The gate run.
        json_path: ``--json`` file, or None.
        markdown_path: ``--markdown`` file, or None.
        junit_path: ``--junit`` file, or None.
        step_summary: ``$GITHUB_STEP_SUMMARY``, or None.

    Raises:
        UsageError: a file cannot be written.
    """
    if json_path:
        write_json(result, json_path)
    if markdown_path:
        write_markdown(result, markdown_path)
    if junit_path:
        write_junit(result, junit_path)
    if step_summary:
        append_step_summary(result, step_summary)
