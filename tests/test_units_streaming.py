"""Word and byte summaries of checkpoints above PCTCE_STREAM_ABOVE (SPEC §8), streamed in bounded memory.

Against independent references: weighted streaming percentiles against the
``np.repeat`` expansion, streamed word CEs against ``word_ce`` over all
targets at once, the streamed row against the in-memory ``unit_rows`` row
(tiny batches, so words straddle them), the CLI streamed against loaded, and
two shards against one.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pctce_cli.errors import UsageError
from pctce_cli.stats.shape import band_mass
from pctce_cli.stats.streaming import StreamingSummary, stream_word_ce
from pctce_cli.stats.summaries import DEFAULT_EDGES
from pctce_cli.stats.units import weighted_percentiles, word_ce
from pctce_cli.testing import reseal
from tests.helpers import assert_same_summaries

from .cli import run_json
from .units_fixtures import two_tokenizers, write_jsonl

LEVELS = [0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100]
ROUND_OFF = ("mean", "ppl", "z95", "bpb", "byte_ppl", "word_ppl")  # sums in another order: equal to round-off


def cut(n: int, sizes) -> list[slice]:
    """Consecutive slices of ``range(n)`` of the given sizes, the rest in a last slice."""
    out, start = [], 0
    for s in sizes:
        if start >= n:
            break
        out.append(slice(start, min(n, start + s)))
        start = out[-1].stop
    if start < n or not out:
        out.append(slice(start, n))
    return out


def stream(values, weights, pieces, edges=None, total=None):
    s = StreamingSummary(LEVELS, edges)
    for p in pieces:
        s.update(values[p], weights=None if weights is None else weights[p], total=None if total is None else total[p].sum())
    s.plan()
    for p in pieces:
        s.collect(values[p], weights=None if weights is None else weights[p])
    return s, s.compute()


def check_weighted(values, weights, sizes):
    s, got = stream(values, weights, cut(values.size, sizes), DEFAULT_EDGES)
    expanded = np.repeat(values, weights).astype(np.float64)
    assert got["n"] == expanded.size
    if not expanded.size:
        assert all(math.isnan(got[k]) for k in ("mean", "p50", "iqr"))
        return
    want = np.percentile(expanded, LEVELS)
    assert [got[f"p{q:g}"] for q in LEVELS] == want.tolist()  # exact
    assert want.tolist() == weighted_percentiles(values, weights, LEVELS).tolist()
    assert got["mean"] == pytest.approx(expanded.mean(), rel=1e-12)
    assert got["iqr"] == want[LEVELS.index(75)] - want[LEVELS.index(25)]
    assert got["bands"] == band_mass(expanded, DEFAULT_EDGES).tolist()
    assert s.kept_values <= np.count_nonzero(weights)


@settings(max_examples=80, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0, 2.5]) | st.floats(0, 40, width=32), st.integers(0, 6)), min_size=1, max_size=200),
    sizes=st.lists(st.integers(1, 40), max_size=8),
)
@pytest.mark.slow  # over half a second: kept out of the fast lane
@example(pairs=[(1.5, 3)], sizes=[])  # one value
@example(pairs=[(1.5, 0), (2.0, 0)], sizes=[1])  # no weight at all
@example(pairs=[(0.0, 2), (0.0, 0), (3.0, 1)], sizes=[1, 1])  # zeros, a dropped value
def test_weighted_streaming_equals_the_expanded_distribution(pairs, sizes):
    values = np.array([v for v, _ in pairs], dtype=np.float32)
    weights = np.array([w for _, w in pairs], dtype=np.int64)
    check_weighted(values, weights, sizes)


def test_weighted_streaming_of_many_crowded_values_is_exact():
    """Enough values that weighted_percentiles takes its histogram path too, with a crowd at zero and ties."""
    rng = np.random.default_rng(0)
    values = rng.gamma(1.5, 1.0, 300_001).astype(np.float32)
    values[:5000] = 0.0
    values[5000:9000] = np.float32(0.75)
    weights = rng.integers(0, 9, values.size)
    check_weighted(values, weights, [100_000, 1, 150_000])


def test_byte_mean_is_sum_of_ce_over_bytes():
    ce = np.array([2.0, 1.0, 0.3], np.float32)
    nb = np.array([4, 1, 0])
    keep = nb > 0
    _, got = stream((ce[keep] / nb[keep].astype(np.float32)).astype(np.float32), nb[keep], [slice(0, 1), slice(1, 2)], total=ce[keep].astype(np.float64))
    assert got["mean"] == pytest.approx(3.0 / 5, rel=1e-15) and got["n"] == 5


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(0, 1e6), min_size=1, max_size=200), sizes=st.lists(st.integers(1, 30), max_size=6))
def test_float64_values_keep_their_precision(values, sizes):
    """Word CE sums are float64: bucketed by their float32 rounding, kept and interpolated in float64."""
    v = np.array(values, dtype=np.float64)
    _, got = stream(v, None, cut(v.size, sizes))
    assert [got[f"p{q:g}"] for q in LEVELS] == np.percentile(v, LEVELS).tolist()


def test_unweighted_float32_path_is_unchanged():
    rng = np.random.default_rng(3)
    ce = rng.gamma(1.2, 2.0, 50_001).astype(np.float32)
    _, got = stream(ce, None, cut(ce.size, [20_000, 7]))
    assert [got[f"p{q:g}"] for q in LEVELS] == np.percentile(ce.astype(np.float64), LEVELS).tolist()


def test_weights_are_checked_and_not_mixed():
    s = StreamingSummary([50])
    with pytest.raises(UsageError, match="^weights must be non-negative integers, one per value$"):
        s.update(np.array([1.0], np.float32), weights=np.array([-1]))
    s = StreamingSummary([50])
    s.update(np.array([1.0], np.float32), weights=np.array([2]))
    with pytest.raises(UsageError, match="^every chunk of a streaming summary must be weighted, or none$"):
        s.update(np.array([1.0], np.float32))


# --------------------------------------------------------------------------- words across chunks


@st.composite
def targets(draw):
    """Targets sorted by (doc, pos): documents of words of 1-30 targets, empty spans anywhere (word -1)."""
    ce, doc, word = [], [], []
    for d in range(draw(st.integers(1, 4))):
        for w in range(draw(st.integers(0, 5))):
            for _ in range(draw(st.integers(1, 30))):
                if draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans()):
                    ce.append(draw(st.floats(0, 5, width=32)))
                    doc.append(d)
                    word.append(-1)
                ce.append(draw(st.floats(0, 20, width=32)))
                doc.append(d)
                word.append(w)
    return np.array(ce, np.float32), np.array(doc, np.int64), np.array(word, np.int32)


@pytest.mark.slow  # over half a second: kept out of the fast lane
@settings(max_examples=100, deadline=None)
@given(t=targets(), sizes=st.lists(st.integers(1, 12), max_size=30))
def test_streamed_word_ce_is_word_ce_bit_for_bit(t, sizes):
    ce, doc, word = t
    got = list(stream_word_ce((ce[p], doc[p], word[p]) for p in cut(ce.size, sizes)))
    want = word_ce(ce, doc, word)[0]
    assert np.concatenate(got).tolist() == want.tolist()  # the same float64 sums, in the same order


def test_a_long_word_cut_into_many_chunks_sums_as_in_memory():
    """A word of 1000 targets (numpy sums it pairwise): held across 100 chunks, summed once, the same bits."""
    rng = np.random.default_rng(1)
    ce = rng.gamma(1.0, 3.0, 1003).astype(np.float32)
    doc = np.zeros(ce.size, np.int64)
    word = np.r_[0, np.ones(1000, np.int32), 2, 3].astype(np.int32)
    got = np.concatenate(list(stream_word_ce((ce[p], doc[p], word[p]) for p in cut(ce.size, [10] * 100))))
    assert got.tolist() == word_ce(ce, doc, word)[0].tolist()


def test_unsorted_words_are_refused_across_chunks():
    chunks = [(np.array([1.0]), np.array([0]), np.array([3])), (np.array([1.0]), np.array([0]), np.array([1]))]
    with pytest.raises(UsageError, match="sorted by document, then position"):
        list(stream_word_ce(chunks))


# --------------------------------------------------------------------------- scored stores

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism https://example.org/a/very/long/path?q=1",
    "Once upon a time there was a cat, naïve and café-loving.",
    "東京 is written 東京; emoji 🎉🎉 too",
    "  All the world's a stage,\n\nand all the men and women merely players.  ",
]
CHATS = [
    [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "héllo 😀 東京 ok\n"}],
    [{"role": "user", "content": "again"}, {"role": "assistant", "content": " two  words, pneumonoultramicroscopic"}],
]


@pytest.fixture(scope="module")
def stores(tmp_path_factory, one_thread):
    """Two tokenizers on the same texts, in many small shards and in one; a chat store with empty-span targets."""
    from pctce_cli.scoring.options import ScoreOptions
    from pctce_cli.scoring.run import score_checkpoints
    base = tmp_path_factory.mktemp("ustream")
    small, large = two_tokenizers(base)
    text = write_jsonl(base / "val.jsonl", [{"text": t, "domain": "code" if k == 1 else "prose"} for k, t in enumerate(TEXTS)])
    chat = write_jsonl(base / "chat.jsonl", [{"messages": m} for m in CHATS])
    out = {}
    for name, data, shard in (("many", text, 40), ("chat", chat, 1 << 20)):
        res = score_checkpoints([str(small), str(large)], ScoreOptions(data=[str(data)], out=base / name, shard_targets=shard, subset_fields=("domain",) if data == text else ()))
        assert all(r.status == "scored" for r in res), [r.message for r in res]
        out[name] = base / name
    out["one"] = one_shard_copy(out["many"], base / "one")
    return out


def one_shard_copy(src, dst):
    """A copy of a store with each partition's shards merged into one (the same values, one shard)."""
    import hashlib
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(src, dst)
    for man_path in dst.glob("checkpoint=*/_manifest.json"):
        part = man_path.parent
        man = json.loads(man_path.read_text())
        merged = {}
        for kind in ("tokens", "docs"):
            files = [part / r[f"{kind}_file"] for r in man["shards"]]
            table = pa.concat_tables([pq.read_table(f) for f in files])
            for f in files:
                f.unlink()
            target = part / man["shards"][0][f"{kind}_file"]
            pq.write_table(table, target)
            merged[f"{kind}_file"] = man["shards"][0][f"{kind}_file"]
            merged[f"{kind}_sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
        merged["rows"] = sum(r["rows"] for r in man["shards"])
        merged["documents"] = sum(r["documents"] for r in man["shards"])
        man["shards"] = [{**man["shards"][0], **merged}]
        man_path.write_text(json.dumps(man))
        reseal(part)  # merged on purpose: the sums and the manifest's checksum follow
    return dst


def checkpoints(root):
    from pctce_cli.catalog import resolve_checkpoints

    return resolve_checkpoints([root], unit="word")


def assert_same_row(got: dict, want: dict):
    assert list(got) == list(want)
    for k, v in want.items():
        if k in ROUND_OFF:
            assert got[k] == pytest.approx(v, rel=1e-12, nan_ok=True), k
        else:  # counts, order statistics: exact
            assert got[k] == v or (v != v and got[k] != got[k]), k


def straddles(root, ck_id, batch: int) -> bool:
    """Whether some word's targets lie on both sides of a batch boundary."""
    from pctce_cli.store import load_units

    u = load_units(root, ck_id)
    k = np.arange(batch, u.word.size, batch)
    return bool(((u.word[k] >= 0) & (u.word[k] == u.word[k - 1]) & (u.doc[k] == u.doc[k - 1])).any())


@pytest.mark.parametrize("name", ["many", "one", "chat"])
@pytest.mark.parametrize("unit", ["word", "byte"])
def test_streamed_row_is_the_in_memory_row(stores, name, unit):
    from pctce_cli.analysis.units import unit_rows
    from pctce_cli.analysis.units_stream import streamed_unit_row

    for ck in checkpoints(stores[name]):
        assert straddles(ck.root, ck.partition, 5)
        (want,), _ = unit_rows(ck, LEVELS, unit)
        assert_same_row(streamed_unit_row(ck, LEVELS, unit, batch_rows=5), want)
        assert want["targets"] == ck.manifest["targets"]
        assert (want["empty"] > 0) == (name == "chat")


def test_shard_invariance(stores):
    from pctce_cli.analysis.units_stream import streamed_unit_row

    for unit in ("word", "byte"):
        for a, b in zip(checkpoints(stores["many"]), checkpoints(stores["one"])):
            assert len(a.manifest["shards"]) > 1 == len(b.manifest["shards"])
            assert_same_row(streamed_unit_row(a, LEVELS, unit, batch_rows=3), streamed_unit_row(b, LEVELS, unit))


@pytest.mark.parametrize("name", ["many", "chat"])
@pytest.mark.parametrize("unit", ["word", "byte"])
def test_cli_streamed_equals_loaded(stores, monkeypatch, name, unit):
    from pctce_cli.analysis import units_stream

    title = f"Per-{unit} CE summaries (nats per {unit})"
    loaded = run_json("summary", stores[name], "--unit", unit, "--percentiles", "5,50,90,99.9")
    monkeypatch.setenv("PCTCE_STREAM_ABOVE", "0")
    monkeypatch.setattr(units_stream, "BATCH_ROWS", 7)
    streamed = run_json("summary", stores[name], "--unit", unit, "--percentiles", "5,50,90,99.9")
    assert list(streamed) == list(loaded)
    assert len(streamed[title]) == len(loaded[title]) == 2
    for got, want in zip(streamed[title], loaded[title]):
        assert_same_row(got, want)


UNIT_ARGS = [("--by", "domain"), ("--subset", "code"), ("--subset", "prose", "-c", "large"), ("--by", "domain", "--percentiles", "0,5,50,99.9,100")]


@pytest.mark.parametrize("unit", ["word", "byte"])
@pytest.mark.parametrize("args", UNIT_ARGS)
def test_unit_subsets_above_the_threshold_are_streamed_with_the_loaded_numbers(stores, monkeypatch, unit, args):
    """--by/--subset in words and bytes above PCTCE_STREAM_ABOVE: per-subset histograms, the loaded rows (words straddle batches)."""
    from pctce_cli.analysis import units_stream

    loaded = run_json("summary", stores["many"], "--unit", unit, *args)
    monkeypatch.setenv("PCTCE_STREAM_ABOVE", "0")
    monkeypatch.setattr(units_stream, "BATCH_ROWS", 5)
    streamed = run_json("summary", stores["many"], "--unit", unit, *args)
    assert_same_summaries(loaded, streamed)
    assert streamed.get("notes") == loaded.get("notes")


@pytest.mark.parametrize("unit", ["word", "byte"])
@pytest.mark.parametrize("args", [(), ("--by", "domain"), ("--subset", "prose", "-c", "small")])
def test_unit_intervals_above_the_threshold_are_the_loaded_intervals(stores, monkeypatch, unit, args):
    """--ci in words or bytes, streamed: the bounded-memory bootstrap over words, or over byte values with their
    weights, draws the in-memory replicates (bounds of percentiles exact)."""
    from pctce_cli.analysis import units_stream

    ci = ("--ci", "0.9", "--bootstrap", "200", "--seed", "3", "--percentiles", "10,50,90,99.9")
    loaded = run_json("summary", stores["many"], "--unit", unit, *ci, *args)
    monkeypatch.setenv("PCTCE_STREAM_ABOVE", "0")
    monkeypatch.setattr(units_stream, "BATCH_ROWS", 5)
    streamed = run_json("summary", stores["many"], "--unit", unit, *ci, *args)
    assert_same_summaries(loaded, streamed)
    rows = [r for t, rs in streamed.items() if t != "notes" for r in rs if "p50_lo" in r]
    assert rows and all(r["p50_lo"] <= r["p50"] <= r["p50_hi"] for r in rows)
    assert any("method streamed" in n for n in streamed["notes"])


def test_streamed_unit_subset_rows_equal_unit_rows(stores):
    """The core function, without the CLI: every subset's row as unit_rows gives it, batches of 3 targets."""
    from pctce_cli.analysis.subsets import Subsets
    from pctce_cli.analysis.units import unit_rows
    from pctce_cli.analysis.units_stream import streamed_unit_rows

    by = Subsets(field="domain", split=True)
    for unit in ("word", "byte"):
        for ck in checkpoints(stores["many"]):
            want, want_notes = unit_rows(ck, LEVELS, unit, by)
            got, notes = streamed_unit_rows(ck, LEVELS, unit, by, batch_rows=3)
            assert notes == want_notes and len(got) == len(want) == 2
            for g, w in zip(got, want):
                assert_same_row(g, w)


@pytest.mark.parametrize("args", [("--by", "domain"), ("--subset", "code"), ("--by", "domain", "--ci", "0.9", "--bootstrap", "100")])
def test_token_subsets_above_the_threshold_are_streamed_with_the_loaded_numbers(stores, monkeypatch, args):
    """In tokens, --by/--subset/--ci above PCTCE_STREAM_ABOVE are streamed (docs/streaming.md): same rows, same intervals."""
    loaded = run_json("summary", stores["one"], "-c", "large", *args)
    monkeypatch.setenv("PCTCE_STREAM_ABOVE", "0")
    streamed = run_json("summary", stores["one"], "-c", "large", *args)
    assert_same_summaries(loaded, streamed)


def test_a_damaged_word_column_is_named_with_its_file_and_row(stores, tmp_path):
    """Streamed words are verified as load_units verifies them: word >= -1, nbytes >= 0."""
    import hashlib
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pctce_cli.analysis.units_stream import streamed_unit_row
    from pctce_cli.errors import StoreError

    root = tmp_path / "s"
    shutil.copytree(stores["one"], root)
    ck = checkpoints(root)[0]
    part = root / f"checkpoint={ck.partition}"
    man = json.loads((part / "_manifest.json").read_text())
    rec = man["shards"][0]
    table = pq.read_table(part / rec["tokens_file"])
    word = table.column("word").to_numpy().copy()
    word[3] = -2
    table = table.set_column(table.column_names.index("word"), "word", pa.array(word, type=table.schema.field("word").type))
    pq.write_table(table, part / rec["tokens_file"])
    rec["tokens_sha256"] = hashlib.sha256((part / rec["tokens_file"]).read_bytes()).hexdigest()
    (part / "_manifest.json").write_text(json.dumps(man))
    reseal(part)
    ck = checkpoints(root)[0]
    with pytest.raises(StoreError, match=r"part-00000\.parquet: row 3: word = -2, expected >= -1"):
        streamed_unit_row(ck, [50], "word", batch_rows=2)
