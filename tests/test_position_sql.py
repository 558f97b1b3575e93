"""The bucketed median of docs/position.md, run by DuckDB, equals ``summary --by position``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .cli import run_json, section
from .test_position_cli import store

duckdb = pytest.importorskip("duckdb")

DOC = Path(__file__).resolve().parents[1] / "docs" / "position.md"


def test_the_docs_query_gives_pctces_bucket_medians(tmp_path):
    query = re.search(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)  # the query of the docs, verbatim
    root = store(tmp_path, ck="ck-a")[0]
    store(tmp_path, seed=1, ck="ck-b")
    got = duckdb.sql(query.replace("STORE", str(root))).fetchall()
    rows = section(run_json("summary", root, "--by", "position", "--percentiles", "50"), "Per-token")
    assert [(r["checkpoint"], r["from"], r["targets"]) for r in rows] == [g[:3] for g in got]
    # ce::DOUBLE interpolates in float64 as pctce does: the same values
    assert [g[3] for g in got] == pytest.approx([r["p50"] for r in rows], rel=1e-15)
