"""`pctce plot` and `pctce report` in words and bytes (SPEC §8): the plotted data against brute force, across tokenizers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pctce_cli import plot
from pctce_cli.catalog import resolve_checkpoints
from pctce_cli.stats.shape import band_mass, ecdf_points, profile
from pctce_cli.stats.summaries import DEFAULT_EDGES
from pctce_cli.store import load_units
from pctce_cli.testing import reseal

from .cli import run, run_json
from .helpers import count_shard_reads
from .test_plot import labels
from .test_units_analysis import brute_words

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b",
    "Once upon a time there was a cat, naïve and café-loving.",
    "for i in range(10):\tprint(i)",
    "東京 is written 東京; emoji 🎉🎉 too",
]
RUN = ("run.checkpoint-100", "run.checkpoint-200", "run.checkpoint-300")
TASK = {"run.checkpoint-100": 0.2, "run.checkpoint-200": 0.5, "run.checkpoint-300": 0.3, "ref": 0.6}


@pytest.fixture(scope="module")
def store(tmp_path_factory, one_thread):
    """A run of three steps whose tokenizers alternate (vocabularies 320, 500, 320) and a step-less reference (500), on the same data."""
    from pctce_cli.testing import make_gpt2, make_tokenizer

    root = tmp_path_factory.mktemp("units-visual")
    small, large = make_tokenizer(320), make_tokenizer(500)
    for k, (step, tok) in enumerate([(100, small), (200, large), (300, small)]):
        make_gpt2(root / "run" / f"checkpoint-{step}", tokenizer=tok, seed=k)
    make_gpt2(root / "ref", tokenizer=large, seed=5)
    data = root / "val.jsonl"
    data.write_text("".join(json.dumps({"text": t, "domain": "code" if k in (1, 3) else "prose"}) + "\n" for k, t in enumerate(TEXTS)), encoding="utf-8")
    out = root / "scores"
    r = run("score", root / "run", root / "ref", "--data", data, "--out", out, "--quiet", "--max-length", 16, "--subset-field", "domain")
    assert r.exit_code == 0, r.output
    (root / "meta.csv").write_text("checkpoint,acc\n" + "".join(f"{k},{v}\n" for k, v in TASK.items()), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def meta(store):
    return store.parent / "meta.csv"


def cks_of(store, unit, meta=None):
    return resolve_checkpoints([store], meta=meta, unit=unit)


def byte_pairs(u):
    """The byte distribution as (value, weight) pairs, and expanded by brute force (one value per byte)."""
    keep = u.nbytes > 0
    values = (u.ce[keep] / u.nbytes[keep].astype(np.float32)).astype(np.float64)
    return values, u.nbytes[keep], np.repeat(values, u.nbytes[keep])


def assert_same_distribution(d, ref) -> None:
    """``d`` (weighted) equals ``ref`` (of the expanded values) in every plotted array, exactly; the mean to round-off."""
    assert d.n == ref.n
    assert d.mean == pytest.approx(ref.mean, rel=1e-12)
    for name in ("p50", "low"):
        assert getattr(d, name) == getattr(ref, name), name
    for name in ("ecdf_ce", "ecdf", "hist", "bands"):
        np.testing.assert_array_equal(getattr(d, name), getattr(ref, name), err_msg=name)
    np.testing.assert_array_equal(d.profile, ref.profile)


# ---------------------------------------------------------------- weighted ECDF, histogram, percentiles


def test_weighted_ecdf_points_equal_the_expanded_ecdf():
    v = np.array([0.3, 2.0, 0.3, 1.0, 5.0, 0.0])
    w = np.array([2, 0, 3, 1, 4, 1])
    for n_points in (2, 3, 7, 400):
        got = ecdf_points(v, n_points, w)
        ref = ecdf_points(np.repeat(v, w), n_points)
        assert got.equals(ref), (n_points, got, ref)
    assert ecdf_points(v, 5, np.zeros(6, np.int64)).empty


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([0.0, 1e-7, 0.01, 0.25, 0.5, 1.0, 1.5, 3.0, 7.5, 12.0, 150.0]) | st.floats(0, 200), st.integers(0, 6)), min_size=1, max_size=40),
    st.integers(2, 60),
)
@pytest.mark.slow  # over half a second: kept out of the fast lane
def test_weighted_distribution_equals_the_np_repeat_expansion(pairs, n_points):
    """Every array a distribution plot draws, from (value, weight) pairs, equals the same of the expanded values exactly."""
    v = np.array([p[0] for p in pairs], dtype=np.float64)
    w = np.array([p[1] for p in pairs], dtype=np.int64)
    if w.sum() == 0:
        w[0] = 1
    expanded = np.repeat(v, w)
    got = plot.distribution("a", v, weights=w, unit="byte", n_points=n_points)
    ref = plot.distribution("a", expanded, unit="byte", n_points=n_points)
    assert_same_distribution(got, ref)
    assert got.cdf_at_mean == np.count_nonzero(expanded <= got.mean) / expanded.size
    np.testing.assert_array_equal(ecdf_points(v, n_points, w).to_numpy(), ecdf_points(expanded, n_points).to_numpy())


def test_word_histograms_reach_past_100_nats():
    d = plot.distribution("a", np.array([2.0, 150.0, 3000.0]), unit="word")
    assert d.hist_edges[-1] == 1e4 and d.hist.sum() == 1.0
    assert d.hist[np.searchsorted(d.hist_edges, 3000.0) - 1] == pytest.approx(1 / 3)
    assert plot.distribution("a", np.array([2.0]), unit="byte").hist_edges is plot.HIST_EDGES


# ---------------------------------------------------------------- plot: the data each figure is drawn from


def test_distributions_are_the_words_and_the_weighted_bytes(store):
    cks = cks_of(store, "word")
    words = plot.distributions(cks, unit="word")
    nbytes = plot.distributions(cks, unit="byte")
    for c, dw, db in zip(cks, words, nbytes):
        u = load_units(store, c.partition)
        assert_same_distribution(dw, plot.distribution(c.id, brute_words(u), unit="word"))
        values, weights, expanded = byte_pairs(u)
        assert db.n == expanded.size == sum(len(t.encode("utf-8")) for t in TEXTS)
        assert_same_distribution(db, plot.distribution(c.id, expanded, unit="byte"))
        assert db.profile.tolist() == profile(expanded).tolist()
        assert db.bands.tolist() == band_mass(expanded, DEFAULT_EDGES).tolist()


@pytest.mark.parametrize("unit", ["word", "byte"])
def test_ecdf_draws_the_units_distribution_and_names_it(store, unit):
    cks = cks_of(store, unit)
    fig = plot.plot_figure("ecdf", cks, unit=unit)
    ax_cdf, ax_hist = fig.axes[:2]
    dists = {d.id: d for d in plot.distributions(cks, unit=unit)}
    lo = ax_cdf.get_xlim()[0]
    lines = {line.get_label(): line for line in ax_cdf.get_lines() if not line.get_label().startswith("_")}
    assert sorted(lines) == sorted(dists)
    for name, line in lines.items():
        np.testing.assert_array_equal(line.get_xdata(), np.maximum(dists[name].ecdf_ce, lo))
        np.testing.assert_array_equal(line.get_ydata(), dists[name].ecdf)
    noun = {"word": "words", "byte": "bytes"}[unit]
    assert ax_cdf.get_xlabel().startswith({"word": "CE per word (nats, log scale", "byte": "CE per byte (nats per byte, log scale"}[unit])
    assert ax_cdf.get_ylabel() == f"fraction of {noun} with CE ≤ x"
    assert ax_hist.get_ylabel() == f"fraction of {noun} per bin (10 bins per decade)"
    assert fig._suptitle.get_text() == f"Per-{unit} CE distribution of 4 checkpoints on val.jsonl"
    stairs = {p.get_label(): p for p in ax_hist.patches}
    assert sorted(stairs) == sorted(dists)
    for name, patch in stairs.items():
        heights = patch.get_data().values
        assert heights.sum() == pytest.approx(1.0, rel=1e-12)  # every word/byte in a bin (the first holds those below the axis)


def test_bands_and_shape_in_bytes_are_weighted(store):
    cks = cks_of(store, "byte")
    edges = [0, 2, 5, float("inf")]
    fig = plot.plot_figure("bands", cks, unit="byte", edges=edges)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "fraction of bytes"
    assert fig.legends[0].get_title().get_text() == "CE band (nats per byte)"
    for k, container in enumerate(ax.containers):
        for c, bar in zip(cks, container):
            expanded = byte_pairs(load_units(store, c.partition))[2]
            assert bar.get_width() == pytest.approx(float(((expanded >= edges[k]) & (expanded < edges[k + 1])).mean()), rel=1e-12)
    fig = plot.plot_figure("shape", cks, unit="byte")
    (ax,) = fig.axes
    assert ax.get_xlabel() == "percentile q of CE per byte"
    for c in cks:
        (line,) = [line for line in ax.get_lines() if line.get_label().startswith(c.id)]
        np.testing.assert_array_equal(line.get_ydata(), profile(byte_pairs(load_units(store, c.partition))[2]))


def test_trajectory_concord_and_agreement_plot_the_units_summaries(store, meta):
    cks = cks_of(store, "word", meta)
    table = {r["checkpoint"]: r for r in run_json("summary", store, "--unit", "word", "--percentiles", "50,95")["Per-word CE summaries (nats per word)"]}
    fig = plot.plot_figure("trajectory", cks, unit="word", vs="ref")
    ax_mean = fig.axes[0]
    (line,) = [line for line in ax_mean.get_lines() if line.get_label() == "run"]
    assert list(line.get_xdata()) == [100, 200, 300]
    assert list(line.get_ydata()) == pytest.approx([table[k]["mean"] for k in RUN], rel=1e-12)
    assert ax_mean.get_ylabel() == "mean of CE per word (nats)"
    assert fig.axes[2].get_ylabel() == "p95 of CE per word (nats)"
    assert fig._suptitle.get_text() == "Per-word CE summaries over training of 4 checkpoints on val.jsonl"
    fig = plot.plot_figure("concord", cks, unit="word", summaries="mean,p50,p95")
    from pctce_cli.stats.concordance import concordance_matrix
    import pandas as pd

    t = pd.DataFrame(list(table.values()))
    np.testing.assert_array_equal(fig.axes[0].get_images()[0].get_array(), concordance_matrix(t, ["mean", "p50", "p95"]).to_numpy(dtype=np.float64))
    assert fig._suptitle.get_text() == "Concordance of per-word CE summaries across 4 checkpoints on val.jsonl"
    fig = plot.plot_figure("agreement", cks_of(store, "byte", meta), unit="byte", task="acc")
    assert fig.axes[0].get_xlabel() == "percentile of CE per byte"
    assert labels(fig.axes[0])[:2] == ["Spearman ρ", "Pearson r"]


def test_by_subset_panels_count_words(store):
    cks = cks_of(store, "word")
    from pctce_cli.analysis.subsets import resolve_subsets

    fig = plot.plot_figure("ecdf", cks, unit="word", subsets=resolve_subsets(cks, "domain", ()))
    code_words = sum(len(TEXTS[k].split()) for k in (1, 3))
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == [f"domain = code ({code_words} words)", f"domain = prose ({sum(len(t.split()) for t in TEXTS) - code_words} words)"]
    assert fig._suptitle.get_text() == "Per-word CE distribution by domain of 4 checkpoints on val.jsonl"


@pytest.mark.parametrize("unit", ["word", "byte"])
@pytest.mark.parametrize("kind", ["ecdf", "trajectory", "concord", "shape", "bands"])
def test_plot_cli_across_tokenizers(store, tmp_path, kind, unit):
    out = tmp_path / f"{kind}.png"
    r = run("plot", kind, store, "--unit", unit, "--out", out)
    assert r.exit_code == 0, r.output
    assert out.read_bytes().startswith(b"\x89PNG")


def test_plot_refusals_name_the_unit(store, tmp_path):
    out = tmp_path / "x.png"
    r = run("plot", "ecdf", store, "--out", out)
    assert r.exit_code == 2
    assert r.output.strip() == (
        "Error: 'run.checkpoint-100' and 'run.checkpoint-200' were scored on different tokenizers (tokenizer fingerprints "
        f"{fingerprint(store, 'run.checkpoint-100')} vs {fingerprint(store, 'run.checkpoint-200')}); their CE distributions are not "
        "comparable (pass --allow-mixed to compare anyway or, across tokenizers, --unit word or --unit byte)"
    )
    r = run("plot", "trajectory", store, "--unit", "byte", "--summaries", "mean,top1", "--out", out)
    assert r.exit_code == 2
    assert r.output.strip() == "Error: --summaries top1 with --unit byte: top-1 accuracy is a token summary (a word or byte has no rank); drop it or use --unit token"
    assert not out.exists()


def fingerprint(store, ck):
    (c,) = [c for c in resolve_checkpoints([store], allow_mixed=True) if c.id == ck]
    return c.manifest["fingerprints"]["tokenizer"][:8]


# ---------------------------------------------------------------- report


@pytest.mark.slow
@pytest.mark.parametrize("unit", ["word", "byte"])
def test_report_tables_and_plots_are_the_units(store, meta, unit):
    from pctce_cli.report import Image, ReportOptions, Table, Text, build_report, walk

    cks = cks_of(store, unit, meta)
    doc = build_report(cks, ReportOptions(unit=unit, vs="ref", task="acc", percentiles=[50, 95], tail_top=3))
    assert doc.title == f"pctce report: 4 checkpoints on val.jsonl, per {unit}"
    assert f"Per-{unit} cross-entropy in nats per {unit} (docs/definitions.md#words-and-bytes)" in doc.intro[0]
    titles = {s.id: s.title for s in doc.sections}
    assert titles["summaries"] == f"Summaries (per {unit})" and titles["shape"] == f"Shape (per {unit})"
    blocks = {s.id: list(walk(s.blocks)) for s in doc.sections}
    tables = {b.title: b.rows for s in doc.sections for b in walk(s.blocks) if isinstance(b, Table)}
    title = f"Per-{unit} CE summaries (nats per {unit})"
    want = {r["checkpoint"]: r for r in run_json("summary", store, "--unit", unit, "--percentiles", "50,95")[title]}
    got = {r["checkpoint"]: r for r in tables[title]}
    assert got.keys() == want.keys()
    for k, r in got.items():
        assert r[f"{unit}s"] == want[k][f"{unit}s"]
        assert [r["mean"], r["p50"], r["p95"]] == pytest.approx([want[k]["mean"], want[k]["p50"], want[k]["p95"]], rel=1e-12)
    bands = {r["checkpoint"]: r for r in tables[f"Mass in CE bands (fraction of {unit}s)"]}
    for c in cks:
        u = load_units(store, c.partition)
        values = brute_words(u) if unit == "word" else byte_pairs(u)[2]
        assert bands[c.id]["[10, inf)"] == pytest.approx(float((values >= 10).mean()), rel=1e-12)
    images = [b.name for s in doc.sections for b in walk(s.blocks) if isinstance(b, Image)]
    assert {"ecdf", "trajectory", "concord", "agreement", "shape", "bands", "subsets-domain"} <= set(images)
    tail = blocks["tail"]
    if unit == "word":
        assert titles["tail"] == "Tail examples (highest-CE words)"
        best = min(want, key=lambda k: want[k]["mean"])
        assert any(isinstance(b, Table) and b.title.startswith(f"Highest-CE words of {best}") and len(b.rows) == 3 for b in tail)
    else:
        assert [b.text for b in tail if isinstance(b, Text)][0].startswith("Tail examples list targets or words: a byte's CE is its token's spread")
        assert not any(isinstance(b, Table) for b in tail)


@pytest.mark.slow
def test_report_subset_keeps_its_words_in_every_table_and_the_tail(store):
    from pctce_cli.analysis.subsets import resolve_subsets
    from pctce_cli.report import ReportOptions, Table, build_report, walk

    cks = cks_of(store, "word")
    doc = build_report(cks, ReportOptions(unit="word", subsets=resolve_subsets(cks, None, ["code"]), tail_top=50))
    tables = {b.title: b.rows for s in doc.sections for b in walk(s.blocks) if isinstance(b, Table)}
    code_words = sum(len(TEXTS[k].split()) for k in (1, 3))
    assert {r["words"] for r in tables["Per-word CE summaries (nats per word)"]} == {code_words}
    (tail,) = [rows for title, rows in tables.items() if title.startswith("Highest-CE words of ")]
    assert len(tail) == code_words and {r["doc"] for r in tail} == {1, 3}


@pytest.mark.slow
@pytest.mark.parametrize("unit", ["word", "byte"])
def test_report_cli_across_tokenizers(store, meta, tmp_path, unit):
    out = tmp_path / "r.html"
    r = run("report", store, "--unit", unit, "--meta", meta, "--task", "acc", "--vs", "ref", "--out", out)
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    assert f"Per-{unit} CE summaries (nats per {unit})" in text and f"<h2>Summaries (per {unit})</h2>" in text
    md = tmp_path / "md" / "r.md"
    r = run("report", store, "--unit", unit, "--markdown", "--tail-top", "0", "--out", md)
    assert r.exit_code == 0, r.output
    assert f"# pctce report: 4 checkpoints on val.jsonl, per {unit}" in md.read_text(encoding="utf-8")
    assert (md.parent / "r-ecdf.png").exists()


def test_report_refuses_mixed_tokens_and_token_only_summaries(store, tmp_path):
    out = tmp_path / "r.html"
    r = run("report", store, "--out", out)
    assert r.exit_code == 2 and "were scored on different tokenizers" in r.output and r.output.strip().endswith("--unit word or --unit byte)")
    r = run("report", store, "--unit", "word", "--set", "mean,top1", "--out", out)
    assert r.exit_code == 2
    assert r.output.strip() == "Error: --set top1 with --unit word: top-1 accuracy is a token summary (a word or byte has no rank); drop it or use --unit token"
    assert not out.exists()


@pytest.mark.slow
def test_report_in_bytes_reads_each_partition_once(store, tmp_path, monkeypatch):
    from pctce_cli.store import read, units

    reads = count_shard_reads(monkeypatch, read, units)
    r = run("report", store, "--unit", "byte", "--out", tmp_path / "r.html")
    assert r.exit_code == 0, r.output
    assert sorted(reads) == sorted(str(p) for p in store.glob("checkpoint=*/**/*.parquet"))
    assert set(reads.values()) == {1}, reads


# ---------------------------------------------------------------- a store without byte spans


@pytest.fixture(scope="module")
def no_spans(tmp_path_factory, tiny_ckpt, one_thread):
    """Two stores without byte spans: one scored with them turned off, one as pctce wrote it before it recorded them."""
    import shutil

    from pctce_cli.scoring.options import ScoreOptions
    from pctce_cli.scoring.run import score_checkpoints

    from .conftest import TEXTS as PLAIN

    base = tmp_path_factory.mktemp("no-spans")
    data = base / "val.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in PLAIN), encoding="utf-8")
    (res,) = score_checkpoints([tiny_ckpt], ScoreOptions(data=[str(data)], out=base / "off", max_length=16, units=False))
    assert res.status == "scored"
    shutil.copytree(base / "off", base / "old")
    manifest = base / "old" / "checkpoint=tiny" / "_manifest.json"
    m = json.loads(manifest.read_text(encoding="utf-8"))
    del m["units"]  # written before pctce recorded byte spans and words
    manifest.write_text(json.dumps(m), encoding="utf-8")
    reseal(manifest.parent)  # the manifest's checksum follows the edit
    return {
        "old": (base / "old", f"it was scored before pctce recorded byte spans and words); re-score it with 'pctce score … --out {base / 'old'} --force'"),
        "off": (base / "off", f"{tiny_ckpt}: byte spans and words were turned off); re-score it with 'pctce score … --out {base / 'off'} --force'"),
    }


@pytest.mark.parametrize("unit", ["word", "byte"])
@pytest.mark.parametrize("command", [("plot", "ecdf"), ("plot", "trajectory"), ("plot", "shape"), ("report",), ("report", "--markdown")])
@pytest.mark.parametrize("which", ["old", "off"])
def test_a_store_without_spans_says_how_to_get_them(no_spans, tmp_path, command, unit, which):
    root, why = no_spans[which]
    out = tmp_path / ("r.md" if "--markdown" in command else "r.html" if command[0] == "report" else "x.png")
    r = run(*command, root, "--unit", unit, "--out", out)
    assert r.exit_code == 2, r.output
    assert r.output.strip() == f"Error: --unit {unit}: checkpoint 'tiny' in {root} has no byte spans and words ({why}, or use --unit token"
    assert list(tmp_path.iterdir()) == []
