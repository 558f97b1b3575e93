"""Paired bytes and byte intervals (SPEC §8): pieces of two tokenizations, the weighted bootstrap, compare and gate --unit byte."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pctce_cli.errors import UsageError
from pctce_cli.stats.bootstrap import bootstrap_ci, paired_bootstrap
from pctce_cli.stats.byte_pairs import byte_segments, first_byte_mismatch
from pctce_cli.store import load_units

from .cli import run, run_json
from .test_units_analysis import store  # noqa: F401  (the two-tokenizer store fixture)

NAMES = ["mean", "p10", "p50", "p90", "p99", "iqr", "z95"]


def per_byte(values, nbytes):
    """The byte distribution expanded: one value per byte (the reference the weighted code must equal)."""
    return np.repeat(np.asarray(values), np.asarray(nbytes))


# ---------------------------------------------------------------- pieces of two tokenizations


@st.composite
def two_tokenizations(draw):
    """Documents of random byte lengths, each cut into tokens twice at random places, with empty spans mixed in."""
    lengths = draw(st.lists(st.integers(1, 12), min_size=1, max_size=6))
    out = []
    for _ in range(2):
        doc, nb = [], []
        for d, n in enumerate(lengths):
            cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=n - 1))) if n > 1 else []
            sizes = np.diff([0, *cuts, n]).tolist()
            for s in sizes:
                if draw(st.booleans()) and draw(st.booleans()):
                    doc.append(d)
                    nb.append(0)  # an empty span (a special token) covers no byte
                doc.append(d)
                nb.append(s)
        out.append((np.array(doc), np.array(nb)))
    return out


@pytest.mark.slow  # over half a second: kept out of the fast lane
@settings(max_examples=200, deadline=None)
@given(two_tokenizations())
def test_pieces_reproduce_both_tokenizations_byte_by_byte(tok):
    (da, na), (db, nb) = tok
    va, vb = np.arange(na.size, dtype=np.float64), 100.0 + np.arange(nb.size)
    ra, rb, length = byte_segments(da, na, db, nb)
    assert length.min() >= 1 and length.sum() == na.sum() == nb.sum()
    assert np.array_equal(per_byte(va[ra], length), per_byte(va, na))  # the same value on every byte, under a …
    assert np.array_equal(per_byte(vb[rb], length), per_byte(vb, nb))  # … and under b
    assert np.array_equal(da[ra], db[rb])  # pieces never cross a document
    assert ra.size <= np.count_nonzero(na) + np.count_nonzero(nb)


def test_one_tokenization_pairs_token_by_token():
    doc, nb = np.array([0, 0, 0, 1]), np.array([2, 0, 3, 4])
    ra, rb, length = byte_segments(doc, nb, doc, nb)
    assert ra.tolist() == rb.tolist() == [0, 2, 3] and length.tolist() == [2, 3, 4]


def test_different_bytes_are_named():
    assert first_byte_mismatch([0, 1, 1], [3, 2, 2], [0, 1], [3, 3]) == (1, 4, 3)
    assert first_byte_mismatch([0, 1], [3, 2], [0], [3]) == (1, 2, 0)
    with pytest.raises(UsageError, match="document 1 holds 4 bytes in one tokenization and 3 in the other"):
        byte_segments([0, 1, 1], [3, 2, 2], [0, 1], [3, 3])


# ---------------------------------------------------------------- the weighted bootstrap


def weighted_data(seed: int, n: int = 3000, docs: int = 40):
    rng = np.random.default_rng(seed)
    ce = rng.exponential(1.0, n).astype(np.float32)
    ce[::5] = ce[3]  # ties
    doc = np.sort(rng.integers(0, docs, n))
    return ce, doc, rng.integers(1, 9, n)


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_weighted_replicates_equal_the_expanded_distributions(method):
    """Each replicate resamples the same documents as the bootstrap of one row per byte, so its values are equal."""
    ce, doc, w = weighted_data(0)
    got = bootstrap_ci(ce, doc, NAMES, n_boot=40, seed=3, method=method, weights=w)
    ref = bootstrap_ci(per_byte(ce, w), per_byte(doc, w), NAMES, n_boot=40, seed=3, method="exact")
    for name in NAMES:
        if name == "mean":
            np.testing.assert_allclose(got.replicates[name], ref.replicates[name], rtol=1e-12)
            assert got.point[name] == pytest.approx(ref.point[name], rel=1e-12)
        else:  # order statistics of the same multiset: exactly equal
            assert np.array_equal(got.replicates[name], ref.replicates[name]), name
            assert got.point[name] == ref.point[name]


def test_paired_weighted_replicates_equal_the_expanded_pairs():
    ce, doc, w = weighted_data(1)
    ce_b = (ce * np.random.default_rng(2).uniform(0.5, 1.5, ce.size)).astype(np.float32)
    ref = paired_bootstrap(per_byte(ce, w), per_byte(ce_b, w), per_byte(doc, w), NAMES, n_boot=30, seed=4, method="exact")
    for method in ("exact", "fast"):
        got = paired_bootstrap(ce, ce_b, doc, NAMES, n_boot=30, seed=4, method=method, weights=w)
        for name in NAMES:
            np.testing.assert_allclose(got.replicates[name], ref.replicates[name], rtol=1e-9, atol=1e-12)
            assert got[name]["delta"] == pytest.approx(ref[name]["delta"], rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from([0.0, 0.5, 1.0, 2.5, 7.0]), st.integers(1, 5)), min_size=1, max_size=40))
def test_fast_weighted_bootstrap_equals_exact(rows):
    rows.sort(key=lambda r: r[0])
    doc, ce, w = (np.array(c) for c in zip(*rows))
    ce = ce.astype(np.float32)
    a = bootstrap_ci(ce, doc, ["mean", "p5", "p50", "p95"], n_boot=8, seed=0, method="exact", weights=w)
    b = bootstrap_ci(ce, doc, ["mean", "p5", "p50", "p95"], n_boot=8, seed=0, method="fast", weights=w)
    for name in ("p5", "p50", "p95"):
        assert np.array_equal(a.replicates[name], b.replicates[name])
    np.testing.assert_allclose(a.replicates["mean"], b.replicates["mean"], rtol=1e-12)


def test_weights_are_checked():
    with pytest.raises(UsageError, match="weights must be >= 1"):
        bootstrap_ci([1.0, 2.0], [0, 1], ["mean"], n_boot=5, weights=[1, 0])
    with pytest.raises(UsageError, match="summary 'top1' is a token summary"):
        bootstrap_ci([1.0, 2.0], [0, 1], ["top1"], n_boot=5, rank=[0, 1], weights=[1, 2])


# ---------------------------------------------------------------- compare, gate and summary in bytes


def paired_bytes(store_dir):
    """Both checkpoints' per-byte values, one per byte of the text, by expansion."""
    ua, ub = load_units(store_dir, "small"), load_units(store_dir, "large")
    va = per_byte(ua.ce / np.maximum(ua.nbytes, 1).astype(np.float32), ua.nbytes)
    vb = per_byte(ub.ce / np.maximum(ub.nbytes, 1).astype(np.float32), ub.nbytes)
    return va.astype(np.float64), vb.astype(np.float64)


def test_compare_pairs_bytes_across_tokenizers(store):  # noqa: F811
    got = run_json("compare", "--store", store, "small", "large", "--unit", "byte", "--bootstrap", "200", "--percentiles", "50,90")
    table = {row["summary"]: row for row in next(v for k, v in got.items() if k.startswith("large − small"))}
    va, vb = paired_bytes(store)
    assert va.size == vb.size
    for name, ref in (("mean", np.mean), ("p50", lambda v: np.percentile(v, 50)), ("p90", lambda v: np.percentile(v, 90))):
        assert (table[name]["baseline"], table[name]["candidate"]) == pytest.approx((ref(va), ref(vb)), rel=1e-6)
        assert table[name]["lo"] <= table[name]["Δ"] <= table[name]["hi"]
    moved = got["Bytes whose CE went down / up / stayed (fractions)"][0]
    assert moved["bytes"] == va.size
    assert moved["down"] == pytest.approx(float((vb < va).mean()), abs=1e-12)
    assert moved["up"] == pytest.approx(float((vb > va).mean()), abs=1e-12)
    docs = next(v for k, v in got.items() if k.startswith("Documents that moved most by Δ summed nll"))
    ua = load_units(store, "small")
    assert sum(d["bytes"] for d in docs) <= va.size
    assert {d["doc"]: d["bytes"] for d in docs} == {d: int(ua.nbytes[ua.doc == d].sum()) for d in (r["doc"] for r in docs)}
    assert any("Unit: bytes" in n for n in got["notes"])
    per_byte_docs = next(v for k, v in got.items() if k.startswith("Documents that moved most by Δ mean CE per byte"))
    assert all(set(d) >= {"doc", "bytes", "Δ mean"} for d in per_byte_docs)


def test_gate_pairs_bytes_across_tokenizers(store, tmp_path):  # noqa: F811
    va, vb = paired_bytes(store)
    better, worse = ("small", "large") if va.mean() < vb.mean() else ("large", "small")
    r = run("gate", store, "--baseline", better, "--rule", "mean:+0%", "--unit", "byte", "--bootstrap", "200")
    assert r.exit_code == 1, r.output
    assert "Unit: bytes" in r.stdout
    policy = tmp_path / "gate.toml"
    policy.write_text(f'baseline = "{worse}"\nunit = "byte"\n[[rule]]\nsummary = "mean"\nmax_increase = 0.0\n', encoding="utf-8")
    assert run("gate", store, "--policy", policy, "--bootstrap", "200").exit_code == 0
    r = run("gate", store, "--baseline", better, "--rule", "top1:+1%", "--unit", "byte")
    assert r.exit_code == 2 and "a top1 rule needs token ranks" in r.output


def test_byte_intervals_equal_the_bootstrap_of_one_row_per_byte(store):  # noqa: F811
    rows = run_json("summary", store, "--unit", "byte", "--ci", "0.9", "--bootstrap", "300", "--percentiles", "50,90", "-c", "small")
    (row,) = rows["Per-byte CE summaries (nats per byte)"]
    u = load_units(store, "small")
    keep = u.nbytes > 0
    values = per_byte(u.ce[keep] / u.nbytes[keep].astype(np.float32), u.nbytes[keep])
    ref = bootstrap_ci(values, per_byte(u.doc[keep], u.nbytes[keep]), ["mean", "p50", "p90"], n_boot=300, ci=0.9, seed=0)
    for name in ("p50", "p90"):
        assert (row[f"{name}_lo"], row[f"{name}_hi"]) == ref[name]
    assert (row["mean_lo"], row["mean_hi"]) == pytest.approx(ref["mean"], rel=1e-9)


def test_gate_by_subset_in_bytes_counts_bytes(store, tmp_path):  # noqa: F811
    out = tmp_path / "gate.json"
    got = run("gate", store, "--baseline", "small", "--rule", "p50:+50%", "--unit", "byte", "--by", "domain", "--bootstrap", "100", "--json", out)
    assert got.exit_code in (0, 1), got.output
    u = load_units(store, "small")
    doc_domain = dict(zip(u.docs["doc"].tolist(), u.docs["domain"].tolist()))
    want: dict[str, int] = {}
    for d, nb in zip(u.doc.tolist(), u.nbytes.tolist()):
        want[doc_domain[d]] = want.get(doc_domain[d], 0) + nb
    result = json.loads(out.read_text(encoding="utf-8"))
    assert {s["subset"]: s["bytes"] for s in result["subsets"]} == want
    assert {r["subset"]: r["targets"] for r in result["candidates"][0]["results"]} == want  # each check counts its bytes
