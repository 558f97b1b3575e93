"""The report's position section (docs/position.md): shown when documents are long enough, its numbers and its finding."""

from __future__ import annotations

import numpy as np
import pytest

from pctce_cli.report.doc import Details, Image, Table, Text
from pctce_cli.report.position import LONG_FROM, MIN_LONG_TARGETS, PositionMeasures, position_findings, position_section
from pctce_cli.stats.summaries import summarize

from .helpers import make_store


class _NoPlots:
    missing = "no matplotlib here"

    def image(self, name, caption, make):
        return None


def _measures(tmp_path, lengths, seed=0, unit="token", positions=None, settings=None, doc_columns=None):
    from pctce_cli.catalog import resolve_checkpoints
    from pctce_cli.store import load_scores

    rng = np.random.default_rng(seed)
    doc = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.concatenate([np.arange(n) for n in lengths])
    ce = (rng.lognormal(0.0, 0.5, doc.size) * (1 + 4 / (1 + pos / 8))).astype(np.float32)
    make_store(tmp_path / "s", "ck", ce, doc, settings={"max_length": 256, "stride": 128, **(settings or {})}, doc_columns=doc_columns)
    [c] = resolve_checkpoints([tmp_path / "s"], [])
    m = PositionMeasures(unit, positions)
    m.add(c, load_scores(c.root, c.partition), [50, 95])
    return [c], m, pos, ce


def test_the_section_is_shown_past_the_rule_with_the_buckets_numbers(tmp_path):
    cks, m, pos, ce = _measures(tmp_path, [600] * 3 + [30] * 4)  # 1,608 targets at positions >= 64, up to 599
    assert m.shown() and m.long["ck"] == int((pos >= LONG_FROM).sum()) >= MIN_LONG_TARGETS
    sec = position_section(cks, m, _NoPlots(), {"ck": "C0"}, "ck on val.jsonl")
    assert sec.id == "position"
    assert sec.blocks[0].text.startswith(f"Shown because ck has {int((pos >= 64).sum()):,} targets at positions ≥ 64; the section is shown when some checkpoint has at least 1,000 targets")
    window = [b for b in sec.blocks if not isinstance(b, (Text, Details, Image))][0].lines
    assert window == [
        "The model's window is 256 tokens (stride 128): a target past the first window is scored with 128–255 tokens of context, so past "
        "position 255 the curve measures position in the document, not context the model saw; pctce plot position DIR --by ctx draws CE by context length."
    ]
    [details] = [b for b in sec.blocks if isinstance(b, Details)]
    [table] = details.blocks
    assert isinstance(table, Table)
    lo = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    k = np.searchsorted(lo, pos, side="right") - 1
    assert [r["position"] for r in table.rows] == ["0", "1", "2–3", "4–7", "8–15", "16–31", "32–63", "64–127", "128–255", "256–511", "512–1023"]
    for r, b in zip(table.rows, range(len(lo))):
        want = summarize(ce[k == b], percentiles=[10, 25, 50, 75, 90, 95])
        assert r["targets"] == want["n"] and r["p50"] == want["p50"] and r["p95"] == want["p95"] and r["mean"] == pytest.approx(want["mean"], rel=1e-12)


def test_the_finding_reads_the_buckets_medians(tmp_path):
    from pctce_cli.stats.position import where_it_stops_falling

    cks, m, pos, ce = _measures(tmp_path, [600] * 3 + [30] * 4)
    [f] = position_findings(m, [{"checkpoint": "ck", "mean": 1.0}])
    rows = [r for r in m.rows["ck"] if r["targets"] >= 100]
    lowest, stop = where_it_stops_falling([r["p50"] for r in rows])
    assert f.figure == "position"
    assert f.text.startswith(f"ck: median CE falls from {rows[0]['p50']:.3f} at positions {rows[0]['position']} to {rows[lowest]['p50']:.3f} at positions {rows[lowest]['position']}")
    assert "buckets of at least 100 targets" in f.text


def test_short_documents_and_words_say_why_the_section_is_absent(tmp_path):
    cks, m, pos, _ = _measures(tmp_path, [40] * 30)  # 0 targets at positions >= 64
    assert not m.shown() and position_findings(m, [{"checkpoint": "ck", "mean": 1.0}]) == []
    [text] = position_section(cks, m, _NoPlots(), {"ck": "C0"}, "ck").blocks
    assert text.text == (
        "Not shown: the documents are too short for it (0 targets at positions ≥ 64, the last at position 39); "
        "the section is shown when some checkpoint has at least 1,000 targets at positions ≥ 64, or with --by position|ctx (docs/position.md)."
    )
    [text] = position_section(cks, PositionMeasures("word"), _NoPlots(), {}, "ck").blocks
    assert text.text == "Not shown: position in the context is a token dimension, and a word has no single position; the report with --unit token shows it."


@pytest.mark.slow
def test_the_report_has_the_position_figure_and_its_finding(tmp_path):
    from pctce_cli.catalog import resolve_checkpoints
    from pctce_cli.report import Findings, ReportOptions, build_report, walk

    pytest.importorskip("matplotlib")
    _measures(tmp_path, [600] * 3 + [30] * 4)
    doc = build_report(resolve_checkpoints([tmp_path / "s"], []), ReportOptions(tail_top=0))
    [sec] = [s for s in doc.sections if s.id == "position"]
    [img] = [b for b in walk(sec.blocks) if isinstance(b, Image)]
    assert img.name == "position" and img.png.startswith(b"\x89PNG")
    findings = [f for s in doc.sections for b in s.blocks if isinstance(b, Findings) for f in b.items]
    assert [f.figure for f in findings if "median CE falls" in f.text] == ["position"]


def test_by_ctx_shows_the_section_by_context_length_even_for_short_documents(tmp_path):
    from pctce_cli.analysis.position import resolve_positions
    from pctce_cli.stats.position import context_lengths

    cks, m, pos, ce = _measures(tmp_path, [40] * 30, positions=resolve_positions("ctx", "8,16"), settings={"max_length": 16, "stride": 8})
    assert m.shown()
    sec = position_section(cks, m, _NoPlots(), {"ck": "C0"}, "ck")
    assert sec.blocks[0].text.startswith("Shown because --by ctx asks for it. Buckets of ctx, the tokens the model conditioned on for the target")
    [details] = [b for b in sec.blocks if isinstance(b, Details)]
    ctx = context_lengths(np.repeat(np.arange(30), 40), pos, 16, 8)
    assert [(r["ctx"], r["targets"]) for r in details.blocks[0].rows] == [("0–7", int((ctx < 8).sum())), ("8–15", int((ctx >= 8).sum()))]
    [f] = position_findings(m, [{"checkpoint": "ck", "mean": 1.0}])
    assert "at context lengths 0–7" in f.text


def test_by_ctx_of_an_older_prompt_store_says_why_in_the_section(tmp_path):
    from pctce_cli.analysis.position import resolve_positions

    cks, m, _, _ = _measures(tmp_path, [40] * 3, positions=resolve_positions("ctx", None), settings={"prompt_field": "q", "completion_field": "a"})
    blocks = position_section(cks, m, _NoPlots(), {"ck": "C0"}, "ck").blocks
    assert blocks[0].text == "Not shown: no checkpoint has a context length (the tokens the model conditioned on) to bucket."
    assert blocks[1].lines == [
        "ck: by ctx: 'ck' was scored with prompt_field or completion_field in an older pctce, so its context lengths are unknown (use by position); "
        "re-score the checkpoint with 'pctce score … --force' to record each document's input tokens, which ctx needs"
    ]


@pytest.mark.slow
def test_report_by_ctx_from_the_command_line(tmp_path):
    from .cli import run

    pytest.importorskip("matplotlib")
    _measures(tmp_path, [40] * 30)
    r = run("report", tmp_path / "s", "--by", "ctx", "--position-edges", "64", "--tail-top", "0", "--markdown", "--out", tmp_path / "r.md")
    assert r.exit_code == 0, r.output
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "Shown because --by ctx asks for it." in text and (tmp_path / "r-position.png").is_file()
    r = run("report", tmp_path / "s", "--position-edges", "64", "--out", tmp_path / "x.html")
    assert r.exit_code == 2 and r.stderr.strip() == "Error: --position-edges needs --by position or --by ctx"


@pytest.mark.slow
def test_the_reports_refusal_of_ctx_is_in_the_options_words(tmp_path):
    """The report made by the command line says why a checkpoint has no ctx with its options, as its errors do."""
    from .cli import run

    pytest.importorskip("matplotlib")
    _measures(tmp_path, [40] * 3, settings={"prompt_field": "q", "completion_field": "a"})
    r = run("report", tmp_path / "s", "--by", "ctx", "--tail-top", "0", "--markdown", "--out", tmp_path / "r.md")
    assert r.exit_code == 0, r.output
    text = " ".join((tmp_path / "r.md").read_text(encoding="utf-8").split())
    assert (
        "ck: --by ctx: 'ck' was scored with --prompt-field or --completion-field in an older pctce, so its context lengths are unknown "
        "(use --by position); re-score the checkpoint with 'pctce score … --force' to record each document's input tokens, which ctx needs"
    ) in text
