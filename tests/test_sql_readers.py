"""The store read by DuckDB gives pctce's numbers (docs/store-sql.md): the query in the docs, run here."""

from __future__ import annotations

import pytest

from pctce_cli.stats.summaries import summarize
from pctce_cli.store import load_scores

from .test_store_integrity import write_checkpoint

duckdb = pytest.importorskip("duckdb")

# The query of docs/store-sql.md, verbatim apart from the store path.
QUERY = """
SELECT checkpoint,
       count(*)                                              AS targets,
       avg(ce::DOUBLE)                                       AS mean,
       quantile_cont(ce::DOUBLE, [0.5, 0.9, 0.95, 0.99])     AS p50_p90_p95_p99
FROM read_parquet('STORE/*/*.parquet', hive_partitioning = true)
GROUP BY checkpoint
ORDER BY checkpoint
"""


def test_duckdb_reproduces_pctce_percentiles(tmp_path):
    root = tmp_path / "scores"
    for i, ck in enumerate(["a", "b"]):
        write_checkpoint(root, ck, i, n_docs=300, n_shards=3)
    rows = duckdb.sql(QUERY.replace("STORE", str(root))).fetchall()
    assert [r[0] for r in rows] == ["a", "b"]
    for ck, targets, mean, pct in rows:
        s = summarize(load_scores(root, ck).ce, percentiles=[50, 90, 95, 99])
        assert targets == s["n"]
        assert mean == pytest.approx(s["mean"], rel=1e-12)
        # ce::DOUBLE interpolates in float64 as pctce does: the same values (without the cast DuckDB rounds to float32)
        assert pct == pytest.approx([s["p50"], s["p90"], s["p95"], s["p99"]], rel=1e-15)
    # the per-document tables live under _docs/ and stay out of the glob
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/*/*.parquet')").fetchall()[0][0] == sum(r[1] for r in rows)
