"""`pctce report`: one self-contained HTML page (or Markdown + PNGs) with every section."""

from __future__ import annotations

import base64
import re
import shutil
import sys

import pytest

from pctce_cli.report import SECTIONS, Notes, ReportDoc, Section, Table, Text, to_html, to_markdown

from .cli import run
from .conftest import TEXTS
from .helpers import count_shard_reads
from .test_plot import PNG_SIGNATURE, parse_html, resource_references, synthetic_store


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synthetic_store(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def html_report(synth, tmp_path_factory):
    """The full report: a reference, a task metric, groups."""
    store, meta = synth
    out = tmp_path_factory.mktemp("html") / "report.html"
    r = run("report", store, "--meta", meta, "--task", "acc", "--vs", "baseline", "--tail-top", "5", "--out", out)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"Wrote {out}"
    return out.read_text(encoding="utf-8")


def assert_self_contained(text: str) -> None:
    assert resource_references(parse_html(text)) == []
    assert "http://" not in text and "https://" not in text  # not even a namespace


@pytest.mark.slow
def test_report_is_valid_self_contained_html_with_every_section(html_report):
    tags = parse_html(html_report)
    assert_self_contained(html_report)
    ids = [v for k, v in tags.attrs if k == "id"]
    for sec_id, title in SECTIONS:
        assert sec_id in ids
        assert f"<h2>{title}</h2>" in html_report
        assert f'href="#{sec_id}"' in html_report  # table of contents
    text = "".join(tags.text)
    # what was scored, from the manifests
    for needle in ("/data/val.jsonl", "dddddddddddd", "stride", "Checkpoints", "Data and tokenizer"):
        assert needle in text
    # the summary table, differences to the reference and crossings
    assert "Per-token CE summaries (nats)" in text and "Difference to baseline" in text
    assert "mean of run teacher crosses below baseline at step 200" in text
    # concordance with its reading, per group
    assert "Concordance C(s, s') — all (7 checkpoints)" in text and "summaries agree" in text
    # selection rules and task agreement
    assert "Selection rules (each picks the checkpoint minimizing its summary)" in text
    assert "Agreement of each summary with acc" in text
    # shape and tail
    assert "Mass in CE bands (fraction of targets)" in text and "Standardized percentile profile" in text
    assert "Highest-CE targets of teacher-300" in text  # lowest mean CE
    assert "is not shown, only token ids" in text  # the synthetic store's tokenizer does not exist


@pytest.mark.slow
def test_report_images_are_inline_pngs(html_report):
    srcs = re.findall(r'<img alt="[^"]*" src="([^"]+)"', html_report)
    figures = re.findall(r'<figure id="plot-([a-z-]+)"', html_report)
    # figures first in each section: trajectories, then distributions; the profile distances as a heatmap
    assert figures == ["trajectory", "fan", "ecdf", "concord", "agreement", "band-trajectory", "bands", "shape", "profile-distances"]
    assert len(srcs) == 9
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_SIGNATURE)


def test_html_escapes_user_text():
    doc = ReportDoc(
        "t <b>",
        ["<script>alert(1)</script>"],
        [Section("s", "S & T", [Text("a<b"), Notes(["<i>x</i>"]), Table("<caption>", [{"<th>": "<td>", "n": 1.5}])])],
    )
    out = to_html(doc)
    parse_html(out)
    assert "<script>" not in out and "<i>" not in out and "<td><td>" not in out
    for escaped in ("&lt;script&gt;", "t &lt;b&gt;", "S &amp; T", "a&lt;b", "&lt;caption&gt;", "&lt;th&gt;"):
        assert escaped in out
    md, images = to_markdown(doc, "r")
    assert "<script>" not in md and images == {}


@pytest.mark.slow
def test_group_names_from_meta_are_escaped(synth, tmp_path):
    store, meta = synth
    evil = tmp_path / "meta.csv"
    evil.write_text(meta.read_text().replace(",teacher,", ",<img src=https://x.test/a.png>,"), encoding="utf-8")
    out = tmp_path / "r.html"
    r = run("report", store, "--meta", evil, "--tail-top", "0", "--out", out)
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    tags = parse_html(text)
    assert "<img src=https" not in text and "&lt;img src=https://x.test/a.png&gt;" in text
    assert resource_references(tags) == []
    assert "Tail examples were not requested (--tail-top 0)." in text


@pytest.mark.slow
def test_markdown_report_with_images_beside_it(synth, tmp_path):
    store, meta = synth
    out = tmp_path / "pr" / "report.md"
    r = run("report", store, "-c", "teacher-*", "--out", out, "--markdown", "--tail-top", "3")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"Wrote {out} and 8 image(s) beside it"
    md = out.read_text(encoding="utf-8")
    for _, title in SECTIONS:
        assert f"\n## {title}\n" in md
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert refs == [f"report-{n}.png" for n in ("trajectory", "fan", "ecdf", "concord", "band-trajectory", "bands", "shape", "profile-distances")]
    assert md.index("## Findings") < md.index("## Summaries") < md.index("## What was scored")  # findings first, inventory last
    for ref in refs:
        assert (out.parent / ref).read_bytes().startswith(PNG_SIGNATURE)
    assert "| checkpoint | step |" in md
    assert "No task metric given" in md
    assert "http://" not in md and "https://" not in md


def test_report_without_matplotlib_is_written_without_plots(synth, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "r.html"
    r = run("report", synth[0], "--tail-top", "0", "--out", out)
    assert r.exit_code == 0, r.output
    assert "Warning: plotting needs matplotlib: pip install 'pctce[plot]'; the report has no plots" in r.stderr
    text = out.read_text(encoding="utf-8")
    assert "<img" not in text and "No plots: plotting needs matplotlib" in text
    parse_html(text)


def test_report_errors_exit_2(synth, tmp_path):
    store, meta = synth
    r = run("report", store, "--out", tmp_path / "r.pdf")
    assert r.exit_code == 2 and r.stderr.strip() == f"Error: --out {tmp_path / 'r.pdf'}: expected an .html file (or pass --markdown for Markdown)"
    r = run("report", store, "--vs", "nope", "--out", tmp_path / "r.html")
    assert r.exit_code == 2 and r.stderr.startswith("Error: --vs 'nope' is not among the selected checkpoints")
    r = run("report", store, "--task", "acc", "--out", tmp_path / "r.html")
    assert r.exit_code == 2 and r.stderr.startswith("Error: --task 'acc': no such column")
    r = run("report", store, "--tail-checkpoint", "zzz*", "--out", tmp_path / "r.html")
    assert r.exit_code == 2 and r.stderr.strip() == "Error: --tail-checkpoint 'zzz*' matches no selected checkpoint"
    assert not (tmp_path / "r.html").exists()


# ---------------------------------------------------------------- a real store: decoded tail examples


@pytest.fixture(scope="module")
def real_store(tmp_path_factory, tiny_ckpt):
    from pctce_cli.scoring.options import ScoreOptions
    from pctce_cli.scoring.run import score_checkpoints

    base = tmp_path_factory.mktemp("real")
    data = base / "val.txt"
    data.write_text("\n\n".join(TEXTS), encoding="utf-8")
    res = score_checkpoints([str(tiny_ckpt)], ScoreOptions(data=[str(data)], out=base / "scores", split_on="blank-lines"))
    assert all(r.status == "scored" for r in res), [r.message for r in res]
    return base / "scores", data


@pytest.mark.slow
def test_report_decodes_tail_examples_and_says_so_when_the_data_is_gone(real_store, tmp_path):
    store, data = real_store
    out = tmp_path / "r.html"
    r = run("report", store, "--tail-top", "3", "--context", "4", "--out", out)
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    parse_html(text)
    assert "Highest-CE targets of tiny" in text and '<th>context</th>' in text and "<th>target</th>" in text
    assert "Concordance needs at least 2 checkpoints." in text
    assert "No trajectory plot:" in text  # a single save_pretrained directory has no step
    assert "tiny on val.txt" in text
    moved = tmp_path / "val-moved.txt"
    shutil.move(data, moved)
    try:
        r = run("report", store, "--tail-top", "3", "--out", out)
    finally:
        shutil.move(moved, data)
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    assert "<th>context</th>" not in text
    assert f"The text of tiny&#x27;s tail is not shown, only token ids: cannot decode &#x27;tiny&#x27;: data file {data} (recorded in the manifest) is gone." in text


@pytest.mark.slow
@pytest.mark.parametrize("tail", [["--tail-top", "3"], ["--tail-top", "3", "--tail-checkpoint", "*"], ["--tail-top", "0"]])
def test_report_reads_each_partition_once(synth, tmp_path, monkeypatch, tail):
    """Every section's numbers come from one read of each checkpoint (shards are counted as read)."""
    reads = count_shard_reads(monkeypatch)
    store, meta = synth
    r = run("report", store, "--meta", meta, "--task", "acc", "--vs", "baseline", *tail, "--out", tmp_path / "r.html")
    assert r.exit_code == 0, r.output
    shards = sorted(str(p) for p in store.glob("checkpoint=*/**/*.parquet"))  # CE shards and the _docs table
    assert shards and sorted(reads) == shards
    assert set(reads.values()) == {1}


@pytest.mark.slow
def test_runs_of_one_step_get_no_trajectory_or_fan(tmp_path):
    """Four runs with one checkpoint each (a distillation's final students): dots are no trajectory, so none is drawn."""
    import numpy as np

    from .helpers import make_store

    doc = np.repeat(np.arange(4), 5)
    for i, run_name in enumerate(("a", "b", "c", "d")):
        make_store(tmp_path / "s", f"{run_name}.checkpoint-1200", np.linspace(1, 3, doc.size) + i, doc, step=1200)
    out = tmp_path / "r.html"
    r = run("report", tmp_path / "s", "--tail-top", "0", "--out", out)
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    assert "No trajectory plot: no run has two checkpoints with a training step" in text
    assert 'id="plot-trajectory"' not in text and 'id="plot-fan"' not in text and 'id="plot-ecdf"' in text
