"""Bootstrap numbers on fixed seeds, bit for bit as the code at tag ``pre-house`` computed them.

The values below were printed by the pre-refactor code (``pctce_cli.compare``'s
own ``paired_bpb``/``draw_counts``/``percentile_interval`` and
``stats.bootstrap``) on the same inputs; moving the bootstrap into ``stats``
must not change a single bit of them.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pctce_cli import compare as C
from pctce_cli.stats import bootstrap as B

BPB = {'delta': -0.018133277892452004, 'lo': -0.024514463135148906, 'hi': -0.010905344913744355, 'a': 0.45313472128248966, 'b': 0.43500144339003766}
COMPARE = {'mean': {'delta': -0.06546370023678705, 'lo': -0.08610025965867973, 'hi': -0.040744028867522514, 'a': 1.6358804920352832, 'b': 1.5704167917984961}, 'p50': {'delta': -0.05592504143714905, 'lo': -0.09018518328666687, 'hi': 0.014652192592620843, 'a': 0.8594553768634796, 'b': 0.8035303354263306}, 'p90': {'delta': -0.20021688938140736, 'lo': -0.3462322473526001, 'hi': 0.10088407993316496, 'a': 3.8987257003784186, 'b': 3.6985088109970112}, 'iqr': {'delta': -0.08264698088169098, 'lo': -0.24391282461583616, 'hi': 0.023336058855056754, 'a': 1.7592439129948616, 'b': 1.6765969321131706}, 'bpb': {'delta': -0.018133277892452004, 'lo': -0.02448777605276516, 'hi': -0.011204080510594669, 'a': 0.45313472128248966, 'b': 0.43500144339003766}}
PAIRED = {'mean': (-0.08265331888332308, -0.04803353042238008), 'ppl': (-0.45612133533067417, -0.2085669822590969), 'p50': (-0.0868160367012024, -0.0017586648464203015), 'p95': (-0.8016223454475417, 0.39639440298079287), 'iqr': (-0.20940572619438175, -0.01347278207540522), 'z90': (-0.10989937208992545, 0.18276963923938677)}
CI = {'mean': (1.2281465576367117, 2.118308421615417), 'p50': (0.6627115607261658, 1.0623394578695298), 'p99': (7.631269936561536, 14.74264472103119)}


def pair_data():
    rng = np.random.default_rng(2024)
    lengths = rng.integers(5, 40, size=30)
    doc = np.repeat(np.arange(30), lengths)
    a = (rng.gamma(0.8, 2.0, size=len(doc)) * rng.gamma(2.0, 0.5, size=30)[doc]).astype(np.float32)
    b = (a * rng.lognormal(-0.05, 0.2, size=len(doc))).astype(np.float32)
    n_bytes = rng.integers(20, 200, size=30)
    return a, b, doc, n_bytes


def test_compare_uses_the_stats_bootstrap():
    assert C.paired_bpb is B.paired_bpb  # one home for bootstrap code: compare has none of its own


def test_paired_bpb_is_bit_identical_to_pre_house():
    a, b, doc, n_bytes = pair_data()
    nll_a = np.bincount(doc, weights=a.astype(np.float64))
    nll_b = np.bincount(doc, weights=b.astype(np.float64))
    r = B.paired_bpb(nll_a, nll_b, n_bytes, 300, 0.9, 11)
    assert {k: float(v) for k, v in r.items()} == BPB


def test_compare_intervals_are_bit_identical_to_pre_house():
    a, b, doc, n_bytes = pair_data()
    docs = pd.DataFrame({"doc": np.arange(30), "n_bytes": n_bytes})
    sa, sb = SimpleNamespace(ce=a, doc=doc, docs=docs), SimpleNamespace(ce=b, doc=doc, docs=docs)
    c = C.compare_scores(sa, sb, "base", "cand", percentiles=[50, 90], ci=0.9, n_boot=200, seed=7)
    got = {n: {k: float(v[k]) for k in ("delta", "lo", "hi", "a", "b")} for n, v in c.stats.items()}
    assert got == COMPARE
    assert c.method == "exact"


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_summary_intervals_are_bit_identical_to_pre_house(method):
    a, b, doc, _ = pair_data()
    res = B.paired_bootstrap(a, b, doc, ["mean", "ppl", "p50", "p95", "iqr", "z90"], n_boot=150, ci=0.8, seed=3, method=method)
    assert {n: (float(v["lo"]), float(v["hi"])) for n, v in res.items()} == PAIRED
    res = B.bootstrap_ci(a, doc, ["mean", "p50", "p99"], n_boot=150, ci=0.95, seed=5, method=method)
    assert {n: tuple(map(float, v)) for n, v in res.items()} == CI


def test_draw_counts_is_one_integers_call_per_replicate():
    w = B.draw_counts(np.random.default_rng(4), 5, 3)
    rng = np.random.default_rng(4)
    want = np.stack([np.bincount(rng.integers(0, 5, size=5), minlength=5) for _ in range(3)]).astype(np.float64)
    np.testing.assert_array_equal(w, want)


def test_the_two_interval_conventions_differ_only_on_infinite_replicates():
    values = np.array([1.0, np.inf, 2.0, np.nan, 3.0])
    # compare's bpb convention: NaN and ±inf left out
    assert B.percentile_interval(values, 0.5) == (1.5, 2.5)
    # the summary bootstraps' convention (an overflowing ppl replicate stays)
    assert B.percentile_interval(values, 0.5, drop="nan") == (1.75, np.inf)
    assert B._interval(values, 0.5) == (1.75, np.inf)
    finite = np.array([3.0, 1.0, np.nan, 2.0])
    assert B.percentile_interval(finite, 0.9) == B.percentile_interval(finite, 0.9, drop="nan")
    with pytest.raises(Exception, match="drop must be 'nonfinite' or 'nan', got 'x'"):
        B.percentile_interval(values, 0.5, drop="x")
