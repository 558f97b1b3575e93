"""`pctce plot ecdf|trajectory --value kl`: the KL pictures (legend inside, one line per run, distinct colors) and their refusals."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from pctce_cli import plot  # noqa: E402
from pctce_cli.catalog import resolve_checkpoints  # noqa: E402
from pctce_cli.errors import UsageError  # noqa: E402
from pctce_cli.plot.divergence import KL_FLOOR, kl_axis, kl_distribution, kl_ecdf_figure  # noqa: E402
from tests.cli import run  # noqa: E402
from tests.helpers import make_store  # noqa: E402
from tests.test_plot_figures import assert_legends_inside, labeled_lines  # noqa: E402


def kl_values(rng, n: int, scale: float, zeros: float = 0.05) -> dict:
    """Per-target KL, Δp and same_top1 like a student's: lognormal around ``scale`` nats, a share of exact zeros."""
    kl = (scale * rng.lognormal(0, 1.5, n)).astype(np.float32)
    kl[rng.random(n) < zeros] = 0
    noise = np.random.default_rng(n).laplace(0, 1, n)  # Δp: signed, mostly tiny, larger where KL is (its own draws: kl's stay as they were)
    dp = np.clip(0.01 * noise * (1 + 10 * kl) - 0.05 * np.tanh(kl), -1, 1)
    return {"kl": kl, "dp": dp.astype(np.float32), "same_top1": (kl < 2 * scale).astype(np.int8)}


def kl_stores(root, n: int, runs: int, targets: int = 2000) -> list:
    """``n`` checkpoints ``run<r>.checkpoint-<step>`` over ``runs`` runs in one store, each scored against a reference; KL falls with the step."""
    rng = np.random.default_rng(0)
    doc = np.repeat(np.arange(targets // 50), 50)
    for k in range(n):
        r, step = k % runs, 100 * (k // runs + 1)
        make_store(root, f"run{r}.checkpoint-{step}", rng.gamma(2, 1, doc.size), doc, step=step, divergence=kl_values(rng, doc.size, 0.05 * (1 + r) * 300 / (step + 200)))
    return resolve_checkpoints([root])


@pytest.mark.slow
@pytest.mark.parametrize("n,runs", [(1, 1), (12, 4), (60, 15)])
def test_kl_ecdf_and_trajectory_keep_their_legend_inside_one_line_per_run_and_distinct_colors(tmp_path, n, runs):
    cks = kl_stores(tmp_path / "s", n, runs)
    fig = plot.plot_figure("ecdf", cks, value="kl")
    assert_legends_inside(fig)
    drawn = min(n, plot.MAX_OVERLAID) if n <= plot.MAX_OVERLAID else runs
    for ax in fig.axes:
        lines = labeled_lines(ax)
        assert len(lines) == drawn
        assert len({line.get_color() for line in lines}) == drawn
    fig = plot.plot_figure("trajectory", cks, value="kl")
    assert_legends_inside(fig)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["p50", "p90", "p99", "p99.9"]
    for ax in fig.axes:
        lines = labeled_lines(ax)
        assert len(lines) == runs and len({line.get_color() for line in lines}) == runs
        if runs > 1:  # a single checkpoint's line is named as the CE trajectory names it
            assert sorted(line.get_label() for line in lines) == sorted(f"run{r}" for r in range(runs))


def test_kl_distribution_counts_zeros_and_reads_the_tail_down_to_one_target():
    kl = np.array([0.0] * 10 + [1e-9] * 5 + list(np.linspace(0.01, 1, 85)))
    d = kl_distribution("a", kl)
    assert d.n == 100 and d.below(KL_FLOOR) == pytest.approx(0.15)
    assert d.tail[-1] == pytest.approx(0.01) and d.x[-1] == 1.0
    assert d.cdf[-1] == 1.0 and d.tail[0] == 1.0
    lo, hi, note = kl_axis([d])
    assert (lo, hi) == (KL_FLOOR, 1.0)  # the 1st percentile of positive KL is 1e-9: the floor; nothing above 1
    assert note == "KL < 1e-06 (exact zeros too)\ndrawn at 1e-06: up to 15.0%"
    assert kl_axis([kl_distribution("b", kl[10:] + 0.005)])[:2] == (0.001, 10.0)  # the decade below p1 of positive KL
    few = np.concatenate([[0.0], np.linspace(0.5, 2, 9999)])  # one zero in 10,000: a share that rounds to 0.0%
    assert kl_axis([kl_distribution("c", few)])[2] == "KL < 0.1 (exact zeros too)\ndrawn at 0.1: under 0.05%"


def test_a_model_against_itself_is_drawn_at_the_floor():
    d = kl_distribution("self", np.zeros(50))
    assert kl_axis([d]) == (KL_FLOOR, KL_FLOOR * 10, f"KL < {KL_FLOOR:g} (exact zeros too)\ndrawn at {KL_FLOOR:g}: up to 100.0%")
    kl_ecdf_figure([d])  # draws, nothing to take a log of


@pytest.mark.slow
def test_plot_value_kl_writes_a_png(tmp_path):
    kl_stores(tmp_path / "s", 3, 1)
    out = tmp_path / "kl.png"
    r = run("plot", "ecdf", tmp_path / "s", "--value", "kl", "--out", out)
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args,message",
    [
        (["fan", "--value", "kl"], "Error: plot fan with --value kl: KL is drawn as ecdf and trajectory"),
        (["trajectory", "--value", "dp"], "Error: plot trajectory with --value dp: Δp is drawn as ecdf; summarize it over training with pctce summary --value dp"),
        (["ecdf", "--value", "dp", "--unit", "word"], "Error: --value dp with --unit word: Δp is a token quantity (it does not sum into words); use --unit token"),
        (["ecdf", "--value", "kl", "--unit", "byte"], "Error: --value kl with --unit byte: a divergence is taken per prediction and has no byte form; use --unit token or word"),
    ],
)
def test_plot_value_kl_refuses_what_has_no_kl_form(tmp_path, args, message):
    kl_stores(tmp_path / "s", 2, 1)
    r = run("plot", args[0], tmp_path / "s", *args[1:], "--out", tmp_path / "x.png")
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1] == message


def test_plot_value_kl_refuses_a_store_without_divergence(tmp_path):
    make_store(tmp_path / "s", "plain", np.ones(10), np.zeros(10, np.int64))
    r = run("plot", "ecdf", tmp_path / "s", "--value", "kl", "--out", tmp_path / "x.png")
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1] == (
        f"Error: --value kl: 'plain' in {tmp_path / 's'} was scored without a reference model; "
        "score it with 'pctce score CHECKPOINT --reference REF --force' to store its divergence (docs/kl.md)"
    )


DOMAINS = ("code", "prose", "web")


def labeled_kl_stores(root, n: int, runs: int) -> list:
    """:func:`kl_stores` with a subset field ``domain`` (documents 0, 3, 6 … code; 1, 4 … prose; 2, 5 … web)."""
    from pctce_cli.store import write_labels

    cks = kl_stores(root, n, runs)
    for c in cks:
        write_labels(root, c.id, {"domain": [DOMAINS[d % 3] for d in range(40)]}, list(range(40)))
    return resolve_checkpoints([root])


def _kl_of(c, domain=None):
    from pctce_cli.store import load_scores

    s = load_scores(c.root, c.partition, columns=("doc", "kl"))
    return s.kl.astype(np.float64) if domain is None else s.kl[s.doc % 3 == DOMAINS.index(domain)].astype(np.float64)


@pytest.mark.slow
@pytest.mark.parametrize("n,runs", [(1, 1), (12, 4), (60, 15)])
def test_kl_ecdf_by_subset_draws_each_subsets_tail_against_a_brute_force_count(tmp_path, n, runs):
    from pctce_cli.analysis.subsets import Subsets

    cks = labeled_kl_stores(tmp_path / "s", n, runs)
    notes: list[str] = []
    fig = plot.plot_figure("ecdf", cks, value="kl", subsets=Subsets("domain", split=True), notes=notes)
    assert_legends_inside(fig)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in axes] == [f"domain = {d} ({50 * sum(k % 3 == i for k in range(40)):,} targets)" for i, d in enumerate(DOMAINS)]
    drawn = {c.id: c for c in cks} if n <= plot.MAX_OVERLAID else {c.id: c for c in cks if c.id.endswith(f"checkpoint-{100 * (n // runs)}")}
    lo = axes[0].get_xlim()[0]
    for ax, domain in zip(axes, DOMAINS):
        lines = labeled_lines(ax)
        assert sorted(line.get_label() for line in lines) == sorted(drawn) and len({line.get_color() for line in lines}) == len(drawn)
        for line in lines:
            kl = _kl_of(drawn[line.get_label()], domain)
            x, y = line.get_xdata(), line.get_ydata()
            above = x > lo  # the points drawn at the floor stand for KL below it
            assert above.sum() > 10
            np.testing.assert_array_equal(y[above], [np.mean(kl >= v) for v in x[above]])  # the fraction with KL ≥ x, counted
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"
    assert fig._suptitle.get_text().startswith("KL tail by domain of ")
    if n > plot.MAX_OVERLAID:
        assert any("each run's last" in note for note in notes)


def test_the_kl_trajectory_refuses_one_panel_per_subset_in_the_options_words():
    from pctce_cli.cli.common import cli_message
    from pctce_cli.plot.divergence import check_divergence_plot

    with pytest.raises(UsageError) as e:
        check_divergence_plot("trajectory", "kl", [], "token", True)
    assert cli_message(e.value) == (
        "plot trajectory with --value kl and --by: one panel per subset is drawn on the KL ecdf only; draw them with plot ecdf "
        "--value kl --by FIELD, keep one with --subset VALUE, or summarize them with summary --value kl --by FIELD"
    )


def test_the_kl_trajectory_of_one_subset_is_its_documents_percentiles(tmp_path):
    from pctce_cli.analysis.subsets import Subsets
    from pctce_cli.plot.divergence import kl_trajectory_rows
    from pctce_cli.stats.summaries import percentiles

    cks = labeled_kl_stores(tmp_path / "s", 2, 1)
    rows = kl_trajectory_rows(cks, ["p50", "p99"], Subsets("domain", keep=("web",)))
    for c, row in zip(cks, rows):
        kl = _kl_of(c, "web")
        assert (row["p50"], row["p99"]) == tuple(float(p) for p in percentiles(kl, [50, 99]))


@pytest.mark.slow
def test_kl_ecdf_of_one_subset_is_the_ecdf_of_its_documents(tmp_path):
    from pctce_cli.analysis.subsets import Subsets

    [c] = labeled_kl_stores(tmp_path / "s", 1, 1)
    fig = plot.plot_figure("ecdf", [c], value="kl", subsets=Subsets("domain", keep=("prose",)))
    ax_cdf, ax_tail = fig.axes[:2]
    kl = _kl_of(c, "prose")
    [line] = labeled_lines(ax_cdf)
    x, y = line.get_xdata()[1:], line.get_ydata()[1:]  # the first point is the axis' left edge at 0
    above = x > ax_cdf.get_xlim()[0]
    np.testing.assert_array_equal(y[above], [np.mean(kl <= v) for v in x[above]])
    assert "KL distribution" in fig._suptitle.get_text()


@pytest.mark.slow
def test_plot_ecdf_value_kl_by_field_from_the_command_line(tmp_path):
    labeled_kl_stores(tmp_path / "s", 3, 1)
    out = tmp_path / "kl-by.png"
    r = run("plot", "ecdf", tmp_path / "s", "--value", "kl", "--by", "domain", "--out", out)
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    r = run("plot", "trajectory", tmp_path / "s", "--value", "kl", "--by", "domain", "--out", tmp_path / "t.png")
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1] == "Error: plot trajectory --by: one panel per subset is drawn for ecdf, shape, bands; plot one subset with --subset VALUE"
    r = run("plot", "trajectory", tmp_path / "s", "--value", "kl", "--subset", "code", "--out", tmp_path / "t.png")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    r = run("plot", "ecdf", tmp_path / "s", "--value", "kl", "--subset", "nope", "--by", "domain", "--out", tmp_path / "n.png")
    assert r.exit_code == 2 and "nope" in r.output.strip().splitlines()[-1]


def _word_kl_brute_force(c) -> np.ndarray:
    """Each word's KL as the sum of its tokens', by a loop over (document, word) keys."""
    from pctce_cli.store import load_scores, load_units

    s = load_scores(c.root, c.partition, columns=("doc", "kl"))
    words = load_units(c.root, c.partition, "word").word
    sums: dict = {}
    for d, w, k in zip(s.doc.tolist(), words.tolist(), s.kl.astype(np.float64).tolist()):
        if w >= 0:
            sums[(d, w)] = sums.get((d, w), 0.0) + k
    return np.array(list(sums.values()))


@pytest.fixture(scope="module")
def word_store(tmp_path_factory, tiny_tokenizer, one_thread):
    """Two tiny models scored with words, one against the other (tests/test_kl_stream.py)."""
    from tests.test_kl_stream import scored_with_words

    return scored_with_words(tmp_path_factory.mktemp("klwords"), tiny_tokenizer)


@pytest.mark.slow
def test_kl_per_word_is_drawn_from_each_words_sum(word_store, tmp_path):
    from pctce_cli.analysis.subsets import Subsets

    [c] = resolve_checkpoints([word_store])
    wkl = _word_kl_brute_force(c)
    fig = plot.plot_figure("ecdf", [c], value="kl", unit="word")
    ax_cdf, ax_tail = fig.axes[:2]
    assert (ax_cdf.get_xlabel(), ax_cdf.get_ylabel()) == ("per-word KL(p_ref ‖ p_model) (nats, log scale)", "fraction of words with KL ≤ x")
    [line] = labeled_lines(ax_cdf)
    x, y = line.get_xdata()[1:], line.get_ydata()[1:]
    above = x > ax_cdf.get_xlim()[0]
    np.testing.assert_allclose(y[above], [np.mean(wkl <= v * (1 + 1e-9)) for v in x[above]], rtol=0, atol=1e-12)
    assert fig._suptitle.get_text().startswith("KL per word distribution of ")
    fig = plot.plot_figure("ecdf", [c], value="kl", unit="word", subsets=Subsets("half", split=True))
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(titles) == 2 and all(t.startswith("half = ") and t.endswith(" words)") for t in titles)
    assert sum(int(t.split("(")[1].split()[0].replace(",", "")) for t in titles) == wkl.size  # the words of both halves
    from pctce_cli.plot.divergence import kl_label, kl_trajectory_rows
    from pctce_cli.stats.summaries import percentiles

    [row] = kl_trajectory_rows([c], ["p50", "p99"], unit="word")  # what plot trajectory --value kl --unit word draws
    assert (row["p50"], row["p99"]) == tuple(pytest.approx(float(p), rel=1e-12) for p in percentiles(wkl, [50, 99]))
    assert kl_label("p99", "word") == "p99 of per-word KL (nats)"


@pytest.mark.slow
@pytest.mark.parametrize("n,runs", [(1, 1), (12, 4), (60, 15)])
def test_dp_ecdf_draws_each_checkpoints_signed_ecdf_against_a_brute_force_count(tmp_path, n, runs):
    from pctce_cli.store import load_scores

    cks = kl_stores(tmp_path / "s", n, runs)
    notes: list[str] = []
    fig = plot.plot_figure("ecdf", cks, value="dp", notes=notes)
    assert_legends_inside(fig)
    [ax] = [a for a in fig.axes if a.get_visible()]
    assert ax.get_xscale() == "symlog" and ax.get_xlim() == (-1.0, 1.0)
    drawn = {c.id: c for c in cks} if n <= plot.MAX_OVERLAID else {c.id: c for c in cks if c.id.endswith(f"checkpoint-{100 * (n // runs)}")}
    lines = labeled_lines(ax)
    assert sorted(line.get_label() for line in lines) == sorted(drawn) and len({line.get_color() for line in lines}) == len(drawn)
    for line in lines:
        c = drawn[line.get_label()]
        dp = load_scores(c.root, c.partition, columns=("dp",)).dp.astype(np.float64)
        x, y = line.get_xdata()[1:], line.get_ydata()[1:]  # the first point is the axis' left end at 0
        assert x.size > 100
        np.testing.assert_array_equal(y, [np.mean(dp <= v) for v in x])  # the fraction with Δp ≤ x, counted
    assert fig._suptitle.get_text().startswith("Δp distribution of ")
    assert any("each run's last" in note for note in notes) == (n > plot.MAX_OVERLAID)


def test_dp_distribution_counts_the_share_below_zero_and_reaches_both_ends():
    from pctce_cli.plot.delta_p import dp_distribution

    dp = np.concatenate([-np.logspace(-6, 0, 400), np.zeros(100), np.logspace(-6, -0.5, 500)])
    d = dp_distribution("a", dp)
    assert (d.n, d.below) == (1000, 0.4)
    assert d.x[0] == -1.0 and d.x[-1] == pytest.approx(10 ** -0.5) and d.cdf[-1] == 1.0


@pytest.mark.slow
def test_plot_ecdf_value_dp_from_the_command_line(tmp_path):
    labeled_kl_stores(tmp_path / "s", 3, 1)
    r = run("plot", "ecdf", tmp_path / "s", "--value", "dp", "--subset", "code", "--out", tmp_path / "dp.png")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "dp.png").read_bytes()[:4] == b"\x89PNG"
    r = run("plot", "ecdf", tmp_path / "s", "--value", "dp", "--by", "domain", "--out", tmp_path / "x.png")
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1] == (
        "Error: plot ecdf with --value dp and --by: panels are drawn for KL only; keep one with --subset VALUE, or summarize Δp with summary --value dp --by FIELD"
    )
