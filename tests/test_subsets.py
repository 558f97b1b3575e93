"""Subsets (SPEC §7) end to end: labels written by `pctce score`, read by summary/concord/select/shape --by/--subset."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from pctce_cli.data import read_records
from pctce_cli.errors import DataError
from pctce_cli.stats.row import summary_row
from pctce_cli.stats.subsets import macro_mean
from pctce_cli.store import load_scores, read_manifest

from .cli import run, run_json
from .conftest import TEXTS

CODE = [
    "def add(a, b):\n    return a + b",
    "for i in range(10):\n    print(i * i)",
    "import os\nprint(os.getcwd())",
    "class Point:\n    x: int = 0\n    y: int = 0",
]
# (text, domain, year): the domain is a string, the year a number (a label is any scalar)
ROWS = [(t, "prose", 1600 + k % 2) for k, t in enumerate(TEXTS)] + [(t, "code", 2020) for t in CODE]


def write_jsonl(path, rows=ROWS):
    path.write_text("".join(json.dumps({"text": t, "domain": d, "year": y}) + "\n" for t, d, y in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_run, one_thread):
    """Three checkpoints scored without subsets, then given the subset fields (no re-scoring)."""
    root = tmp_path_factory.mktemp("subsets")
    data = write_jsonl(root / "val.jsonl")
    out = root / "scores"
    r = run("score", tiny_run, "--data", data, "--out", out, "--quiet", "--max-length", 16)
    assert r.exit_code == 0, r.output
    before = {c: json.dumps(read_manifest(out, c)["shards"]) for c in ("teacher.checkpoint-250", "teacher.checkpoint-500")}
    pooled_before = run_json("summary", out)
    r = run("score", tiny_run, "--data", data, "--out", out, "--quiet", "--max-length", 16, "--subset-field", "domain", "--subset-field", "year")
    assert r.exit_code == 0, r.output
    assert "subset labels domain, year added" in r.output and "skipped" in r.output
    return {"out": out, "data": data, "before": before, "pooled_before": pooled_before}


def arrays(store, ck):
    s = load_scores(store["out"], ck)
    return s, s.docs


def test_adding_a_subset_field_reuses_the_scores(store):
    for ck, shards in store["before"].items():
        m = read_manifest(store["out"], ck)
        assert json.dumps(m["shards"]) == shards  # the same shard files and checksums: nothing re-scored
        assert m["labels"]["fields"] == ["domain", "year"]
    # pooled numbers are identical with and without the subset fields
    assert run_json("summary", store["out"]) == store["pooled_before"]


def test_per_subset_summaries_equal_numpy_on_the_filtered_arrays(store):
    got = run_json("summary", store["out"], "--by", "domain", "--percentiles", "10,50,95")
    rows = got["Per-token CE summaries by domain (nats)"]
    assert {(r["checkpoint"], r["subset"]) for r in rows} == {(c, d) for c in ("teacher.checkpoint-250", "teacher.checkpoint-500", "teacher.checkpoint-1000") for d in ("code", "prose")}
    for r in rows:
        s, docs = arrays(store, r["checkpoint"])
        keep = docs.loc[docs["domain"] == r["subset"], "doc"].to_numpy()
        mask = np.isin(s.doc, keep)
        ce = s.ce[mask].astype(np.float64)
        assert r["targets"] == ce.size and r["documents"] == keep.size
        assert r["mean"] == pytest.approx(ce.mean(), rel=1e-12)
        assert [r["p10"], r["p50"], r["p95"]] == pytest.approx(np.percentile(ce, [10, 50, 95]).tolist(), rel=1e-12)
        assert r["top1"] == pytest.approx(float((s.rank[mask] == 0).mean()), rel=1e-12)
        nbytes = docs.loc[docs["domain"] == r["subset"], "n_bytes"].sum()
        assert r["bpb"] == pytest.approx(ce.sum() / nbytes / math.log(2), rel=1e-9)


def test_subsets_cover_every_target_once_and_macro_mean_by_hand(store):
    got = run_json("summary", store["out"], "--by", "year")
    rows = got["Per-token CE summaries by year (nats)"]
    macro = {r["checkpoint"]: r for r in got["Pooled and macro-averaged mean CE over the subsets of year"]}
    assert {r["subset"] for r in rows} == {"1600", "1601", "2020"}  # numbers become string labels
    for ck, m in macro.items():
        mine = [r for r in rows if r["checkpoint"] == ck]
        s, _ = arrays(store, ck)
        assert sum(r["targets"] for r in mine) == m["targets"] == s.ce.size
        assert m["macro_mean"] == pytest.approx(sum(r["mean"] for r in mine) / 3, rel=1e-12)
        assert m["mean"] == pytest.approx(s.ce.astype(np.float64).mean(), rel=1e-12)


def test_subset_keeps_only_those_documents(store):
    got = run_json("summary", store["out"], "--subset", "domain=code", "--percentiles", "50")
    (title, rows), = got.items()
    assert title == "Per-token CE summaries (nats), subset domain = code"
    for r in rows:
        s, docs = arrays(store, r["checkpoint"])
        ce = s.ce[np.isin(s.doc, docs.loc[docs["domain"] == "code", "doc"])].astype(np.float64)
        assert (r["targets"], r["documents"]) == (ce.size, len(CODE))
        assert r["p50"] == pytest.approx(float(np.median(ce)), rel=1e-12)
    # --by names the field of bare values; several values keep their union
    both = run_json("summary", store["out"], "--by", "domain", "--subset", "code", "--subset", "prose")
    assert {r["subset"] for r in both["Per-token CE summaries by domain (nats)"]} == {"code", "prose"}


def test_per_subset_bootstrap_resamples_only_that_subsets_documents(store):
    got = run_json("summary", store["out"], "--by", "domain", "--ci", "0.9", "--bootstrap", "200", "--seed", "3", "-c", "*-500")
    for r in got["Per-token CE summaries by domain (nats)"]:
        s, docs = arrays(store, r["checkpoint"])
        sub = docs[docs["domain"] == r["subset"]].reset_index(drop=True)
        mask = np.isin(s.doc, sub["doc"])
        want = summary_row(s.ce[mask], s.doc[mask], s.rank[mask], sub, percentiles=[50, 90, 95, 99], ci=0.9, n_boot=200, seed=3)
        for name in ("mean", "p50", "p95"):
            assert (r[f"{name}_lo"], r[f"{name}_hi"]) == pytest.approx((want[f"{name}_lo"], want[f"{name}_hi"]), rel=1e-12)


def test_concord_and_select_by_subset(store):
    got = run_json("concord", store["out"], "--by", "domain")
    rows = got["Concordance by domain: S = {mean, p50, p95}"]
    assert [(r["subset"], r["group"], r["checkpoints"], r["pairs"]) for r in rows] == [("code", "all", 3, 3), ("prose", "all", 3, 3)]
    table = pd.DataFrame(run_json("summary", store["out"], "--by", "domain")["Per-token CE summaries by domain (nats)"])
    from pctce_cli.stats.concordance import concordance

    for r in rows:
        sub = table[table["subset"] == r["subset"]]
        assert r["C_S"] == concordance(sub[["mean", "p50", "p95"]], ["mean", "p50", "p95"]).c
        assert r["C(mean, p50)"] == concordance(sub[["mean", "p50"]], ["mean", "p50"]).c
    flips = got["Checkpoint pairs that one domain ranks one way and another the other way (margin: the smaller of the two largest gaps, nats)"]
    for f in flips:  # each listed pair really is ranked oppositely by the two subsets
        v = table.set_index(["subset", "checkpoint"])[f["summary"]]
        for lower, other in ((f["a lower on"], f["b"]), (f["b lower on"], f["a"])):
            this = f["a"] if other == f["b"] else f["b"]
            for label in lower.split(", "):
                assert v[(label, this)] < v[(label, other)]
    picks = run_json("select", store["out"], "--by", "domain")
    sel = picks["Selection rules (each picks the checkpoint minimizing its summary), by domain"]
    for r in sel:
        sub = table[table["subset"] == r["subset"]]
        rule = r["rule"].removeprefix("best by ")
        assert r["checkpoint"] == sub.loc[sub[rule].idxmin(), "checkpoint"]


def test_shape_by_subset(store):
    got = run_json("shape", store["out"], "--by", "domain", "--edges", "0,5,inf", "-c", "*-250")
    bands = got["Mass in CE bands by domain (fraction of targets)"]
    s, docs = arrays(store, "teacher.checkpoint-250")
    for r in bands:
        ce = s.ce[np.isin(s.doc, docs.loc[docs["domain"] == r["subset"], "doc"])]
        assert r["[0, 5)"] == pytest.approx(float((ce < 5).mean()), rel=1e-12)


def test_subset_errors_are_one_line(store, tmp_path):
    out = store["out"]
    cases = [
        (("summary", out, "--by", "lang"), "Error: --by lang: no checkpoint has a subset 'lang' (subsets: domain, year); add it with 'pctce score … --subset-field lang' (the scores are re-used, nothing is re-scored)"),
        (("summary", out, "--subset", "code"), "Error: --subset code: name the subset field with --by FIELD or --subset FIELD=VALUE (the checkpoints have subsets domain, year)"),
        (("summary", out, "--by", "domain", "--subset", "math"), "Error: --subset math: no document of teacher.checkpoint-250 has domain = math (values: code, prose)"),
        (("summary", out, "--by", "correct"), "Error: --by correct: no checkpoint has a subset 'correct' (subsets: domain, year); score with --task-accuracy"),
        (("summary", out, "--by", "domain", "--vs", "teacher.checkpoint-250"), "Error: --vs compares whole checkpoints: use it without --by (or with --subset)"),
    ]
    for args, message in cases:
        r = run(*args)
        assert r.exit_code == 2 and r.output.strip() == message, r.output


def test_a_store_without_subsets_reads_and_says_how_to_add_them(tmp_path, tiny_ckpt, text_jsonl, one_thread):
    out = tmp_path / "old"
    assert run("score", tiny_ckpt, "--data", text_jsonl, "--out", out, "--quiet", "--max-length", 16).exit_code == 0
    assert "labels" not in read_manifest(out, "tiny")
    assert run("summary", out).exit_code == 0
    r = run("summary", out, "--by", "domain")
    assert r.exit_code == 2 and "no checkpoint has a subset 'domain' (subsets: none)" in r.output


def test_a_subset_without_targets_is_reported(tmp_path, tiny_ckpt, one_thread):
    data = tmp_path / "v.jsonl"
    rows = [("The quick brown fox jumps over the lazy dog.", "prose", 1), ("a", "tiny", 1), ("def f(x): return x", "code", 1)]
    write_jsonl(data, rows)
    out = tmp_path / "s"
    assert run("score", tiny_ckpt, "--data", data, "--out", out, "--quiet", "--prefix", "none", "--subset-field", "domain").exit_code == 0
    got = run_json("summary", out, "--by", "domain")
    assert {r["subset"] for r in got["Per-token CE summaries by domain (nats)"]} == {"code", "prose"}
    r = run("summary", out, "--by", "domain")
    assert "subset tiny of 'domain' has no scored targets: left out" in r.stdout
    r = run("summary", out, "--subset", "tiny")
    assert r.exit_code == 2 and r.output.strip() == "Error: --subset tiny: no scored targets in tiny (its documents have none left after masking)"


def test_thousands_of_labels_give_a_note_and_a_capped_table(tmp_path, tiny_ckpt, one_thread):
    from pctce_cli.analysis.subsets import MAX_SUBSETS

    data = tmp_path / "many.jsonl"
    write_jsonl(data, [(f"word{k} and more words", f"label{k:03d}", 0) for k in range(MAX_SUBSETS + 10)])
    out = tmp_path / "s"
    assert run("score", tiny_ckpt, "--data", data, "--out", out, "--quiet", "--subset-field", "domain").exit_code == 0
    r = run("summary", out, "--by", "domain", "--format", "json")
    rows = json.loads(r.stdout)["Per-token CE summaries by domain (nats)"]
    assert len(rows) == MAX_SUBSETS
    r = run("summary", out, "--by", "domain")
    assert f"{MAX_SUBSETS + 10:,} subsets of 'domain': the tables show the {MAX_SUBSETS} with the most documents" in r.stdout


def test_subset_from_file_labels_by_file_name(tmp_path, tiny_ckpt, one_thread):
    a, b = tmp_path / "prose.jsonl", tmp_path / "code.txt"
    write_jsonl(a, ROWS[:3])
    b.write_text("print('hello')\n", encoding="utf-8")
    out = tmp_path / "s"
    r = run("score", tiny_ckpt, "--data", a, "--data", b, "--out", out, "--quiet", "--subset-from-file")
    assert r.exit_code == 0, r.output
    rows = run_json("summary", out, "--by", "file")["Per-token CE summaries by file (nats)"]
    assert [(r["subset"], r["documents"]) for r in rows] == [("code", 1), ("prose", 3)]
    r = run("score", tiny_ckpt, "--data", a, "--out", tmp_path / "t", "--quiet", "--subset-from-file")
    assert r.exit_code == 2 and "--subset-from-file labels documents by their data file: give two or more data files" in r.output


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet", "csv"])
def test_every_format_gives_string_labels(tmp_path, fmt):
    df = pd.DataFrame({"text": ["one", "two", "three"], "domain": ["a", "b", "a"], "n": [1, 2, 1]})
    p = tmp_path / f"d.{fmt}"
    if fmt == "jsonl":
        df.to_json(p, orient="records", lines=True)
    elif fmt == "json":
        df.to_json(p, orient="records")
    elif fmt == "parquet":
        df.to_parquet(p)
    else:
        df.to_csv(p, index=False)
    recs = read_records(p, subset_fields=["domain", "n"])
    assert [r.labels for r in recs] == [{"domain": "a", "n": "1"}, {"domain": "b", "n": "2"}, {"domain": "a", "n": "1"}]


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"text": "x"}', "d.jsonl:2: no field 'domain' for subset_fields (found: text)"),  # the Python API's words
        ('{"text": "x", "domain": ["a", "b"]}', "d.jsonl:2: field 'domain' is a list, expected a scalar subset label (a string, number or boolean)"),
        ('{"text": "x", "domain": {"a": 1}}', "d.jsonl:2: field 'domain' is an object, expected a scalar subset label (a string, number or boolean)"),
        ('{"text": "x", "domain": null}', "d.jsonl:2: field 'domain' is null, expected a scalar subset label (a string, number or boolean)"),
        ('{"text": "x", "domain": " "}', "d.jsonl:2: field 'domain' is empty, expected a subset label"),
    ],
)
def test_bad_subset_fields_name_file_line_and_field(tmp_path, line, message):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "ok", "domain": "a"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_records(p, subset_fields=["domain"])
    assert str(e.value) == f"{tmp_path}/{message}"


def test_subset_field_names_that_clash_or_do_not_exist_in_text_files(tmp_path):
    from pctce_cli.errors import UsageError

    p = tmp_path / "d.txt"
    p.write_text("plain text\n", encoding="utf-8")
    with pytest.raises(DataError, match="a .txt file has no fields for --subset-field domain"):
        read_records(p, subset_fields=["domain"])
    with pytest.raises(UsageError, match="subset_fields n_bytes: 'n_bytes' is a per-document column's name"):
        read_records(p, subset_fields=["n_bytes"])


def test_labels_are_verified_like_the_shards(store, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(store["out"], out)
    part = out / "checkpoint=teacher.checkpoint-250"
    (labels,) = part.glob("_labels/labels-*.parquet")
    labels.write_bytes(labels.read_bytes()[:-8] + b"\0" * 8)
    r = run("summary", out, "--by", "domain")
    assert r.exit_code == 2 and f"{labels} does not match its checksum in the manifest" in r.output
    r = run("verify", out)
    assert r.exit_code == 1 and "damaged" in r.stdout


def test_correct_incorrect_split_against_a_hand_computed_table(tmp_path, tiny_ckpt, one_thread):
    from pctce_cli.testing import reseal

    data = tmp_path / "qa.jsonl"
    pairs = [("Q: capital of Aria? A:", " Bel"), ("Q: river of Aria? A:", " Tor"), ("Q: ruler of Aria? A:", " Queen Ma"), ("Q: coin of Aria? A:", " the ruv")]
    data.write_text("".join(json.dumps({"prompt": p, "completion": c}) + "\n" for p, c in pairs), encoding="utf-8")
    out = tmp_path / "s"
    args = ("score", tiny_ckpt, "--data", data, "--out", out, "--quiet", "--prompt-field", "prompt", "--completion-field", "completion", "--task-accuracy")
    assert run(*args).exit_code == 0
    # the random model answers nothing correctly: mark two documents correct, as a trained model might
    import pyarrow.parquet as pq

    part = out / "checkpoint=tiny"
    (docs_file,) = (part / "_docs").glob("part-*.parquet")
    t = pq.read_table(docs_file).to_pandas()
    t["substring_match"] = t["doc"].isin([0, 2])
    t.to_parquet(docs_file)
    reseal(part)
    s = load_scores(out, "tiny")
    ce = s.ce.astype(np.float64)
    mc, mi = ce[np.isin(s.doc, [0, 2])].mean(), ce[np.isin(s.doc, [1, 3])].mean()
    got = run_json("summary", out, "--by", "correct")
    (row,) = got["Mean CE of correctly and incorrectly answered documents (paper Table 6)"]
    assert row["accuracy"] == 0.5
    assert (row["mean_correct"], row["mean_incorrect"]) == pytest.approx((mc, mi), rel=1e-12)
    assert row["ratio"] == pytest.approx(mi / mc, rel=1e-12)
    by = {r["subset"]: r for r in got["Per-token CE summaries by correct (nats)"]}
    assert by["correct"]["acc_substring_match"] == 1.0 and by["incorrect"]["acc_substring_match"] == 0.0
    assert macro_mean([mc, mi]) == pytest.approx(got["Pooled and macro-averaged mean CE over the subsets of correct"][0]["macro_mean"], rel=1e-12)


def test_duckdb_gives_the_same_per_subset_p50(store):
    duckdb = pytest.importorskip("duckdb")
    root = store["out"]
    rows = duckdb.sql(
        f"""SELECT t.checkpoint, l.domain, count(*) AS targets, quantile_cont(t.ce::DOUBLE, 0.5) AS p50
        FROM read_parquet('{root}/*/*.parquet', hive_partitioning = true) AS t
        JOIN read_parquet('{root}/*/_labels/*.parquet', hive_partitioning = true) AS l
          USING (checkpoint, doc)
        GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    ours = {(r["checkpoint"], r["subset"]): r for r in run_json("summary", root, "--by", "domain")["Per-token CE summaries by domain (nats)"]}
    assert len(rows) == len(ours) == 6
    for ck, domain, targets, p50 in rows:
        assert ours[(ck, domain)]["targets"] == targets
        assert ours[(ck, domain)]["p50"] == pytest.approx(p50, rel=1e-15)
    # the token glob still sees token rows only
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/*/*.parquet')").fetchall()[0][0]
    assert n == sum(r["targets"] for r in ours.values())
