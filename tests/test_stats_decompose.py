"""Error-entropy decomposition against a plain-Python implementation of SPEC §5."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from pctce_cli.errors import UsageError
from pctce_cli.stats.decompose import decompose


def brute_decompose(ce, rank):
    groups = defaultdict(list)
    for c, r in zip(ce, rank):
        groups[int(r)].append(float(c))
    n = len(ce)
    p = {e: len(v) / n for e, v in groups.items()}
    big_q = {e: math.exp(-sum(v) / len(v)) for e, v in groups.items()}
    c_total = sum(big_q.values())
    q = {e: big_q[e] / c_total for e in groups}
    ee = -sum(pe * math.log(pe) for pe in p.values())
    sa = sum(p[e] * math.log(p[e] / q[e]) for e in groups)
    return {"ee": ee, "sa": sa, "conf": math.log(c_total), "mean": sum(map(float, ce)) / n, "n_ranks": len(groups)}


def sample(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    rank = np.minimum(rng.geometric(0.4, size=n) - 1, 200)
    ce = (rng.gamma(1.0, 0.3, size=n) + 0.8 * np.log1p(rank)).astype(np.float32)
    return ce, rank.astype(np.int32)


def test_matches_brute_force():
    ce, rank = sample()
    got = decompose(ce, rank)
    want = brute_decompose(ce, rank)
    for k in ("ee", "sa", "conf", "mean"):
        assert got[k] == pytest.approx(want[k], rel=1e-10, abs=1e-12)
    assert got["n_ranks"] == want["n_ranks"] and got["n"] == ce.size


def test_identity_holds():
    ce, rank = sample(seed=1)
    d = decompose(ce, rank)
    assert abs(d["residual"]) < 1e-12
    assert d["mean"] == pytest.approx(d["ee"] + d["sa"] - d["conf"], abs=1e-12)
    assert d["sa"] >= -1e-15  # a KL divergence


def test_stable_when_q_underflows():
    # exp(-900) underflows to 0: a naive C = Σ Q_e would be 0 and ln C = -inf.
    ce = np.array([900.0, 900.0, 950.0, 1000.0])
    rank = np.array([0, 0, 1, 2])
    d = decompose(ce, rank)
    assert all(math.isfinite(d[k]) for k in ("ee", "sa", "conf"))
    assert abs(d["residual"]) < 1e-9


def test_huge_ranks_use_unique_path():
    ce, rank = sample(seed=2)
    big = rank.astype(np.int64) * (1 << 25)
    a, b = decompose(ce, rank), decompose(ce, big)
    for k in ("ee", "sa", "conf", "mean", "n_ranks"):
        assert a[k] == pytest.approx(b[k], rel=1e-12)


def test_single_rank():
    d = decompose([0.5, 1.5], [0, 0])
    assert d["ee"] == 0 and d["sa"] == pytest.approx(0, abs=1e-15)
    assert d["conf"] == pytest.approx(-1.0) and d["mean"] == 1.0


def test_empty_and_errors():
    d = decompose([], [])
    assert d["n"] == 0 and d["n_ranks"] == 0 and math.isnan(d["mean"])
    with pytest.raises(UsageError, match="rank must be >= 0, got -1"):
        decompose([1.0], [-1])
    with pytest.raises(UsageError, match=r"rank must have one entry per target \(2\), got 1"):
        decompose([1.0, 2.0], [0])
    with pytest.raises(UsageError, match="rank must hold integers, got dtype float64"):
        decompose([1.0], [0.5])
