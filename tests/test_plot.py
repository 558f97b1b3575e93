"""`pctce plot`: the series on each Figure, valid files, deterministic output, the missing-matplotlib hint."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from pctce_cli import plot
from pctce_cli.catalog import resolve_checkpoints
from pctce_cli.errors import UsageError

from .cli import run
from .helpers import make_store


RUNS = {"teacher": (1.4, 0.9, 0.7), "student": (1.6, 1.2, 1.1)}
STEPS = (100, 200, 300)
BASELINE_SCALE = 1.0


def synthetic_store(root: Path) -> tuple[Path, Path]:
    """Two runs of three steps each plus a step-less baseline, and a --meta CSV (group, acc).

    Every checkpoint's CE is the same base sample times a scale, so every
    summary orders checkpoints by scale: the teacher run crosses below the
    baseline at step 200, the student run never does.
    """
    rng = np.random.default_rng(0)
    doc = np.repeat(np.arange(25), rng.integers(10, 40, size=25))
    base = rng.gamma(0.7, 1.5, size=len(doc))
    base[::40] = 0.0  # exact zeros, drawn at the log axis' floor
    store = root / "scores"
    meta = ["checkpoint,group,acc"]
    for run_name, scales in RUNS.items():
        for step, scale in zip(STEPS, scales):
            ck = f"{run_name}-{step}"
            make_store(store, ck, base * scale, doc, step=step, rank=rng.integers(0, 3, size=len(doc)))
            meta.append(f"{ck},{run_name},{0.9 - 0.3 * scale:.4f}")
    make_store(store, "baseline", base * BASELINE_SCALE, doc)
    meta.append(f"baseline,,{0.9 - 0.3 * BASELINE_SCALE:.4f}")
    (root / "meta.csv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    return store, root / "meta.csv"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synthetic_store(tmp_path_factory.mktemp("plot"))


@pytest.fixture(scope="module")
def cks(synth):
    store, meta = synth
    return resolve_checkpoints([store], meta=meta)


def labels(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]


# ---------------------------------------------------------------- colors


def test_colors_are_deterministic_distinct_and_shared_across_plots(cks):
    ids = [f"ck-{i}" for i in range(10)]
    m = plot.color_map(ids)
    assert m == plot.color_map(list(reversed(ids)))
    assert len(set(m.values())) == 10
    assert len(set(plot.color_map([f"ck-{i}" for i in range(20)]).values())) == 20
    colors = plot.checkpoint_colors(cks)
    assert set(colors) == {c.id for c in cks} | {"teacher", "student"}
    ecdf = plot.plot_figure("ecdf", cks)
    shape = plot.plot_figure("shape", cks)
    for fig in (ecdf, shape):
        for line in fig.axes[0].get_lines():
            if line.get_label() in colors:
                assert line.get_color() == colors[line.get_label()]


# ---------------------------------------------------------------- series on each figure


def test_ecdf_has_one_ecdf_and_one_histogram_per_checkpoint_with_mean_and_median(cks):
    fig = plot.plot_figure("ecdf", cks)
    ax_cdf, ax_hist = fig.axes[:2]
    ids = [c.id for c in cks]
    assert labels(ax_cdf) == ids
    assert [p.get_label() for p in ax_hist.patches] == ids
    markers = [line.get_marker() for line in ax_cdf.get_lines() if line.get_label() == "_mark"]
    assert markers == ["D", "o"] * len(ids)  # mean, median per checkpoint
    assert len([line for line in ax_hist.get_lines() if line.get_label() == "_mark"]) == 2 * len(ids)
    assert ax_cdf.get_xscale() == ax_hist.get_xscale() == "log"
    assert fig.get_suptitle() == "CE distribution of 7 checkpoints on val.jsonl"
    assert "drawn at" in ax_cdf.get_xlabel()  # the exact zeros


def test_trajectory_has_a_line_per_run_the_reference_and_the_crossing(cks):
    fig = plot.plot_figure("trajectory", cks, summaries="mean,p50,p95", vs="baseline")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["mean", "p50", "p95"]
    for ax in axes:
        assert sorted(labels(ax)) == ["baseline (reference)", "student", "teacher"]
        assert [t.get_text() for t in ax.texts] == ["step 200"]  # teacher crosses; student never does
        teacher = next(line for line in ax.get_lines() if line.get_label() == "teacher")
        assert list(teacher.get_xdata()) == list(STEPS)


def test_trajectory_without_a_reference_and_errors(cks, synth):
    fig = plot.plot_figure("trajectory", cks, summaries="p90")
    assert sorted(labels(fig.axes[0])) == ["baseline", "student", "teacher"]  # a step-less checkpoint: dotted line
    with pytest.raises(UsageError, match=r"vs 'nope' is not among the selected checkpoints"):
        plot.plot_figure("trajectory", cks, vs="nope")
    only_baseline = resolve_checkpoints([synth[0]], ["baseline"])
    with pytest.raises(UsageError, match="trajectory needs checkpoints with a training step"):
        plot.plot_figure("trajectory", only_baseline)


def test_concord_has_one_heatmap_per_group(cks):
    fig = plot.plot_figure("concord", cks, summaries="mean,p50,p95")
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title().splitlines()[0] for ax in heatmaps] == ["all (7 checkpoints)", "student (3 checkpoints)", "teacher (3 checkpoints)"]
    for ax in heatmaps:
        assert ax.images[0].get_array().shape == (3, 3)
        assert len(ax.texts) == 9
    with pytest.raises(UsageError, match="concordance needs at least 2 checkpoints, got 1"):
        plot.plot_figure("concord", cks[:1])


def test_agreement_has_percentile_curves_and_mean_reference_lines_per_group(cks):
    fig = plot.plot_figure("agreement", cks, task="acc")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["all (7 checkpoints)", "student (3 checkpoints)", "teacher (3 checkpoints)"]
    for ax in panels:
        assert labels(ax) == ["Spearman ρ", "Pearson r", "mean: Spearman ρ", "mean: Pearson r"]
        rho = ax.get_lines()[0]
        assert list(rho.get_xdata()) == [*range(5, 100, 5), 99]
    # every summary is proportional to the scale and acc falls linearly with it: ρ = r = −1
    for ax in panels:
        for line in ax.get_lines()[:4]:
            assert np.allclose(line.get_ydata(), -1.0)
    with pytest.raises(UsageError, match=r"plot agreement needs task COL"):
        plot.plot_figure("agreement", cks)


def test_shape_and_bands_series(cks):
    fig = plot.plot_figure("shape", cks)
    assert labels(fig.axes[0]) == [c.id for c in cks]
    edges = [0, 0.5, 2, float("inf")]
    fig = plot.plot_figure("bands", cks, edges=edges)
    ax = fig.axes[0]
    assert [c.get_label() for c in ax.containers] == ["[0, 0.5)", "[0.5, 2)", "[2, inf)"]
    assert all(len(c) == len(cks) for c in ax.containers)
    widths = np.sum([[bar.get_width() for bar in c] for c in ax.containers], axis=0)
    assert np.allclose(widths, 1.0)
    assert [t.get_text() for t in ax.get_yticklabels()] == [c.id for c in cks]
    # edges that do not span the data: the rest is shown as such
    fig = plot.plot_figure("bands", cks, edges=[0.5, 2])
    assert [c.get_label() for c in fig.axes[0].containers] == ["[0.5, 2)", "outside the edges"]


# ---------------------------------------------------------------- files, through the CLI

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "kind, suffix, extra",
    [
        ("ecdf", "png", []),
        ("trajectory", "svg", ["--vs", "baseline"]),
        ("concord", "png", []),
        ("agreement", "svg", ["--task", "acc"]),
        ("shape", "svg", []),
        ("bands", "png", ["--edges", "0,1,inf"]),
    ],
)
def test_each_kind_writes_a_valid_file(synth, tmp_path, kind, suffix, extra):
    store, meta = synth
    out = tmp_path / f"{kind}.{suffix}"
    r = run("plot", kind, store, "--meta", meta, "--out", out, *extra)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"Wrote {out}"
    data = out.read_bytes()
    if suffix == "png":
        assert data.startswith(PNG_SIGNATURE)
    else:
        root = ET.fromstring(data)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert b"<dc:date>" not in data and b"Matplotlib v" not in data
    assert not list(tmp_path.glob(".*tmp*"))  # written under a temporary name, then renamed


class Tags(HTMLParser):
    """Collects start tags, attributes and text; checks that elements nest."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.stack, self.text, self.styles = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def handle_data(self, data):
        (self.styles if self.stack and self.stack[-1] == "style" else self.text).append(data)


def parse_html(text: str) -> Tags:
    p = Tags()
    p.feed(text)
    p.close()
    assert p.stack == [], f"unclosed: {p.stack}"
    return p


LINK_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "action", "poster", "data", "background"}


def resource_references(tags: Tags) -> list[str]:
    """Everything in a parsed page that a browser would fetch over the network."""
    refs = [v for k, v in tags.attrs if k in LINK_ATTRIBUTES and v and re.match(r"\s*(https?:)?//", v, re.I)]
    css = "".join(tags.styles) + "".join(v for k, v in tags.attrs if k == "style" and v)
    refs += re.findall(r"url\(\s*[\"']?\s*(?:https?:)?//[^)]*\)|@import[^;]*", css, re.I)
    return refs


def test_html_output_is_a_self_contained_page_with_the_svg_inline(synth, tmp_path):
    store, meta = synth
    out = tmp_path / "ecdf.html"
    r = run("plot", "shape", store, "--out", out)
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    tags = parse_html(text)
    assert tags.tags[:2] == ["html", "head"] and "svg" in tags.tags and "img" not in tags.tags
    assert resource_references(tags) == []
    assert "http://" not in text and "https://" not in text  # not even the SVG namespaces
    assert "Standardized percentile profiles of 7 checkpoints on val.jsonl" in text


@pytest.mark.slow
def test_same_command_twice_gives_identical_bytes(synth, tmp_path):
    store, meta = synth
    for suffix in ("svg", "png"):
        a, b = tmp_path / f"a.{suffix}", tmp_path / f"b.{suffix}"
        for out in (a, b):
            assert run("plot", "ecdf", store, "-c", "teacher-*", "--out", out).exit_code == 0
        assert a.read_bytes() == b.read_bytes()


def test_missing_matplotlib_gives_the_install_hint(synth, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    r = run("plot", "ecdf", synth[0], "--out", tmp_path / "x.png")
    assert r.exit_code == 2
    assert r.stderr.strip() == "Error: plotting needs matplotlib: pip install 'pctce[plot]'"
    assert not (tmp_path / "x.png").exists()


def test_bad_output_and_options_exit_2_with_a_message(synth, tmp_path):
    store, meta = synth
    r = run("plot", "ecdf", store, "--out", tmp_path / "x.pdf")
    assert r.exit_code == 2 and r.stderr.strip() == f"Error: --out {tmp_path / 'x.pdf'}: expected a .png, .svg or .html file, got '.pdf'"
    r = run("plot", "ecdf", store)
    assert r.exit_code == 2 and r.stderr.strip() == "Error: give the image to write with --out FILE (.png, .svg or .html)"
    r = run("plot", "agreement", store, "--meta", meta, "--task", "nope", "--out", tmp_path / "a.png")
    assert r.exit_code == 2 and r.stderr.startswith("Error: --task 'nope': no such column")
    r = run("plot", "trajectory", store, "--summaries", "mean,p101", "--out", tmp_path / "t.png")
    assert r.exit_code == 2 and "--summaries" in r.stderr
    r = run("plot", "violin", store, "--out", tmp_path / "v.png")
    assert r.exit_code == 2
